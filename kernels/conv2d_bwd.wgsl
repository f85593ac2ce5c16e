{{ENABLE}}
// @defaults ENABLE= SG=1 SGARG= SGLANE=0u SHUFFLE=noshuffle TM=4 TN=4
// Register-blocked backward passes of 2-D convolution with plain global loads (no workgroup memory): the
// gemm_reg flavour of conv2d_gemm.wgsl MODE 1 / 2, for CPU adapters. Same layout as conv2d_reg.wgsl: a
// workgroup owns TM rows (uniform loads of the row operand), invocation l computes TM x TN outputs at
// columns l, l + WG, ... (gathers of the column operand, reused TM times).
//
// data:    dx[b, g*Cg + c, iy, ix] = sum over co in group, ky, kx of w[co, c, ky, kx] * dy[b, co, oy, ox]
//          with oy*SY = iy + PY - ky*DY (only exact multiples count). Stride phases: workgroup_id.z =
//          g * SY*SX + ry*SX + rx handles the pixels iy = ry + SY*u, ix = rx + SX*v, for which the (ky, kx)
//          taps that land on the stride grid are the same for every invocation, so taps off the grid are
//          skipped by a uniform branch instead of being computed and masked (4x less work at stride 2).
// weights: dw[g*Mg + m, k] = sum over r = (b, oy, ox) of dy[b, g*Mg + m, oy, ox] * x[b, g*Cg + c, iy, ix],
//          k = (c, ky, kx); the reduction may be split into P.S chunks of P.chunk (workgroup_id.z =
//          s * G + g) written to dst[s * Cout*K + ...] and summed by conv2d_direct.wgsl:reduce_split.
// The row operand (w for data, dy for weights) is the same for every invocation of a workgroup: it is
// loaded spread over the lanes of a subgroup and handed around with subgroupShuffle (see conv2d_reg.wgsl).

// #include "lib/conv_params.wgsl"
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src0: array<f32>;
@group(0) @binding(2) var<storage, read> src1: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const SG: u32 = {{SG}}u;
const NCH: u32 = (TM + SG - 1u) / SG;

fn noshuffle(v: f32, l: u32) -> f32 { return v; }

// src0 = dy, src1 = w, dst = dx.
@compute @workgroup_size(WG)
fn data(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u{{SGARG}}) {
  let lane = {{SGLANE}};
  let nph = P.SY * P.SX;
  let g = wid.z / nph;
  let ph = wid.z % nph;
  let ry = ph / P.SX;
  let rx = ph % P.SX;
  let Hp = (P.H + P.SY - 1u) / P.SY;
  let Wp = (P.W + P.SX - 1u) / P.SX;
  let hwp = Hp * Wp;
  let N = P.B * hwp;
  let m0 = wid.y * TM;
  let ohw = P.OH * P.OW;
  let khw = P.KH * P.KW;
  let nbase = (wid.x + P.t0) * WG * TN + lid.x;

  var u: array<i32, TN>;
  var v: array<i32, TN>;
  var yo: array<u32, TN>;
  for (var j = 0u; j < TN; j++) {
    let n = min(nbase + j * WG, N - 1u);
    let b = n / hwp;
    let q = n % hwp;
    u[j] = i32(q / Wp);
    v[j] = i32(q % Wp);
    yo[j] = (b * P.Cout + g * P.Mg) * ohw;
  }
  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; }
  }
  // Weight rows (input channels) this lane loads for its subgroup.
  var wrow: array<u32, NCH>;
  for (var q = 0u; q < NCH; q++) { wrow[q] = (g * P.Mg * P.Cg + min(m0 + min(q * SG + lane, TM - 1u), P.Cg - 1u)) * khw; }
  let wco = P.Cg * khw;

  // ty = iy + PY - ky*DY = SY*u + (ry + PY - ky*DY): on the grid iff the bracket is a multiple of SY.
  // The bias keeps the bracket non-negative for the modulo (ky*DY < KH*DY).
  let bias_y = i32(((P.KH * P.DY) / P.SY + 1u) * P.SY);
  let bias_x = i32(((P.KW * P.DX) / P.SX + 1u) * P.SX);
  for (var ky = 0u; ky < P.KH; ky++) {
    let ty = i32(ry + P.PY) - i32(ky * P.DY);
    if (u32(ty + bias_y) % P.SY != 0u) { continue; }
    let dyo = (ty + bias_y) / i32(P.SY) - bias_y / i32(P.SY);
    for (var kx = 0u; kx < P.KW; kx++) {
      let tx = i32(rx + P.PX) - i32(kx * P.DX);
      if (u32(tx + bias_x) % P.SX != 0u) { continue; }
      let dxo = (tx + bias_x) / i32(P.SX) - bias_x / i32(P.SX);
      var off: array<u32, TN>;
      var ok: array<bool, TN>;
      for (var j = 0u; j < TN; j++) {
        let oy = u[j] + dyo;
        let ox = v[j] + dxo;
        ok[j] = oy >= 0 && oy < i32(P.OH) && ox >= 0 && ox < i32(P.OW);
        off[j] = yo[j] + u32(oy) * P.OW + u32(ox);
      }
      let tap = ky * P.KW + kx;
      for (var co = 0u; co < P.Mg; co++) {
        var d: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
          d[j] = 0.0;
          if (ok[j]) { d[j] = src0[off[j] + co * ohw]; }
        }
        var wl: array<f32, NCH>;
        for (var q = 0u; q < NCH; q++) { wl[q] = src1[wrow[q] + co * wco + tap]; }
        for (var i = 0u; i < TM; i++) {
          let wv = {{SHUFFLE}}(wl[i / SG], i % SG);
          for (var j = 0u; j < TN; j++) { acc[i][j] = fma(wv, d[j], acc[i][j]); }
        }
      }
    }
  }

  // Epilogue as a loop with a run-time trip count (not unrolled; see conv2d_reg.wgsl).
  var res: array<f32, TM * TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { res[i * TN + j] = acc[i][j]; }
  }
  let hw = P.H * P.W;
  let rows = min(TM, P.Cg - m0);
  for (var t = 0u; t < rows * TN; t++) {
    let n = nbase + (t % TN) * WG;
    if (n >= N) { continue; }
    let b = n / hwp;
    let q = n % hwp;
    let iy = ry + P.SY * (q / Wp);
    let ix = rx + P.SX * (q % Wp);
    if (iy >= P.H || ix >= P.W) { continue; }
    dst[((b * P.Cin + g * P.Cg + m0 + t / TN) * hw) + iy * P.W + ix] = res[t];
  }
}

// src0 = x, src1 = dy, dst = dw (or the split partials).
@compute @workgroup_size(WG)
fn weights(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u{{SGARG}}) {
  let lane = {{SGLANE}};
  let g = wid.z % P.G;
  let s = wid.z / P.G;
  let khw = P.KH * P.KW;
  let K = P.Cg * khw;
  let m0 = wid.y * TM;
  let hw = P.H * P.W;
  let ohw = P.OH * P.OW;
  let R = P.B * ohw;
  let rbeg = s * P.chunk;
  let rend = min(R, rbeg + P.chunk);
  let nbase = (wid.x + P.t0) * WG * TN + lid.x;

  var xb: array<u32, TN>;
  var ky0: array<i32, TN>;
  var kx0: array<i32, TN>;
  for (var j = 0u; j < TN; j++) {
    let n = min(nbase + j * WG, K - 1u);
    let c = n / khw;
    let r = n % khw;
    xb[j] = (g * P.Cg + c) * hw;
    ky0[j] = i32((r / P.KW) * P.DY) - i32(P.PY);
    kx0[j] = i32((r % P.KW) * P.DX) - i32(P.PX);
  }
  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; }
  }
  // dy rows (output channels) this lane loads for its subgroup.
  var yrow: array<u32, NCH>;
  for (var q = 0u; q < NCH; q++) { yrow[q] = (g * P.Mg + min(m0 + min(q * SG + lane, TM - 1u), P.Mg - 1u)) * ohw; }

  if (rbeg < rend) {
    var b = rbeg / ohw;
    var p = rbeg % ohw;
    var oy = p / P.OW;
    var ox = p % P.OW;
    for (var r = rbeg; r < rend; r++) {
      let xo = b * P.Cin * hw;
      let yo = b * P.Cout * ohw + p;
      let iyb = i32(oy * P.SY);
      let ixb = i32(ox * P.SX);
      var xv: array<f32, TN>;
      for (var j = 0u; j < TN; j++) {
        let iy = iyb + ky0[j];
        let ix = ixb + kx0[j];
        xv[j] = 0.0;
        if (iy >= 0 && iy < i32(P.H) && ix >= 0 && ix < i32(P.W)) { xv[j] = src0[xo + xb[j] + u32(iy) * P.W + u32(ix)]; }
      }
      var dl: array<f32, NCH>;
      for (var q = 0u; q < NCH; q++) { dl[q] = src1[yo + yrow[q]]; }
      for (var i = 0u; i < TM; i++) {
        let d = {{SHUFFLE}}(dl[i / SG], i % SG);
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(d, xv[j], acc[i][j]); }
      }
      p++;
      ox++;
      if (ox == P.OW) {
        ox = 0u;
        oy++;
        if (oy == P.OH) { oy = 0u; p = 0u; b++; }
      }
    }
  }

  var res: array<f32, TM * TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { res[i * TN + j] = acc[i][j]; }
  }
  let rows = min(TM, P.Mg - m0);
  for (var t = 0u; t < rows * TN; t++) {
    let n = nbase + (t % TN) * WG;
    if (n >= K) { continue; }
    dst[s * P.Cout * K + (g * P.Mg + m0 + t / TN) * K + n] = res[t];
  }
}
