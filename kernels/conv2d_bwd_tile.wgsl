{{ENABLE}}
// @defaults ENABLE= SG=1 SGARG= SGLANE=0u SHUFFLE=noshuffle TM=8 TR=2 TN=4 KH=3 KW=3 SY=1 SX=1
// The backward passes of the `tile` algorithm (src/tensor/ops/conv2d_bwd_tile.ts), for CPU adapters.
//
// weights: dw[g*Mg + m, c, ky, kx] = sum over (b, oy, ox) of dy[b, g*Mg + m, oy, ox] * x[b, g*Cg + c, iy, ix]
//          with iy = oy*SY + ky - PY, ix = ox*SX + kx - PX (zero outside the image). An invocation owns one
//          input channel c (workgroup_id.x * WG + lane) and TM output channels (workgroup_id.y), i.e. TM x
//          KH*KW accumulators, and walks the TR x TN output-pixel tiles of its share of the batch
//          (workgroup_id.z = s*G + g: chunk s of P.chunk tiles; S > 1 writes partials to dst[s*Cout*K + ..]
//          that conv2d_direct.wgsl:reduce_split sums). Per tile it loads the XR x XC input window of its
//          channel once and reuses every value for all KH*KW taps that touch it; the TM x TR*TN values of dy
//          are the same for every invocation of the workgroup: loaded spread over the lanes of a subgroup
//          (lane s loads values s, s + SG, ...) and handed around with subgroupShuffle. A 2x4 tile of a 3x3
//          stride-1 layer with TM = 16 loads 24 + 16 values per lane for 1152 products, where gemm_reg's dw
//          (conv2d_bwd.wgsl) loads about 108. As in conv2d_tile.wgsl, the per-row work is a function called
//          once per row with a constant argument, so every register array is indexed by constants only.
//          Summation order per dw value: tiles in order, within a tile rows, then columns.
// flip:    the weights of the transposed convolution that computes dx of a stride-1 conv as a forward conv:
//          w'[g*Cg + c, m, ky, kx] = w[g*Mg + m, c, KH-1-ky, KW-1-kx] (P.n = Cin*Mg rows of KH*KW; the
//          op then runs the forward with padding KH-1-PY, KW-1-PX on dy).

// #include "lib/conv_params.wgsl"
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

override WG: u32 = 8;

const TM: u32 = {{TM}}u;
const TR: u32 = {{TR}}u;
const TN: u32 = {{TN}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SY: u32 = {{SY}}u;
const SX: u32 = {{SX}}u;
const SG: u32 = {{SG}}u;
const KHW: u32 = KH * KW;
const TP: u32 = TR * TN;
const XR: u32 = (TR - 1u) * SY + KH;
const XC: u32 = (TN - 1u) * SX + KW;
// dy values of a tile block (TM rows x TP pixels) each lane loads
const ND: u32 = (TM * TP + SG - 1u) / SG;

fn noshuffle(v: f32, l: u32) -> f32 { return v; }

var<private> acc: array<array<f32, KHW>, TM>;
var<private> xt: array<f32, XR * XC>;
var<private> dl: array<f32, ND>;

// Row i (output channel m0 + i) for the current tile: every pixel's dy from the lane that loaded it, times
// the window values under the KH*KW taps.
fn row(i: u32) {
  var a: array<f32, KHW>;
  for (var t = 0u; t < KHW; t++) { a[t] = acc[i][t]; }
  for (var p = 0u; p < TP; p++) {
    let e = i * TP + p;
    let d = {{SHUFFLE}}(dl[e / SG], e % SG);
    let r = p / TN;
    let j = p % TN;
    for (var ky = 0u; ky < KH; ky++) {
      for (var kx = 0u; kx < KW; kx++) {
        a[ky * KW + kx] = fma(d, xt[(r * SY + ky) * XC + j * SX + kx], a[ky * KW + kx]);
      }
    }
  }
  for (var t = 0u; t < KHW; t++) { acc[i][t] = a[t]; }
}

@compute @workgroup_size(WG)
fn weights(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u{{SGARG}}) {
  let lane = {{SGLANE}};
  let g = wid.z % P.G;
  let s = wid.z / P.G;
  let m0 = wid.y * TM;
  // Invocations past the group's channels compute a copy of the last one (uniform control flow for the
  // shuffles) and store nothing.
  let cc = (wid.x + P.t0) * WG + lid.x;
  let c = min(cc, P.Cg - 1u);
  let hw = P.H * P.W;
  let ohw = P.OH * P.OW;
  let tx = (P.OW + TN - 1u) / TN;
  let tpi = tx * ((P.OH + TR - 1u) / TR);
  let tbeg = s * P.chunk;
  let tend = min(P.B * tpi, tbeg + P.chunk);

  for (var i = 0u; i < TM; i++) {
    for (var t = 0u; t < KHW; t++) { acc[i][t] = 0.0; }
  }
  // The dy values this lane loads per tile: value e = q*SG + lane of the block is row e / TP, pixel e % TP
  // (rows past the group's end read the last row; their results are never written).
  var doff: array<u32, ND>;
  for (var q = 0u; q < ND; q++) {
    let e = min(q * SG + lane, TM * TP - 1u);
    let p = e % TP;
    doff[q] = (g * P.Mg + min(m0 + e / TP, P.Mg - 1u)) * ohw + (p / TN) * P.OW + p % TN;
  }
  let xc = (g * P.Cg + c) * hw;

  for (var t = tbeg; t < tend; t++) {
    let b = t / tpi;
    let tt = t % tpi;
    let oy0 = (tt / tx) * TR;
    let ox0 = (tt % tx) * TN;
    let xo = b * P.Cin * hw + xc;
    var roff: array<u32, XR>;
    var rok: array<bool, XR>;
    for (var i = 0u; i < XR; i++) {
      let iy = i32(oy0 * SY + i) - i32(P.PY);
      rok[i] = iy >= 0 && iy < i32(P.H);
      roff[i] = u32(clamp(iy, 0, i32(P.H) - 1)) * P.W;
    }
    for (var j = 0u; j < XC; j++) {
      let ix = i32(ox0 * SX + j) - i32(P.PX);
      let ok = ix >= 0 && ix < i32(P.W);
      let col = u32(clamp(ix, 0, i32(P.W) - 1));
      for (var i = 0u; i < XR; i++) { xt[i * XC + j] = select(0.0, x[xo + roff[i] + col], rok[i] && ok); }
    }
    // pixels past the map's edge (a partial tile) contribute nothing: their dy is 0
    let yo = b * P.Cout * ohw + oy0 * P.OW + ox0;
    for (var q = 0u; q < ND; q++) {
      let p = min(q * SG + lane, TM * TP - 1u) % TP;
      let ok = oy0 + p / TN < P.OH && ox0 + p % TN < P.OW;
      dl[q] = select(0.0, dy[min(yo + doff[q], P.B * P.Cout * ohw - 1u)], ok);
    }
    row(0u);
    if (TM > 1u) { row(1u); } if (TM > 2u) { row(2u); } if (TM > 3u) { row(3u); }
    if (TM > 4u) { row(4u); } if (TM > 5u) { row(5u); } if (TM > 6u) { row(6u); } if (TM > 7u) { row(7u); }
    if (TM > 8u) { row(8u); } if (TM > 9u) { row(9u); } if (TM > 10u) { row(10u); } if (TM > 11u) { row(11u); }
    if (TM > 12u) { row(12u); } if (TM > 13u) { row(13u); } if (TM > 14u) { row(14u); } if (TM > 15u) { row(15u); }
  }

  // Epilogue as a loop with a run-time trip count (see conv2d_reg.wgsl).
  var res: array<f32, TM * KHW>;
  for (var i = 0u; i < TM; i++) {
    for (var t = 0u; t < KHW; t++) { res[i * KHW + t] = acc[i][t]; }
  }
  if (cc >= P.Cg) { return; }
  let K = P.Cg * KHW;
  let rows = min(TM, P.Mg - m0);
  let base = s * P.Cout * K + (g * P.Mg + m0) * K + c * KHW;
  for (var e = 0u; e < rows * KHW; e++) {
    dst[base + (e / KHW) * K + e % KHW] = res[e];
  }
}

// one invocation per (row g*Cg + c, column m) of w' (P.n = Cin*Mg): its KH*KW taps reversed
@compute @workgroup_size(256)
fn flip(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= P.n) { return; }
  let khw = P.KH * P.KW;
  let gc = o / P.Mg;
  let m = o - gc * P.Mg;
  let g = gc / P.Cg;
  let src = ((g * P.Mg + m) * P.Cg + gc - g * P.Cg) * khw + khw - 1u;
  for (var t = 0u; t < khw; t++) { dst[o * khw + t] = x[src - t]; }
}
