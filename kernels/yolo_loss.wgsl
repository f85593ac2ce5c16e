// Darknet [yolo] training loss (pjreddie 61c9d02e and AlexeyAB forward_yolo_layer), plus the pieces every YOLO
// loss shares (the backward scale, the final sums). src/yolo/loss_darknet.ts drives it; docs/losses.md has the
// semantics.
//
// Head input z: [B, A*E, H, W] (E = 5 + C), entry k of anchor a at ((b*A + a)*E + k)*H*W + j*W + i.
// delta (Darknet's l.delta = -dL/dz) has the same layout. partials: [5][B*A*H*W] per-prediction sums
//   row 0 box, 1 obj, 2 cls (the implied loss whose gradient is -delta), 3 sum of delta^2 (Darknet's cost),
//   4 ignored (1 where the objectness delta is the ignore branch's: ignore_thresh zeroed it, or with
//   objectness_smooth raised it to obj_norm*(best_iou - out), and no truth's write replaced it).
//
// table (one upload per head and step, f32 words; integers bitcast):
//   [anch]  2*A anchor w, h (pixels) of this head's mask
//   [img]   B+1 truth start indices per image (u32)
//   [truth] 4 per truth: x, y, w, h (normalised), all images
//   [slot]  SR = 8 + 2*C words per assigned cell: cell (u32), box first (u32), box count (u32), obj multiplier,
//           focal class (i32, -1 none), flags (u32, bit 0: average the box deltas), anchor w, anchor h,
//           then C class targets, then C class multipliers (negative: the delta carries the focal factor)
//   [box]   8 per box contribution: truth x, y, w, h, normaliser, 0, 0, 0
//
// dn_neg runs first over every prediction (the ignore search: one thread per prediction looping over its
// image's truths), then dn_pos over the assigned cells overwrites their deltas and partials (no two slots share
// a cell, so there is no race; dispatches in one pass are ordered). With AlexeyAB objectness_smooth, dn_pos
// reads the objectness delta dn_neg left in its cell and keeps it (and its partials) unless it is exactly 0.

struct Params {
  n: u32,           // threads: predictions (dn_neg) or slots (dn_pos)
  A: u32,
  H: u32,
  W: u32,
  C: u32,
  netW: f32,
  netH: f32,
  flavor: u32,      // 0 pjreddie, 1 AlexeyAB
  iouLoss: u32,     // 0 mse, 1 iou, 2 giou, 3 diou, 4 ciou
  newCoords: u32,
  scaleXY: f32,
  ignoreThresh: f32,
  objNorm: f32,     // objectness-delta multiplier of the negatives
  maxDelta: f32,    // clip of the IoU-loss deltas (3.4e38: none)
  offAnch: u32,
  offImg: u32,
  offTruth: u32,
  offSlot: u32,
  offBox: u32,
  zero: u32,        // 0: the opaque guard of log1p_pos
  cells: u32,       // B*A*H*W: the row stride of partials
  objSmooth: u32,   // AlexeyAB objectness_smooth=1
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> tab: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

override WG: u32 = 64;

fn tabu(k: u32) -> u32 { return bitcast<u32>(tab[k]); }

// #include "lib/stable.wgsl"
// #include "lib/darknet_box.wgsl"

// ---------------------------------------------------------------- per prediction

struct Pred {
  base: u32,   // index of entry 0
  hw: u32,     // entry stride
  b: u32,
  i: u32,
  j: u32,
  a: u32,
}

fn pred_of(p: u32) -> Pred {
  let hw = P.H * P.W;
  let i = p % P.W;
  let j = (p / P.W) % P.H;
  let a = (p / hw) % P.A;
  let b = p / (hw * P.A);
  let E = 5u + P.C;
  return Pred((b * P.A + a) * E * hw + j * P.W + i, hw, b, i, j, a);
}

// Darknet's l.output of entries x, y (logistic unless new_coords, then scale_x_y)
fn out_xy(v: f32) -> f32 {
  let s = select(sigmoid_stable(v), v, P.newCoords != 0u);
  return s * P.scaleXY - 0.5 * (P.scaleXY - 1.0);
}

// l.output of objectness and classes
fn out_act(v: f32) -> f32 { return select(sigmoid_stable(v), v, P.newCoords != 0u); }

// the implied loss of an objectness / class entry with target t and multiplier m
fn act_loss(v: f32, t: f32) -> f32 {
  if (P.newCoords != 0u) { return 0.5 * (t - v) * (t - v); }
  return logistic_loss(v, t);
}

// get_yolo_box from the outputs: normalised x, y, w, h
fn pred_box(q: Pred, ox: f32, oy: f32, zw: f32, zh: f32, aw: f32, ah: f32) -> vec4f {
  var w: f32;
  var h: f32;
  if (P.newCoords != 0u) {
    w = zw * zw * 4.0 * aw / P.netW;
    h = zh * zh * 4.0 * ah / P.netH;
  } else {
    w = exp(zw) * aw / P.netW;
    h = exp(zh) * ah / P.netH;
  }
  return vec4f((f32(q.i) + ox) / f32(P.W), (f32(q.j) + oy) / f32(P.H), w, h);
}

@compute @workgroup_size(WG)
fn dn_neg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let q = pred_of(p);
  let E = 5u + P.C;
  let aw = tab[P.offAnch + 2u * q.a];
  let ah = tab[P.offAnch + 2u * q.a + 1u];
  let box = pred_box(q, out_xy(z[q.base]), out_xy(z[q.base + q.hw]), z[q.base + 2u * q.hw], z[q.base + 3u * q.hw], aw, ah);
  var best = 0.0;
  let t0 = tabu(P.offImg + q.b);
  let t1 = tabu(P.offImg + q.b + 1u);
  for (var t = t0; t < t1; t++) {
    let o = P.offTruth + 4u * t;
    let v = box_iou(box, vec4f(tab[o], tab[o + 1u], tab[o + 2u], tab[o + 3u]));
    if (v > best) { best = v; }
  }
  var ignore = best > P.ignoreThresh;
  if (P.flavor == 1u) {
    // AlexeyAB only ignores predictions with some class output above 0.25 (compare_yolo_class)
    var anyClass = false;
    for (var c = 0u; c < P.C; c++) {
      if (out_act(z[q.base + (5u + c) * q.hw]) > 0.25) { anyClass = true; }
    }
    ignore = ignore && anyClass;
  }
  let zo = z[q.base + 4u * q.hw];
  let o = out_act(zo);
  var d = P.objNorm * (0.0 - o);
  var l = P.objNorm * act_loss(zo, 0.0);
  if (ignore) {
    if (P.objSmooth != 0u) {
      // AlexeyAB process_batch, objectness_smooth: delta_obj = obj_normalizer * (best_match_iou - output),
      // taken only if > the delta already there (best is best_match_iou here: ignore needs a class > 0.25)
      let ds = P.objNorm * (best - o);
      if (ds > d) {
        d = ds;
        l = P.objNorm * act_loss(zo, best);
      } else {
        ignore = false;
      }
    } else {
      d = 0.0;
      l = 0.0;
    }
  }
  for (var k = 0u; k < E; k++) { delta[q.base + k * q.hw] = 0.0; }
  delta[q.base + 4u * q.hw] = d;
  let N = P.cells;
  partials[p] = 0.0;
  partials[N + p] = l;
  partials[2u * N + p] = 0.0;
  partials[3u * N + p] = d * d;
  partials[4u * N + p] = select(0.0, 1.0, ignore);
}

@compute @workgroup_size(WG)
fn dn_pos(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = gid.x + gid.y * nwg.x * WG;
  if (s >= P.n) { return; }
  let SR = 8u + 2u * P.C;
  let r = P.offSlot + s * SR;
  let p = tabu(r);
  let bFirst = tabu(r + 1u);
  let bCount = tabu(r + 2u);
  let objMult = tab[r + 3u];
  let focalClass = bitcast<i32>(tabu(r + 4u));
  let flags = tabu(r + 5u);
  let aw = tab[r + 6u];
  let ah = tab[r + 7u];
  let q = pred_of(p);
  let zx = z[q.base];
  let zy = z[q.base + q.hw];
  let zw = z[q.base + 2u * q.hw];
  let zh = z[q.base + 3u * q.hw];
  let ox = out_xy(zx);
  let oy = out_xy(zy);
  let box = pred_box(q, ox, oy, zw, zh, aw, ah);
  let bias = -0.5 * (P.scaleXY - 1.0);
  var d = vec4f(0.0);
  var lbox = 0.0;
  for (var k = 0u; k < bCount; k++) {
    let o = P.offBox + 8u * (bFirst + k);
    let tr = vec4f(tab[o], tab[o + 1u], tab[o + 2u], tab[o + 3u]);
    let norm = tab[o + 4u];
    let scale = 2.0 - tr.z * tr.w;
    if (P.iouLoss == 0u) {
      let tx = tr.x * f32(P.W) - f32(q.i);
      let ty = tr.y * f32(P.H) - f32(q.j);
      var tw: f32;
      var th: f32;
      if (P.newCoords != 0u) {
        tw = sqrt(tr.z * P.netW / (4.0 * aw));
        th = sqrt(tr.w * P.netH / (4.0 * ah));
      } else {
        tw = log(tr.z * P.netW / aw);
        th = log(tr.w * P.netH / ah);
      }
      d += vec4f(scale * (tx - ox), scale * (ty - oy), scale * (tw - zw), scale * (th - zh)) * norm;
      // implied loss: x, y through the logistic and scale_x_y (or linear with new_coords), w, h squared error
      if (P.newCoords != 0u) {
        lbox += scale * norm * ((ox - tx) * (ox - tx) + (oy - ty) * (oy - ty)) / (2.0 * P.scaleXY);
      } else {
        lbox += scale * norm * P.scaleXY * (logistic_loss(zx, (tx - bias) / P.scaleXY) + logistic_loss(zy, (ty - bias) / P.scaleXY));
      }
      lbox += 0.5 * scale * norm * ((tw - zw) * (tw - zw) + (th - zh) * (th - zh));
    } else {
      var pb = box;
      if (pb.z == 0.0) { pb.z = 1.0; }
      if (pb.w == 0.0) { pb.w = 1.0; }
      var g = dx_box_iou(pb, tr, P.iouLoss);
      if (P.newCoords == 0u) {
        g.z *= exp(zw);
        g.w *= exp(zh);
      }
      g *= norm;
      for (var c = 0u; c < 4u; c++) {
        var v = g[c];
        if (not_finite(v)) { v = 0.0; }
        v = clamp(v, -P.maxDelta, P.maxDelta);
        g[c] = v;
      }
      d += g;
      lbox += norm * (1.0 - iou_kind(box, tr, P.iouLoss));
    }
  }
  let zo = z[q.base + 4u * q.hw];
  var dObj = objMult * (1.0 - out_act(zo));
  var lObj = objMult * act_loss(zo, 1.0);
  let N = P.cells;
  var ignored = 0.0;
  if (P.objSmooth != 0u) {
    // AlexeyAB process_batch, objectness_smooth: `if (l.delta[obj_index] == 0) l.delta[obj_index] = delta_obj`:
    // the delta dn_neg wrote (-obj_norm*out, or the smoothed ignore value) stays unless it is exactly 0
    let prev = delta[q.base + 4u * q.hw];
    if (prev != 0.0) {
      dObj = prev;
      lObj = partials[N + p];
      ignored = partials[4u * N + p];
    }
  }
  var ff = 1.0;
  if (focalClass >= 0) {
    let pt = out_act(z[q.base + (5u + u32(focalClass)) * q.hw]) + 0.000000000000001;
    ff = 0.5 * (-(1.0 - pt) * (2.0 * pt * log(pt) + pt - 1.0));
  }
  var lcls = 0.0;
  var positive = 0u;
  var sq = 0.0;
  for (var c = 0u; c < P.C; c++) {
    let zc = z[q.base + (5u + c) * q.hw];
    let t = tab[r + 8u + c];
    let m = tab[r + 8u + P.C + c];
    let f = select(1.0, ff, m < 0.0);
    let mm = abs(m) * f;
    let dc = (t - out_act(zc)) * mm;
    delta[q.base + (5u + c) * q.hw] = dc;
    lcls += mm * act_loss(zc, t);
    sq += dc * dc;
    if (dc > 0.0) { positive++; }
  }
  // Darknet (process_batch's averaging pass) averages only cells whose objectness delta is non-zero: with
  // objectness_smooth the kept delta can be anything; without it dObj = objMult*(1 - out) is 0 only for an
  // output of exactly 1 (new_coords with z = 1, or a saturated logistic), which Darknet leaves unaveraged too
  if ((flags & 1u) != 0u && positive > 0u && dObj != 0.0) {
    d /= f32(positive);
    lbox /= f32(positive);
  }
  delta[q.base] = d.x;
  delta[q.base + q.hw] = d.y;
  delta[q.base + 2u * q.hw] = d.z;
  delta[q.base + 3u * q.hw] = d.w;
  delta[q.base + 4u * q.hw] = dObj;
  sq += dot(d, d) + dObj * dObj;
  partials[p] = lbox;
  partials[N + p] = lObj;
  partials[2u * N + p] = lcls;
  partials[3u * N + p] = sq;
  partials[4u * N + p] = ignored;
}

// ---------------------------------------------------------------- shared by the YOLO losses
// (their own uniform layout at binding 0; they reuse the storage declarations above: z = the input, tab = the
// upstream gradient / per-head sums, delta and partials = outputs)

struct Small {
  n: u32,
  a: f32,   // scale_by: factor; finish: loss scale
  b: f32,   // finish: item scale
}
@group(0) @binding(0) var<uniform> Q: Small;

// dz[i] = factor * g[0] * G[i]: the backward of a loss whose gradient buffer G was computed in the forward
// (z = G, tab = g, delta = dz)
@compute @workgroup_size(WG)
fn scale_by(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= Q.n) { return; }
  delta[i] = Q.a * tab[0] * z[i];
}

// One thread: from the per-head sums (z = [heads][5], rows box, obj, cls, ...) to the loss
// (delta[0] = a * sum of box + obj + cls) and the items (partials[k] = b * sum over heads of row k, k < 3).
@compute @workgroup_size(1)
fn finish() {
  var items = vec3f(0.0);
  for (var h = 0u; h < Q.n; h++) {
    items += vec3f(z[5u * h], z[5u * h + 1u], z[5u * h + 2u]);
  }
  delta[0] = Q.a * (items.x + items.y + items.z);
  partials[0] = Q.b * items.x;
  partials[1] = Q.b * items.y;
  partials[2] = Q.b * items.z;
}
