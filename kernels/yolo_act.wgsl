// Activations of the Darknet detection heads on their NCHW input [B, A*E, H, W] (E entries per anchor,
// entry k = (i / (H*W)) % E), forward and backward:
//   k < 2 (x, y):            v = (xyAct ? logistic(v) : v) * scale + bias
//   actFrom <= k < actTo:    v = logistic(v)
//   otherwise:               v unchanged
// [yolo]:   xyAct = 1, actFrom = 4, actTo = E, scale = scale_x_y, bias = -0.5*(scale_x_y - 1)
//           (yolo_layer.c forward_yolo_layer); new_coords=1: xyAct = 0, actFrom = actTo = E.
// [region]: xyAct = 1, scale 1, bias 0, actFrom = coords, actTo = coords+1 (classes+1 more when
//           softmax=0) (pjreddie region_layer.c forward_region_layer; softmax is a separate op).
// bwd: dx = dy * dv/dx with the logistic derivative s*(1-s) computed from x.
// fwd4, bwd4: the same arithmetic four values at a time where H*W % 4 == 0, so a vec4 lies in one entry's plane
// (n = vec4s): one entry index (two integer divisions: a loop over the lanes on lavapipe) per four values.
// ST: the storage type of x and y (f32, or f16 for inference: docs/kernels.md "f16 storage"); math in f32.

alias ST = {{ST}};
struct Params { n: u32, hw: u32, E: u32, xyAct: u32, actFrom: u32, actTo: u32, scale: f32, bias: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read_write> y: array<ST>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

override WG: u32 = 256;

// #include "lib/sigmoid.wgsl"

// Entry k's activation of four values of its plane, and its derivative at four inputs: the one statement of
// the rule for every entry point (the scalar ones pass a splat and keep .x; the other lanes are dead code).
fn act4(xv: vec4f, k: u32) -> vec4f {
  var v = xv;
  if (k < 2u) {
    if (P.xyAct != 0u) { v = sigmoid_darknet4(v); }
    v = v * P.scale + P.bias;
  } else if (k >= P.actFrom && k < P.actTo) {
    v = sigmoid_darknet4(v);
  }
  return v;
}

fn grad4(xv: vec4f, k: u32) -> vec4f {
  var d = vec4f(1.0);
  let s = sigmoid_darknet4(xv);
  if (k < 2u) {
    if (P.xyAct != 0u) { d = s * (1.0 - s); }
    d = d * P.scale;
  } else if (k >= P.actFrom && k < P.actTo) {
    d = s * (1.0 - s);
  }
  return d;
}

fn sigmoid_darknet4(v: vec4f) -> vec4f {
  return vec4f(sigmoid_darknet(v.x), sigmoid_darknet(v.y), sigmoid_darknet(v.z), sigmoid_darknet(v.w));
}

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = ST(act4(vec4f(f32(x[i])), (i / P.hw) % P.E).x);
}

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = ST(dy[i] * grad4(vec4f(f32(x[i])), (i / P.hw) % P.E).x);
}

@group(0) @binding(1) var<storage, read> x4: array<vec4<ST>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<ST>>;
@group(0) @binding(3) var<storage, read> dy4: array<vec4f>;

@compute @workgroup_size(WG)
fn fwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * WG;
  if (q >= P.n) { return; }
  y4[q] = vec4<ST>(act4(vec4f(x4[q]), (4u * q / P.hw) % P.E));
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * WG;
  if (q >= P.n) { return; }
  y4[q] = vec4<ST>(dy4[q] * grad4(vec4f(x4[q]), (4u * q / P.hw) % P.E));
}
