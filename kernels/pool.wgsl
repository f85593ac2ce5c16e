// Darknet [maxpool] (maxpool_layer.c) and global [avgpool] (avgpool_layer.c), forward and backward.
//
// maxpool: out = (in + pad - size)/stride + 1 per axis; the window of output (oy, ox) starts at
// (oy*sy - pad/2, ox*sx - pad/2), so with Darknet's default pad = size-1 the extra padding is on the
// right/bottom. Out-of-range taps read -FLT_MAX and the running max starts at -FLT_MAX with a strict `>`,
// so the first maximum in row-major window order wins and a window with no valid tap yields -FLT_MAX
// with no argmax (-1). `idx` saves the argmax as y*w + x within the input plane.
// Large windows (SPP's 5, 9, 13) run separably, bit for bit the same: max_rows takes, for every input row and
// output column, the first maximum of the window's columns in that row (value in `out`, column in `idx`, both
// P.h x P.ow temporaries per plane); max_cols takes the first maximum of those over the window's rows. The first
// row holding the window's maximum, at its first column, is the row-major first maximum. 2*size loads per
// output instead of size*size.
// max_bwd gathers, per input element, dy of every output whose window covers it and whose argmax is it
// (the transpose of the scatter net.delta[index] += delta[i], without atomics); one invocation per input row.
//
// avgpool: out[p] = sum over the h*w plane / (h*w); dx[p, s] = dy[p] / (h*w).
//
// local_avg (Darknet [local_avgpool], maxpool_layer.c forward_local_avgpool_layer): the maxpool window
// geometry; each output is the mean of its window's valid taps (padding taps are not counted; a window with
// none gives 0, where Darknet divides 0 by 0). local_avg_bwd is the exact gradient of that forward: each
// input gathers dy / count of every window covering it. (Darknet's backward divides by size*size instead,
// which differs only at borders with padding; with the corpus's size=1 stride=1 both are dy.)
//
// ST: the storage type of x and out (f32, or f16 for inference: docs/kernels.md "f16 storage"); math in f32.

alias ST = {{ST}};
struct Params { n: u32, w: u32, h: u32, ow: u32, oh: u32, size: u32, sx: u32, sy: u32, pad: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<ST>;
@group(0) @binding(2) var<storage, read_write> out: array<ST>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
// max_cols: the column argmax max_rows wrote (its idx)
@group(0) @binding(5) var<storage, read> cidx: array<i32>;

override WG: u32 = 256;
const NEG_FLT_MAX: f32 = bitcast<f32>(0xff7fffffu); // -FLT_MAX

// The window of output i: its plane's first input index and its top-left input coordinate (negative in
// the padding); plane and ox: its plane and output column.
struct Window { base: u32, y0: i32, x0: i32, plane: u32, ox: u32 }

fn window_of(i: u32) -> Window {
  let ox = i % P.ow;
  let t = i / P.ow;
  let oy = t % P.oh;
  let p = t / P.oh;
  let off = i32(P.pad / 2u);
  return Window(p * P.w * P.h, i32(oy * P.sy) - off, i32(ox * P.sx) - off, p, ox);
}

// n = output elements
@compute @workgroup_size(WG)
fn max_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let win = window_of(i);
  let w = i32(P.w);
  let h = i32(P.h);
  let size = i32(P.size);
  var best = NEG_FLT_MAX;
  var arg = -1;
  for (var ky = 0; ky < size; ky++) {
    let yy = win.y0 + ky;
    if (yy < 0 || yy >= h) { continue; }
    for (var kx = 0; kx < size; kx++) {
      let xx = win.x0 + kx;
      if (xx < 0 || xx >= w) { continue; }
      let v = f32(x[win.base + u32(yy * w + xx)]);
      if (v > best) {
        best = v;
        arg = yy * w + xx;
      }
    }
  }
  out[i] = ST(best);
  idx[i] = arg;
}

// Inference (nothing recorded, so no argmax): the outputs of one plane along x (P.n = oh * ow per plane),
// the plane along workgroup_id.y: one division per output instead of max_fwd's four, and the window size
// KS a pipeline constant, so the taps unroll (loads clamped into the map, taps outside it skipped by the
// compare). The same values as max_fwd. On lavapipe yolov3-tiny's two unfused pools at 416 went from 1.77 to
// 0.9 ms.
override KS: i32 = 2; // the window size (max_infer)
@compute @workgroup_size(WG)
fn max_infer(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= P.n) { return; }
  let oy = i / P.ow;
  let ox = i - oy * P.ow;
  let off = i32(P.pad / 2u);
  let y0 = i32(oy * P.sy) - off;
  let x0 = i32(ox * P.sx) - off;
  let base = gid.y * P.w * P.h;
  let w = i32(P.w);
  let h = i32(P.h);
  var best = NEG_FLT_MAX;
  for (var ky = 0; ky < KS; ky++) {
    let yy = y0 + ky;
    for (var kx = 0; kx < KS; kx++) {
      let xx = x0 + kx;
      let v = f32(x[base + u32(clamp(yy, 0, h - 1) * w + clamp(xx, 0, w - 1))]);
      if (yy >= 0 && yy < h && xx >= 0 && xx < w && v > best) { best = v; }
    }
  }
  out[gid.y * P.n + i] = ST(best);
}

// Separable maxpool, pass 1: n = planes * h * ow; out = the row maxima, idx = their columns (-1: none).
@compute @workgroup_size(WG)
fn max_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ox = i % P.ow;
  let row = i / P.ow; // plane * h + yy
  let x0 = i32(ox * P.sx) - i32(P.pad / 2u);
  let w = i32(P.w);
  var best = NEG_FLT_MAX;
  var arg = -1;
  for (var kx = 0; kx < i32(P.size); kx++) {
    let xx = x0 + kx;
    if (xx < 0 || xx >= w) { continue; }
    let v = f32(x[row * P.w + u32(xx)]);
    if (v > best) {
      best = v;
      arg = xx;
    }
  }
  out[i] = ST(best);
  idx[i] = arg;
}

// Separable maxpool, pass 2: n = output elements; x = the row maxima of max_rows, cidx = their columns.
@compute @workgroup_size(WG)
fn max_cols(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let win = window_of(i);
  let rows = win.plane * P.h; // the plane's first row of row maxima
  let h = i32(P.h);
  var best = NEG_FLT_MAX;
  var by = -1; // the row of the first maximum (its column is read once, after the loop)
  for (var ky = 0; ky < i32(P.size); ky++) {
    let yy = win.y0 + ky;
    if (yy < 0 || yy >= h) { continue; }
    let v = f32(x[(rows + u32(yy)) * P.ow + win.ox]);
    if (v > best) {
      best = v;
      by = yy;
    }
  }
  out[i] = ST(best);
  idx[i] = select(-1, by * i32(P.w) + cidx[(rows + u32(max(by, 0))) * P.ow + win.ox], by >= 0);
}

// Output rows (or columns) whose window covers input coordinate c: o*st - off <= c < o*st - off + size.
fn covering(c: u32, st: u32, limit: u32) -> vec2i {
  let u = i32(c) + i32(P.pad / 2u);
  // stride 1 (SPP, yolov3-tiny's last maxpool) without the divisions, which cost more than the loads
  if (st == 1u) { return vec2i(max(u - i32(P.size) + 1, 0), min(u, i32(limit) - 1)); }
  let s = i32(st);
  var lo = 0;
  if (u >= i32(P.size)) { lo = (u - i32(P.size) + s) / s; }
  let hi = min(u / s, i32(limit) - 1);
  return vec2i(lo, hi);
}

// n = input rows (planes * h); out = dx. One invocation per input row, its elements in turn: the row's
// plane, row and covering output rows are found once (run-time divisions are a scalar loop per lane on
// lavapipe; per element they cost more than the loads).
@compute @workgroup_size(WG)
fn max_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= P.n) { return; }
  let iy = t % P.h;
  let p = t / P.h;
  let ry = covering(iy, P.sy, P.oh);
  let base = p * P.ow * P.oh;
  for (var ix = 0u; ix < P.w; ix++) {
    let me = i32(iy * P.w + ix);
    let rx = covering(ix, P.sx, P.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy <= ry.y; oy++) {
      for (var ox = rx.x; ox <= rx.y; ox++) {
        let o = base + u32(oy) * P.ow + u32(ox);
        if (idx[o] == me) { acc += dy[o]; }
      }
    }
    out[t * P.w + ix] = ST(acc);
  }
}

// Non-overlapping windows (size <= stride in both directions): every input is in at most one window, so
// the gradient is a scatter from the outputs into a zeroed dx: one invocation per output, one division,
// instead of the gather above (a division chain and a window search per input). n = output elements.
@compute @workgroup_size(WG)
fn max_bwd_scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= P.n) { return; }
  let a = idx[o];
  if (a < 0) { return; }
  let p = o / (P.ow * P.oh);
  out[p * P.w * P.h + u32(a)] = ST(dy[o]);
}

// Windows that tile the input exactly (size == stride, no left/top offset, in = out*size): every input is
// in exactly one window, so one invocation per output writes its whole window (dy at the argmax, 0 elsewhere)
// and dx needs no zero fill first. n = output elements.
@compute @workgroup_size(WG)
fn max_bwd_tile(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= P.n) { return; }
  let ox = o % P.ow;
  let t = o / P.ow;
  let oy = t % P.oh;
  let p = t / P.oh;
  let a = idx[o];
  let g = dy[o];
  let base = p * P.w * P.h;
  for (var r = 0u; r < P.size; r++) {
    let row = (oy * P.size + r) * P.w + ox * P.size;
    for (var c = 0u; c < P.size; c++) {
      out[base + row + c] = ST(select(0.0, g, i32(row + c) == a));
    }
  }
}

// Valid taps of window o along one axis (input extent `limit`): the backward's per-window count.
fn taps(o: u32, st: u32, limit: u32) -> u32 {
  let start = i32(o * st) - i32(P.pad / 2u);
  let lo = max(start, 0);
  let hi = min(start + i32(P.size), i32(limit));
  return u32(max(hi - lo, 0));
}

// n = output elements; the taps are counted as Darknet's `counter`
@compute @workgroup_size(WG)
fn local_avg_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let win = window_of(i);
  let w = i32(P.w);
  let h = i32(P.h);
  let size = i32(P.size);
  var acc = 0.0;
  var count = 0u;
  for (var ky = 0; ky < size; ky++) {
    let yy = win.y0 + ky;
    if (yy < 0 || yy >= h) { continue; }
    for (var kx = 0; kx < size; kx++) {
      let xx = win.x0 + kx;
      if (xx < 0 || xx >= w) { continue; }
      acc += f32(x[win.base + u32(yy * w + xx)]);
      count++;
    }
  }
  out[i] = ST(select(0.0, acc / f32(count), count > 0u));
}

// n = input elements; out = dx
@compute @workgroup_size(WG)
fn local_avg_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ix = i % P.w;
  let t = i / P.w;
  let iy = t % P.h;
  let p = t / P.h;
  let ry = covering(iy, P.sy, P.oh);
  let rx = covering(ix, P.sx, P.ow);
  let base = p * P.ow * P.oh;
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    let cy = taps(u32(oy), P.sy, P.h);
    for (var ox = rx.x; ox <= rx.y; ox++) {
      acc += dy[base + u32(oy) * P.ow + u32(ox)] / f32(cy * taps(u32(ox), P.sx, P.w));
    }
  }
  out[i] = ST(acc);
}

// One workgroup per plane, a tree over TREE threads run by WV invocations (lib/tree.wgsl); n = planes, w =
// h*w of a plane.
const TREE: u32 = 256u;
override WV: u32 = TREE;
// #include "lib/tree.wgsl"
@compute @workgroup_size(WV)
fn avg_fwd(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = wid.x + wid.y * nwg.x;
  if (p >= P.n) { return; }
  let hw = P.w;
  var h: array<vec2f, TREE_VMAX>;
  for (var j = 0u; j < TREE / WV; j++) {
    var acc = 0.0;
    for (var s = l + WV * j; s < hw; s += TREE) { acc += f32(x[p * hw + s]); }
    h[j] = vec2f(acc, 0.0);
  }
  let r = tree_sum2(l, h);
  if (l == 0u) { out[p] = ST(r.x / f32(hw)); }
}

// Small planes (src/tensor/ops/pool.ts avgpoolTuning: the global pools of SE blocks and classifier heads, many
// planes of 7x7 to 32x32): one plane per invocation, WG planes per workgroup. Thread s of the same TREE-thread
// tree sums elements s, s + TREE, ... and all levels run in registers (tree_sum2 at WV = 1): the same
// additions as avg_fwd, so the same bits, without a workgroup and its barriers per plane (a 960-plane pool of
// 8x8 maps took 1 ms that way on lavapipe).
@compute @workgroup_size(WG)
fn avg_fwd_planes(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let hw = P.w;
  var h: array<f32, TREE>;
  for (var s = 0u; s < TREE; s++) {
    var acc = 0.0;
    for (var e = s; e < hw; e += TREE) { acc += f32(x[p * hw + e]); }
    h[s] = acc;
  }
  for (var s = TREE / 2u; s > 0u; s >>= 1u) {
    for (var j = 0u; j < s; j++) { h[j] += h[j + s]; }
  }
  out[p] = ST(h[0] / f32(hw));
}

// n = input elements, w = h*w of a plane; out = dx
@compute @workgroup_size(WG)
fn avg_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] = ST(dy[i / P.w] / f32(P.w));
}

// ---- 2x2 stride-2 windows from (0, 0) on planes whose width is a multiple of 4 (Darknet's usual
// [maxpool] size=2 stride=2): one invocation per pair of neighbouring outputs (n = pairs), which reads one
// vec4 of each of its two input rows and writes a vec2 of outputs and argmaxes. The same taps in the same
// order and comparisons as max_fwd / max_bwd_tile (an odd height's last window row reads only its first
// input row), so the same outputs bit for bit.
@group(0) @binding(1) var<storage, read> x4: array<vec4<ST>>;
@group(0) @binding(2) var<storage, read_write> out2: array<vec2<ST>>;
@group(0) @binding(3) var<storage, read_write> idx2: array<vec2i>;
@group(0) @binding(4) var<storage, read> dy2: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4f>;

// #include "lib/best2x2.wgsl"

// The pair t of the flat grid: its index in the row, output row and plane.
struct Pair { k: u32, oy: u32, p: u32 }

fn pair_of(t: u32) -> Pair {
  let hp = P.ow / 2u;
  let row = t / hp;
  let oy = row % P.oh;
  return Pair(t - row * hp, oy, row / P.oh);
}

@compute @workgroup_size(WG)
fn max2_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= P.n) { return; }
  let q = pair_of(t);
  let k = q.k;
  let oy = q.oy;
  let p = q.p;
  let iy = 2u * oy;
  let w4 = P.w / 4u;
  let r0 = (p * P.h + iy) * w4 + k;
  let a = vec4f(x4[r0]);
  let second = iy + 1u < P.h;
  var b = vec4f(NEG_FLT_MAX);
  if (second) { b = vec4f(x4[r0 + w4]); }
  let c = i32(iy * P.w + 4u * k);
  let o0 = best2x2(vec4f(a.x, a.y, b.x, b.y), c, i32(P.w), second);
  let o1 = best2x2(vec4f(a.z, a.w, b.z, b.w), c + 2, i32(P.w), second);
  out2[t] = vec2<ST>(vec2f(o0.v, o1.v));
  idx2[t] = vec2i(o0.a, o1.a);
}

// h = 2*oh (the windows tile the plane): each pair of outputs writes its two 2x4 input blocks (dy at the
// argmax, 0 elsewhere). n = pairs.
@compute @workgroup_size(WG)
fn max2_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= P.n) { return; }
  let q = pair_of(t);
  let k = q.k;
  let oy = q.oy;
  let p = q.p;
  let a = idx2[t];
  let g = dy2[t];
  let w4 = P.w / 4u;
  let r0 = (p * P.h + 2u * oy) * w4 + k;
  let c0 = i32(2u * oy * P.w + 4u * k);
  let c1 = c0 + i32(P.w);
  out4[r0] = vec4f(select(0.0, g.x, a.x == c0), select(0.0, g.x, a.x == c0 + 1), select(0.0, g.y, a.y == c0 + 2), select(0.0, g.y, a.y == c0 + 3));
  out4[r0 + w4] = vec4f(select(0.0, g.x, a.x == c1), select(0.0, g.x, a.x == c1 + 1), select(0.0, g.y, a.y == c1 + 2), select(0.0, g.y, a.y == c1 + 3));
}
