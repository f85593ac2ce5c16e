/**
 * COCO instances JSON out (`yoloToCoco`; the way in, `readCoco`, is coco.ts): a YOLO dataset (.data or
 * .yaml) read by the dataset scanner (so a corrupt label line is reported file:line and skipped, as `val`
 * and `train` do), one `instances_<split>.json` per split: image sizes from the image headers, file_name
 * relative to the split's common image folder (said in `info.images_dir`), category id = class +
 * `categoryOffset` (default 0: the ids `val` writes in its predictions.json, so pycocotools scores those
 * against this file as is; 1 for tools that reserve 0), image id = the file stem as a number when every
 * stem of the split is one (COCO's own names, and the ids `val` uses), else 1..N in list order.
 */
import path from 'node:path';
import { writeFileAtomic } from '../../util/fs.js';
import { loadDataset, scanSplit, type ProblemKind } from '../dataset.js';
import type { ConvertIssue, IssueKind, SplitName } from './source.js';

export interface YoloToCocoOptions {
  /** The dataset description (.data or .yaml). */
  data: string;
  /** Output folder: instances_<split>.json. */
  out: string;
  /** Only this split (default: every split the description names). */
  split?: SplitName;
  /** category_id = class + offset (default 0). */
  categoryOffset?: number;
}

export interface CocoSplitFile {
  split: SplitName;
  file: string;
  /** The folder every file_name is relative to. */
  imagesDir: string;
  images: number;
  boxes: number;
}

export interface YoloToCocoResult {
  files: CocoSplitFile[];
  issues: ConvertIssue[];
  skipped: number;
}

const SCAN_KIND: Record<ProblemKind, IssueKind> = { label: 'malformed', image: 'missing-image', list: 'missing-image', duplicate: 'duplicate' };
const r6 = (v: number): number => Math.round(v * 1e6) / 1e6;

/** The deepest folder holding every file. */
function commonDir(files: readonly string[]): string {
  let parts = path.dirname(files[0]).split(path.sep);
  for (const f of files) {
    const p = path.dirname(f).split(path.sep);
    let n = 0;
    while (n < parts.length && n < p.length && parts[n] === p[n]) n++;
    parts = parts.slice(0, n);
  }
  return parts.join(path.sep) || path.sep;
}

/** Writes COCO instances JSON for the splits of a YOLO dataset (see the file comment). */
export function yoloToCoco(opts: YoloToCocoOptions): YoloToCocoResult {
  const spec = loadDataset(opts.data);
  const offset = opts.categoryOffset ?? 0;
  const splits = opts.split ? [opts.split] : (['train', 'val', 'test'] as const).filter((s) => spec[s]);
  const issues: ConvertIssue[] = spec.warnings.map((w) => ({ kind: 'malformed', where: { file: spec.file }, message: w.replace(`${spec.file}: `, ''), skipped: false }));
  const files: CocoSplitFile[] = [];
  for (const split of splits) {
    const rep = scanSplit(spec, split);
    for (const p of rep.problems) issues.push({ kind: SCAN_KIND[p.kind], where: { file: p.file, line: p.line }, message: p.reason.endsWith('skipped') || p.kind === 'duplicate' ? p.reason : `${p.reason}; skipped`, skipped: true });
    const imagesDir = commonDir(rep.images.map((im) => im.file));
    const stems = rep.images.map((im) => path.basename(im.file, path.extname(im.file)));
    const numeric = stems.every((s) => /^\d+$/.test(s)) && new Set(stems.map(Number)).size === stems.length;
    const cocoImages: Record<string, unknown>[] = [];
    const annotations: Record<string, unknown>[] = [];
    rep.images.forEach((im, k) => {
      const id = numeric ? Number(stems[k]) : k + 1;
      cocoImages.push({ id, file_name: path.relative(imagesDir, im.file).split(path.sep).join('/'), width: im.width, height: im.height });
      for (const b of im.boxes) {
        const x = r6((b.cx - b.w / 2) * im.width), y = r6((b.cy - b.h / 2) * im.height);
        const w = r6(b.w * im.width), h = r6(b.h * im.height);
        annotations.push({ id: annotations.length + 1, image_id: id, category_id: b.classId + offset, bbox: [x, y, w, h], area: r6(w * h), iscrowd: 0, segmentation: [] });
      }
    });
    const doc = {
      info: { description: `converted by yolo-wgsl convert from ${spec.file} (${split})`, images_dir: imagesDir },
      licenses: [],
      images: cocoImages,
      annotations,
      categories: spec.names.map((name, k) => ({ id: k + offset, name, supercategory: '' })),
    };
    const file = path.join(path.resolve(opts.out), `instances_${split}.json`);
    writeFileAtomic(file, `${JSON.stringify(doc)}\n`);
    files.push({ split, file, imagesDir, images: cocoImages.length, boxes: annotations.length });
  }
  return { files, issues, skipped: issues.filter((i) => i.skipped).length };
}
