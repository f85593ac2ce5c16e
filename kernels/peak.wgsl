// @defaults ACC=4
// The device's arithmetic peak (src/perf/peak.ts, `bench kernels`): pure register FMAs, no memory traffic
// in the loop. Every invocation keeps ACC independent vec4 accumulators (so consecutive FMAs do not wait on
// each other) and runs P.iters rounds of UNROLL x ACC vec4 FMAs, a = a * m + c, with m and c from the
// uniforms so that nothing can be folded at compile time (|m| < 1 keeps the values finite). The sum of the
// accumulators is stored once per invocation so that the loop is not dead code.
// FLOPs per invocation: P.iters * UNROLL * ACC * 4 lanes * 2 (one FMA = 2 FLOPs, as the matmul counts them).
// ACC is a template define (it sizes a register array, whose loops the driver must unroll: constant trip
// counts); the workgroup size WG is an override constant.

struct Params { n: u32, iters: u32, m: f32, c: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;

override WG: u32 = 32;

const ACC: u32 = {{ACC}}u;
const UNROLL: u32 = 4u;

@compute @workgroup_size(WG)
fn fma_peak(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let m = vec4f(P.m);
  let c = vec4f(P.c);
  var a: array<vec4f, ACC>;
  for (var j = 0u; j < ACC; j++) { a[j] = vec4f(f32(i & 255u), f32(j), 1.0, 2.0) * 0.001; }
  for (var k = 0u; k < P.iters; k++) {
    for (var u = 0u; u < UNROLL; u++) {
      for (var j = 0u; j < ACC; j++) { a[j] = fma(a[j], m, c); }
    }
  }
  var s = vec4f(0.0);
  for (var j = 0u; j < ACC; j++) { s += a[j]; }
  if (i < P.n) { out[i] = s; }
}
