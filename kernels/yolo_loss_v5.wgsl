// YOLOv5 (ultralytics v7.0 ComputeLoss) loss and gradient for one head; src/yolo/loss_v5.ts drives it and
// yolo_loss.wgsl's scale_by / finish complete it.
//
// Head input z: [B, A*E, H, W] (E = 5 + C): p[b, a, y, x, k] = z[b, a*E + k, y, x]. grad has z's layout and
// holds d loss / d z with loss = gradMul * (box + obj + cls) (gradMul = batch size). partials: [5][B*A*H*W]
// rows box, obj, cls (already weighted by gain / count, i.e. the loss items), 3: sum of CIoU, 4: 0. With
// P.gamma > 0 the objectness and class BCEs are yolov5's FocalLoss (see focal).
//
// table (f32 words, integers bitcast):
//   [group] 4 per distinct target cell: cell (u32, ((b*A + a)*H + gj)*W + gi), first entry, entry count, 0
//   [entry] 8 per build_targets entry, grouped by cell in build_targets order: tbox x, y, w, h (grid units,
//           relative to the cell), anchor w, h (grid units), class (u32), build_targets index (u32)
//
// v5_neg runs over every prediction (objectness BCE against 0), then v5_pos over the target cells: each
// thread loops over its entries (a cell can appear up to 3 times), sums their CIoU and class gradients, and
// uses the last entry's CIoU as the objectness target (torch's last write wins).

struct Params {
  n: u32,        // threads: predictions (v5_neg) or target cells (v5_pos)
  A: u32,
  H: u32,
  W: u32,
  C: u32,
  wBox: f32,     // hyp box / n (n = entries of this head)
  wObj: f32,     // hyp obj * balance / (B*A*H*W)
  wCls: f32,     // hyp cls / (n * C), 0 when C == 1
  gradMul: f32,  // batch size
  cp: f32,       // positive / negative class targets (label smoothing)
  cn: f32,
  clsPw: f32,    // BCE pos_weight
  objPw: f32,
  gr: f32,       // iou ratio of the objectness target
  offGroup: u32,
  offEntry: u32,
  zero: u32,     // 0: the opaque guard of log1p_pos
  cells: u32,    // B*A*H*W: the row stride of partials
  gamma: f32,    // hyp fl_gamma: > 0 wraps both BCEs in yolov5's FocalLoss (alpha 0.25), 0 leaves them plain
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> tab: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read_write> ciouOut: array<f32>;

override WG: u32 = 64;

const PI: f32 = 3.14159265358979;
const EPS: f32 = 1e-7;

fn tabu(k: u32) -> u32 { return bitcast<u32>(tab[k]); }

// #include "lib/stable.wgsl"

// BCEWithLogits with pos_weight pw: (1 - t) v + (1 + (pw - 1) t) softplus(-v), and its derivative
fn bce(v: f32, t: f32, pw: f32) -> f32 { return (1.0 - t) * v + (1.0 + (pw - 1.0) * t) * softplus_stable(-v); }
fn dbce(v: f32, t: f32, pw: f32) -> f32 { return (1.0 - t) - (1.0 + (pw - 1.0) * t) * sigmoid_stable(-v); }

// yolov5 FocalLoss(BCEWithLogits, gamma, alpha = 0.25): BCE · af · m^gamma with af = t·alpha + (1 − t)(1 − alpha),
// m = 1 − p_t = t·σ(−v) + (1 − t)·σ(v) (the two non-negative terms, no cancellation near p = 1) and, the
// modulating factor not detached, d/dv = af · (dbce · m^gamma + BCE · gamma·m^(gamma−1) · (1 − 2t)·σ(v)σ(−v)).
// At m = 0: m^gamma = 0 and gamma·m^(gamma−1) = 0 (gamma > 1), 1 (gamma = 1), +inf (gamma < 1, as torch's pow).
const FL_ALPHA: f32 = 0.25;
fn focal(v: f32, t: f32, pw: f32) -> vec2f {
  let l = bce(v, t, pw);
  let sp = sigmoid_stable(v);
  let sn = sigmoid_stable(-v);
  let m = t * sn + (1.0 - t) * sp;
  let af = t * FL_ALPHA + (1.0 - t) * (1.0 - FL_ALPHA);
  let g = P.gamma;
  var mg = 0.0;
  var dmg = select(select(0.0, 1.0, g == 1.0), 1.0 / m, g < 1.0); // 1 / m: +inf where used
  if (m > 0.0) {
    mg = pow(m, g);
    dmg = g * pow(m, g - 1.0);
  }
  let d = af * (dbce(v, t, pw) * mg + l * dmg * (1.0 - 2.0 * t) * (sp * sn));
  return vec2f(af * l * mg, d);
}
// the objectness / class loss term and its derivative: plain BCE at gamma = 0 (ComputeLoss wraps only for g > 0)
fn lterm(v: f32, t: f32, pw: f32) -> f32 {
  if (P.gamma > 0.0) { return focal(v, t, pw).x; }
  return bce(v, t, pw);
}
fn dterm(v: f32, t: f32, pw: f32) -> f32 {
  if (P.gamma > 0.0) { return focal(v, t, pw).y; }
  return dbce(v, t, pw);
}

// d min(a, b) / d a and d max(a, b) / d a as torch: 1/2 at a tie
fn sel_min(a: f32, b: f32) -> f32 { return select(select(0.0, 0.5, a == b), 1.0, a < b); }
fn sel_max(a: f32, b: f32) -> f32 { return select(select(0.0, 0.5, a == b), 1.0, a > b); }

struct Ciou {
  v: f32,
  g: vec4f,   // d ciou / d (x, y, w, h) of the prediction, alpha constant
}

// bbox_iou(p, t, xywh, CIoU=True, eps=1e-7) and its gradient w.r.t. p with alpha under no_grad
fn ciou(p: vec4f, t: vec4f) -> Ciou {
  let b1x1 = p.x - p.z / 2.0;
  let b1x2 = p.x + p.z / 2.0;
  let b1y1 = p.y - p.w / 2.0;
  let b1y2 = p.y + p.w / 2.0;
  let b2x1 = t.x - t.z / 2.0;
  let b2x2 = t.x + t.z / 2.0;
  let b2y1 = t.y - t.w / 2.0;
  let b2y2 = t.y + t.w / 2.0;
  let ix = min(b1x2, b2x2) - max(b1x1, b2x1);
  let iy = min(b1y2, b2y2) - max(b1y1, b2y1);
  let iw = max(ix, 0.0);
  let ih = max(iy, 0.0);
  let inter = iw * ih;
  let uni = p.z * p.w + t.z * t.w - inter + EPS;
  let iou = inter / uni;
  let cw = max(b1x2, b2x2) - min(b1x1, b2x1);
  let ch = max(b1y2, b2y2) - min(b1y1, b2y1);
  let c2 = cw * cw + ch * ch + EPS;
  let sx = b2x1 + b2x2 - b1x1 - b1x2;
  let sy = b2y1 + b2y2 - b1y1 - b1y2;
  let rho2 = (sx * sx + sy * sy) / 4.0;
  let da = atan(t.z / t.w) - atan(p.z / p.w);
  let v = 4.0 / (PI * PI) * da * da;
  let alpha = v / (v - iou + (1.0 + EPS));
  let value = iou - (rho2 / c2 + v * alpha);
  let gx = select(0.0, 1.0, ix >= 0.0);
  let gy = select(0.0, 1.0, iy >= 0.0);
  let gInter = 1.0 / uni + inter / (uni * uni);
  let gArea = -inter / (uni * uni);
  let gC = rho2 / (c2 * c2);
  let gRho = -1.0 / c2;
  let g_x2 = gInter * ih * gx * sel_min(b1x2, b2x2) + gC * 2.0 * cw * sel_max(b1x2, b2x2) - gRho * sx / 2.0;
  let g_x1 = -gInter * ih * gx * sel_max(b1x1, b2x1) - gC * 2.0 * cw * sel_min(b1x1, b2x1) - gRho * sx / 2.0;
  let g_y2 = gInter * iw * gy * sel_min(b1y2, b2y2) + gC * 2.0 * ch * sel_max(b1y2, b2y2) - gRho * sy / 2.0;
  let g_y1 = -gInter * iw * gy * sel_max(b1y1, b2y1) - gC * 2.0 * ch * sel_min(b1y1, b2y1) - gRho * sy / 2.0;
  let r = p.z / p.w;
  let dv_dw = -8.0 / (PI * PI) * da * (1.0 / p.w) / (1.0 + r * r);
  let dv_dh = 8.0 / (PI * PI) * da * (p.z / (p.w * p.w)) / (1.0 + r * r);
  let g = vec4f(
    g_x1 + g_x2,
    g_y1 + g_y2,
    0.5 * (g_x2 - g_x1) + gArea * p.w - alpha * dv_dw,
    0.5 * (g_y2 - g_y1) + gArea * p.z - alpha * dv_dh);
  return Ciou(value, g);
}

struct Pred {
  base: u32,
  hw: u32,
}

fn pred_of(p: u32) -> Pred {
  let hw = P.H * P.W;
  let cell = p % hw;
  let ba = p / hw; // b*A + a
  return Pred(ba * (5u + P.C) * hw + cell, hw);
}

@compute @workgroup_size(WG)
fn v5_neg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let q = pred_of(p);
  let E = 5u + P.C;
  for (var k = 0u; k < E; k++) { grad[q.base + k * q.hw] = 0.0; }
  let v = z[q.base + 4u * q.hw];
  grad[q.base + 4u * q.hw] = P.gradMul * P.wObj * dterm(v, 0.0, P.objPw);
  let N = P.cells;
  partials[p] = 0.0;
  partials[N + p] = P.wObj * lterm(v, 0.0, P.objPw);
  partials[2u * N + p] = 0.0;
  partials[3u * N + p] = 0.0;
  partials[4u * N + p] = 0.0;
}

@compute @workgroup_size(WG)
fn v5_pos(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let gi = gid.x + gid.y * nwg.x * WG;
  if (gi >= P.n) { return; }
  let r = P.offGroup + 4u * gi;
  let p = tabu(r);
  let first = tabu(r + 1u);
  let count = tabu(r + 2u);
  let q = pred_of(p);
  let s = vec4f(sigmoid_stable(z[q.base]), sigmoid_stable(z[q.base + q.hw]), sigmoid_stable(z[q.base + 2u * q.hw]), sigmoid_stable(z[q.base + 3u * q.hw]));
  var gbox = vec4f(0.0);
  var lbox = 0.0;
  var sumIou = 0.0;
  var last = 0.0;
  for (var k = 0u; k < count; k++) {
    let e = P.offEntry + 8u * (first + k);
    let tb = vec4f(tab[e], tab[e + 1u], tab[e + 2u], tab[e + 3u]);
    let aw = tab[e + 4u];
    let ah = tab[e + 5u];
    let pb = vec4f(s.x * 2.0 - 0.5, s.y * 2.0 - 0.5, (s.z * 2.0) * (s.z * 2.0) * aw, (s.w * 2.0) * (s.w * 2.0) * ah);
    let c = ciou(pb, tb);
    ciouOut[tabu(e + 7u)] = c.v;
    lbox += P.wBox * (1.0 - c.v);
    sumIou += c.v;
    last = c.v;
    let dp = vec4f(2.0 * s.x * (1.0 - s.x), 2.0 * s.y * (1.0 - s.y), 8.0 * s.z * s.z * (1.0 - s.z) * aw, 8.0 * s.w * s.w * (1.0 - s.w) * ah);
    gbox -= P.wBox * c.g * dp;
  }
  grad[q.base] = P.gradMul * gbox.x;
  grad[q.base + q.hw] = P.gradMul * gbox.y;
  grad[q.base + 2u * q.hw] = P.gradMul * gbox.z;
  grad[q.base + 3u * q.hw] = P.gradMul * gbox.w;
  // objectness: the last entry's CIoU, detached, clamped at 0
  let tobj = (1.0 - P.gr) + P.gr * max(last, 0.0);
  let vo = z[q.base + 4u * q.hw];
  grad[q.base + 4u * q.hw] = P.gradMul * P.wObj * dterm(vo, tobj, P.objPw);
  // classes: every entry of the cell contributes its one-hot BCE
  var lcls = 0.0;
  if (P.wCls != 0.0) {
    for (var c = 0u; c < P.C; c++) {
      let v = z[q.base + (5u + c) * q.hw];
      var gc = 0.0;
      for (var k = 0u; k < count; k++) {
        let cls = tabu(P.offEntry + 8u * (first + k) + 6u);
        let t = select(P.cn, P.cp, cls == c);
        lcls += P.wCls * lterm(v, t, P.clsPw);
        gc += P.wCls * dterm(v, t, P.clsPw);
      }
      grad[q.base + (5u + c) * q.hw] = P.gradMul * gc;
    }
  }
  let N = P.cells;
  partials[p] = lbox;
  partials[N + p] = P.wObj * lterm(vo, tobj, P.objPw);
  partials[2u * N + p] = lcls;
  partials[3u * N + p] = sumIou;
  partials[4u * N + p] = 0.0;
}
