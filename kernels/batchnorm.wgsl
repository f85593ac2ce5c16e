// Batch normalization over NCHW (per channel c, statistics over the M = N*HW values x[n, c, s]).
//
// MODE 0 = Darknet (batchnorm_layer.c, blas.c mean_cpu/variance_cpu/normalize_cpu):
//   var = unbiased batch variance, y = gamma*(x - mean)/(sqrt(var) + eps) + beta, eps = 1e-6;
//   rolling = keep*rolling + mom*batch (0.99 / 0.01), variance unbiased.
// MODE 1 = PyTorch BatchNorm2d: y = gamma*(x - mean)/sqrt(var_biased + eps) + beta, eps = 1e-5;
//   running = (1-m)*running + m*batch with m = 0.1 and the UNBIASED variance.
//
// Statistics are a two-level reduction, numerically stable for data with a large common offset:
//   stats_partial: workgroup (p, c) reduces chunk p = [p*L, min((p+1)*L, M)) of channel c: each thread runs
//                  Welford over its strided elements, then the workgroup merges the (count, mean, M2)
//                  triples with Chan's formula -> part[(c*P + p)*2 + {0: mean, 1: M2}].
//   stats_final:   workgroup c merges the P partials (counts known from L and M) with Chan's formula and
//                  writes stats[4, C] = [mean, var_biased, var_unbiased, r] with r = 1/denominator,
//                  and (UPDATE) the running statistics in place.
//   stats_running: inference: stats from the running statistics (rows 1 and 2 both hold running_var).
//   normalize:     y = gamma*((x - mean)*r) + beta.
// Backward, with xhat = (x - mean)*r (exact gradient of the forward formula):
//   dbeta = sum dy, dgamma = sum dy*xhat (grad_partial + grad_final, same two-level shape as the stats);
//   TRAIN: dx = r*gamma*(dy - dbeta/M - xhat*dgamma*k), k = 1/M (torch) or 1/(r*s*(M-1)) with
//          s = sqrt(var_unbiased) (Darknet: d/dvar of 1/(sqrt(var)+eps) times d var_unbiased/dx; k = 0 when s = 0);
//   inference (running statistics are constants): dx = r*gamma*dy.

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

var<workgroup> wn: array<f32, WG>;
var<workgroup> wm: array<f32, WG>;
var<workgroup> wq: array<f32, WG>;

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

// Chan et al.: merge (na, ma, qa) and (nb, mb, qb) = (count, mean, sum of squared deviations).
fn chan(a: vec3f, b: vec3f) -> vec3f {
  if (b.x == 0.0) { return a; }
  if (a.x == 0.0) { return b; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec3f(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

// Tree merge of the workgroup's triples into slot 0.
fn merge_workgroup(l: u32, v: vec3f) -> vec3f {
  wn[l] = v.x;
  wm[l] = v.y;
  wq[l] = v.z;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (l < s) {
      let r = chan(vec3f(wn[l], wm[l], wq[l]), vec3f(wn[l + s], wm[l + s], wq[l + s]));
      wn[l] = r.x;
      wm[l] = r.y;
      wq[l] = r.z;
    }
    workgroupBarrier();
  }
  return vec3f(wn[0], wm[0], wq[0]);
}

// Tree sum of two values per thread into slot 0 (wm, wq reused).
fn sum_workgroup(l: u32, v: vec2f) -> vec2f {
  wm[l] = v.x;
  wq[l] = v.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (l < s) {
      wm[l] += wm[l + s];
      wq[l] += wq[l + s];
    }
    workgroupBarrier();
  }
  return vec2f(wm[0], wq[0]);
}

fn denom_inv(var_biased: f32, var_unbiased: f32) -> f32 {
  if (MODE == 1u) { return 1.0 / sqrt(var_biased + U.eps); }
  return 1.0 / (sqrt(var_unbiased) + U.eps);
}

// grid (P, C)
@compute @workgroup_size(WG)
fn stats_partial(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L;
  let end = min(start + U.L, U.M);
  var acc = vec3f(0.0);
  for (var m = start + l; m < end; m += WG) {
    let v = x[elem(c, m)];
    acc.x += 1.0;
    let d = v - acc.y;
    acc.y += d / acc.x;
    acc.z += d * (v - acc.y);
  }
  let r = merge_workgroup(l, acc);
  if (l == 0u) { store_part(c, p, vec2f(r.y, r.z)); }
}

// grid (C)
@compute @workgroup_size(WG)
fn stats_final(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x;
  var acc = vec3f(0.0);
  for (var p = l; p < U.P; p += WG) {
    let cnt = f32(min(U.L, U.M - p * U.L));
    acc = chan(acc, vec3f(cnt, part[(c * U.P + p) * 2u], part[(c * U.P + p) * 2u + 1u]));
  }
  let r = merge_workgroup(l, acc);
  if (l == 0u) {
    let m = f32(U.M);
    let mean = r.y;
    let vb = r.z / m;
    let vu = r.z / (m - 1.0);
    stats[c] = mean;
    stats[U.C + c] = vb;
    stats[2u * U.C + c] = vu;
    stats[3u * U.C + c] = denom_inv(vb, vu);
    if (UPDATE) {
      runMean[c] = U.keep * runMean[c] + U.mom * mean;
      runVar[c] = U.keep * runVar[c] + U.mom * vu;
    }
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
  out[i] = gamma[c] * ((x[i] - stats[c]) * stats[3u * U.C + c]) + beta[c];
}

// grid (P, C): part = (sum dy, sum dy*xhat) per chunk
@compute @workgroup_size(WG)
fn grad_partial(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L;
  let end = min(start + U.L, U.M);
  let mean = stats[c];
  let r = stats[3u * U.C + c];
  var acc = vec2f(0.0);
  for (var m = start + l; m < end; m += WG) {
    let i = elem(c, m);
    let g = dy[i];
    acc.x += g;
    acc.y += g * ((x[i] - mean) * r);
  }
  let s = sum_workgroup(l, acc);
  if (l == 0u) { store_part(c, p, vec2f(s.x, s.y)); }
}

// grid (C)
@compute @workgroup_size(WG)
fn grad_final(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let c = wid.x;
  var acc = vec2f(0.0);
  for (var p = l; p < U.P; p += WG) {
    acc += vec2f(part[(c * U.P + p) * 2u], part[(c * U.P + p) * 2u + 1u]);
  }
  let s = sum_workgroup(l, acc);
  if (l == 0u) {
    dbeta[c] = s.x;
    dgamma[c] = s.y;
  }
}

// elementwise, 2-D grid; out = dx
@compute @workgroup_size(WG)
fn grad_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= U.n) { return; }
  let k = dx_coeffs((i / U.HW) % U.C);
  out[i] = k.x * (dy[i] - k.y - (x[i] - k.w) * k.z);
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
// the SIMD lanes, so a vec4 access moves 4 values for the price of one (measured 2-3x faster).
// Grid (ceil(HW/4 / WG), planes folded into y and z); plane = b*C + c, so no index needs a division by HW.
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(9) var<storage, read> dy4: array<vec4f>;

@compute @workgroup_size(WG)
fn normalize4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = wid.y + wid.z * nwg.y;
  let hw4 = U.HW / 4u;
  let s = wid.x * WG + l;
  if (plane >= U.planes || s >= hw4) { return; }
  let c = plane % U.C;
  let i = plane * hw4 + s;
  out4[i] = gamma[c] * ((x4[i] - stats[c]) * stats[3u * U.C + c]) + beta[c];
}

@compute @workgroup_size(WG)
fn grad_input4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let plane = wid.y + wid.z * nwg.y;
  let hw4 = U.HW / 4u;
  let s = wid.x * WG + l;
  if (plane >= U.planes || s >= hw4) { return; }
  let c = plane % U.C;
  let i = plane * hw4 + s;
  let k = dx_coeffs(c);
  out4[i] = k.x * (dy4[i] - k.y - (x4[i] - k.w) * k.z);
}

// vec4 forms of the two partial reductions (HW % 4 == 0 and L % 4 == 0): value m of channel c is component
// m % 4 of vec4 q = m / 4, which lies in one plane; one division per vec4 instead of per value.
fn elem4(c: u32, q: u32) -> u32 {
  let hw4 = U.HW / 4u;
  let b = q / hw4;
  return (b * U.C + c) * hw4 + (q - b * hw4);
}

fn welford(a: vec3f, v: f32) -> vec3f {
  let n = a.x + 1.0;
  let d = v - a.y;
  let m = a.y + d / n;
  return vec3f(n, m, a.z + d * (v - m));
}

@compute @workgroup_size(WG)
fn stats_partial4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L / 4u;
  let end = min(start + U.L / 4u, U.M / 4u);
  var acc = vec3f(0.0);
  for (var q = start + l; q < end; q += WG) {
    let v = x4[elem4(c, q)];
    acc = welford(welford(welford(welford(acc, v.x), v.y), v.z), v.w);
  }
  let r = merge_workgroup(l, acc);
  if (l == 0u) { store_part(c, p, vec2f(r.y, r.z)); }
}

@compute @workgroup_size(WG)
fn grad_partial4(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u) {
  let p = wid.x;
  let c = wid.y;
  let start = p * U.L / 4u;
  let end = min(start + U.L / 4u, U.M / 4u);
  let mean = stats[c];
  let r = stats[3u * U.C + c];
  var acc = vec4f(0.0);
  var accx = vec4f(0.0);
  for (var q = start + l; q < end; q += WG) {
    let i = elem4(c, q);
    let g = dy4[i];
    acc += g;
    accx += g * ((x4[i] - mean) * r);
  }
  let s = sum_workgroup(l, vec2f(acc.x + acc.y + acc.z + acc.w, accx.x + accx.y + accx.z + accx.w));
  if (l == 0u) { store_part(c, p, vec2f(s.x, s.y)); }
}
