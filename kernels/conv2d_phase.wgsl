// dx of a strided convolution by output phase, with the tile kernel (src/tensor/ops/conv2d.ts
// tilePhasedBackwardData). The rows iy = ry + SY*a of dx take only the taps ky = ky0 + SY*t (ky0 = (ry + PY) mod
// SY, t < nky), and likewise the columns, so each phase (ry, rx) is a stride-1 convolution of dy with a
// nky x nkx sub-kernel, which conv2d_tile.wgsl computes and writes into the phase's rows and columns of dx.
// This file makes the sub-kernel: weights writes it as a forward conv's weights on dy, transposed and flipped,
//   wP[g*Cg + c, m, t', u'] = w[g*Mg + m, c, ky0 + SY*(nky-1-t'), kx0 + SX*(nkx-1-u')]
// One invocation per (g, c, m): c = global_invocation_id.x (n = Cg), m = workgroup_id.y, g = workgroup_id.z;
// it copies the nky*nkx taps (lanes over c read nearby rows of w: 1.35x faster than lanes over m). No index division: each integer division by a uniform is a loop over the lanes
// on lavapipe (one value per invocation with five of them ran at 0.6 GB/s, 4% of a yolov4 training step).
// A copy: dx holds the tile kernel's sums.

struct Params {
  n: u32,
  // the conv's input / output channels per group and kernel size, the phase's first tap and tap counts
  Cg: u32, Mg: u32, KH: u32, KW: u32,
  ky0: u32, kx0: u32, nky: u32, nkx: u32,
  SY: u32, SX: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn weights(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = gid.x;
  if (c >= P.n) { return; }
  let m = wid.y;
  let g = wid.z;
  let taps = P.nky * P.nkx;
  let src0 = ((g * P.Mg + m) * P.Cg + c) * P.KH * P.KW + P.ky0 * P.KW + P.kx0;
  var o = ((g * P.Cg + c) * P.Mg + m) * taps;
  for (var ty = 0u; ty < P.nky; ty++) {
    for (var tx = 0u; tx < P.nkx; tx++) {
      dst[o] = src[src0 + P.SY * (P.nky - 1u - ty) * P.KW + P.SX * (P.nkx - 1u - tx)];
      o++;
    }
  }
}
