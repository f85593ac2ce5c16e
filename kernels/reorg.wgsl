// Darknet reorg (blas.c reorg_cpu) as one permutation kernel, used by [reorg] (reorg_old_layer.c, YOLOv2's
// "passthrough", with its famous memory reinterpretation) and [reorg3d] (reorg_layer.c, plain
// space-to-depth). With (W, H, C) the sizes Darknet passes and s the stride, in_c = C / s^2, for every
// i = ((b*C + k)*H + h)*W + w:
//   c2 = k % in_c, off = k / in_c, w2 = w*s + off % s, h2 = h*s + off / s,
//   o  = ((b*in_c + c2)*H*s + h2)*W*s + w2
//   fwd == 0:  y[i] = x[o]   (gather)        fwd == 1:  y[o] = x[i]   (scatter; a permutation, no races)
// The backward of one direction is the other direction with the same sizes.

struct Params { n: u32, W: u32, H: u32, C: u32, s: u32, fwd: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let w = i % P.W;
  let t = i / P.W;
  let h = t % P.H;
  let t2 = t / P.H;
  let k = t2 % P.C;
  let b = t2 / P.C;
  let inC = P.C / (P.s * P.s);
  let c2 = k % inC;
  let off = k / inC;
  let w2 = w * P.s + off % P.s;
  let h2 = h * P.s + off / P.s;
  let o = w2 + P.W * P.s * (h2 + P.H * P.s * (c2 + inC * b));
  if (P.fwd != 0u) {
    y[o] = x[i];
  } else {
    y[i] = x[o];
  }
}
