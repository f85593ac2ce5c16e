// Tiled implicit GEMM for 2-D convolution, forward and both backward passes (MODE), the layout real GPUs
// like: a 16x16 workgroup computes a BM x BN = 64x64 block of C, staging BK = 16 deep slices of A and B in
// workgroup memory as vec4 (barriers around each), and every invocation keeps a 4x4 register block of C
// (rows 4*ty + i, columns 4*tx + j), reading one vec4 of A and one of B per step of k.
//
// Per group g, C[m, n] = sum_k A[m, k] * B[k, n]; nothing is materialized (im2col happens in the loads):
//   MODE 0 forward:        m = co in group (Mg), n = (b, oy, ox),  k = (c, ky, kx)      A = w,   B = x
//   MODE 1 backward data:  m = c in group (Cg),  n = (b, iy, ix),  k = (co, ky, kx)     A = w^T, B = dy
//   MODE 2 backward weights: m = co (Mg),        n = (c, ky, kx),  k = (b, oy, ox)      A = dy,  B = x
// MODE 2 may split the reduction over k into P.S chunks of P.chunk (workgroup_id.z = s * G + g) writing
// partial sums to dst[s * Cout*Cg*KH*KW + ...]; conv2d_direct.wgsl:reduce_split adds them up.
// Bindings: src0 = B operand (x or dy), src1 = A operand (w or dy), src2 = bias (MODE 0), dst = output.
// Epilogue (MODE 0): + bias when P.has_bias, activation P.act (an ACT_* code, src/tensor/ops/act_codes.ts).
// ST: the storage type of src0, src1 and dst (f32, or f16 for the inference forward: docs/kernels.md "f16
// storage"): loads converted to f32 before the workgroup tiles, sums in f32, the store rounds to ST.

// #include "lib/conv_params.wgsl"
alias ST = {{ST}};
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src0: array<ST>;
@group(0) @binding(2) var<storage, read> src1: array<ST>;
@group(0) @binding(3) var<storage, read> src2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<ST>;

override MODE: u32 = 0;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;

// As[k * 16 + r] = A rows 4r .. 4r+3 at depth k; Bs[k * 16 + c] = B columns 4c .. 4c+3 at depth k.
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

// #include "lib/act.wgsl"
fn act(v: f32) -> f32 { return act_code(v, P.act); }

// A[m, k] of group g (m < M and k in range: checked by the caller).
fn loadA(g: u32, m: u32, k: u32) -> f32 {
  let khw = P.KH * P.KW;
  switch MODE {
    case 1u: {
      let co = k / khw;
      return f32(src1[((g * P.Mg + co) * P.Cg + m) * khw + k % khw]);
    }
    case 2u: {
      let ohw = P.OH * P.OW;
      return f32(src1[((k / ohw) * P.Cout + g * P.Mg + m) * ohw + k % ohw]);
    }
    default: {
      return f32(src1[(g * P.Mg + m) * (P.Cg * khw) + k]);
    }
  }
}

// The per-column part of B[k, n], computed once per invocation (its column is fixed).
struct Col { base: u32, y0: i32, x0: i32, }

fn column(g: u32, n: u32) -> Col {
  switch MODE {
    case 1u: {
      // n = (b, iy, ix); base of dy[b, g*Mg, :, :]; (iy + PY, ix + PX)
      let hw = P.H * P.W;
      let b = n / hw;
      let q = n % hw;
      return Col((b * P.Cout + g * P.Mg) * P.OH * P.OW, i32(q / P.W + P.PY), i32(q % P.W + P.PX));
    }
    case 2u: {
      // n = (c, ky, kx); base of x[0, g*Cg + c, :, :]; (ky*DY - PY, kx*DX - PX)
      let khw = P.KH * P.KW;
      let c = n / khw;
      let r = n % khw;
      return Col((g * P.Cg + c) * P.H * P.W, i32((r / P.KW) * P.DY) - i32(P.PY), i32((r % P.KW) * P.DX) - i32(P.PX));
    }
    default: {
      // n = (b, oy, ox); base of x[b, g*Cg, :, :]; (oy*SY - PY, ox*SX - PX)
      let ohw = P.OH * P.OW;
      let b = n / ohw;
      let p = n % ohw;
      return Col((b * P.Cin + g * P.Cg) * P.H * P.W, i32((p / P.OW) * P.SY) - i32(P.PY), i32((p % P.OW) * P.SX) - i32(P.PX));
    }
  }
}

// B[k, n] given the column's Col (0 outside the image / off the stride grid).
fn loadB(cl: Col, k: u32) -> f32 {
  let khw = P.KH * P.KW;
  switch MODE {
    case 1u: {
      let co = k / khw;
      let r = k % khw;
      let ty = cl.y0 - i32((r / P.KW) * P.DY);
      let tx = cl.x0 - i32((r % P.KW) * P.DX);
      if (ty < 0 || tx < 0) { return 0.0; }
      let oy = u32(ty) / P.SY;
      let ox = u32(tx) / P.SX;
      if (oy * P.SY != u32(ty) || ox * P.SX != u32(tx) || oy >= P.OH || ox >= P.OW) { return 0.0; }
      return f32(src0[cl.base + co * P.OH * P.OW + oy * P.OW + ox]);
    }
    case 2u: {
      let ohw = P.OH * P.OW;
      let b = k / ohw;
      let p = k % ohw;
      let iy = cl.y0 + i32((p / P.OW) * P.SY);
      let ix = cl.x0 + i32((p % P.OW) * P.SX);
      if (iy < 0 || iy >= i32(P.H) || ix < 0 || ix >= i32(P.W)) { return 0.0; }
      return f32(src0[b * P.Cin * P.H * P.W + cl.base + u32(iy) * P.W + u32(ix)]);
    }
    default: {
      let c = k / khw;
      let r = k % khw;
      let iy = cl.y0 + i32((r / P.KW) * P.DY);
      let ix = cl.x0 + i32((r % P.KW) * P.DX);
      if (iy < 0 || iy >= i32(P.H) || ix < 0 || ix >= i32(P.W)) { return 0.0; }
      return f32(src0[cl.base + c * P.H * P.W + u32(iy) * P.W + u32(ix)]);
    }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let g = wid.z % P.G;
  let s = wid.z / P.G;
  let khw = P.KH * P.KW;
  var M: u32;
  var N: u32;
  var kbeg = 0u;
  var kend: u32;
  switch MODE {
    case 1u: { M = P.Cg; N = P.B * P.H * P.W; kend = P.Mg * khw; }
    case 2u: {
      M = P.Mg; N = P.Cg * khw;
      kbeg = s * P.chunk;
      kend = min(P.B * P.OH * P.OW, kbeg + P.chunk);
    }
    default: { M = P.Mg; N = P.B * P.OH * P.OW; kend = P.Cg * khw; }
  }
  let m0 = wid.y * BM;
  let n0 = (wid.x + P.t0) * BN;
  // Compute role: rows m0 + 4*ty + i, columns n0 + 4*tx + j.
  let tx = t % 16u;
  let ty = t / 16u;
  // Loader roles: A rows m0 + 4*la + i at depth lk; B columns n0 + 4*la + j at depth lk.
  let lk = t % BK;
  let la = t / BK;
  var cl: array<Col, 4>;
  for (var j = 0u; j < 4u; j++) { cl[j] = column(g, min(n0 + 4u * la + j, N - 1u)); }

  var acc: array<vec4<f32>, TM>;
  for (var k0 = kbeg; k0 < kend; k0 += BK) {
    let k = k0 + lk;
    var a = vec4<f32>(0.0);
    var v = vec4<f32>(0.0);
    if (k < kend) {
      for (var i = 0u; i < 4u; i++) {
        let m = m0 + 4u * la + i;
        if (m < M) { a[i] = loadA(g, m, k); }
        if (n0 + 4u * la + i < N) { v[i] = loadB(cl[i], k); }
      }
    }
    As[lk * 16u + la] = a;
    Bs[lk * 16u + la] = v;
    workgroupBarrier();
    // P.kt == BK; a run-time bound keeps CPU compilers from unrolling this loop (2.5x shorter LLVM
    // compile on lavapipe; real GPUs lose little, the body is 2 vec4 loads + 16 FMAs).
    for (var kk = 0u; kk < P.kt; kk++) {
      let av = As[kk * 16u + ty];
      let bv = Bs[kk * 16u + tx];
      for (var i = 0u; i < TM; i++) { acc[i] = fma(vec4<f32>(av[i]), bv, acc[i]); }
    }
    workgroupBarrier();
  }

  // Epilogue as a loop with a run-time trip count (not unrolled: one copy of the store code; on CPU
  // adapters every store is a per-lane loop and the unrolled form dominated compile time).
  var res: array<f32, TM * TN>;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { res[i * TN + j] = acc[i][j]; }
  }
  let rows = min(TM, M - min(M, m0 + 4u * ty));
  for (var t2 = 0u; t2 < rows * TN; t2++) {
    let i = t2 / TN;
    let j = t2 % TN;
    let m = m0 + 4u * ty + i;
    let n = n0 + 4u * tx + j;
    if (n >= N) { continue; }
    let r = res[t2];
    switch MODE {
      case 1u: {
        let hw = P.H * P.W;
        dst[((n / hw) * P.Cin + g * P.Cg + m) * hw + n % hw] = ST(r);
      }
      case 2u: {
        dst[s * P.Cout * N + (g * P.Mg + m) * N + n] = ST(r);
      }
      default: {
        let ohw = P.OH * P.OW;
        let co = g * P.Mg + m;
        var o = r;
        if (P.has_bias != 0u) { o += src2[co]; }
        dst[((n / ohw) * P.Ctot + P.Coff + co) * ohw + n % ohw] = ST(act(o));
      }
    }
  }
}
