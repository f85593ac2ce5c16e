/**
 * Float64 references for the head decode (Darknet yolo_layer.c / region_layer.c, OpenCV region_layer.cpp), and
 * AlexeyAB's objectness_smooth on top of the [yolo] loss transcription (test/reference/yolo_loss_darknet.ts).
 */
import type { HeadSpec, NetSize } from '../../src/yolo/decode.js';
import type { DarknetHeadConfig } from '../../src/yolo/loss_darknet.js';
import type { Truth } from '../../src/yolo/targets.js';
import { boxIouRef, darknetPredBox, darknetTruthList, darknetYoloRef, type DarknetRefResult, type Term } from '../reference/yolo_loss_darknet.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** OpenCV rows [B, H*W*A, 5+C] from the raw head conv output NCHW [B, A*(5+C), H, W]; scores <= thresh -> 0. */
export function decodeRowsRef(x: ArrayLike<number>, shape: readonly number[], h: HeadSpec, net: NetSize, thresh = -Infinity): Float64Array {
  const [B, , H, W] = shape;
  const A = h.anchors.length / 2;
  const C = h.classes;
  const K = 5 + C;
  const HW = H * W;
  const s = h.scaleXY ?? 1;
  const kind = h.kind ?? 'yolo';
  const out = new Float64Array(B * HW * A * K);
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      for (let cell = 0; cell < HW; cell++) {
        const at = (k: number) => x[((b * A + a) * K + k) * HW + cell];
        const col = cell % W;
        const row = Math.floor(cell / W);
        const o = ((b * HW + cell) * A + a) * K;
        let bx: number, by: number, bw: number, bh: number, obj: number;
        const cls = new Float64Array(C);
        if (kind === 'region') {
          bx = (col + sigmoid(at(0))) / W;
          by = (row + sigmoid(at(1))) / H;
          bw = (Math.exp(at(2)) * h.anchors[2 * a]) / W;
          bh = (Math.exp(at(3)) * h.anchors[2 * a + 1]) / H;
          obj = sigmoid(at(4));
          if (h.softmax === false) {
            for (let j = 0; j < C; j++) cls[j] = sigmoid(at(5 + j));
          } else {
            let m = -Infinity;
            for (let j = 0; j < C; j++) m = Math.max(m, at(5 + j));
            let sum = 0;
            for (let j = 0; j < C; j++) sum += Math.exp(at(5 + j) - m);
            for (let j = 0; j < C; j++) cls[j] = Math.exp(at(5 + j) - m) / sum;
          }
        } else if (h.newCoords) {
          bx = (col + at(0) * s - 0.5 * (s - 1)) / W;
          by = (row + at(1) * s - 0.5 * (s - 1)) / H;
          bw = (4 * at(2) * at(2) * h.anchors[2 * a]) / net.width;
          bh = (4 * at(3) * at(3) * h.anchors[2 * a + 1]) / net.height;
          obj = at(4);
          for (let j = 0; j < C; j++) cls[j] = at(5 + j);
        } else {
          bx = (col + sigmoid(at(0)) * s - 0.5 * (s - 1)) / W;
          by = (row + sigmoid(at(1)) * s - 0.5 * (s - 1)) / H;
          bw = (Math.exp(at(2)) * h.anchors[2 * a]) / net.width;
          bh = (Math.exp(at(3)) * h.anchors[2 * a + 1]) / net.height;
          obj = sigmoid(at(4));
          for (let j = 0; j < C; j++) cls[j] = sigmoid(at(5 + j));
        }
        out[o] = bx; out[o + 1] = by; out[o + 2] = bw; out[o + 3] = bh; out[o + 4] = obj;
        for (let j = 0; j < C; j++) {
          const p = obj * cls[j];
          out[o + 5 + j] = p > thresh ? p : 0;
        }
      }
    }
  }
  return out;
}

/**
 * OpenCV rows from Darknet's own [yolo] activations (yolo_M.darknet.npy: NCHW, logistic x/y/obj/classes with
 * scale_x_y applied to x/y, raw w/h).
 */
export function rowsFromDarknet(dk: ArrayLike<number>, shape: readonly number[], h: HeadSpec, net: NetSize): Float64Array {
  const [B, , H, W] = shape;
  const A = h.anchors.length / 2;
  const K = 5 + h.classes;
  const HW = H * W;
  const out = new Float64Array(B * HW * A * K);
  for (let b = 0; b < B; b++) {
    for (let a = 0; a < A; a++) {
      for (let cell = 0; cell < HW; cell++) {
        const at = (k: number) => dk[((b * A + a) * K + k) * HW + cell];
        const o = ((b * HW + cell) * A + a) * K;
        out[o] = ((cell % W) + at(0)) / W;
        out[o + 1] = (Math.floor(cell / W) + at(1)) / H;
        out[o + 2] = (Math.exp(at(2)) * h.anchors[2 * a]) / net.width;
        out[o + 3] = (Math.exp(at(3)) * h.anchors[2 * a + 1]) / net.height;
        const obj = at(4);
        out[o + 4] = obj;
        for (let j = 0; j < h.classes; j++) out[o + 5 + j] = obj * at(5 + j);
      }
    }
  }
  return out;
}

export interface RowHit {
  batch: number;
  index: number;
  classId: number;
  score: number;
  objectness: number;
  box: [number, number, number, number];
}

/** Darknet's test on OpenCV rows: objectness > t, then every class whose score > t; in row, class order. */
export function filterRows(rows: ArrayLike<number>, B: number, nRows: number, C: number, t: number): RowHit[] {
  const K = 5 + C;
  const hits: RowHit[] = [];
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < nRows; r++) {
      const o = (b * nRows + r) * K;
      const obj = rows[o + 4];
      if (!(obj > t)) continue;
      for (let j = 0; j < C; j++) {
        const p = rows[o + 5 + j];
        if (p > t) hits.push({ batch: b, index: r, classId: j, score: p, objectness: obj, box: [rows[o], rows[o + 1], rows[o + 2], rows[o + 3]] });
      }
    }
  }
  return hits;
}

// ---------------------------------------------------------------- Darknet loss with objectness_smooth

/** box.c box_iou_kind on (0, 0, w, h) boxes (the iou_thresh anchor test): IoU, GIoU, DIoU or CIoU. */
function shapeIouKind(aw: number, ah: number, tw: number, th: number, kind: string): number {
  const v = boxIouRef([0, 0, aw, ah], [0, 0, tw, th]);
  if (kind === 'iou' || kind === 'mse') return v;
  const cw = Math.max(aw, tw);
  const ch = Math.max(ah, th);
  if (kind === 'giou') {
    const c = cw * ch;
    if (c === 0) return v;
    const i = Math.min(aw, tw) * Math.min(ah, th);
    return v - (c - (aw * ah + tw * th - i)) / c;
  }
  const c = cw * cw + ch * ch;
  if (c === 0) return v;
  if (kind === 'diou') return v; // centres coincide: d = 0
  const da = Math.atan(tw / th) - Math.atan(aw / ah);
  const ar = (4 / Math.PI ** 2) * da * da;
  return v - (ar / (1 - v + ar + 0.000001)) * ar;
}

/**
 * Darknet forward_yolo_layer (AlexeyAB) with `objectness_smooth`: darknetYoloRef (which has no such option)
 * for the box and class deltas, then the objectness deltas redone in Darknet's order, from process_batch in
 * AlexeyAB's src/yolo_layer.c (59596d78):
 *   1. every prediction: `delta[obj] = obj_normalizer * (0 - output[obj])`; if best_match_iou > ignore_thresh
 *      (best IoU over the image's truths, 0 unless some class output > 0.25: compare_yolo_class), with
 *      objectness_smooth: `delta_obj = obj_normalizer * (best_match_iou - output[obj])`, taken if > delta[obj];
 *   2. every truth in order, its best anchor (if in the mask) then each iou_thresh extra anchor:
 *      `delta_obj = class_multiplier * obj_normalizer * (1 - output[obj])`, written only `if (delta[obj] == 0)`;
 *   3. iou_thresh < 1: box deltas divided by the positive class deltas only where delta[obj] != 0 (the
 *      averaging of darknetYoloRef, undone / redone where that test now differs).
 * Box and class deltas do not depend on it (truth_thresh >= 1: its IoU² branch never runs). `ignored` counts
 * the predictions whose final objectness delta is step 1's smoothed one.
 */
export function darknetYoloRefSmooth(z: ArrayLike<number>, shape: readonly number[], c: DarknetHeadConfig, net: { w: number; h: number }, truths: readonly (readonly Truth[])[]): DarknetRefResult {
  const base = darknetYoloRef(z, shape, c, net, truths);
  if (!c.objectnessSmooth) return base;
  if (c.flavor !== 'alexeyab') throw new Error('objectness_smooth is an AlexeyAB option');
  const [B, , H, W] = shape;
  const A = c.mask.length;
  const C = c.classes;
  const E = 5 + C;
  const HW = H * W;
  const out = base.output;
  const delta = Float64Array.from(base.delta);
  const terms = base.terms.map((t) => (t ? [...t] : null));
  const idx = (b: number, a: number, k: number, j: number, i: number) => ((b * A + a) * E + k) * HW + j * W + i;
  const actTerm = (m: number, t: number): Term => (c.newCoords ? { kind: 'sq', m, a: 1, c: 0, t } : { kind: 'logit', m, t });
  const smoothed = new Set<number>();
  for (let b = 0; b < B; b++) {
    const list = darknetTruthList(truths[b], c);
    // 1. every prediction
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
      const pred = darknetPredBox((k) => out[idx(b, a, k, j, i)], i, j, W, H, c.anchors[2 * c.mask[a]], c.anchors[2 * c.mask[a] + 1], c.newCoords, net);
      let anyClass = false;
      for (let cc = 0; cc < C; cc++) if (out[idx(b, a, 5 + cc, j, i)] > 0.25) anyClass = true;
      let bestMatch = 0;
      if (anyClass) for (const tr of list) bestMatch = Math.max(bestMatch, boxIouRef(pred, [tr.x, tr.y, tr.w, tr.h]));
      const o = idx(b, a, 4, j, i);
      delta[o] = c.objNormalizer * (0 - out[o]);
      terms[o] = [actTerm(c.objNormalizer, 0)];
      if (bestMatch > Math.fround(c.ignoreThresh)) {
        const d = c.objNormalizer * (bestMatch - out[o]);
        if (d > delta[o]) {
          delta[o] = d;
          terms[o] = [actTerm(c.objNormalizer, bestMatch)];
          smoothed.add(o);
        }
      }
    }
    // 2. every truth, in order
    const write = (tr: Truth, a: number, i: number, j: number) => {
      const o = idx(b, a, 4, j, i);
      if (delta[o] !== 0) return;
      const om = (c.classMultipliers ? c.classMultipliers[tr.cls] : 1) * c.objNormalizer;
      delta[o] = om * (1 - out[o]);
      terms[o] = [actTerm(om, 1)];
      smoothed.delete(o);
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
      if (c.mask.includes(bestN)) write(tr, c.mask.indexOf(bestN), i, j);
      if (c.iouThresh < 1) {
        for (let k = 0; k < c.total; k++) {
          if (k === bestN || !c.mask.includes(k)) continue;
          if (shapeIouKind(c.anchors[2 * k] / net.w, c.anchors[2 * k + 1] / net.h, tr.w, tr.h, c.iouThreshKind) > c.iouThresh) write(tr, c.mask.indexOf(k), i, j);
        }
      }
    }
    // 3. the averaging test on the new objectness deltas
    if (c.iouThresh < 1) {
      for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) for (let a = 0; a < A; a++) {
        const o = idx(b, a, 4, j, i);
        const was = base.delta[o] !== 0;
        const now = delta[o] !== 0;
        if (was === now) continue;
        let k = 0;
        for (let cc = 0; cc < C; cc++) if (delta[idx(b, a, 5 + cc, j, i)] > 0) k++;
        if (k === 0) continue;
        const f = now ? 1 / k : k;
        for (let q = 0; q < 4; q++) {
          const el = idx(b, a, q, j, i);
          delta[el] *= f;
          terms[el] = terms[el]?.map((t) => ({ ...t, m: t.m * f })) ?? null;
        }
      }
    }
  }
  let cost = 0;
  for (let e = 0; e < delta.length; e++) cost += delta[e] * delta[e];
  return { output: out, delta, cost, ignored: smoothed.size, terms, kind: base.kind };
}
