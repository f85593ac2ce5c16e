{{ENABLE}}
// @defaults ENABLE= SG=1 SGARG= SGLANE=0u SHUFFLE=noshuffle TM=4 TR=2 TN=4 KH=3 KW=3 SY=1 SX=1
// Direct 2-D convolution forward with a 2-D output tile per invocation: the `tile` algorithm, for kernels
// up to 3x3 without dilation, on CPU adapters (lavapipe).
//
// An invocation computes TM output channels (workgroup_id.y) x a TR x TN tile of output pixels of one
// image; a workgroup is WG such tiles side by side (workgroup_id.x), group g = workgroup_id.z. Per input
// channel c it loads the XR x XC input window of its tile once ((TR-1)*SY + KH rows, (TN-1)*SX + KW
// columns, zero outside the image) and reuses every value for all KH*KW taps that touch it: a 2x4 tile
// of a 3x3 stride-1 conv loads 24 values for 72 (pixel, tap) products, where an im2col column
// (conv2d_reg.wgsl) loads one value per product. The KH*KW weights of a row for channel c are the same for
// every invocation: they are loaded spread over the lanes of a subgroup (lane s loads rows s, s + SG, ...)
// and handed around with subgroupShuffle, as in conv2d_reg.wgsl (SG = 1, SHUFFLE = noshuffle without
// subgroups: each invocation loads its TM rows itself). Tiles are numbered down the columns, so the lanes
// of a subgroup mostly hold vertically adjacent tiles: for a 3-row stride-1 kernel (VS) a lane loads only
// its own TR rows of the window and takes the row above / below from its neighbour lanes (shuffles),
// loading them itself only where the neighbour is not the tile above / below (a subgroup's first and last
// lane, the top and bottom of a map): 16 instead of 24 loads per channel for a 2x4 tile. At stride 2 (VS2)
// the tile below starts at the window's last row, so a lane takes only row 0 from the lane above: 36
// instead of 45 loads for a 2x4 tile (1.06-1.19x on yolov3's and yolov4's downsampling convs on lavapipe).
//
// Why this shape on lavapipe (docs/kernels.md): every storage load is a loop over the SIMD lanes (~15
// instructions per lane), an FMA one vector multiply + add. The tile cuts the loads per FMA ~3x against
// conv2d_reg; and the order of the arithmetic (for each row i: for each pixel: all KH*KW taps) keeps each
// accumulator in a register for its KH*KW products, so it is loaded and stored once per channel instead of
// once per product. Register arrays only stay in registers when every loop indexing them is unrolled by
// the driver, so the taps and rows are straight-line code: the per-row work is a function called once per
// row with a constant argument (row(0u); if (TM > 1u) { row(1u); } ...), whose loops are small enough for
// NIR's unroller. Hence TM <= 32, KH, KW <= 3 (the op checks).
//
// Weights: row m's taps for input channel c at w[g*Mg*Cg*KH*KW + m*P.wrow + c*P.wcin + t], t reversed when
// P.wflip != 0. The forward passes Cg*KH*KW, KH*KW, 0; dx (src/tensor/ops/conv2d.ts tileBackwardData) runs
// this kernel on dy as the transposed conv and reads the forward's own weights with KH*KW, Cg*KH*KW, 1, so
// no flipped copy is made.
// Summation order per output: channels outer, taps (ky, kx) inner; conv2d_reg.wgsl sums taps outer,
// channels inner, so the two round differently (both within the float64 tests' tolerance).
// Epilogue: + bias (P.has_bias), activation P.act, written to channel Coff + g*Mg + m of a destination
// with Ctot channels (route/concat slices), as conv2d_reg.wgsl, at P.oplane / ooff / orow / ocol
// (lib/conv_params.wgsl: the conv's own map, or one output phase of a strided conv's dx). With P.pool_h > 0, Darknet's [maxpool]
// size=2 stride=2 (windows from 0; padding taps -FLT_MAX, i.e. conv outputs past OH / OW left out) is applied
// to the activated outputs before they are written: the destination is the pooled P.pool_h x P.pool_w map,
// the conv's own output is never stored (the op passes even TR and TN: a tile holds whole windows). A
// uniform rather than a define: one pipeline less per kernel shape (they are slow to create).
// ST: the storage type of x, w and y (f32, or f16 for inference: docs/kernels.md "f16 storage"); loads are
// converted to f32 as they enter the window / weight registers, the sums and the epilogue are f32, the store
// rounds to ST. The bias stays f32.

// #include "lib/conv_params.wgsl"
alias ST = {{ST}};
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> w: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

override WG: u32 = 64;

const TM: u32 = {{TM}}u;
const TR: u32 = {{TR}}u;
const TN: u32 = {{TN}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SY: u32 = {{SY}}u;
const SX: u32 = {{SX}}u;
// Subgroup size the weight sharing assumes (the adapter's fixed subgroup size, or 1).
const SG: u32 = {{SG}}u;
const NCH: u32 = (TM + SG - 1u) / SG;
const XR: u32 = (TR - 1u) * SY + KH;
const XC: u32 = (TN - 1u) * SX + KW;
const KHW: u32 = KH * KW;
const TP: u32 = TR * TN;
// the fused maxpool (P.pool_h > 0): window size and stride, pooled outputs per tile row and per tile (at
// least 1: constant divisors must not be 0, and the op never pools an odd tile)
const POOL: u32 = 2u;
const QN: u32 = max(TN / POOL, 1u);
const QR: u32 = max(TR / POOL, 1u);
const QP: u32 = QR * QN;
const NEG_FLT_MAX: f32 = bitcast<f32>(0xff7fffffu); // -FLT_MAX, Darknet's maxpool padding
// The window's top and bottom rows shared between vertically adjacent tiles (see the file comment).
const VS: bool = SG > 1u && SY == 1u && KH == 3u;
// The same at stride 2: the tile below starts at this window's last row (XR - 1 = 2 TR).
const VS2: bool = SG > 1u && SY == 2u && KH == 3u;

fn noshuffle(v: f32, l: u32) -> f32 { return v; }

// #include "lib/act.wgsl"

// Per invocation: the accumulators, the input window of the current channel, the weights this lane loaded
// for it (rows q*SG + lane, q < NCH).
var<private> acc: array<array<f32, TP>, TM>;
var<private> xt: array<f32, XR * XC>;
var<private> wl: array<array<f32, KHW>, NCH>;

// Row i of the block for the current channel: its KH*KW weights from the lane that loaded them, then every
// pixel of the tile accumulates its taps in a register.
fn row(i: u32) {
  var wv: array<f32, KHW>;
  for (var t = 0u; t < KHW; t++) { wv[t] = {{SHUFFLE}}(wl[i / SG][t], i % SG); }
  for (var r = 0u; r < TR; r++) {
    for (var j = 0u; j < TN; j++) {
      var a = acc[i][r * TN + j];
      for (var ky = 0u; ky < KH; ky++) {
        for (var kx = 0u; kx < KW; kx++) {
          a = fma(wv[ky * KW + kx], xt[(r * SY + ky) * XC + j * SX + kx], a);
        }
      }
      acc[i][r * TN + j] = a;
    }
  }
}

@compute @workgroup_size(WG)
fn fwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u{{SGARG}}) {
  let lane = {{SGLANE}};
  let g = wid.z;
  let m0 = wid.y * TM;
  let hw = P.H * P.W;
  let tilesY = (P.OH + TR - 1u) / TR;
  let tpi = tilesY * ((P.OW + TN - 1u) / TN);
  let total = P.B * tpi;
  // Invocations past the last tile compute a copy of it (uniform control flow for the shuffles) and store nothing.
  let tile = (wid.x + P.t0) * WG + lid.x;
  let t = min(tile, total - 1u);
  let b = t / tpi;
  let ty = (t % tpi) % tilesY;
  let oy0 = ty * TR;
  let ox0 = ((t % tpi) / tilesY) * TN;
  // VS, VS2: whether the lane below / above in the subgroup holds the tile right above / below this one (tile
  // numbers as f32: exact below 2^24, and a shuffle moves them unchanged)
  let tUp = {{SHUFFLE}}(f32(tile), (lane + SG - 1u) % SG);
  let tDown = {{SHUFFLE}}(f32(tile), (lane + 1u) % SG);
  let exact = (VS || VS2) && tile < 16777216u;
  let upShared = exact && lane > 0u && ty > 0u && tile < total && tUp + 1.0 == f32(tile);
  let downShared = exact && lane + 1u < SG && ty + 1u < tilesY && tile + 1u < total && tDown == f32(tile) + 1.0;

  // The window's rows and columns: clamped offsets and whether they lie inside the image (zero padding).
  var roff: array<u32, XR>;
  var rok: array<bool, XR>;
  for (var i = 0u; i < XR; i++) {
    let iy = i32(oy0 * SY + i) - i32(P.PY);
    rok[i] = iy >= 0 && iy < i32(P.H);
    roff[i] = u32(clamp(iy, 0, i32(P.H) - 1)) * P.W;
  }
  var cix: array<u32, XC>;
  var cok: array<bool, XC>;
  for (var j = 0u; j < XC; j++) {
    let ix = i32(ox0 * SX + j) - i32(P.PX);
    cok[j] = ix >= 0 && ix < i32(P.W);
    cix[j] = u32(clamp(ix, 0, i32(P.W) - 1));
  }
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TP; j++) { acc[i][j] = 0.0; }
  }
  // The weight rows this lane loads for its subgroup (rows past the group's end read the last row; their
  // results are never written).
  var wo: array<u32, NCH>;
  for (var q = 0u; q < NCH; q++) { wo[q] = g * P.Mg * P.Cg * KHW + min(m0 + min(q * SG + lane, TM - 1u), P.Mg - 1u) * P.wrow; }
  var xo = (b * P.Cin + g * P.Cg) * hw;
  for (var c = 0u; c < P.Cg; c++) {
    if (VS2) {
      // own rows 1..XR-1; row 0 = the upper neighbour's row XR-1
      for (var i = 1u; i < XR; i++) {
        for (var j = 0u; j < XC; j++) { xt[i * XC + j] = select(0.0, f32(x[xo + roff[i] + cix[j]]), rok[i] && cok[j]); }
      }
      for (var j = 0u; j < XC; j++) { xt[j] = {{SHUFFLE}}(xt[(XR - 1u) * XC + j], (lane + SG - 1u) % SG); }
      if (!upShared) {
        for (var j = 0u; j < XC; j++) { xt[j] = select(0.0, f32(x[xo + roff[0] + cix[j]]), rok[0] && cok[j]); }
      }
    } else if (VS) {
      // own rows 1..TR; row 0 = the upper neighbour's row TR, row TR+1 = the lower neighbour's row 1
      for (var i = 1u; i <= TR; i++) {
        for (var j = 0u; j < XC; j++) { xt[i * XC + j] = select(0.0, f32(x[xo + roff[i] + cix[j]]), rok[i] && cok[j]); }
      }
      for (var j = 0u; j < XC; j++) {
        xt[j] = {{SHUFFLE}}(xt[TR * XC + j], (lane + SG - 1u) % SG);
        xt[(XR - 1u) * XC + j] = {{SHUFFLE}}(xt[XC + j], (lane + 1u) % SG);
      }
      if (!upShared) {
        for (var j = 0u; j < XC; j++) { xt[j] = select(0.0, f32(x[xo + roff[0] + cix[j]]), rok[0] && cok[j]); }
      }
      if (!downShared) {
        for (var j = 0u; j < XC; j++) { xt[(XR - 1u) * XC + j] = select(0.0, f32(x[xo + roff[XR - 1u] + cix[j]]), rok[XR - 1u] && cok[j]); }
      }
    } else {
      for (var i = 0u; i < XR; i++) {
        for (var j = 0u; j < XC; j++) { xt[i * XC + j] = select(0.0, f32(x[xo + roff[i] + cix[j]]), rok[i] && cok[j]); }
      }
    }
    for (var q = 0u; q < NCH; q++) {
      for (var k = 0u; k < KHW; k++) { wl[q][k] = f32(w[wo[q] + select(k, KHW - 1u - k, P.wflip != 0u)]); }
      wo[q] += P.wcin;
    }
    row(0u);
    if (TM > 1u) { row(1u); } if (TM > 2u) { row(2u); } if (TM > 3u) { row(3u); }
    if (TM > 4u) { row(4u); } if (TM > 5u) { row(5u); } if (TM > 6u) { row(6u); } if (TM > 7u) { row(7u); }
    if (TM > 8u) { row(8u); } if (TM > 9u) { row(9u); } if (TM > 10u) { row(10u); } if (TM > 11u) { row(11u); }
    if (TM > 12u) { row(12u); } if (TM > 13u) { row(13u); } if (TM > 14u) { row(14u); } if (TM > 15u) { row(15u); }
    if (TM > 16u) { row(16u); } if (TM > 17u) { row(17u); } if (TM > 18u) { row(18u); } if (TM > 19u) { row(19u); }
    if (TM > 20u) { row(20u); } if (TM > 21u) { row(21u); } if (TM > 22u) { row(22u); } if (TM > 23u) { row(23u); }
    if (TM > 24u) { row(24u); } if (TM > 25u) { row(25u); } if (TM > 26u) { row(26u); } if (TM > 27u) { row(27u); }
    if (TM > 28u) { row(28u); } if (TM > 29u) { row(29u); } if (TM > 30u) { row(30u); } if (TM > 31u) { row(31u); }
    xo += hw;
  }

  // Epilogue. Leaky and linear (the common YOLO case): a run-time loop over the rows (one copy of the store
  // code), the pixels of a row unrolled, the row's bias loaded once, v > 0 ? v : k*v (k = 0.1 or 1: bit for
  // bit act_code's). Any other activation: a loop over the values with a run-time trip count (one copy of
  // act_code). Measured on lavapipe, the first made a 3x3 conv with 3 input channels 1.4-1.5x faster.
  let rows = select(0u, min(TM, P.Mg - m0), tile < total);
  var res: array<f32, TM * TP>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TP; j++) { res[i * TP + j] = acc[i][j]; }
  }
  if (P.act == ACT_LEAKY || P.act == ACT_LINEAR) {
    let k = select(1.0, 0.1, P.act == ACT_LEAKY);
    let co0 = g * P.Mg + m0;
    var rowok: array<bool, TR>;
    var colok: array<bool, TN>;
    for (var r = 0u; r < TR; r++) { rowok[r] = oy0 + r < P.OH; }
    for (var j = 0u; j < TN; j++) { colok[j] = ox0 + j < P.OW; }
    if (P.pool_h > 0u) {
      let plane = P.pool_h * P.pool_w;
      var qrowok: array<bool, QR>;
      var qcolok: array<bool, QN>;
      for (var r = 0u; r < QR; r++) { qrowok[r] = oy0 / POOL + r < P.pool_h; }
      for (var j = 0u; j < QN; j++) { qcolok[j] = ox0 / POOL + j < P.pool_w; }
      var base = (b * P.Ctot + P.Coff + co0) * plane + (oy0 / POOL) * P.pool_w + ox0 / POOL;
      for (var i = 0u; i < rows; i++) {
        let bv = select(0.0, bias[co0 + i], P.has_bias != 0u);
        var v: array<f32, TP>;
        for (var j = 0u; j < TP; j++) {
          let s = res[i * TP + j] + bv;
          v[j] = select(k * s, s, s > 0.0);
        }
        for (var qr = 0u; qr < QR; qr++) {
          for (var qj = 0u; qj < QN; qj++) {
            var best = NEG_FLT_MAX;
            for (var dy = 0u; dy < POOL; dy++) {
              for (var dx = 0u; dx < POOL; dx++) {
                let t = (qr * POOL + dy) * TN + qj * POOL + dx;
                best = select(best, v[t], rowok[qr * POOL + dy] && colok[qj * POOL + dx] && v[t] > best);
              }
            }
            if (qrowok[qr] && qcolok[qj]) { y[base + qr * P.pool_w + qj] = ST(best); }
          }
        }
        base += plane;
      }
      return;
    }
    var base = (b * P.Ctot + P.Coff + co0) * P.oplane + P.ooff + oy0 * P.orow + ox0 * P.ocol;
    for (var i = 0u; i < rows; i++) {
      let bv = select(0.0, bias[co0 + i], P.has_bias != 0u);
      for (var r = 0u; r < TR; r++) {
        for (var j = 0u; j < TN; j++) {
          let s = res[i * TP + r * TN + j] + bv;
          if (rowok[r] && colok[j]) { y[base + r * P.orow + j * P.ocol] = ST(select(k * s, s, s > 0.0)); }
        }
      }
      base += P.oplane;
    }
    return;
  }
  if (P.pool_h > 0u) {
    // one pooled output per (row, window) of the tile: the max of its activated conv outputs inside the map
    let qhw = P.pool_h * P.pool_w;
    for (var e = 0u; e < rows * QP; e++) {
      let qy = oy0 / POOL + (e % QP) / QN;
      let qx = ox0 / POOL + (e % QP) % QN;
      if (qy >= P.pool_h || qx >= P.pool_w) { continue; }
      let co = g * P.Mg + m0 + e / QP;
      let bv = select(0.0, bias[co], P.has_bias != 0u);
      var best = NEG_FLT_MAX;
      for (var dy = 0u; dy < POOL; dy++) {
        for (var dx = 0u; dx < POOL; dx++) {
          let oy = qy * POOL + dy;
          let ox = qx * POOL + dx;
          if (oy >= P.OH || ox >= P.OW) { continue; }
          let v = act_code(res[(e / QP) * TP + (oy - oy0) * TN + ox - ox0] + bv, P.act);
          if (v > best) { best = v; }
        }
      }
      y[(b * P.Ctot + P.Coff + co) * qhw + qy * P.pool_w + qx] = ST(best);
    }
    return;
  }
  for (var e = 0u; e < rows * TP; e++) {
    let oy = oy0 + (e % TP) / TN;
    let ox = ox0 + (e % TP) % TN;
    if (oy >= P.OH || ox >= P.OW) { continue; }
    let co = g * P.Mg + m0 + e / TP;
    var v = res[e];
    if (P.has_bias != 0u) { v += bias[co]; }
    y[(b * P.Ctot + P.Coff + co) * P.oplane + P.ooff + oy * P.orow + ox * P.ocol] = ST(act_code(v, P.act));
  }
}
