{{ENABLE}}
// @defaults ENABLE= SG=1 SGARG= SGLANE=0u SHUFFLE=noshuffle TM=4 TN=4
// Implicit-GEMM 2-D convolution with register blocking and plain global loads (no workgroup memory, no
// barriers): the fast forward on CPU adapters (lavapipe / llvmpipe), where workgroup tiles + barriers cost
// more than they save.
//
// Per group g (workgroup_id.z): C[m, n] = sum_k A[m, k] * B[k, n] with
//   m = output channel within the group (M = Cout/G), n = (b, oy, ox) (N = B*OH*OW),
//   k = (c, ky, kx) (K = Cg*KH*KW), A = weights (OIHW rows), B = im2col(x), never materialized.
// A workgroup owns TM output channels (workgroup_id.y) and WG*TN columns; invocation l computes the TM x TN
// block of columns l, l + WG, ... . Each x value is reused TM times and each weight TN times from registers.
//
// On lavapipe every storage-buffer load costs a per-lane loop (~10x an FMA), uniform addresses included,
// while a subgroup shuffle is a register move. So the TM weights of a step, the same for every invocation,
// are loaded spread over the lanes of a subgroup (lane s loads row q*SG + s) and handed around with
// subgroupShuffle: ceil(TM/SG) loads instead of TM. Without subgroups (SG = 1, SHUFFLE = noshuffle) each
// invocation loads all TM itself.
// Epilogue: + bias (P.has_bias), activation P.act (an ACT_* code, src/tensor/ops/act_codes.ts), written to channel Coff + g*M + m of a destination with Ctot channels.
// ST: the storage type of x, w and y (f32, or f16 for inference: docs/kernels.md "f16 storage"): loads
// converted to f32, sums and epilogue in f32, the store rounds to ST; the bias stays f32.

// #include "lib/conv_params.wgsl"
alias ST = {{ST}};
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read> w: array<ST>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<ST>;

override WG: u32 = 64;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
// Subgroup size the weight sharing assumes (the adapter's fixed subgroup size, or 1).
const SG: u32 = {{SG}}u;
const NCH: u32 = (TM + SG - 1u) / SG;

fn noshuffle(v: f32, l: u32) -> f32 { return v; }

// #include "lib/act.wgsl"
fn act(v: f32) -> f32 { return act_code(v, P.act); }

@compute @workgroup_size(WG)
fn fwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u{{SGARG}}) {
  let lane = {{SGLANE}};
  let g = wid.z;
  let m0 = wid.y * TM;
  let ohw = P.OH * P.OW;
  let hw = P.H * P.W;
  let N = P.B * ohw;
  let K = P.Cg * P.KH * P.KW;
  let nbase = (wid.x + P.t0) * WG * TN + lid.x;

  // Column j: x offset of channel 0 of the group, top-left input position.
  var xo: array<u32, TN>;
  var iy0: array<i32, TN>;
  var ix0: array<i32, TN>;
  for (var j = 0u; j < TN; j++) {
    let n = min(nbase + j * WG, N - 1u);
    let b = n / ohw;
    let p = n % ohw;
    xo[j] = (b * P.Cin + g * P.Cg) * hw;
    iy0[j] = i32((p / P.OW) * P.SY) - i32(P.PY);
    ix0[j] = i32((p % P.OW) * P.SX) - i32(P.PX);
  }
  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; }
  }
  // The weight rows this lane loads for its subgroup (rows past the group's end read the last row; their
  // results are never written).
  var wrow: array<u32, NCH>;
  for (var q = 0u; q < NCH; q++) { wrow[q] = (g * P.Mg + min(m0 + min(q * SG + lane, TM - 1u), P.Mg - 1u)) * K; }

  // Taps outer, channels inner: each column's input offset and padding test are computed once per tap,
  // the channel loop only steps the offset by H*W (and the weights by KH*KW).
  let khw = P.KH * P.KW;
  for (var ky = 0u; ky < P.KH; ky++) {
    for (var kx = 0u; kx < P.KW; kx++) {
      var off: array<u32, TN>;
      var ok: array<bool, TN>;
      for (var j = 0u; j < TN; j++) {
        let iy = iy0[j] + i32(ky * P.DY);
        let ix = ix0[j] + i32(kx * P.DX);
        ok[j] = iy >= 0 && iy < i32(P.H) && ix >= 0 && ix < i32(P.W);
        off[j] = xo[j] + u32(select(0, iy * i32(P.W) + ix, ok[j]));
      }
      var wk = ky * P.KW + kx;
      for (var c = 0u; c < P.Cg; c++) {
        var v: array<f32, TN>;
        for (var j = 0u; j < TN; j++) {
          v[j] = 0.0;
          v[j] = select(0.0, f32(x[off[j]]), ok[j]);
          off[j] += hw;
        }
        var wl: array<f32, NCH>;
        for (var q = 0u; q < NCH; q++) { wl[q] = f32(w[wrow[q] + wk]); }
        for (var i = 0u; i < TM; i++) {
          let wv = {{SHUFFLE}}(wl[i / SG], i % SG);
          for (var j = 0u; j < TN; j++) { acc[i][j] = fma(wv, v[j], acc[i][j]); }
        }
        wk += khw;
      }
    }
  }

  // Epilogue as a loop with a run-time trip count, so it is not unrolled: one copy of the bias, activation
  // and store code instead of TM*TN (on lavapipe every store is a per-lane loop; unrolled, the epilogue
  // dominated LLVM compile time).
  var res: array<f32, TM * TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { res[i * TN + j] = acc[i][j]; }
  }
  let rows = min(TM, P.Mg - m0);
  for (var t = 0u; t < rows * TN; t++) {
    let n = nbase + (t % TN) * WG;
    if (n >= N) { continue; }
    let co = g * P.Mg + m0 + t / TN;
    var r = res[t];
    if (P.has_bias != 0u) { r += bias[co]; }
    y[((n / ohw) * P.Ctot + P.Coff + co) * ohw + n % ohw] = ST(act(r));
  }
}
