/** Float64 references for the head decode (Darknet yolo_layer.c / region_layer.c, OpenCV region_layer.cpp). */
import type { HeadSpec, NetSize } from '../../src/yolo/decode.js';

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
