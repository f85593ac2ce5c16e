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
import {
  DatasetError, formatProblem, isImageName, labelCandidates, scanWith,
  type ImageRef, type LabeledImage, type Problem, type ScanOptions, type ScanReport,
} from './labels.js';

// the label format and the scan's checks live in labels.ts (no file system: in-memory datasets, e.g. a folder
// picked in a browser, use them too); re-exported here, where they always were
export {
  DatasetError, IMAGE_EXTENSIONS, boxesInPixels, describeScan, extName, formatProblem, isImageName, labelCandidates, parseLabels, scanWith,
  type ImageRef, type LabelBox, type LabeledImage, type Problem, type ProblemKind, type ScanCounts, type ScanOptions, type ScanReport, type ScanSource,
} from './labels.js';

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

// ---------------------------------------------------------------- scanning

/** Scans images on disk and their labels (see the file comment). Never throws for bad entries. */
export function scanImages(refs: readonly ImageRef[], opts: ScanOptions): ScanReport {
  return scanWith(refs, opts, {
    header: (file) => {
      const h = readImageSize(file);
      if (opts.decode) {
        checkImageSize(file, h.width, h.height); // refused before decoding, as before
        decodeImage(fs.readFileSync(file), file);
      }
      return h;
    },
    labelFile: labelPathFor,
    readText: (file) => fs.readFileSync(file, 'utf8'),
  });
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

