// Elementwise helpers for the tape and the losses: fill, y += alpha * x, out = a*alpha + b*beta, scale,
// copy with offsets (strided channel slices use concat.wgsl).

struct Params { n: u32, alpha: f32, beta: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// out = alpha (fill)
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha;
}

// out += alpha * a
@compute @workgroup_size(WG)
fn axpy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = out[i] + P.alpha * a[i];
}

// axpy for n % 4 == 0, a vec4 per invocation (the same arithmetic per element; on lavapipe a vec4 access costs
// about as much as a scalar one)
@group(0) @binding(1) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;

@compute @workgroup_size(WG)
fn axpy4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n / 4u) { return; }
  out4[i] = out4[i] + P.alpha * a4[i];
}

// out = alpha * a + beta * b
@compute @workgroup_size(WG)
fn lincomb(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha * a[i] + P.beta * b[i];
}

// out = alpha * a * b
@compute @workgroup_size(WG)
fn mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha * a[i] * b[i];
}

// out = alpha * a
@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  out[i] = P.alpha * a[i];
}
