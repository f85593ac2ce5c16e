/**
 * The COCO protocol: a transcription of pycocotools COCOeval (iouType 'bbox', useCats 1) evaluate,
 * accumulate and summarize, on EvalImage lists instead of COCO json (cocodataset/cocoapi PythonAPI,
 * read for semantics only).
 *
 * - Per image and class: detections sorted by score (stable), at most maxDets[-1] (100); ground truths with
 *   the ignore flag (crowd, difficult, or area outside the area range) sorted last. Per IoU threshold t each
 *   detection in turn takes the still-unmatched ground truth with the highest IoU >= t (ties: the later one),
 *   preferring non-ignored ones; crowd ground truths can be matched many times and IoU with them is
 *   intersection / detection area. A detection matched to an ignored ground truth, or unmatched and outside
 *   the area range, is ignored (neither TP nor FP).
 * - Accumulate per class, area range, maxDets: all images' detections (each image's first maxDet) by score
 *   (stable, image order for ties), cumulative TP/FP, precision tp/(tp+fp+eps) made monotone from the
 *   right, sampled at recall thresholds 0:.01:1 at the first point whose recall >= r (0 past the last
 *   recall). A class without (non-ignored) ground truth keeps -1 and is left out of every mean.
 * - Images: every image of the list counts (pycocotools: every image id of the ground-truth file), in
 *   list order (pycocotools sorts the ids; only ties in score between images could notice).
 */
import { linspace, npMean } from './numeric.js';
import { boxArea, type EvalImage, type GroundTruth, type Prediction } from './types.js';

export interface CocoParams {
  /** IoU thresholds (default np.linspace(.5, .95, 10)). */
  iouThrs?: number[];
  /** Recall thresholds (default np.linspace(0, 1, 101)). */
  recThrs?: number[];
  /** Max detections per image and class (default [1, 10, 100]; the last is used for matching). */
  maxDets?: number[];
  /** Area ranges [lo, hi] (default all, small, medium, large). */
  areaRng?: [number, number][];
  /** Number of classes (default: max class id + 1). */
  numClasses?: number;
}

export const COCO_IOU_THRS = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
export const COCO_REC_THRS = linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1);
export const COCO_AREA_RNG: [number, number][] = [
  [0 ** 2, 1e5 ** 2],
  [0 ** 2, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e5 ** 2],
];
export const COCO_AREA_LBL = ['all', 'small', 'medium', 'large'];

/** evaluateImg's result for one (image, class, area range). */
export interface CocoImageEval {
  /** Detection scores, sorted descending, at most maxDets[-1]. */
  dtScores: number[];
  /** Flat [T][D] (index t·D + d, D = dtScores.length): index + 1 of the matched ground truth (sorted order), 0 when unmatched. */
  dtMatches: Int32Array;
  /** Flat [T][D]: 1 for an ignored detection. */
  dtIgnore: Uint8Array;
  /** Per ground truth (sorted: ignored last) whether it is ignored. */
  gtIgnore: Uint8Array;
  /** For each sorted detection, its index in the image's detection list. */
  dtIndex: number[];
}

export interface CocoResult {
  params: Required<Omit<CocoParams, 'numClasses'>>;
  numClasses: number;
  /** precision[t][r][k][a][m] flattened: index ((((t*R)+r)*K+k)*A+a)*M+m; -1 where the class has no GT. */
  precision: Float64Array;
  /** recall[t][k][a][m] flattened. */
  recall: Float64Array;
  /** Detection score at each precision point (same layout as precision). */
  scores: Float64Array;
  /** The 12 numbers of COCOeval.summarize() (stats[0] AP@[.5:.95], stats[1] AP@.5, ...). */
  stats: number[];
  /** Per class (null without ground truth): mean over entries > -1 of precision[T, :, k, all, maxDets[-1]]. */
  perClass: ({ classId: number; ap50_95: number; ap50: number; ap75: number; recall50: number; ap: number[] } | null)[];
  /** evalImgs for area 'all': [k][image] (null when the image has neither GT nor detections of class k). */
  evalImgs: (CocoImageEval | null)[][];
}

interface GtItem {
  g: GroundTruth;
  ignore: boolean;
  crowd: boolean;
  area: number;
}

/** pycocotools bbox IoU (maskUtils.iou): crowd ground truths use the detection area as the union. */
export function cocoIou(d: Prediction, g: GroundTruth, crowd: boolean): number {
  const dw = d.x2 - d.x1;
  const dh = d.y2 - d.y1;
  const gw = g.x2 - g.x1;
  const gh = g.y2 - g.y1;
  const w = Math.min(d.x1 + dw, g.x1 + gw) - Math.max(d.x1, g.x1);
  if (w <= 0) return 0;
  const h = Math.min(d.y1 + dh, g.y1 + gh) - Math.max(d.y1, g.y1);
  if (h <= 0) return 0;
  const i = w * h;
  const da = dw * dh;
  const u = crowd ? da : da + gw * gh - i;
  return i / u;
}

/**
 * pycocotools evaluateImg for one image, one class, one area range. `dts` must already be sorted by score
 * (stable) and truncated to maxDet; `dtIndex` their positions in the image list.
 */
export function cocoEvaluateImg(gtsIn: readonly GroundTruth[], dts: readonly Prediction[], dtIndex: number[], aRng: [number, number], iouThrs: readonly number[]): CocoImageEval | null {
  if (gtsIn.length === 0 && dts.length === 0) return null;
  const items: GtItem[] = gtsIn.map((g) => {
    const area = g.area ?? boxArea(g);
    const crowd = !!g.crowd;
    return { g, crowd, area, ignore: crowd || !!g.difficult || area < aRng[0] || area > aRng[1] };
  });
  // np.argsort(_ignore, kind='mergesort'): not ignored first, stable
  const gts = [...items.filter((x) => !x.ignore), ...items.filter((x) => x.ignore)];
  const T = iouThrs.length;
  const G = gts.length;
  const D = dts.length;
  const ious = new Float64Array(D * G);
  for (let d = 0; d < D; d++) for (let g = 0; g < G; g++) ious[d * G + g] = cocoIou(dts[d], gts[g].g, gts[g].crowd);
  const gtm = new Int32Array(T * G);
  const dtm = new Int32Array(T * D);
  const dtIg = new Uint8Array(T * D);
  const gtIg = Uint8Array.from(gts, (x) => (x.ignore ? 1 : 0));
  if (G > 0 && D > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let iou = Math.min(iouThrs[t], 1 - 1e-10);
        let m = -1;
        for (let g = 0; g < G; g++) {
          if (gtm[t * G + g] > 0 && !gts[g].crowd) continue;
          if (m > -1 && gtIg[m] === 0 && gtIg[g] === 1) break;
          const v = ious[d * G + g];
          if (v < iou) continue;
          iou = v;
          m = g;
        }
        if (m === -1) continue;
        dtIg[t * D + d] = gtIg[m];
        dtm[t * D + d] = m + 1;
        gtm[t * G + m] = d + 1;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    const a = boxArea(dts[d]);
    const out = a < aRng[0] || a > aRng[1];
    if (!out) continue;
    for (let t = 0; t < T; t++) if (dtm[t * D + d] === 0) dtIg[t * D + d] = 1;
  }
  return { dtScores: dts.map((d) => d.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg, dtIndex };
}

interface ClassPart {
  gts: GroundTruth[];
  dts: Prediction[];
  index: number[];
}

/** One image's ground truths and detections per class; detections sorted by score (stable), at most maxDet. */
function splitByClass(im: EvalImage, maxDet: number): Map<number, ClassPart> {
  const parts = new Map<number, ClassPart>();
  const get = (k: number) => {
    let p = parts.get(k);
    if (!p) parts.set(k, (p = { gts: [], dts: [], index: [] }));
    return p;
  };
  for (const g of im.gts) get(g.classId).gts.push(g);
  im.dets.forEach((d, i) => get(d.classId).index.push(i));
  for (const p of parts.values()) {
    p.index.sort((a, b) => im.dets[b].score - im.dets[a].score || a - b);
    p.index = p.index.slice(0, maxDet);
    p.dts = p.index.map((i) => im.dets[i]);
  }
  return parts;
}

/** Per recall threshold the precision (and score) of the envelope; the COCO accumulate step for one list. */
export function cocoPrecisionAt(tp: ArrayLike<number>, fp: ArrayLike<number>, npig: number, recThrs: readonly number[], scoresSorted?: ArrayLike<number>): { q: Float64Array; ss: Float64Array; recall: number } {
  const nd = tp.length;
  const rc = new Float64Array(nd);
  const pr = new Float64Array(nd);
  const eps = Number.EPSILON; // np.spacing(1)
  for (let i = 0; i < nd; i++) {
    rc[i] = tp[i] / npig;
    pr[i] = tp[i] / (fp[i] + tp[i] + eps);
  }
  for (let i = nd - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
  const R = recThrs.length;
  const q = new Float64Array(R);
  const ss = new Float64Array(R);
  let lo = 0;
  for (let r = 0; r < R; r++) {
    // searchsorted(rc, thr, 'left'); thresholds ascend so the search can resume
    while (lo < nd && rc[lo] < recThrs[r]) lo++;
    if (lo >= nd) break; // pycocotools: IndexError ends the loop, the rest stays 0
    q[r] = pr[lo];
    ss[r] = scoresSorted ? scoresSorted[lo] : 0;
  }
  return { q, ss, recall: nd ? rc[nd - 1] : 0 };
}

/** Runs evaluate + accumulate + summarize. */
export function cocoEvaluate(images: readonly EvalImage[], opts: CocoParams = {}): CocoResult {
  const iouThrs = opts.iouThrs ?? COCO_IOU_THRS;
  const recThrs = opts.recThrs ?? COCO_REC_THRS;
  const maxDets = opts.maxDets ?? [1, 10, 100];
  const areaRng = opts.areaRng ?? COCO_AREA_RNG;
  let K = opts.numClasses ?? 0;
  if (opts.numClasses === undefined) for (const im of images) for (const b of [...im.gts, ...im.dets]) K = Math.max(K, b.classId + 1);
  const T = iouThrs.length;
  const R = recThrs.length;
  const A = areaRng.length;
  const M = maxDets.length;
  const maxDet = maxDets[M - 1];
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const scores = new Float64Array(T * R * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;
  const evalAll: (CocoImageEval | null)[][] = [];

  const byClass = images.map((im) => splitByClass(im, maxDet));
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = byClass.map((parts) => {
        const p = parts.get(k);
        return p ? cocoEvaluateImg(p.gts, p.dts, p.index, areaRng[a], iouThrs) : null;
      });
      if (a === 0) evalAll.push(E);
      const Ev = E.filter((e): e is CocoImageEval => e !== null);
      if (Ev.length === 0) continue;
      let npig = 0;
      for (const e of Ev) for (const g of e.gtIgnore) if (!g) npig++;
      if (npig === 0) continue;
      // every image's detections (at most maxDets[-1]) concatenated in image order, as flat arrays; the
      // stable sort by score is done once: a smaller maxDet keeps the same order restricted to d < maxDet
      let total = 0;
      for (const e of Ev) total += e.dtScores.length;
      const sc = new Float64Array(total);
      const pos = new Int32Array(total);
      const flag = Array.from({ length: T }, () => new Int8Array(total)); // 1 TP, 0 FP, -1 ignored
      let o = 0;
      for (const e of Ev) {
        for (let d = 0; d < e.dtScores.length; d++, o++) {
          sc[o] = e.dtScores[d];
          pos[o] = d;
          const D = e.dtScores.length;
          for (let t = 0; t < T; t++) flag[t][o] = e.dtIgnore[t * D + d] ? -1 : e.dtMatches[t * D + d] !== 0 ? 1 : 0;
        }
      }
      const orderAll = Int32Array.from({ length: total }, (_, i) => i).sort((x, y) => sc[y] - sc[x] || x - y);
      for (let m = 0; m < M; m++) {
        const md = maxDets[m];
        const order = md >= maxDet ? orderAll : orderAll.filter((i) => pos[i] < md);
        const n = order.length;
        const sorted = new Float64Array(n);
        for (let j = 0; j < n; j++) sorted[j] = sc[order[j]];
        const tp = new Float64Array(n);
        const fp = new Float64Array(n);
        for (let t = 0; t < T; t++) {
          const fl = flag[t];
          let ctp = 0;
          let cfp = 0;
          for (let j = 0; j < n; j++) {
            const v = fl[order[j]];
            if (v === 1) ctp++;
            else if (v === 0) cfp++;
            tp[j] = ctp;
            fp[j] = cfp;
          }
          const { q, ss, recall: rc } = cocoPrecisionAt(tp, fp, npig, recThrs, sorted);
          recall[rIdx(t, k, a, m)] = rc;
          for (let r = 0; r < R; r++) {
            precision[pIdx(t, r, k, a, m)] = q[r];
            scores[pIdx(t, r, k, a, m)] = ss[r];
          }
        }
      }
    }
  }

  // summarize
  const mean = (vals: number[]) => {
    const v = vals.filter((x) => x > -1);
    return v.length === 0 ? -1 : npMean(v);
  };
  const aInd = (lbl: string) => COCO_AREA_LBL.indexOf(lbl);
  const mInd = (md: number) => maxDets.indexOf(md);
  const tInd = (thr: number | undefined) => (thr === undefined ? null : iouThrs.indexOf(thr));
  const summarizeAp = (iouThr?: number, area = 'all', md = maxDet) => {
    const a = aInd(area);
    const m = mInd(md);
    const ti = tInd(iouThr);
    if (a < 0 || m < 0 || ti === -1) return -1;
    const vals: number[] = [];
    for (let t = 0; t < T; t++) {
      if (ti !== null && t !== ti) continue;
      for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) vals.push(precision[pIdx(t, r, k, a, m)]);
    }
    return mean(vals);
  };
  const summarizeAr = (area = 'all', md = maxDet) => {
    const a = aInd(area);
    const m = mInd(md);
    if (a < 0 || m < 0) return -1;
    const vals: number[] = [];
    for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) vals.push(recall[rIdx(t, k, a, m)]);
    return mean(vals);
  };
  const stats = [
    summarizeAp(),
    summarizeAp(0.5),
    summarizeAp(0.75),
    summarizeAp(undefined, 'small'),
    summarizeAp(undefined, 'medium'),
    summarizeAp(undefined, 'large'),
    summarizeAr('all', maxDets[0]),
    summarizeAr('all', maxDets[1] ?? maxDet),
    summarizeAr('all', maxDet),
    summarizeAr('small'),
    summarizeAr('medium'),
    summarizeAr('large'),
  ];

  const t50 = iouThrs.indexOf(0.5);
  const t75 = iouThrs.indexOf(0.75);
  const perClass: CocoResult['perClass'] = [];
  for (let k = 0; k < K; k++) {
    const apT: number[] = [];
    const all: number[] = [];
    for (let t = 0; t < T; t++) {
      const v: number[] = [];
      for (let r = 0; r < R; r++) v.push(precision[pIdx(t, r, k, 0, M - 1)]);
      apT.push(mean(v));
      all.push(...v);
    }
    const ap = mean(all);
    if (ap === -1) {
      perClass.push(null);
      continue;
    }
    perClass.push({ classId: k, ap50_95: ap, ap50: t50 >= 0 ? apT[t50] : -1, ap75: t75 >= 0 ? apT[t75] : -1, recall50: t50 >= 0 ? recall[rIdx(t50, k, 0, M - 1)] : -1, ap: apT });
  }
  return { params: { iouThrs, recThrs, maxDets, areaRng }, numClasses: K, precision, recall, scores, stats, perClass, evalImgs: evalAll };
}

/** COCOeval.summarize()'s printed lines. */
export function cocoSummaryLines(stats: readonly number[], maxDets: readonly number[] = [1, 10, 100]): string[] {
  const rows: [string, string, string, number][] = [
    ['Average Precision', '0.50:0.95', 'all', maxDets[2]],
    ['Average Precision', '0.50', 'all', maxDets[2]],
    ['Average Precision', '0.75', 'all', maxDets[2]],
    ['Average Precision', '0.50:0.95', 'small', maxDets[2]],
    ['Average Precision', '0.50:0.95', 'medium', maxDets[2]],
    ['Average Precision', '0.50:0.95', 'large', maxDets[2]],
    ['Average Recall', '0.50:0.95', 'all', maxDets[0]],
    ['Average Recall', '0.50:0.95', 'all', maxDets[1]],
    ['Average Recall', '0.50:0.95', 'all', maxDets[2]],
    ['Average Recall', '0.50:0.95', 'small', maxDets[2]],
    ['Average Recall', '0.50:0.95', 'medium', maxDets[2]],
    ['Average Recall', '0.50:0.95', 'large', maxDets[2]],
  ];
  return rows.map(([title, iou, area, md], i) => {
    const type = title.startsWith('Average Precision') ? '(AP)' : '(AR)';
    return ` ${title.padEnd(18)} ${type} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(md).padStart(3)} ] = ${stats[i].toFixed(3)}`;
  });
}

/**
 * One class's detections over all images at IoU threshold index t (area 'all', the largest maxDets),
 * in accumulate order: score and flag (1 TP, 0 FP, -1 ignored), plus the number of non-ignored ground truths.
 */
export function cocoRanked(res: CocoResult, classId: number, t = 0): { scores: number[]; flags: Int8Array; npos: number } {
  const E = (res.evalImgs[classId] ?? []).filter((e): e is CocoImageEval => e !== null);
  const sc: number[] = [];
  const fl: number[] = [];
  let npos = 0;
  for (const e of E) {
    e.dtScores.forEach((s, d) => {
      sc.push(s);
      const D = e.dtScores.length;
      fl.push(e.dtIgnore[t * D + d] ? -1 : e.dtMatches[t * D + d] ? 1 : 0);
    });
    for (const g of e.gtIgnore) if (!g) npos++;
  }
  const order = sc.map((_, i) => i).sort((a, b) => sc[b] - sc[a] || a - b);
  return { scores: order.map((i) => sc[i]), flags: Int8Array.from(order, (i) => fl[i]), npos };
}
