// Darknet [crop] at inference (crop_layer.c forward_crop_layer with train = 0): the centred
// OH x OW window at (dh, dw) of every plane, times `scale` plus `trans` (2, -1 unless noadjust: 1, 0).
// The engine takes this deterministic window in training too (Darknet's random crop, flip and exposure
// belong to the data pipeline here), so the backward is its transpose (gather form, one invocation per
// input element): dx = scale * dy inside the window, 0 outside (Darknet's backward_crop_layer is empty).

struct Params { n: u32, H: u32, W: u32, OH: u32, OW: u32, dh: u32, dw: u32, scale: f32, trans: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

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

// n = the input's size: dx[p, r, j] = scale * dy[p, r - dh, j - dw] inside the window, else 0.
@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let j = i % P.W;
  let r = (i / P.W) % P.H;
  let p = i / (P.W * P.H);
  var g = 0.0;
  if (r >= P.dh && r < P.dh + P.OH && j >= P.dw && j < P.dw + P.OW) {
    g = dy[(p * P.OH + r - P.dh) * P.OW + j - P.dw] * P.scale;
  }
  dx[i] = g;
}
