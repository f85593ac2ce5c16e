// Reductions (sum, sum of squares, per-channel sums) and their backward broadcasts.
//
// A reduction sums `count` values in each of `rows` rows. Value j of row r lives at
//   r * row_stride + (j / inner) * outer_stride + (j % inner)
// so a whole tensor is one row (inner = count), and NCHW per-channel sums are C rows of N*H*W values
// (inner = H*W, outer_stride = C*H*W, row_stride = H*W).
//
// Two levels (repeated as needed): each workgroup reduces WG*ITEMS values of one row into a partial
// (`first_*` reads f32 input, `next_*` reads the partials of the previous pass); the pass whose row fits
// in one workgroup writes the f32 result (`*_final`), times `scale` (1/n for means).
//
// Accuracy: every value is carried as an unevaluated pair hi + lo (double-float): each thread accumulates
// its values with TwoSum, the workgroup tree (pairwise) and the later passes add pairs, so the result is
// the float64-like sum rounded once to f32 (a few ulp at worst, independent of n in practice). Squares
// are split exactly with Dekker's product (no fma needed). Compilers must not reassociate f32 adds
// (WGSL/SPIR-V do not allow it, but Mesa's NIR does: see opaque()); if one did, the result degrades to a
// plain pairwise sum.
// An infinite input makes the sum NaN (inf - inf inside TwoSum), not inf: both are non-finite.
//
// The grid is 2-D (any number of workgroups): w = wid.x + wid.y * nwg.x; workgroups with w >= total exit.

struct Params {
  count: u32,        // values per row (reduce); values in the tensor (bcast)
  inner: u32,        // contiguous run length within a row (bcast: H*W)
  outer_stride: u32, // distance between consecutive runs of a row
  row_stride: u32,   // distance between the first values of consecutive rows
  chunks: u32,       // workgroups per row in this pass
  total: u32,        // rows * chunks: workgroups with work (the grid may hold a few more)
  channels: u32,     // bcast per channel: C
  scale: f32,        // final multiplier (reduce); gradient multiplier (bcast)
  one: f32,          // 1.0 (see opaque())
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> xp: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> part: array<vec2f>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> g: array<f32>;

override WG: u32 = 256;       // power of two
override ITEMS: u32 = 8;      // values per thread per pass
override SQUARE: bool = false; // reduce: first pass sums x*x; bcast_sq: dx = 2*g*x
override PER_CHANNEL: bool = false; // bcast: g has one value per channel

var<workgroup> sh: array<vec2f, WG>;

// ---------------------------------------------------------------- double-float arithmetic

// Mesa's NIR (lavapipe, RADV, ANV) applies algebraic float rewrites such as (a + b) - a -> b to every
// operation not marked exact, and Tint marks none, which silently turns TwoSum into a plain sum. Each
// rounded value that is later subtracted from therefore goes through opaque(): a multiply by the uniform
// P.one (= 1.0, unknown to the compiler; exact, and harmless if fused into an fma).
fn opaque(v: f32) -> f32 { return v * P.one; }

// a + b = s + e exactly (Knuth's TwoSum).
fn two_sum(a: f32, b: f32) -> vec2f {
  let s = opaque(a + b);
  let bb = opaque(s - a);
  let e = (a - opaque(s - bb)) + (b - bb);
  return vec2f(s, e);
}

// (a.x + a.y) + (b.x + b.y), renormalized so that |lo| <= ulp(hi)/2.
fn dd_add(a: vec2f, b: vec2f) -> vec2f {
  let s = two_sum(a.x, b.x);
  let lo = s.y + (a.y + b.y);
  let hi = opaque(s.x + lo);
  return vec2f(hi, lo - opaque(hi - s.x));
}

// v*v = p + e exactly (Dekker: split v into 12 + 12 significant bits).
fn two_square(v: f32) -> vec2f {
  let p = opaque(v * v);
  if (abs(v) > 1.0e30) { return vec2f(p, 0.0); } // overflows anyway; avoid inf - inf in the split
  let c = opaque(4097.0 * v);
  let hi = opaque(c - opaque(c - v));
  let lo = opaque(v - hi);
  let e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
  return vec2f(p, e);
}

// ---------------------------------------------------------------- reduce

fn wg_reduce(lid: u32, v: vec2f) -> vec2f {
  sh[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = dd_add(sh[lid], sh[lid + s]); }
    workgroupBarrier();
  }
  return sh[0];
}

fn addr(row: u32, j: u32) -> u32 {
  let q = j / P.inner;
  return row * P.row_stride + q * P.outer_stride + (j - q * P.inner);
}

fn load_first(row: u32, j: u32) -> vec2f {
  let v = xs[addr(row, j)];
  if (SQUARE) { return two_square(v); }
  return vec2f(v, 0.0);
}

// The pair sum of workgroup w's values (every thread gets it).
fn reduce_first(lid: u32, w: u32) -> vec2f {
  let row = w / P.chunks;
  let base = (w - row * P.chunks) * WG * ITEMS + lid;
  var acc = vec2f(0.0, 0.0);
  for (var k = 0u; k < ITEMS; k++) {
    let j = base + k * WG;
    if (j < P.count) { acc = dd_add(acc, load_first(row, j)); }
  }
  return wg_reduce(lid, acc);
}

fn reduce_next(lid: u32, w: u32) -> vec2f {
  let row = w / P.chunks;
  let base = (w - row * P.chunks) * WG * ITEMS + lid;
  var acc = vec2f(0.0, 0.0);
  for (var k = 0u; k < ITEMS; k++) {
    let j = base + k * WG;
    if (j < P.count) { acc = dd_add(acc, xp[addr(row, j)]); }
  }
  return wg_reduce(lid, acc);
}

fn finish(v: vec2f) -> f32 {
  return v.x * P.scale + v.y * P.scale;
}

@compute @workgroup_size(WG)
fn first_partial(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= P.total) { return; }
  let r = reduce_first(lid, w);
  if (lid == 0u) { part[w] = r; }
}

@compute @workgroup_size(WG)
fn first_final(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= P.total) { return; }
  let r = reduce_first(lid, w);
  if (lid == 0u) { out[w] = finish(r); }
}

@compute @workgroup_size(WG)
fn next_partial(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= P.total) { return; }
  let r = reduce_next(lid, w);
  if (lid == 0u) { part[w] = r; }
}

@compute @workgroup_size(WG)
fn next_final(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= P.total) { return; }
  let r = reduce_next(lid, w);
  if (lid == 0u) { out[w] = finish(r); }
}

// ---------------------------------------------------------------- backward

fn upstream(i: u32) -> f32 {
  if (PER_CHANNEL) { return g[(i / P.inner) % P.channels]; }
  return g[0];
}

// dx[i] = scale * g (sum, mean; per channel: g[c(i)])
@compute @workgroup_size(WG)
fn bcast(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.count) { return; }
  out[i] = P.scale * upstream(i);
}

// dx[i] = 2 * scale * g * x[i] (sums of squares)
@compute @workgroup_size(WG)
fn bcast_sq(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.count) { return; }
  out[i] = 2.0 * P.scale * upstream(i) * xs[i];
}
