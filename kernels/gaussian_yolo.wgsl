// Activations of the Darknet [Gaussian_yolo] head (AlexeyAB gaussian_yolo_layer.c forward_gaussian_yolo_layer)
// on its NCHW input [B, A*E, H, W], E = 9 + classes entries per anchor, entry k = (i / (H*W)) % E:
//   0 x, 1 sigma_x, 2 y, 3 sigma_y, 4 w, 5 sigma_w, 6 h, 7 sigma_h, 8 objectness, 9.. classes.
// Darknet: activate_array LOGISTIC on entries 0-1 and 2-3 (the mean and the uncertainty of x, y), then
// scal_add_cpu(scale_x_y, -0.5*(scale_x_y - 1)) on entries 0 and 2 only; LOGISTIC on 5, 7 and 8..E-1;
// w and h (4, 6) stay raw.
//   fwd: y = act(x)
//   bwd: dx = dy * act'(x) (logistic derivative s*(1-s) from x, times scale on 0 and 2; 1 on 4 and 6)

struct Params { n: u32, hw: u32, E: u32, scale: f32, bias: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

override WG: u32 = 256;

// #include "lib/sigmoid.wgsl"

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let k = (i / P.hw) % P.E;
  var v = x[i];
  if (k != 4u && k != 6u) { v = sigmoid_darknet(v); }
  if (k == 0u || k == 2u) { v = v * P.scale + P.bias; }
  y[i] = v;
}

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let k = (i / P.hw) % P.E;
  var d = 1.0;
  if (k != 4u && k != 6u) {
    let s = sigmoid_darknet(x[i]);
    d = s * (1.0 - s);
  }
  if (k == 0u || k == 2u) { d = d * P.scale; }
  y[i] = dy[i] * d;
}
