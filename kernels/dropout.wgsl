// Dropout (Darknet forward_dropout_layer / backward_dropout_layer) with a counter-based mask: value i is
// dropped when u(i, seed) < p, kept ones are scaled by 1/(1 - p). The mask is a pure function of
// (seed, i) (a 32-bit integer hash), so the backward regenerates it instead of storing it, and a seeded
// run repeats exactly (on resume too).
//
// DropBlock (AlexeyAB dropout_layer_kernels.cu dropblock_fast_kernel, set_scales_dropblock_kernel,
// scale_dropblock_kernel, backward_dropblock_kernel) on NCHW x [B, C, H, W], block size bs, blk = B*C block
// corners (u32, 0xffffffff: none) then B per-image scales (f32 bits):
//   db_seed  (one thread per channel b, c): of the positions whose u(seed, index) < blockProb, the one with the
//            lowest u seeds the block (Darknet: the lowest rand, at most one block per channel); its corner
//            (bx, by) is the seed position, moved back by (W - bs) when past W - bs (AlexeyAB's rule, not a
//            clamp), then clamped into the map;
//   db_scale (one thread per image): scale = 1 / (1 - blocks * bs^2 / (C*H*W)) (0 when that covers the image:
//            Darknet's 1/0 would make every output 0 * inf = NaN);
//   db_apply (one thread per value): 0 inside its channel's block, x * scale of its image elsewhere (the
//            backward runs it on dy).

struct Params { n: u32, seed: u32, p: f32, scale: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

struct Block { n: u32, seed: u32, C: u32, H: u32, W: u32, bs: u32, blockProb: f32, }
@group(0) @binding(0) var<uniform> D: Block;
@group(0) @binding(3) var<storage, read_write> blk: array<u32>;

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
fn uniform_at(i: u32, seed: u32) -> f32 {
  return f32(hash(i ^ hash(seed)) >> 8u) * (1.0 / 16777216.0);
}

// y = x * mask * scale (forward), or dx = dy * mask * scale (backward: x holds dy)
@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = select(x[i] * P.scale, 0.0, uniform_at(i, P.seed) < P.p);
}

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn db_seed(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ch = gid.x + gid.y * nwg.x * WG;
  if (ch >= D.n) { return; }
  let hw = D.H * D.W;
  var best = 2.0;
  var at = NONE;
  for (var i = 0u; i < hw; i++) {
    let u = uniform_at(ch * hw + i, D.seed);
    if (u < D.blockProb && u < best) {
      best = u;
      at = i;
    }
  }
  if (at == NONE) {
    blk[ch] = NONE;
    return;
  }
  var bx = i32(at % D.W);
  var by = i32(at / D.W);
  let mx = i32(D.W) - i32(D.bs);
  let my = i32(D.H) - i32(D.bs);
  if (bx > mx) { bx = bx - mx; }
  if (by > my) { by = by - my; }
  bx = max(0, min(bx, mx));
  by = max(0, min(by, my));
  blk[ch] = u32(by) * D.W + u32(bx);
}

@compute @workgroup_size(WG)
fn db_scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = gid.x + gid.y * nwg.x * WG;
  if (b >= D.n) { return; }
  var blocks = 0u;
  for (var c = 0u; c < D.C; c++) {
    if (blk[b * D.C + c] != NONE) { blocks++; }
  }
  let dropped = f32(blocks * D.bs * D.bs);
  let outputs = f32(D.C * D.H * D.W);
  var s = 0.0;
  if (dropped < outputs) { s = 1.0 / (1.0 - dropped / outputs); }
  blk[D.n * D.C + b] = bitcast<u32>(s);
}

@compute @workgroup_size(WG)
fn db_apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= D.n) { return; }
  let hw = D.H * D.W;
  let ch = i / hw;
  let b = ch / D.C;
  let B = D.n / (D.C * hw);
  let p = i % hw;
  let corner = blk[ch];
  var keep = true;
  if (corner != NONE) {
    let dx = i32(p % D.W) - i32(corner % D.W);
    let dy = i32(p / D.W) - i32(corner / D.W);
    keep = !(dx >= 0 && dx < i32(D.bs) && dy >= 0 && dy < i32(D.bs));
  }
  y[i] = select(0.0, x[i] * bitcast<f32>(blk[B * D.C + b]), keep);
}
