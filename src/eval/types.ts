/**
 * What the evaluators take: per image, its ground-truth boxes and its detections, in pixel corners.
 * All protocols (src/eval/coco.ts, ultralytics.ts, voc.ts) read the same `EvalImage[]`.
 */

/** A box by its pixel corners (continuous coordinates: x2 - x1 is the width, no +1). */
export interface XyxyBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface GroundTruth extends XyxyBox {
  classId: number;
  /** COCO iscrowd: matched detections are ignored, several detections may match it (coco protocol only). */
  crowd?: boolean;
  /** VOC difficult: not counted, detections matched to it are ignored (voc protocols; coco treats it as ignore). */
  difficult?: boolean;
  /** Area for the COCO area ranges (default (x2-x1)·(y2-y1)). */
  area?: number;
}

export interface Prediction extends XyxyBox {
  classId: number;
  score: number;
}

export interface EvalImage {
  /** Image id (the file stem for datasets; see docs/evaluation.md). */
  id: string | number;
  gts: readonly GroundTruth[];
  dets: readonly Prediction[];
  /** Image size in pixels (for JSON export and plots; not needed by the metrics). */
  width?: number;
  height?: number;
}

export type Protocol = 'coco' | 'ultralytics' | 'voc' | 'voc07';
export const PROTOCOLS: readonly Protocol[] = ['coco', 'ultralytics', 'voc', 'voc07'];

export function isProtocol(s: string): s is Protocol {
  return (PROTOCOLS as readonly string[]).includes(s);
}

export function boxArea(b: XyxyBox): number {
  return (b.x2 - b.x1) * (b.y2 - b.y1);
}

/** Plain IoU of corner boxes in float64, no epsilon (0 when the union is 0). */
export function iouXyxy(a: XyxyBox, b: XyxyBox): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const u = boxArea(a) + boxArea(b) - inter;
  return u > 0 ? inter / u : 0;
}

/** Number of classes implied by the boxes (max classId + 1), at least `min`. */
export function classCount(images: readonly EvalImage[], min = 0): number {
  let n = min;
  for (const im of images) {
    for (const g of im.gts) n = Math.max(n, g.classId + 1);
    for (const d of im.dets) n = Math.max(n, d.classId + 1);
  }
  return n;
}
