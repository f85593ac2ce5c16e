/**
 * The batch loader: an AsyncIterable<LoaderBatch> over one split of a dataset (src/data/dataset.ts), NCHW
 * float batches with per-image truths normalised to the network input.
 *
 * - **Order**: epoch e visits the split's images in a permutation drawn from (seed, e) (Fisher-Yates;
 *   identity without shuffle). Batch `position` p of epoch e takes slots p·B .. p·B+B-1 of it; with
 *   dropLast (training) an epoch has floor(N/B) batches (at least one: a split smaller than a batch wraps
 *   around), else ceil(N/B) with a short last batch. Global batch g = e·batchesPerEpoch + p.
 * - **Randomness**: image slot i of batch g draws everything (mosaic partners, crop, flip, HSV) from
 *   Rng(mixSeed(seed, stream, g, i)); the size of batch g comes from `sizeFor(g)` (multi-scale:
 *   augment.ts sizeSchedule). A batch is therefore a pure function of (seed, g) and the dataset, whoever
 *   builds it and whenever: prefetching, the number of workers and resuming cannot change it.
 * - **state() / restore()**: {epoch, position, batch, seed, images, fingerprint}: the batch the next
 *   next() returns. Restoring it into a loader over the same dataset yields exactly the same batches from
 *   there on (a different file list is reported as a warning: order and contents then differ).
 * - **Prefetch**: the next `prefetch` batches are always under way. With `workers` > 0 they are built in
 *   worker threads (node:worker_threads; decode + augment run in parallel with the caller, e.g. while it
 *   records GPU work) and their buffers are transferred, not copied. With workers = 0 they are built in
 *   this thread from setImmediate callbacks, i.e. while the caller awaits something (GPU readback).
 * - **Corrupt data never stops it**: the scan (dataset.ts) drops unreadable images and corrupt label lines
 *   with a warning naming file:line; an image that passes the header check but fails to decode is
 *   replaced by the next image of the split, with a warning (deterministically: the same replacement
 *   whenever that batch is built). A worker that dies is replaced by building in this thread.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadDataset, scanSplit, type DatasetSpec, type LabeledImage, type ScanReport, type SplitName } from './dataset.js';
import type { AugmentConfig, Truth } from './augment.js';
import { buildBatch, WORKER_TAG, type BatchJob, type BuildContext, type BuiltBatch, type LoaderImage } from './worker.js';
import { epochOrder } from './build.js';

export { epochOrder } from './build.js';

export type { Truth } from './augment.js';

/** A batch with what the loader knows of it (the trainer's Batch<Truth>, src/train/types.ts, plus provenance). */
export interface LoaderBatch {
  /** NCHW, values in [0, 1]. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Per image: boxes {cls, x, y, w, h} normalised to the network input. */
  truths: Truth[][];
  /** Per image: the file (for a mosaic, its first image). */
  files: string[];
  epoch: number;
  /** Batch number within the epoch. */
  position: number;
  /** Global batch number. */
  index: number;
  /** performance.now() when the batch was ready, and how long building it took. */
  readyAt: number;
  buildMs: number;
}

export interface LoaderState {
  version: 1;
  seed: number;
  /** The next batch: epoch, position in it, global number. */
  epoch: number;
  position: number;
  batch: number;
  /** The split's usable images and a hash of their paths (a check on restore). */
  images: number;
  fingerprint: string;
}

export interface LoaderOptions {
  /** A dataset description (Darknet .data or Ultralytics .yaml) or a loaded spec. */
  dataset: string | DatasetSpec;
  split: SplitName;
  batchSize: number;
  /** Network input size (used when sizeFor is absent). */
  width: number;
  height: number;
  /** Size of batch g (multi-scale: augment.ts sizeSchedule / sizeScheduleFromNetwork). */
  sizeFor?: (batch: number) => { width: number; height: number };
  /** Training augmentation; false / absent: plain resize (or letterbox) as for inference. */
  augment?: AugmentConfig | false;
  /** Plain mode: letterbox instead of stretch (Darknet letter_box). */
  letterBox?: boolean;
  seed?: number;
  /** Shuffle every epoch (default: when augmenting). */
  shuffle?: boolean;
  /** Drop the last incomplete batch of an epoch (default: = shuffle). */
  dropLast?: boolean;
  /** Batches built ahead (default 2). */
  prefetch?: number;
  /** Worker threads (default min(2, cores - 1); 0 builds in this thread). */
  workers?: number;
  /** Iteration ends after this many epochs (default: unbounded when shuffling, else 1). */
  epochs?: number;
  /** Warnings (scan problems file:line, undecodable images); default console.warn. */
  log?: (line: string) => void;
  /** Working folder for Darknet-relative paths. */
  cwd?: string;
  /** Decoded images kept in memory per building thread, in MiB (default 256; 0 = decode every time). */
  cacheMB?: number;
  /** A scan already made of this split (skips scanning). */
  scan?: ScanReport;
}

function toLoaderImages(images: readonly LabeledImage[]): LoaderImage[] {
  return images.map((im) => ({ file: im.file, truths: im.boxes.map((b) => ({ cls: b.classId, x: b.cx, y: b.cy, w: b.w, h: b.h })) }));
}

/** FNV-1a over the file paths, hex. */
function fingerprintOf(files: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const f of files) {
    for (let i = 0; i < f.length; i++) h = Math.imul(h ^ f.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 10, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

interface Pending {
  promise: Promise<BuiltBatch>;
}

interface WorkerSlot {
  worker: Worker;
  busy: number;
  dead: boolean;
  waiting: Map<number, { resolve: (b: BuiltBatch) => void; reject: (e: Error) => void; job: BatchJob }>;
}

export class BatchLoader implements AsyncIterable<LoaderBatch> {
  readonly spec: DatasetSpec | null;
  readonly scan: ScanReport;
  readonly batchSize: number;
  readonly batchesPerEpoch: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly epochs: number;
  private readonly ctx: BuildContext;
  private readonly sizeFor: (batch: number) => { width: number; height: number };
  private readonly prefetchDepth: number;
  private readonly log: (line: string) => void;
  private readonly fingerprint: string;
  private seed: number;
  private epoch = 0;
  private position = 0;
  private orderCache: { epoch: number; order: Int32Array } | null = null;
  private pending = new Map<number, Pending>();
  private workers: WorkerSlot[] = [];
  private nextWorker = 0;
  private closed = false;
  private warned = new Set<string>();
  private localChain: Promise<unknown> = Promise.resolve();
  private jobIds = 0;
  private inFlight = 0;
  private keepAlive: ReturnType<typeof setInterval> | null = null;
  /** Bumped when pending batches are dropped: queued in-thread builds of an older generation are skipped. */
  private generation = 0;

  private constructor(opts: LoaderOptions, spec: DatasetSpec | null, scan: ScanReport) {
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) throw new Error(`loader: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.spec = spec;
    this.scan = scan;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 1;
    const augment = opts.augment ? opts.augment : null;
    this.shuffle = opts.shuffle ?? augment !== null;
    this.dropLast = opts.dropLast ?? this.shuffle;
    this.epochs = opts.epochs ?? (this.shuffle ? Infinity : 1);
    this.log = opts.log ?? ((l) => console.warn(l));
    const n = scan.images.length;
    this.batchesPerEpoch = this.dropLast ? Math.max(1, Math.floor(n / this.batchSize)) : Math.ceil(n / this.batchSize);
    this.ctx = { images: toLoaderImages(scan.images), augment, letterBox: opts.letterBox ?? false, cacheBytes: Math.max(0, opts.cacheMB ?? 256) * 2 ** 20 };
    this.fingerprint = fingerprintOf(this.ctx.images.map((i) => i.file));
    const fixed = { width: opts.width, height: opts.height };
    for (const [k, v] of Object.entries(fixed)) if (!(Number.isInteger(v) && v > 0)) throw new Error(`loader: ${k} must be a positive integer, got ${v}`);
    this.sizeFor = opts.sizeFor ?? (() => fixed);
    this.prefetchDepth = Math.max(1, opts.prefetch ?? 2);
    const nWorkers = opts.workers ?? Math.max(0, Math.min(2, (os.availableParallelism?.() ?? os.cpus().length) - 1));
    for (let i = 0; i < nWorkers; i++) {
      try {
        this.workers.push(this.spawn());
      } catch (e) {
        this.log(`warning: cannot start a loader worker (${(e as Error).message}); building batches in this thread`);
        break;
      }
    }
  }

  /** Reads the description (unless a spec is given), scans the split (warnings through `log`), starts the workers. */
  static open(opts: LoaderOptions): BatchLoader {
    const log = opts.log ?? ((l: string) => console.warn(l));
    const spec = typeof opts.dataset === 'string' ? loadDataset(opts.dataset, opts.cwd) : opts.dataset;
    for (const w of spec.warnings) log(`warning: ${w}`);
    const scan = opts.scan ?? scanSplit(spec, opts.split, { log, cwd: opts.cwd });
    return new BatchLoader({ ...opts, log }, spec, scan);
  }

  /** A loader over images given directly (tests, or a caller's own list). */
  static fromImages(images: LabeledImage[], opts: Omit<LoaderOptions, 'dataset' | 'split' | 'scan'>): BatchLoader {
    const counts = { listed: images.length, images: images.length } as ScanReport['counts'];
    return new BatchLoader(opts as LoaderOptions, null, { images, counts, problems: [] });
  }

  get size(): number {
    return this.ctx.images.length;
  }

  get workerCount(): number {
    return this.workers.filter((w) => !w.dead).length;
  }

  /** The position of the next batch (see the file comment). */
  state(): LoaderState {
    return { version: 1, seed: this.seed, epoch: this.epoch, position: this.position, batch: this.epoch * this.batchesPerEpoch + this.position, images: this.size, fingerprint: this.fingerprint };
  }

  /** Continues from a state(): the next batch is the one that state names. */
  restore(s: LoaderState): void {
    if (!s || s.version !== 1) throw new Error(`loader: unknown state ${JSON.stringify(s)}`);
    if (s.images !== this.size || s.fingerprint !== this.fingerprint) {
      this.log(`warning: loader state was saved over ${s.images} images (fingerprint ${s.fingerprint}), this split has ${this.size} (${this.fingerprint}): the batches will differ from the original run`);
    }
    this.discardPending();
    this.seed = s.seed;
    this.orderCache = null;
    if (s.position >= this.batchesPerEpoch) {
      this.epoch = s.epoch + 1;
      this.position = 0;
    } else {
      this.epoch = s.epoch;
      this.position = s.position;
    }
  }

  /** The next batch, or null after the last epoch. */
  async next(): Promise<LoaderBatch | null> {
    if (this.closed) throw new Error('loader: closed');
    if (this.epoch >= this.epochs) return null;
    const g = this.epoch * this.batchesPerEpoch + this.position;
    this.fill(g);
    const p = this.pending.get(g)!;
    this.pending.delete(g);
    const built = await p.promise;
    this.position++;
    if (this.position >= this.batchesPerEpoch) {
      this.epoch++;
      this.position = 0;
    }
    this.fill(this.epoch * this.batchesPerEpoch + this.position);
    for (const w of built.warnings) {
      if (this.warned.has(w)) continue;
      this.warned.add(w);
      this.log(w);
    }
    return {
      images: built.images,
      shape: [built.truths.length, 3, built.height, built.width],
      truths: built.truths,
      files: built.files,
      epoch: built.epoch,
      position: built.position,
      index: built.g,
      readyAt: built.readyAt ?? performance.now(),
      buildMs: built.buildMs,
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<LoaderBatch> {
    return {
      next: async () => {
        const b = await this.next();
        return b ? { value: b, done: false } : { value: undefined, done: true };
      },
    };
  }

  /** Stops the workers; pending batches are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.discardPending();
    // idle workers are unref'd, and a terminating worker does not reliably keep the event loop alive
    // until its 'exit': hold a timer meanwhile, or a caller awaiting close() may see the process end
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await Promise.all(this.workers.map((w) => w.worker.terminate()));
    } finally {
      clearInterval(keepAlive);
    }
    this.outstanding(-this.inFlight);
    this.workers = [];
  }

  // ---------------------------------------------------------------- jobs

  private jobFor(g: number): BatchJob {
    const bpe = this.batchesPerEpoch;
    const epoch = Math.floor(g / bpe);
    const position = g - epoch * bpe;
    if (!this.orderCache || this.orderCache.epoch !== epoch) this.orderCache = { epoch, order: epochOrder(this.seed, epoch, this.size, this.shuffle) };
    const order = this.orderCache.order;
    const n = this.size;
    const start = position * this.batchSize;
    const count = this.dropLast ? this.batchSize : Math.min(this.batchSize, n - start);
    const indices: number[] = [];
    for (let i = 0; i < count; i++) indices.push(order[(start + i) % n]);
    const { width, height } = this.sizeFor(g);
    return { id: ++this.jobIds, seed: this.seed, g, epoch, position, indices, width, height };
  }

  /** Makes sure batches g .. g + prefetch - 1 (within the epoch limit) are under way. */
  private fill(g: number): void {
    const last = this.epochs === Infinity ? Infinity : this.epochs * this.batchesPerEpoch;
    for (let k = g; k < g + this.prefetchDepth && k < last; k++) {
      if (this.pending.has(k)) continue;
      this.pending.set(k, { promise: this.start(this.jobFor(k)) });
    }
  }

  private discardPending(): void {
    this.generation++;
    for (const p of this.pending.values()) p.promise.catch(() => undefined);
    this.pending.clear();
  }

  private start(job: BatchJob): Promise<BuiltBatch> {
    const alive = this.workers.filter((w) => !w.dead);
    if (alive.length === 0) return this.buildHere(job);
    // the least busy worker (round robin among equals)
    let best = alive[this.nextWorker++ % alive.length];
    for (const w of alive) if (w.busy < best.busy) best = w;
    return this.send(best, job);
  }

  /** Builds in this thread, one batch per macrotask (so the caller's awaits let it run). */
  private buildHere(job: BatchJob): Promise<BuiltBatch> {
    const gen = this.generation;
    const run = () =>
      new Promise<BuiltBatch>((resolve, reject) => {
        setImmediate(() => {
          if (gen !== this.generation) return reject(new Error('loader: batch discarded'));
          try {
            const b = buildBatch(this.ctx, job);
            b.readyAt = performance.now();
            resolve(b);
          } catch (e) {
            reject(e as Error);
          }
        });
      });
    const p = this.localChain.then(run, run);
    this.localChain = p.catch(() => undefined);
    return p;
  }

  private spawn(): WorkerSlot {
    const self = import.meta.url;
    const ts = self.endsWith('.ts');
    const entry = new URL(ts ? './worker.ts' : './worker.js', self).href;
    const data = { tag: WORKER_TAG, ctx: this.ctx };
    let worker: Worker;
    if (ts) {
      // running from the TypeScript sources under tsx: register tsx in the worker, then load the entry
      const api = import.meta.resolve('tsx/esm/api');
      const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); }).catch((e) => { throw e; });`;
      worker = new Worker(code, { eval: true, workerData: data });
    } else {
      worker = new Worker(new URL(entry), { workerData: data });
    }
    const slot: WorkerSlot = { worker, busy: 0, dead: false, waiting: new Map() };
    worker.unref();
    worker.on('message', (m: { ok: true; batch: BuiltBatch } | { ok: false; id: number; error: string; stack?: string }) => {
      const id = m.ok ? m.batch.id : m.id;
      const w = slot.waiting.get(id);
      if (!w) return;
      slot.waiting.delete(id);
      slot.busy--;
      this.outstanding(-1);
      if (m.ok) {
        m.batch.readyAt = performance.now();
        w.resolve(m.batch);
      } else {
        // the worker's message; its stack replaces this thread's (printed with --verbose / YOLO_WGSL_VERBOSE=1)
        const err = new Error(`loader worker: batch ${w.job.g}: ${m.error}`);
        if (m.stack) err.stack = `${err.message}\n    worker stack: ${m.stack}`;
        w.reject(err);
      }
    });
    const die = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      const waiting = [...slot.waiting.values()];
      slot.waiting.clear();
      this.outstanding(-slot.busy);
      slot.busy = 0;
      if (this.closed) return;
      this.log(`warning: loader worker stopped (${why}); building its batches in this thread`);
      for (const w of waiting) this.buildHere(w.job).then(w.resolve, w.reject);
    };
    worker.on('error', (e) => die(e.message));
    worker.on('exit', (code) => die(`exit code ${code}`));
    return slot;
  }

  /**
   * Workers stay unref'd (an idle loader never holds the process open); while jobs are out, a timer keeps
   * the event loop alive for their answers (a worker's own ref/unref did not do so reliably here).
   */
  private outstanding(delta: number): void {
    this.inFlight += delta;
    if (this.inFlight > 0 && !this.keepAlive) this.keepAlive = setInterval(() => undefined, 1 << 30);
    else if (this.inFlight <= 0 && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  private send(slot: WorkerSlot, job: BatchJob): Promise<BuiltBatch> {
    return new Promise<BuiltBatch>((resolve, reject) => {
      slot.waiting.set(job.id, { resolve, reject, job });
      slot.busy++;
      this.outstanding(1);
      slot.worker.postMessage(job);
    });
  }
}

/** Convenience: BatchLoader.open. */
export function openLoader(opts: LoaderOptions): BatchLoader {
  return BatchLoader.open(opts);
}
