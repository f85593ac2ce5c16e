// Darknet activations shared by the kernels that apply them (included with `// #include "lib/act.wgsl"`).
// code: one of the ACT_* constants, generated from the table in src/tensor/ops/act_codes.ts (the codes the
// ops pass as `override ACT` or the conv epilogue's uniform `act`).
// Darknet conventions: leaky'(0) = 0.1 and relu'(0) = 0 (gradient chosen by v > 0); mish uses softplus with
// threshold 20 (activations.c); relu6 = min(max(v, 0), 6) with gradient 1 only on 0 < v < 6; ramp =
// v*(v > 0) + 0.1*v with gradient (v > 0) + 0.1 (activations.h); tanh = (e^2v - 1)/(e^2v + 1) (activations.h
// tanh_activate, here from exp(-2|v|) so that it never overflows to inf/inf) with gradient 1 - tanh(v)^2.

// #include "generated/act_codes.wgsl"
// #include "lib/sigmoid.wgsl"

// Darknet's softplus (activations.h, threshold 20); lib/stable.wgsl has the loss kernels' softplus_stable.
fn softplus_darknet(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  if (v < -20.0) { return exp(v); }
  return log(exp(v) + 1.0);
}

// Darknet's tanh_activate without its overflow (NaN for |v| > 44 in float32)
fn tanh_darknet(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, v >= 0.0);
}

fn act_code(v: f32, code: u32) -> f32 {
  switch code {
    case ACT_LEAKY: { return select(0.1 * v, v, v > 0.0); }
    case ACT_LOGISTIC: { return sigmoid_darknet(v); }
    case ACT_RELU: { return max(v, 0.0); }
    case ACT_MISH: { return v * tanh(softplus_darknet(v)); }
    case ACT_SWISH: { return v * sigmoid_darknet(v); }
    case ACT_RELU6: { return min(max(v, 0.0), 6.0); }
    case ACT_RAMP: { return select(0.0, v, v > 0.0) + 0.1 * v; }
    case ACT_TANH: { return tanh_darknet(v); }
    case ACT_LINEAR, default: { return v; }
  }
}

// d act(v) / d v, from the activation's input v
fn act_grad_code(v: f32, code: u32) -> f32 {
  switch code {
    case ACT_LEAKY: { return select(0.1, 1.0, v > 0.0); }
    case ACT_LOGISTIC: { let s = sigmoid_darknet(v); return s * (1.0 - s); }
    case ACT_RELU: { return select(0.0, 1.0, v > 0.0); }
    case ACT_MISH: {
      let t = tanh(softplus_darknet(v));
      return t + v * (1.0 - t * t) * sigmoid_darknet(v);
    }
    case ACT_SWISH: { let s = sigmoid_darknet(v); return s + v * s * (1.0 - s); }
    case ACT_RELU6: { return select(0.0, 1.0, v > 0.0 && v < 6.0); }
    case ACT_RAMP: { return select(0.0, 1.0, v > 0.0) + 0.1; }
    case ACT_TANH: { let t = tanh_darknet(v); return 1.0 - t * t; }
    case ACT_LINEAR, default: { return 1.0; }
  }
}
