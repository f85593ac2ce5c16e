/**
 * Non-maximum suppression on decoded detections (CPU; the survivors of the GPU threshold are few).
 *
 * Darknet (AlexeyAB src/box.c) has three kinds, chosen by the [yolo] option nms_kind:
 * - `default` -> do_nms_sort: per class, boxes sorted by score, a box is dropped when its IoU with a kept,
 *   higher-scoring box is > the threshold (`kind: 'iou'`);
 * - `greedynms` -> diounms_sort with box_diou: the same with IoU replaced by iou - (d²/c²)^0.6
 *   (`kind: 'diou', beta: 0.6`);
 * - `diounms` -> diounms_sort with box_diounms: iou - (d²/c²)^beta_nms (`kind: 'diou', beta: beta_nms`).
 * `nmsOptionsFromDarknet` maps the cfg options. Like Darknet the suppression is per image and per class
 * (each class entry of a box is suppressed on its own); `agnostic` suppresses across classes instead, which
 * also leaves one class per box.
 *
 * Ties in score keep the input order (a stable sort), where Darknet's qsort leaves them unspecified.
 */
import { diou, iou, type Box } from './box.js';

export type NmsKind = 'iou' | 'diou';

export interface NmsOptions {
  /** Suppress when the overlap measure is > this (Darknet -nms / OpenCV nms_threshold; default 0.45). */
  iouThreshold?: number;
  /** 'iou' (default) or 'diou' (DIoU-NMS). */
  kind?: NmsKind;
  /** DIoU exponent on d²/c² (Darknet beta_nms; default 0.6). */
  beta?: number;
  /** Suppress across classes (default false: class-aware). */
  agnostic?: boolean;
  /** Keep at most this many per image, highest scores first (default: all). */
  maxDetections?: number;
}

/** What NMS needs of a detection (Detection from ./decode.js fits). */
export interface Scored {
  /** Image index (0 when absent). */
  batch?: number;
  classId: number;
  score: number;
  box: Box;
}

/** Maps a [yolo] section's nms_kind / beta_nms to NmsOptions (unknown kinds fall back to default, as Darknet does). */
export function nmsOptionsFromDarknet(nmsKind = 'default', betaNms = 0.6): Pick<NmsOptions, 'kind' | 'beta'> {
  if (nmsKind === 'greedynms') return { kind: 'diou', beta: 0.6 };
  if (nmsKind === 'diounms') return { kind: 'diou', beta: betaNms };
  return { kind: 'iou' };
}

/** The overlap measure NMS compares with the threshold. */
export function nmsOverlap(kept: Box, cand: Box, kind: NmsKind = 'iou', beta = 0.6): number {
  return kind === 'diou' ? diou(kept, cand, beta) : iou(kept, cand);
}

/**
 * Greedy NMS. Returns the kept detections (the same objects) per image in image order, each image's
 * sorted by score, highest first (stable), at most maxDetections per image.
 */
export function nms<T extends Scored>(dets: readonly T[], opts: NmsOptions = {}): T[] {
  const thr = opts.iouThreshold ?? 0.45;
  const kind = opts.kind ?? 'iou';
  const beta = opts.beta ?? 0.6;
  const maxDet = opts.maxDetections ?? Infinity;
  if (kind !== 'iou' && kind !== 'diou') throw new Error(`unknown NMS kind '${String(kind)}' (iou, diou)`);
  // stable order: score descending, then input position
  const order = dets.map((_, i) => i);
  order.sort((a, b) => dets[b].score - dets[a].score || a - b);
  // Each box's edges and area, computed once as box.ts computes them per pair (x - w/2, x + w/2, w * h), so
  // the IoU below is bit for bit box.ts iou().
  const n = dets.length;
  const X1 = new Float64Array(n), X2 = new Float64Array(n), Y1 = new Float64Array(n), Y2 = new Float64Array(n), AREA = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const b = dets[i].box;
    X1[i] = b.x - b.w / 2;
    X2[i] = b.x + b.w / 2;
    Y1[i] = b.y - b.h / 2;
    Y2[i] = b.y + b.h / 2;
    AREA[i] = b.w * b.h;
  }
  const fastIou = kind === 'iou';
  // One pass over all candidates in score order: a candidate is compared with the kept boxes of its group
  // (image and class, or image when agnostic), all of which come earlier in that order, exactly as a pass per
  // group would; an image that already has maxDet kept boxes takes no more (a later one could not be output,
  // nor change what is). That bounds the work where an under-trained network at a low threshold leaves tens
  // of thousands of boxes (yolov3-tiny at seeded weights: 76k kept of its 416 image's candidates, 1.3 s before).
  const groups = new Map<string, number[]>();
  const perImage = new Map<number, T[]>();
  for (const i of order) {
    const d = dets[i];
    const img = d.batch ?? 0;
    let list = perImage.get(img);
    if (!list) perImage.set(img, (list = []));
    if (list.length >= maxDet) continue;
    const key = opts.agnostic ? `${img}` : `${img}/${d.classId}`;
    let kept = groups.get(key);
    if (!kept) groups.set(key, (kept = []));
    let ok = true;
    for (const k of kept) {
      let over: number;
      if (fastIou) {
        // iou(dets[k].box, d.box): the intersection, then 0 when it or the union is 0
        const w = Math.min(X2[k], X2[i]) - Math.max(X1[k], X1[i]);
        const h = Math.min(Y2[k], Y2[i]) - Math.max(Y1[k], Y1[i]);
        const inter = w < 0 || h < 0 ? 0 : w * h;
        const u = AREA[k] + AREA[i] - inter;
        over = inter === 0 || u === 0 ? 0 : inter / u;
      } else {
        over = nmsOverlap(dets[k].box, d.box, kind, beta);
      }
      if (over > thr) {
        ok = false;
        break;
      }
    }
    if (ok) {
      kept.push(i);
      list.push(d);
    }
  }
  return [...perImage.keys()].sort((a, b) => a - b).flatMap((b) => perImage.get(b)!);
}
