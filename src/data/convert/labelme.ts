/**
 * labelme JSON files (one per image, as labelme saves them): `shapes[]` {label, points [[x, y], ...],
 * shape_type}, `imagePath` (relative to the JSON file), `imageWidth`, `imageHeight`, optional `imageData`
 * (the image, base64).
 *
 * - `rectangle` (two corners, in any order) is the box; `polygon` (the default of old files without
 *   shape_type), `circle` (centre and a point on the rim) and `mask` are written as their bounding box,
 *   with a note; `point`, `line`, `linestrip`, `points` have no region and are skipped.
 * - Points are pixel coordinates in the continuous frame (0..width), as labelme draws them.
 * - The image is `imagePath` beside the JSON, else an image with the JSON's stem beside it, else the
 *   embedded `imageData` (written into the output); none of those: skipped.
 * - The class list: the sorted labels found, or a names list given.
 * - Splits: a first folder named train, val (valid) or test under the labelme folder is the split; other
 *   files get one from the writer. The output name is the JSON's path under that folder with the image's
 *   extension. Shapes are reported by JSON path: `a.json: shapes[2] (label "dog")`.
 */
import { imageDimensions } from '../image.js';
import { IMAGE_EXTENSIONS } from '../labels.js';
import {
  num, plural, probeImage, readJsonFile, SourceError, splitFromName, type ConvertIssue, type IssueKind, type SourceImage, type SourceIO, type SourceSet, type Where,
} from './source.js';

function walkJson(io: SourceIO, dir: string, out: string[]): void {
  const entries = io.list(dir).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = io.path.join(dir, e.name);
    if (e.dir) walkJson(io, p, out);
    else if (e.file && e.name.toLowerCase().endsWith('.json')) out.push(p);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const BBOX_TYPES = new Set(['polygon', 'circle', 'mask']);
const NO_REGION = new Set(['point', 'points', 'line', 'linestrip']);

/** Reads labelme folders (see the file comment) through `io` (nodeSourceIO on disk, memorySourceIO in memory). Never throws for a bad file: it is reported and skipped. */
export function readLabelme(dirs: readonly string[], opts: { io: SourceIO }): SourceSet {
  const { io } = opts;
  const path = io.path;
  const issues: ConvertIssue[] = [];
  const report = (kind: IssueKind, where: Where, message: string, skipped = true) => issues.push({ kind, where, message, skipped });
  const images: SourceImage[] = [];
  for (const dir of dirs) {
    const files: string[] = [];
    try {
      walkJson(io, dir, files);
    } catch (e) {
      report('malformed', { file: dir }, `cannot list the labelme folder: ${(e as Error).message}`);
      continue;
    }
    for (const file of files) {
      let doc: unknown;
      try {
        doc = readJsonFile(io, file);
      } catch (e) {
        if (!(e instanceof SourceError)) throw e;
        report('malformed', e.where, `${e.why}; skipped`);
        continue;
      }
      if (!isObj(doc) || !Array.isArray(doc.shapes)) {
        report('malformed', { file }, 'not a labelme file (no "shapes" list); skipped');
        continue;
      }
      const rel = path.relative(dir, file).split(path.sep);
      const split = rel.length > 1 ? splitFromName(rel[0]) : undefined;
      const stemRel = (split ? rel.slice(1) : rel).join('/').replace(/\.json$/i, '');
      // the image
      const jsonDir = path.dirname(file);
      const named = typeof doc.imagePath === 'string' && doc.imagePath !== '' ? path.resolve(jsonDir, doc.imagePath.replace(/\\/g, '/')) : null;
      const beside = IMAGE_EXTENSIONS.map((ext) => file.replace(/\.json$/i, ext));
      const imageFile = [...(named ? [named] : []), ...beside].find((f) => io.isFile(f)) ?? null;
      let probe = imageFile ? probeImage(io, imageFile) : null;
      let embedded: Uint8Array | undefined;
      if ((!probe || !probe.ok) && typeof doc.imageData === 'string' && doc.imageData !== '') {
        const bytes = io.base64(doc.imageData);
        try {
          const d = imageDimensions(bytes, file);
          if (d && d.width > 0 && d.height > 0) {
            embedded = bytes;
            probe = { ok: true, width: d.width, height: d.height, format: d.format };
          }
        } catch { /* reported below as missing */ }
      }
      if (!probe || !probe.ok) {
        const why = probe && !probe.ok ? probe.why : `image ${named ?? beside[0]} not found`;
        report('missing-image', { file }, `${why}${typeof doc.imageData === 'string' && doc.imageData ? ' (and imageData is not a PNG or JPEG)' : ''}; skipped with ${plural(doc.shapes.length, 'shape')}`);
        continue;
      }
      let width = num(doc.imageWidth), height = num(doc.imageHeight);
      if (width !== undefined && height !== undefined && width > 0 && height > 0) {
        if (width !== probe.width || height !== probe.height) report('size-mismatch', { file, at: 'imageWidth' }, `the JSON says ${width}x${height}, the image is ${probe.width}x${probe.height}: points are taken as pixels of the JSON's size`, false);
      } else [width, height] = [probe.width, probe.height];
      const ext = embedded ? (probe.format === 'png' ? '.png' : '.jpg') : path.extname(imageFile!);
      const image: SourceImage = { split, file: embedded ? null : imageFile, embedded, name: `${stemRel}${ext}`, width, height, boxes: [], where: { file } };
      doc.shapes.forEach((s: unknown, k: number) => {
        const label = isObj(s) && typeof s.label === 'string' ? s.label.trim() : '';
        const where = { file, at: `shapes[${k}]${label ? ` (label ${JSON.stringify(label)})` : ''}` };
        if (!isObj(s) || !label) return report('malformed', where, 'a shape needs a "label"; skipped');
        const type = typeof s.shape_type === 'string' ? s.shape_type : s.shape_type === undefined || s.shape_type === null ? 'polygon' : '?';
        if (NO_REGION.has(type)) return report('not-a-box', where, `shape_type ${type} has no region; skipped`);
        if (type !== 'rectangle' && !BBOX_TYPES.has(type)) return report('not-a-box', where, `unknown shape_type ${JSON.stringify(s.shape_type)}; skipped`);
        const pts = Array.isArray(s.points) ? s.points.map((p) => (Array.isArray(p) && p.length === 2 ? [num(p[0]), num(p[1])] : [undefined])) : [];
        const need = type === 'polygon' ? 3 : 2;
        if (pts.length < need || pts.some((p) => p.length !== 2 || p[0] === undefined || p[1] === undefined)) return report('malformed', where, `a ${type} needs at least ${need} points [x, y] of numbers; skipped`);
        const xy = pts as [number, number][];
        let x1: number, y1: number, x2: number, y2: number;
        if (type === 'circle') {
          const r = Math.hypot(xy[1][0] - xy[0][0], xy[1][1] - xy[0][1]);
          [x1, y1, x2, y2] = [xy[0][0] - r, xy[0][1] - r, xy[0][0] + r, xy[0][1] + r];
        } else {
          // a loop, not Math.min(...xs): a polygon of a million points must not overflow the stack
          [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
          for (const [x, y] of xy) [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x), Math.max(y2, y)];
        }
        if (type !== 'rectangle') report('bounding-box', where, `${type}${type === 'polygon' ? ` of ${xy.length} points` : ''}: written as its bounding box`, false);
        image.boxes.push({ label, x1, y1, x2, y2, where });
      });
      images.push(image);
    }
  }
  return { images, issues };
}
