/**
 * Float64 reference of yolov5 v7.0 ComputeLoss on NCHW head inputs (p[b,a,y,x,k] = z[b, a*no + k, y, x]):
 * the loss, the items and the gradient d loss / d z derived by hand (CIoU alpha and the objectness targets
 * are constants, as yolov5 detaches them; torch's min/max split the gradient at ties). With `frozen`, the
 * value uses the given alpha and tobj instead of computing them, so finite differences of the value match
 * the gradient. hyp.fl_gamma > 0 wraps the objectness and class BCEs in yolov5's FocalLoss (focalRef).
 */
import { buildTargetsV5, type V5TargetRow, type V5Targets } from '../../src/yolo/targets.js';

export interface V5RefHead {
  z: ArrayLike<number>;
  B: number;
  ny: number;
  nx: number;
  /** grid units, 2*na */
  anchors: readonly number[];
}

export interface V5RefHyp {
  box: number;
  obj: number;
  cls: number;
  cls_pw: number;
  obj_pw: number;
  anchor_t: number;
  label_smoothing: number;
  /** > 0: FocalLoss(BCE, gamma, alpha 0.25) on objectness and classes; absent or <= 0: plain BCE */
  fl_gamma?: number;
}

export interface V5RefFrozen {
  /** per head, per build_targets entry */
  alpha: Float64Array[];
  /** per head: cell index -> tobj */
  tobj: Map<number, number>[];
}

export interface V5RefResult {
  loss: number;
  items: [number, number, number];
  grad: Float64Array[];
  ciou: Float64Array[];
  targets: V5Targets[];
  frozen: V5RefFrozen;
}

const sig = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
/** BCEWithLogits with pos_weight: (1 - t) v + (1 + (pw - 1) t) softplus(-v) */
const bce = (v: number, t: number, pw: number) => (1 - t) * v + (1 + (pw - 1) * t) * softplus(-v);
const dbce = (v: number, t: number, pw: number) => (1 - t) - (1 + (pw - 1) * t) * sig(-v);

/**
 * yolov5 FocalLoss around BCEWithLogits (alpha 0.25): value BCE·af·m^gamma and its derivative in v, with
 * af = t·alpha + (1 − t)(1 − alpha), m = 1 − p_t = t(1 − σ(v)) + (1 − t)σ(v), dm/dv = (1 − 2t)σ(v)(1 − σ(v)):
 * d/dv = af·(dbce·m^gamma + BCE·gamma·m^(gamma − 1)·dm/dv) (the modulating factor is not detached).
 * gamma <= 0: the plain BCE (ComputeLoss wraps only for fl_gamma > 0).
 */
export function focalRef(v: number, t: number, pw: number, gamma: number, alpha = 0.25): { value: number; grad: number } {
  const l = bce(v, t, pw);
  const d = dbce(v, t, pw);
  if (!(gamma > 0)) return { value: l, grad: d };
  const sp = sig(v), sn = sig(-v);
  const m = t * sn + (1 - t) * sp;
  const af = t * alpha + (1 - t) * (1 - alpha);
  const mg = m ** gamma;
  const dmg = m > 0 ? gamma * m ** (gamma - 1) : gamma === 1 ? 1 : gamma < 1 ? Infinity : 0;
  return { value: af * l * mg, grad: af * (d * mg + l * dmg * (1 - 2 * t) * sp * sn) };
}

const EPS = 1e-7;
/** d min(a, b) / d a (torch: 1/2 at a tie) */
const selMin = (a: number, b: number) => (a < b ? 1 : a === b ? 0.5 : 0);
const selMax = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);

/** bbox_iou(CIoU) of p vs t (xywh) and its gradient w.r.t. p with alpha constant (alphaIn: use it instead). */
export function ciouRef(p: readonly number[], t: readonly number[], alphaIn?: number): { ciou: number; alpha: number; grad: [number, number, number, number] } {
  const [x1, y1, w1, h1] = p;
  const [x2, y2, w2, h2] = t;
  const b1x1 = x1 - w1 / 2, b1x2 = x1 + w1 / 2, b1y1 = y1 - h1 / 2, b1y2 = y1 + h1 / 2;
  const b2x1 = x2 - w2 / 2, b2x2 = x2 + w2 / 2, b2y1 = y2 - h2 / 2, b2y2 = y2 + h2 / 2;
  const ix = Math.min(b1x2, b2x2) - Math.max(b1x1, b2x1);
  const iy = Math.min(b1y2, b2y2) - Math.max(b1y1, b2y1);
  const iw = Math.max(ix, 0), ih = Math.max(iy, 0);
  const inter = iw * ih;
  const union = w1 * h1 + w2 * h2 - inter + EPS;
  const iou = inter / union;
  const cw = Math.max(b1x2, b2x2) - Math.min(b1x1, b2x1);
  const ch = Math.max(b1y2, b2y2) - Math.min(b1y1, b2y1);
  const c2 = cw * cw + ch * ch + EPS;
  const sx = b2x1 + b2x2 - b1x1 - b1x2;
  const sy = b2y1 + b2y2 - b1y1 - b1y2;
  const rho2 = (sx * sx + sy * sy) / 4;
  const da = Math.atan(w2 / h2) - Math.atan(w1 / h1);
  const v = (4 / Math.PI ** 2) * da * da;
  const alpha = alphaIn ?? v / (v - iou + (1 + EPS));
  const ciou = iou - (rho2 / c2 + v * alpha);
  // gradient
  const gx = ix >= 0 ? 1 : 0; // clamp(min=0) passes the gradient where ix >= 0
  const gy = iy >= 0 ? 1 : 0;
  const gInter = 1 / union + inter / (union * union);
  const gUnionArea = -inter / (union * union); // d iou / d (w1*h1)
  const gC = rho2 / (c2 * c2); // d ciou / d c2 = rho2/c2²
  const gRho = -1 / c2;
  const g_b1x2 = gInter * ih * gx * selMin(b1x2, b2x2) + gC * 2 * cw * selMax(b1x2, b2x2) + gRho * (-sx / 2);
  const g_b1x1 = -gInter * ih * gx * selMax(b1x1, b2x1) - gC * 2 * cw * selMin(b1x1, b2x1) + gRho * (-sx / 2);
  const g_b1y2 = gInter * iw * gy * selMin(b1y2, b2y2) + gC * 2 * ch * selMax(b1y2, b2y2) + gRho * (-sy / 2);
  const g_b1y1 = -gInter * iw * gy * selMax(b1y1, b2y1) - gC * 2 * ch * selMin(b1y1, b2y1) + gRho * (-sy / 2);
  const r = w1 / h1;
  const dv_dw = (-8 / Math.PI ** 2) * da * (1 / h1) / (1 + r * r);
  const dv_dh = (8 / Math.PI ** 2) * da * (w1 / (h1 * h1)) / (1 + r * r);
  const dx = g_b1x1 + g_b1x2;
  const dy = g_b1y1 + g_b1y2;
  const dw = 0.5 * (g_b1x2 - g_b1x1) + gUnionArea * h1 - alpha * dv_dw;
  const dh = 0.5 * (g_b1y2 - g_b1y1) + gUnionArea * w1 - alpha * dv_dh;
  return { ciou, alpha, grad: [dx, dy, dw, dh] };
}

/** yolov5 ComputeLoss (see the module comment). heads in P3, P4, ... order with their balance. */
export function v5LossRef(heads: V5RefHead[], rows: readonly V5TargetRow[], nc: number, hyp: V5RefHyp, balance: readonly number[], frozen?: V5RefFrozen): V5RefResult {
  const no = 5 + nc;
  const cp = 1 - 0.5 * hyp.label_smoothing;
  const cn = 0.5 * hyp.label_smoothing;
  const bs = heads[0].B;
  const gamma = hyp.fl_gamma ?? 0;
  let lbox = 0, lobj = 0, lcls = 0;
  const grads: Float64Array[] = [];
  const cious: Float64Array[] = [];
  const targets: V5Targets[] = [];
  const fr: V5RefFrozen = { alpha: [], tobj: [] };
  heads.forEach((hd, i) => {
    const na = hd.anchors.length / 2;
    const HW = hd.ny * hd.nx;
    const z = hd.z;
    const grad = new Float64Array(z.length);
    const bt = buildTargetsV5(rows, { ny: hd.ny, nx: hd.nx, anchors: hd.anchors }, hyp.anchor_t);
    targets.push(bt);
    const n = bt.n;
    const at = (b: number, a: number, k: number, cell: number) => ((b * na + a) * no + k) * HW + cell;
    const ciou = new Float64Array(n);
    const alphas = new Float64Array(n);
    const tobj = new Map<number, number>();
    const wBox = hyp.box / Math.max(n, 1);
    const wCls = nc > 1 ? hyp.cls / Math.max(n * nc, 1) : 0;
    for (let e = 0; e < n; e++) {
      const b = bt.b[e], a = bt.a[e], cell = bt.gj[e] * hd.nx + bt.gi[e];
      const s = [0, 1, 2, 3].map((k) => sig(z[at(b, a, k, cell)]));
      const p = [2 * s[0] - 0.5, 2 * s[1] - 0.5, (2 * s[2]) ** 2 * bt.anch[2 * e], (2 * s[3]) ** 2 * bt.anch[2 * e + 1]];
      const r = ciouRef(p, [...bt.tbox.subarray(4 * e, 4 * e + 4)], frozen?.alpha[i][e]);
      ciou[e] = r.ciou;
      alphas[e] = r.alpha;
      lbox += wBox * (1 - r.ciou);
      const dp = [2 * s[0] * (1 - s[0]), 2 * s[1] * (1 - s[1]), 8 * s[2] * s[2] * (1 - s[2]) * bt.anch[2 * e], 8 * s[3] * s[3] * (1 - s[3]) * bt.anch[2 * e + 1]];
      for (let k = 0; k < 4; k++) grad[at(b, a, k, cell)] += -wBox * r.grad[k] * dp[k] * bs;
      tobj.set((b * na + a) * HW + cell, Math.max(r.ciou, 0)); // gr = 1; the last entry wins
      if (nc > 1) {
        for (let c = 0; c < nc; c++) {
          const v = z[at(b, a, 5 + c, cell)];
          const t = c === bt.tcls[e] ? cp : cn;
          const f = focalRef(v, t, hyp.cls_pw, gamma);
          lcls += wCls * f.value;
          grad[at(b, a, 5 + c, cell)] += wCls * f.grad * bs;
        }
      }
    }
    const tob = frozen?.tobj[i] ?? tobj;
    const wObj = (hyp.obj * balance[i]) / (bs * na * HW);
    for (let b = 0; b < bs; b++) {
      for (let a = 0; a < na; a++) {
        for (let cell = 0; cell < HW; cell++) {
          const t = tob.get((b * na + a) * HW + cell) ?? 0;
          const v = z[at(b, a, 4, cell)];
          const f = focalRef(v, t, hyp.obj_pw, gamma);
          lobj += wObj * f.value;
          grad[at(b, a, 4, cell)] += wObj * f.grad * bs;
        }
      }
    }
    grads.push(grad);
    cious.push(ciou);
    fr.alpha.push(alphas);
    fr.tobj.push(tobj);
  });
  // the box gain is inside wBox; the gradient lines above multiply by bs
  return { loss: (lbox + lobj + lcls) * bs, items: [lbox, lobj, lcls], grad: grads, ciou: cious, targets, frozen: frozen ?? fr };
}
