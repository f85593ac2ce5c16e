// dx of a strided convolution by output phase, with the tile kernel (src/tensor/ops/conv2d.ts
// tilePhasedBackwardData). The rows iy = ry + SY*a of dx take only the taps ky = ky0 + SY*t (ky0 = (ry + PY) mod
// SY, t < nky), and likewise the columns, so each phase (ry, rx) is a stride-1 convolution of dy with a
// nky x nkx sub-kernel, which conv2d_tile.wgsl computes and writes into the phase's rows and columns of dx.
// This file makes the sub-kernel: weights writes it as a forward conv's weights on dy, transposed and flipped,
//   wP[g*Cg + c, m, t', u'] = w[g*Mg + m, c, ky0 + SY*(nky-1-t'), kx0 + SX*(nkx-1-u')]
// (one invocation per value, n = Cin*Mg*nky*nkx). A copy: dx holds the tile kernel's sums.

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

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= P.n) { return; }
  let taps = P.nky * P.nkx;
  let gm = o / taps;
  let t = o - gm * taps;
  let gc = gm / P.Mg;
  let m = gm - gc * P.Mg;
  let g = gc / P.Cg;
  let c = gc - g * P.Cg;
  let ty = t / P.nkx;
  let tx = t - ty * P.nkx;
  let ky = P.ky0 + P.SY * (P.nky - 1u - ty);
  let kx = P.kx0 + P.SX * (P.nkx - 1u - tx);
  dst[o] = src[((g * P.Mg + m) * P.Cg + c) * P.KH * P.KW + ky * P.KW + kx];
}
