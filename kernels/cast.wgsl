// Storage casts between float32 and the f16-storage kernels' element type ST (docs/kernels.md "f16 storage"):
// src/tensor/ops/cast.ts, what Network.forward puts around a layer without an f16 variant, in front of the
// network (its input) and behind it (the outputs it returns). Only run with ST=f16; the default ST=f32 is a
// plain copy (so the file compiles like every other kernel on adapters without shader-f16).
//   to_st:   h[i] = ST(f[i])    (f32 -> f16: WGSL rounds to a neighbouring half; past +-65504, +-inf)
//   from_st: f[i] = f32(h[i])   (exact)
// and their vec4 forms (n % 4 == 0, P.n counts vec4s: 4 values per storage access, as activation.wgsl).

struct Params { n: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> f: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<{{ST}}>;
@group(0) @binding(1) var<storage, read> hs: array<{{ST}}>;
@group(0) @binding(2) var<storage, read_write> fd: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn to_st(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  h[i] = {{ST}}(f[i]);
}

@compute @workgroup_size(WG)
fn from_st(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  fd[i] = f32(hs[i]);
}

@group(0) @binding(1) var<storage, read> f4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> h4: array<vec4<{{ST}}>>;
@group(0) @binding(1) var<storage, read> hs4: array<vec4<{{ST}}>>;
@group(0) @binding(2) var<storage, read_write> fd4: array<vec4f>;

@compute @workgroup_size(WG)
fn to_st4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  h4[i] = vec4<{{ST}}>(f4[i]);
}

@compute @workgroup_size(WG)
fn from_st4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  fd4[i] = vec4f(hs4[i]);
}
