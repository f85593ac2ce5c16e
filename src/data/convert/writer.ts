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
 * Every box is checked here, once for all formats: a class outside the class list, zero or negative size,
 * nothing inside the image are skipped; a box reaching outside the image is clipped to it (a note);
 * an identical second box of the same image is skipped, as the dataset scanner drops duplicate lines. Every
 * file goes through the atomic writer (src/util/fs.ts); the descriptions are written last.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { symlinkAtomic, writeFileAtomic } from '../../util/fs.js';
import { DatasetError } from '../dataset.js';
import { plural, type ConvertIssue, type IssueKind, type SourceImage, type SourceSet, type SplitName, type Where } from './source.js';

export interface YoloWriteOptions {
  /** Output folder: created; it must be empty or absent. */
  out: string;
  /** The class list in order (a names file): other classes are skipped. Default: the source's declared list, else the sorted names found. */
  names?: readonly string[];
  /** Images without a split of their own: this share goes to val (default 0.1), by a hash of the name. */
  valFraction?: number;
  /** Images without a split of their own all go to this split instead. */
  split?: SplitName;
  /** Copy the images instead of linking them. */
  copyImages?: boolean;
  /** What was converted, for the comment in data.yaml (`coco instances_val2017.json`). */
  from?: string;
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

/** Every image was skipped: `issues` says why (the command prints them before the error). */
export class NothingToWriteError extends DatasetError {
  constructor(message: string, readonly issues: readonly ConvertIssue[]) {
    super(message);
  }
}

const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];
/** A box reaching outside the image by at most this (pixels) is clipped without a note. */
const CLIP_QUIET = 0.01;

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

/** FNV-1a of a string, in [0, 1): where an image without a split goes, stable when images are added. */
function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

const stemOf = (name: string): string => name.slice(0, name.length - path.posix.extname(name).length);
const px = (v: number): string => String(Math.round(v * 100) / 100);
const box = (b: { x1: number; y1: number; x2: number; y2: number }): string => `[${px(b.x1)}, ${px(b.y1)}, ${px(b.x2)}, ${px(b.y2)}]`;

/** The class table: the names given, else the source's declared list, else the sorted set of names found. */
export function classList(set: SourceSet, names?: readonly string[]): string[] {
  if (names) return [...names];
  if (set.declared) return [...set.declared];
  const found = new Set<string>();
  for (const im of set.images) for (const b of im.boxes) found.add(b.label);
  return [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Assigns splits to images without one (`split`, else `valFraction` by name hash, at least one val image). */
function assignSplits(images: readonly SourceImage[], opts: YoloWriteOptions): SplitName[] {
  const frac = opts.valFraction ?? 0.1;
  const out = images.map((im) => im.split ?? opts.split ?? (unitHash(im.name) < frac ? 'val' : 'train'));
  const free = images.map((im, i) => (im.split === undefined && opts.split === undefined ? i : -1)).filter((i) => i >= 0);
  if (frac > 0 && free.length >= 2 && !free.some((i) => out[i] === 'val')) {
    // too few images for the fraction to pick one: the lowest hash goes to val
    const pick = free.reduce((a, b) => (unitHash(images[b].name) < unitHash(images[a].name) ? b : a));
    out[pick] = 'val';
  }
  return out;
}

/** Writes the YOLO dataset (see the file comment). Throws DatasetError for a non-empty `out`. */
export function writeYoloDataset(set: SourceSet, opts: YoloWriteOptions): ConvertResult {
  const out = path.resolve(opts.out);
  checkEmptyOut(out);
  const issues: ConvertIssue[] = [...set.issues];
  const report = (kind: IssueKind, where: Where, message: string, skipped: boolean) => issues.push({ kind, where, message, skipped });
  const names = classList(set, opts.names);
  const classOf = new Map<string, number>();
  names.forEach((n, k) => {
    if (!classOf.has(n)) classOf.set(n, k);
  });
  const splits = assignSplits(set.images, opts);
  const taken = new Map<string, Where>();
  const lists: Record<SplitName, string[]> = { train: [], val: [], test: [] };
  let boxes = 0;
  set.images.forEach((im, i) => {
    const split = splits[i];
    const key = `${split}/${stemOf(im.name)}`;
    const prev = taken.get(key);
    if (prev) {
      report('duplicate', im.where, `image ${split}/${im.name}: another image (${prev.file}${prev.at ? ` ${prev.at}` : ''}) already has this name in ${split}; skipped with ${plural(im.boxes.length, 'box', 'boxes')}`, true);
      return;
    }
    taken.set(key, im.where);
    const lines: string[] = [];
    const seen = new Map<string, Where>();
    for (const b of im.boxes) {
      const cls = classOf.get(b.label);
      if (cls === undefined) {
        report('unknown-class', b.where, `class ${JSON.stringify(b.label)} is not in the class list (${names.length} classes); skipped`, true);
        continue;
      }
      if (![b.x1, b.y1, b.x2, b.y2].every(Number.isFinite)) {
        report('malformed', b.where, `box ${box(b)} is not four finite numbers; skipped`, true);
        continue;
      }
      if (!(b.x2 > b.x1 && b.y2 > b.y1)) {
        report('zero-size', b.where, `zero-size box ${box(b)} (w ${px(b.x2 - b.x1)}, h ${px(b.y2 - b.y1)} px); skipped`, true);
        continue;
      }
      const c = { x1: Math.max(0, b.x1), y1: Math.max(0, b.y1), x2: Math.min(im.width, b.x2), y2: Math.min(im.height, b.y2) };
      if (!(c.x2 > c.x1 && c.y2 > c.y1)) {
        report('outside', b.where, `box ${box(b)} lies outside the ${im.width}x${im.height} image; skipped`, true);
        continue;
      }
      const cx = ((c.x1 + c.x2) / 2 / im.width).toFixed(6), cy = ((c.y1 + c.y2) / 2 / im.height).toFixed(6);
      const w = ((c.x2 - c.x1) / im.width).toFixed(6), h = ((c.y2 - c.y1) / im.height).toFixed(6);
      if (Number(w) === 0 || Number(h) === 0) {
        report('zero-size', b.where, `box ${box(b)} is under 1e-6 of the ${im.width}x${im.height} image; skipped`, true);
        continue;
      }
      // clipped with a note, except by under CLIP_QUIET px: the rounding of labels written to 6 decimals
      const excess = Math.max(-b.x1, -b.y1, b.x2 - im.width, b.y2 - im.height);
      if (excess > CLIP_QUIET) report('clipped', b.where, `box ${box(b)} reaches outside the ${im.width}x${im.height} image: clipped to ${box(c)}`, false);
      const line = `${cls} ${cx} ${cy} ${w} ${h}`;
      const first = seen.get(line);
      if (first) {
        report('duplicate', b.where, `same class and box as ${first.at ?? `line ${first.line}`}; skipped`, true);
        continue;
      }
      seen.set(line, b.where);
      lines.push(line);
    }
    const imageFile = path.join(out, 'images', split, ...im.name.split('/'));
    const labelFile = path.join(out, 'labels', split, ...`${stemOf(im.name)}.txt`.split('/'));
    if (im.file === null) writeFileAtomic(imageFile, im.embedded ?? new Uint8Array(), { sync: false });
    else if (opts.copyImages) writeFileAtomic(imageFile, fs.readFileSync(im.file), { sync: false });
    else symlinkAtomic(path.resolve(im.file), imageFile);
    writeFileAtomic(labelFile, lines.length ? `${lines.join('\n')}\n` : '', { sync: false });
    lists[split].push(imageFile);
    boxes += lines.length;
  });
  if (!SPLITS.some((s) => lists[s].length)) throw new NothingToWriteError(`no image to write from ${opts.from ?? 'the source'}: every image was skipped`, issues);

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
  // reported by file (in the order the files were read), by line within a file, else as found
  const fileOrder = new Map<string, number>();
  for (const i of issues) if (!fileOrder.has(i.where.file)) fileOrder.set(i.where.file, fileOrder.size);
  const sorted = issues.map((i, k) => ({ i, k })).sort((a, b) => fileOrder.get(a.i.where.file)! - fileOrder.get(b.i.where.file)! || (a.i.where.line ?? 0) - (b.i.where.line ?? 0) || a.k - b.k).map((e) => e.i);
  return {
    out,
    files,
    names,
    images: { train: lists.train.length, val: lists.val.length, test: lists.test.length },
    boxes,
    issues: sorted,
    skipped: issues.filter((i) => i.skipped).length,
    remarks,
  };
}

const KIND_TEXT: Record<IssueKind, string> = {
  malformed: 'malformed',
  'missing-image': 'missing image',
  'unknown-image': 'unknown image id',
  'unknown-class': 'unknown class',
  crowd: 'crowd',
  'zero-size': 'zero-size',
  outside: 'outside the image',
  clipped: 'clipped',
  difficult: 'difficult',
  'not-a-box': 'not a box',
  'bounding-box': 'polygon as its bounding box',
  'size-mismatch': 'size differs from the image',
  duplicate: 'duplicate',
  'unsafe-path': 'unsafe file name',
  unlisted: 'in no split list',
};

/** `N kind, N kind` of the issues that are (or are not) skips, in a fixed order. */
export function countByKind(issues: readonly ConvertIssue[], skipped: boolean): string {
  const n = new Map<IssueKind, number>();
  for (const i of issues) if (i.skipped === skipped) n.set(i.kind, (n.get(i.kind) ?? 0) + 1);
  return (Object.keys(KIND_TEXT) as IssueKind[]).filter((k) => n.has(k)).map((k) => `${n.get(k)} ${KIND_TEXT[k]}`).join(', ');
}
