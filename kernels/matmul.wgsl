{{ENABLE}}
// @defaults ENABLE= SGB=/* SGE=*/ SG=1 TM=4 TN=4 TNV=1 BK=8 BM=32 BN4=8 NT=64
// Batched matrix multiply, float32:  C[z] = alpha * op(A[z]) x op(B[z]) + beta * C[z]
//   op(A) is M x K, op(B) is K x N, C is M x N row-major (batch z = workgroup_id.z).
// A is addressed as A[abase + m*sam + k*sak] and B as B[bbase + k*sbk + n*sbn], so a transposed operand is
// just other strides (row-major A: sam = K, sak = 1; A^T stored [K, M]: sam = 1, sak = M).
//
// Entry points (src/tensor/ops/matmul.ts picks one):
//   reg    plain global loads, register blocking: every invocation owns TM rows x TN columns of C, rows
//          lid.y + i*WGY and columns lid.x + j*WGX of the workgroup's tile (neighbouring invocations touch
//          neighbouring columns). Any strides (transposes), any sizes.
//   reg4   the same with vec4 loads and stores: row-major A and B only, K % 4 == 0 and N % 4 == 0; every
//          invocation owns TM rows x TNV vec4 columns; per 4 k-steps it loads TM vec4 of A and 4*TNV vec4 of B.
//   tiled  workgroup-memory tiles: the workgroup stages a BM x BK tile of A and a BK x BN tile of B in
//          workgroup memory (zero-padded at the edges), then every invocation accumulates TM x TNV vec4 from
//          it. BM = WGY*TM, BN = WGX*TNV*4. Any strides, any sizes.
//   regsg  reg4 where the workgroup is one subgroup whose lanes own neighbouring vec4 columns and share the
//          TM rows of A: per k-step every lane loads TM/SG values of A (one row each) and receives the
//          others with subgroupShuffle, instead of every lane loading all TM. On CPU adapters (lavapipe), where
//          each lane's load is a scalar load with its own bounds check, this cuts the loads per FMA ~4x. Only
//          compiled where the device has the 'subgroups' feature (see SGB below); row-major A and B,
//          K % 4 == 0, N % 4 == 0, TM % SG == 0. B may instead be stored in column panels (P.bp4: one
//          workgroup's SG * TNV vec4 columns for every k in one contiguous block; src/tensor/ops/matmul.ts
//          matmulPanels), which streams in order where row-major B is read 128 bytes per N*4 bytes.
// Out-of-range rows/columns are clamped on load (branch-free) and skipped on store.
//
// Specialization: TM, TN (reg), TNV (reg4, tiled, regsg), BK, BM, BN4, NT (tiled), SG (regsg) are template
// defines (they size register and workgroup arrays); WGX, WGY are override constants. ENABLE is
// 'enable subgroups;' or empty, SGB/SGE are empty where the device has subgroups and otherwise open and
// close a block comment around the regsg section, so that the module compiles on devices without them
// (every entry point of a module must be valid WGSL).

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  sam: u32, sak: u32, sbk: u32, sbn: u32,
  // batch strides in elements (reg4: multiples of 4)
  bsa: u32, bsb: u32, bsc: u32,
  alpha: f32, beta: f32,
  // regsg: B stored in column panels of bp4 vec4 (= SG * TNV, one workgroup's columns), [batch][N/4/bp4][K][bp4]
  // vec4; 0: row-major B
  bp4: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@group(0) @binding(4) var<storage, read> A4: array<vec4f>;
@group(0) @binding(5) var<storage, read> B4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> C4: array<vec4f>;

override WGX: u32 = 8;
override WGY: u32 = 8;

// ------------------------------------------------------------------------------------------------ reg

const RTM: u32 = {{TM}};
const RTN: u32 = {{TN}};

@compute @workgroup_size(WGX, WGY)
fn reg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let row0 = wid.y * (WGY * RTM) + lid.y;
  let col0 = wid.x * (WGX * RTN) + lid.x;
  if (row0 >= P.M || col0 >= P.N) { return; }
  let z = wid.z;
  var aoff: array<u32, RTM>;
  var boff: array<u32, RTN>;
  for (var i = 0u; i < RTM; i++) { aoff[i] = z * P.bsa + min(row0 + i * WGY, P.M - 1u) * P.sam; }
  for (var j = 0u; j < RTN; j++) { boff[j] = z * P.bsb + min(col0 + j * WGX, P.N - 1u) * P.sbn; }
  var acc: array<f32, RTM * RTN>;
  var a: array<f32, RTM>;
  var b: array<f32, RTN>;
  var ka = 0u;
  var kb = 0u;
  for (var k = 0u; k < P.K; k++) {
    for (var i = 0u; i < RTM; i++) { a[i] = A[aoff[i] + ka]; }
    for (var j = 0u; j < RTN; j++) { b[j] = B[boff[j] + kb]; }
    for (var i = 0u; i < RTM; i++) {
      for (var j = 0u; j < RTN; j++) { acc[i * RTN + j] = fma(a[i], b[j], acc[i * RTN + j]); }
    }
    ka += P.sak;
    kb += P.sbk;
  }
  for (var i = 0u; i < RTM; i++) {
    let r = row0 + i * WGY;
    if (r >= P.M) { break; }
    for (var j = 0u; j < RTN; j++) {
      let c = col0 + j * WGX;
      if (c >= P.N) { break; }
      let o = z * P.bsc + r * P.N + c;
      var v = P.alpha * acc[i * RTN + j];
      if (P.beta != 0.0) { v += P.beta * C[o]; }
      C[o] = v;
    }
  }
}

// ------------------------------------------------------------------------------------------------ reg4

const VTM: u32 = {{TM}};
const TNV: u32 = {{TNV}};

@compute @workgroup_size(WGX, WGY)
fn reg4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let N4 = P.N / 4u;
  let K4 = P.K / 4u;
  let row0 = wid.y * (WGY * VTM) + lid.y;
  let col0 = wid.x * (WGX * TNV) + lid.x;
  if (row0 >= P.M || col0 >= N4) { return; }
  let z = wid.z;
  var aoff: array<u32, VTM>;
  var boff: array<u32, TNV>;
  for (var i = 0u; i < VTM; i++) { aoff[i] = z * (P.bsa / 4u) + min(row0 + i * WGY, P.M - 1u) * K4; }
  for (var j = 0u; j < TNV; j++) { boff[j] = z * (P.bsb / 4u) + min(col0 + j * WGX, N4 - 1u); }
  var acc: array<vec4f, VTM * TNV>;
  var a: array<vec4f, VTM>;
  var kb = 0u;
  for (var k4 = 0u; k4 < K4; k4++) {
    for (var i = 0u; i < VTM; i++) { a[i] = A4[aoff[i] + k4]; }
    for (var kk = 0u; kk < 4u; kk++) {
      for (var j = 0u; j < TNV; j++) {
        let b = B4[boff[j] + kb];
        for (var i = 0u; i < VTM; i++) { acc[i * TNV + j] = fma(vec4f(a[i][kk]), b, acc[i * TNV + j]); }
      }
      kb += N4;
    }
  }
  for (var i = 0u; i < VTM; i++) {
    let r = row0 + i * WGY;
    if (r >= P.M) { break; }
    for (var j = 0u; j < TNV; j++) {
      let c = col0 + j * WGX;
      if (c >= N4) { break; }
      let o = z * (P.bsc / 4u) + r * N4 + c;
      var v = P.alpha * acc[i * TNV + j];
      if (P.beta != 0.0) { v += P.beta * C4[o]; }
      C4[o] = v;
    }
  }
}

// ------------------------------------------------------------------------------------------------ tiled

const BK: u32 = {{BK}};
const BM: u32 = {{BM}};    // WGY * TM
const BN4: u32 = {{BN4}};  // WGX * TNV
const NT: u32 = {{NT}};    // WGX * WGY

var<workgroup> As: array<f32, BK * BM>;    // [k][m]
var<workgroup> Bs: array<vec4f, BK * BN4>; // [k][n/4]

@compute @workgroup_size(WGX, WGY)
fn tiled(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let tid = lid.y * WGX + lid.x;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN4 * 4u;
  let z = wid.z;
  let abase = z * P.bsa;
  let bbase = z * P.bsb;
  let arowMajor = P.sak == 1u;
  var acc: array<vec4f, VTM * TNV>;
  var a: array<f32, VTM>;
  var b: array<vec4f, TNV>;
  for (var k0 = 0u; k0 < P.K; k0 += BK) {
    // Stage A: neighbouring invocations read neighbouring addresses (along k for row-major A, else along m).
    for (var e = tid; e < BM * BK; e += NT) {
      var m: u32; var k: u32;
      if (arowMajor) { m = e / BK; k = e % BK; } else { m = e % BM; k = e / BM; }
      let gm = m0 + m;
      let gk = k0 + k;
      var v = A[abase + min(gm, P.M - 1u) * P.sam + min(gk, P.K - 1u) * P.sak];
      if (gm >= P.M || gk >= P.K) { v = 0.0; }
      As[k * BM + m] = v;
    }
    // Stage B as vec4 along n (four scalar loads, so any stride works).
    for (var e = tid; e < BK * BN4; e += NT) {
      let k = e / BN4;
      let n4 = e % BN4;
      let gk = k0 + k;
      let gn = n0 + n4 * 4u;
      let kb = bbase + min(gk, P.K - 1u) * P.sbk;
      var v = vec4f(B[kb + min(gn, P.N - 1u) * P.sbn], B[kb + min(gn + 1u, P.N - 1u) * P.sbn],
                    B[kb + min(gn + 2u, P.N - 1u) * P.sbn], B[kb + min(gn + 3u, P.N - 1u) * P.sbn]);
      v = select(v, vec4f(0.0), vec4<bool>(gn >= P.N, gn + 1u >= P.N, gn + 2u >= P.N, gn + 3u >= P.N) | vec4<bool>(gk >= P.K));
      Bs[k * BN4 + n4] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < VTM; i++) { a[i] = As[kk * BM + lid.y + i * WGY]; }
      for (var j = 0u; j < TNV; j++) { b[j] = Bs[kk * BN4 + lid.x + j * WGX]; }
      for (var i = 0u; i < VTM; i++) {
        for (var j = 0u; j < TNV; j++) { acc[i * TNV + j] = fma(vec4f(a[i]), b[j], acc[i * TNV + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < VTM; i++) {
    let r = m0 + lid.y + i * WGY;
    if (r >= P.M) { break; }
    for (var j = 0u; j < TNV; j++) {
      let c = n0 + (lid.x + j * WGX) * 4u;
      let v = P.alpha * acc[i * TNV + j];
      for (var q = 0u; q < 4u; q++) {
        if (c + q < P.N) {
          let o = z * P.bsc + r * P.N + c + q;
          var w = v[q];
          if (P.beta != 0.0) { w += P.beta * C[o]; }
          C[o] = w;
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------ regsg
{{SGB}}
const SG: u32 = {{SG}};          // the subgroup size; the workgroup is one subgroup (WGX = SG, WGY = 1)
const RA: u32 = VTM / SG;    // rows of A each lane loads per k-step; TM = RA * SG rows per workgroup

@compute @workgroup_size(WGX, 1)
fn regsg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) sgl: u32) {
  let N4 = P.N / 4u;
  let K4 = P.K / 4u;
  // The rows of A a lane loads are the ones subgroupShuffle(., l) fetches from lane l: indexed by the
  // subgroup invocation id, which WGSL does not promise to equal local_invocation_id even when the
  // workgroup is one subgroup. Columns only need to differ between invocations: lid.x.
  let lane = sgl;
  let m0 = wid.y * VTM;
  let col0 = wid.x * (SG * TNV) + lid.x;
  let z = wid.z;
  var aoff: array<u32, RA>;
  var boff: array<u32, TNV>;
  for (var q = 0u; q < RA; q++) { aoff[q] = z * (P.bsa / 4u) + min(m0 + q * SG + lane, P.M - 1u) * K4; }
  // B row-major: a k-step is N4 vec4 further on. In panels (P.bp4 != 0, N4 a multiple of SG * TNV): the
  // workgroup's columns are one contiguous block of K rows of SG * TNV vec4, read in order.
  let panels = P.bp4 != 0u;
  for (var j = 0u; j < TNV; j++) {
    boff[j] = z * (P.bsb / 4u) + select(min(col0 + j * SG, N4 - 1u), wid.x * P.K * P.bp4 + lid.x + j * SG, panels);
  }
  let bstep = select(N4, P.bp4, panels);
  var acc: array<vec4f, VTM * TNV>;
  var av: array<vec4f, RA>;
  var b: array<vec4f, 4 * TNV>;
  var kb = 0u;
  for (var k4 = 0u; k4 < K4; k4++) {
    for (var q = 0u; q < RA; q++) { av[q] = A4[aoff[q] + k4]; }
    for (var kk = 0u; kk < 4u; kk++) {
      for (var j = 0u; j < TNV; j++) { b[kk * TNV + j] = B4[boff[j] + kb]; }
      kb += bstep;
    }
    // Each accumulator takes its 4 k-steps in a row (one read and one write of it per 4 FMAs: on lavapipe
    // the accumulators live on the stack, and every write is blended with the execution mask), in the order
    // k, k+1, k+2, k+3 as one k-step at a time would: the same sums. Two short loops rather than one of TM
    // iterations: the driver's compiler must unroll them all (a loop it keeps would put acc in memory with
    // per-lane indexing).
    for (var q = 0u; q < RA; q++) {
      for (var l = 0u; l < SG; l++) {
        let ar = subgroupShuffle(av[q], l);
        let r = q * SG + l;
        for (var j = 0u; j < TNV; j++) {
          var s = acc[r * TNV + j];
          s = fma(vec4f(ar.x), b[j], s);
          s = fma(vec4f(ar.y), b[TNV + j], s);
          s = fma(vec4f(ar.z), b[2u * TNV + j], s);
          s = fma(vec4f(ar.w), b[3u * TNV + j], s);
          acc[r * TNV + j] = s;
        }
      }
    }
  }
  for (var r = 0u; r < VTM; r++) {
    let row = m0 + r;
    if (row >= P.M) { break; }
    for (var j = 0u; j < TNV; j++) {
      let c = col0 + j * SG;
      if (c < N4) {
        let o = z * (P.bsc / 4u) + row * N4 + c;
        var v = P.alpha * acc[r * TNV + j];
        if (P.beta != 0.0) { v += P.beta * C4[o]; }
        C4[o] = v;
      }
    }
  }
}
{{SGE}}
