// Darknet [upsample] (upsample_layer.c, blas.c upsample_cpu): nearest-neighbour by an integer stride s with
// Darknet's `scale` multiplier. Both directions are gathers (no atomics). `w`, `h` are the SMALL plane's
// sizes; the big plane is exactly (w*s) x (h*s).
//   expand: big[p, y, x]   = scale * small[p, y/s, x/s]                     (upsample forward,
//                                                                            reverse-mode backward)
//   reduce: small[p, y, x] = scale * sum_{dy,dx < s} big[p, y*s+dy, x*s+dx]  (upsample backward,
//                                                                            reverse-mode forward)
// p = n*C + c indexes the planes. n = number of elements written (big elements for expand, small for reduce).
// ST: the storage type of src and dst (f32, or f16 for inference: docs/kernels.md "f16 storage"); math in f32.

alias ST = {{ST}};
struct Params { n: u32, w: u32, h: u32, s: u32, scale: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<ST>;
@group(0) @binding(2) var<storage, read_write> dst: array<ST>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn expand(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let bw = P.w * P.s;
  let bh = P.h * P.s;
  let x = i % bw;
  let t = i / bw;
  let y = t % bh;
  let p = t / bh;
  dst[i] = ST(P.scale * f32(src[(p * P.h + y / P.s) * P.w + x / P.s]));
}

@compute @workgroup_size(WG)
fn reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let x = i % P.w;
  let t = i / P.w;
  let y = t % P.h;
  let p = t / P.h;
  let bw = P.w * P.s;
  let base = (p * P.h * P.s + y * P.s) * bw + x * P.s;
  var acc = 0.0;
  for (var dy = 0u; dy < P.s; dy++) {
    for (var dx = 0u; dx < P.s; dx++) {
      acc += f32(src[base + dy * bw + dx]);
    }
  }
  dst[i] = ST(P.scale * acc);
}
