// Reductions (sum, sum of squares, per-channel sums) and their backward broadcasts.
//
// A reduction sums `count` values in each of `rows` rows. Value j of row r lives at
//   r * row_stride + (j / inner) * outer_stride + (j % inner)
// so a whole tensor is one row (inner = count), and NCHW per-channel sums are C rows of N*H*W values
// (inner = H*W, outer_stride = C*H*W, row_stride = H*W).
//
// Two levels, repeated as needed, all with the one `reduce` entry: each workgroup reduces WG*items values
// of one row (thread-strided, coalesced) into a partial in workgroup memory; the first pass reads the f32
// input, later passes read the partials (pairs) of the previous pass; the pass whose rows fit in one
// workgroup writes the f32 result times `scale` (1/n for means). Pass kind, squaring and items are
// uniform flags rather than overrides: one pipeline to compile (llvmpipe takes ~1-2 s for every pipeline
// with barriers), with no measurable cost at run time (uniform branches).
//
// Accuracy: every value is carried as an unevaluated pair hi + lo (double-float): each thread accumulates
// its values with TwoSum, the workgroup and the later passes add pairs, so the result is the exact sum
// rounded to f32 (within 1 ulp; independent of n and of the order). Squares are split exactly with
// Dekker's product (no fma needed). Compilers must not reassociate f32 adds (WGSL/SPIR-V do not allow it,
// but Mesa's NIR does: see opaque()); if one did, the result would degrade to a plain blocked sum.
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
  zero: u32,         // 0 (see opaque())
  flags: u32,        // see FLAG_*
  items: u32,        // reduce: values per thread
}
const FLAG_SQUARE: u32 = 1u;      // reduce: square the f32 input (first pass)
const FLAG_PER_CHANNEL: u32 = 2u; // bcast: g holds one value per channel
const FLAG_PAIRS_IN: u32 = 4u;    // reduce: the input holds (hi, lo) pairs from an earlier pass
const FLAG_FINAL: u32 = 8u;       // reduce: write out[row] = scale * (hi + lo), else out[2w..2w+1] = pair

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> g: array<f32>;

override WG: u32 = 256;       // power of two
override LANES: u32 = 16;     // threads in the middle stage of wg_reduce (about sqrt(WG))

var<workgroup> sh: array<vec2f, WG>;

// ---------------------------------------------------------------- double-float arithmetic

// Mesa's NIR (lavapipe, RADV, ANV) applies algebraic float rewrites such as (a + b) - a -> b to every
// operation not marked exact, and Tint marks none, which silently turns TwoSum into a plain sum. Each
// rounded value that is later subtracted from therefore goes through opaque(): its bits xor the uniform
// P.zero (= 0, unknown to the compiler). An integer op hides the value from float rewrites; a multiply by
// a uniform 1.0 does not (NIR still distributes and reassociates through it and loses the low part).
fn opaque(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) ^ P.zero); }

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

// The workgroup's pair sum, valid in thread 0 only. Two barriers (not log2(WG)): the first LANES threads
// each add WG/LANES strided values, then thread 0 adds those LANES partials (order does not matter for
// accuracy with double-float accumulation).
fn wg_reduce(lid: u32, v: vec2f) -> vec2f {
  sh[lid] = v;
  workgroupBarrier();
  if (lid < LANES) {
    var acc = sh[lid];
    for (var k = lid + LANES; k < WG; k += LANES) { acc = dd_add(acc, sh[k]); }
    sh[lid] = acc; // only this thread touches sh[lid] in this phase
  }
  workgroupBarrier();
  var r = vec2f(0.0, 0.0);
  if (lid == 0u) {
    r = sh[0];
    for (var k = 1u; k < min(LANES, WG); k++) { r = dd_add(r, sh[k]); }
  }
  return r;
}

fn addr(row: u32, j: u32) -> u32 {
  let q = j / P.inner;
  return row * P.row_stride + q * P.outer_stride + (j - q * P.inner);
}

fn load(row: u32, j: u32) -> vec2f {
  let a = addr(row, j);
  if ((P.flags & FLAG_PAIRS_IN) != 0u) { return vec2f(xs[2u * a], xs[2u * a + 1u]); }
  let v = xs[a];
  if ((P.flags & FLAG_SQUARE) != 0u) { return two_square(v); }
  return vec2f(v, 0.0);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= P.total) { return; }
  let row = w / P.chunks;
  let base = (w - row * P.chunks) * WG * P.items + lid;
  var acc = vec2f(0.0, 0.0);
  for (var k = 0u; k < P.items; k++) {
    let j = base + k * WG;
    if (j < P.count) { acc = dd_add(acc, load(row, j)); }
  }
  let r = wg_reduce(lid, acc);
  if (lid == 0u) {
    if ((P.flags & FLAG_FINAL) != 0u) {
      out[w] = r.x * P.scale + r.y * P.scale;
    } else {
      out[2u * w] = r.x;
      out[2u * w + 1u] = r.y;
    }
  }
}

// ---------------------------------------------------------------- backward

fn upstream(i: u32) -> f32 {
  if ((P.flags & FLAG_PER_CHANNEL) != 0u) { return g[(i / P.inner) % P.channels]; }
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
