/**
 * The form every dataset reader of `convert` produces (COCO, Pascal VOC, labelme), which the shared YOLO
 * writer (writer.ts) consumes, and the report of what was skipped or changed, with file and place.
 *
 * Boxes are pixel corners in the continuous frame of the image as its annotation describes it (0..width,
 * 0..height): each reader maps its own convention there (COCO `[x, y, w, h]` as is; VOC's 1-based corners
 * by Darknet's `voc_label.py`; labelme points as is). Geometry checks (zero size, outside the image,
 * clipping) and class lookup happen once, in the plan (plan.ts) that the writer writes.
 *
 * The readers reach files only through a `SourceIO`: `nodeSourceIO` (node_io.ts) for a folder on disk (the
 * CLI's `convert`), `memorySourceIO` (memory.ts) for files held in memory (a folder picked in a browser page).
 * This module and the readers import nothing of Node, so the browser bundle holds them.
 */
import type { ImageDimensions } from '../image.js';

/** A split of a dataset (as src/data/dataset.ts has it). */
export type SplitName = 'train' | 'val' | 'test';

/** The path functions the readers use (node:path's on disk; posix ones over names in memory). */
export interface SourcePath {
  sep: string;
  join(...parts: string[]): string;
  resolve(...parts: string[]): string;
  relative(from: string, to: string): string;
  dirname(p: string): string;
  basename(p: string, ext?: string): string;
  extname(p: string): string;
}

/** A folder entry. */
export interface SourceEntry {
  name: string;
  dir: boolean;
  file: boolean;
}

/**
 * The files a reader reads. A missing file or folder throws an Error whose `code` is 'ENOENT' (as node:fs
 * does); `imageSize` throws an Error saying why a file is not a usable image.
 */
export interface SourceIO {
  path: SourcePath;
  readText(file: string): string;
  /** The entries of a folder, in no particular order. */
  list(dir: string): SourceEntry[];
  exists(p: string): boolean;
  isFile(p: string): boolean;
  isDir(p: string): boolean;
  /** Width, height and format from the image file's header. */
  imageSize(file: string): ImageDimensions;
  /** Bytes of base64 text (labelme imageData), as Node's Buffer.from(text, 'base64') reads it. */
  base64(text: string): Uint8Array;
}

/** Where an annotation is: the file, a line (XML, text) or a JSON path (`annotations[3] (id 17)`). */
export interface Where {
  file: string;
  line?: number;
  col?: number;
  /** JSON path (and id) inside `file`. */
  at?: string;
}

/**
 * What was found. `skipped` issues dropped a box or an image (the command then exits 1); the others are
 * notes about something kept, or kept changed.
 */
export type IssueKind =
  | 'malformed' // unparsable file, or an entry without the fields it needs
  | 'missing-image' // the annotation names an image that does not exist or cannot be read
  | 'unknown-image' // a COCO annotation whose image_id is in no image entry
  | 'unknown-class' // a class name or category id outside the class list
  | 'crowd' // COCO iscrowd=1 (dropped; --keep-crowd keeps)
  | 'zero-size' // zero or negative width or height
  | 'outside' // nothing of the box inside the image
  | 'clipped' // (note) part of the box outside the image: clipped to it
  | 'difficult' // VOC difficult=1 (kept with a note; --drop-difficult drops)
  | 'not-a-box' // labelme point, line, linestrip: no region
  | 'bounding-box' // (note) labelme polygon, circle or mask written as its bounding box
  | 'size-mismatch' // (note) the annotation's image size differs from the image file's header
  | 'duplicate' // two annotations of one image, or two images with one output name
  | 'unsafe-path' // a file name that leaves the images folder (absolute, `..`)
  | 'unlisted'; // (note) VOC annotations in no ImageSets/Main list (not converted)

export interface ConvertIssue {
  kind: IssueKind;
  where: Where;
  message: string;
  /** True when a box or an image was dropped. */
  skipped: boolean;
}

/** `file:line:col: ` or `file: at: `. */
export function formatWhere(w: Where): string {
  let s = w.file;
  if (w.line) s += `:${w.line}${w.col ? `:${w.col}` : ''}`;
  if (w.at) s += `: ${w.at}`;
  return s;
}

/** One warning line: `warning: FILE:LINE: message` (skipped) or `note: ...` (kept). */
export function formatIssue(i: ConvertIssue): string {
  return `${i.skipped ? 'warning' : 'note'}: ${formatWhere(i.where)}: ${i.message}`;
}

/** A box as read: its class by name, pixel corners (see the file comment), where it was written. */
export interface SourceBox {
  label: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  where: Where;
}

/** An image as read from an annotation source. */
export interface SourceImage {
  /** The source's own split, when it has one; else the writer assigns one. */
  split?: SplitName;
  /** The image file (absolute), or null when only `embedded` bytes exist (labelme imageData). */
  file: string | null;
  embedded?: Uint8Array;
  /** Output path under images/<split>/ (posix, relative, with the image's extension). */
  name: string;
  /** The pixel frame of the boxes (the annotation's image size). */
  width: number;
  height: number;
  boxes: SourceBox[];
  /** The annotation (file, entry) of the image. */
  where: Where;
}

/** What a reader returns. */
export interface SourceSet {
  images: SourceImage[];
  /** The source's own class list in order (COCO categories by id), if it declares one. */
  declared?: string[];
  issues: ConvertIssue[];
}

// ---------------------------------------------------------------- helpers shared by the readers

/** Line and column (1-based) of a character offset. */
export function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

const POSITION = /at position (\d+)/;

/**
 * Where JSON.parse failed: V8 names the position for some errors only ("... at position 7"); for an
 * unexpected token it does not, so the first prefix of the text that is no longer the start of some valid
 * JSON is found by bisection (a prefix is such a start when parsing it fails only by running out of input).
 */
function jsonErrorOffset(text: string, message: string): number | undefined {
  const m = POSITION.exec(message);
  if (m) return Number(m[1]);
  const startsValid = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (e) {
      const msg = (e as Error).message;
      const p = POSITION.exec(msg);
      return /Unexpected end of JSON input/.test(msg) || (p !== null && Number(p[1]) >= n);
    }
  };
  let lo = 0; // startsValid(lo)
  let hi = text.length; // !startsValid(hi)
  if (startsValid(hi)) return undefined;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (startsValid(mid)) lo = mid;
    else hi = mid;
  }
  return hi - 1;
}

/** A source file that cannot be read or parsed as a whole: the file, the line and column when known. */
export class SourceError extends Error {
  override name = 'SourceError';
  constructor(readonly where: Where, readonly why: string) {
    super(`${formatWhere(where)}: ${why}`);
  }
}

/** Reads and parses a JSON file (a UTF-8 BOM is ignored); a SourceError names file:line:col when it is not JSON. */
export function readJsonFile(io: SourceIO, file: string): unknown {
  let text: string;
  try {
    text = io.readText(file);
  } catch (e) {
    throw new SourceError({ file }, `cannot read: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message.replace(/, ".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+/, '');
    const off = jsonErrorOffset(text, (e as Error).message);
    const at = off === undefined ? {} : lineCol(text, Math.min(off, text.length));
    throw new SourceError({ file, ...at }, `not valid JSON: ${msg}`);
  }
}

export type ImageProbe = { ok: true; width: number; height: number; format: 'png' | 'jpeg' } | { ok: false; why: string };

/** Width, height and format from the image file's header, or why it cannot be used. */
export function probeImage(io: SourceIO, file: string): ImageProbe {
  try {
    if (!io.exists(file)) return { ok: false, why: `image ${file} not found` };
    if (io.isDir(file)) return { ok: false, why: `image ${file} is a directory` };
    const h = io.imageSize(file);
    if (!(h.width > 0 && h.height > 0)) return { ok: false, why: `image ${file} has a zero size in its header` };
    return { ok: true, width: h.width, height: h.height, format: h.format };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, why: `image ${file} not found` };
    return { ok: false, why: `image ${file} unreadable: ${(e as Error).message}` };
  }
}

/**
 * A relative output path from a name found in an annotation: `/` separators, no `.` segments; null when it
 * is absolute, climbs out with `..` (the writer never writes outside its folder) or has control characters.
 */
export function safeRelative(name: string): string | null {
  const p = name.replace(/\\/g, '/');
  // control characters (a newline would split a line of the image lists) are refused with the rest
  if (p === '' || p.startsWith('/') || /^[a-zA-Z]:/.test(p) || /[\x00-\x1f\x7f]/.test(p)) return null;
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.includes('..')) return null;
  return parts.join('/');
}

/** The last component of a `/` path without its extension (node:path's posix basename(p, extname(p))). */
function stem(name: string): string {
  const trimmed = name.replace(/\/+$/, '');
  const base = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? base : base.slice(0, dot);
}

/** The split a file or folder name stands for: `train`, `val` (also `valid`), `test` as a word of it. */
export function splitFromName(name: string): SplitName | undefined {
  const words = stem(name).toLowerCase().split(/[^a-z]+/);
  if (words.includes('train')) return 'train';
  if (words.includes('val') || words.includes('valid') || words.includes('validation')) return 'val';
  if (words.includes('test')) return 'test';
  return undefined;
}

/** A finite number from a JSON or XML value (numeric strings too); undefined otherwise. */
export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** `1 object`, `3 objects`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
