/**
 * Box math in Darknet's convention: a box is its centre and size {x, y, w, h} (any unit, normalised in the
 * heads). IoU, GIoU, DIoU, CIoU follow AlexeyAB/darknet src/box.c (box_iou, box_giou, box_diou,
 * box_ciou, box_diounms) including their degenerate cases; the training loss reuses these.
 */

export interface Box {
  /** centre x */
  x: number;
  /** centre y */
  y: number;
  w: number;
  h: number;
}

/** Corners {x1, y1, x2, y2} (left, top, right, bottom). */
export interface Corners {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export function toCorners(b: Box): Corners {
  return { x1: b.x - b.w / 2, y1: b.y - b.h / 2, x2: b.x + b.w / 2, y2: b.y + b.h / 2 };
}

export function fromCorners(c: Corners): Box {
  return { x: (c.x1 + c.x2) / 2, y: (c.y1 + c.y2) / 2, w: c.x2 - c.x1, h: c.y2 - c.y1 };
}

/** Length of the overlap of two 1-D segments given by centre and length (negative when disjoint). */
export function overlap(x1: number, w1: number, x2: number, w2: number): number {
  const left = Math.max(x1 - w1 / 2, x2 - w2 / 2);
  const right = Math.min(x1 + w1 / 2, x2 + w2 / 2);
  return right - left;
}

/** Intersection area (0 when the boxes do not overlap). */
export function intersection(a: Box, b: Box): number {
  const w = overlap(a.x, a.w, b.x, b.w);
  const h = overlap(a.y, a.h, b.y, b.h);
  if (w < 0 || h < 0) return 0;
  return w * h;
}

export function union(a: Box, b: Box): number {
  return a.w * a.h + b.w * b.h - intersection(a, b);
}

/** Intersection over union; 0 when either the intersection or the union is 0 (Darknet box_iou). */
export function iou(a: Box, b: Box): number {
  const i = intersection(a, b);
  const u = a.w * a.h + b.w * b.h - i;
  if (i === 0 || u === 0) return 0;
  return i / u;
}

/** The smallest box enclosing both: width and height. */
function enclosing(a: Box, b: Box): { w: number; h: number } {
  const left = Math.min(a.x - a.w / 2, b.x - b.w / 2);
  const right = Math.max(a.x + a.w / 2, b.x + b.w / 2);
  const top = Math.min(a.y - a.h / 2, b.y - b.h / 2);
  const bot = Math.max(a.y + a.h / 2, b.y + b.h / 2);
  return { w: right - left, h: bot - top };
}

/** Generalised IoU: iou - (C - U)/C with C the enclosing box's area (iou when C = 0). */
export function giou(a: Box, b: Box): number {
  const e = enclosing(a, b);
  const c = e.w * e.h;
  const v = iou(a, b);
  if (c === 0) return v;
  return v - (c - union(a, b)) / c;
}

/**
 * Distance IoU: iou - (d²/c²)^beta, d the distance between the centres, c the enclosing box's diagonal
 * (iou when c = 0). beta = 1 is the paper's DIoU (and what the loss uses); Darknet's box_diou (its
 * "greedynms") hard-codes beta = 0.6 and box_diounms takes beta_nms.
 */
export function diou(a: Box, b: Box, beta = 1): number {
  const e = enclosing(a, b);
  const c = e.w * e.w + e.h * e.h;
  const v = iou(a, b);
  if (c === 0) return v;
  const d = (a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y);
  return v - (beta === 1 ? d / c : Math.pow(d / c, beta));
}

/**
 * Complete IoU of a prediction `a` against a truth `b` (Darknet box_ciou):
 * iou - (d²/c² + alpha·v), v = 4/π²·(atan(b.w/b.h) - atan(a.w/a.h))², alpha = v / (1 - iou + v + 1e-6).
 */
export function ciou(a: Box, b: Box): number {
  const e = enclosing(a, b);
  const c = e.w * e.w + e.h * e.h;
  const v = iou(a, b);
  if (c === 0) return v;
  const d = ((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)) / c;
  const dAtan = Math.atan(b.w / b.h) - Math.atan(a.w / a.h);
  const arLoss = (4 / (Math.PI * Math.PI)) * dAtan * dAtan;
  const alpha = arLoss / (1 - v + arLoss + 0.000001);
  return v - (d + alpha * arLoss);
}

export type IouKind = 'iou' | 'giou' | 'diou' | 'ciou';

/**
 * Darknet box_iou_kind, except that 'diou' is the paper's (beta 1): Darknet's box_diou raises d²/c² to 0.6;
 * call diou(a, b, 0.6) for that.
 */
export function iouKind(a: Box, b: Box, kind: IouKind): number {
  switch (kind) {
    case 'giou': return giou(a, b);
    case 'diou': return diou(a, b);
    case 'ciou': return ciou(a, b);
    default: return iou(a, b);
  }
}
