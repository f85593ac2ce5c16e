// Darknet activations, forward and backward, elementwise over n values.
// ACT: 0 linear, 1 leaky (0.1), 2 logistic, 3 relu, 4 mish, 5 swish.
// Backward takes the forward *input* x and the upstream gradient dy, and writes dx = dy * f'(x).
// Darknet conventions: leaky'(0) = 0.1 (gradient chosen by x > 0); mish uses softplus with threshold 20.

struct Params { n: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

override WG: u32 = 256;
override ACT: u32 = 0;

fn softplus(v: f32) -> f32 {
  // Darknet's softplus(x, threshold=20)
  if (v > 20.0) { return v; }
  if (v < -20.0) { return exp(v); }
  return log(exp(v) + 1.0);
}

fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }

fn act(v: f32) -> f32 {
  switch ACT {
    case 1u: { return select(0.1 * v, v, v > 0.0); }
    case 2u: { return sigmoid(v); }
    case 3u: { return max(v, 0.0); }
    case 4u: { return v * tanh(softplus(v)); }
    case 5u: { return v * sigmoid(v); }
    default: { return v; }
  }
}

fn act_grad(v: f32) -> f32 {
  switch ACT {
    case 1u: { return select(0.1, 1.0, v > 0.0); }
    case 2u: { let s = sigmoid(v); return s * (1.0 - s); }
    case 3u: { return select(0.0, 1.0, v > 0.0); }
    case 4u: {
      let sp = softplus(v);
      let t = tanh(sp);
      let gsp = sigmoid(v);
      return t + v * (1.0 - t * t) * gsp;
    }
    case 5u: { let s = sigmoid(v); return s + v * s * (1.0 - s); }
    default: { return 1.0; }
  }
}

// y = act(x)
@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = act(x[i]);
}

// y (= dx) = dy * act'(x)
@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = dy[i] * act_grad(x[i]);
}
