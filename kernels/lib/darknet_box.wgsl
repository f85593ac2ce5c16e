// Darknet's box math (box.c: box_iou, the GIoU / DIoU / CIoU values, AlexeyAB dx_box_iou) for the loss
// kernels that train Darknet heads (yolo_loss.wgsl, gaussian_yolo_loss.wgsl), included with
// `// #include "lib/darknet_box.wgsl"`. Boxes are vec4(x, y, w, h), centre and size.

const PI: f32 = 3.14159265358979;

// boxes are vec4(x, y, w, h)
fn overlap(x1: f32, w1: f32, x2: f32, w2: f32) -> f32 {
  let left = max(x1 - w1 / 2.0, x2 - w2 / 2.0);
  let right = min(x1 + w1 / 2.0, x2 + w2 / 2.0);
  return right - left;
}

fn box_inter(a: vec4f, b: vec4f) -> f32 {
  let w = overlap(a.x, a.z, b.x, b.z);
  let h = overlap(a.y, a.w, b.y, b.w);
  if (w < 0.0 || h < 0.0) { return 0.0; }
  return w * h;
}

fn box_iou(a: vec4f, b: vec4f) -> f32 {
  let i = box_inter(a, b);
  let u = a.z * a.w + b.z * b.w - i;
  if (i == 0.0 || u == 0.0) { return 0.0; }
  return i / u;
}

// IoU, GIoU, DIoU (d^2/c^2, the term dx_box_iou differentiates) or CIoU of a prediction vs a truth (the
// reported value of the IoU losses).
fn iou_kind(a: vec4f, b: vec4f, kind: u32) -> f32 {
  let v = box_iou(a, b);
  if (kind <= 1u) { return v; }
  let l = min(a.x - a.z / 2.0, b.x - b.z / 2.0);
  let r = max(a.x + a.z / 2.0, b.x + b.z / 2.0);
  let t = min(a.y - a.w / 2.0, b.y - b.w / 2.0);
  let bo = max(a.y + a.w / 2.0, b.y + b.w / 2.0);
  let cw = r - l;
  let ch = bo - t;
  if (kind == 2u) {
    let c = cw * ch;
    if (c == 0.0) { return v; }
    let u = a.z * a.w + b.z * b.w - box_inter(a, b);
    return v - (c - u) / c;
  }
  let c = cw * cw + ch * ch;
  if (c == 0.0) { return v; }
  let d = ((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)) / c;
  if (kind == 3u) { return v - d; }
  let da = atan(b.z / b.w) - atan(a.z / a.w);
  let ar = 4.0 / (PI * PI) * da * da;
  let alpha = ar / (1.0 - v + ar + 0.000001);
  return v - (d + alpha * ar);
}

// AlexeyAB dx_box_iou: Darknet's (pseudo-)gradient of IoU / GIoU / DIoU / CIoU w.r.t. the prediction's
// x, y, w, h (as Darknet returns it: dt, db, dl, dr hold dx, dy, dw, dh). A transcription of its formulas,
// including its choices (no 1/2 on dw, dh; the "no overlap" replacements).
fn dx_box_iou(p: vec4f, t: vec4f, kind: u32) -> vec4f {
  let ptop = p.y - p.w / 2.0;
  let pbot = p.y + p.w / 2.0;
  let plef = p.x - p.z / 2.0;
  let prig = p.x + p.z / 2.0;
  let pt = min(ptop, pbot);
  let pb = max(ptop, pbot);
  let pl = min(plef, prig);
  let pr = max(plef, prig);
  let tt = t.y - t.w / 2.0;
  let tb = t.y + t.w / 2.0;
  let tl = t.x - t.z / 2.0;
  let tr = t.x + t.z / 2.0;
  let X = (pb - pt) * (pr - pl);
  let Xhat = (tb - tt) * (tr - tl);
  let Ih = min(pb, tb) - max(pt, tt);
  let Iw = min(pr, tr) - max(pl, tl);
  let I = Iw * Ih;
  let U = X + Xhat - I;
  let S = (p.x - t.x) * (p.x - t.x) + (p.y - t.y) * (p.y - t.y);
  let gCw = max(pr, tr) - min(pl, tl);
  let gCh = max(pb, tb) - min(pt, tt);
  let gC = gCw * gCh;
  // d X, d I, d U, d C w.r.t. top, bottom, left, right (as vec4 t, b, l, r)
  let dX = vec4f(-(pr - pl), pr - pl, -(pb - pt), pb - pt);
  let dI = vec4f(select(0.0, -Iw, pt > tt), select(0.0, Iw, pb < tb), select(0.0, -Ih, pl > tl), select(0.0, Ih, pr < tr));
  let dU = dX - dI;
  let dC = vec4f(select(0.0, -gCw, pt < tt), select(0.0, gCw, pb > tb), select(0.0, -gCh, pl < tl), select(0.0, gCh, pr > tr));
  var g = vec4f(0.0); // p_dt, p_db, p_dl, p_dr
  if (U > 0.0) { g = (U * dI - I * dU) / (U * U); }
  // corner selection (sequential, as Darknet writes it)
  let tOk = ptop < pbot;
  g.x = select(g.y, g.x, tOk);
  g.y = select(g.x, g.y, tOk);
  let lOk = plef < prig;
  g.z = select(g.w, g.z, lOk);
  g.w = select(g.z, g.w, lOk);
  if (kind == 2u) {
    let gterm = (gC * dU - U * dC) / (gC * gC);
    if (gC > 0.0) { g += gterm; }
    if (Iw <= 0.0 || Ih <= 0.0) { g = gterm; }
  }
  let Ct = min(p.y - p.w / 2.0, t.y - t.w / 2.0);
  let Cb = max(p.y + p.w / 2.0, t.y + t.w / 2.0);
  let Cl = min(p.x - p.z / 2.0, t.x - t.z / 2.0);
  let Cr = max(p.x + p.z / 2.0, t.x + t.z / 2.0);
  let Cw = Cr - Cl;
  let Ch = Cb - Ct;
  let C = Cw * Cw + Ch * Ch;
  let dCt_dy = select(0.0, 1.0, pt < tt);
  let dCt_dh = select(0.0, -0.5, pt < tt);
  let dCb_dy = select(0.0, 1.0, pb > tb);
  let dCb_dh = select(0.0, 0.5, pb > tb);
  let dCl_dx = select(0.0, 1.0, pl < tl);
  let dCl_dw = select(0.0, -0.5, pl < tl);
  let dCr_dx = select(0.0, 1.0, pr > tr);
  let dCr_dw = select(0.0, 0.5, pr > tr);
  let dCw_dx = dCr_dx - dCl_dx;
  let dCw_dw = dCr_dw - dCl_dw;
  let dCh_dy = dCb_dy - dCt_dy;
  let dCh_dh = dCb_dh - dCt_dh;
  var d = vec4f(g.z + g.w, g.x + g.y, g.w - g.z, g.y - g.x); // dx, dy, dw, dh
  if (kind == 3u || kind == 4u) {
    // the DIoU distance term (dCw_dy, dCw_dh, dCh_dx, dCh_dw are 0)
    let dist = vec4f(
      (2.0 * (t.x - p.x) * C - (2.0 * Cw * dCw_dx) * S) / (C * C),
      (2.0 * (t.y - p.y) * C - (2.0 * Ch * dCh_dy) * S) / (C * C),
      (2.0 * Cw * dCw_dw) * S / (C * C),
      (2.0 * Ch * dCh_dh) * S / (C * C));
    var ar = vec4f(0.0);
    if (kind == 4u) {
      let da = atan(t.z / t.w) - atan(p.z / p.w);
      let arLoss = 4.0 / (PI * PI) * da * da;
      let alpha = arLoss / (1.0 - I / U + arLoss + 0.000001);
      ar = vec4f(0.0, 0.0, alpha * 8.0 / (PI * PI) * da * p.w, alpha * -8.0 / (PI * PI) * da * p.z);
    }
    if (C > 0.0) { d += dist + ar; }
    if (Iw <= 0.0 || Ih <= 0.0) { d = dist + ar; }
  }
  return d;
}
