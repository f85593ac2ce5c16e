/**
 * The shared YOLO writer of `convert`: takes what a reader found (source.ts) and writes a dataset both
 * Darknet and Ultralytics read, and that `loadDataset` / `scanSplit` read back without a warning:
 *
 *   OUT/images/<split>/<name>      the image: a symbolic link to the source image (default), or a copy
 *   OUT/labels/<split>/<stem>.txt  `class cx cy w h`, normalised, 6 decimals (Darknet's format; empty = background)
 *   OUT/train.txt, val.txt, test.txt   the image lists (absolute paths, one per line, sorted)
 *   OUT/obj.names, OUT/obj.data    Darknet (AlexeyAB's names: classes, train, valid, names, backup)
 *   OUT/data.yaml                  Ultralytics (path: OUT, train/val/test: the lists, nc, names)
 *
 * Images are linked, not listed in place: both Darknet and Ultralytics find an image's labels by replacing
 * `/images/` in its path by `/labels/`, so labels for images listed where they are would have to be written
 * into the source tree; a link costs nothing (a COCO train set is 18 GB) and leaves the source untouched.
 * `copyImages` copies instead (a folder to move elsewhere, or a filesystem without symbolic links).
 *
 * What to write (the class list, splits, names, label text, every box checked once for all formats) is
 * planYoloDataset's (plan.ts), which memory.ts also turns into files in memory. Every file goes through the
 * atomic writer (src/util/fs.ts); the descriptions are written last.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { symlinkAtomic, writeFileAtomic } from '../../util/fs.js';
import { DatasetError } from '../dataset.js';
import { planYoloDataset, type YoloPlanOptions } from './plan.js';
import type { ConvertIssue, SourceSet, SplitName } from './source.js';

export interface YoloWriteOptions extends YoloPlanOptions {
  /** Output folder: created; it must be empty or absent. */
  out: string;
  /** Copy the images instead of linking them. */
  copyImages?: boolean;
}

export interface ConvertResult {
  out: string;
  /** Files written: data.yaml, obj.data, obj.names and the image lists per split. */
  files: { yaml: string; data: string; names: string; lists: Partial<Record<SplitName, string>> };
  names: string[];
  /** Images written per split. */
  images: Record<SplitName, number>;
  boxes: number;
  /** Everything reported, in the order found. */
  issues: ConvertIssue[];
  /** Issues that dropped something (the command exits 1 when any). */
  skipped: number;
  /** Lines that say which split stands in for a missing one (data.yaml needs train and val). */
  remarks: string[];
}

export { NothingToWriteError, classList, countByKind } from './plan.js';

const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

/** Refuses a non-empty output folder (nothing in it is removed or overwritten). */
export function checkEmptyOut(out: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new DatasetError(`output folder: ${(e as Error).message}`, out);
  }
  if (entries.length) throw new DatasetError(`output folder is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); convert writes into a new or empty folder only`, out);
}

/** Writes the YOLO dataset (see the file comment). Throws DatasetError for a non-empty `out`. */
export function writeYoloDataset(set: SourceSet, opts: YoloWriteOptions): ConvertResult {
  const out = path.resolve(opts.out);
  checkEmptyOut(out);
  const plan = planYoloDataset(set, opts);
  const { names, issues } = plan;
  const lists: Record<SplitName, string[]> = { train: [], val: [], test: [] };
  for (const p of plan.images) {
    const im = p.source;
    const imageFile = path.join(out, 'images', p.split, ...p.name.split('/'));
    const labelFile = path.join(out, 'labels', p.split, ...p.labelName.split('/'));
    if (im.file === null) writeFileAtomic(imageFile, im.embedded ?? new Uint8Array(), { sync: false });
    else if (opts.copyImages) writeFileAtomic(imageFile, fs.readFileSync(im.file), { sync: false });
    else symlinkAtomic(path.resolve(im.file), imageFile);
    writeFileAtomic(labelFile, p.labelText, { sync: false });
    lists[p.split].push(imageFile);
  }

  // descriptions, last: a run cut short leaves no data.yaml
  const files = { yaml: path.join(out, 'data.yaml'), data: path.join(out, 'obj.data'), names: path.join(out, 'obj.names'), lists: {} as Partial<Record<SplitName, string>> };
  for (const s of SPLITS) {
    if (!lists[s].length) continue;
    lists[s].sort();
    files.lists[s] = path.join(out, `${s}.txt`);
    writeFileAtomic(files.lists[s]!, `${lists[s].join('\n')}\n`);
  }
  // data.yaml needs train and val: a missing one is the other (said in the file and in `remarks`)
  const remarks: string[] = [];
  const listFor = (s: 'train' | 'val'): string => {
    if (files.lists[s]) return files.lists[s]!;
    const other = s === 'train' ? 'val' : 'train';
    const stand = files.lists[other] ?? files.lists.test!;
    remarks.push(`no ${s} images: ${s} is ${path.basename(stand)} in data.yaml and obj.data`);
    return stand;
  };
  const train = listFor('train'), val = listFor('val');
  const safeName = (n: string) => n.replace(/[\r\n]+/g, ' ');
  writeFileAtomic(files.names, `${names.map(safeName).join('\n')}\n`);
  const data = [`# converted by yolo-wgsl convert${opts.from ? ` from ${safeName(opts.from)}` : ''}`, `classes = ${names.length}`, `train = ${train}`, `valid = ${val}`];
  if (files.lists.test) data.push(`test = ${files.lists.test}`);
  data.push(`names = ${files.names}`, 'backup = backup/');
  writeFileAtomic(files.data, `${data.join('\n')}\n`);
  const yaml: Record<string, unknown> = { path: out, train: path.basename(train), val: path.basename(val) };
  if (files.lists.test) yaml.test = path.basename(files.lists.test);
  yaml.nc = names.length;
  yaml.names = names.map(safeName);
  const comment = [`# converted by yolo-wgsl convert${opts.from ? ` from ${safeName(opts.from)}` : ''}`, ...remarks.map((r) => `# ${r}`)].join('\n');
  writeFileAtomic(files.yaml, `${comment}\n${YAML.stringify(yaml)}`);
  return {
    out,
    files,
    names,
    images: { train: lists.train.length, val: lists.val.length, test: lists.test.length },
    boxes: plan.boxes,
    issues,
    skipped: plan.skipped,
    remarks,
  };
}
