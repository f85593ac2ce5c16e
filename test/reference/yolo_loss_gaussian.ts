/**
 * Float64 reference of AlexeyAB's forward_gaussian_yolo_layer training branch (gaussian_yolo_layer.c,
 * 59596d78), written the way Darknet works: l.output, then l.delta filled in place prediction by prediction
 * and truth by truth (the ignore loop with its objectness_smooth class write, delta_gaussian_yolo_box
 * accumulating, the objectness overwrite, delta_gaussian_yolo_class with its "delta[class 0] != 0" rule, the
 * iou_thresh extra anchors, averages_gaussian_yolo_deltas over every cell). Independent of src/yolo/targets.ts
 * (own loops). Besides delta and cost it sums the loss value src/yolo/loss_gaussian.ts reports (box: the
 * Gaussian NLL or the IoU loss; objectness and classes: m·BCE on the logit).
 */
import type { GaussianHeadConfig } from '../../src/yolo/loss_gaussian.js';
import type { Truth } from '../../src/yolo/targets.js';
import { boxIouRef, dxBoxIouRef, iouKindRef } from './yolo_loss_darknet.js';

type Vec4 = [number, number, number, number];

export interface GaussianRefResult {
  output: Float64Array;
  delta: Float64Array;
  cost: number;
  /** predictions whose objectness delta is the ignore branch's and no truth replaced it */
  ignored: number;
  /** the reported loss: box, obj, cls */
  loss: [number, number, number];
}

const sig = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
const bce = (v: number, t: number) => softplus(v) - t * v;
const fr = Math.fround;

/**
 * One coordinate of delta_gaussian_yolo_box: the mean and sigma deltas (before the normalizers) and the NLL
 * −log(N + 1e-9), for target t, mean output mu, sigma output s, box scale.
 */
export function gaussianCoordRef(t: number, mu: number, s: number, scale: number): { m: number; u: number; nll: number } {
  const d = t - mu;
  const q = d / s;
  let n = Math.exp(-0.5 * q * q) / (Math.sqrt(2 * Math.PI) * (s + 0.3));
  if (!Number.isFinite(n)) n = NaN;
  const eps = fr(1e-9);
  const temp = ((0.5 * 1) / (n + eps)) * n * scale;
  const fix = (v: number) => (Number.isFinite(v) ? v : 0);
  return { m: fix(temp * q * (1 / s)), u: fix(temp * ((q * q) / s - 1 / (s + 0.3))), nll: -Math.log((Number.isNaN(n) ? 0 : n) + eps) };
}

/** forward_gaussian_yolo_layer (state.train) on z [B, A*(9+C), H, W]; truths per image as Darknet reads them. */
export function gaussianYoloRef(z: ArrayLike<number>, shape: readonly number[], c: GaussianHeadConfig, net: { w: number; h: number }, truths: readonly (readonly Truth[])[]): GaussianRefResult {
  const [B, , H, W] = shape;
  const A = c.mask.length;
  const C = c.classes;
  const E = 9 + C;
  const HW = H * W;
  const s = c.scaleXY;
  const n = z.length;
  const output = new Float64Array(n);
  const delta = new Float64Array(n);
  const idx = (b: number, a: number, k: number, j: number, i: number) => ((b * A + a) * E + k) * HW + j * W + i;
  for (let e = 0; e < n; e++) {
    const k = Math.floor(e / HW) % E;
    const v = z[e];
    output[e] = k === 4 || k === 6 ? v : sig(v);
    if (k === 0 || k === 2) output[e] = output[e] * s - 0.5 * (s - 1);
  }
  const predBox = (b: number, a: number, j: number, i: number, anchor: number): Vec4 => [
    (i + output[idx(b, a, 0, j, i)]) / W,
    (j + output[idx(b, a, 2, j, i)]) / H,
    (Math.exp(output[idx(b, a, 4, j, i)]) * c.anchors[2 * anchor]) / net.w,
    (Math.exp(output[idx(b, a, 6, j, i)]) * c.anchors[2 * anchor + 1]) / net.h,
  ];
  const cm = (cls: number) => (c.classMultipliers ? c.classMultipliers[cls] : 1);
  const smooth = (v: number) => (c.labelSmoothEps ? v * (1 - c.labelSmoothEps) + 0.5 * c.labelSmoothEps : v);
  // the reported value, per element (recomputed where Darknet overwrites)
  const boxLoss = new Float64Array(n);
  const objLoss = new Float64Array(n);
  const clsLoss = new Float64Array(n);
  const ignoredAt = new Set<number>();

  // delta_gaussian_yolo_class
  const deltaClass = (cls0: number, cls: number) => {
    if (delta[cls0] !== 0) {
      const el = cls0 + cls * HW;
      const m = c.classMultipliers ? cm(cls) : 1;
      delta[el] = (smooth(1) - output[el]) * m;
      clsLoss[el] = m * bce(z[el], smooth(1));
      return;
    }
    for (let cc = 0; cc < C; cc++) {
      const el = cls0 + cc * HW;
      const t = smooth(cc === cls ? 1 : 0);
      const m = c.classMultipliers && cc === cls ? cm(cls) * c.clsNormalizer : 1;
      delta[el] = (t - output[el]) * m;
      clsLoss[el] = m * bce(z[el], t);
    }
  };
  // delta_gaussian_yolo_box (accumulate = 1), returns the reported value of this contribution
  const deltaBox = (tr: Truth, b: number, a: number, anchor: number, j: number, i: number, norm: number) => {
    const at = (k: number) => idx(b, a, k, j, i);
    const pred = predBox(b, a, j, i, anchor);
    const scale = fr(2 - fr(tr.w * tr.h));
    const t: Vec4 = [tr.x * W - i, tr.y * H - j, Math.log((tr.w * net.w) / c.anchors[2 * anchor]), Math.log((tr.h * net.h) / c.anchors[2 * anchor + 1])];
    const g = [0, 1, 2, 3].map((q) => gaussianCoordRef(t[q], output[at(2 * q)], output[at(2 * q + 1)], scale));
    let dm = g.map((v) => v.m);
    const du = g.map((v) => v.u * c.ucNormalizer);
    const nll = g.reduce((acc, v) => acc + v.nll, 0);
    let value: number;
    if (c.iouLoss === 'mse') {
      value = 0.5 * scale * norm * nll;
    } else {
      const p: Vec4 = [pred[0], pred[1], pred[2] || 1, pred[3] || 1];
      dm = dxBoxIouRef(p, [tr.x, tr.y, tr.w, tr.h], c.iouLoss);
      dm[2] *= Math.exp(output[at(4)]);
      dm[3] *= Math.exp(output[at(6)]);
      value = norm * (1 - iouKindRef(pred, [tr.x, tr.y, tr.w, tr.h], c.iouLoss)) + 0.5 * scale * c.ucNormalizer * nll;
    }
    const clip = (v: number) => {
      const f = Number.isFinite(v) ? v : 0;
      return Math.max(-c.maxDelta, Math.min(c.maxDelta, f));
    };
    for (let q = 0; q < 4; q++) {
      delta[at(2 * q)] += clip(dm[q] * norm);
      delta[at(2 * q + 1)] += clip(du[q]);
    }
    boxLoss[at(0)] += value;
  };

  for (let b = 0; b < B; b++) {
    // Darknet's truth list: at most max boxes, ends at x == 0; a class out of range is skipped
    const list: Truth[] = [];
    for (let t = 0; t < Math.min(truths[b].length, c.maxBoxes); t++) {
      const tr = truths[b][t];
      if (!(tr.cls >= 0 && tr.cls < C)) continue;
      if (!tr.x) break;
      list.push(tr);
    }
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
      const cls0 = idx(b, a, 9, j, i);
      const o = idx(b, a, 8, j, i);
      const pred = predBox(b, a, j, i, c.mask[a]);
      let anyClass = false;
      for (let cc = 0; cc < C; cc++) if (output[cls0 + cc * HW] > 0.25) anyClass = true;
      let bestMatch = 0;
      let bestT = 0;
      list.forEach((tr, t) => {
        const v = boxIouRef(pred, [tr.x, tr.y, tr.w, tr.h]);
        if (v > bestMatch && anyClass) {
          bestMatch = v;
          bestT = t;
        }
      });
      delta[o] = c.objNormalizer * (0 - output[o]);
      objLoss[o] = c.objNormalizer * bce(z[o], 0);
      if (bestMatch > fr(c.ignoreThresh)) {
        ignoredAt.add(o);
        if (c.objectnessSmooth) {
          const m2 = bestMatch * bestMatch;
          delta[o] = c.objNormalizer * (m2 - output[o]);
          objLoss[o] = c.objNormalizer * bce(z[o], m2);
          deltaClass(cls0, list[bestT].cls);
        } else {
          delta[o] = 0;
          objLoss[o] = 0;
        }
      }
    }
    const assign = (tr: Truth, anchor: number, a: number, i: number, j: number) => {
      deltaBox(tr, b, a, anchor, j, i, c.iouNormalizer * cm(tr.cls));
      const o = idx(b, a, 8, j, i);
      delta[o] = cm(tr.cls) * c.objNormalizer * (1 - output[o]);
      objLoss[o] = cm(tr.cls) * c.objNormalizer * bce(z[o], 1);
      ignoredAt.delete(o);
      deltaClass(idx(b, a, 9, j, i), tr.cls);
    };
    for (const tr of list) {
      const i = Math.trunc(fr(tr.x * W));
      const j = Math.trunc(fr(tr.y * H));
      let best = 0, bestN = 0;
      for (let k = 0; k < c.total; k++) {
        const v = boxIouRef([0, 0, c.anchors[2 * k] / net.w, c.anchors[2 * k + 1] / net.h], [0, 0, tr.w, tr.h]);
        if (v > best) {
          best = v;
          bestN = k;
        }
      }
      const a = c.mask.indexOf(bestN);
      if (a >= 0) assign(tr, bestN, a, i, j);
      for (let k = 0; k < c.total; k++) {
        const m = c.mask.indexOf(k);
        if (m < 0 || k === bestN || !(c.iouThresh < 1)) continue;
        const v = iouKindRef([0, 0, c.anchors[2 * k] / net.w, c.anchors[2 * k + 1] / net.h], [0, 0, tr.w, tr.h], c.iouThreshKind);
        if (v > fr(c.iouThresh)) assign(tr, k, m, i, j);
      }
    }
    // averages_gaussian_yolo_deltas
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
      let k = 0;
      for (let cc = 0; cc < C; cc++) if (delta[idx(b, a, 9 + cc, j, i)] > 0) k++;
      if (k > 0) {
        for (let q = 0; q < 8; q++) delta[idx(b, a, q, j, i)] /= k;
        boxLoss[idx(b, a, 0, j, i)] /= k;
      }
    }
  }
  let cost = 0;
  for (let e = 0; e < n; e++) cost += delta[e] * delta[e];
  const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
  return { output, delta, cost, ignored: ignoredAt.size, loss: [sum(boxLoss), sum(objLoss), sum(clsLoss)] };
}
