// Optimizer updates, one dispatch per parameter tensor, in place (src/tensor/ops/optim.ts documents the
// formulas and how they map to Darknet's update). The raw gradient is first scaled (gscale: 1/batch,
// 1/subdivisions, loss-scale undo), so accumulated gradients never need a separate pass.
//
//   sgd        g' = gscale*g + decay*w;  b = momentum*b + (1 - dampening)*g'  (b = g' on the first step);
//              w -= lr * (nesterov ? g' + momentum*b : b)
//   sgd_plain  w -= lr * (gscale*g + decay*w)                    (momentum 0: no buffer)
//   adam       g' = gscale*g (+ decay*w unless decoupled);  w *= 1 - lr*decay if decoupled (AdamW, flag 4);
//              m = beta1*m + (1-beta1)*g';  v = beta2*v + (1-beta2)*g'^2;
//              w -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
//              with step_size = lr / (1 - beta1^t), inv_sqrt_bc2 = 1/sqrt(1 - beta2^t)   (PyTorch's form)
//   scale      w *= gscale                                        (gradient scaling in place)
//
// Flat forms (sgd_flat, adam_flat): every parameter packed in one arena (src/tensor/arena.ts), the gradients
// and the state in mirrors of its layout, one workgroup per chunk of the chunk table (first value, end, index
// of the parameter; vec4s). The per-parameter constants come from `hyp` at that index, the rest from the
// uniforms (n = chunks): the same f32 expressions as the per-tensor kernels, element for element.
//   sgd_flat   hyp = (lr, decay, first step ? 1 : 0, 0); flags bit 0 nesterov, bit 3 plain (momentum 0)
//   adam_flat  hyp = (lr, decay, step_size, inv_sqrt_bc2); flags bit 2 decoupled

struct Params {
  n: u32,
  lr: f32,
  momentum: f32,
  dampening: f32,
  decay: f32,
  gscale: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  step_size: f32,
  inv_sqrt_bc2: f32,
  flags: u32, // sgd: bit 0 nesterov, bit 1 first step (buffer := g'); adam: bit 2 decoupled (AdamW)
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>; // sgd: momentum buffer; adam: m
@group(0) @binding(4) var<storage, read_write> s2: array<f32>; // adam: v

override WG: u32 = 256;
// (flags are uniforms, not overrides: fewer pipelines to compile, uniform branches cost nothing)

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let wi = w[i];
  let gi = P.gscale * g[i] + P.decay * wi;
  var b = gi;
  if ((P.flags & 2u) == 0u) { b = P.momentum * s1[i] + (1.0 - P.dampening) * gi; }
  s1[i] = b;
  var d = b;
  if ((P.flags & 1u) != 0u) { d = gi + P.momentum * b; }
  w[i] = wi - P.lr * d;
}

@compute @workgroup_size(WG)
fn sgd_plain(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  let wi = w[i];
  w[i] = wi - P.lr * (P.gscale * g[i] + P.decay * wi);
}

@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  var wi = w[i];
  var gi = P.gscale * g[i];
  if ((P.flags & 4u) != 0u) {
    wi = wi * (1.0 - P.lr * P.decay);
  } else {
    gi = gi + P.decay * wi;
  }
  let m = P.beta1 * s1[i] + (1.0 - P.beta1) * gi;
  let v = P.beta2 * s2[i] + (1.0 - P.beta2) * gi * gi;
  s1[i] = m;
  s2[i] = v;
  w[i] = wi - P.step_size * m / (sqrt(v) * P.inv_sqrt_bc2 + P.eps);
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  w[i] = P.gscale * w[i];
}

// ---- flat forms over an arena (see the file comment)
@group(0) @binding(1) var<storage, read_write> w4: array<vec4f>;
@group(0) @binding(2) var<storage, read> g4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4f>;
@group(0) @binding(5) var<storage, read> chunks: array<vec4u>;
@group(0) @binding(6) var<storage, read> hyp: array<vec4f>;

const WF: u32 = 256u;

// The vec4 index of invocation l in chunk wid, and the chunk's parameter constants; ok false past its end.
struct FlatSite {
  ok: bool,
  i: u32,
  h: vec4f,
}

fn flat_site(l: u32, wid: vec3u, nwg: vec3u) -> FlatSite {
  let c = wid.x + wid.y * nwg.x;
  if (c >= P.n) { return FlatSite(false, 0u, vec4f(0.0)); }
  let ch = chunks[c];
  let v = ch.x + 4u * l;
  if (v >= ch.y) { return FlatSite(false, 0u, vec4f(0.0)); }
  return FlatSite(true, v / 4u, hyp[ch.z]);
}

@compute @workgroup_size(WF)
fn sgd_flat(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat_site(l, wid, nwg);
  if (!q.ok) { return; }
  let i = q.i;
  let wi = w4[i];
  if ((P.flags & 8u) != 0u) {
    w4[i] = wi - q.h.x * (P.gscale * g4[i] + q.h.y * wi);
    return;
  }
  let gi = P.gscale * g4[i] + q.h.y * wi;
  var b = gi;
  if (q.h.z == 0.0) { b = P.momentum * m4[i] + (1.0 - P.dampening) * gi; }
  m4[i] = b;
  var d = b;
  if ((P.flags & 1u) != 0u) { d = gi + P.momentum * b; }
  w4[i] = wi - q.h.x * d;
}

@compute @workgroup_size(WF)
fn adam_flat(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = flat_site(l, wid, nwg);
  if (!q.ok) { return; }
  let i = q.i;
  var wi = w4[i];
  var gi = P.gscale * g4[i];
  if ((P.flags & 4u) != 0u) {
    wi = wi * (1.0 - q.h.x * q.h.y);
  } else {
    gi = gi + q.h.y * wi;
  }
  let m = P.beta1 * m4[i] + (1.0 - P.beta1) * gi;
  let v = P.beta2 * v4[i] + (1.0 - P.beta2) * gi * gi;
  m4[i] = m;
  v4[i] = v;
  w4[i] = wi - q.h.z * m / (sqrt(v) * q.h.w + P.eps);
}
