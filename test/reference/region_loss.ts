/**
 * Float64 reference of Darknet's [region] training loss (AlexeyAB region_layer.c forward_region_layer with
 * state.train), transcribed loop for loop on the NCHW head input z [B, A*(5+C), H, W] (Darknet flattens to
 * [cells*A][entries]; the values are the same). Also the implied loss of src/yolo/loss_region.ts (box, obj,
 * cls), whose gradient is -delta where a prediction's targets do not depend on z.
 */
import type { Tree } from '../../src/darknet/tree.js';
import type { Truth } from '../../src/yolo/targets.js';

export interface RegionRefConfig {
  classes: number;
  anchors: readonly number[];
  maxBoxes: number;
  noobjectScale: number;
  objectScale: number;
  coordScale: number;
  classScale: number;
  thresh: number;
  rescore: boolean;
  biasMatch: boolean;
  focal: boolean;
  tree: Tree | null;
  map: ArrayLike<number> | null;
}

interface B4 { x: number; y: number; w: number; h: number }

const sig = (v: number) => 1 / (1 + Math.exp(-v));

function overlap(x1: number, w1: number, x2: number, w2: number): number {
  return Math.min(x1 + w1 / 2, x2 + w2 / 2) - Math.max(x1 - w1 / 2, x2 - w2 / 2);
}

export function boxIouRef(a: B4, b: B4): number {
  const w = overlap(a.x, a.w, b.x, b.w);
  const h = overlap(a.y, a.h, b.y, b.h);
  const i = w < 0 || h < 0 ? 0 : w * h;
  const u = a.w * a.h + b.w * b.h - i;
  return i === 0 || u === 0 ? 0 : i / u;
}

export interface RegionLossRef {
  delta: Float64Array;
  box: number;
  obj: number;
  cls: number;
  /** Darknet's l.cost: sum of delta^2 */
  cost: number;
  ignored: number;
}

export function regionLossRef(z: ArrayLike<number>, shape: number[], truths: readonly (readonly Truth[])[], c: RegionRefConfig, seen: number): RegionLossRef {
  const [B, , H, W] = shape;
  const A = c.anchors.length / 2;
  const C = c.classes;
  const E = 5 + C;
  const hw = H * W;
  const idx = (b: number, a: number, k: number, cell: number) => ((b * A + a) * E + k) * hw + cell;
  const pidx = (b: number, a: number, cell: number) => (b * A + a) * hw + cell;
  const delta = new Float64Array(B * A * E * hw);
  const cells = B * A * hw;
  const lbox = new Float64Array(cells);
  const lobj = new Float64Array(cells);
  const lcls = new Float64Array(cells);
  const ign = new Float64Array(cells);
  const predBox = (b: number, a: number, cell: number): B4 => ({
    x: ((cell % W) + sig(z[idx(b, a, 0, cell)])) / W,
    y: (Math.floor(cell / W) + sig(z[idx(b, a, 1, cell)])) / H,
    w: (Math.exp(z[idx(b, a, 2, cell)]) * c.anchors[2 * a]) / W,
    h: (Math.exp(z[idx(b, a, 3, cell)]) * c.anchors[2 * a + 1]) / H,
  });
  // delta_region_box: returns [iou, implied loss]
  const deltaBox = (t: B4, b: number, a: number, cell: number, scale: number): [number, number] => {
    const iou = boxIouRef(predBox(b, a, cell), t);
    const tx = t.x * W - (cell % W);
    const ty = t.y * H - Math.floor(cell / W);
    const tw = Math.log((t.w * W) / c.anchors[2 * a]);
    const th = Math.log((t.h * H) / c.anchors[2 * a + 1]);
    const sx = sig(z[idx(b, a, 0, cell)]);
    const sy = sig(z[idx(b, a, 1, cell)]);
    const zw = z[idx(b, a, 2, cell)];
    const zh = z[idx(b, a, 3, cell)];
    delta[idx(b, a, 0, cell)] = scale * (tx - sx) * sx * (1 - sx);
    delta[idx(b, a, 1, cell)] = scale * (ty - sy) * sy * (1 - sy);
    delta[idx(b, a, 2, cell)] = scale * (tw - zw);
    delta[idx(b, a, 3, cell)] = scale * (th - zh);
    return [iou, 0.5 * scale * ((tx - sx) ** 2 + (ty - sy) ** 2 + (tw - zw) ** 2 + (th - zh) ** 2)];
  };
  const softmax = (b: number, a: number, cell: number, off: number, n: number): number[] => {
    const v = Array.from({ length: n }, (_, k) => z[idx(b, a, 5 + off + k, cell)]);
    const m = Math.max(...v);
    const e = v.map((x) => Math.exp(x - m));
    const s = e.reduce((p, q) => p + q, 0);
    return e.map((x) => x / s);
  };
  // delta_region_class: returns the implied class loss
  const deltaClass = (b: number, a: number, cell: number, cls: number): number => {
    const s = c.classScale;
    let loss = 0;
    if (c.tree) {
      const t = c.tree;
      for (let k = cls; k >= 0; k = t.parent[k]) {
        const g = t.group[k];
        const off = t.groupOffset[g];
        const p = softmax(b, a, cell, off, t.groupSize[g]);
        p.forEach((q, i) => (delta[idx(b, a, 5 + off + i, cell)] = s * (0 - q)));
        delta[idx(b, a, 5 + k, cell)] = s * (1 - p[k - off]);
        loss += -s * Math.log(p[k - off]);
      }
      return loss;
    }
    const p = softmax(b, a, cell, 0, C);
    let f = 1;
    if (c.focal) {
      const pt = p[cls] + 1e-15;
      f = 0.5 * -(1 - pt) * (2 * pt * Math.log(pt) + pt - 1);
    }
    p.forEach((q, k) => (delta[idx(b, a, 5 + k, cell)] = s * ((k === cls ? 1 : 0) - q) * f));
    return -s * Math.log(p[cls]);
  };
  for (let b = 0; b < B; b++) {
    const ts = (truths[b] ?? []).slice(0, c.maxBoxes);
    for (let cell = 0; cell < hw; cell++) {
      for (let a = 0; a < A; a++) {
        const pred = predBox(b, a, cell);
        let best = 0;
        for (const t of ts) {
          if (t.cls >= C) continue;
          if (!t.x) break;
          best = Math.max(best, boxIouRef(pred, t));
        }
        const o = sig(z[idx(b, a, 4, cell)]);
        const p = pidx(b, a, cell);
        delta[idx(b, a, 4, cell)] = c.noobjectScale * (0 - o) * o * (1 - o);
        lobj[p] = 0.5 * c.noobjectScale * o * o;
        if (best > c.thresh) {
          delta[idx(b, a, 4, cell)] = 0;
          lobj[p] = 0;
          ign[p] = 1;
        }
        if (seen < 12800) {
          const t = { x: ((cell % W) + 0.5) / W, y: (Math.floor(cell / W) + 0.5) / H, w: c.anchors[2 * a] / W, h: c.anchors[2 * a + 1] / H };
          lbox[p] = deltaBox(t, b, a, cell, 0.01)[1];
        }
      }
    }
    for (const t of ts) {
      if (t.cls >= C) continue;
      if (!t.x) break;
      const i = Math.min(Math.floor(t.x * W), W - 1);
      const j = Math.min(Math.floor(t.y * H), H - 1);
      const cell = j * W + i;
      let best = 0;
      let bn = 0;
      for (let a = 0; a < A; a++) {
        const pr = predBox(b, a, cell);
        if (c.biasMatch) {
          pr.w = c.anchors[2 * a] / W;
          pr.h = c.anchors[2 * a + 1] / H;
        }
        const iou = boxIouRef({ x: 0, y: 0, w: pr.w, h: pr.h }, { x: 0, y: 0, w: t.w, h: t.h });
        if (iou > best) {
          best = iou;
          bn = a;
        }
      }
      const [iou, lb] = deltaBox(t, b, bn, cell, c.coordScale);
      const o = sig(z[idx(b, bn, 4, cell)]);
      const target = c.rescore ? iou : 1;
      delta[idx(b, bn, 4, cell)] = c.objectScale * (target - o) * o * (1 - o);
      const p = pidx(b, bn, cell);
      lbox[p] = lb;
      lobj[p] = 0.5 * c.objectScale * (target - o) ** 2;
      lcls[p] = deltaClass(b, bn, cell, c.map ? c.map[t.cls] : t.cls);
      ign[p] = 0;
    }
  }
  const sum = (v: Float64Array) => v.reduce((p, q) => p + q, 0);
  return { delta, box: sum(lbox), obj: sum(lobj), cls: sum(lcls), cost: delta.reduce((p, q) => p + q * q, 0), ignored: sum(ign) };
}
