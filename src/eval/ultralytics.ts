/**
 * The Ultralytics protocol: yolov5 v7.0 val.py `process_batch` (matching) and utils/metrics.py
 * `ap_per_class` / `compute_ap` / `smooth` (read for semantics only), on EvalImage lists.
 *
 * Matching, per image and IoU threshold t (.50:.05:.95, float32 as torch.linspace gives them): every
 * (ground truth, detection) pair of the same class with IoU >= t is a candidate; each detection keeps its
 * best ground truth (highest IoU), then each ground truth keeps the detection that comes first in the
 * image's list. The list is taken in descending score order (stable), which is the order NMS hands
 * val.py, so "first" means "highest score". IoUs are computed like torch in float32 with union + 1e-7.
 * There is no fallback: a detection whose best ground truth went to another detection is a FP even if a
 * second ground truth would have matched.
 *
 * AP per class (classes that have ground truth only; detections of other classes are ignored):
 * cumulative TP/FP over all detections by confidence, recall = tp/n_gt, precision = tp/(tp+fp);
 * envelope of [1, precision, 0] over [0, recall, 1], sampled by linear interpolation at 101 recall
 * points and integrated with the trapezoidal rule. P and R per class are read on a 1000-point
 * confidence grid (recall interpolated with left=0, precision with left=1) at the index maximising the
 * 0.1-box-filtered mean-over-classes F1. When no detection is a TP at any threshold val.py reports all
 * zeros; this does the same.
 */
import { argsortDesc, interp, linspace, npMean, roundHalfEven, torchLinspaceF32, trapz } from './numeric.js';
import type { EvalImage, GroundTruth, Prediction, XyxyBox } from './types.js';

/** val.py iouv = torch.linspace(0.5, 0.95, 10) (float32). */
export const ULTRALYTICS_IOUV = torchLinspaceF32(0.5, 0.95, 10);

const f = Math.fround;

/** yolov5 box_iou for one pair, in float32 like torch: inter / (area1 + area2 - inter + 1e-7). */
export function ultralyticsIou(a: XyxyBox, b: XyxyBox): number {
  const ax1 = f(a.x1), ay1 = f(a.y1), ax2 = f(a.x2), ay2 = f(a.y2);
  const bx1 = f(b.x1), by1 = f(b.y1), bx2 = f(b.x2), by2 = f(b.y2);
  const iw = Math.max(0, f(Math.min(ax2, bx2) - Math.max(ax1, bx1)));
  const ih = Math.max(0, f(Math.min(ay2, by2) - Math.max(ay1, by1)));
  const inter = f(iw * ih);
  const a1 = f(f(ax2 - ax1) * f(ay2 - ay1));
  const a2 = f(f(bx2 - bx1) * f(by2 - by1));
  return f(inter / f(f(f(a1 + a2) - inter) + f(1e-7)));
}

/**
 * val.py process_batch: the TP matrix [det][threshold] for one image's detections (in the given order,
 * which must be descending score) against its labels. `iou` lets a caller pass a precomputed matrix
 * [gt][det] (any IoU function); by default ultralyticsIou. Only same-class pairs are candidates.
 */
export function processBatch(dets: readonly Prediction[], gts: readonly GroundTruth[], iouv: readonly number[] = ULTRALYTICS_IOUV, iouFn: (a: XyxyBox, b: XyxyBox) => number = ultralyticsIou): Uint8Array[] {
  const correct = dets.map(() => new Uint8Array(iouv.length));
  if (dets.length === 0 || gts.length === 0) return correct;
  const iou = gts.map((g) => dets.map((d) => (g.classId === d.classId ? iouFn(g, d) : -1)));
  for (let t = 0; t < iouv.length; t++) {
    // candidates [label, det, iou]; each det keeps its best label, each label its first det
    const bestGt = new Int32Array(dets.length).fill(-1);
    const bestIou = new Float64Array(dets.length);
    for (let gi = 0; gi < gts.length; gi++) {
      for (let di = 0; di < dets.length; di++) {
        const v = iou[gi][di];
        if (v < 0 || !(v >= iouv[t])) continue;
        // argsort ascending then reversed: among equal IoUs the later (label-major) candidate comes first
        if (bestGt[di] < 0 || v >= bestIou[di]) {
          bestGt[di] = gi;
          bestIou[di] = v;
        }
      }
    }
    const taken = new Uint8Array(gts.length);
    for (let di = 0; di < dets.length; di++) {
      const gi = bestGt[di];
      if (gi < 0 || taken[gi]) continue;
      taken[gi] = 1;
      correct[di][t] = 1;
    }
  }
  return correct;
}

/** smooth(y, f): box filter of fraction f with edge padding (np.convolve 'valid'). */
export function smooth(y: ArrayLike<number>, frac = 0.05): Float64Array {
  const n = y.length;
  const nf = Math.floor(Math.round(n * frac * 2) / 2) + 1;
  const half = Math.floor(nf / 2);
  const yp = new Float64Array(n + 2 * half);
  for (let i = 0; i < half; i++) {
    yp[i] = y[0];
    yp[n + half + i] = y[n - 1];
  }
  for (let i = 0; i < n; i++) yp[half + i] = y[i];
  const w = 1 / nf;
  const out = new Float64Array(yp.length - nf + 1);
  for (let k = 0; k < out.length; k++) {
    let s = 0;
    for (let j = 0; j < nf; j++) s += yp[k + j] * w;
    out[k] = s;
  }
  return out;
}

/** compute_ap: AP plus the envelope (mpre over mrec) it integrated. */
export function computeAp(recall: ArrayLike<number>, precision: ArrayLike<number>): { ap: number; mrec: Float64Array; mpre: Float64Array } {
  const n = recall.length;
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  mrec[0] = 0;
  mpre[0] = 1;
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = recall[i];
    mpre[i + 1] = precision[i];
  }
  mrec[n + 1] = 1;
  mpre[n + 1] = 0;
  for (let i = n; i >= 0; i--) mpre[i] = Math.max(mpre[i], mpre[i + 1]);
  const x = linspace(0, 1, 101);
  const ap = trapz(interp(x, mrec, mpre), x);
  return { ap, mrec, mpre };
}

export interface ApPerClassResult {
  /** Classes with ground truth, ascending. */
  classes: number[];
  /** Labels per class. */
  nt: number[];
  tp: number[];
  fp: number[];
  p: number[];
  r: number[];
  f1: number[];
  /** [class][threshold] AP. */
  ap: number[][];
  /** The confidence-grid index chosen (argmax of the smoothed mean F1) and its confidence. */
  index: number;
  conf: number;
  /** 1000-point confidence grid and the per-class curves on it (for plots). */
  px: Float64Array;
  pCurve: Float64Array[];
  rCurve: Float64Array[];
  f1Curve: Float64Array[];
  /** Precision at recall px of the IoU .5 envelope (the PR plot), per class. */
  prCurve: Float64Array[];
}

/**
 * ap_per_class. tp: [det][threshold] flags; conf, predCls: per detection; targetCls: per label.
 * Detections are sorted by confidence (stable; NumPy's quicksort order for equal scores is unspecified).
 */
export function apPerClass(tp: readonly ArrayLike<number>[], conf: readonly number[], predCls: readonly number[], targetCls: readonly number[], eps = 1e-16): ApPerClassResult {
  const order = argsortDesc(conf);
  const nT = tp.length ? tp[0].length : 10;
  const counts = new Map<number, number>();
  for (const c of targetCls) counts.set(c, (counts.get(c) ?? 0) + 1);
  const classes = [...counts.keys()].sort((a, b) => a - b);
  const nt = classes.map((c) => counts.get(c)!);
  const nc = classes.length;
  const px = Float64Array.from(linspace(0, 1, 1000));
  const negPx = px.map((v) => -v);
  const ap = classes.map(() => new Array<number>(nT).fill(0));
  const pCurve: Float64Array[] = classes.map(() => new Float64Array(1000));
  const rCurve: Float64Array[] = classes.map(() => new Float64Array(1000));
  const prCurve: Float64Array[] = classes.map(() => new Float64Array(1000));
  classes.forEach((c, ci) => {
    const idx = order.filter((i) => predCls[i] === c);
    const nl = nt[ci];
    if (idx.length === 0 || nl === 0) return;
    const negConf = idx.map((i) => -conf[i]);
    const recall: Float64Array[] = [];
    const precision: Float64Array[] = [];
    for (let j = 0; j < nT; j++) {
      const rec = new Float64Array(idx.length);
      const pre = new Float64Array(idx.length);
      let tpc = 0;
      let fpc = 0;
      idx.forEach((i, k) => {
        tpc += tp[i][j];
        fpc += 1 - tp[i][j];
        rec[k] = tpc / (nl + eps);
        pre[k] = tpc / (tpc + fpc);
      });
      recall.push(rec);
      precision.push(pre);
    }
    rCurve[ci] = interp(negPx, negConf, recall[0], 0);
    pCurve[ci] = interp(negPx, negConf, precision[0], 1);
    for (let j = 0; j < nT; j++) {
      const r = computeAp(recall[j], precision[j]);
      ap[ci][j] = r.ap;
      if (j === 0) prCurve[ci] = interp(px, r.mrec, r.mpre);
    }
  });
  const f1Curve = classes.map((_, ci) => pCurve[ci].map((p, k) => (2 * p * rCurve[ci][k]) / (p + rCurve[ci][k] + eps)));
  const meanF1 = new Float64Array(1000);
  for (let k = 0; k < 1000; k++) {
    let s = 0;
    for (let ci = 0; ci < nc; ci++) s += f1Curve[ci][k];
    meanF1[k] = nc ? s / nc : NaN;
  }
  const sm = smooth(meanF1, 0.1);
  let index = 0;
  for (let k = 1; k < sm.length; k++) if (sm[k] > sm[index] || (Number.isNaN(sm[index]) && !Number.isNaN(sm[k]))) index = k;
  const p = classes.map((_, ci) => pCurve[ci][index]);
  const r = classes.map((_, ci) => rCurve[ci][index]);
  const f1 = classes.map((_, ci) => f1Curve[ci][index]);
  const tpOut = r.map((v, ci) => roundHalfEven(v * nt[ci]));
  const fpOut = tpOut.map((t, ci) => roundHalfEven(t / (p[ci] + eps) - t));
  return { classes, nt, tp: tpOut, fp: fpOut, p, r, f1, ap, index, conf: px[index], px, pCurve, rCurve, f1Curve, prCurve };
}

export interface UltralyticsResult {
  /** Per image, per detection (in the image's list order) the TP flags at the 10 thresholds. */
  correct: Uint8Array[][];
  /** ap_per_class output (null when no detection is a TP anywhere: val.py then reports zeros). */
  perClass: { classId: number; nt: number; p: number; r: number; f1: number; ap50: number; ap50_95: number; ap: number[]; tp: number; fp: number }[];
  mp: number;
  mr: number;
  map50: number;
  map50_95: number;
  conf: number;
  raw: ApPerClassResult | null;
}

/** val.py over all images: process_batch per image, then ap_per_class on the concatenated stats. */
export function ultralyticsEvaluate(images: readonly EvalImage[], iouv: readonly number[] = ULTRALYTICS_IOUV): UltralyticsResult {
  const correct: Uint8Array[][] = [];
  const tpAll: Uint8Array[] = [];
  const confAll: number[] = [];
  const clsAll: number[] = [];
  const targetCls: number[] = [];
  for (const im of images) {
    const order = argsortDesc(im.dets.map((d) => d.score));
    const sorted = order.map((i) => im.dets[i]);
    const c = processBatch(sorted, im.gts, iouv);
    const byInput: Uint8Array[] = new Array(im.dets.length);
    order.forEach((i, k) => (byInput[i] = c[k]));
    correct.push(byInput);
    sorted.forEach((d, k) => {
      tpAll.push(c[k]);
      confAll.push(d.score);
      clsAll.push(d.classId);
    });
    for (const g of im.gts) targetCls.push(g.classId);
  }
  const anyTp = tpAll.some((row) => row.some((v) => v));
  const classes = [...new Set(targetCls)].sort((a, b) => a - b);
  if (!anyTp) {
    const perClass = classes.map((c) => ({ classId: c, nt: targetCls.filter((x) => x === c).length, p: 0, r: 0, f1: 0, ap50: 0, ap50_95: 0, ap: new Array<number>(iouv.length).fill(0), tp: 0, fp: 0 }));
    return { correct, perClass, mp: 0, mr: 0, map50: 0, map50_95: 0, conf: 0, raw: null };
  }
  const raw = apPerClass(tpAll, confAll, clsAll, targetCls);
  const perClass = raw.classes.map((c, ci) => ({
    classId: c,
    nt: raw.nt[ci],
    p: raw.p[ci],
    r: raw.r[ci],
    f1: raw.f1[ci],
    ap50: raw.ap[ci][0],
    ap50_95: npMean(raw.ap[ci]),
    ap: raw.ap[ci],
    tp: raw.tp[ci],
    fp: raw.fp[ci],
  }));
  return {
    correct,
    perClass,
    mp: npMean(raw.p),
    mr: npMean(raw.r),
    map50: npMean(perClass.map((x) => x.ap50)),
    map50_95: npMean(perClass.map((x) => x.ap50_95)),
    conf: raw.conf,
    raw,
  };
}
