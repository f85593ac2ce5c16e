// Darknet [crop] at inference (crop_layer.c forward_crop_layer with train = 0): the centred
// OH x OW window at (dh, dw) of every plane, times `scale` plus `trans` (2, -1 unless noadjust: 1, 0).

struct Params { n: u32, H: u32, W: u32, OH: u32, OW: u32, dh: u32, dw: u32, scale: f32, trans: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let j = i % P.OW;
  let r = (i / P.OW) % P.OH;
  let p = i / (P.OW * P.OH);
  y[i] = x[(p * P.H + r + P.dh) * P.W + j + P.dw] * P.scale + P.trans;
}
