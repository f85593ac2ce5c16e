// Batch normalization over NCHW (per channel c, statistics over the M = N*HW values x[n, c, s]).
//
// MODE 0 = Darknet (batchnorm_layer.c, blas.c mean_cpu/variance_cpu/normalize_cpu):
//   var = unbiased batch variance, y = gamma*(x - mean)/(sqrt(var) + eps) + beta, eps = 1e-6;
//   rolling = keep*rolling + mom*batch (0.99 / 0.01), variance unbiased.
// MODE 1 = PyTorch BatchNorm2d: y = gamma*(x - mean)/sqrt(var_biased + eps) + beta, eps = 1e-5;
//   running = (1-m)*running + m*batch with m = 0.1 and the UNBIASED variance.
//
// Statistics are a two-level reduction of shifted sums, numerically stable for data with a large common
// offset (the shift k_c = x[0, c, 0], a value of the channel, so x - k is exact and small):
//   stats_partial: workgroup (p, c) sums d = x - k_c and d*d over chunk p = [p*L, min((p+1)*L, M)) of
//                  channel c -> part[(c*P + p)*2 + {0, 1}]. No divisions and a tree over 64 threads (WR,
//                  run by WV invocations: lib/tree.wgsl): on lavapipe a workgroup barrier and a division
//                  per value (Welford) cost more than the loads.
//   stats_final:   thread c sums the P partials: mean = k + S1/M, M2 = S2 - S1^2/M, and writes
//                  stats[4, C] = [mean, var_biased, var_unbiased, r] with r = 1/denominator, and (UPDATE)
//                  the running statistics in place.
//   stats_running: inference: stats from the running statistics (rows 1 and 2 both hold running_var).
//   normalize:     y = gamma*((x - mean)*r) + beta.
//   normalize_pool4: the same, activated, then Darknet's 2x2/2 [maxpool] of it (see there): writes the pooled
//                  map and its argmax; the activated map is never stored. Its backward: grad_partial_pool4 and
//                  grad_input_pool4, which read the pooled gradient and the argmax where the others read dy.
// Backward, with xhat = (x - mean)*r (exact gradient of the forward formula):
//   dbeta = sum dy, dgamma = sum dy*xhat (grad_partial + grad_final, same two-level shape as the stats);
//   TRAIN: dx = r*gamma*(dy - dbeta/M - xhat*dgamma*k), k = 1/M (torch) or 1/(r*s*(M-1)) with
//          s = sqrt(var_unbiased) (Darknet: d/dvar of 1/(sqrt(var)+eps) times d var_unbiased/dx; k = 0 when s = 0);
//   inference (running statistics are constants): dx = r*gamma*dy.
//
// ACT (override, default linear): the activation that follows, fused (training's conv -> BN -> act):
//   normalize writes act(y) with y = gamma*((x - mean)*r) + beta, and y is never stored; the backward kernels
//   take dz = dL/d act(y) in `dy` and recompute y from x and the statistics with the same expression, so
//   g = dz*act'(y) is the value the activation's own backward (kernels/activation.wgsl bwd) would have
//   passed on, bit for bit, and everything after uses g where the unfused kernels read dy.

struct Params {
  C: u32,      // channels
  HW: u32,     // spatial size of a plane
  M: u32,      // N*HW values per channel
  L: u32,      // chunk length of a partial
  P: u32,      // partials per channel (ceil(M / L))
  n: u32,      // N*C*HW (elementwise entries)
  keep: f32,   // running-stat decay (0.99 darknet, 0.9 torch)
  mom: f32,    // batch-stat weight (0.01 darknet, 0.1 torch)
  eps: f32,
  planes: u32, // N*C (the vec4 kernels)
  ipp: u32,    // invocations per plane of the vec4 elementwise kernels: ceil(HW/4 / V4) (normalize_pool4: ceil(HW/8 / PV))
  w4: u32,     // normalize_pool4: the plane's width / 4 (0 for the other kernels)
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> runMean: array<f32>;
@group(0) @binding(8) var<storage, read_write> runVar: array<f32>;
@group(0) @binding(9) var<storage, read> dy: array<f32>;
@group(0) @binding(10) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(11) var<storage, read_write> dbeta: array<f32>;

const WG: u32 = 256u;
override MODE: u32 = 0;
override UPDATE: bool = true;
override TRAIN: bool = true;
override ACT: u32 = ACT_LINEAR;

// #include "lib/act.wgsl"

// The gradient at the BN output y = ga*xhat + be of a channel (ga = gamma[c], be = beta[c]) from dz at
// act(y) (dz itself when linear).
fn act_back(dz: f32, xv: f32, ga: f32, be: f32, mean: f32, r: f32) -> f32 {
  let y = ga * ((xv - mean) * r) + be;
  return dz * act_grad_code(y, ACT);
}

fn act_back4(dz: vec4f, xv: vec4f, ga: f32, be: f32, mean: f32, r: f32) -> vec4f {
  let y = ga * ((xv - mean) * r) + be;
  return dz * vec4f(act_grad_code(y.x, ACT), act_grad_code(y.y, ACT), act_grad_code(y.z, ACT), act_grad_code(y.w, ACT));
}

fn act4(v: vec4f) -> vec4f {
  return vec4f(act_code(v.x, ACT), act_code(v.y, ACT), act_code(v.z, ACT), act_code(v.w, ACT));
}

// The partial reductions sum over WR = 64 threads of a workgroup (lib/tree.wgsl: run by WV invocations, 8 on
// CPU adapters, with the same bits); the final ones use one thread per channel.
const WR: u32 = 64u;
const TREE: u32 = WR;
override WV: u32 = WR;
alias VSums = array<vec2f, TREE_VMAX>;
// #include "lib/tree.wgsl"

// Offset of the m-th value (m < M) of channel c.
fn elem(c: u32, m: u32) -> u32 {
  let b = m / U.HW;
  return (b * U.C + c) * U.HW + (m - b * U.HW);
}

// Partial p of channel c: two values at part[(c*P + p)*2 ..].
fn store_part(c: u32, p: u32, v: vec2f) {
  part[(c * U.P + p) * 2u] = v.x;
  part[(c * U.P + p) * 2u + 1u] = v.y;
}

// The shift of channel c: its first value.
fn shift(c: u32) -> f32 {
  return x[c * U.HW];
}

fn denom_inv(var_biased: f32, var_unbiased: f32) -> f32 {
  if (MODE == 1u) { return 1.0 / sqrt(var_biased + U.eps); }
  return 1.0 / (sqrt(var_unbiased) + U.eps);
}

// grid (P, C)
@compute @workgroup_size(WV)
fn stats_partial(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L;
  let end = min(start + U.L, U.M);
  let k = shift(c);
  var h: VSums;
  for (var j = 0u; j < WR / WV; j++) {
    var acc = vec2f(0.0);
    for (var m = start + t + WV * j; m < end; m += WR) {
      let d = x[elem(c, m)] - k;
      acc += vec2f(d, d * d);
    }
    h[j] = acc;
  }
  let r = tree_sum2(t, h);
  if (t == 0u) { store_part(c, p, r); }
}

// The P partials of channel c summed in order (P is small: a chunk is 16384 values by default; a tree of
// workgroup barriers over a handful of values cost more than the sum).
fn sum_partials(c: u32) -> vec2f {
  var acc = vec2f(0.0);
  for (var p = 0u; p < U.P; p++) {
    acc += vec2f(part[(c * U.P + p) * 2u], part[(c * U.P + p) * 2u + 1u]);
  }
  return acc;
}

// one thread per channel
@compute @workgroup_size(64)
fn stats_final(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= U.C) { return; }
  let r = sum_partials(c);
  let m = f32(U.M);
  let d = r.x / m;
  let mean = shift(c) + d;
  let q = max(r.y - r.x * d, 0.0);
  let vb = q / m;
  let vu = q / (m - 1.0);
  stats[c] = mean;
  stats[U.C + c] = vb;
  stats[2u * U.C + c] = vu;
  stats[3u * U.C + c] = denom_inv(vb, vu);
  if (UPDATE) {
    runMean[c] = U.keep * runMean[c] + U.mom * mean;
    runVar[c] = U.keep * runVar[c] + U.mom * vu;
  }
}

// one thread per channel
@compute @workgroup_size(64)
fn stats_running(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= U.C) { return; }
  let v = runVar[c];
  stats[c] = runMean[c];
  stats[U.C + c] = v;
  stats[2u * U.C + c] = v;
  stats[3u * U.C + c] = denom_inv(v, v);
}

// elementwise, 2-D grid
@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= U.n) { return; }
  let c = (i / U.HW) % U.C;
  out[i] = act_code(gamma[c] * ((x[i] - stats[c]) * stats[3u * U.C + c]) + beta[c], ACT);
}

// grid (P, C): part = (sum dy, sum dy*xhat) per chunk
@compute @workgroup_size(WV)
fn grad_partial(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L;
  let end = min(start + U.L, U.M);
  let mean = stats[c];
  let r = stats[3u * U.C + c];
  let ga = gamma[c];
  let be = beta[c];
  var h: VSums;
  for (var j = 0u; j < WR / WV; j++) {
    var acc = vec2f(0.0);
    for (var m = start + t + WV * j; m < end; m += WR) {
      let i = elem(c, m);
      let xv = x[i];
      let g = act_back(dy[i], xv, ga, be, mean, r);
      acc.x += g;
      acc.y += g * ((xv - mean) * r);
    }
    h[j] = acc;
  }
  let s = tree_sum2(t, h);
  if (t == 0u) { store_part(c, p, s); }
}

fn grad_final_at(c: u32) {
  let s = sum_partials(c);
  dbeta[c] = s.x;
  dgamma[c] = s.y;
}

// one thread per channel
@compute @workgroup_size(64)
fn grad_final(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= U.C) { return; }
  grad_final_at(c);
}

// elementwise, 2-D grid; out = dx
@compute @workgroup_size(WG)
fn grad_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= U.n) { return; }
  let c = (i / U.HW) % U.C;
  let k = dx_coeffs(c);
  let xv = x[i];
  out[i] = k.x * (act_back(dy[i], xv, gamma[c], beta[c], stats[c], stats[3u * U.C + c]) - k.y - (xv - k.w) * k.z);
}

// dx = a*(dy - g0 - (x - mean)*g1) per channel: (a, g0, g1, mean) with a = r*gamma and, in training,
// g0 = dbeta/M, g1 = r*dgamma*k (see the file comment; inference: g0 = g1 = 0).
fn dx_coeffs(c: u32) -> vec4f {
  let r = stats[3u * U.C + c];
  let a = r * gamma[c];
  if (!TRAIN) { return vec4f(a, 0.0, 0.0, 0.0); }
  let m = f32(U.M);
  var k = 1.0 / m;
  if (MODE == 0u) {
    let s = sqrt(stats[2u * U.C + c]);
    k = select(0.0, 1.0 / (r * s * (m - 1.0)), s > 0.0);
  }
  return vec4f(a, dbeta[c] / m, r * dgamma[c] * k, stats[c]);
}

// ---- vec4 forms of the elementwise kernels (HW % 4 == 0): on lavapipe every storage access is a loop over
// the SIMD lanes, so a vec4 access moves 4 values for the price of one (measured 2-3x faster). Each
// invocation handles V4 consecutive vec4s of one plane, so the channel's constants (gamma, beta, the
// statistics: as many scalar loads as a vec4 of data) are loaded once per 4*V4 values.
// Flat 2-D grid over planes*ipp invocations (ipp per plane, so small planes do not leave most of a
// workgroup idle); plane = b*C + c.
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(9) var<storage, read> dy4: array<vec4f>;

const V4: u32 = 4u;

// The channel, first vec4 index, vec4 count (<= V4) and plane (b*C + c) of an invocation of the vec4 elementwise
// grid, or none past the end.
struct Site4 {
  ok: bool,
  c: u32,
  i: u32,
  n: u32,
  plane: u32,
}

fn site4(l: u32, wid: vec3u, nwg: vec3u) -> Site4 {
  let t = (wid.x + wid.y * nwg.x) * WG + l;
  let plane = t / U.ipp;
  let hw4 = U.HW / 4u;
  let s = (t - plane * U.ipp) * V4;
  if (plane >= U.planes) { return Site4(false, 0u, 0u, 0u, 0u); }
  return Site4(true, plane % U.C, plane * hw4 + s, min(V4, hw4 - s), plane);
}

@compute @workgroup_size(WG)
fn normalize4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = site4(l, wid, nwg);
  if (!q.ok) { return; }
  let ga = gamma[q.c];
  let be = beta[q.c];
  let mean = stats[q.c];
  let r = stats[3u * U.C + q.c];
  for (var k = 0u; k < V4; k++) {
    if (k < q.n) { out4[q.i + k] = act4(ga * ((x4[q.i + k] - mean) * r) + be); }
  }
}

@compute @workgroup_size(WG)
fn grad_input4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = site4(l, wid, nwg);
  if (!q.ok) { return; }
  let k = dx_coeffs(q.c);
  let cs = channel4(q.c);
  for (var v = 0u; v < V4; v++) {
    if (v < q.n) {
      let xv = x4[q.i + v];
      out4[q.i + v] = k.x * (act_back4(dy4[q.i + v], xv, cs.x, cs.y, cs.z, cs.w) - k.y - (xv - k.w) * k.z);
    }
  }
}

// vec4 forms of the two partial reductions (HW % 4 == 0 and L % 4 == 0): value m of channel c is component
// m % 4 of vec4 q = m / 4, which lies in one plane. The thread's (batch, vec4-in-plane) position advances by
// WR vec4s per step without a division (on lavapipe an integer division is a scalar loop over the lanes).

// The vec4s [x, y) of a channel that partial p sums (chunks of L values).
fn chunk4(p: u32) -> vec2u {
  let start = p * U.L / 4u;
  return vec2u(start, min(start + U.L / 4u, U.M / 4u));
}

struct Walk {
  q: u32,   // vec4 index within the channel
  b: u32,   // its batch
  s: u32,   // its vec4 within the plane
  db: u32,  // WR = db*hw4 + ds
  ds: u32,
}

fn walk_start(q: u32) -> Walk {
  let hw4 = U.HW / 4u;
  let b = q / hw4;
  let db = WR / hw4;
  return Walk(q, b, q - b * hw4, db, WR - db * hw4);
}

fn walk_index(c: u32, w: Walk) -> u32 {
  return (w.b * U.C + c) * (U.HW / 4u) + w.s;
}

fn walk_next(w: ptr<function, Walk>) {
  let hw4 = U.HW / 4u;
  (*w).q += WR;
  (*w).b += (*w).db;
  (*w).s += (*w).ds;
  if ((*w).s >= hw4) {
    (*w).s -= hw4;
    (*w).b += 1u;
  }
}

@compute @workgroup_size(WV)
fn stats_partial4(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let q = chunk4(p);
  let k = x4[c * (U.HW / 4u)].x; // shift(c) through the vec4 binding
  var h: VSums;
  for (var j = 0u; j < WR / WV; j++) {
    var s1 = vec4f(0.0);
    var s2 = vec4f(0.0);
    for (var w = walk_start(q.x + t + WV * j); w.q < q.y; walk_next(&w)) {
      let d = x4[walk_index(c, w)] - k;
      s1 += d;
      s2 += d * d;
    }
    h[j] = vec2f(s1.x + s1.y + s1.z + s1.w, s2.x + s2.y + s2.z + s2.w);
  }
  let r = tree_sum2(t, h);
  if (t == 0u) { store_part(c, p, r); }
}

// Channel c's (gamma, beta, mean, r): what act_back4 and the xhat of the gradient sums need.
fn channel4(c: u32) -> vec4f {
  return vec4f(gamma[c], beta[c], stats[c], stats[3u * U.C + c]);
}

// The gradient partials of one thread (grad_partial4, grad_partial_pool4): sum g and sum g*xhat per component,
// with g = dz*act'(y) at the channel's constants k = channel4(c).
struct GradSums { g: vec4f, gx: vec4f }

fn grad_add(s: ptr<function, GradSums>, dz: vec4f, xv: vec4f, k: vec4f) {
  let g = act_back4(dz, xv, k.x, k.y, k.z, k.w);
  (*s).g += g;
  (*s).gx += g * ((xv - k.z) * k.w);
}

// One thread's two sums.
fn grad_sums(s: GradSums) -> vec2f {
  return vec2f(s.g.x + s.g.y + s.g.z + s.g.w, s.gx.x + s.gx.y + s.gx.z + s.gx.w);
}

// The workgroup's sums (h[j]: thread t + WV*j) into partial p of channel c.
fn grad_store(t: u32, c: u32, p: u32, h: VSums) {
  let r = tree_sum2(t, h);
  if (t == 0u) { store_part(c, p, r); }
}

@compute @workgroup_size(WV)
fn grad_partial4(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let q = chunk4(p);
  let k = channel4(c);
  var h: VSums;
  for (var j = 0u; j < WR / WV; j++) {
    var s = GradSums(vec4f(0.0), vec4f(0.0));
    for (var w = walk_start(q.x + t + WV * j); w.q < q.y; walk_next(&w)) {
      let i = walk_index(c, w);
      grad_add(&s, dy4[i], x4[i], k);
    }
    h[j] = grad_sums(s);
  }
  grad_store(t, c, p, h);
}

// ---- BN + activation + Darknet's [maxpool] size=2 stride=2 in one pass (training: src/tensor/ops/batchnorm.ts
// batchnormMaxpool), for planes with H even and W % 4 == 0, where the windows tile the plane (pool.wgsl
// max2_fwd's case): a pair of pooled outputs is one 2x4 block of x. Each pair normalizes and activates its
// block with normalize4's expression and takes the two windows' maxima with pool.wgsl's best2x2, so the pooled
// values and the argmax (y*W + x within the plane) are those of normalize4 followed by max2_fwd, bit for bit.
// The activated map itself is never written: the backward (grad_partial_pool4, grad_input_pool4 below)
// recomputes it from x and reads the pooled gradient and the argmax. Every invocation handles PV
// consecutive pairs of one plane (pair s = oy*w4 + k: pooled row oy, column pair k), so the channel's
// constants are loaded once per 8*PV values. Flat 2-D grid over planes*ipp invocations, ipp = ceil(HW/8 / PV).
@group(0) @binding(4) var<storage, read_write> out2: array<vec2f>;
@group(0) @binding(12) var<storage, read_write> idx2: array<vec2i>;

const PV: u32 = 4u;
const NEG_FLT_MAX: f32 = bitcast<f32>(0xff7fffffu); // -FLT_MAX (lib/best2x2.wgsl)

// #include "lib/best2x2.wgsl"

@compute @workgroup_size(WG)
fn normalize_pool4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = (wid.x + wid.y * nwg.x) * WG + l;
  let plane = t / U.ipp;
  if (plane >= U.planes) { return; }
  let c = plane % U.C;
  let w4 = U.w4;
  let hp = U.HW / 8u; // pairs per plane: (H/2) * (W/4)
  let s0 = (t - plane * U.ipp) * PV;
  var oy = s0 / w4;
  var k = s0 - oy * w4;
  let ga = gamma[c];
  let be = beta[c];
  let mean = stats[c];
  let r = stats[3u * U.C + c];
  let w = i32(4u * w4);
  for (var v = 0u; v < PV; v++) {
    let s = s0 + v;
    if (s < hp) {
      let i0 = plane * (U.HW / 4u) + 2u * oy * w4 + k;
      let a = act4(ga * ((x4[i0] - mean) * r) + be);
      let b = act4(ga * ((x4[i0 + w4] - mean) * r) + be);
      let at = i32(8u * oy * w4 + 4u * k); // the block's top-left within the plane: row 2*oy, column 4*k
      let o0 = best2x2(vec4f(a.x, a.y, b.x, b.y), at, w, true);
      let o1 = best2x2(vec4f(a.z, a.w, b.z, b.w), at + 2, w, true);
      out2[plane * hp + s] = vec2f(o0.v, o1.v);
      idx2[plane * hp + s] = vec2i(o0.a, o1.a);
    }
    k++;
    if (k == w4) {
      k = 0u;
      oy++;
    }
  }
}

// The backward of normalize_pool4 without the full-size gradient: dy at the activated map is the pooled
// gradient at each window's argmax and 0 elsewhere (pool.wgsl max2_bwd), so grad_partial_pool4 and
// grad_input_pool4 rebuild each vec4 of it from its pair's pooled gradient (binding 9 as vec2s) and argmax
// (binding 12) with max2_bwd's own selects, and go on as grad_partial4 and grad_input4 in the same order: the
// same values bit for bit, without writing and reading back the full-size gradient. U.w4 = W / 4.
// grad_input_pool4 takes the channel's constants from `coef`, which grad_final_pool writes with dgamma and
// dbeta (the same values as grad_input4 computes: copies, and dx_coeffs' own arithmetic), so that it binds
// five storage buffers where grad_input4 binds eight, WebGPU's default limit.
@group(0) @binding(9) var<storage, read> dyp2: array<vec2f>;
// per channel c: coef[2c] = (gamma, beta, mean, r), coef[2c + 1] = dx_coeffs(c)
@group(0) @binding(13) var<storage, read_write> coef: array<vec4f>;

// one thread per channel: grad_final, then the constants grad_input_pool4 reads
@compute @workgroup_size(64)
fn grad_final_pool(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= U.C) { return; }
  grad_final_at(c);
  coef[2u * c] = channel4(c);
  coef[2u * c + 1u] = dx_coeffs(c);
}

// dy at vec4 (iy, k) of a plane (row iy, columns 4k..4k+3): pair (iy/2, k) of the plane's pooled gradient.
fn pooled_dy(plane: u32, iy: u32, k: u32) -> vec4f {
  let pair = plane * (U.HW / 8u) + (iy >> 1u) * U.w4 + k;
  let g = dyp2[pair];
  let a = idx2[pair];
  let c0 = i32(4u * (iy * U.w4 + k));
  return vec4f(select(0.0, g.x, a.x == c0), select(0.0, g.x, a.x == c0 + 1), select(0.0, g.y, a.y == c0 + 2), select(0.0, g.y, a.y == c0 + 3));
}

// grad_partial4's walk with the vec4's row and column block within the plane (s = iy*w4 + k) kept as well.
struct WalkRC {
  w: Walk,
  iy: u32,
  k: u32,
  diy: u32, // ds = diy*w4 + dk
  dk: u32,
}

fn walk_rc_start(q: u32) -> WalkRC {
  let w = walk_start(q);
  let iy = w.s / U.w4;
  let diy = w.ds / U.w4;
  return WalkRC(w, iy, w.s - iy * U.w4, diy, w.ds - diy * U.w4);
}

fn walk_rc_next(r: ptr<function, WalkRC>) {
  let wrapped = (*r).w.s + (*r).w.ds >= U.HW / 4u;
  walk_next(&(*r).w);
  (*r).k += (*r).dk;
  (*r).iy += (*r).diy;
  if ((*r).k >= U.w4) {
    (*r).k -= U.w4;
    (*r).iy += 1u;
  }
  if (wrapped) { (*r).iy -= U.HW / (4u * U.w4); }
}

@compute @workgroup_size(WV)
fn grad_partial_pool4(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let q = chunk4(p);
  let k = channel4(c);
  var h: VSums;
  for (var j = 0u; j < WR / WV; j++) {
    var s = GradSums(vec4f(0.0), vec4f(0.0));
    for (var w = walk_rc_start(q.x + t + WV * j); w.w.q < q.y; walk_rc_next(&w)) {
      grad_add(&s, pooled_dy(w.w.b * U.C + c, w.iy, w.k), x4[walk_index(c, w.w)], k);
    }
    h[j] = grad_sums(s);
  }
  grad_store(t, c, p, h);
}

@compute @workgroup_size(WG)
fn grad_input_pool4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = site4(l, wid, nwg);
  if (!q.ok) { return; }
  let cs = coef[2u * q.c];
  let k = coef[2u * q.c + 1u];
  let s = q.i - q.plane * (U.HW / 4u);
  var iy = s / U.w4;
  var kc = s - iy * U.w4;
  for (var v = 0u; v < V4; v++) {
    if (v < q.n) {
      let xv = x4[q.i + v];
      out4[q.i + v] = k.x * (act_back4(pooled_dy(q.plane, iy, kc), xv, cs.x, cs.y, cs.z, cs.w) - k.y - (xv - k.w) * k.z);
    }
    kc++;
    if (kc == U.w4) {
      kc = 0u;
      iy++;
    }
  }
}
