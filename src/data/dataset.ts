/**
 * Dataset descriptions and YOLO labels, shared by evaluation and training.
 *
 * Two description forms:
 * - Darknet `.data` (key = value lines; `#`/`;` comments): classes, train, valid, names, backup (others
 *   kept in `extra`). Paths are relative to the working folder as Darknet reads them, and also tried
 *   relative to the .data file's folder (first existing wins).
 * - Ultralytics-style YAML: path (root; relative to the YAML file's folder, then the working folder),
 *   train / val / test (each a folder of images, a list file, an image, or a list of those; relative to
 *   `path`, then the YAML folder, then the working folder), nc, names (a list, or a map index -> name).
 *
 * Images are PNG or JPEG. A folder is searched recursively (sorted). A list file names one image per line:
 * absolute, `./x` relative to the list's folder (Ultralytics), else relative to the working folder
 * (Darknet), the list's folder or the dataset root, first existing.
 *
 * Labels: YOLO txt, one object per line `class cx cy w h` normalised to the image (a line with more
 * numbers `class x1 y1 x2 y2 x3 y3 ...` is an Ultralytics polygon; its bounding box is used). The label
 * file of an image is found as both ecosystems do: the last `/images/` folder of the path replaced by
 * `/labels/` (Darknet also `/JPEGImages/`), extension `.txt`; failing that, beside the image. No label
 * file means a background image (no objects), as for an empty one.
 *
 * Scanning validates everything and never throws for a bad entry: each corrupt label line (wrong field
 * count, non-numeric, class out of range, coordinate outside [0, 1], zero size) is reported as
 * file:line: why and skipped, exact duplicate lines are dropped (as Ultralytics does), and an unreadable
 * image (missing, not PNG/JPEG, truncated header) is reported and skipped. Only a split with no usable
 * image at all is an error (DatasetError naming the description file and line). Image sizes come from
 * the PNG IHDR / JPEG SOF headers without decoding the image.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, isMap, isScalar } from 'yaml';
import { checkImageSize, decodeImage, ImageError, imageDimensions, type ImageDimensions } from './image.js';
import { MAX_CLASSES } from '../util/validate.js';

export class DatasetError extends Error {
  readonly file?: string;
  readonly line?: number;
  constructor(message: string, file?: string, line?: number) {
    super(file ? `${file}${line ? `:${line}` : ''}: ${message}` : message);
    this.name = 'DatasetError';
    this.file = file;
    this.line = line;
  }
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export type SplitName = 'train' | 'val' | 'test';

/** Where a split's images come from: resolved folders, list files or image files. */
export interface SplitSource {
  entries: string[];
  /** Where the spec names it (file:line). */
  file: string;
  line?: number;
}

export interface DatasetSpec {
  /** The description file. */
  file: string;
  format: 'darknet' | 'yaml';
  /** Dataset root (yaml `path`; the .data file's folder for Darknet). */
  root: string;
  nc: number;
  names: string[];
  train?: SplitSource;
  val?: SplitSource;
  test?: SplitSource;
  /** Darknet backup folder. */
  backup?: string;
  /** Other keys as read. */
  extra: Record<string, unknown>;
  /** Non-fatal remarks made while reading (names/classes mismatch, ...). */
  warnings: string[];
}

/** An image to scan and where it was listed. */
export interface ImageRef {
  file: string;
  /** The list file (or spec) and line that named it. */
  from?: string;
  line?: number;
}

export interface LabelBox {
  classId: number;
  /** Centre and size normalised to the image. */
  cx: number;
  cy: number;
  w: number;
  h: number;
  /** Line in the label file (1-based). */
  line: number;
}

export interface LabeledImage {
  file: string;
  /** The label file read, null when none exists (background). */
  labelFile: string | null;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  boxes: LabelBox[];
}

export type ProblemKind = 'label' | 'image' | 'list' | 'duplicate';

export interface Problem {
  kind: ProblemKind;
  file: string;
  line?: number;
  reason: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}${p.line ? `:${p.line}` : ''}: ${p.reason}`;
}

export interface ScanCounts {
  /** Images named by the split. */
  listed: number;
  /** Readable images (kept). */
  images: number;
  /** Kept images with a label file. */
  labeled: number;
  /** Kept images without a label file. */
  missingLabels: number;
  /** Kept images with a label file and no valid box. */
  emptyLabels: number;
  /** Kept images without any valid box (missing + empty labels). */
  backgrounds: number;
  boxes: number;
  /** Valid boxes per class. */
  perClass: number[];
  /** Images containing each class. */
  imagesPerClass: number[];
  corruptImages: number;
  corruptLines: number;
  duplicates: number;
}

export interface ScanReport {
  images: LabeledImage[];
  counts: ScanCounts;
  problems: Problem[];
}

// ---------------------------------------------------------------- paths

function exists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The first existing of p resolved against each base (p itself when absolute); else p against the first base. */
export function resolveFirst(p: string, bases: readonly string[]): string {
  if (path.isAbsolute(p)) return p;
  for (const b of bases) {
    const q = path.resolve(b, p);
    if (exists(q)) return q;
  }
  return path.resolve(bases[0] ?? '.', p);
}

function isImageName(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
}

/**
 * Candidate label files of an image, in the order tried: the last `images` (or `JPEGImages`) folder of
 * the path replaced by `labels`, then beside the image; extension .txt.
 */
export function labelCandidates(image: string): string[] {
  const ext = path.extname(image);
  const stemPath = ext ? image.slice(0, -ext.length) : image;
  const out: string[] = [];
  const parts = stemPath.split(/([/\\])/);
  for (const dirName of ['images', 'JPEGImages']) {
    // parts alternate name, separator; the last element is the file stem
    for (let i = parts.length - 3; i >= 0; i -= 2) {
      if (parts[i] === dirName) {
        const q = [...parts];
        q[i] = 'labels';
        out.push(`${q.join('')}.txt`);
        break;
      }
    }
  }
  out.push(`${stemPath}.txt`);
  return [...new Set(out)];
}

/** The label file of an image (first existing candidate), or null. */
export function labelPathFor(image: string): string | null {
  for (const c of labelCandidates(image)) if (exists(c)) return c;
  return null;
}

// ---------------------------------------------------------------- descriptions

function readNamesFile(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Reads a Darknet .data file. */
export function loadDarknetData(file: string, cwd = process.cwd()): DatasetSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DatasetError(`cannot read: ${(e as Error).message}`, file);
  }
  const dir = path.dirname(path.resolve(file));
  const bases = [cwd, dir];
  const kv = new Map<string, { value: string; line: number }>();
  const warnings: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new DatasetError(`expected key = value, got "${line}"`, file, i + 1);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (kv.has(key)) warnings.push(`${file}:${i + 1}: ${key} repeated (the last one wins)`);
    kv.set(key, { value, line: i + 1 });
  });
  let names: string[] = [];
  const namesKv = kv.get('names');
  if (namesKv) {
    const nf = resolveFirst(namesKv.value, bases);
    try {
      names = readNamesFile(nf);
    } catch (e) {
      throw new DatasetError(`names file ${namesKv.value}: ${(e as Error).message}`, file, namesKv.line);
    }
  }
  const classesKv = kv.get('classes');
  let nc = names.length;
  if (classesKv) {
    const v = Number(classesKv.value);
    if (!Number.isInteger(v) || v <= 0 || v > MAX_CLASSES) throw new DatasetError(`classes must be a positive integer (at most ${MAX_CLASSES}), got "${classesKv.value}"`, file, classesKv.line);
    nc = v;
  }
  if (nc === 0) throw new DatasetError('neither classes= nor a names= file with class names', file);
  if (names.length && names.length !== nc) warnings.push(`${file}: classes=${nc} but ${names.length} names in ${namesKv!.value}`);
  names = Array.from({ length: nc }, (_, k) => names[k] ?? String(k));
  const split = (key: string): SplitSource | undefined => {
    const e = kv.get(key);
    return e ? { entries: [resolveFirst(e.value, bases)], file, line: e.line } : undefined;
  };
  const extra: Record<string, unknown> = {};
  for (const [k, v] of kv) if (!['classes', 'train', 'valid', 'test', 'names', 'backup'].includes(k)) extra[k] = v.value;
  const backup = kv.get('backup');
  return {
    file,
    format: 'darknet',
    root: dir,
    nc,
    names,
    train: split('train'),
    val: split('valid'),
    test: split('test'),
    backup: backup ? resolveFirst(backup.value, bases) : undefined,
    extra,
    warnings,
  };
}

/** Reads an Ultralytics-style dataset YAML. */
export function loadYamlData(file: string, cwd = process.cwd()): DatasetSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DatasetError(`cannot read: ${(e as Error).message}`, file);
  }
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const err = doc.errors[0];
    throw new DatasetError(`YAML: ${err.message.split('\n')[0]}`, file, err.linePos?.[0].line);
  }
  const rootNode = doc.contents;
  if (!isMap(rootNode)) throw new DatasetError('expected a mapping (path, train, val, nc, names)', file);
  const lineOf = (key: string): number | undefined => {
    const pair = rootNode.items.find((p) => isScalar(p.key) && p.key.value === key);
    const r = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  const data = doc.toJS() as Record<string, unknown>;
  const dir = path.dirname(path.resolve(file));
  const warnings: string[] = [];
  let root = dir;
  if (data.path !== undefined && data.path !== null && data.path !== '') {
    if (typeof data.path !== 'string') throw new DatasetError('path must be a string', file, lineOf('path'));
    root = resolveFirst(data.path, [dir, cwd]);
  }
  // names
  let names: string[] = [];
  const rawNames = data.names;
  if (Array.isArray(rawNames)) names = rawNames.map((n) => String(n));
  else if (rawNames && typeof rawNames === 'object') {
    const m = rawNames as Record<string, unknown>;
    const keys = Object.keys(m).map((k) => Number(k));
    if (keys.some((k) => !Number.isInteger(k) || k < 0)) throw new DatasetError('names map keys must be class indices 0, 1, ...', file, lineOf('names'));
    const n = Math.max(-1, ...keys) + 1;
    names = Array.from({ length: n }, (_, k) => (m[String(k)] !== undefined ? String(m[String(k)]) : String(k)));
    if (keys.length !== n) warnings.push(`${file}:${lineOf('names')}: names map has gaps (missing indices named by number)`);
  } else if (rawNames !== undefined && rawNames !== null) throw new DatasetError('names must be a list or a map index -> name', file, lineOf('names'));
  let nc = names.length;
  if (data.nc !== undefined && data.nc !== null) {
    const v = Number(data.nc);
    if (!Number.isInteger(v) || v <= 0 || v > MAX_CLASSES) throw new DatasetError(`nc must be a positive integer (at most ${MAX_CLASSES}), got ${JSON.stringify(data.nc)}`, file, lineOf('nc'));
    if (names.length && names.length !== v) throw new DatasetError(`nc: ${v} but names lists ${names.length} classes`, file, lineOf('nc'));
    nc = v;
  }
  if (nc === 0) throw new DatasetError('neither nc nor names', file);
  names = Array.from({ length: nc }, (_, k) => names[k] ?? `class${k}`);
  const split = (key: string): SplitSource | undefined => {
    const v = data[key];
    if (v === undefined || v === null || v === '') return undefined;
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => typeof x === 'string')) throw new DatasetError(`${key} must be a path or a list of paths`, file, lineOf(key));
    return { entries: (list as string[]).map((p) => resolveFirst(p, [root, dir, cwd])), file, line: lineOf(key) };
  };
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) if (!['path', 'train', 'val', 'test', 'nc', 'names'].includes(k)) extra[k] = v;
  return { file, format: 'yaml', root, nc, names, train: split('train'), val: split('val'), test: split('test'), extra, warnings };
}

/** Reads a dataset description: .yaml/.yml as Ultralytics YAML, anything else as Darknet .data. */
export function loadDataset(file: string, cwd = process.cwd()): DatasetSpec {
  if (!exists(file)) throw new DatasetError('dataset description not found', file);
  const ext = path.extname(file).toLowerCase();
  return ext === '.yaml' || ext === '.yml' ? loadYamlData(file, cwd) : loadDarknetData(file, cwd);
}

// ---------------------------------------------------------------- image lists

function walkImages(dir: string, out: string[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkImages(p, out);
    else if (isImageName(e.name)) out.push(p);
  }
}

/**
 * The images of a split source: folders searched recursively (sorted), image files as is, list files
 * line by line. Paths in list files that exist nowhere are still returned (scanning reports them with the
 * list's file:line). `problems` receives unreadable list files.
 */
export function listSourceImages(src: SplitSource, opts: { root?: string; cwd?: string; problems?: Problem[] } = {}): ImageRef[] {
  const cwd = opts.cwd ?? process.cwd();
  const out: ImageRef[] = [];
  for (const entry of src.entries) {
    let st: fs.Stats;
    try {
      st = fs.statSync(entry);
    } catch {
      opts.problems?.push({ kind: 'list', file: src.file, line: src.line, reason: `${entry} does not exist` });
      continue;
    }
    if (st.isDirectory()) {
      const files: string[] = [];
      walkImages(entry, files);
      out.push(...files.map((file) => ({ file, from: entry })));
      continue;
    }
    if (isImageName(entry)) {
      out.push({ file: entry, from: src.file, line: src.line });
      continue;
    }
    let text: string;
    try {
      text = fs.readFileSync(entry, 'utf8');
    } catch (e) {
      opts.problems?.push({ kind: 'list', file: entry, reason: `cannot read list file: ${(e as Error).message}` });
      continue;
    }
    const listDir = path.dirname(entry);
    text.split(/\r?\n/).forEach((raw, i) => {
      const l = raw.trim();
      if (!l || l.startsWith('#')) return;
      let file: string;
      if (path.isAbsolute(l)) file = l;
      else if (l.startsWith('./') || l.startsWith('.\\')) file = path.join(listDir, l.slice(2));
      else file = resolveFirst(l, [cwd, listDir, ...(opts.root ? [opts.root] : [])]);
      out.push({ file, from: entry, line: i + 1 });
    });
  }
  return out;
}

// ---------------------------------------------------------------- image headers

export type ImageHeader = ImageDimensions;

/** Width and height from the PNG IHDR or the JPEG SOF marker, reading only the bytes needed. */
export function readImageSize(file: string): ImageHeader {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    // the header is in the first bytes of a PNG; a JPEG's frame header follows its APP segments (EXIF,
    // ICC: up to a few hundred KB), so read more only while the header is cut short by what was read
    for (const n of [4096, 256 * 1024, size]) {
      const b = Buffer.alloc(Math.min(n, size));
      const got = fs.readSync(fd, b, 0, b.length, 0);
      const head = b.subarray(0, got);
      let dims: ImageDimensions | null;
      try {
        dims = imageDimensions(head, file);
      } catch (e) {
        if (got < size && e instanceof ImageError && /truncated/.test(e.message)) continue;
        throw new Error((e as Error).message.replace(`${file}: `, ''));
      }
      if (!dims) throw new Error('not a PNG or JPEG file');
      return dims;
    }
    throw new Error('no image header');
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- labels

/**
 * Parses YOLO label text. Returns the valid boxes and a problem per skipped line (file:line: why).
 * `nc` bounds the class ids.
 */
export function parseLabels(text: string, file: string, nc: number): { boxes: LabelBox[]; problems: Problem[] } {
  const boxes: LabelBox[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    if (!t) return;
    const bad = (reason: string) => problems.push({ kind: 'label', file, line, reason });
    const fields = t.split(/\s+/);
    const isPolygon = fields.length > 6 && fields.length % 2 === 1;
    if (fields.length !== 5 && !isPolygon) return bad(`expected 5 fields "class cx cy w h" (or a polygon "class x1 y1 x2 y2 x3 y3 ..."), got ${fields.length}`);
    const nums = fields.map((s) => Number(s));
    const nonNum = fields.findIndex((s, k) => s === '' || !Number.isFinite(nums[k]));
    if (nonNum >= 0) return bad(`non-numeric field ${nonNum + 1} "${fields[nonNum]}"`);
    const cls = nums[0];
    if (!Number.isInteger(cls)) return bad(`class "${fields[0]}" is not an integer`);
    if (cls < 0 || cls >= nc) return bad(`class ${cls} out of range 0..${nc - 1}`);
    let cx: number, cy: number, w: number, h: number;
    const names = isPolygon ? null : ['cx', 'cy', 'w', 'h'];
    const outside = nums.slice(1).findIndex((v) => v < 0 || v > 1);
    if (outside >= 0) return bad(`${names ? names[outside] : `coordinate ${outside + 1}`} = ${fields[outside + 1]} outside [0, 1]`);
    if (isPolygon) {
      const xs = nums.slice(1).filter((_, k) => k % 2 === 0);
      const ys = nums.slice(1).filter((_, k) => k % 2 === 1);
      const x1 = Math.min(...xs), x2 = Math.max(...xs), y1 = Math.min(...ys), y2 = Math.max(...ys);
      cx = (x1 + x2) / 2;
      cy = (y1 + y2) / 2;
      w = x2 - x1;
      h = y2 - y1;
    } else [cx, cy, w, h] = nums.slice(1);
    if (w === 0 || h === 0) return bad(`zero-size box (w = ${w}, h = ${h})`);
    const key = fields.join(' ');
    const prev = seen.get(key);
    if (prev !== undefined) {
      problems.push({ kind: 'duplicate', file, line, reason: `duplicate of line ${prev} (dropped)` });
      return;
    }
    seen.set(key, line);
    boxes.push({ classId: cls, cx, cy, w, h, line });
  });
  return { boxes, problems };
}

// ---------------------------------------------------------------- scanning

export interface ScanOptions {
  /** Number of classes (class ids must be below). */
  nc: number;
  /** Called with each warning line as it is found. */
  log?: (line: string) => void;
  /** Decode every image fully to catch corrupt image data (slow); default: headers only. */
  decode?: boolean;
}

/** Scans images and their labels (see the file comment). Never throws for bad entries. */
export function scanImages(refs: readonly ImageRef[], opts: ScanOptions): ScanReport {
  const nc = opts.nc;
  const problems: Problem[] = [];
  const report = (p: Problem) => {
    problems.push(p);
    opts.log?.(`warning: ${formatProblem(p)}`);
  };
  const counts: ScanCounts = {
    listed: refs.length,
    images: 0,
    labeled: 0,
    missingLabels: 0,
    emptyLabels: 0,
    backgrounds: 0,
    boxes: 0,
    perClass: new Array(nc).fill(0),
    imagesPerClass: new Array(nc).fill(0),
    corruptImages: 0,
    corruptLines: 0,
    duplicates: 0,
  };
  const images: LabeledImage[] = [];
  for (const ref of refs) {
    let header: ImageHeader;
    try {
      header = readImageSize(ref.file);
      // a decompression bomb (or a zero size) is refused here, before any loader decodes it
      checkImageSize(ref.file, header.width, header.height);
      if (opts.decode) decodeImage(fs.readFileSync(ref.file), ref.file);
    } catch (e) {
      counts.corruptImages++;
      const where = ref.line ? ` (listed at ${ref.from}:${ref.line})` : '';
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'image not found' : `unreadable image: ${(e as Error).message.replace(`${ref.file}: `, '')}`;
      report({ kind: 'image', file: ref.file, reason: `${msg}${where}; skipped` });
      continue;
    }
    const labelFile = labelPathFor(ref.file);
    let boxes: LabelBox[] = [];
    if (labelFile) {
      let text: string | null = null;
      try {
        text = fs.readFileSync(labelFile, 'utf8');
      } catch (e) {
        report({ kind: 'label', file: labelFile, reason: `cannot read label file: ${(e as Error).message}` });
      }
      if (text !== null) {
        const parsed = parseLabels(text, labelFile, nc);
        boxes = parsed.boxes;
        for (const p of parsed.problems) {
          if (p.kind === 'duplicate') counts.duplicates++;
          else counts.corruptLines++;
          report(p);
        }
      }
    }
    counts.images++;
    if (labelFile) counts.labeled++;
    else counts.missingLabels++;
    if (labelFile && boxes.length === 0) counts.emptyLabels++;
    if (boxes.length === 0) counts.backgrounds++;
    counts.boxes += boxes.length;
    const present = new Set<number>();
    for (const b of boxes) {
      counts.perClass[b.classId]++;
      present.add(b.classId);
    }
    for (const c of present) counts.imagesPerClass[c]++;
    images.push({ file: ref.file, labelFile, width: header.width, height: header.height, format: header.format, boxes });
  }
  return { images, counts, problems };
}

/**
 * Scans one split of a dataset description. Throws DatasetError (naming the description's file:line of
 * the split) when the split is missing or has no usable image.
 */
export function scanSplit(spec: DatasetSpec, split: SplitName, opts: Omit<ScanOptions, 'nc'> & { cwd?: string } = {}): ScanReport {
  const src = spec[split];
  const key = spec.format === 'darknet' && split === 'val' ? 'valid' : split;
  if (!src) throw new DatasetError(`no ${key} split in the dataset description`, spec.file);
  const listProblems: Problem[] = [];
  const refs = listSourceImages(src, { root: spec.root, cwd: opts.cwd, problems: listProblems });
  for (const p of listProblems) opts.log?.(`warning: ${formatProblem(p)}`);
  const rep = scanImages(refs, { nc: spec.nc, log: opts.log, decode: opts.decode });
  rep.problems.unshift(...listProblems);
  if (rep.images.length === 0) {
    const why = refs.length === 0 ? `${key} names no images (${src.entries.join(', ')})` : `none of the ${refs.length} images of ${key} is usable (first: ${formatProblem(rep.problems.find((p) => p.kind === 'image') ?? rep.problems[0])})`;
    throw new DatasetError(why, src.file, src.line);
  }
  return rep;
}

/** Text lines summarising a scan: counts, boxes per class, and how many problems of each kind. */
export function describeScan(rep: ScanReport, names: readonly string[]): string[] {
  const c = rep.counts;
  const lines = [
    `${c.images} images (${c.listed} listed, ${c.corruptImages} unreadable), ${c.labeled} with labels, ${c.backgrounds} backgrounds (${c.missingLabels} without a label file, ${c.emptyLabels} empty), ${c.boxes} boxes`,
  ];
  if (c.corruptLines || c.duplicates) lines.push(`${c.corruptLines} corrupt label lines skipped, ${c.duplicates} duplicate lines dropped`);
  const w = Math.max(5, ...names.map((n) => n.length));
  c.perClass.forEach((n, k) => lines.push(`  ${(names[k] ?? String(k)).padEnd(w)} ${String(n).padStart(7)} boxes in ${String(c.imagesPerClass[k]).padStart(6)} images`));
  return lines;
}

/** Boxes of a labeled image in pixel corners of the image (continuous coordinates). */
export function boxesInPixels(img: LabeledImage): { x1: number; y1: number; x2: number; y2: number; classId: number }[] {
  return img.boxes.map((b) => ({
    x1: (b.cx - b.w / 2) * img.width,
    y1: (b.cy - b.h / 2) * img.height,
    x2: (b.cx + b.w / 2) * img.width,
    y2: (b.cy + b.h / 2) * img.height,
    classId: b.classId,
  }));
}
