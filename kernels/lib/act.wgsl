// Darknet activations shared by the kernels that apply them (included with `// #include "lib/act.wgsl"`).
// code: 0 linear, 1 leaky (0.1), 2 logistic, 3 relu, 4 mish, 5 swish.
// Darknet conventions: leaky'(0) = 0.1 and relu'(0) = 0 (gradient chosen by v > 0); mish uses softplus with
// threshold 20 (activations.c).

fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }

fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  if (v < -20.0) { return exp(v); }
  return log(exp(v) + 1.0);
}

fn act_code(v: f32, code: u32) -> f32 {
  switch code {
    case 1u: { return select(0.1 * v, v, v > 0.0); }
    case 2u: { return sigmoid(v); }
    case 3u: { return max(v, 0.0); }
    case 4u: { return v * tanh(softplus(v)); }
    case 5u: { return v * sigmoid(v); }
    default: { return v; }
  }
}

// d act(v) / d v, from the activation's input v
fn act_grad_code(v: f32, code: u32) -> f32 {
  switch code {
    case 1u: { return select(0.1, 1.0, v > 0.0); }
    case 2u: { let s = sigmoid(v); return s * (1.0 - s); }
    case 3u: { return select(0.0, 1.0, v > 0.0); }
    case 4u: {
      let t = tanh(softplus(v));
      return t + v * (1.0 - t * t) * sigmoid(v);
    }
    case 5u: { let s = sigmoid(v); return s + v * s * (1.0 - s); }
    default: { return 1.0; }
  }
}
