// @defaults N=4
// Winograd F(NxN, 3x3), N = 4 or 2, for the 3x3 stride-1 conv forward of inference (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2015; the F(4x4, 3x3) and F(2x2, 3x3) matrices below are
// theirs, as TFLite's GPU delegate and NNPACK use them). Each NxN block of output pixels (a "tile") comes
// from an AL x AL block of the input, AL = N + 2 (6x6 for N = 4, 4x4 for N = 2):
//
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A        g: a 3x3 filter, d: the AL x AL input block, (.) elementwise
//
// so the conv becomes AL^2 independent matrix products over the channels, one per element xi of the block:
//   Z[xi] (T x M) = V[xi] (T x C) x U[xi] (C x M),  V = B^T d B per (tile, input channel),
//                                                   U = G g G^T per (input channel, output channel),
// F(4x4): 36 multiply-adds per 16 outputs and channel pair instead of 144, 4x fewer; F(2x2): 16 per 4,
// 2.25x fewer, but 4x the tiles, so the products have rows enough on small maps (an 8x8 map: 16 tiles,
// against F(4x4)'s 4). That is why it pays on a device whose matmul runs at a third of its FMA peak
// (docs/kernels.md "Winograd"). The products run on matmul.wgsl's kernels
// (src/tensor/ops/conv2d_winograd.ts); this file holds the three transforms:
//   wt: U[xi][c][m]  from w[m][c][3][3]            (once per weight tensor; inference caches it), or U in
//       the column panels of the products' 'sg' tile (P.P4 != 0: U[xi][m / P][c][m % P], P = 4 * P4 columns)
//   it: V[xi][t][c]  from x[b][c][H][W]            (zero outside the image: the conv's padding)
//   ot: y[b][Coff+m][oy][ox] = act(A^T Z A + bias)  (written into a destination with Ctot channels)
// Tiles are numbered t = (b*TH + ty)*TW + tx; tile (ty, tx) covers outputs [N ty, N ty + N) x [N tx, N tx + N)
// and reads inputs from (N ty - PY, N tx - PX). Each invocation of wt / it / ot handles 4 consecutive
// channels (vec4 over c or m: the op needs C % 4 == 0 and M % 4 == 0). Sums are float32 throughout; the
// transforms round differently from a direct conv (the op's tests bound the difference against float64).

// #include "lib/act.wgsl"

struct Params {
  C: u32, H: u32, W: u32, M: u32,
  OH: u32, OW: u32, PY: u32, PX: u32,
  TH: u32, TW: u32, T: u32, Ctot: u32,
  Coff: u32, act: u32, has_bias: u32, t0: u32,
  // ot with Darknet's [maxpool] size=2 stride=2 fused: the pooled map's height and width (0: no pool)
  pool_h: u32, pool_w: u32,
  // wt: U in column panels of P4 vec4 (matmul.wgsl regsg's P.bp4); 0: row-major [36][C][M]
  P4: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;          // wt: w; it: x
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4f>; // wt: U; it: V
@group(0) @binding(3) var<storage, read> z4: array<vec4f>;         // ot: Z
@group(0) @binding(4) var<storage, read> bias: array<f32>;         // ot
@group(0) @binding(5) var<storage, read_write> y: array<f32>;      // ot
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;   // ot4: y as vec4

override WG: u32 = 64;
// the output tile's side and the input block's (a template define: it sizes the register arrays)
const N: u32 = {{N}}u;
const AL: u32 = N + 2u;
const NEG_FLT_MAX: f32 = bitcast<f32>(0xff7fffffu); // -FLT_MAX, Darknet's maxpool padding

// Tile t's column, row and image: t = (b*TH + ty)*TW + tx
fn tile_pos(t: u32) -> vec3u {
  let r = t / P.TW;
  return vec3u(t - r * P.TW, r % P.TH, r / P.TH);
}

// F(4x4, 3x3). B^T z for a column z of the 6x6 input block
fn bt_4(z: array<vec4f, 6>) -> array<vec4f, 6> {
  return array<vec4f, 6>(
    4.0 * z[0] - 5.0 * z[2] + z[4],
    -4.0 * (z[1] + z[2]) + z[3] + z[4],
    4.0 * (z[1] - z[2]) - z[3] + z[4],
    2.0 * (z[3] - z[1]) - z[2] + z[4],
    2.0 * (z[1] - z[3]) - z[2] + z[4],
    4.0 * z[1] - 5.0 * z[3] + z[5]);
}

// G g for a column g of the 3x3 filter
fn gm_4(g: array<vec4f, 3>) -> array<vec4f, 6> {
  return array<vec4f, 6>(
    0.25 * g[0],
    (g[0] + g[1] + g[2]) * (-1.0 / 6.0),
    (g[0] - g[1] + g[2]) * (-1.0 / 6.0),
    g[0] * (1.0 / 24.0) + g[1] * (1.0 / 12.0) + g[2] * (1.0 / 6.0),
    g[0] * (1.0 / 24.0) - g[1] * (1.0 / 12.0) + g[2] * (1.0 / 6.0),
    g[2]);
}

// A^T z for a column z of the 6x6 product
fn at_4(z: array<vec4f, 6>) -> array<vec4f, 4> {
  return array<vec4f, 4>(
    z[0] + z[1] + z[2] + z[3] + z[4],
    z[1] - z[2] + 2.0 * (z[3] - z[4]),
    z[1] + z[2] + 4.0 * (z[3] + z[4]),
    z[1] - z[2] + 8.0 * (z[3] - z[4]) + z[5]);
}

// F(2x2, 3x3). B^T z for a column z of the 4x4 input block
fn bt_2(z: array<vec4f, 4>) -> array<vec4f, 4> {
  return array<vec4f, 4>(z[0] - z[2], z[1] + z[2], z[2] - z[1], z[1] - z[3]);
}

// G g for a column g of the 3x3 filter
fn gm_2(g: array<vec4f, 3>) -> array<vec4f, 4> {
  return array<vec4f, 4>(g[0], (g[0] + g[1] + g[2]) * 0.5, (g[0] - g[1] + g[2]) * 0.5, g[2]);
}

// A^T z for a column z of the 4x4 product
fn at_2(z: array<vec4f, 4>) -> array<vec4f, 2> {
  return array<vec4f, 2>(z[0] + z[1] + z[2], z[1] - z[2] - z[3]);
}

// U[xi][c][m..m+3] = (G g G^T)[xi] for the filters of output channels m..m+3 on input channel c.
// One invocation per (c, m/4): id = c * M/4 + m/4, on a 2-D grid past the per-dimension limit (Gpu.grid).
@compute @workgroup_size(WG)
fn wt(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let M4 = P.M / 4u;
  let id = gid.y * nwg.x * WG + gid.x;
  if (id >= P.C * M4) { return; }
  let c = id / M4;
  let m = (id % M4) * 4u;
  var g: array<array<vec4f, 3>, 3>; // g[ky][kx], 4 output channels
  for (var ky = 0u; ky < 3u; ky++) {
    for (var kx = 0u; kx < 3u; kx++) {
      var v: vec4f;
      for (var q = 0u; q < 4u; q++) { v[q] = src[((m + q) * P.C + c) * 9u + ky * 3u + kx]; }
      g[ky][kx] = v;
    }
  }
  // columns: s[i][kx] = (G g)[i][kx]; then rows: U[i][j] = (s G^T)[i][j] = G applied to row i of s
  var s: array<array<vec4f, 3>, AL>;
  for (var kx = 0u; kx < 3u; kx++) {
    let col = gm_{{N}}(array<vec4f, 3>(g[0][kx], g[1][kx], g[2][kx]));
    for (var i = 0u; i < AL; i++) { s[i][kx] = col[i]; }
  }
  // where U[xi][c][m..m+3] goes: xi * C * M4 + o
  let m4 = m / 4u;
  let o = select(c * M4 + m4, (m4 / max(P.P4, 1u)) * P.C * P.P4 + c * P.P4 + m4 % max(P.P4, 1u), P.P4 != 0u);
  for (var i = 0u; i < AL; i++) {
    let row = gm_{{N}}(s[i]);
    for (var j = 0u; j < AL; j++) { dst4[(i * AL + j) * P.C * M4 + o] = row[j]; }
  }
}

// V[xi][t][c..c+3] = (B^T d B)[xi] for tile t and input channels c..c+3. One invocation per (t, c/4),
// id = t * C/4 + c/4 (neighbouring lanes share a tile: the same offsets and bounds, one SIMD branch);
// WG per workgroup along x, offset by P.t0 workgroups past the per-dimension limit.
@compute @workgroup_size(WG)
fn it(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let C4 = P.C / 4u;
  let id = (P.t0 + wid.x) * WG + lid.x;
  if (id >= P.T * C4) { return; }
  let t = id / C4;
  let c4 = id - t * C4;
  let pos = tile_pos(t);
  let tx = pos.x;
  let ty = pos.y;
  let b = pos.z;
  let iy0 = i32(ty * N) - i32(P.PY);
  let ix0 = i32(tx * N) - i32(P.PX);
  let plane = P.H * P.W;
  let base = (b * P.C + c4 * 4u) * plane;
  // columns first: u[i][j] = (B^T d)[i][j]
  var u: array<array<vec4f, AL>, AL>;
  for (var j = 0u; j < AL; j++) {
    let ix = ix0 + i32(j);
    let inx = ix >= 0 && ix < i32(P.W);
    var col: array<vec4f, AL>;
    for (var i = 0u; i < AL; i++) {
      let iy = iy0 + i32(i);
      let inside = inx && iy >= 0 && iy < i32(P.H);
      let o = base + u32(clamp(iy, 0, i32(P.H) - 1)) * P.W + u32(clamp(ix, 0, i32(P.W) - 1));
      let v = vec4f(src[o], src[o + plane], src[o + 2u * plane], src[o + 3u * plane]);
      col[i] = select(vec4f(0.0), v, inside);
    }
    let bc = bt_{{N}}(col);
    for (var i = 0u; i < AL; i++) { u[i][j] = bc[i]; }
  }
  for (var i = 0u; i < AL; i++) {
    let row = bt_{{N}}(u[i]);
    for (var j = 0u; j < AL; j++) { dst4[((i * AL + j) * P.T + t) * C4 + c4] = row[j]; }
  }
}

// What ot and ot4 write for invocation id: the NxN outputs o[i][j] = (A^T Z A)[i][j] + bias (before the
// activation; i, j < N of the 4x4 array) of tile t for output channels m..m+3 (one invocation per (t, m/4),
// id = t * M/4 + m/4, as `it`), the tile's column, row and image, and its first destination channel Coff + m.
struct OutTile { o: array<array<vec4f, 4>, 4>, tx: u32, ty: u32, b: u32, c0: u32 }

fn out_tile(id: u32) -> OutTile {
  let M4 = P.M / 4u;
  let t = id / M4;
  let m4 = id - t * M4;
  // columns first: s[i][j] = (A^T Z)[i][j], i < N
  var s: array<array<vec4f, AL>, N>;
  for (var j = 0u; j < AL; j++) {
    var col: array<vec4f, AL>;
    for (var i = 0u; i < AL; i++) { col[i] = z4[((i * AL + j) * P.T + t) * M4 + m4]; }
    let ac = at_{{N}}(col);
    for (var i = 0u; i < N; i++) { s[i][j] = ac[i]; }
  }
  var bv = vec4f(0.0);
  if (P.has_bias != 0u) { let m = m4 * 4u; bv = vec4f(bias[m], bias[m + 1u], bias[m + 2u], bias[m + 3u]); }
  var o: array<array<vec4f, 4>, 4>;
  for (var i = 0u; i < N; i++) {
    let row = at_{{N}}(s[i]);
    for (var j = 0u; j < N; j++) { o[i][j] = row[j] + bv; }
  }
  let pos = tile_pos(t);
  return OutTile(o, pos.x, pos.y, pos.z, P.Coff + m4 * 4u);
}

// act(v) for 4 channels: leaky and linear (the YOLO case) as one vector select, bit for bit act_code's
fn act4(v: vec4f) -> vec4f {
  if (P.act == ACT_LEAKY || P.act == ACT_LINEAR) {
    return select(select(1.0, 0.1, P.act == ACT_LEAKY) * v, v, v > vec4f(0.0));
  }
  return vec4f(act_code(v.x, P.act), act_code(v.y, P.act), act_code(v.z, P.act), act_code(v.w, P.act));
}

// y = act(A^T Z A + bias) for tile t and output channels m..m+3, one value per store (any OW); with
// P.pool_h > 0 the 2x2/2 max pool of it (the conv's own output is never stored).
@compute @workgroup_size(WG)
fn ot(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let id = (P.t0 + wid.x) * WG + lid.x;
  if (id >= P.T * (P.M / 4u)) { return; }
  let r = out_tile(id);
  let o = r.o;
  let tx = r.tx;
  let ty = r.ty;
  let c0 = r.c0;
  let b = r.b;
  if (P.pool_h > 0u) {
    // the tile holds (N/2)x(N/2) whole windows; a window's taps past OH / OW are left out (Darknet's -FLT_MAX
    // padding)
    let qplane = P.pool_h * P.pool_w;
    let qbase = (b * P.Ctot + c0) * qplane;
    for (var pi = 0u; pi < N / 2u; pi++) {
      let qy = ty * (N / 2u) + pi;
      if (qy >= P.pool_h) { break; }
      for (var pj = 0u; pj < N / 2u; pj++) {
        let qx = tx * (N / 2u) + pj;
        if (qx >= P.pool_w) { break; }
        var best = vec4f(NEG_FLT_MAX);
        for (var di = 0u; di < 2u; di++) {
          for (var dj = 0u; dj < 2u; dj++) {
            if (qy * 2u + di < P.OH && qx * 2u + dj < P.OW) { best = max(best, act4(o[pi * 2u + di][pj * 2u + dj])); }
          }
        }
        let k = qbase + qy * P.pool_w + qx;
        for (var q = 0u; q < 4u; q++) { y[k + q * qplane] = best[q]; }
      }
    }
    return;
  }
  let plane = P.OH * P.OW;
  let base = (b * P.Ctot + c0) * plane;
  for (var i = 0u; i < N; i++) {
    let oy = ty * N + i;
    if (oy >= P.OH) { break; }
    for (var j = 0u; j < N; j++) {
      let ox = tx * N + j;
      if (ox >= P.OW) { break; }
      let v = act4(o[i][j]);
      let k = base + oy * P.OW + ox;
      for (var q = 0u; q < 4u; q++) { y[k + q * plane] = v[q]; }
    }
  }
}

// The same with a tile's row of 4 outputs as one vec4 store (N = 4 only, OW % 4 == 0: rows and planes
// 4-aligned).
@compute @workgroup_size(WG)
fn ot4(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let id = (P.t0 + wid.x) * WG + lid.x;
  if (id >= P.T * (P.M / 4u)) { return; }
  let r = out_tile(id);
  let o = r.o;
  let ty = r.ty;
  let plane4 = P.OH * P.OW / 4u;
  let base = (r.b * P.Ctot + r.c0) * plane4 + r.tx;
  for (var i = 0u; i < 4u; i++) {
    let oy = ty * 4u + i;
    if (oy >= P.OH) { break; }
    let v = array<vec4f, 4>(act4(o[i][0]), act4(o[i][1]), act4(o[i][2]), act4(o[i][3]));
    let k = base + oy * (P.OW / 4u);
    for (var q = 0u; q < 4u; q++) { y4[k + q * plane4] = vec4f(v[0][q], v[1][q], v[2][q], v[3][q]); }
  }
}
