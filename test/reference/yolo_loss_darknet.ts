/**
 * Float64 reference of Darknet's forward_yolo_layer training branch (pjreddie 61c9d02e and AlexeyAB),
 * written the way Darknet works: l.output, then l.delta filled in place prediction by prediction and truth
 * by truth (overwrites, accumulation, the class rule for a taken cell, the AlexeyAB averaging pass).
 * Independent of src/yolo/targets.ts (own loops). Besides delta and cost it records, per element, the
 * terms of the implied loss whose gradient is -delta (where one exists), so finite differences can check it.
 */
import type { DarknetHeadConfig } from '../../src/yolo/loss_darknet.js';
import type { Truth } from '../../src/yolo/targets.js';

type Vec4 = [number, number, number, number]; // x, y, w, h

/** One implied-loss term of an element: logit: m·(softplus(z) − t·z); sq: m·(a·z + c − t)² / (2a). */
export type Term = { kind: 'logit'; m: number; t: number } | { kind: 'sq'; m: number; a: number; c: number; t: number };

export interface DarknetRefResult {
  output: Float64Array;
  delta: Float64Array;
  cost: number;
  ignored: number;
  /** per element: the implied-loss terms (null where Darknet's delta is not a gradient: IoU losses, focal) */
  terms: (Term[] | null)[];
  /** element kinds 0 box, 1 obj, 2 cls for summing the terms */
  kind: Uint8Array;
}

const sig = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

function overlap(x1: number, w1: number, x2: number, w2: number): number {
  return Math.min(x1 + w1 / 2, x2 + w2 / 2) - Math.max(x1 - w1 / 2, x2 - w2 / 2);
}
export function boxIouRef(a: Vec4, b: Vec4): number {
  const w = overlap(a[0], a[2], b[0], b[2]);
  const h = overlap(a[1], a[3], b[1], b[3]);
  const i = w < 0 || h < 0 ? 0 : w * h;
  const u = a[2] * a[3] + b[2] * b[3] - i;
  return i === 0 || u === 0 ? 0 : i / u;
}

export function iouKindRef(a: Vec4, b: Vec4, kind: string): number {
  const v = boxIouRef(a, b);
  if (kind === 'iou' || kind === 'mse') return v;
  const cw = Math.max(a[0] + a[2] / 2, b[0] + b[2] / 2) - Math.min(a[0] - a[2] / 2, b[0] - b[2] / 2);
  const ch = Math.max(a[1] + a[3] / 2, b[1] + b[3] / 2) - Math.min(a[1] - a[3] / 2, b[1] - b[3] / 2);
  if (kind === 'giou') {
    const c = cw * ch;
    if (c === 0) return v;
    const w = overlap(a[0], a[2], b[0], b[2]);
    const h = overlap(a[1], a[3], b[1], b[3]);
    const i = w < 0 || h < 0 ? 0 : w * h;
    return v - (c - (a[2] * a[3] + b[2] * b[3] - i)) / c;
  }
  const c = cw * cw + ch * ch;
  if (c === 0) return v;
  const d = ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / c;
  if (kind === 'diou') return v - d;
  const da = Math.atan(b[2] / b[3]) - Math.atan(a[2] / a[3]);
  const ar = (4 / Math.PI ** 2) * da * da;
  return v - (d + (ar / (1 - v + ar + 0.000001)) * ar);
}

/** AlexeyAB box.c dx_box_iou (its formulas and choices), returning dx, dy, dw, dh. */
export function dxBoxIouRef(p: Vec4, t: Vec4, kind: string): Vec4 {
  const [px, py, pw, ph] = p;
  const [tx, ty, tw, th] = t;
  const ptop = py - ph / 2, pbot = py + ph / 2, plef = px - pw / 2, prig = px + pw / 2;
  const pt = Math.min(ptop, pbot), pb = Math.max(ptop, pbot), pl = Math.min(plef, prig), pr = Math.max(plef, prig);
  const tt = ty - th / 2, tb = ty + th / 2, tl = tx - tw / 2, tr = tx + tw / 2;
  const X = (pb - pt) * (pr - pl);
  const Xhat = (tb - tt) * (tr - tl);
  const Ih = Math.min(pb, tb) - Math.max(pt, tt);
  const Iw = Math.min(pr, tr) - Math.max(pl, tl);
  const I = Iw * Ih;
  const U = X + Xhat - I;
  const S = (px - tx) ** 2 + (py - ty) ** 2;
  const gCw = Math.max(pr, tr) - Math.min(pl, tl);
  const gCh = Math.max(pb, tb) - Math.min(pt, tt);
  const gC = gCw * gCh;
  const dX = [-(pr - pl), pr - pl, -(pb - pt), pb - pt];
  const dI = [pt > tt ? -Iw : 0, pb < tb ? Iw : 0, pl > tl ? -Ih : 0, pr < tr ? Ih : 0];
  const dU = dX.map((v, k) => v - dI[k]);
  const dC = [pt < tt ? -gCw : 0, pb > tb ? gCw : 0, pl < tl ? -gCh : 0, pr > tr ? gCh : 0];
  let g = [0, 0, 0, 0];
  if (U > 0) g = dI.map((v, k) => (U * v - I * dU[k]) / (U * U));
  if (!(ptop < pbot)) g[0] = g[1];
  if (!(ptop < pbot)) g[1] = g[0];
  if (!(plef < prig)) g[2] = g[3];
  if (!(plef < prig)) g[3] = g[2];
  if (kind === 'giou') {
    const term = dU.map((v, k) => (gC * v - U * dC[k]) / (gC * gC));
    if (gC > 0) g = g.map((v, k) => v + term[k]);
    if (Iw <= 0 || Ih <= 0) g = term;
  }
  const Cw = Math.max(px + pw / 2, tx + tw / 2) - Math.min(px - pw / 2, tx - tw / 2);
  const Ch = Math.max(py + ph / 2, ty + th / 2) - Math.min(py - ph / 2, ty - th / 2);
  const C = Cw * Cw + Ch * Ch;
  const dCw_dx = (pr > tr ? 1 : 0) - (pl < tl ? 1 : 0);
  const dCw_dw = (pr > tr ? 0.5 : 0) - (pl < tl ? -0.5 : 0);
  const dCh_dy = (pb > tb ? 1 : 0) - (pt < tt ? 1 : 0);
  const dCh_dh = (pb > tb ? 0.5 : 0) - (pt < tt ? -0.5 : 0);
  let d: Vec4 = [g[2] + g[3], g[0] + g[1], g[3] - g[2], g[1] - g[0]];
  if (kind === 'diou' || kind === 'ciou') {
    const dist: Vec4 = [
      (2 * (tx - px) * C - 2 * Cw * dCw_dx * S) / (C * C),
      (2 * (ty - py) * C - 2 * Ch * dCh_dy * S) / (C * C),
      (2 * Cw * dCw_dw * S) / (C * C),
      (2 * Ch * dCh_dh * S) / (C * C),
    ];
    let ar: Vec4 = [0, 0, 0, 0];
    if (kind === 'ciou') {
      const da = Math.atan(tw / th) - Math.atan(pw / ph);
      const arLoss = (4 / Math.PI ** 2) * da * da;
      const alpha = arLoss / (1 - I / U + arLoss + 0.000001);
      ar = [0, 0, (alpha * 8) / Math.PI ** 2 * da * ph, (alpha * -8) / Math.PI ** 2 * da * pw];
    }
    const sum = dist.map((v, k) => v + ar[k]) as Vec4;
    if (C > 0) d = d.map((v, k) => v + sum[k]) as Vec4;
    if (Iw <= 0 || Ih <= 0) d = sum;
  }
  return d;
}

/** Darknet's truth list of an image: at most maxBoxes, ends at x == 0, a class out of range skipped. */
export function darknetTruthList(truths: readonly Truth[], c: DarknetHeadConfig): Truth[] {
  const list: Truth[] = [];
  for (let t = 0; t < Math.min(truths.length, c.maxBoxes); t++) {
    const tr = truths[t];
    if (!tr.x) break;
    if (tr.cls >= 0 && tr.cls < c.classes) list.push(tr);
  }
  return list;
}

/**
 * Darknet get_yolo_box (new_coords: w = tw²·4·anchor) of the prediction at cell (i, j) whose activated output
 * entry k is out(k), normalized to the network size.
 */
export function darknetPredBox(out: (k: number) => number, i: number, j: number, W: number, H: number, aw: number, ah: number, newCoords: boolean, net: { w: number; h: number }): Vec4 {
  const zw = out(2), zh = out(3);
  return [
    (i + out(0)) / W,
    (j + out(1)) / H,
    newCoords ? (zw * zw * 4 * aw) / net.w : (Math.exp(zw) * aw) / net.w,
    newCoords ? (zh * zh * 4 * ah) / net.h : (Math.exp(zh) * ah) / net.h,
  ];
}

/** Darknet forward_yolo_layer (training) on z [B, A*(5+C), H, W]; truths per image as Darknet would get them. */
export function darknetYoloRef(z: ArrayLike<number>, shape: readonly number[], c: DarknetHeadConfig, net: { w: number; h: number }, truths: readonly (readonly Truth[])[]): DarknetRefResult {
  const [B, , H, W] = shape;
  const A = c.mask.length;
  const C = c.classes;
  const E = 5 + C;
  const HW = H * W;
  const ab = c.flavor === 'alexeyab';
  const s = c.scaleXY;
  const bias = -0.5 * (s - 1);
  const n = z.length;
  const output = new Float64Array(n);
  const delta = new Float64Array(n);
  const terms: (Term[] | null)[] = new Array(n).fill(null).map(() => []);
  const kind = new Uint8Array(n);
  const idx = (b: number, a: number, k: number, j: number, i: number) => ((b * A + a) * E + k) * HW + j * W + i;
  for (let b = 0; b < B; b++) for (let a = 0; a < A; a++) for (let k = 0; k < E; k++) for (let p = 0; p < HW; p++) {
    const e = ((b * A + a) * E + k) * HW + p;
    const v = z[e];
    kind[e] = k < 4 ? 0 : k === 4 ? 1 : 2;
    if (k < 2) output[e] = (c.newCoords ? v : sig(v)) * s + bias;
    else if (k < 4) output[e] = v;
    else output[e] = c.newCoords ? v : sig(v);
  }
  const actTerm = (m: number, t: number): Term => (c.newCoords ? { kind: 'sq', m, a: 1, c: 0, t } : { kind: 'logit', m, t });
  const xyTerm = (m: number, t: number): Term => (c.newCoords ? { kind: 'sq', m, a: s, c: bias, t } : { kind: 'logit', m: m * s, t: (t - bias) / s });
  const predBox = (b: number, a: number, j: number, i: number, anchor: number): Vec4 =>
    darknetPredBox((k) => output[idx(b, a, k, j, i)], i, j, W, H, c.anchors[2 * anchor], c.anchors[2 * anchor + 1], c.newCoords, net);
  let ignored = 0;
  const ignoredAt = new Set<number>();
  for (let b = 0; b < B; b++) {
    const list = darknetTruthList(truths[b], c);
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
      const pred = predBox(b, a, j, i, c.mask[a]);
      let best = 0;
      for (const tr of list) best = Math.max(best, boxIouRef(pred, [tr.x, tr.y, tr.w, tr.h]));
      let anyClass = false;
      for (let cc = 0; cc < C; cc++) if (output[idx(b, a, 5 + cc, j, i)] > 0.25) anyClass = true;
      const o = idx(b, a, 4, j, i);
      const norm = ab ? c.objNormalizer : 1;
      delta[o] = norm * (0 - output[o]);
      terms[o] = [actTerm(norm, 0)];
      if (best > Math.fround(c.ignoreThresh) && (!ab || anyClass)) {
        delta[o] = 0;
        terms[o] = [];
        ignoredAt.add(o);
      }
    }
    const assign = (tr: Truth, anchor: number, a: number, i: number, j: number) => {
      const scale = 2 - tr.w * tr.h;
      const cm = c.classMultipliers ? c.classMultipliers[tr.cls] : 1;
      const norm = ab ? c.iouNormalizer * cm : 1;
      const aw = c.anchors[2 * anchor], ah = c.anchors[2 * anchor + 1];
      const e = [0, 1, 2, 3].map((k) => idx(b, a, k, j, i));
      if (c.iouLoss === 'mse') {
        const tx = tr.x * W - i, ty = tr.y * H - j;
        const tw = c.newCoords ? Math.sqrt((tr.w * net.w) / (4 * aw)) : Math.log((tr.w * net.w) / aw);
        const th = c.newCoords ? Math.sqrt((tr.h * net.h) / (4 * ah)) : Math.log((tr.h * net.h) / ah);
        const tg = [tx, ty, tw, th];
        e.forEach((el, k) => {
          const d = scale * (tg[k] - output[el]) * norm;
          const term = k < 2 ? xyTerm(scale * norm, tg[k]) : ({ kind: 'sq', m: scale * norm, a: 1, c: 0, t: tg[k] } as Term);
          if (ab) {
            delta[el] += d;
            terms[el]!.push(term);
          } else {
            delta[el] = d;
            terms[el] = [term];
          }
        });
      } else {
        let pred = predBox(b, a, j, i, anchor);
        pred = [pred[0], pred[1], pred[2] || 1, pred[3] || 1];
        const g = dxBoxIouRef(pred, [tr.x, tr.y, tr.w, tr.h], c.iouLoss);
        if (!c.newCoords) {
          g[2] *= Math.exp(output[e[2]]);
          g[3] *= Math.exp(output[e[3]]);
        }
        e.forEach((el, k) => {
          let v = Math.fround(g[k] * norm);
          if (!Number.isFinite(v)) v = 0;
          v = Math.max(-c.maxDelta, Math.min(c.maxDelta, v));
          delta[el] += v;
          terms[el] = null;
        });
      }
      const o = idx(b, a, 4, j, i);
      const om = ab ? cm * c.objNormalizer : 1;
      delta[o] = om * (1 - output[o]);
      terms[o] = [actTerm(om, 1)];
      ignoredAt.delete(o);
      // delta_yolo_class
      const cls0 = idx(b, a, 5, j, i);
      const taken = ab ? delta[cls0 + tr.cls * HW] !== 0 : delta[cls0] !== 0;
      const smooth = (v: number) => (c.labelSmoothEps ? v * (1 - c.labelSmoothEps) + 0.5 * c.labelSmoothEps : v);
      if (taken) {
        const el = cls0 + tr.cls * HW;
        const m = ab && c.classMultipliers ? cm : 1;
        delta[el] = (smooth(1) - output[el]) * m;
        terms[el] = [actTerm(m, smooth(1))];
      } else if (c.focal) {
        const pt = output[cls0 + tr.cls * HW] + 0.000000000000001;
        const grad = -(1 - pt) * (2 * pt * Math.log(pt) + pt - 1);
        for (let cc = 0; cc < C; cc++) {
          const el = cls0 + cc * HW;
          delta[el] = ((cc === tr.cls ? 1 : 0) - output[el]) * 0.5 * grad;
          terms[el] = null;
        }
      } else {
        for (let cc = 0; cc < C; cc++) {
          const el = cls0 + cc * HW;
          const t = smooth(cc === tr.cls ? 1 : 0);
          const m = ab && c.classMultipliers && cc === tr.cls ? cm * c.clsNormalizer : 1;
          delta[el] = (t - output[el]) * m;
          terms[el] = [actTerm(m, t)];
        }
      }
    };
    for (const tr of list) {
      const i = Math.min(W - 1, Math.trunc(Math.fround(tr.x * W)));
      const j = Math.min(H - 1, Math.trunc(Math.fround(tr.y * H)));
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
      if (ab && c.iouThresh < 1) {
        for (let k = 0; k < c.total; k++) {
          const m = c.mask.indexOf(k);
          if (m < 0 || k === bestN) continue;
          const v = iouKindRef([0, 0, c.anchors[2 * k] / net.w, c.anchors[2 * k + 1] / net.h], [0, 0, tr.w, tr.h], c.iouThreshKind);
          if (v > c.iouThresh) assign(tr, k, m, i, j);
        }
      }
    }
    if (ab && c.iouThresh < 1) {
      for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
        if (delta[idx(b, a, 4, j, i)] === 0) continue;
        let k = 0;
        for (let cc = 0; cc < C; cc++) if (delta[idx(b, a, 5 + cc, j, i)] > 0) k++;
        if (k > 0) {
          for (let q = 0; q < 4; q++) {
            const el = idx(b, a, q, j, i);
            delta[el] /= k;
            terms[el] = terms[el]?.map((t) => ({ ...t, m: t.m / k })) ?? null;
          }
        }
      }
    }
  }
  ignored = ignoredAt.size;
  let cost = 0;
  for (let e = 0; e < n; e++) cost += delta[e] * delta[e];
  return { output, delta, cost, ignored, terms, kind };
}

/** The implied loss Σ terms at z, per kind (box, obj, cls); elements with null terms are skipped. */
export function impliedLoss(z: ArrayLike<number>, r: Pick<DarknetRefResult, 'terms' | 'kind'>): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  r.terms.forEach((ts, e) => {
    if (!ts) return;
    for (const t of ts) {
      const v = z[e];
      out[r.kind[e]] += t.kind === 'logit' ? t.m * (softplus(v) - t.t * v) : (t.m * (t.a * v + t.c - t.t) ** 2) / (2 * t.a);
    }
  });
  return out;
}
