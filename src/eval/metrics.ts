/**
 * One entry point over the four protocols: `scoreDetections(images, {protocol})` returns mAP@.5, mAP@.5:.95,
 * P/R/F1 at one confidence, a per-class table, and the curves the plots draw.
 *
 * - 'coco': mAP50 = pycocotools stats[1], mAP50-95 = stats[0]; per-class AP as the golden defines it.
 * - 'ultralytics': val.py's numbers (mP, mR, mAP50, mAP50-95; per-class P, R at the smoothed-F1 argmax).
 * - 'voc' / 'voc07': all-point / 11-point AP at IoU > .5; "AP50-95" is the same AP averaged over the IoU
 *   thresholds .50:.05:.95 (with VOC matching), which VOC itself does not define.
 *
 * P/R/F1 for 'coco', 'voc' and 'voc07' (which define none): the detections at IoU .5 are thresholded at
 * every distinct score; the score that maximises the mean over classes (with ground truth) of the
 * per-class F1 is chosen (the highest such score on ties), and P, R are read there per class; the summary
 * P and R are the means over classes. Ultralytics' own choice (1000-point grid, 0.1 box filter,
 * interpolated curves) is used for 'ultralytics'.
 */
import { cocoEvaluate, cocoRanked, type CocoResult } from './coco.js';
import { linspace, npMean } from './numeric.js';
import { ultralyticsEvaluate, type UltralyticsResult } from './ultralytics.js';
import { vocEvaluate, type VocResult } from './voc.js';
import { classCount, type EvalImage, type Protocol } from './types.js';

export interface ClassRow {
  classId: number;
  name: string;
  /** Images with at least one ground truth of the class. */
  images: number;
  /** Ground-truth boxes of the class (non-difficult, non-crowd for coco/voc npos). */
  instances: number;
  detections: number;
  precision: number;
  recall: number;
  f1: number;
  ap50: number;
  ap50_95: number;
  /** AP per IoU threshold .50:.05:.95. */
  ap: number[];
}

export interface EvalSummary {
  protocol: Protocol;
  numImages: number;
  numClasses: number;
  names: string[];
  instances: number;
  detections: number;
  map50: number;
  map50_95: number;
  /** Mean over classes of P, R, F1 at the chosen confidence. */
  precision: number;
  recall: number;
  f1: number;
  /** The confidence at which P, R, F1 are read. */
  conf: number;
  /** Classes with ground truth, ascending. */
  perClass: ClassRow[];
  /** Classes that have detections but no ground truth: excluded from every mean. */
  excludedClasses: number[];
  /** Precision over recall at IoU .5 per class of perClass (x shared). */
  prCurve: { recall: number[]; precision: number[][] };
  /** F1 over confidence per class of perClass (x: 1000 points in [0, 1]). */
  f1Curve: { conf: number[]; f1: number[][] };
  /** Protocol-specific raw results. */
  coco?: CocoResult;
  ultralytics?: UltralyticsResult;
  voc?: VocResult;
}

export interface ScoreOptions {
  protocol: Protocol;
  /** Number of classes (default: names.length, else max class id + 1). */
  numClasses?: number;
  names?: readonly string[];
}

interface Ranked {
  classId: number;
  npos: number;
  scores: number[];
  /** 1 TP, 0 FP, -1 ignored. */
  flags: ArrayLike<number>;
}

/** Best mean-F1 confidence over ranked per-class lists (see the file comment). */
export function bestF1(ranked: readonly Ranked[]): { conf: number; p: number[]; r: number[]; f1: number[] } {
  const n = ranked.length;
  const tp = new Float64Array(n);
  const fp = new Float64Array(n);
  const f1 = new Float64Array(n);
  const events: { s: number; c: number; fl: number }[] = [];
  ranked.forEach((rk, c) => rk.scores.forEach((s, i) => rk.flags[i] !== -1 && events.push({ s, c, fl: rk.flags[i] })));
  events.sort((a, b) => b.s - a.s);
  const pr = (c: number) => {
    const p = tp[c] + fp[c] > 0 ? tp[c] / (tp[c] + fp[c]) : 0;
    const r = ranked[c].npos > 0 ? tp[c] / ranked[c].npos : 0;
    return { p, r, f: p + r > 0 ? (2 * p * r) / (p + r) : 0 };
  };
  let sumF1 = 0;
  let best = { mean: 0, conf: events.length ? events[0].s : 0, tp: tp.slice(), fp: fp.slice() };
  for (let i = 0; i < events.length; ) {
    const s = events[i].s;
    for (; i < events.length && events[i].s === s; i++) {
      const e = events[i];
      if (e.fl === 1) tp[e.c]++;
      else fp[e.c]++;
      const nf = pr(e.c).f;
      sumF1 += nf - f1[e.c];
      f1[e.c] = nf;
    }
    const mean = n ? sumF1 / n : 0;
    if (mean > best.mean + 1e-12) best = { mean, conf: s, tp: tp.slice(), fp: fp.slice() };
  }
  tp.set(best.tp);
  fp.set(best.fp);
  const out = { conf: best.conf, p: [] as number[], r: [] as number[], f1: [] as number[] };
  for (let c = 0; c < n; c++) {
    const v = pr(c);
    out.p.push(v.p);
    out.r.push(v.r);
    out.f1.push(v.f);
  }
  return out;
}

/** F1 over a 1000-point confidence grid for a ranked list (detections with score >= conf). */
function f1OverConf(rk: Ranked, grid: readonly number[]): number[] {
  const sc: number[] = [];
  const ctp: number[] = [];
  const cfp: number[] = [];
  let tp = 0;
  let fp = 0;
  rk.scores.forEach((s, i) => {
    if (rk.flags[i] === -1) return;
    if (rk.flags[i] === 1) tp++;
    else fp++;
    sc.push(s);
    ctp.push(tp);
    cfp.push(fp);
  });
  return grid.map((c) => {
    // number of detections with score >= c (scores descending)
    let lo = 0;
    let hi = sc.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sc[mid] >= c) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0 || rk.npos === 0) return 0;
    const p = ctp[lo - 1] / lo;
    const r = ctp[lo - 1] / rk.npos;
    return p + r > 0 ? (2 * p * r) / (p + r) : 0;
  });
}

/** Precision envelope of a ranked list sampled at recall points (first point with recall >= x; 0 past the end). */
function envelopeAt(rk: Ranked, xs: readonly number[]): number[] {
  const rec: number[] = [];
  const pre: number[] = [];
  let tp = 0;
  let fp = 0;
  rk.scores.forEach((_, i) => {
    if (rk.flags[i] === -1) return;
    if (rk.flags[i] === 1) tp++;
    else fp++;
    rec.push(rk.npos ? tp / rk.npos : 0);
    pre.push(tp / (tp + fp));
  });
  for (let i = pre.length - 1; i > 0; i--) pre[i - 1] = Math.max(pre[i - 1], pre[i]);
  let j = 0;
  return xs.map((x) => {
    while (j < rec.length && rec[j] < x) j++;
    return j < rec.length ? pre[j] : 0;
  });
}

function classStats(images: readonly EvalImage[], K: number): { inst: number[]; imgs: number[]; dets: number[] } {
  const inst = new Array<number>(K).fill(0);
  const imgs = new Array<number>(K).fill(0);
  const dets = new Array<number>(K).fill(0);
  for (const im of images) {
    const seen = new Set<number>();
    for (const g of im.gts) {
      if (g.classId < 0 || g.classId >= K) continue;
      inst[g.classId]++;
      seen.add(g.classId);
    }
    for (const c of seen) imgs[c]++;
    for (const d of im.dets) if (d.classId >= 0 && d.classId < K) dets[d.classId]++;
  }
  return { inst, imgs, dets };
}

/** Evaluates detections against ground truth with one protocol. */
export function scoreDetections(images: readonly EvalImage[], opts: ScoreOptions): EvalSummary {
  const protocol = opts.protocol;
  const K = opts.numClasses ?? (opts.names?.length || classCount(images));
  const names = Array.from({ length: K }, (_, k) => opts.names?.[k] ?? String(k));
  const { inst, imgs, dets } = classStats(images, K);
  const gtClasses = inst.map((n, k) => (n > 0 ? k : -1)).filter((k) => k >= 0);
  const excludedClasses = dets.map((n, k) => (n > 0 && inst[k] === 0 ? k : -1)).filter((k) => k >= 0);
  const confGrid = linspace(0, 1, 1000);
  const base = {
    protocol,
    numImages: images.length,
    numClasses: K,
    names,
    instances: inst.reduce((a, b) => a + b, 0),
    detections: dets.reduce((a, b) => a + b, 0),
    excludedClasses,
  };
  const row = (k: number, v: { p: number; r: number; f1: number; ap50: number; ap50_95: number; ap: number[] }): ClassRow => ({
    classId: k,
    name: names[k],
    images: imgs[k],
    instances: inst[k],
    detections: dets[k],
    precision: v.p,
    recall: v.r,
    f1: v.f1,
    ap50: v.ap50,
    ap50_95: v.ap50_95,
    ap: v.ap,
  });

  if (protocol === 'ultralytics') {
    const u = ultralyticsEvaluate(images);
    const perClass = u.perClass.map((c) => row(c.classId, { p: c.p, r: c.r, f1: c.f1, ap50: c.ap50, ap50_95: c.ap50_95, ap: c.ap }));
    const raw = u.raw;
    return {
      ...base,
      map50: u.map50,
      map50_95: u.map50_95,
      precision: u.mp,
      recall: u.mr,
      f1: perClass.length ? npMean(perClass.map((c) => c.f1)) : 0,
      conf: u.conf,
      perClass,
      prCurve: { recall: raw ? Array.from(raw.px) : confGrid, precision: raw ? raw.prCurve.map((c) => Array.from(c)) : perClass.map(() => new Array(1000).fill(0)) },
      f1Curve: { conf: confGrid, f1: raw ? raw.f1Curve.map((c) => Array.from(c)) : perClass.map(() => new Array(1000).fill(0)) },
      ultralytics: u,
    };
  }

  let ranked: Ranked[];
  let apOf: (k: number) => { ap50: number; ap50_95: number; ap: number[] };
  let map50: number;
  let map50_95: number;
  let prX: number[];
  let prOf: (k: number, rk: Ranked) => number[];
  const extra: Partial<EvalSummary> = {};
  if (protocol === 'coco') {
    const c = cocoEvaluate(images, { numClasses: K });
    extra.coco = c;
    ranked = gtClasses.map((k) => ({ classId: k, ...cocoRanked(c, k, 0) }));
    apOf = (k) => {
      const pc = c.perClass[k];
      return pc ? { ap50: pc.ap50, ap50_95: pc.ap50_95, ap: pc.ap } : { ap50: 0, ap50_95: 0, ap: new Array(10).fill(0) };
    };
    map50 = Math.max(0, c.stats[1]);
    map50_95 = Math.max(0, c.stats[0]);
    prX = c.params.recThrs;
    const R = prX.length;
    const A = c.params.areaRng.length;
    const M = c.params.maxDets.length;
    prOf = (k) => Array.from({ length: R }, (_, r) => Math.max(0, c.precision[(((0 * R + r) * K + k) * A + 0) * M + (M - 1)]));
  } else {
    const v = vocEvaluate(images, K, { use07: protocol === 'voc07' });
    extra.voc = v;
    ranked = gtClasses.map((k) => ({ classId: k, npos: v.perClass[k].npos, scores: v.perClass[k].scores, flags: v.perClass[k].flags }));
    apOf = (k) => {
      const ap = v.perClass[k].ap.map((x) => x ?? 0);
      return { ap50: ap[0], ap50_95: npMean(ap), ap };
    };
    const withGt = gtClasses.map(apOf);
    map50 = withGt.length ? npMean(withGt.map((x) => x.ap50)) : 0;
    map50_95 = withGt.length ? npMean(withGt.map((x) => x.ap50_95)) : 0;
    prX = linspace(0, 1, 1000);
    prOf = (_k, rk) => envelopeAt(rk, prX);
  }
  const best = bestF1(ranked);
  const perClass = gtClasses.map((k, i) => row(k, { p: best.p[i], r: best.r[i], f1: best.f1[i], ...apOf(k) }));
  return {
    ...base,
    ...extra,
    map50,
    map50_95,
    precision: perClass.length ? npMean(best.p) : 0,
    recall: perClass.length ? npMean(best.r) : 0,
    f1: perClass.length ? npMean(best.f1) : 0,
    conf: best.conf,
    perClass,
    prCurve: { recall: prX, precision: gtClasses.map((k, i) => prOf(k, ranked[i])) },
    f1Curve: { conf: confGrid, f1: ranked.map((rk) => f1OverConf(rk, confGrid)) },
  };
}

/** printf %.3g. */
export function fmtG(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const e = Math.floor(Math.log10(Math.abs(v)));
  if (e < -4 || e >= digits) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e').replace(/e([+-])(\d)$/, 'e$10$2');
  let s = v.toFixed(Math.max(0, digits - 1 - e));
  // toFixed can round up to one more digit (0.9996 -> 1.000): re-format from the rounded value
  if (s.replace(/^-?0?\.?0*/, '').replace('.', '').length > digits) s = Number(s).toPrecision(digits);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** The per-class table, Ultralytics style: Class, Images, Instances, P, R, mAP50, mAP50-95. */
export function formatTable(s: EvalSummary): string[] {
  const head = ['Class', 'Images', 'Instances', 'P', 'R', 'mAP50', 'mAP50-95'];
  const w = Math.max(22, ...s.perClass.map((c) => c.name.length + 2));
  const line = (cells: string[]) => cells[0].padStart(w) + cells.slice(1).map((c) => c.padStart(11)).join('');
  const out = [line(head)];
  out.push(line(['all', String(s.numImages), String(s.instances), fmtG(s.precision), fmtG(s.recall), fmtG(s.map50), fmtG(s.map50_95)]));
  for (const c of s.perClass) out.push(line([c.name, String(c.images), String(c.instances), fmtG(c.precision), fmtG(c.recall), fmtG(c.ap50), fmtG(c.ap50_95)]));
  return out;
}

export const PROTOCOL_TITLES: Record<Protocol, string> = {
  coco: 'COCO (pycocotools: 101-point interpolated AP, greedy matching with fallback)',
  ultralytics: 'Ultralytics (yolov5 v7.0 val.py: 101-point linear interpolation + trapz, P/R at max smoothed F1)',
  voc: 'VOC2010+ (all-point AP, IoU > 0.5, no fallback)',
  voc07: 'VOC2007 (11-point AP, IoU > 0.5, no fallback)',
};

/** The summary line naming the protocol. */
export function summaryLine(s: EvalSummary): string {
  return `protocol ${s.protocol}: mAP@0.5 ${s.map50.toFixed(4)}  mAP@0.5:0.95 ${s.map50_95.toFixed(4)}  P ${s.precision.toFixed(4)}  R ${s.recall.toFixed(4)}  F1 ${s.f1.toFixed(4)} at conf ${s.conf.toFixed(4)}  (${s.numImages} images, ${s.instances} instances, ${s.detections} detections)`;
}

/** The JSON written by `val`: map50, map50_95, precision, recall, f1, conf, per class the same, protocol. */
export function summaryJson(s: EvalSummary): Record<string, unknown> {
  const out: Record<string, unknown> = {
    protocol: s.protocol,
    map50: s.map50,
    map50_95: s.map50_95,
    precision: s.precision,
    recall: s.recall,
    f1: s.f1,
    conf: s.conf,
    images: s.numImages,
    instances: s.instances,
    detections: s.detections,
    per_class: s.perClass.map((c) => ({
      class: c.classId,
      name: c.name,
      images: c.images,
      instances: c.instances,
      detections: c.detections,
      precision: c.precision,
      recall: c.recall,
      f1: c.f1,
      map50: c.ap50,
      map50_95: c.ap50_95,
    })),
    excluded_classes: s.excludedClasses,
  };
  if (s.coco) out.coco_stats = s.coco.stats;
  return out;
}
