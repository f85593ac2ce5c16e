/**
 * The VOC protocol (the devkit's voc_eval, as in py-faster-rcnn, and Darknet's `detector map`, which
 * matches the same way): per class, all detections of all images by score (stable); each takes the ground
 * truth with the highest IoU among **all** ground truths of its class in its image (matched or not; the
 * first of equal IoUs); it is a TP iff that IoU is > the threshold (0.5) and that ground truth is still
 * unused, else a FP. No fallback to a second-best ground truth. A `difficult` ground truth is not counted
 * in npos and a detection whose best ground truth is difficult is neither TP nor FP.
 *
 * AP: 'voc07' = 11-point (mean over r in np.arange(0, 1.1, 0.1) of the max precision at recall >= r, 0
 * when none; note 3·0.1 = 0.30000000000000004, so a recall of exactly 0.3 does not reach that point), 'voc'
 * = all points (VOC2010+: area under the precision envelope at every recall change). IoU without the
 * devkit's +1 pixel convention (continuous coordinates).
 */
import { arange, argsortDesc, npMean, npSum } from './numeric.js';
import { iouXyxy, type EvalImage } from './types.js';

/** VOC AP from recall and precision arrays (in detection order). */
export function vocAp(rec: ArrayLike<number>, prec: ArrayLike<number>, use07 = false): number {
  const n = rec.length;
  if (use07) {
    let ap = 0;
    for (const t of arange(0, 1.1, 0.1)) {
      let p = 0;
      let any = false;
      for (let i = 0; i < n; i++) {
        if (rec[i] >= t) {
          p = any ? Math.max(p, prec[i]) : prec[i];
          any = true;
        }
      }
      ap = ap + (any ? p : 0) / 11;
    }
    return ap;
  }
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = rec[i];
    mpre[i + 1] = prec[i];
  }
  mrec[n + 1] = 1;
  for (let i = n + 1; i > 0; i--) mpre[i - 1] = Math.max(mpre[i - 1], mpre[i]);
  const terms: number[] = [];
  for (let i = 0; i < n + 1; i++) if (mrec[i + 1] !== mrec[i]) terms.push((mrec[i + 1] - mrec[i]) * mpre[i + 1]);
  return npSum(terms);
}

export interface VocClassResult {
  classId: number;
  npos: number;
  ndet: number;
  /** AP per IoU threshold (null when the class has no ground truth). */
  ap: (number | null)[];
  /** At the first threshold: detections by score with their flags (1 TP, 0 FP, -1 ignored (difficult)). */
  scores: number[];
  flags: Int8Array;
}

export interface VocResult {
  use07: boolean;
  thresholds: number[];
  perClass: VocClassResult[];
  /** Mean over classes with ground truth, per threshold. */
  map: number[];
}

/** One class's detections over all images, by score (stable), each with its best ground truth (any state). */
export interface VocRanked {
  npos: number;
  scores: number[];
  /** Image index, best ground-truth index in that image (-1 when none), its IoU, whether it is difficult. */
  image: Int32Array;
  best: Int32Array;
  ovmax: Float64Array;
  difficult: Uint8Array;
}

/** Ranks one class's detections and finds each one's best ground truth (independent of the threshold). */
export function vocRankClass(images: readonly EvalImage[], classId: number): VocRanked {
  const dets: { im: number; d: number; score: number }[] = [];
  let npos = 0;
  images.forEach((im, ii) => {
    im.dets.forEach((d, di) => {
      if (d.classId === classId) dets.push({ im: ii, d: di, score: d.score });
    });
    for (const g of im.gts) if (g.classId === classId && !g.difficult) npos++;
  });
  const order = argsortDesc(dets.map((x) => x.score));
  const n = order.length;
  const r: VocRanked = { npos, scores: new Array<number>(n), image: new Int32Array(n), best: new Int32Array(n), ovmax: new Float64Array(n), difficult: new Uint8Array(n) };
  order.forEach((k, j) => {
    const { im, d } = dets[k];
    const det = images[im].dets[d];
    let ovmax = -Infinity;
    let jmax = -1;
    images[im].gts.forEach((g, gi) => {
      if (g.classId !== classId) return;
      const o = iouXyxy(det, g);
      if (o > ovmax) {
        ovmax = o;
        jmax = gi;
      }
    });
    r.scores[j] = dets[k].score;
    r.image[j] = im;
    r.best[j] = jmax;
    r.ovmax[j] = ovmax;
    r.difficult[j] = jmax >= 0 && images[im].gts[jmax].difficult ? 1 : 0;
  });
  return r;
}

/** VOC flags of a ranked class at one threshold: 1 TP, 0 FP, -1 ignored (best ground truth difficult). */
export function vocFlags(r: VocRanked, iouThr: number, images: readonly EvalImage[]): Int8Array {
  const used = new Map<number, Uint8Array>();
  const flags = new Int8Array(r.scores.length);
  for (let j = 0; j < flags.length; j++) {
    const jmax = r.best[j];
    if (jmax < 0 || !(r.ovmax[j] > iouThr)) continue; // FP
    if (r.difficult[j]) {
      flags[j] = -1;
      continue;
    }
    let u = used.get(r.image[j]);
    if (!u) used.set(r.image[j], (u = new Uint8Array(images[r.image[j]].gts.length)));
    if (!u[jmax]) {
      u[jmax] = 1;
      flags[j] = 1;
    }
  }
  return flags;
}

/** Matching of one class over all images at one IoU threshold: flags in global score order. */
export function vocMatchClass(images: readonly EvalImage[], classId: number, iouThr: number): { scores: number[]; flags: Int8Array; npos: number } {
  const r = vocRankClass(images, classId);
  return { scores: r.scores, flags: vocFlags(r, iouThr, images), npos: r.npos };
}

/** Recall and precision arrays of a flag list (ignored detections dropped, as voc_eval's tp=fp=0 rows). */
export function vocCurve(flags: Int8Array, npos: number): { rec: Float64Array; prec: Float64Array } {
  const rec = new Float64Array(flags.length);
  const prec = new Float64Array(flags.length);
  let tp = 0;
  let fp = 0;
  flags.forEach((fl, i) => {
    if (fl === 1) tp++;
    else if (fl === 0) fp++;
    rec[i] = tp / npos;
    prec[i] = tp / Math.max(tp + fp, Number.EPSILON);
  });
  return { rec, prec };
}

/** VOC AP per class and threshold (default thresholds .50:.05:.95; VOC itself defines only .5). */
export function vocEvaluate(images: readonly EvalImage[], numClasses: number, opts: { use07?: boolean; thresholds?: number[] } = {}): VocResult {
  const use07 = opts.use07 ?? false;
  const thresholds = opts.thresholds ?? Array.from({ length: 10 }, (_, i) => Math.round((0.5 + 0.05 * i) * 100) / 100);
  const perClass: VocClassResult[] = [];
  for (let k = 0; k < numClasses; k++) {
    const ap: (number | null)[] = [];
    const ranked = vocRankClass(images, k);
    let first: Int8Array | null = null;
    for (const t of thresholds) {
      const flags = vocFlags(ranked, t, images);
      first ??= flags;
      if (ranked.npos === 0) {
        ap.push(null);
        continue;
      }
      const { rec, prec } = vocCurve(flags, ranked.npos);
      ap.push(vocAp(rec, prec, use07));
    }
    perClass.push({ classId: k, npos: ranked.npos, ndet: ranked.scores.length, ap, scores: ranked.scores, flags: first ?? new Int8Array(0) });
  }
  const map = thresholds.map((_, t) => {
    const v = perClass.filter((c) => c.ap[t] !== null).map((c) => c.ap[t] as number);
    return v.length ? npMean(v) : 0;
  });
  return { use07, thresholds, perClass, map };
}
