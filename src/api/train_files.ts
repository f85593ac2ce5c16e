/**
 * Training on a dataset given as files in memory (name -> bytes): what a browser page trains with (a folder
 * picked with `<input type=file webkitdirectory>` or dropped), and usable from Node alike. The same trainer
 * as `train` and the CLI (src/train/trainer.ts runTrainer) with the same settings, loss, schedule, optimizer
 * and augmentation (src/api/train_setup.ts); the data checks of a dataset on disk (src/data/labels.ts, via
 * src/data/memory.ts) and its batches (src/data/build.ts). Nothing is written to files: the caller asks for
 * the `.weights` bytes (`weights()`, at any time) and keeps them where it likes.
 *
 * Differences from `train` over a dataset on disk: checkpoints go to a CheckpointSink (the caller's storage:
 * IndexedDB in examples/browser/train-core.js) instead of files, and `resume` takes a pair it received;
 * validation is scored here (src/eval scoreDetections on the val split, no plots or JSON); batches are built
 * in the caller's thread (no worker threads); between mini-batches the loop yields to the event loop (a page
 * stays responsive), and `pause()` holds it there.
 */
import { Network } from '../darknet/network.js';
import { parseCfg } from '../darknet/cfg.js';
import { encodeWeights } from '../darknet/weights.js';
import { memoryDataset, MemoryBatchSource, type FileMap, type MemoryDataset } from '../data/memory.js';
import { scoreDetections } from '../eval/metrics.js';
import type { EvalImage, Protocol } from '../eval/types.js';
import type { Image } from '../data/image.js';
import { boxesInPixels } from '../data/labels.js';
import { runTrainer } from '../train/trainer.js';
import type { CheckpointSink, EpochSummary, EvalResult, OptimizerKind, Progress, TrainState } from '../train/types.js';
import { yoloTrainLoss } from '../train/yolo_loss.js';
import type { LossKind } from '../yolo/loss.js';
import { detectImages, fromDarknetNetwork } from './detector.js';
import * as host from './host.js';
import type { Model } from './model.js';
import { HYP_DEFAULTS, resolveTrainSettings, trainingInput, trainingRecipe } from './train_setup.js';

export type { FileMap } from '../data/memory.js';
export type { CheckpointSink, TrainState } from '../train/types.js';

export interface TrainOnFilesOptions {
  /** The model to train (its parameters are updated in place; detect with it afterwards). */
  model: Model;
  /** The dataset: images, YOLO label .txt files, optionally class names (see src/data/memory.ts). */
  files: FileMap;
  /** Updates to train (default: the cfg's max_batches unless `epochs`). */
  maxBatches?: number;
  epochs?: number;
  /** Images per update / mini-batches per update (default: the cfg's). */
  batch?: number;
  subdivisions?: number;
  loss?: LossKind;
  /** Ultralytics hyperparameters (selects the Ultralytics schedule; needs `epochs`). */
  hyp?: Record<string, number>;
  schedule?: 'darknet' | 'ultralytics';
  cosLr?: boolean;
  optimizer?: OptimizerKind;
  lr?: number;
  ema?: boolean;
  /** The cfg's augmentation (jitter, flip, HSV, mosaic); default true. */
  augment?: boolean;
  /** Multi-scale (default: the cfg's `random` when augmenting). */
  multiScale?: boolean;
  /** Seed of the batches and their augmentation (default 0) */
  seed?: number;
  freeze?: number;
  /** Class names (default: a names file among `files`, else numbers). */
  names?: readonly string[];
  /** Share of images for val when the files have no train / val folders (default 0.1). */
  valFraction?: number;
  /** Validate every N epochs (default 1; 0: never). */
  valEvery?: number;
  protocol?: Protocol;
  /**
   * Where the run's checkpoints go (`last` every `saveEvery` updates, at epoch ends and at the end; `best` when
   * val improves): e.g. IndexedDB / OPFS in a page. Default: none kept.
   */
  checkpoint?: CheckpointSink;
  /** Save `last` every N updates (default 100; needs `checkpoint`). */
  saveEvery?: number;
  /**
   * Continue a run exactly from a `last` (or `best`) pair its `checkpoint` sink received: the weights are
   * loaded into the model, and the optimizer, schedule, batch position and counters restored; give the same
   * files and settings. The run ends at the same `maxBatches` / `epochs` as the original.
   */
  resume?: { weights: Uint8Array; state: TrainState };
  /** Decoded images kept in memory, MiB (default 256). */
  cacheMB?: number;
  onProgress?: (p: Progress) => void;
  onEpochEnd?: (e: EpochSummary) => void;
  /** Dataset warnings (file:line: why) and informational lines. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** The run's report (as `train`'s TrainReport, without files). */
export interface FilesTrainReport {
  stopped: 'done' | 'aborted';
  iterations: number;
  epochs: number;
  images: number;
  loss: number | null;
  history: EpochSummary[];
  best: { fitness: number; iteration: number; epoch: number } | null;
}

/** A training run in progress. */
export interface TrainingRun {
  /** The checked dataset (split, counts, problems); resolves before the first update. */
  readonly dataset: Promise<MemoryDataset>;
  /** Resolves when training ends (done, or stopped: 'aborted'); rejects on bad data or a TrainError. */
  readonly done: Promise<FilesTrainReport>;
  /** Holds training between two mini-batches (resolves once it is held). */
  pause(): Promise<void>;
  resume(): void;
  readonly paused: boolean;
  /** Stops after the update in progress (`done` then resolves with stopped: 'aborted'). */
  stop(): void;
  /** The current parameters as Darknet .weights bytes (holds training meanwhile when it runs). */
  weights(): Promise<Uint8Array>;
}

/**
 * Starts training `opts.model` on the files (see the file comment). Bad settings throw here; dataset
 * problems are logged (file:line) and a dataset with no usable image rejects `done` with a DatasetError.
 */
export function trainOnFiles(opts: TrainOnFilesOptions): TrainingRun {
  const model = opts.model;
  const net = model.network;
  const log = opts.log ?? (() => {});
  const settings = resolveTrainSettings(net, {
    batch: opts.batch, subdivisions: opts.subdivisions, epochs: opts.epochs, maxBatches: opts.maxBatches, loss: opts.loss,
    hyp: opts.hyp ? { ...HYP_DEFAULTS, ...opts.hyp } : undefined, schedule: opts.schedule, cosLr: opts.cosLr, optimizer: opts.optimizer,
    lr: opts.lr, ema: opts.ema, augment: opts.augment, multiScale: opts.multiScale, seed: opts.seed, valEvery: opts.valEvery ?? 1,
    protocol: opts.protocol, freeze: opts.freeze,
  });
  const abort = new AbortController();
  if (opts.signal) {
    if (opts.signal.aborted) abort.abort();
    else opts.signal.addEventListener('abort', () => abort.abort(), { once: true });
  }
  let source: MemoryBatchSource | null = null;
  let running = false;
  let lastSeen = 0;
  let resolveDataset!: (d: MemoryDataset) => void;
  let rejectDataset!: (e: unknown) => void;
  const dataset = new Promise<MemoryDataset>((ok, fail) => { resolveDataset = ok; rejectDataset = fail; });
  dataset.catch(() => undefined); // `done` carries the error too
  const wantPause = { on: false };

  const done = model.exclusive(async (): Promise<FilesTrainReport> => {
    const nc = Math.max(0, ...model.heads.map((h) => h.classes)); // the heads the detector decodes
    let ds: MemoryDataset;
    try {
      ds = memoryDataset(opts.files, { nc, names: opts.names, valFraction: opts.valFraction, seed: settings.seed, log });
    } catch (e) {
      rejectDataset(e);
      throw e;
    }
    for (const l of ds.summary) log(l);
    resolveDataset(ds);
    const { augment, miniBatch, k0, bound, sizeFor } = trainingInput(net, settings, { log });
    const decode = (bytes: Uint8Array, name: string): Promise<Image> => host.decodeImageBytes(bytes, name);
    const src = new MemoryBatchSource({
      images: ds.train.images, bytes: (f) => ds.files.get(f)!, decode, batchSize: miniBatch, width: net.input.w, height: net.input.h,
      sizeFor, augment, letterBox: net.net.letterBox, seed: settings.seed, cacheMB: opts.cacheMB, log,
    });
    source = src;
    if (wantPause.on) src.pause();
    const yielding: MemoryBatchSource = src;
    const loader = {
      batchesPerEpoch: src.batchesPerEpoch,
      state: () => yielding.state(),
      restore: (s: unknown) => yielding.restore(s),
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          await new Promise((r) => setTimeout(r, 0)); // let the page handle its events between mini-batches
          return { value: await yielding.next(), done: false as const };
        },
      }),
    };
    model.reloadForInference();
    const { loss: yl, schedule, optimizer } = trainingRecipe(net, settings, { nc, batchesPerEpoch: src.batchesPerEpoch, k0, resumed: !!opts.resume, log });
    const valImages = ds.val?.images ?? [];
    const evaluate = settings.valEvery > 0 && valImages.length
      ? async ({ network, epoch }: { network: Network; epoch: number }): Promise<EvalResult> => {
        const dn = fromDarknetNetwork(network, model.engine.gpu);
        const evalImages: EvalImage[] = [];
        try {
          for (let i = 0; i < valImages.length; i += miniBatch) {
            const part = valImages.slice(i, i + miniBatch);
            const decoded = await Promise.all(part.map((im) => decode(ds.files.get(im.file)!, im.file)));
            const r = await detectImages(model.engine.gpu, dn, decoded, { conf: 0.001, iou: 0.6, maxDet: 300, embeddings: false });
            r.images.forEach((res, k) => evalImages.push({
              id: i + k, width: part[k].width, height: part[k].height, gts: boxesInPixels(part[k]),
              dets: res.objects.map((d) => ({ x1: d.pixels.x1, y1: d.pixels.y1, x2: d.pixels.x2, y2: d.pixels.y2, classId: d.classId, score: d.score })),
            }));
          }
        } finally {
          dn.release?.(); // its recorded forwards (training goes on with the network)
        }
        const s = scoreDetections(evalImages, { protocol: settings.protocol, numClasses: nc, names: ds.names });
        log(`  val epoch ${epoch + 1}: P ${s.precision.toFixed(4)}  R ${s.recall.toFixed(4)}  mAP50 ${s.map50.toFixed(4)}  mAP50-95 ${s.map50_95.toFixed(4)}  (${s.numImages} images, ${s.instances} objects, ${s.detections} detections)`);
        return { fitness: 0.1 * s.map50 + 0.9 * s.map50_95, metrics: { precision: s.precision, recall: s.recall, map50: s.map50, map50_95: s.map50_95 } };
      }
      : undefined;
    const I = net.input;
    running = true;
    try {
      const r = await runTrainer({
        gpu: model.engine.gpu, network: net, loader, loss: yoloTrainLoss(yl), optimizer, schedule, subdivisions: settings.subdivisions,
        epochs: settings.epochs, maxBatches: bound !== undefined ? bound - k0 : undefined, ema: settings.ema,
        evaluate, evalEveryEpochs: settings.valEvery,
        buildEvalNetwork: () => Network.build(parseCfg(model.cfgText, model.cfgName), { width: I.w, height: I.h, channels: I.c }),
        freeze: settings.freeze, seenOffset: k0 * settings.batch, iterationOffset: k0,
        checkpointDir: opts.checkpoint, saveEvery: opts.saveEvery ?? 100,
        resume: opts.resume ? { generation: 0, createdAt: '', state: opts.resume.state, weights: opts.resume.weights, stateFile: '<resume state>', weightsFile: '<resume weights>', fellBack: false, rejected: [] } : undefined,
        onProgress: (p) => {
          lastSeen = p.seen;
          opts.onProgress?.(p);
        },
        onEpochEnd: opts.onEpochEnd, log, signal: abort.signal,
      });
      lastSeen = r.seen;
      return { stopped: r.stopped, iterations: r.iteration, epochs: r.epoch, images: r.seen, loss: r.last?.loss ?? null, history: r.history, best: r.best };
    } finally {
      try {
        await net.pullParams();
      } catch { /* a failed run keeps whatever the host copies hold */ }
      running = false;
      model.reloadForInference();
    }
  });

  const run: TrainingRun = {
    dataset,
    done,
    async pause() {
      wantPause.on = true;
      if (!source) return;
      source.pause();
      if (running) await Promise.race([source.whenHeld(), done.then(() => undefined, () => undefined)]);
    },
    resume() {
      wantPause.on = false;
      source?.resume();
    },
    get paused() {
      return wantPause.on;
    },
    stop() {
      abort.abort();
      source?.resume();
    },
    async weights() {
      if (running && source) {
        const was = wantPause.on;
        await run.pause();
        try {
          if (running) {
            await net.pullParams();
            return encodeWeights(net, { seen: BigInt(lastSeen) });
          }
        } finally {
          if (!was) run.resume();
        }
      }
      // before the first update or after the last: the host parameters are the current ones
      return model.toWeights({ seen: lastSeen });
    },
  };
  return run;
}
