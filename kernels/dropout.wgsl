// Dropout (Darknet forward_dropout_layer / backward_dropout_layer) with a counter-based mask: value i is
// dropped when u(i, seed) < p, kept ones are scaled by 1/(1 - p). The mask is a pure function of
// (seed, i) (a 32-bit integer hash), so the backward regenerates it instead of storing it, and a seeded
// run repeats exactly (on resume too).

struct Params { n: u32, seed: u32, p: f32, scale: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

// lowbias32 (Chris Wellons' hash prospector): a good avalanche for consecutive inputs.
fn hash(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Uniform in [0, 1) with 24 bits.
fn uniform01(i: u32) -> f32 {
  return f32(hash(i ^ hash(P.seed)) >> 8u) * (1.0 / 16777216.0);
}

// y = x * mask * scale (forward), or dx = dy * mask * scale (backward: x holds dy)
@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = select(x[i] * P.scale, 0.0, uniform01(i) < P.p);
}
