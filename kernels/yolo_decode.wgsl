// Detection-head decode: Darknet [yolo] (logistic, or new_coords), [region] (YOLOv2: logistic x/y/obj,
// exp w/h with anchors in grid units, softmax over classes) and [Gaussian_yolo] (MODE 4), straight from the
// head convolution's output.
//
// Input x: NCHW [B, A*(5+C), H, W]; channel a*(5+C)+k holds attribute k (tx, ty, tw, th, obj, class 0..C-1)
// of anchor a (MODE 4: [B, A*(9+C), H, W], see below). Anchors: [2*A] floats (w, h) of this head's anchors
// (after mask): pixels for [yolo] and [Gaussian_yolo], grid cells for [region].
//
// MODE (override): 0 = [yolo]          x,y,obj,classes logistic; w = exp(tw)*aw/net_w
//                  1 = [yolo] new_coords  no activation here (the conv before it is logistic);
//                                        w = (2*tw)^2*aw/net_w
//                  2 = [region]        x,y,obj logistic; w = exp(tw)*aw/W; classes softmax
//                  3 = [region] softmax=0  the same with logistic classes
//                  4 = [Gaussian_yolo]  E = 9+C entries per anchor: 0 x, 1 sigma_x, 2 y, 3 sigma_y, 4 w,
//                                        5 sigma_w, 6 h, 7 sigma_h, 8 obj, 9.. classes; all logistic but w, h;
//                                        box as MODE 0 (AlexeyAB gaussian_yolo_layer.c)
// For MODE 0, 1 and 4, x and y are scaled by scale_x_y: v*s - 0.5*(s-1) (Darknet forward_yolo_layer).
// cx = (col + x)/W, cy = (row + y)/H, normalised to the network input.
// Class score = objectness * class probability (Darknet get_yolo_detections / OpenCV region layer);
// MODE 4: (objectness * class probability) * (1 - uc_aver), uc_aver = the mean of the 4 sigmas (Darknet
// get_gaussian_yolo_detections).
//
// Entry points:
//   rows    one invocation per (batch, anchor, cell): writes OpenCV's row layout [B, H*W*A, 5+C],
//           row (y*W + x)*A + a = [cx, cy, w, h, obj, score_0..score_{C-1}], scores <= thresh set to 0.
//   detect  one invocation per (batch, anchor, cell): if obj > thresh, appends one record per class whose
//           score > thresh (Darknet's test), slot taken with atomicAdd on count[0]; records past `cap` are
//           counted but not written (the host re-runs with a larger buffer). Record (u32 words):
//             0 batch, 1 head, 2 row ((y*W + x)*A + a), 3 class, 4 obj, 5 score, 6 cx, 7 cy, 8 w, 9 h
//             (f32 bit patterns from word 4 on), then with SCORES=1 the C class scores of that box
//             (Darknet's dets.prob: score if > thresh else 0). Record stride = P.rec: 10, or with SCORES=1 10 + the
//             largest class count of the heads decoded together (one stride for every head's records).
//   clear   sets count[0] to P.head (the host passes 0; run before the first head's detect).

struct Params {
  B: u32,
  A: u32,
  C: u32,
  H: u32,
  W: u32,
  net_w: f32,
  net_h: f32,
  scale_xy: f32,
  thresh: f32,
  head: u32,
  cap: u32,
  rec: u32,   // record stride in words: 10, or 10 + the largest class count of all heads with SCORES=1
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(3) var<storage, read_write> rows_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> count: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> records: array<u32>;

override WG: u32 = 64;
override MODE: u32 = 0;
override SCORES: u32 = 0;

// #include "lib/sigmoid.wgsl"

struct Cell {
  ok: bool,
  b: u32,
  a: u32,
  cell: u32,
  base: u32,   // index of attribute 0 of this (b, a, cell) in x
  hw: u32,     // plane stride
}

// Entries per anchor: 5 + C ([yolo], [region]), 9 + C ([Gaussian_yolo]).
fn entries() -> u32 {
  if (MODE == 4u) { return 9u + P.C; }
  return 5u + P.C;
}

fn locate(gid: vec3u, nwg: vec3u) -> Cell {
  var c: Cell;
  let i = gid.x + gid.y * nwg.x * WG;
  let hw = P.H * P.W;
  c.hw = hw;
  c.ok = i < P.B * P.A * hw;
  c.cell = i % hw;
  let ba = i / hw;
  c.a = ba % P.A;
  c.b = ba / P.A;
  c.base = (ba * entries()) * hw + c.cell;
  return c;
}

// [cx, cy, w, h] normalised to the network input.
fn decode_box(c: Cell) -> vec4f {
  let tx = x[c.base];
  let ty = x[c.base + c.hw];
  let tw = x[c.base + 2u * c.hw];
  let th = x[c.base + 3u * c.hw];
  let aw = anchors[2u * c.a];
  let ah = anchors[2u * c.a + 1u];
  let col = f32(c.cell % P.W);
  let row = f32(c.cell / P.W);
  let fw = f32(P.W);
  let fh = f32(P.H);
  let s = P.scale_xy;
  let off = 0.5 * (s - 1.0);
  if (MODE == 1u) {
    let bx = tx * s - off;
    let by = ty * s - off;
    return vec4f((col + bx) / fw, (row + by) / fh, 4.0 * tw * tw * aw / P.net_w, 4.0 * th * th * ah / P.net_h);
  }
  if (MODE == 4u) {
    let gx = sigmoid_darknet(x[c.base]) * s - off;
    let gy = sigmoid_darknet(x[c.base + 2u * c.hw]) * s - off;
    let gw = x[c.base + 4u * c.hw];
    let gh = x[c.base + 6u * c.hw];
    return vec4f((col + gx) / fw, (row + gy) / fh, exp(gw) * aw / P.net_w, exp(gh) * ah / P.net_h);
  }
  if (MODE >= 2u) {
    return vec4f((col + sigmoid_darknet(tx)) / fw, (row + sigmoid_darknet(ty)) / fh, exp(tw) * aw / fw, exp(th) * ah / fh);
  }
  let bx = sigmoid_darknet(tx) * s - off;
  let by = sigmoid_darknet(ty) * s - off;
  return vec4f((col + bx) / fw, (row + by) / fh, exp(tw) * aw / P.net_w, exp(th) * ah / P.net_h);
}

fn objectness(c: Cell) -> f32 {
  if (MODE == 4u) { return sigmoid_darknet(x[c.base + 8u * c.hw]); }
  let v = x[c.base + 4u * c.hw];
  if (MODE == 1u) { return v; }
  return sigmoid_darknet(v);
}

// Softmax statistics over the classes of one box (MODE 2): (max, 1/sum exp(v - max)).
fn softmax_stats(c: Cell) -> vec2f {
  var m = x[c.base + 5u * c.hw];
  for (var j = 1u; j < P.C; j++) { m = max(m, x[c.base + (5u + j) * c.hw]); }
  var s = 0.0;
  for (var j = 0u; j < P.C; j++) { s += exp(x[c.base + (5u + j) * c.hw] - m); }
  return vec2f(m, 1.0 / s);
}

// MODE 4: (1 - uc_aver, 1), uc_aver = (sigma_x + sigma_y + sigma_w + sigma_h) / 4 (summed in that order).
fn certainty(c: Cell) -> vec2f {
  let u = sigmoid_darknet(x[c.base + c.hw]) + sigmoid_darknet(x[c.base + 3u * c.hw]) + sigmoid_darknet(x[c.base + 5u * c.hw]) + sigmoid_darknet(x[c.base + 7u * c.hw]);
  return vec2f(1.0 - u / 4.0, 1.0);
}

// objectness * probability of class j (MODE 4: times sm.x = 1 - uc_aver).
fn class_score(c: Cell, obj: f32, j: u32, sm: vec2f) -> f32 {
  if (MODE == 4u) { return (obj * sigmoid_darknet(x[c.base + (9u + j) * c.hw])) * sm.x; }
  let v = x[c.base + (5u + j) * c.hw];
  if (MODE == 1u) { return obj * v; }
  if (MODE == 2u) { return obj * (exp(v - sm.x) * sm.y); }
  return obj * sigmoid_darknet(v);
}

@compute @workgroup_size(WG)
fn rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = locate(gid, nwg);
  if (!c.ok) { return; }
  let bx = decode_box(c);
  let obj = objectness(c);
  var sm = vec2f(0.0, 1.0);
  if (MODE == 2u) { sm = softmax_stats(c); }
  if (MODE == 4u) { sm = certainty(c); }
  let k = 5u + P.C;
  let r = c.b * c.hw * P.A + c.cell * P.A + c.a;
  let o = r * k;
  rows_out[o] = bx.x;
  rows_out[o + 1u] = bx.y;
  rows_out[o + 2u] = bx.z;
  rows_out[o + 3u] = bx.w;
  rows_out[o + 4u] = obj;
  for (var j = 0u; j < P.C; j++) {
    let p = class_score(c, obj, j, sm);
    rows_out[o + 5u + j] = select(0.0, p, p > P.thresh);
  }
}

@compute @workgroup_size(WG)
fn detect(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = locate(gid, nwg);
  if (!c.ok) { return; }
  let obj = objectness(c);
  if (!(obj > P.thresh)) { return; }
  let bx = decode_box(c);
  var sm = vec2f(0.0, 1.0);
  if (MODE == 2u) { sm = softmax_stats(c); }
  if (MODE == 4u) { sm = certainty(c); }
  let stride = P.rec;
  let row = c.cell * P.A + c.a;
  for (var j = 0u; j < P.C; j++) {
    let p = class_score(c, obj, j, sm);
    if (!(p > P.thresh)) { continue; }
    let slot = atomicAdd(&count[0], 1u);
    if (slot >= P.cap) { continue; }
    let o = slot * stride;
    records[o] = c.b;
    records[o + 1u] = P.head;
    records[o + 2u] = row;
    records[o + 3u] = j;
    records[o + 4u] = bitcast<u32>(obj);
    records[o + 5u] = bitcast<u32>(p);
    records[o + 6u] = bitcast<u32>(bx.x);
    records[o + 7u] = bitcast<u32>(bx.y);
    records[o + 8u] = bitcast<u32>(bx.z);
    records[o + 9u] = bitcast<u32>(bx.w);
    if (SCORES == 1u) {
      for (var q = 0u; q < P.C; q++) {
        let pq = class_score(c, obj, q, sm);
        records[o + 10u + q] = bitcast<u32>(select(0.0, pq, pq > P.thresh));
      }
    }
  }
}

@compute @workgroup_size(1)
fn clear() {
  atomicStore(&count[0], P.head);
}
