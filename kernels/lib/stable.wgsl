// Numerically stable logistic pieces for the loss kernels (loss.wgsl, yolo_loss.wgsl, yolo_loss_v5.wgsl),
// included with `// #include "lib/stable.wgsl"`. The includer's uniform struct P must have a field
// `zero: u32` that the op sets to 0: see log1p_pos.

// sigmoid_stable (and sigmoid_darknet) live in lib/sigmoid.wgsl.
// #include "lib/sigmoid.wgsl"

// log(1 + u) for u >= 0, accurate for small u (Goldberg: the rounding of 1 + u cancels). Xoring the bits
// with the uniform P.zero (= 0) keeps Mesa's NIR from rewriting (1 + u) - 1 into u, which it does for
// float ops not marked exact and which would silently undo the correction.
fn log1p_pos(u: f32) -> f32 {
  let v = bitcast<f32>(bitcast<u32>(1.0 + u) ^ P.zero);
  if (v == 1.0) { return u; }
  return log(v) * (u / (v - 1.0));
}

// log(1 + exp(v)) without overflow
fn softplus_stable(v: f32) -> f32 { return max(v, 0.0) + log1p_pos(exp(-abs(v))); }

// The logistic loss on a logit whose Darknet delta is m*(t - sigmoid(v)): m*(softplus(v) - t*v) (= m*BCE).
fn logistic_loss(v: f32, t: f32) -> f32 { return softplus_stable(v) - t * v; }

// inf or NaN (exponent all ones)
fn not_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }
