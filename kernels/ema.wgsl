// Exponential moving average of parameters (src/train/ema.ts), one dispatch per tensor, in place:
//   ema = d * ema + (1 - d) * x
// `d` and `one_minus_d` are both passed (1 - d computed in float64 on the host, then rounded), as
// Ultralytics' ModelEMA does v *= d; v += (1 - d) * x.
// update_flat: the same over packed tensors (src/tensor/arena.ts): ema and x are two arenas of one layout,
// one workgroup per chunk of the chunk table (first value, end, tensor index; vec4s), n = chunks.

struct Params { n: u32, d: f32, one_minus_d: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> ema: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let e = P.d * ema[i];
  ema[i] = e + P.one_minus_d * x[i];
}

@group(0) @binding(1) var<storage, read_write> ema4: array<vec4f>;
@group(0) @binding(2) var<storage, read> x4: array<vec4f>;
@group(0) @binding(3) var<storage, read> chunks: array<vec4u>;

@compute @workgroup_size(256)
fn update_flat(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= P.n) { return; }
  let ch = chunks[c];
  let v = ch.x + 4u * l;
  if (v >= ch.y) { return; }
  let i = v / 4u;
  let e = P.d * ema4[i];
  ema4[i] = e + P.one_minus_d * x4[i];
}
