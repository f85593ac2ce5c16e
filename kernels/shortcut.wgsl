// Darknet [shortcut] (shortcut_layer.c, blas.c shortcut_cpu): out = act(z) with z = a everywhere, except at
// the positions shared with the `from` layer b, where z = alpha*a + beta*b (Darknet copies the input, then
// shortcut_cpu does out = s1*out + s2*add on the shared positions only). a has the output's shape
// (aw, ah, ac); b has its own (bw, bh, bc); same batch. With stride = max(bw/aw, 1), sample = max(aw/bw, 1)
// and minw/minh/minc the smaller sizes, shared position (i, j, k), i < minw, j < minh, k < minc, pairs
// a[k, j*sample, i*sample] with b[k, j*stride, i*stride] (mismatched channels: only the first minc add).
// ACT: the activation code, one of the ACT_* constants (generated from the table in src/tensor/ops/act_codes.ts);
// the act/act_grad come from lib/act.wgsl (shared with activation.wgsl and the conv epilogues).
// Backward recomputes z from a and b (no saved pre-activation):
//   bwd_a: da = dy*act'(z) * (shared ? alpha : 1)        over a's elements
//   bwd_b: db = dy*act'(z) * beta at the paired position, 0 where b is not shared   over b's elements
// fwd4, bwd4: a and b of one shape (the usual residual: every position shared, stride = sample = 1) and n % 4
// == 0: the same arithmetic on four values at a time, without pair_of_a's index math (its divisions by uniforms
// are loops over the SIMD lanes on lavapipe); bwd4 writes da and db in one pass.
// ST: the storage type of a, b and out (f32, or f16 for inference: docs/kernels.md "f16 storage"); math in f32.

alias ST = {{ST}};
struct Params {
  n: u32,
  aw: u32, ah: u32, ac: u32,
  bw: u32, bh: u32, bc: u32,
  stride: u32, sample: u32,
  minw: u32, minh: u32, minc: u32,
  alpha: f32, beta: f32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<ST>;
@group(0) @binding(2) var<storage, read> b: array<ST>;
@group(0) @binding(3) var<storage, read_write> out: array<ST>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;

override WG: u32 = 256;
override ACT: u32 = ACT_LINEAR;

// #include "lib/act.wgsl"
fn act(v: f32) -> f32 { return act_code(v, ACT); }
fn act_grad(v: f32) -> f32 { return act_grad_code(v, ACT); }

// ---- geometry

// Index into b paired with a's element i, or -1 when i is not a shared position.
fn pair_of_a(i: u32) -> i32 {
  let x = i % P.aw;
  var t = i / P.aw;
  let y = t % P.ah;
  t = t / P.ah;
  let c = t % P.ac;
  let n = t / P.ac;
  if (c >= P.minc || x % P.sample != 0u || y % P.sample != 0u) { return -1; }
  let xi = x / P.sample;
  let yi = y / P.sample;
  if (xi >= P.minw || yi >= P.minh) { return -1; }
  return i32(xi * P.stride + P.bw * (yi * P.stride + P.bh * (c + P.bc * n)));
}

// Index into a paired with b's element j, or -1 when j is not a shared position.
fn pair_of_b(j: u32) -> i32 {
  let x = j % P.bw;
  var t = j / P.bw;
  let y = t % P.bh;
  t = t / P.bh;
  let c = t % P.bc;
  let n = t / P.bc;
  if (c >= P.minc || x % P.stride != 0u || y % P.stride != 0u) { return -1; }
  let xi = x / P.stride;
  let yi = y / P.stride;
  if (xi >= P.minw || yi >= P.minh) { return -1; }
  return i32(xi * P.sample + P.aw * (yi * P.sample + P.ah * (c + P.ac * n)));
}

// n = a's elements
@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let j = pair_of_a(i);
  var z = f32(a[i]);
  if (j >= 0) { z = P.alpha * z + P.beta * f32(b[u32(j)]); }
  out[i] = ST(act(z));
}

// n = a's elements; out = da
@compute @workgroup_size(WG)
fn bwd_a(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let j = pair_of_a(i);
  var z = f32(a[i]);
  var s = 1.0;
  if (j >= 0) {
    z = P.alpha * z + P.beta * f32(b[u32(j)]);
    s = P.alpha;
  }
  out[i] = ST(dy[i] * act_grad(z) * s);
}

// n = b's elements; out = db
@compute @workgroup_size(WG)
fn bwd_b(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * WG;
  if (j >= P.n) { return; }
  let i = pair_of_b(j);
  var g = 0.0;
  if (i >= 0) {
    let z = P.alpha * f32(a[u32(i)]) + P.beta * f32(b[j]);
    g = dy[u32(i)] * act_grad(z) * P.beta;
  }
  out[j] = ST(g);
}

// ---- same shapes, four values per invocation (n = a's elements / 4)

@group(0) @binding(1) var<storage, read> a4: array<vec4<ST>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<ST>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<ST>>;
@group(0) @binding(4) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> db4: array<vec4<ST>>;

fn z4(i: u32) -> vec4f { return P.alpha * vec4f(a4[i]) + P.beta * vec4f(b4[i]); }

@compute @workgroup_size(WG)
fn fwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let z = z4(i);
  out4[i] = vec4<ST>(vec4f(act(z.x), act(z.y), act(z.z), act(z.w)));
}

// out4 = da, db4 = db
@compute @workgroup_size(WG)
fn bwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let z = z4(i);
  let g = dy4[i] * vec4f(act_grad(z.x), act_grad(z.y), act_grad(z.z), act_grad(z.w));
  out4[i] = vec4<ST>(g * P.alpha);
  db4[i] = vec4<ST>(g * P.beta);
}
