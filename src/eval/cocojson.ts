/**
 * COCO-format detection results ("results json": a list of {image_id, category_id, bbox, score}), as
 * pycocotools loadRes and Ultralytics' val.py --save-json use them.
 *
 * - bbox = [x, y, w, h] in pixels of the original image (top-left corner, width, height).
 * - image_id: for datasets, the image file's stem; a stem of digits only becomes a number (Ultralytics:
 *   `int(stem) if stem.isnumeric() else stem`, so 000000000139.jpg -> 139). On import an id matches an
 *   image when String(id) equals its stem or, for an all-digit stem, when the numbers are equal.
 * - category_id = class index + categoryOffset (default 0: the class index itself, as Ultralytics writes
 *   for non-COCO datasets; pass 1 for COCO-style ids starting at 1, or a full `categoryIds` map).
 */
import path from 'node:path';
import type { Prediction } from './types.js';

export interface CocoDetection {
  image_id: number | string;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

export interface CategoryMapping {
  /** category_id = classId + categoryOffset (default 0). */
  categoryOffset?: number;
  /** Explicit category id per class index (wins over categoryOffset). */
  categoryIds?: readonly number[];
}

/** The image id of an image file: its stem, as a number when it is all digits. */
export function imageIdForFile(file: string): number | string {
  const stem = path.basename(file, path.extname(file));
  return /^\d+$/.test(stem) ? Number(stem) : stem;
}

/** The key both export and import use for an id (numeric ids and all-digit stems compare as numbers). */
export function imageKey(id: number | string): string {
  if (typeof id === 'number') return `#${id}`;
  return /^\d+$/.test(id) ? `#${Number(id)}` : `s:${id}`;
}

function categoryOf(classId: number, m: CategoryMapping): number {
  if (m.categoryIds) {
    const c = m.categoryIds[classId];
    if (c === undefined) throw new Error(`no category id for class ${classId}`);
    return c;
  }
  return classId + (m.categoryOffset ?? 0);
}

/**
 * Detections to COCO results. `round` (default true) rounds bbox to 3 and score to 5 decimals as
 * Ultralytics does; pass false to keep full precision.
 */
export function toCocoDetections(items: readonly { id: number | string; dets: readonly Prediction[] }[], opts: CategoryMapping & { round?: boolean } = {}): CocoDetection[] {
  const round = opts.round ?? true;
  const r = (v: number, d: number) => (round ? Math.round(v * 10 ** d) / 10 ** d : v);
  const out: CocoDetection[] = [];
  for (const it of items) {
    for (const d of it.dets) {
      out.push({ image_id: it.id, category_id: categoryOf(d.classId, opts), bbox: [r(d.x1, 3), r(d.y1, 3), r(d.x2 - d.x1, 3), r(d.y2 - d.y1, 3)], score: r(d.score, 5) });
    }
  }
  return out;
}

export interface CocoImport {
  /** Detections per image key (imageKey of the image's id), in file order. */
  byImage: Map<string, Prediction[]>;
  /** Entries whose image id is not among the known images (ignored). */
  unknownImages: (number | string)[];
  /** Problems with single entries (ignored): index in the list and why. */
  problems: string[];
  total: number;
}

/**
 * Parses COCO results (JSON text or the parsed list). `knownKeys` (imageKey values) restricts the images;
 * entries naming other images are counted in unknownImages. Category ids map back through the mapping;
 * a category that maps to no class index in [0, numClasses) is a problem entry, and so is every other
 * entry that is not used as given (no bbox, a negative width or height, no score, a negative score):
 * nothing is dropped or changed without a problem line.
 */
export function fromCocoDetections(json: string | unknown, opts: CategoryMapping & { knownKeys?: ReadonlySet<string>; numClasses?: number; source?: string } = {}): CocoImport {
  const src = opts.source ?? 'detections';
  let list: unknown;
  if (typeof json === 'string') {
    try {
      list = JSON.parse(json);
    } catch (e) {
      throw new Error(`${src}: not valid JSON: ${(e as Error).message}`);
    }
  } else list = json;
  if (!Array.isArray(list)) throw new Error(`${src}: expected a JSON list of {image_id, category_id, bbox, score}`);
  const inverse = new Map<number, number>();
  if (opts.categoryIds) opts.categoryIds.forEach((c, k) => inverse.set(c, k));
  const byImage = new Map<string, Prediction[]>();
  const unknown = new Set<number | string>();
  const problems: string[] = [];
  list.forEach((e, i) => {
    const o = e as Partial<CocoDetection>;
    const bad = (why: string) => problems.push(`${src}[${i}]: ${why}`);
    if (!o || typeof o !== 'object') return bad('not an object');
    if (typeof o.image_id !== 'number' && typeof o.image_id !== 'string') return bad('image_id missing');
    if (typeof o.category_id !== 'number') return bad('category_id missing');
    if (!Array.isArray(o.bbox) || o.bbox.length !== 4 || !o.bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) return bad('bbox is not [x, y, w, h] numbers');
    if (o.bbox[2] < 0 || o.bbox[3] < 0) return bad(`bbox [${o.bbox.join(', ')}] has a negative width or height`);
    if (typeof o.score !== 'number' || !Number.isFinite(o.score)) return bad('score missing');
    if (o.score < 0) return bad(`score ${o.score} is negative (scores are confidences in [0, 1])`);
    const classId = opts.categoryIds ? inverse.get(o.category_id) : o.category_id - (opts.categoryOffset ?? 0);
    if (classId === undefined || !Number.isInteger(classId) || classId < 0 || (opts.numClasses !== undefined && classId >= opts.numClasses)) return bad(`category_id ${o.category_id} maps to no class`);
    const key = imageKey(o.image_id);
    if (opts.knownKeys && !opts.knownKeys.has(key)) {
      unknown.add(o.image_id);
      return;
    }
    const [x, y, w, h] = o.bbox;
    let arr = byImage.get(key);
    if (!arr) byImage.set(key, (arr = []));
    arr.push({ x1: x, y1: y, x2: x + w, y2: y + h, classId, score: o.score });
  });
  return { byImage, unknownImages: [...unknown], problems, total: list.length };
}
