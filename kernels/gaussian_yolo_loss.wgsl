// Darknet [Gaussian_yolo] training loss (AlexeyAB gaussian_yolo_layer.c forward_gaussian_yolo_layer with
// state.train, 59596d78). src/yolo/loss_gaussian.ts drives it; docs/losses.md has the semantics.
//
// Head input z: [B, A*E, H, W] (E = 9 + C), entry k of anchor a at ((b*A + a)*E + k)*H*W + j*W + i, entries
// 0 x, 1 sigma_x, 2 y, 3 sigma_y, 4 w, 5 sigma_w, 6 h, 7 sigma_h, 8 objectness, 9.. classes. delta (Darknet's
// l.delta = -dL/dz) has the same layout. partials: [5][B*A*H*W] per-prediction sums
//   row 0 box (the coordinates' Gaussian NLL or IoU loss), 1 obj, 2 cls (the implied loss), 3 sum of delta^2
//   (Darknet's cost), 4 ignored (1 where the objectness delta is the ignore branch's and no truth replaced it).
//
// table (one upload per head and step, f32 words; integers bitcast):
//   [anch]  2*A anchor w, h (pixels) of this head's mask
//   [img]   B+1 truth start indices per image (u32)
//   [truth] 5 per truth: x, y, w, h (normalised), class (as f32), all images
//   [cm]    C class multipliers (counters_per_class; 1 without)
//   [slot]  SR = 4 + 3*C words per assigned cell: cell (u32), box first (u32), box count (u32), obj multiplier,
//           then C class targets, C class multipliers (the cell's classes as its truths leave them on a clean
//           cell), C "taken" multipliers (> 0 for the classes of the cell's truths: what they leave on a cell
//           the objectness_smooth ignore branch already gave class deltas, where every truth takes the
//           "delta[class 0] != 0" path of delta_gaussian_yolo_class)
//   [box]   5 per box contribution (truth, in Darknet's order): truth x, y, w, h, iou_normalizer * class multiplier
//
// gy_neg runs first over every prediction (the ignore search), then gy_pos over the assigned cells overwrites
// their deltas and partials (no two slots share a cell; dispatches in one pass are ordered).

struct Params {
  n: u32,           // threads: predictions (gy_neg) or slots (gy_pos)
  A: u32,
  H: u32,
  W: u32,
  C: u32,
  netW: f32,
  netH: f32,
  iouLoss: u32,     // 0 mse, 1 iou, 2 giou, 3 diou, 4 ciou
  scaleXY: f32,
  ignoreThresh: f32,
  objNorm: f32,
  ucNorm: f32,      // uc_normalizer: the uncertainty deltas
  clsNorm: f32,     // cls_normalizer (Darknet applies it only with counters_per_class)
  hasCm: u32,       // counters_per_class given
  labelEps: f32,    // label_smooth_eps
  maxDelta: f32,    // clip of every box delta (3.4e38: none)
  objSmooth: u32,   // objectness_smooth=1
  offAnch: u32,
  offImg: u32,
  offTruth: u32,
  offCm: u32,
  offSlot: u32,
  offBox: u32,
  zero: u32,        // 0: the opaque guard of log1p_pos
  cells: u32,       // B*A*H*W: the row stride of partials
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

fn label_target(t: f32) -> f32 { return select(t, t * (1.0 - P.labelEps) + 0.5 * P.labelEps, P.labelEps != 0.0); }

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
  let E = 9u + P.C;
  return Pred((b * P.A + a) * E * hw + j * P.W + i, hw, b, i, j, a);
}

// Darknet's l.output of entry k: logistic but on w, h (4, 6); x, y (0, 2) then scaled by scale_x_y
fn out_of(q: Pred, k: u32) -> f32 {
  let v = z[q.base + k * q.hw];
  if (k == 4u || k == 6u) { return v; }
  let s = sigmoid_stable(v);
  if (k == 0u || k == 2u) { return s * P.scaleXY - 0.5 * (P.scaleXY - 1.0); }
  return s;
}

// get_gaussian_yolo_box (yolo_point center): normalised x, y, w, h
fn pred_box(q: Pred, aw: f32, ah: f32) -> vec4f {
  return vec4f((f32(q.i) + out_of(q, 0u)) / f32(P.W), (f32(q.j) + out_of(q, 2u)) / f32(P.H),
    exp(z[q.base + 4u * q.hw]) * aw / P.netW, exp(z[q.base + 6u * q.hw]) * ah / P.netH);
}

// The ignore search of a prediction: the best IoU over its image's truths and that truth's class (the first
// best), 0 / -1 when no class output exceeds 0.25 (compare_gaussian_yolo_class).
fn best_match(q: Pred, box: vec4f) -> vec2f {
  var anyClass = false;
  for (var c = 0u; c < P.C; c++) {
    if (out_of(q, 9u + c) > 0.25) { anyClass = true; }
  }
  var best = 0.0;
  var cls = -1.0;
  if (!anyClass) { return vec2f(0.0, -1.0); }
  for (var t = tabu(P.offImg + q.b); t < tabu(P.offImg + q.b + 1u); t++) {
    let o = P.offTruth + 5u * t;
    let v = box_iou(box, vec4f(tab[o], tab[o + 1u], tab[o + 2u], tab[o + 3u]));
    if (v > best) {
      best = v;
      cls = tab[o + 4u];
    }
  }
  return vec2f(best, cls);
}

// The class delta multiplier of a full delta_gaussian_yolo_class write for class c of a truth of class k:
// counters_per_class * cls_normalizer on the truth's class, 1 elsewhere
fn full_mult(c: u32, k: u32) -> f32 {
  if (c == k && P.hasCm != 0u) { return tab[P.offCm + k] * P.clsNorm; }
  return 1.0;
}

// One coordinate of delta_gaussian_yolo_box: residual d = target - mean output, s = the sigma output.
// N = exp(-(d/s)^2 / 2) / (sqrt(2 pi) (s + 0.3)), temp = 1/2 * N / (N + 1e-9) * scale;
// mean delta temp * (d/s) / s, sigma delta temp * ((d/s)^2 / s - 1 / (s + 0.3)) (both -d/d(output) of
// temp/(N/(N+eps)) * -log(N + eps)); nll = -log(N + 1e-9). s = 0 or an underflowing N give 0 deltas (Darknet:
// 0, or NaN that fix_nan_inf zeroes).
struct Gauss { m: f32, u: f32, nll: f32 }
fn gauss(d: f32, s: f32, scale: f32) -> Gauss {
  var n = 0.0;
  var q = 0.0;
  if (s > 0.0) {
    q = d / s;
    if (abs(q) < 100.0) { n = exp(-0.5 * q * q) / (2.5066282746310002 * (s + 0.3)); }
  }
  let temp = 0.5 / (n + 1e-9) * n * scale;
  var g = Gauss(0.0, 0.0, -log(n + 1e-9));
  if (temp > 0.0) {
    g.m = temp * q * (1.0 / s);
    g.u = temp * (q * q / s - 1.0 / (s + 0.3));
  }
  return g;
}

// fix_nan_inf, then clip_value with max_delta
fn fix_clip(v: vec4f) -> vec4f {
  var r = v;
  for (var c = 0u; c < 4u; c++) {
    var x = r[c];
    if (not_finite(x)) { x = 0.0; }
    r[c] = clamp(x, -P.maxDelta, P.maxDelta);
  }
  return r;
}

@compute @workgroup_size(WG)
fn gy_neg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let q = pred_of(p);
  let E = 9u + P.C;
  let box = pred_box(q, tab[P.offAnch + 2u * q.a], tab[P.offAnch + 2u * q.a + 1u]);
  let bm = best_match(q, box);
  let zo = z[q.base + 8u * q.hw];
  let o = sigmoid_stable(zo);
  for (var k = 0u; k < E; k++) { delta[q.base + k * q.hw] = 0.0; }
  var d = P.objNorm * (0.0 - o);
  var l = P.objNorm * logistic_loss(zo, 0.0);
  var lcls = 0.0;
  var sq = 0.0;
  let ignore = bm.x > P.ignoreThresh;
  if (ignore) {
    if (P.objSmooth != 0u) {
      // objectness target best_match_iou^2, and the classes of the best-matching truth (a full class write)
      let t = bm.x * bm.x;
      d = P.objNorm * (t - o);
      l = P.objNorm * logistic_loss(zo, t);
      let k = u32(bm.y);
      for (var c = 0u; c < P.C; c++) {
        let zc = z[q.base + (9u + c) * q.hw];
        let tc = label_target(select(0.0, 1.0, c == k));
        let m = full_mult(c, k);
        let dc = (tc - sigmoid_stable(zc)) * m;
        delta[q.base + (9u + c) * q.hw] = dc;
        lcls += m * logistic_loss(zc, tc);
        sq += dc * dc;
      }
    } else {
      d = 0.0;
      l = 0.0;
    }
  }
  delta[q.base + 8u * q.hw] = d;
  let N = P.cells;
  partials[p] = 0.0;
  partials[N + p] = l;
  partials[2u * N + p] = lcls;
  partials[3u * N + p] = sq + d * d;
  partials[4u * N + p] = select(0.0, 1.0, ignore);
}

@compute @workgroup_size(WG)
fn gy_pos(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let s = gid.x + gid.y * nwg.x * WG;
  if (s >= P.n) { return; }
  let SR = 4u + 3u * P.C;
  let r = P.offSlot + s * SR;
  let p = tabu(r);
  let bFirst = tabu(r + 1u);
  let bCount = tabu(r + 2u);
  let objMult = tab[r + 3u];
  let q = pred_of(p);
  let aw = tab[P.offAnch + 2u * q.a];
  let ah = tab[P.offAnch + 2u * q.a + 1u];
  let box = pred_box(q, aw, ah);
  let mean = vec4f(out_of(q, 0u), out_of(q, 2u), z[q.base + 4u * q.hw], z[q.base + 6u * q.hw]);
  let sig = vec4f(out_of(q, 1u), out_of(q, 3u), out_of(q, 5u), out_of(q, 7u));
  var dm = vec4f(0.0);   // x, y, w, h
  var du = vec4f(0.0);   // their sigmas
  var lbox = 0.0;
  for (var k = 0u; k < bCount; k++) {
    let o = P.offBox + 5u * (bFirst + k);
    let tr = vec4f(tab[o], tab[o + 1u], tab[o + 2u], tab[o + 3u]);
    let norm = tab[o + 4u];
    let scale = 2.0 - tr.z * tr.w;
    let tgt = vec4f(tr.x * f32(P.W) - f32(q.i), tr.y * f32(P.H) - f32(q.j), log(tr.z * P.netW / aw), log(tr.w * P.netH / ah));
    var gm = vec4f(0.0);
    var gu = vec4f(0.0);
    var nll = 0.0;
    for (var c = 0u; c < 4u; c++) {
      let g = gauss(tgt[c] - mean[c], sig[c], scale);
      gm[c] = g.m;
      gu[c] = g.u;
      nll += g.nll;
    }
    if (P.iouLoss == 0u) {
      lbox += 0.5 * scale * norm * nll;
    } else {
      // the IoU losses replace the mean deltas (dx_box_iou, times exp(t) for w, h); the sigmas keep theirs
      var pb = box;
      if (pb.z == 0.0) { pb.z = 1.0; }
      if (pb.w == 0.0) { pb.w = 1.0; }
      gm = dx_box_iou(pb, tr, P.iouLoss);
      gm.z *= exp(mean.z);
      gm.w *= exp(mean.w);
      lbox += norm * (1.0 - iou_kind(box, tr, P.iouLoss)) + 0.5 * scale * P.ucNorm * nll;
    }
    dm += fix_clip(gm * norm);
    du += fix_clip(gu * P.ucNorm);
  }
  let zo = z[q.base + 8u * q.hw];
  let dObj = objMult * (1.0 - sigmoid_stable(zo));
  let lObj = objMult * logistic_loss(zo, 1.0);
  // a cell the objectness_smooth ignore branch gave class deltas: every truth takes delta_gaussian_yolo_class's
  // "already set" path (its class only, target 1, counters_per_class multiplier), the rest stays
  var smoothed = false;
  var k0 = 0u;
  if (P.objSmooth != 0u) {
    let bm = best_match(q, box);
    smoothed = bm.x > P.ignoreThresh;
    k0 = u32(max(bm.y, 0.0));
  }
  var lcls = 0.0;
  var positive = 0u;
  var sq = 0.0;
  for (var c = 0u; c < P.C; c++) {
    let zc = z[q.base + (9u + c) * q.hw];
    var t = tab[r + 4u + c];
    var m = tab[r + 4u + P.C + c];
    if (smoothed) {
      let tm = tab[r + 4u + 2u * P.C + c];
      if (tm > 0.0) {
        t = label_target(1.0);
        m = tm;
      } else {
        t = label_target(select(0.0, 1.0, c == k0));
        m = full_mult(c, k0);
      }
    }
    let dc = (t - sigmoid_stable(zc)) * m;
    delta[q.base + (9u + c) * q.hw] = dc;
    lcls += m * logistic_loss(zc, t);
    sq += dc * dc;
    if (dc > 0.0) { positive++; }
  }
  // averages_gaussian_yolo_deltas: every cell, the 8 box entries over its positive class deltas
  if (positive > 0u) {
    dm /= f32(positive);
    du /= f32(positive);
    lbox /= f32(positive);
  }
  delta[q.base] = dm.x;
  delta[q.base + q.hw] = du.x;
  delta[q.base + 2u * q.hw] = dm.y;
  delta[q.base + 3u * q.hw] = du.y;
  delta[q.base + 4u * q.hw] = dm.z;
  delta[q.base + 5u * q.hw] = du.z;
  delta[q.base + 6u * q.hw] = dm.w;
  delta[q.base + 7u * q.hw] = du.w;
  delta[q.base + 8u * q.hw] = dObj;
  sq += dot(dm, dm) + dot(du, du) + dObj * dObj;
  let N = P.cells;
  partials[p] = lbox;
  partials[N + p] = lObj;
  partials[2u * N + p] = lcls;
  partials[3u * N + p] = sq;
  partials[4u * N + p] = 0.0;
}
