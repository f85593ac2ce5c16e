/**
 * A dataset held in memory: files given as name -> bytes (a folder picked or dropped in a browser page, or
 * any caller's own), checked with the same rules and messages as a dataset on disk (src/data/labels.ts:
 * bad label lines as file:line: why, unreadable images skipped), and its training batches
 * (MemoryBatchSource, the trainer's BatchSource). Browser-safe: no Node import; images are decoded by the
 * caller's `decode` (the browser's decoder in the page, pngjs / jpeg-js in Node).
 *
 * - **Layout**: images are the PNG / JPEG files; an image's label file is found by the rule of a dataset on
 *   disk (labels.ts labelCandidates: `/images/` -> `/labels/`, else beside the image, `.txt`). Names are
 *   compared after turning `\` into `/` and dropping a leading `./` or `/`.
 * - **Other formats**: files without YOLO labels that hold a COCO instances JSON, a Pascal VOC tree or
 *   labelme JSON are converted first, in memory, as `yolo-wgsl convert` converts them (src/data/convert/
 *   memory.ts: the same readers and label text; the converter's messages in `conversion.issues`; the class
 *   names from the annotations), then checked and split like YOLO files.
 * - **Split**: images under a folder named `train` go to train and under `val` / `valid` / `validation` to
 *   val (Ultralytics' and Roboflow's exports), `test` folders are left out; when no image is under a val
 *   folder (or none under a train folder), all images are split by a seeded shuffle, `valFraction` of them
 *   (default 0.1, at least 1 when there are 2 or more images) to val.
 * - **Classes**: the number of classes is the caller's (the cfg's heads); names come from `names`, else a
 *   `*.names` or `classes.txt` file (one per line), else a `data.yaml` / `*.yaml`'s `names:` (a flow list
 *   `[a, b]`, a block list `- a` or a map `0: a`; only that key is read), else the class numbers.
 * - **Batches**: exactly the batches src/data/loader.ts builds over the same images in the same order with
 *   the same seed (both run src/data/build.ts buildBatchWith: same epoch order, same per-slot random
 *   streams, same augmentation), built in the caller's thread when asked for. Decoding is asynchronous in a
 *   browser, so a batch is first built with stand-ins of the right size for images not decoded yet (the
 *   random draws depend on image sizes, not pixels), the missing ones are decoded, and the batch is built
 *   again; decoded images are kept up to `cacheMB` (least recently used dropped first).
 */
import { mixSeed, type AugmentConfig, type Truth } from './augment.js';
import { buildBatchWith, epochOrder, type BatchJob, type BuildContext, type BuiltBatch } from './build.js';
import { imageDimensions, makeImage, type Image } from './image.js';
import { DatasetError, describeScan, formatProblem, isImageName, labelCandidates, scanWith, type LabeledImage, type ScanReport } from './labels.js';
import { convertFiles, type ConvertFilesOptions, type DatasetFormat, type FilesConversion } from './convert/memory.js';
import { formatIssue } from './convert/source.js';
import type { Batch, BatchSource } from '../train/types.js';

/** Files by name (relative path). */
export type FileMap = ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;

export interface MemoryDatasetOptions {
  /** Number of classes (the network's): class ids must be below it. */
  nc: number;
  /** Class names (default: from a names file in `files`, else numbers). */
  names?: readonly string[];
  /** Share of the images for val when the files have no train / val folders (default 0.1). */
  valFraction?: number;
  /** Seed of the train / val split (default 0). */
  seed?: number;
  /** Warnings (each bad label line, unreadable image, names mismatch) as they are found. */
  log?: (line: string) => void;
  /**
   * COCO / VOC / labelme files (no YOLO labels) are converted first (default); the options of `convert`
   * (`keepCrowd`, `dropDifficult`; `names` and `valFraction` are this function's). false: take the files as
   * YOLO files only.
   */
  convert?: Pick<ConvertFilesOptions, 'keepCrowd' | 'dropDifficult'> | false;
}

export interface MemoryDataset {
  /** The files, by normalised name (for a converted dataset: the YOLO files of the conversion). */
  files: ReadonlyMap<string, Uint8Array>;
  /** The annotations' format: 'yolo', or the one converted from. */
  format: DatasetFormat;
  /** The conversion (format, what was found where, the converter's messages, counts), or null for YOLO files. */
  conversion: FilesConversion | null;
  nc: number;
  names: string[];
  /** How train / val were told apart: train/val folders, the converter's splits (the source's own, else by name hash), or a seeded split. */
  split: 'folders' | 'converted' | 'seeded';
  /** Warnings about the dataset as a whole (class names vs the network's classes). */
  warnings: string[];
  train: ScanReport;
  /** null when there are fewer than 2 usable images (no val split). */
  val: ScanReport | null;
  /** Summary lines (describeScan) of each split. */
  summary: string[];
}

/** `\` -> `/`, no leading `./` or `/`. */
export function normalizeName(name: string): string {
  let n = name.replace(/\\/g, '/');
  while (n.startsWith('./')) n = n.slice(2);
  return n.replace(/^\/+/, '');
}

function toMap(files: FileMap): Map<string, Uint8Array> {
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files as Record<string, Uint8Array>);
  const out = new Map<string, Uint8Array>();
  for (const [k, v] of entries) out.set(normalizeName(k), v);
  return out;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Class names from a names file or a YAML's `names:` in the files (see the file comment), or null. */
export function namesFromFiles(files: ReadonlyMap<string, Uint8Array>): { names: string[]; from: string } | null {
  const keys = [...files.keys()].sort();
  const list = keys.find((k) => /(^|\/)classes\.txt$/.test(k) || k.endsWith('.names'));
  if (list) {
    const lines = text(files.get(list)!).split(/\r?\n/).map((l) => l.trim());
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return { names: lines, from: list };
  }
  const yaml = keys.find((k) => /(^|\/)data\.ya?ml$/.test(k)) ?? keys.find((k) => /\.ya?ml$/.test(k));
  if (!yaml) return null;
  const lines = text(files.get(yaml)!).split(/\r?\n/);
  const at = lines.findIndex((l) => /^names\s*:/.test(l));
  if (at < 0) return null;
  const unq = (s: string) => s.trim().replace(/^(['"])(.*)\1$/, '$2');
  const rest = lines[at].replace(/^names\s*:/, '').replace(/\s+#.*$/, '').trim();
  if (rest.startsWith('[')) {
    const inner = rest.replace(/^\[/, '').replace(/\]\s*$/, '');
    return { names: inner.split(',').map(unq).filter((s) => s !== ''), from: yaml };
  }
  const names: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (!/^\s+\S/.test(l)) break; // the block ends at the next top-level key
    const item = /^\s+-\s*(.*)$/.exec(l);
    const pair = /^\s+(\d+)\s*:\s*(.*)$/.exec(l);
    if (item) names.push(unq(item[1].replace(/\s+#.*$/, '')));
    else if (pair) names[Number(pair[1])] = unq(pair[2].replace(/\s+#.*$/, ''));
  }
  return names.length ? { names: Array.from(names, (n, k) => n ?? String(k)), from: yaml } : null;
}

const splitOf = (file: string): 'train' | 'val' | 'test' | null => {
  const parts = file.split('/').slice(0, -1).map((p) => p.toLowerCase());
  if (parts.some((p) => p === 'val' || p === 'valid' || p === 'validation')) return 'val';
  if (parts.includes('test')) return 'test';
  if (parts.includes('train')) return 'train';
  return null;
};

/** Checks and splits a dataset given as files (see the file comment). Throws DatasetError when no image is usable. */
export function memoryDataset(input: FileMap, opts: MemoryDatasetOptions): MemoryDataset {
  const given = toMap(input);
  const nc = opts.nc;
  if (!(Number.isInteger(nc) && nc > 0)) throw new DatasetError(`the number of classes must be a positive integer, got ${nc}`);
  const log = opts.log ?? (() => {});
  const warnings: string[] = [];
  const conversion = opts.convert === false ? null : convertFiles(given, { ...opts.convert, names: opts.names, valFraction: opts.valFraction });
  if (conversion) {
    log(`${conversion.what}: converted as yolo-wgsl convert --from ${conversion.format} does: ${conversion.summary}`);
    for (const i of conversion.issues) log(formatIssue(i));
  }
  const files = conversion?.files ?? given;
  let names = opts.names ? [...opts.names] : [];
  if (!opts.names) {
    const found = namesFromFiles(files);
    if (found) {
      names = found.names;
      const from = conversion ? `the annotations (${conversion.what})` : found.from;
      if (names.length !== nc) {
        warnings.push(`warning: ${from}: ${names.length} class names, the network has ${nc} classes`);
        log(warnings[warnings.length - 1]);
      }
    }
  }
  names = Array.from({ length: nc }, (_, k) => names[k] ?? String(k));
  const images = [...files.keys()].filter(isImageName).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (images.length === 0) throw new DatasetError(`no PNG or JPEG image among the ${files.size} files`);
  const io = {
    header: (file: string) => {
      const dims = imageDimensions(files.get(file)!, file);
      if (!dims) throw new Error('not a PNG or JPEG file');
      return dims;
    },
    labelFile: (image: string) => labelCandidates(image).find((c) => files.has(c)) ?? null,
    readText: (file: string) => text(files.get(file)!),
  };
  const scan = (list: string[]) => scanWith(list.map((file) => ({ file })), { nc, log }, io);
  const bySplit = { train: images.filter((f) => splitOf(f) === 'train'), val: images.filter((f) => splitOf(f) === 'val') };
  let split: MemoryDataset['split'];
  let train: ScanReport;
  let val: ScanReport | null;
  if (bySplit.train.length && bySplit.val.length) {
    split = conversion ? 'converted' : 'folders';
    train = scan(bySplit.train);
    val = scan(bySplit.val);
  } else {
    split = 'seeded';
    const all = scan(images.filter((f) => splitOf(f) !== 'test'));
    const usable = all.images;
    const frac = opts.valFraction ?? 0.1;
    if (!(frac >= 0 && frac < 1)) throw new DatasetError(`valFraction must be in [0, 1), got ${frac}`);
    const nVal = usable.length < 2 ? 0 : Math.min(usable.length - 1, Math.max(frac > 0 ? 1 : 0, Math.round(usable.length * frac)));
    const order = epochOrder(mixSeed(opts.seed ?? 0, 0x5b1), 0, usable.length, true);
    const isVal = new Set(Array.from(order.subarray(0, nVal)));
    const part = (keep: (i: number) => boolean): ScanReport => {
      const imgs = usable.filter((_, i) => keep(i));
      const counts = { ...all.counts, listed: imgs.length, images: imgs.length };
      return { images: imgs, counts: recount(imgs, nc, counts), problems: all.problems };
    };
    train = part((i) => !isVal.has(i));
    val = nVal ? part((i) => isVal.has(i)) : null;
  }
  if (train.images.length === 0) {
    const first = train.problems.find((p) => p.kind === 'image') ?? train.problems[0];
    throw new DatasetError(`none of the ${train.counts.listed} train images is usable${first ? ` (first: ${formatProblem(first)})` : ''}`);
  }
  const summary = [`train (${split === 'folders' ? 'train folders' : split === 'converted' ? 'the converter\'s split' : `seeded split of ${train.images.length + (val?.images.length ?? 0)} images`}):`, ...describeScan(train, names)];
  if (val) summary.push('val:', ...describeScan(val, names));
  if (conversion) summary.unshift(`${conversion.what}, converted as yolo-wgsl convert --from ${conversion.format} does: ${conversion.summary}; classes from the annotations: ${conversion.names.join(', ')}`);
  return { files, format: conversion?.format ?? 'yolo', conversion, nc, names, split, train, val, summary, warnings };
}

/** The per-split counts of a seeded split's part (problems stay the whole scan's). */
function recount(images: readonly LabeledImage[], nc: number, base: ScanReport['counts']): ScanReport['counts'] {
  const c = { ...base, labeled: 0, missingLabels: 0, emptyLabels: 0, backgrounds: 0, boxes: 0, perClass: new Array(nc).fill(0), imagesPerClass: new Array(nc).fill(0) };
  for (const im of images) {
    if (im.labelFile) c.labeled++;
    else c.missingLabels++;
    if (im.labelFile && im.boxes.length === 0) c.emptyLabels++;
    if (im.boxes.length === 0) c.backgrounds++;
    c.boxes += im.boxes.length;
    const present = new Set<number>();
    for (const b of im.boxes) {
      c.perClass[b.classId]++;
      present.add(b.classId);
    }
    for (const k of present) c.imagesPerClass[k]++;
  }
  return c;
}

// ---------------------------------------------------------------- batches

export interface MemoryBatchSourceOptions {
  images: readonly LabeledImage[];
  /** The bytes of an image file. */
  bytes: (file: string) => Uint8Array;
  /** Decodes image bytes (throws / rejects for an undecodable image: it is replaced by the next one, as on disk). */
  decode: (bytes: Uint8Array, name: string) => Promise<Image>;
  batchSize: number;
  width: number;
  height: number;
  sizeFor?: (batch: number) => { width: number; height: number };
  augment?: AugmentConfig | false;
  letterBox?: boolean;
  seed?: number;
  /** Decoded images kept, in MiB (default 256). */
  cacheMB?: number;
  log?: (line: string) => void;
}

/** The position of the next batch (the shape of src/data/loader.ts LoaderState). */
export interface MemorySourceState {
  version: 1;
  seed: number;
  epoch: number;
  position: number;
  batch: number;
  images: number;
}

/**
 * The training batches of in-memory images (see the file comment): shuffled every epoch, the last
 * incomplete batch dropped, endless (the trainer ends epochs by batchesPerEpoch). `pause()` holds the next
 * batch back (so the trainer waits between mini-batches) until `resume()`.
 */
export class MemoryBatchSource implements BatchSource<Truth> {
  readonly batchesPerEpoch: number;
  private readonly ctx: BuildContext;
  private readonly o: MemoryBatchSourceOptions;
  private readonly sizeFor: (batch: number) => { width: number; height: number };
  private readonly cacheBytes: number;
  private readonly cache = new Map<string, Image>();
  private cachedBytes = 0;
  private readonly warned = new Set<string>();
  private seed: number;
  private epoch = 0;
  private position = 0;
  private jobs = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  private waiting: (() => void) | null = null;
  private held = false;

  constructor(o: MemoryBatchSourceOptions) {
    if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new Error(`batch source: batchSize must be a positive integer, got ${o.batchSize}`);
    if (o.images.length === 0) throw new Error('batch source: no images');
    this.o = o;
    this.seed = o.seed ?? 1;
    this.batchesPerEpoch = Math.max(1, Math.floor(o.images.length / o.batchSize));
    this.ctx = {
      images: o.images.map((im) => ({ file: im.file, truths: im.boxes.map((b) => ({ cls: b.classId, x: b.cx, y: b.cy, w: b.w, h: b.h })) })),
      augment: o.augment || null,
      letterBox: o.letterBox ?? false,
      cacheBytes: 0,
    };
    this.cacheBytes = Math.max(0, o.cacheMB ?? 256) * 2 ** 20;
    const fixed = { width: o.width, height: o.height };
    this.sizeFor = o.sizeFor ?? (() => fixed);
  }

  state(): MemorySourceState {
    return { version: 1, seed: this.seed, epoch: this.epoch, position: this.position, batch: this.epoch * this.batchesPerEpoch + this.position, images: this.ctx.images.length };
  }

  restore(state: unknown): void {
    const s = state as MemorySourceState;
    if (!s || s.version !== 1) throw new Error(`batch source: unknown state ${JSON.stringify(state)}`);
    if (s.images !== this.ctx.images.length) this.o.log?.(`warning: the batch source's state was saved over ${s.images} images, this one has ${this.ctx.images.length}: the batches will differ from the original run`);
    this.seed = s.seed;
    this.epoch = s.position >= this.batchesPerEpoch ? s.epoch + 1 : s.epoch;
    this.position = s.position >= this.batchesPerEpoch ? 0 : s.position;
  }

  /** Holds the next batch back until resume(). */
  pause(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((r) => { open = r; });
    this.gate = { promise, open };
  }

  resume(): void {
    const g = this.gate;
    this.gate = null;
    g?.open();
  }

  get paused(): boolean {
    return this.gate !== null;
  }

  /** Resolves when the consumer is waiting on a paused source (its previous mini-batch handed back). */
  whenHeld(): Promise<void> {
    return new Promise((r) => {
      if (!this.gate || this.held) return r();
      this.waiting = r;
    });
  }

  /** The next batch (global number epoch · batchesPerEpoch + position). */
  async next(): Promise<Batch<Truth> & { files: string[]; index: number }> {
    while (this.gate) {
      this.held = true;
      const w = this.waiting;
      this.waiting = null;
      w?.();
      await this.gate.promise;
      this.held = false;
    }
    const g = this.epoch * this.batchesPerEpoch + this.position;
    const built = await this.build(g);
    this.position++;
    if (this.position >= this.batchesPerEpoch) {
      this.epoch++;
      this.position = 0;
    }
    for (const w of built.warnings) {
      if (this.warned.has(w)) continue;
      this.warned.add(w);
      this.o.log?.(w);
    }
    return { images: built.images, shape: [built.truths.length, 3, built.height, built.width], truths: built.truths, files: built.files, index: g };
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch<Truth>> {
    return { next: async () => ({ value: await this.next(), done: false }) };
  }

  /** Batch g (src/data/loader.ts jobFor with dropLast and shuffle). */
  async build(g: number): Promise<BuiltBatch> {
    const bpe = this.batchesPerEpoch;
    const epoch = Math.floor(g / bpe);
    const position = g - epoch * bpe;
    const n = this.ctx.images.length;
    const order = epochOrder(this.seed, epoch, n, true);
    const indices: number[] = [];
    for (let i = 0; i < this.o.batchSize; i++) indices.push(order[(position * this.o.batchSize + i) % n]);
    const { width, height } = this.sizeFor(g);
    const job: BatchJob = { id: ++this.jobs, seed: this.seed, g, epoch, position, indices, width, height };
    const sizes = new Map(this.o.images.map((im) => [im.file, im]));
    const held = new Map<string, Image | Error>(); // decoded for this batch (not evicted while it is built)
    for (;;) {
      const missing = new Set<string>();
      const built = buildBatchWith(this.ctx, job, (file) => {
        const h = held.get(file) ?? this.cached(file);
        if (h instanceof Error) throw h;
        if (h) {
          held.set(file, h);
          return h;
        }
        missing.add(file);
        const im = sizes.get(file)!;
        return makeImage(im.width, im.height, 3); // a stand-in of the right size (the draws depend on sizes only)
      });
      if (missing.size === 0) return built;
      for (const file of missing) {
        try {
          const im = await this.o.decode(this.o.bytes(file), file);
          held.set(file, im);
          this.keep(file, im);
        } catch (e) {
          held.set(file, e instanceof Error ? e : new Error(String(e)));
        }
      }
    }
  }

  private cached(file: string): Image | undefined {
    const hit = this.cache.get(file);
    if (hit) {
      this.cache.delete(file);
      this.cache.set(file, hit);
    }
    return hit;
  }

  private keep(file: string, im: Image): void {
    const bytes = im.data.byteLength;
    if (bytes > this.cacheBytes || this.cache.has(file)) return;
    while (this.cachedBytes + bytes > this.cacheBytes && this.cache.size) {
      const [k, v] = this.cache.entries().next().value as [string, Image];
      this.cache.delete(k);
      this.cachedBytes -= v.data.byteLength;
    }
    this.cache.set(file, im);
    this.cachedBytes += bytes;
  }
}
