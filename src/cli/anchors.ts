/**
 * `yolo-wgsl anchors`: k-means anchors for a dataset, as Darknet's `detector calc_anchors` (AlexeyAB
 * src/detector.c calc_anchors, src/utils.c do_kmeans; read for semantics only):
 *
 * - every valid label box of the train split becomes (w·width, h·height) in network pixels (float32);
 * - k-means with the distance 1 - IoU of boxes aligned at a corner (IoU of (0,0,w,h) boxes): centres start
 *   at k distinct random boxes (a seeded Fisher-Yates permutation here, rand() in Darknet); assignment
 *   starts at cluster 0; repeat "assign each box to its closest centre (first on ties); stop when no
 *   assignment changed; else move each centre to the mean of its boxes (a centre whose new coordinate
 *   is exactly 0, e.g. an empty cluster, keeps the old one)" at most 1000 times;
 * - anchors sorted by area; mean IoU = average over boxes of the best IoU with an anchor, in %;
 * - printed like Darknet: "%3.0f,%3.0f" per anchor when width > 32, else "%2.4f,%2.4f".
 *
 * With cfg + cfgOut the anchors are written into a copy of the cfg: every [yolo] / [Gaussian_yolo]
 * section's anchors= and num= (added after the section header when absent), atomically. Masks are not
 * changed; a mask index >= num is reported.
 */
import fs from 'node:fs';
import { loadDataset, scanSplit, type SplitName } from '../data/dataset.js';
import { roundHalfEven } from '../eval/numeric.js';
import { writeFileAtomic } from '../util/fs.js';
import { Rng } from '../util/rng.js';

export interface AnchorsOptions {
  data: string;
  /** Number of clusters (default 9). */
  num?: number;
  /** Network size the anchors are for (default 416 x 416). */
  width?: number;
  height?: number;
  /** A cfg to copy with the new anchors into cfgOut. */
  cfg?: string;
  cfgOut?: string;
  /** Seed of the initial centres (default 1). */
  seed?: number;
  /** Split whose labels are clustered (default 'train', as Darknet). */
  split?: SplitName;
  log?: (line: string) => void;
  cwd?: string;
}

export interface AnchorsResult {
  /** [w, h] per anchor, sorted by area, float32 values. */
  anchors: [number, number][];
  /** Mean best IoU in percent. */
  avgIou: number;
  iterations: number;
  boxes: number;
  images: number;
  /** Boxes per class. */
  counts: number[];
  /** The anchors as Darknet prints them. */
  text: string;
  cfgOut?: string;
}

const f = Math.fround;

/** 1 - IoU of two corner-aligned boxes, in float32 (Darknet dist()). */
function dist(w0: number, h0: number, w1: number, h1: number): number {
  const mw = w0 < w1 ? w0 : w1;
  const mh = h0 < h1 ? h0 : h1;
  const inter = f(mw * mh);
  const sum = f(f(w0 * h0) + f(w1 * h1));
  const un = f(sum - inter);
  return f(1 - f(inter / un));
}

/** k-means with the IoU distance on (w, h) rows (see the file comment). Returns centres and iterations. */
export function kmeansIou(boxes: readonly [number, number][], k: number, seed = 1): { centers: [number, number][]; iterations: number; assignments: Int32Array } {
  const n = boxes.length;
  if (k < 1 || !Number.isInteger(k)) throw new Error(`anchors: the number of clusters must be a positive integer, got ${k}`);
  if (n < k) throw new Error(`anchors: ${n} boxes for ${k} clusters; need at least as many boxes as clusters`);
  const data = boxes.map(([w, h]) => [f(w), f(h)] as [number, number]);
  // random_centers: a random permutation (Darknet sample()), the first k rows
  const rng = new Rng(seed);
  const s = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i >= 0; i--) {
    const j = rng.int(i + 1);
    const t = s[i];
    s[i] = s[j];
    s[j] = t;
  }
  const centers = Array.from({ length: k }, (_, i) => [data[s[i]][0], data[s[i]][1]] as [number, number]);
  const assign = new Int32Array(n);
  const expectation = (): boolean => {
    let converged = true;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bd = dist(data[i][0], data[i][1], centers[0][0], centers[0][1]);
      for (let j = 0; j < k; j++) {
        const d = dist(data[i][0], data[i][1], centers[j][0], centers[j][1]);
        if (d < bd) {
          bd = d;
          best = j;
        }
      }
      if (best !== assign[i]) converged = false;
      assign[i] = best;
    }
    return converged;
  };
  const maximization = () => {
    const old = centers.map((c) => [c[0], c[1]]);
    const sums = centers.map(() => [0, 0]);
    const counts = new Int32Array(k);
    for (let i = 0; i < n; i++) {
      const a = assign[i];
      counts[a]++;
      sums[a][0] = f(sums[a][0] + data[i][0]);
      sums[a][1] = f(sums[a][1] + data[i][1]);
    }
    for (let j = 0; j < k; j++) {
      for (let c = 0; c < 2; c++) {
        const v = counts[j] ? f(sums[j][c] / counts[j]) : 0;
        centers[j][c] = v === 0 ? old[j][c] : v;
      }
    }
  };
  if (k === 1) maximization();
  let it = 0;
  for (; it < 1000 && !expectation(); it++) maximization();
  return { centers, iterations: it, assignments: assign };
}

/** Best IoU of each box with the anchors, averaged, in percent (Darknet's "avg IoU"). */
export function meanBestIou(boxes: readonly [number, number][], anchors: readonly [number, number][]): number {
  let sum = 0;
  for (const [w, h] of boxes) {
    let minDist = Number.MAX_VALUE;
    let best = 0;
    for (const [aw, ah] of anchors) {
      const d = dist(f(w), f(h), aw, ah);
      if (d < minDist) {
        minDist = d;
        best = f(1 - d);
      }
    }
    if (best >= 0 && best <= 1) sum = f(sum + best);
  }
  return boxes.length ? (100 * sum) / boxes.length : 0;
}

/** Darknet's printout of anchors: "%3.0f,%3.0f" (width > 32) or "%2.4f,%2.4f", joined by ", ". */
export function formatAnchors(anchors: readonly [number, number][], width: number): string {
  const fmt = (v: number) => (width > 32 ? String(roundHalfEven(v)).padStart(3) : v.toFixed(4));
  return anchors.map(([w, h]) => `${fmt(w)},${fmt(h)}`).join(', ');
}

/** The anchors= value for a cfg: "10,13,  16,30, ..." (integers when width > 32, as printed). */
export function cfgAnchorsValue(anchors: readonly [number, number][], width: number): string {
  const fmt = (v: number) => (width > 32 ? String(roundHalfEven(v)) : v.toFixed(4));
  return anchors.map(([w, h]) => `${fmt(w)},${fmt(h)}`).join(',  ');
}

/**
 * The cfg text with every [yolo] / [Gaussian_yolo] section's anchors= and num= set. Returns the new text
 * and remarks (mask indices out of range).
 */
export function setCfgAnchors(text: string, anchorsValue: string, num: number, file = 'cfg'): { text: string; sections: number; remarks: string[] } {
  const lines = text.split(/\r?\n/);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const out: string[] = [];
  const remarks: string[] = [];
  let sections = 0;
  let inYolo = false;
  let pending: { anchors: boolean; num: boolean; headerAt: number } | null = null;
  const close = () => {
    if (!pending) return;
    const add: string[] = [];
    if (!pending.anchors) add.push(`anchors = ${anchorsValue}`);
    if (!pending.num) add.push(`num=${num}`);
    out.splice(pending.headerAt + 1, 0, ...add);
    pending = null;
  };
  lines.forEach((raw, i) => {
    const t = raw.trim();
    const sec = /^\[([^\]]+)\]/.exec(t);
    if (sec) {
      close();
      inYolo = ['yolo', 'gaussian_yolo'].includes(sec[1].trim().toLowerCase());
      out.push(raw);
      if (inYolo) {
        sections++;
        pending = { anchors: false, num: false, headerAt: out.length - 1 };
      }
      return;
    }
    if (inYolo && pending && !t.startsWith('#') && !t.startsWith(';')) {
      const eq = t.indexOf('=');
      const key = eq > 0 ? t.slice(0, eq).trim() : '';
      const indent = raw.slice(0, raw.length - raw.trimStart().length);
      if (key === 'anchors') {
        pending.anchors = true;
        out.push(`${indent}anchors = ${anchorsValue}`);
        return;
      }
      if (key === 'num') {
        pending.num = true;
        out.push(`${indent}num=${num}`);
        return;
      }
      if (key === 'mask') {
        const bad = t
          .slice(eq + 1)
          .split(',')
          .map((v) => Number(v.trim()))
          .filter((v) => Number.isFinite(v) && v >= num);
        if (bad.length) remarks.push(`${file}:${i + 1}: mask uses anchor ${bad[0]} but num=${num}; adjust the masks`);
      }
    }
    out.push(raw);
  });
  close();
  return { text: out.join(eol), sections, remarks };
}

/** The `anchors` command. */
export function runAnchors(opts: AnchorsOptions): AnchorsResult {
  const log = opts.log ?? ((l: string) => console.log(l));
  const num = opts.num ?? 9;
  const width = opts.width ?? 416;
  const height = opts.height ?? 416;
  if (!(width > 0 && height > 0)) throw new Error(`anchors: width and height must be positive, got ${width}x${height}`);
  if (opts.cfgOut && !opts.cfg) throw new Error('anchors: cfgOut needs cfg (the cfg to copy)');
  log(` num_of_clusters = ${num}, width = ${width}, height = ${height}`);
  const spec = loadDataset(opts.data, opts.cwd);
  for (const w of spec.warnings) log(`warning: ${w}`);
  const split = opts.split ?? 'train';
  const scan = scanSplit(spec, split, { log, cwd: opts.cwd });
  log(` read labels from ${scan.images.length} images`);
  const boxes: [number, number][] = [];
  const counts = new Array<number>(spec.nc).fill(0);
  for (const im of scan.images) {
    for (const b of im.boxes) {
      boxes.push([f(b.w * width), f(b.h * height)]);
      counts[b.classId]++;
    }
  }
  log(` all loaded: ${boxes.length} boxes`);
  const km = kmeansIou(boxes, num, opts.seed ?? 1);
  const anchors = [...km.centers].sort((a, b) => f(a[0] * a[1]) - f(b[0] * b[1]));
  const avgIou = meanBestIou(boxes, anchors);
  const text = formatAnchors(anchors, width);
  log(` iterations = ${km.iterations}`);
  log(` counters_per_class = ${counts.join(', ')}`);
  log(` avg IoU = ${avgIou.toFixed(2)} %`);
  log(`anchors = ${text}`);
  const res: AnchorsResult = { anchors, avgIou, iterations: km.iterations, boxes: boxes.length, images: scan.images.length, counts, text };
  if (opts.cfg && opts.cfgOut) {
    const src = fs.readFileSync(opts.cfg, 'utf8');
    const r = setCfgAnchors(src, cfgAnchorsValue(anchors, width), num, opts.cfg);
    if (r.sections === 0) throw new Error(`anchors: ${opts.cfg} has no [yolo] section to write anchors into`);
    for (const m of r.remarks) log(`warning: ${m}`);
    writeFileAtomic(opts.cfgOut, r.text);
    log(`wrote ${opts.cfgOut}: anchors and num=${num} in ${r.sections} [yolo] sections`);
    res.cfgOut = opts.cfgOut;
  }
  return res;
}
