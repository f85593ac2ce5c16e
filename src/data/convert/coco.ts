/**
 * COCO instances JSON in (`readCoco`; the way out, `yoloToCoco`, is to_coco.ts): `images[]` {id, file_name,
 * width, height}, `annotations[]` {id, image_id, category_id, bbox [x, y, w, h] in pixels from the top-left
 * corner, iscrowd}, `categories[]` {id, name}. file_name is relative to the images folder given with the
 * JSON. The class list is the categories sorted by id (class k = the k-th smallest id), unless a names list
 * is given. Crowd annotations (iscrowd=1: one box over a group of objects, which pycocotools scores as an
 * ignore region) are skipped, as Ultralytics' `convert_coco` does, since a YOLO label cannot say "ignore";
 * `keepCrowd` keeps them as ordinary boxes. Where an annotation is reported: the JSON path and id
 * (`instances.json: annotations[3] (id 17)`).
 */
import {
  num, plural, probeImage, readJsonFile, safeRelative, SourceError, splitFromName,
  type ConvertIssue, type IssueKind, type SourceBox, type SourceImage, type SourceIO, type SourceSet, type SplitName, type Where,
} from './source.js';

export interface CocoSource {
  /** The instances JSON. */
  json: string;
  /** The folder file_name is relative to. */
  images: string;
  /** Its split; default: from the JSON's name (`instances_val2017.json` is val), else none (the writer assigns). */
  split?: SplitName;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const idText = (v: unknown): string => (typeof v === 'number' || typeof v === 'string' ? JSON.stringify(v) : '?');

export interface CocoReadOptions {
  /** The files: nodeSourceIO (node_io.ts) on disk, memorySourceIO (memory.ts) in memory. */
  io: SourceIO;
  /** Keep iscrowd=1 boxes as ordinary boxes (default: skipped). */
  keepCrowd?: boolean;
}

/** Reads COCO instances JSON files (see the file comment). A file that is not JSON, or not COCO, is a SourceError. */
export function readCoco(sources: readonly CocoSource[], opts: CocoReadOptions): SourceSet {
  const io = opts.io;
  const issues: ConvertIssue[] = [];
  const report = (kind: IssueKind, where: Where, message: string, skipped = true) => issues.push({ kind, where, message, skipped });
  const images: SourceImage[] = [];
  const categories = new Map<number, { name: string; file: string }>();
  for (const src of sources) {
    const file = src.json;
    const root = readJsonFile(io, file);
    if (!isObj(root)) throw new SourceError({ file }, 'not a COCO instances file: the top level is not an object');
    if (!Array.isArray(root.images)) throw new SourceError({ file }, 'not a COCO instances file: no "images" list');
    const anns = root.annotations ?? [];
    if (!Array.isArray(anns)) throw new SourceError({ file }, '"annotations" is not a list');
    const cats = root.categories ?? [];
    if (!Array.isArray(cats)) throw new SourceError({ file }, '"categories" is not a list');
    const split = src.split ?? splitFromName(file);
    // categories
    const catName = new Map<number, string>();
    cats.forEach((c, k) => {
      const where = { file, at: `categories[${k}]` };
      const id = isObj(c) ? num(c.id) : undefined;
      if (!isObj(c) || id === undefined || !Number.isInteger(id) || typeof c.name !== 'string' || c.name === '') return report('malformed', where, 'a category needs an integer "id" and a "name"; skipped');
      if (catName.has(id)) return report('duplicate', where, `category id ${id} repeated; skipped`);
      catName.set(id, c.name);
      const prev = categories.get(id);
      if (prev && prev.name !== c.name) throw new SourceError(where, `category ${id} is ${JSON.stringify(c.name)} here but ${JSON.stringify(prev.name)} in ${prev.file}`);
      categories.set(id, { name: c.name, file });
    });
    // images
    const byId = new Map<string, { image: SourceImage | null; at: string; missing?: string; count: number }>();
    root.images.forEach((im, k) => {
      const at = `images[${k}]${isObj(im) && im.id !== undefined ? ` (id ${idText(im.id)})` : ''}`;
      const where = { file, at };
      if (!isObj(im) || (typeof im.id !== 'number' && typeof im.id !== 'string') || typeof im.file_name !== 'string') return report('malformed', where, 'an image needs an "id" and a "file_name"; skipped');
      const key = String(im.id);
      if (byId.has(key)) return report('duplicate', where, `image id ${idText(im.id)} repeated (first at ${byId.get(key)!.at}); skipped`);
      const rel = safeRelative(im.file_name);
      if (!rel) {
        byId.set(key, { image: null, at, count: 0 });
        return report('unsafe-path', where, `file_name ${JSON.stringify(im.file_name)} leaves the images folder; skipped`);
      }
      const imageFile = io.path.resolve(src.images, ...rel.split('/'));
      const probe = probeImage(io, imageFile);
      if (!probe.ok) {
        byId.set(key, { image: null, at, missing: probe.why, count: 0 });
        return;
      }
      let width = num(im.width), height = num(im.height);
      if (width !== undefined && height !== undefined && width > 0 && height > 0) {
        if (width !== probe.width || height !== probe.height) report('size-mismatch', where, `the JSON says ${width}x${height}, the image is ${probe.width}x${probe.height}: boxes are normalised by the JSON's size`, false);
      } else [width, height] = [probe.width, probe.height];
      const image: SourceImage = { split, file: imageFile, name: rel, width, height, boxes: [], where };
      byId.set(key, { image, at, count: 0 });
      images.push(image);
    });
    // annotations
    anns.forEach((a, k) => {
      const where = { file, at: `annotations[${k}]${isObj(a) && a.id !== undefined ? ` (id ${idText(a.id)})` : ''}` };
      if (!isObj(a)) return report('malformed', where, 'not an object; skipped');
      const entry = byId.get(String(a.image_id));
      if (!entry) return report('unknown-image', where, `image_id ${idText(a.image_id)} is in no "images" entry; skipped`);
      entry.count++;
      if (!entry.image) return; // reported once with the image
      const b = Array.isArray(a.bbox) && a.bbox.length === 4 ? a.bbox.map(num) : [];
      if (b.length !== 4 || b.some((v) => v === undefined)) return report('malformed', where, `bbox ${JSON.stringify(a.bbox)} is not [x, y, w, h]; skipped`);
      const cat = num(a.category_id);
      const name = cat === undefined ? undefined : catName.get(cat);
      if (name === undefined) return report('unknown-class', where, `category_id ${idText(a.category_id)} is in no category; skipped`);
      if (a.iscrowd && a.iscrowd !== '0') {
        if (!opts.keepCrowd) return report('crowd', where, 'crowd box (iscrowd=1, an ignore region for pycocotools); skipped (--keep-crowd keeps it)');
      }
      const [x, y, w, h] = b as number[];
      const box: SourceBox = { label: name, x1: x, y1: y, x2: x + w, y2: y + h, where };
      entry.image.boxes.push(box);
    });
    for (const e of byId.values()) if (e.missing) report('missing-image', { file, at: e.at }, `${e.missing}; skipped with ${plural(e.count, 'annotation')}`);
  }
  const declared = [...categories.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c.name);
  return { images, declared, issues };
}
