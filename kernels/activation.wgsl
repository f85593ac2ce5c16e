// Darknet activations, forward and backward, elementwise over n values.
// ACT: the activation code, one of the ACT_* constants (generated from the table in src/tensor/ops/act_codes.ts).
// Backward takes the forward *input* x and the upstream gradient dy, and writes dx = dy * f'(x).
// Darknet conventions: leaky'(0) = 0.1 (gradient chosen by x > 0); mish uses softplus with threshold 20.
// ST: the storage type of x and y (f32, or f16 for inference: docs/kernels.md "f16 storage"); math in f32.

alias ST = {{ST}};
struct Params { n: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read_write> y: array<ST>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

override WG: u32 = 256;
override ACT: u32 = ACT_LINEAR;

// #include "lib/act.wgsl"

fn act(v: f32) -> f32 { return act_code(v, ACT); }
fn act_grad(v: f32) -> f32 { return act_grad_code(v, ACT); }

// y = act(x)
@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = ST(act(f32(x[i])));
}

// y (= dx) = dy * act'(x)
@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = ST(dy[i] * act_grad(f32(x[i])));
}

// vec4 forms (n % 4 == 0; P.n counts vec4s): one storage access moves 4 values (2-3x faster on lavapipe).
@group(0) @binding(1) var<storage, read> x4: array<vec4<ST>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<ST>>;
@group(0) @binding(3) var<storage, read> dy4: array<vec4f>;

fn act4(v: vec4f) -> vec4f { return vec4f(act(v.x), act(v.y), act(v.z), act(v.w)); }
fn act_grad4(v: vec4f) -> vec4f { return vec4f(act_grad(v.x), act_grad(v.y), act_grad(v.z), act_grad(v.w)); }

@compute @workgroup_size(WG)
fn fwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y4[i] = vec4<ST>(act4(vec4f(x4[i])));
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y4[i] = vec4<ST>(dy4[i] * act_grad4(vec4f(x4[i])));
}
