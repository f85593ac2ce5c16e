/**
 * YOLO labels and the dataset scan's checks, with no file system: the label format, the label-file rule,
 * the problems a scan reports (file:line: why) and the scan itself over a ScanSource. src/data/dataset.ts
 * runs them on files on disk (the CLI, the library's train / val), src/data/memory.ts on files held in
 * memory (a folder picked in a browser); both report the same messages. Browser-safe (no Node import).
 */
import { checkImageSize, type ImageDimensions } from './image.js';

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

/** node:path's posix extname, without node:path: the last `.suffix` of the last path component ('' for none or a dotfile). */
export function extName(p: string): string {
  const base = p.slice(p.lastIndexOf('/') + 1);
  const i = base.lastIndexOf('.');
  return i <= 0 || base === '..' ? '' : base.slice(i);
}

export function isImageName(f: string): boolean {
  return IMAGE_EXTENSIONS.includes(extName(f).toLowerCase());
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

/**
 * Candidate label files of an image, in the order tried: the last `images` (or `JPEGImages`) folder of
 * the path replaced by `labels`, then beside the image; extension .txt.
 */
export function labelCandidates(image: string): string[] {
  const ext = extName(image);
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

/**
 * Where a scan reads from: the file system (src/data/dataset.ts scanImages) or files held in memory
 * (src/data/memory.ts). Each function throws for what it cannot read; an error with code 'ENOENT' reads as
 * "image not found".
 */
export interface ScanSource {
  /** The image's size from its PNG / JPEG header (and, when the scan asks to, a full decode). */
  header(file: string): ImageDimensions;
  /** The image's label file (the first of labelCandidates that exists), or null. */
  labelFile(image: string): string | null;
  readText(file: string): string;
}

/** Scans images and their labels (the checks of src/data/dataset.ts's file comment) read through `io`. Never throws for bad entries. */
export function scanWith(refs: readonly ImageRef[], opts: ScanOptions, io: ScanSource): ScanReport {
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
    let header: ImageDimensions;
    try {
      header = io.header(ref.file);
      // a decompression bomb (or a zero size) is refused here, before any loader decodes it
      checkImageSize(ref.file, header.width, header.height);
    } catch (e) {
      counts.corruptImages++;
      const where = ref.line ? ` (listed at ${ref.from}:${ref.line})` : '';
      const msg = (e as { code?: string }).code === 'ENOENT' ? 'image not found' : `unreadable image: ${(e as Error).message.replace(`${ref.file}: `, '')}`;
      report({ kind: 'image', file: ref.file, reason: `${msg}${where}; skipped` });
      continue;
    }
    const labelFile = io.labelFile(ref.file);
    let boxes: LabelBox[] = [];
    if (labelFile) {
      let text: string | null = null;
      try {
        text = io.readText(labelFile);
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
