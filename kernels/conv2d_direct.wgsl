// Direct 2-D convolution (NCHW, OIHW weights [Cout, Cin/G, KH, KW]), one output value per invocation, and
// the small helpers of the conv2d family: bias gradient (per-channel sum of dy) and the sum of split-K
// partial results. Meant for tiny shapes and as the plainest correct implementation of every gradient.
//
// Epilogue parameters are uniforms, not overrides: P.act (an ACT_* code, generated from the table in
// src/tensor/ops/act_codes.ts) and P.has_bias. On CPU adapters every pipeline variant costs 0.3-2 s of
// LLVM compile time, while a uniform switch in the epilogue costs nothing measurable.
//
// Output slice: the forward writes channel co of image b to channel Coff + co of a destination with Ctot
// channels (Coff = 0, Ctot = Cout for a whole tensor), so a route/concat can be filled without a copy.
//
// ST: the storage type of src0, src1 and dst (f32, or f16 for the inference forward: docs/kernels.md "f16
// storage"): loads converted to f32, sums in f32, the store rounds to ST; src2 (the bias) stays f32.

// #include "lib/conv_params.wgsl"
alias ST = {{ST}};
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src0: array<ST>;
@group(0) @binding(2) var<storage, read> src1: array<ST>;
@group(0) @binding(3) var<storage, read> src2: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<ST>;

override WG: u32 = 256;

// #include "lib/act.wgsl"
fn act(v: f32) -> f32 { return act_code(v, P.act); }

// y = act(conv(x, w) + b). src0 = x, src1 = w, src2 = b (any buffer when P.has_bias == 0), dst = y (or the
// bigger destination). P.n = B*Cout*OH*OW.
@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ohw = P.OH * P.OW;
  let p = i % ohw;
  let bc = i / ohw;
  let co = bc % P.Cout;
  let b = bc / P.Cout;
  let oy = p / P.OW;
  let ox = p % P.OW;
  let g = co / P.Mg;
  let hw = P.H * P.W;
  let khw = P.KH * P.KW;
  let y0 = i32(oy * P.SY) - i32(P.PY);
  let x0 = i32(ox * P.SX) - i32(P.PX);
  var acc = 0.0;
  for (var c = 0u; c < P.Cg; c++) {
    let xb = (b * P.Cin + g * P.Cg + c) * hw;
    let wb = (co * P.Cg + c) * khw;
    for (var ky = 0u; ky < P.KH; ky++) {
      let iy = y0 + i32(ky * P.DY);
      if (iy < 0 || iy >= i32(P.H)) { continue; }
      for (var kx = 0u; kx < P.KW; kx++) {
        let ix = x0 + i32(kx * P.DX);
        if (ix < 0 || ix >= i32(P.W)) { continue; }
        acc = fma(f32(src1[wb + ky * P.KW + kx]), f32(src0[xb + u32(iy) * P.W + u32(ix)]), acc);
      }
    }
  }
  if (P.has_bias != 0u) { acc += src2[co]; }
  dst[(b * P.Ctot + P.Coff + co) * ohw + p] = ST(act(acc));
}

// dx = conv_transpose(dy, w): src0 = dy, src1 = w, dst = dx. P.n = B*Cin*H*W.
@compute @workgroup_size(WG)
fn bwd_data(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let hw = P.H * P.W;
  let q = i % hw;
  let bc = i / hw;
  let ci = bc % P.Cin;
  let b = bc / P.Cin;
  let ty0 = i32(q / P.W + P.PY);
  let tx0 = i32(q % P.W + P.PX);
  let g = ci / P.Cg;
  let c = ci % P.Cg;
  let ohw = P.OH * P.OW;
  let khw = P.KH * P.KW;
  var acc = 0.0;
  for (var m = 0u; m < P.Mg; m++) {
    let co = g * P.Mg + m;
    let yb = (b * P.Cout + co) * ohw;
    let wb = (co * P.Cg + c) * khw;
    for (var ky = 0u; ky < P.KH; ky++) {
      let ty = ty0 - i32(ky * P.DY);
      if (ty < 0) { break; }
      let oy = u32(ty) / P.SY;
      if (oy * P.SY != u32(ty) || oy >= P.OH) { continue; }
      for (var kx = 0u; kx < P.KW; kx++) {
        let tx = tx0 - i32(kx * P.DX);
        if (tx < 0) { break; }
        let ox = u32(tx) / P.SX;
        if (ox * P.SX != u32(tx) || ox >= P.OW) { continue; }
        acc = fma(f32(src1[wb + ky * P.KW + kx]), f32(src0[yb + oy * P.OW + ox]), acc);
      }
    }
  }
  dst[i] = ST(acc);
}

// dw[co, c, ky, kx] = sum over b, oy, ox of dy * x: src0 = x, src1 = dy, dst = dw. P.n = Cout*Cg*KH*KW.
@compute @workgroup_size(WG)
fn bwd_weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let khw = P.KH * P.KW;
  let kx = i % P.KW;
  let ky = (i / P.KW) % P.KH;
  let c = (i / khw) % P.Cg;
  let co = i / (khw * P.Cg);
  let g = co / P.Mg;
  let hw = P.H * P.W;
  let ohw = P.OH * P.OW;
  var acc = 0.0;
  for (var b = 0u; b < P.B; b++) {
    let xb = (b * P.Cin + g * P.Cg + c) * hw;
    let yb = (b * P.Cout + co) * ohw;
    for (var oy = 0u; oy < P.OH; oy++) {
      let iy = i32(oy * P.SY + ky * P.DY) - i32(P.PY);
      if (iy < 0 || iy >= i32(P.H)) { continue; }
      for (var ox = 0u; ox < P.OW; ox++) {
        let ix = i32(ox * P.SX + kx * P.DX) - i32(P.PX);
        if (ix < 0 || ix >= i32(P.W)) { continue; }
        acc = fma(f32(src1[yb + oy * P.OW + ox]), f32(src0[xb + u32(iy) * P.W + u32(ix)]), acc);
      }
    }
  }
  dst[i] = ST(acc);
}

// db[co] = sum of dy[:, co, :, :]: one workgroup per channel (wid.x + wid.y * nwg.x), a tree over TREE
// threads run by WV invocations (lib/tree.wgsl). src1 = dy, dst = db.
const TREE: u32 = 256u;
override WV: u32 = TREE;
// #include "lib/tree.wgsl"
@compute @workgroup_size(WV)
fn bwd_bias(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let co = wid.x + wid.y * nwg.x;
  let ohw = P.OH * P.OW;
  var h: array<vec2f, TREE_VMAX>;
  for (var j = 0u; j < TREE / WV; j++) {
    var acc = 0.0;
    if (co < P.Cout) {
      for (var b = 0u; b < P.B; b++) {
        let yb = (b * P.Cout + co) * ohw;
        for (var p = lid.x + WV * j; p < ohw; p += TREE) { acc += f32(src1[yb + p]); }
      }
    }
    h[j] = vec2f(acc, 0.0);
  }
  let r = tree_sum2(lid.x, h);
  if (lid.x == 0u && co < P.Cout) { dst[co] = ST(r.x); }
}

// dst[i] = sum over s < P.S of src0[s * P.n + i] (the split-K partial sums of a GEMM).
@compute @workgroup_size(WG)
fn reduce_split(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  var acc = 0.0;
  for (var s = 0u; s < P.S; s++) { acc += f32(src0[s * P.n + i]); }
  dst[i] = ST(acc);
}

// The same for P.n % 4 == 0, four outputs per invocation as vec4s (each summed in the same order: the same
// values; on lavapipe a vec4 load costs about as much as a scalar one).
@group(0) @binding(1) var<storage, read> src0v: array<vec4<ST>>;
@group(0) @binding(4) var<storage, read_write> dstv: array<vec4<ST>>;

@compute @workgroup_size(WG)
fn reduce_split4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let n4 = P.n / 4u;
  if (i >= n4) { return; }
  var acc = vec4f(0.0);
  for (var s = 0u; s < P.S; s++) { acc += vec4f(src0v[s * n4 + i]); }
  dstv[i] = vec4<ST>(acc);
}
