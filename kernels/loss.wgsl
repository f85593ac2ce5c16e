// Elementwise loss pieces for the YOLO losses, per element (reduce with reduce.wgsl), forward and backward.
//   out[i] = alpha * w[i] * l(x[i], t[i])          (w only in the *_w entries)
//   dx[i]  = g[i] * alpha * w[i] * dl/dx(x[i], t[i])  (target and weight are constants)
// kind: 0 bce_logits  l = max(x,0) - x*t + log(1 + exp(-|x|))   dl = sigmoid(x) - t
//       1 mse         l = (x - t)^2                              dl = 2 (x - t)
//       2 sigmoid_mse l = (sigmoid(x) - t)^2                     dl = 2 (s - t) s (1 - s)
//       3 l1          l = |x - t|                                dl = sign(x - t) (0 at x == t)

struct Params { n: u32, alpha: f32, zero: u32, kind: u32, } // zero = 0 (see log1p_pos); kind: below
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> g: array<f32>;

override WG: u32 = 256;
// The loss kind is a uniform (not an override): one pipeline per entry instead of one per kind and entry.

// #include "lib/stable.wgsl"

fn loss(xv: f32, tv: f32) -> f32 {
  switch P.kind {
    case 0u: { return max(xv, 0.0) - xv * tv + log1p_pos(exp(-abs(xv))); }
    case 1u: { let d = xv - tv; return d * d; }
    case 2u: { let d = sigmoid_stable(xv) - tv; return d * d; }
    default: { return abs(xv - tv); }
  }
}

fn dloss(xv: f32, tv: f32) -> f32 {
  switch P.kind {
    case 0u: { return sigmoid_stable(xv) - tv; }
    case 1u: { return 2.0 * (xv - tv); }
    case 2u: { let s = sigmoid_stable(xv); return 2.0 * (s - tv) * s * (1.0 - s); }
    default: { return sign(xv - tv); }
  }
}

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha * loss(x[i], t[i]);
}

@compute @workgroup_size(WG)
fn fwd_w(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha * w[i] * loss(x[i], t[i]);
}

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = g[i] * P.alpha * dloss(x[i], t[i]);
}

@compute @workgroup_size(WG)
fn bwd_w(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = g[i] * P.alpha * w[i] * dloss(x[i], t[i]);
}
