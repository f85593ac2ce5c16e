// Darknet's classifier cost after a softmax (blas.c softmax_x_ent, as forward_softmax_layer_gpu applies it):
// per element, for the softmax output y and the target t,
//   loss = -log(y) where t != 0, 0 where t == 0 or t is NaN (the masked classes: Darknet's SECRET_NUM groups,
//          which forward_softmax_layer_gpu zeroes in the delta and the loss)
//   bwd:  dy = g * (-t / y) where t is a number, 0 where it is NaN; through the softmax (tree) backward
//         this is y - t on every group holding a target: -(Darknet's delta t - y).

struct Params { n: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;

override WG: u32 = 256;

fn is_nan(v: f32) -> bool {
  // NaN compares unequal to everything; written on the bits so fast-math compilers keep it
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ti = t[i];
  out[i] = select(0.0, -log(y[i]), !is_nan(ti) && ti != 0.0);
}

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ti = t[i];
  out[i] = select(0.0, g[i] * (-ti / y[i]), !is_nan(ti));
}
