/**
 * Target assignment for the YOLO losses, on the CPU (small, order-dependent work; the per-element loss runs
 * on the GPU, see loss_darknet.ts / loss_v5.ts):
 *
 * - `assignDarknet`: the truth -> (cell, anchor) part of Darknet's forward_yolo_layer (pjreddie 61c9d02e and
 *   AlexeyAB): best anchor by shape IoU over all anchors (first max wins), iou_thresh extra anchors
 *   (AlexeyAB), later truths overwriting (pjreddie) or accumulating (AlexeyAB) box deltas, the class-delta
 *   rule for a cell an earlier truth took, label smoothing, counters_per_class multipliers, focal flags,
 *   the objectness multiplier of a cell (the last truth's; with AlexeyAB objectness_smooth the first one's).
 *   What depends on the predictions (the deltas, the ignore search) is left to the GPU.
 * - `buildTargetsV5`: ultralytics/yolov5 v7.0 ComputeLoss.build_targets, exactly (anchor_t filter, the two
 *   neighbour cells, offset group > anchor > target order, clamped indices with unclamped tbox offsets).
 *
 * Boxes are normalised to the network input: centre x, y and size w, h in [0, 1].
 */
import { iou as boxIou, iouKind, type Box, type IouKind } from './box.js';

/** One ground-truth box of an image: normalised centre / size and the class index. */
export interface Truth {
  x: number;
  y: number;
  w: number;
  h: number;
  cls: number;
  /**
   * The object's track id (Darknet's 6th truth value, >= 0): the same object in two images of a batch has
   * the same id. Only the [contrastive] loss reads it (src/yolo/loss_contrastive.ts); the loader sets it for
   * a cfg with [net] contrastive=1. Absent: an id of its own.
   */
  track?: number;
}

// ------------------------------------------------------------------------------------------- Darknet

export type DarknetFlavor = 'pjreddie' | 'alexeyab';

/** The geometry and options of one [yolo] head that the assignment needs. */
export interface DarknetHeadGeom {
  /** grid width / height */
  w: number;
  h: number;
  classes: number;
  /** anchor indices of this head (mask) */
  mask: readonly number[];
  /** all anchors (w, h) pairs in network-input pixels; `total` pairs are searched for the best anchor */
  anchors: readonly number[];
  total: number;
  netW: number;
  netH: number;
}

export interface DarknetAssignOptions {
  flavor: DarknetFlavor;
  /** AlexeyAB iou_thresh: also assign every other mask anchor whose shape IoU (iouThreshKind) > this (< 1 enables) */
  iouThresh: number;
  iouThreshKind: IouKind;
  /** AlexeyAB label_smooth_eps: class targets t*(1-eps) + eps/2 */
  labelSmoothEps: number;
  /** focal_loss=1 (class deltas of the first truth in a cell get Darknet's focal factor) */
  focal: boolean;
  /** AlexeyAB: multiplier of the objectness delta of assigned cells */
  objNormalizer: number;
  /** AlexeyAB: multiplier of the box deltas (MSE and IoU losses) */
  iouNormalizer: number;
  /** AlexeyAB: cls_normalizer (only applied together with counters_per_class, as Darknet does) */
  clsNormalizer: number;
  /** AlexeyAB counters_per_class -> classes_multipliers (null: none) */
  classMultipliers: readonly number[] | null;
  /** Darknet's truth list length per image (pjreddie 90, AlexeyAB `max`, default 200) */
  maxBoxes: number;
  /**
   * AlexeyAB objectness_smooth=1: an assigned cell's objectness delta is only written while it is still 0, so
   * the first truth (in assignment order) with a non-zero multiplier sets `objMult` instead of the last one.
   */
  objectnessSmooth?: boolean;
}

/** One box-delta contribution (a truth) to an assigned cell. */
export interface BoxContribution {
  truth: Box;
  /** Darknet's normaliser of this contribution: 1 (pjreddie), iou_normalizer · class multiplier (AlexeyAB) */
  norm: number;
  /** index of the truth in its image's list */
  t: number;
}

/** An assigned (image, anchor, cell) of one head and everything the delta kernel needs for it. */
export interface DarknetSlot {
  /** flat prediction index ((b*A + a)*H + j)*W + i */
  cell: number;
  b: number;
  a: number;
  j: number;
  i: number;
  /** anchor (w, h) of this head's anchor a, pixels */
  anchor: [number, number];
  /** box contributions in truth order (pjreddie: the last one only, since it overwrites) */
  boxes: BoxContribution[];
  /**
   * objectness delta multiplier (target 1): the last truth's (overwrite); with AlexeyAB objectness_smooth the
   * first truth's with a non-zero multiplier, and the kernel only applies it where the delta is still 0
   */
  objMult: number;
  /** class targets t_c */
  clsTarget: Float64Array;
  /** class delta multipliers m_c */
  clsMult: Float64Array;
  /** which class deltas carry the focal factor (computed from the prediction of class `focalClass`) */
  clsFocal: Uint8Array;
  focalClass: number;
  /** AlexeyAB with iou_thresh < 1: box deltas divided by the number of positive class deltas */
  average: boolean;
}

export interface DarknetHeadStats {
  /** truth -> cell assignments made by this head (iou_thresh extras included) */
  assigned: number;
  /** truths whose best anchor is in another head */
  notInMask: number;
  /** distinct cells assigned */
  assignedCells: number;
  /** truths skipped: class out of range */
  badClass: number;
}

export interface DarknetAssignment {
  slots: DarknetSlot[];
  stats: DarknetHeadStats;
  /** the truths Darknet sees per image (after the max / x == 0 / class rules), for the ignore search */
  truths: Truth[][];
}

/**
 * Darknet's view of an image's truth list: at most `maxBoxes` boxes, ending at the first box with x == 0,
 * class-out-of-range boxes skipped (Darknet prints a warning and `continue`s).
 */
export function darknetTruths(list: readonly Truth[], maxBoxes: number, classes: number): { kept: Truth[]; badClass: number } {
  const kept: Truth[] = [];
  let badClass = 0;
  for (let t = 0; t < Math.min(list.length, maxBoxes); t++) {
    const tr = list[t];
    if (!tr.x) break;
    if (!(tr.cls >= 0 && tr.cls < classes) || !Number.isInteger(tr.cls)) {
      badClass++;
      continue;
    }
    kept.push(tr);
  }
  return { kept, badClass };
}

/** The anchor whose (0,0,w,h) box has the best IoU with the truth's (0,0,w,h): first max wins (Darknet). */
export function bestAnchor(tr: Truth, g: Pick<DarknetHeadGeom, 'anchors' | 'total' | 'netW' | 'netH'>): number {
  const shift: Box = { x: 0, y: 0, w: tr.w, h: tr.h };
  let best = 0;
  let bestN = 0;
  for (let n = 0; n < g.total; n++) {
    const v = boxIou({ x: 0, y: 0, w: g.anchors[2 * n] / g.netW, h: g.anchors[2 * n + 1] / g.netH }, shift);
    if (v > best) {
      best = v;
      bestN = n;
    }
  }
  return bestN;
}

/** Truth -> slot assignment of one [yolo] head (see the module comment). */
export function assignDarknet(g: DarknetHeadGeom, truths: readonly (readonly Truth[])[], o: DarknetAssignOptions): DarknetAssignment {
  const A = g.mask.length;
  const C = g.classes;
  const slots: DarknetSlot[] = [];
  const byCell = new Map<number, DarknetSlot>();
  const stats: DarknetHeadStats = { assigned: 0, notInMask: 0, assignedCells: 0, badClass: 0 };
  const seen: Truth[][] = [];
  const smooth = (v: number) => (o.labelSmoothEps ? v * (1 - o.labelSmoothEps) + 0.5 * o.labelSmoothEps : v);
  const ab = o.flavor === 'alexeyab';
  for (let b = 0; b < truths.length; b++) {
    const { kept, badClass } = darknetTruths(truths[b], o.maxBoxes, C);
    stats.badClass += badClass;
    seen.push(kept);
    kept.forEach((tr, t) => {
      // Darknet: i = (int)(truth.x * l.w) in float32; x == 1 would index past the grid (not guarded there): clamped here
      const i = Math.min(g.w - 1, Math.max(0, Math.trunc(Math.fround(Math.fround(tr.x) * g.w))));
      const j = Math.min(g.h - 1, Math.max(0, Math.trunc(Math.fround(Math.fround(tr.y) * g.h))));
      const best = bestAnchor(tr, g);
      const cm = o.classMultipliers ? o.classMultipliers[tr.cls] : 1;
      const assign = (anchorIndex: number) => {
        const a = g.mask.indexOf(anchorIndex);
        const cell = ((b * A + a) * g.h + j) * g.w + i;
        let s = byCell.get(cell);
        const first = !s;
        if (!s) {
          s = {
            cell, b, a, j, i,
            anchor: [g.anchors[2 * anchorIndex], g.anchors[2 * anchorIndex + 1]],
            boxes: [], objMult: 1,
            clsTarget: new Float64Array(C), clsMult: new Float64Array(C).fill(1), clsFocal: new Uint8Array(C), focalClass: -1,
            average: ab && o.iouThresh < 1,
          };
          byCell.set(cell, s);
          slots.push(s);
        }
        const contrib: BoxContribution = { truth: { x: tr.x, y: tr.y, w: tr.w, h: tr.h }, norm: ab ? o.iouNormalizer * cm : 1, t };
        if (ab) s.boxes.push(contrib);
        else s.boxes = [contrib];
        const om = ab ? cm * o.objNormalizer : 1;
        // AlexeyAB objectness_smooth (yolo_layer.c process_batch): `if (l.delta[obj_index] == 0) l.delta[obj_index]
        // = class_multiplier * obj_normalizer * (1 - output)`: a later truth of the cell only writes while the
        // earlier writes left 0, i.e. the first non-zero multiplier wins (the kernel checks the "still 0" part).
        if (ab && o.objectnessSmooth) {
          if (first || s.objMult === 0) s.objMult = om;
        } else s.objMult = om;
        if (!first) {
          // delta_yolo_class on a cell an earlier truth took: only this class's delta is (re)set
          s.clsTarget[tr.cls] = smooth(1);
          s.clsMult[tr.cls] = ab && o.classMultipliers ? cm : 1;
          s.clsFocal[tr.cls] = 0;
        } else {
          for (let c = 0; c < C; c++) {
            if (o.focal) {
              s.clsTarget[c] = c === tr.cls ? 1 : 0;
              s.clsFocal[c] = 1;
            } else {
              s.clsTarget[c] = smooth(c === tr.cls ? 1 : 0);
              if (ab && o.classMultipliers && c === tr.cls) s.clsMult[c] = cm * o.clsNormalizer;
            }
          }
          if (o.focal) s.focalClass = tr.cls;
        }
        stats.assigned++;
      };
      if (g.mask.includes(best)) assign(best);
      else stats.notInMask++;
      if (ab && o.iouThresh < 1) {
        const shift: Box = { x: 0, y: 0, w: tr.w, h: tr.h };
        for (let n = 0; n < g.total; n++) {
          if (n === best || !g.mask.includes(n)) continue;
          const v = iouKind({ x: 0, y: 0, w: g.anchors[2 * n] / g.netW, h: g.anchors[2 * n + 1] / g.netH }, shift, o.iouThreshKind);
          if (v > o.iouThresh) assign(n);
        }
      }
    });
  }
  stats.assignedCells = slots.length;
  return { slots, stats, truths: seen };
}

// ------------------------------------------------------------------------------------------- YOLOv5

/** One head (detection layer) for build_targets: grid size and anchors in grid units. */
export interface V5HeadGeom {
  /** grid rows (ny) and columns (nx) */
  ny: number;
  nx: number;
  /** anchors of this head in grid units (w, h) pairs: na pairs */
  anchors: readonly number[];
}

/** ComputeLoss.build_targets output for one layer, in its order. */
export interface V5Targets {
  n: number;
  b: Int32Array;
  a: Int32Array;
  gj: Int32Array;
  gi: Int32Array;
  tcls: Int32Array;
  /** (n, 4): gx - gi, gy - gj (unclamped gi, gj), gw, gh in grid units */
  tbox: Float64Array;
  /** (n, 2) anchors in grid units */
  anch: Float64Array;
}

/** A target row of yolov5: image index, class, x, y, w, h (normalised). */
export interface V5TargetRow {
  image: number;
  cls: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Per-image truths -> yolov5 target rows (image-major order, as a yolov5 dataloader's collate produces them). */
export function v5Rows(truths: readonly (readonly Truth[])[]): V5TargetRow[] {
  const rows: V5TargetRow[] = [];
  truths.forEach((list, image) => list.forEach((t) => rows.push({ image, cls: t.cls, x: t.x, y: t.y, w: t.w, h: t.h })));
  return rows;
}

/**
 * yolov5 v7.0 build_targets for one layer (float64, as the reference ran it). anchorT: hyp anchor_t (4.0).
 * Entry order: offset group (centre, left, up, right, down) > anchor > target row.
 */
export function buildTargetsV5(rows: readonly V5TargetRow[], g: V5HeadGeom, anchorT = 4): V5Targets {
  const na = g.anchors.length / 2;
  const g5 = 0.5;
  const offs: [number, number][] = [[0, 0], [g5, 0], [0, g5], [-g5, 0], [0, -g5]];
  type E = { b: number; a: number; c: number; gx: number; gy: number; gw: number; gh: number; ox: number; oy: number };
  const groups: E[][] = [[], [], [], [], []];
  for (let a = 0; a < na; a++) {
    const aw = g.anchors[2 * a];
    const ah = g.anchors[2 * a + 1];
    for (const r of rows) {
      const gx = r.x * g.nx;
      const gy = r.y * g.ny;
      const gw = r.w * g.nx;
      const gh = r.h * g.ny;
      const rw = gw / aw;
      const rh = gh / ah;
      if (!(Math.max(Math.max(rw, 1 / rw), Math.max(rh, 1 / rh)) < anchorT)) continue;
      const gxi = g.nx - gx;
      const gyi = g.ny - gy;
      const flags = [true, mod1(gx) < g5 && gx > 1, mod1(gy) < g5 && gy > 1, mod1(gxi) < g5 && gxi > 1, mod1(gyi) < g5 && gyi > 1];
      flags.forEach((f, k) => {
        if (f) groups[k].push({ b: r.image, a, c: r.cls, gx, gy, gw, gh, ox: offs[k][0], oy: offs[k][1] });
      });
    }
  }
  const all = groups.flat();
  const n = all.length;
  const out: V5Targets = {
    n, b: new Int32Array(n), a: new Int32Array(n), gj: new Int32Array(n), gi: new Int32Array(n), tcls: new Int32Array(n),
    tbox: new Float64Array(n * 4), anch: new Float64Array(n * 2),
  };
  all.forEach((e, k) => {
    const gi = Math.trunc(e.gx - e.ox); // .long() truncates toward zero
    const gj = Math.trunc(e.gy - e.oy);
    out.b[k] = e.b;
    out.a[k] = e.a;
    out.gi[k] = Math.min(Math.max(gi, 0), g.nx - 1);
    out.gj[k] = Math.min(Math.max(gj, 0), g.ny - 1);
    out.tcls[k] = Math.trunc(e.c);
    out.tbox.set([e.gx - gi, e.gy - gj, e.gw, e.gh], 4 * k);
    out.anch.set([g.anchors[2 * e.a], g.anchors[2 * e.a + 1]], 2 * k);
  });
  return out;
}

/** Python's x % 1 for floats (sign of the divisor). */
function mod1(v: number): number {
  const r = v % 1;
  return r < 0 ? r + 1 : r;
}
