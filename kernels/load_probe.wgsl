// The cost of storage loads (src/perf/peak.ts measureLoads, `bench kernels`), beside the FMA peak of
// peak.wgsl: every invocation sums P.count floats of `src`, read one f32 (`scalar`) or one vec4 (`vec4`) at
// a time from consecutive elements starting at its own offset (UNIFORM = false: a different address in every
// lane) or at its workgroup's (UNIFORM = true: the same address in every lane of a workgroup), into four
// independent accumulators, and stores the sum once. Indices wrap at P.mask + 1 floats (a power of two,
// small enough to stay in the CPU's caches: this measures the load instructions, not memory bandwidth).
// A CPU adapter that turned uniform loads into one scalar load, or vec4 loads into one vector load, shows it
// here as a faster variant. UNIFORM is a pipeline constant, not a uniform value, so that in the uniform
// variant the compiler can prove the address the same in every lane (it depends on workgroup_id and
// constants only): lavapipe's gallivm loads per lane even so (docs/kernels.md).

struct Params { n: u32, count: u32, mask: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> src4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 32;
override UNIFORM: bool = false;

fn start(gid: vec3u, wid: vec3u, nwg: vec3u) -> vec2u {
  let i = gid.x + gid.y * nwg.x * WG;
  let who = select(i, wid.x + wid.y * nwg.x, UNIFORM);
  return vec2u(i, who * P.count);
}

@compute @workgroup_size(WG)
fn scalar(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = start(gid, wid, nwg);
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  for (var k = 0u; k < P.count; k += 4u) {
    let j = s.y + k;
    a0 += src[j & P.mask];
    a1 += src[(j + 1u) & P.mask];
    a2 += src[(j + 2u) & P.mask];
    a3 += src[(j + 3u) & P.mask];
  }
  if (s.x < P.n) { out[s.x] = (a0 + a1) + (a2 + a3); }
}

@compute @workgroup_size(WG)
fn vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = start(gid, wid, nwg);
  var a = vec4f(0.0);
  let m4 = P.mask >> 2u;
  for (var k = 0u; k < P.count; k += 4u) {
    a += src4[((s.y + k) >> 2u) & m4];
  }
  if (s.x < P.n) { out[s.x] = (a.x + a.y) + (a.z + a.w); }
}
