/**
 * Float64 references of Darknet's hierarchical softmax (softmax_layer.c softmax_tree), its gradient, and the
 * tree walk of [region] detection (pjreddie region_layer.c get_region_detections with tree: hierarchy
 * predictions, hierarchy_top_prediction with `hier_thresh`), transcribed from tree.c.
 */
import { rowBase, type RowsRef } from './softmax.js';
import type { Tree } from '../../src/darknet/tree.js';

/** Copies x, then softmax(x / T) over every group of every row (values outside the rows unchanged). */
export function softmaxTreeRef(x: ArrayLike<number>, r: RowsRef, t: Tree): Float64Array {
  const y = Float64Array.from(x as ArrayLike<number>);
  const T = r.temperature ?? 1;
  const st = r.stride ?? 1;
  for (let row = 0; row < r.rows; row++) {
    for (let g = 0; g < t.groups; g++) {
      const b = rowBase(r, row) + t.groupOffset[g] * st;
      const n = t.groupSize[g];
      let largest = -Infinity;
      for (let j = 0; j < n; j++) largest = Math.max(largest, x[b + j * st]);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += Math.exp(x[b + j * st] / T - largest / T);
      for (let j = 0; j < n; j++) y[b + j * st] = Math.exp(x[b + j * st] / T - largest / T) / sum;
    }
  }
  return y;
}

/** dx = J^T dy of softmaxTreeRef (identity outside the rows). */
export function softmaxTreeBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, r: RowsRef, t: Tree): Float64Array {
  const y = softmaxTreeRef(x, r, t);
  const dx = Float64Array.from(dy as ArrayLike<number>);
  const T = r.temperature ?? 1;
  const st = r.stride ?? 1;
  for (let row = 0; row < r.rows; row++) {
    for (let g = 0; g < t.groups; g++) {
      const b = rowBase(r, row) + t.groupOffset[g] * st;
      const n = t.groupSize[g];
      let dot = 0;
      for (let j = 0; j < n; j++) dot += dy[b + j * st] * y[b + j * st];
      for (let j = 0; j < n; j++) dx[b + j * st] = (y[b + j * st] * (dy[b + j * st] - dot)) / T;
    }
  }
  return dx;
}

/** hierarchy_predictions (only_leaves = 0): p[j] *= p[parent[j]] in file order, in place. */
export function hierarchyPredictionsRef(p: Float64Array, t: Tree): Float64Array {
  for (let j = 0; j < t.n; j++) if (t.parent[j] >= 0) p[j] *= p[t.parent[j]];
  return p;
}

/** hierarchy_top_prediction(predictions, tree, thresh, 1) on absolute (hierarchy_predictions) probabilities. */
export function hierarchyTopPredictionRef(p: ArrayLike<number>, t: Tree, thresh: number): number {
  let q = 1;
  let group = 0;
  for (;;) {
    let max = 0;
    let maxI = 0;
    for (let i = 0; i < t.groupSize[group]; i++) {
      const index = i + t.groupOffset[group];
      if (p[index] > max) {
        maxI = index;
        max = p[index];
      }
    }
    if (q * max > thresh) {
      q *= max;
      group = t.child[maxI];
      if (t.child[maxI] < 0) return maxI;
    } else if (group === 0) {
      return maxI;
    } else {
      return t.parent[t.groupOffset[group]];
    }
  }
}

export interface TreeDetectionRef {
  batch: number;
  /** cell*A + anchor */
  row: number;
  classId: number;
  objectness: number;
  /** the class's absolute (hierarchy) probability */
  prob: number;
  box: { x: number; y: number; w: number; h: number };
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * [region] tree detection from the raw head input x [B, A*(5+C), H, W] (anchors in grid cells): for every box
 * with objectness > thresh, the class hierarchy_top_prediction picks (score = objectness), pjreddie's
 * get_region_detections; in Darknet's order (image, cell, anchor).
 */
export function regionTreeDetectRef(x: ArrayLike<number>, shape: number[], anchors: readonly number[], t: Tree, thresh: number, hierThresh: number): TreeDetectionRef[] {
  const [B, , H, W] = shape;
  const A = anchors.length / 2;
  const C = t.n;
  const E = 5 + C;
  const hw = H * W;
  const out: TreeDetectionRef[] = [];
  for (let b = 0; b < B; b++) {
    for (let cell = 0; cell < hw; cell++) {
      for (let a = 0; a < A; a++) {
        const at = (k: number) => x[((b * A + a) * E + k) * hw + cell];
        const obj = sig(at(4));
        if (!(obj > thresh)) continue;
        const z = Array.from({ length: C }, (_, k) => at(5 + k));
        const p = softmaxTreeRef(z, { rows: 1, n: C }, t);
        hierarchyPredictionsRef(p, t);
        const j = hierarchyTopPredictionRef(p, t, hierThresh);
        const col = cell % W;
        const row = Math.floor(cell / W);
        out.push({
          batch: b, row: cell * A + a, classId: j, objectness: obj, prob: p[j],
          box: { x: (col + sig(at(0))) / W, y: (row + sig(at(1))) / H, w: (Math.exp(at(2)) * anchors[2 * a]) / W, h: (Math.exp(at(3)) * anchors[2 * a + 1]) / H },
        });
      }
    }
  }
  return out;
}
