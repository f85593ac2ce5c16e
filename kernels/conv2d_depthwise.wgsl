// @defaults KH=3 KW=3 SY=1 SX=1
// Depthwise convolutions (groups = input channels = output channels: one input and one output channel per
// group, kernels up to 7x7) on CPU adapters: the `tile` algorithm's kernels for such layers
// (src/tensor/ops/conv2d.ts depthwiseForward, depthwiseBackwardData, depthwiseBackwardWeights). No subgroups.
//
// fwd: y[b, c, oy, ox] = act(bias[c] + sum over (ky, kx) of w[c, 0, ky, kx] * x[b, c, iy, ix]), written to
//   channel P.Coff + c of a destination with P.Ctot channels. An invocation computes a TR x TN tile of one
//   plane (workgroup_id.z = b, workgroup_id.y = c, tiles along x, row-major, offset by P.t0 workgroups when
//   the op splits a plane's tiles over several dispatches): it loads the channel's KH*KW
//   weights and the XR x XC input window of its tile once and adds every (output, tap) product in registers
//   (2x8 outputs of a 5x5 stride-1 conv: 72 window and 25 weight loads for 400 products; gemm_reg loads
//   about one im2col value per product). With P.wflip != 0 the taps are read reversed: dx of a stride-1
//   depthwise conv is this forward on dy with padding KH-1-PY, KW-1-PX.
//   Summation order per output: taps row by row.
//
// data: dx of a depthwise conv at any stride, one output phase (ry, rx) per workgroup_id.z = b*SY*SX + phase:
//   the rows iy = ry + SY*a and columns ix = rx + SX*e of dx take only the taps ky = ky0 + SY*t,
//   kx = kx0 + SX*u (ky0 = (ry + PY) mod SY), from dy[oyb + a - t, oxb + e - u] (oyb = (ry + PY - ky0) / SY).
//   An invocation computes TN consecutive columns e of one row a of its phase (workgroup_id.y = c, segments
//   along x): per tap row t it loads the TN + KW - 1 values of dy under them once, for all its taps.
//   Summation order per dx value: taps row by row.
//
// weights: dw (src/tensor/ops/conv2d.ts depthwiseBackwardWeights):
//
//   dw[c, 0, ky, kx] = sum over (b, oy, ox) of dy[b, c, oy, ox] * x[b, c, iy, ix],
//   iy = oy*SY + ky - PY, ix = ox*SX + kx - PX (zero outside the image).
//
// conv2d_bwd_tile.wgsl puts the input channels of a group on the lanes, which leaves 7 of 8 lanes idle when a
// group has one; gemm_reg's dw (conv2d_bwd.wgsl) reduced each channel's B*OH*OW products with one workgroup
// of im2col loads, about 1 GFLOP/s on lavapipe. Here a workgroup owns channel c = workgroup_id.x and chunk s =
// workgroup_id.y of its P.chunk rows (b, oy) of dy; lane l takes rows l, l + WG, ... of the chunk. Per row it
// walks segments of TN outputs: loads their TN values of dy and, per kernel row ky, the XC input values under
// them once, and adds every (output, tap) product into KH*KW register sums. The lanes' sums are then added in
// lane order (workgroup memory), and written to dst[s*P.n + c*KH*KW + t] (P.S > 1: partials that
// conv2d_direct.wgsl reduce_split adds; P.n = Cout*KH*KW).
// Summation order per dw value: per lane its rows in order, within a row its segments, within a segment the
// outputs; then the lanes in order; then the chunks in order (reduce_split).

// #include "lib/conv_params.wgsl"
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
// fwd: the weights (binding 2 as w), the bias
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// data: dy (binding 1, where fwd has x) and the weights (binding 2)
@group(0) @binding(1) var<storage, read> dyin: array<f32>;

override WG: u32 = 8;

const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SY: u32 = {{SY}}u;
const SX: u32 = {{SX}}u;
const KHW: u32 = KH * KW;
// outputs per segment, and the input columns under them
const TN: u32 = 8u;
const XC: u32 = (TN - 1u) * SX + KW;
// fwd: output rows per tile, and the input rows under them
const TR: u32 = 2u;
const XR: u32 = (TR - 1u) * SY + KH;

// #include "lib/act.wgsl"

@compute @workgroup_size(WG)
fn fwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.y;
  let b = wid.z;
  let segs = (P.OW + TN - 1u) / TN;
  let tile = (wid.x + P.t0) * WG + lid.x;
  if (tile >= segs * ((P.OH + TR - 1u) / TR)) { return; }
  let oy0 = (tile / segs) * TR;
  let ox0 = (tile % segs) * TN;
  var wv: array<f32, KHW>;
  for (var t = 0u; t < KHW; t++) { wv[t] = w[c * KHW + select(t, KHW - 1u - t, P.wflip != 0u)]; }
  let xo = (b * P.Cin + c) * P.H * P.W;
  var xt: array<f32, XR * XC>;
  for (var i = 0u; i < XR; i++) {
    let iy = i32(oy0 * SY + i) - i32(P.PY);
    let rok = iy >= 0 && iy < i32(P.H);
    let ro = xo + u32(clamp(iy, 0, i32(P.H) - 1)) * P.W;
    for (var j = 0u; j < XC; j++) {
      let ix = i32(ox0 * SX + j) - i32(P.PX);
      xt[i * XC + j] = select(0.0, x[ro + u32(clamp(ix, 0, i32(P.W) - 1))], rok && ix >= 0 && ix < i32(P.W));
    }
  }
  let bv = select(0.0, bias[c], P.has_bias != 0u);
  let yo = (b * P.Ctot + P.Coff + c) * P.OH * P.OW;
  for (var r = 0u; r < TR; r++) {
    for (var j = 0u; j < TN; j++) {
      var a = 0.0;
      for (var ky = 0u; ky < KH; ky++) {
        for (var kx = 0u; kx < KW; kx++) { a = fma(wv[ky * KW + kx], xt[(r * SY + ky) * XC + j * SX + kx], a); }
      }
      let oy = oy0 + r;
      let ox = ox0 + j;
      if (oy < P.OH && ox < P.OW) { dst[yo + oy * P.OW + ox] = act_code(a + bv, P.act); }
    }
  }
}

var<workgroup> part: array<f32, WG * KHW>;

@compute @workgroup_size(WG)
fn data(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.y;
  let phases = SY * SX;
  let b = wid.z / phases;
  let ry = (wid.z % phases) / SX;
  let rx = wid.z % SX;
  // the phase's rows and columns of dx, and its taps
  let A = (P.H - min(ry, P.H) + SY - 1u) / SY;
  let E = (P.W - min(rx, P.W) + SX - 1u) / SX;
  let segs = (E + TN - 1u) / TN;
  let s = (wid.x + P.t0) * WG + lid.x;
  if (s >= A * segs) { return; }
  let a = s / segs;
  let e0 = (s % segs) * TN;
  let ky0 = (ry + P.PY) % SY;
  let kx0 = (rx + P.PX) % SX;
  let nky = (KH - min(ky0, KH) + SY - 1u) / SY;
  let nkx = (KW - min(kx0, KW) + SX - 1u) / SX;
  let oyb = i32((ry + P.PY - ky0) / SY);
  let oxb = i32((rx + P.PX - kx0) / SX);
  let dyo = (b * P.Cout + c) * P.OH * P.OW;
  var acc: array<f32, TN>;
  for (var j = 0u; j < TN; j++) { acc[j] = 0.0; }
  // loops to the constant bounds KH, KW with uniform branches on the phase's tap counts: unrolled, so the
  // window and the sums stay in registers
  for (var t = 0u; t < KH; t++) {
    if (t < nky) {
      let oy = oyb + i32(a) - i32(t);
      let rok = oy >= 0 && oy < i32(P.OH);
      let ro = dyo + u32(clamp(oy, 0, i32(P.OH) - 1)) * P.OW;
      // dy columns oxb + e0 - (KW - 1) + q: every column the TN outputs take for any u < KW
      var win: array<f32, TN + KW - 1u>;
      for (var q = 0u; q < TN + KW - 1u; q++) {
        let ox = oxb + i32(e0 + q) - i32(KW - 1u);
        win[q] = select(0.0, dyin[ro + u32(clamp(ox, 0, i32(P.OW) - 1))], rok && ox >= 0 && ox < i32(P.OW));
      }
      for (var u = 0u; u < KW; u++) {
        if (u < nkx) {
          let wv = w[c * KHW + (ky0 + SY * t) * KW + kx0 + SX * u];
          for (var j = 0u; j < TN; j++) { acc[j] = fma(wv, win[j + KW - 1u - u], acc[j]); }
        }
      }
    }
  }
  let iy = ry + SY * a;
  let xo = (b * P.Cin + c) * P.H * P.W + iy * P.W + rx;
  for (var j = 0u; j < TN; j++) {
    if (e0 + j < E) { dst[xo + SX * (e0 + j)] = acc[j]; }
  }
}

@compute @workgroup_size(WG)
fn weights(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x;
  let s = wid.y;
  let rows = P.B * P.OH;
  let r1 = min(rows, (s + 1u) * P.chunk);
  var acc: array<f32, KHW>;
  for (var t = 0u; t < KHW; t++) { acc[t] = 0.0; }
  for (var r = s * P.chunk + lid.x; r < r1; r += WG) {
    let b = r / P.OH;
    let oy = r % P.OH;
    let dyo = ((b * P.Cout + c) * P.OH + oy) * P.OW;
    let xo = (b * P.Cin + c) * P.H * P.W;
    for (var ox0 = 0u; ox0 < P.OW; ox0 += TN) {
      var d: array<f32, TN>;
      for (var j = 0u; j < TN; j++) { d[j] = select(0.0, dy[dyo + min(ox0 + j, P.OW - 1u)], ox0 + j < P.OW); }
      for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy * SY + ky) - i32(P.PY);
        let rok = iy >= 0 && iy < i32(P.H);
        let ro = xo + u32(clamp(iy, 0, i32(P.H) - 1)) * P.W;
        var xr: array<f32, XC>;
        for (var j = 0u; j < XC; j++) {
          let ix = i32(ox0 * SX + j) - i32(P.PX);
          xr[j] = select(0.0, x[ro + u32(clamp(ix, 0, i32(P.W) - 1))], rok && ix >= 0 && ix < i32(P.W));
        }
        for (var kx = 0u; kx < KW; kx++) {
          var a = acc[ky * KW + kx];
          for (var j = 0u; j < TN; j++) { a = fma(d[j], xr[j * SX + kx], a); }
          acc[ky * KW + kx] = a;
        }
      }
    }
  }
  for (var t = 0u; t < KHW; t++) { part[lid.x * KHW + t] = acc[t]; }
  workgroupBarrier();
  for (var t = lid.x; t < KHW; t += WG) {
    var sum = 0.0;
    for (var l = 0u; l < WG; l++) { sum += part[l * KHW + t]; }
    dst[s * P.n + c * KHW + t] = sum;
  }
}
