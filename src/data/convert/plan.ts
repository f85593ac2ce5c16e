/**
 * What `convert` writes, decided without writing: the class list, each image's split and output name, and
 * each label file's text, with every box checked once for all formats (a class outside the class list, zero
 * or negative size, nothing inside the image are skipped; a box reaching outside the image is clipped to it,
 * with a note; an identical second box of the same image is skipped, as the dataset scanner drops duplicate
 * lines). writer.ts writes a plan to disk (the CLI); memory.ts turns one into files in memory (a browser page
 * training on a COCO or VOC export), so both hold byte-identical labels. Browser-safe (no Node import).
 */
import { DatasetError, extName } from '../labels.js';
import { plural, type ConvertIssue, type IssueKind, type SourceImage, type SourceSet, type SplitName, type Where } from './source.js';

export interface YoloPlanOptions {
  /** The class list in order (a names file): other classes are skipped. Default: the source's declared list, else the sorted names found. */
  names?: readonly string[];
  /** Images without a split of their own: this share goes to val (default 0.1), by a hash of the name. */
  valFraction?: number;
  /** Images without a split of their own all go to this split instead. */
  split?: SplitName;
  /** What was converted (`coco instances_val2017.json`), for messages. */
  from?: string;
}

/** One image of the output. */
export interface PlannedImage {
  split: SplitName;
  /** Path under images/<split>/ (posix, with the image's extension). */
  name: string;
  /** Path under labels/<split>/: the name's stem + `.txt`. */
  labelName: string;
  /** The label file's text: `class cx cy w h` lines, 6 decimals, each ending in a newline ('' for a background). */
  labelText: string;
  boxes: number;
  /** Where the image comes from (its file, or embedded bytes). */
  source: SourceImage;
}

export interface YoloPlan {
  names: string[];
  /** In the source's order. */
  images: PlannedImage[];
  /** Images per split. */
  counts: Record<SplitName, number>;
  boxes: number;
  /** Everything reported (the reader's and the checks'), by file in the order the files were read, then by line. */
  issues: ConvertIssue[];
  /** Issues that dropped something. */
  skipped: number;
}

/** Every image was skipped: `issues` says why (the command prints them before the error). */
export class NothingToWriteError extends DatasetError {
  constructor(message: string, readonly issues: readonly ConvertIssue[]) {
    super(message);
  }
}

/** A box reaching outside the image by at most this (pixels) is clipped without a note. */
const CLIP_QUIET = 0.01;
const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

/** FNV-1a of a string, in [0, 1): where an image without a split goes, stable when images are added. */
function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

/** The name without its extension (node:path's posix extname rule). */
export const stemOf = (name: string): string => name.slice(0, name.length - extName(name).length);

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
function assignSplits(images: readonly SourceImage[], opts: YoloPlanOptions): SplitName[] {
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

/** Plans the YOLO dataset (see the file comment). Throws NothingToWriteError when every image is skipped. */
export function planYoloDataset(set: SourceSet, opts: YoloPlanOptions = {}): YoloPlan {
  const issues: ConvertIssue[] = [...set.issues];
  const report = (kind: IssueKind, where: Where, message: string, skipped: boolean) => issues.push({ kind, where, message, skipped });
  const names = classList(set, opts.names);
  const classOf = new Map<string, number>();
  names.forEach((n, k) => {
    if (!classOf.has(n)) classOf.set(n, k);
  });
  const splits = assignSplits(set.images, opts);
  const taken = new Map<string, Where>();
  const images: PlannedImage[] = [];
  const counts: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
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
    images.push({ split, name: im.name, labelName: `${stemOf(im.name)}.txt`, labelText: lines.length ? `${lines.join('\n')}\n` : '', boxes: lines.length, source: im });
    counts[split]++;
    boxes += lines.length;
  });
  if (!SPLITS.some((s) => counts[s])) throw new NothingToWriteError(`no image to write from ${opts.from ?? 'the source'}: every image was skipped`, issues);
  // reported by file (in the order the files were read), by line within a file, else as found
  const fileOrder = new Map<string, number>();
  for (const i of issues) if (!fileOrder.has(i.where.file)) fileOrder.set(i.where.file, fileOrder.size);
  const sorted = issues.map((i, k) => ({ i, k })).sort((a, b) => fileOrder.get(a.i.where.file)! - fileOrder.get(b.i.where.file)! || (a.i.where.line ?? 0) - (b.i.where.line ?? 0) || a.k - b.k).map((e) => e.i);
  return { names, images, counts, boxes, issues: sorted, skipped: issues.filter((i) => i.skipped).length };
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
