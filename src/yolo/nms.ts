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
  const groups = new Map<string, number[]>();
  for (const i of order) {
    const d = dets[i];
    const key = opts.agnostic ? `${d.batch ?? 0}` : `${d.batch ?? 0}/${d.classId}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
  }
  const keep = new Uint8Array(dets.length);
  for (const g of groups.values()) {
    const kept: number[] = [];
    for (const i of g) {
      const b = dets[i].box;
      let ok = true;
      for (const k of kept) {
        if (nmsOverlap(dets[k].box, b, kind, beta) > thr) {
          ok = false;
          break;
        }
      }
      if (ok) {
        kept.push(i);
        keep[i] = 1;
      }
    }
  }
  const perImage = new Map<number, T[]>();
  for (const i of order) {
    if (!keep[i]) continue;
    const b = dets[i].batch ?? 0;
    let list = perImage.get(b);
    if (!list) perImage.set(b, (list = []));
    if (list.length < maxDet) list.push(dets[i]);
  }
  return [...perImage.keys()].sort((a, b) => a - b).flatMap((b) => perImage.get(b)!);
}
