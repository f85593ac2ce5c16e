/**
 * Training through the library API, and the training core the `train` command runs (src/cli/train.ts adds
 * its run folder naming, args.json, resume, progress display and Ctrl-C on top of `trainNetwork`).
 *
 *   data         src/data/loader.ts over the train split (augmentation from the cfg unless augment: false)
 *   loss         src/yolo/loss.ts: 'darknet' ([yolo] loss) or 'yolov5' (ComputeLoss with hyp gains)
 *   schedule     Darknet: the [net] policy over iterations; Ultralytics: warm-up + linear/cosine over epochs
 *   optimizer    SGD from [net] momentum/decay (Darknet), Adam when [net] adam=1, or `optimizer`
 *   validation   every `valEvery` epochs on the val split (src/eval): P, R, mAP50, mAP50-95;
 *                fitness = 0.1·mAP50 + 0.9·mAP50-95 picks `best`
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Gpu } from '../gpu/device.js';
import { Network } from '../darknet/network.js';
import { parseCfg } from '../darknet/cfg.js';
import { BatchLoader } from '../data/loader.js';
import { loadDataset } from '../data/dataset.js';
import type { Protocol } from '../eval/types.js';
import type { LossKind } from '../yolo/loss.js';
import { runTrainer } from '../train/trainer.js';
import type { EpochSummary, EvalResult, OptimizerKind, Progress, TrainResult, TrainState } from '../train/types.js';
import { yoloTrainLoss } from '../train/yolo_loss.js';
import type { LoadedCheckpoint } from '../train/checkpoint.js';
import { downsample, writeLabelsPlot, writeTrainingPlots, type IterationPoint } from '../train/plots.js';
import { writeFileAtomic } from '../util/fs.js';
import { fromDarknetNetwork } from './detector.js';
import { networkDetector, runVal } from './val.js';
import type { Model } from './model.js';

import { HYP_DEFAULTS, resolveTrainSettings, trainingInput, trainingRecipe, type TrainSettings } from './train_setup.js';

export type { EpochSummary } from '../train/types.js';
export { cfgMultiScale, cfgRandom, continuedSchedule, HYP_DEFAULTS, resolveTrainSettings, trainingInput, trainingRecipe, type TrainingInput, type TrainingRecipe, type TrainSettings } from './train_setup.js';
/** One progress event per update: iteration, epoch, batch in epoch, loss and its items, lr, img/s, ETA. */
export type TrainProgress = Progress;


/** Reads an Ultralytics hyp yaml (numbers only; unknown keys are kept for the loss). */
export function readHyp(file: string): Record<string, number> {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`hyp ${file}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object') throw new Error(`hyp ${file}: not a mapping`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof v === 'number') out[k] = v;
    else if (v !== null && v !== undefined) throw new Error(`hyp ${file}: ${k} must be a number, got ${JSON.stringify(v)}`);
  }
  return out;
}

/** results.csv: a header and one row per epoch (rewritten whole each epoch, atomically). */
export function resultsCsv(history: readonly EpochSummary[]): string {
  const items = history.length ? Object.keys(history[0].lossItems) : [];
  const metrics = [...new Set(history.flatMap((h) => Object.keys(h.metrics ?? {})))];
  const head = ['epoch', 'iteration', 'loss', ...items, 'lr', 'seconds', ...metrics, 'fitness'];
  const num = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : String(+v.toPrecision(7)));
  const rows = history.map((h) => [String(h.epoch), String(h.iteration), num(h.loss), ...items.map((k) => num(h.lossItems[k])), num(h.lr), num(+h.seconds.toFixed(2)), ...metrics.map((k) => num(h.metrics?.[k])), num(h.fitness)].join(','));
  return `${head.join(',')}\n${rows.map((r) => `${r}\n`).join('')}`;
}

/** What `trainNetwork` runs: a network with its weights, a dataset, resolved settings. */
export interface TrainNetworkOptions {
  gpu: Gpu;
  network: Network;
  /** Builds a fresh copy of the network (same cfg and size) for validation. */
  buildEvalNetwork: () => Network;
  /** Dataset: Darknet .data or Ultralytics .yaml. */
  data: string;
  settings: TrainSettings;
  keepEvery?: number;
  /** Run folder: weights/ checkpoints, results.csv, plots, val/ (none: nothing is written). */
  runDir?: string;
  resume?: LoadedCheckpoint<TrainState>;
  /**
   * Darknet's continuation (detector.c without -clear): the starting weights' `seen / batch`. In Darknet mode
   * the run continues the schedule from there: its update k uses the rate of update startIteration + k, and
   * a run bounded by max_batches (the cfg's or `maxBatches`) ends at that total, so it runs max_batches -
   * startIteration updates (none left: a TrainError). Ultralytics mode ignores it. Default 0. The run's own
   * counters (progress, results.csv, checkpoints and the `seen` they record) count from 0.
   */
  startIteration?: number;
  onProgress?: (p: Progress) => void;
  onEpochEnd?: (e: EpochSummary) => void;
  log: (line: string) => void;
  signal?: AbortSignal;
  cwd?: string;
}

/** The training core: loader, loss, schedule, optimizer, validation, the trainer, results files. */
export async function trainNetwork(o: TrainNetworkOptions): Promise<TrainResult & { files: string[] }> {
  const { gpu, network: net, settings: args, runDir, log } = o;
  const cwd = o.cwd ?? process.cwd();
  const miniBatch = args.batch / args.subdivisions;
  const spec = loadDataset(o.data, cwd);
  const { augment, k0, bound, sizeFor } = trainingInput(net, args, { startIteration: o.startIteration, log });
  const loader = BatchLoader.open({
    dataset: spec, split: 'train', batchSize: miniBatch, width: net.input.w, height: net.input.h, sizeFor,
    augment, letterBox: net.net.letterBox, seed: args.seed, shuffle: true, workers: args.workers, log, cwd,
  });
  let closed = false;
  try {
    const { loss: yl, schedule, optimizer } = trainingRecipe(net, args, { nc: spec.nc, batchesPerEpoch: loader.batchesPerEpoch, k0, resumed: !!o.resume, log });

    // validation
    const valSplit = !!spec.val;
    const evaluate = args.valEvery > 0 && valSplit
      ? async ({ network, epoch }: { network: Network; epoch: number }): Promise<EvalResult> => {
        const lines: string[] = [];
        const dn = fromDarknetNetwork(network, gpu);
        const detector = networkDetector(gpu, dn, { batch: miniBatch });
        let r: Awaited<ReturnType<typeof runVal>>;
        try {
          r = await runVal({ data: o.data, split: 'val', protocol: args.protocol, out: runDir ? path.join(runDir, 'val') : undefined, detector, log: (l) => lines.push(l), cwd });
        } finally {
          dn.release?.(); // its recorded forwards (training goes on with the network)
        }
        const s = r.summary;
        log(`  val epoch ${epoch + 1}: P ${s.precision.toFixed(4)}  R ${s.recall.toFixed(4)}  mAP50 ${s.map50.toFixed(4)}  mAP50-95 ${s.map50_95.toFixed(4)}  (${s.numImages} images, ${s.instances} objects, ${s.detections} detections)`);
        return { fitness: 0.1 * s.map50 + 0.9 * s.map50_95, metrics: { precision: s.precision, recall: s.recall, map50: s.map50, map50_95: s.map50_95 } };
      }
      : undefined;
    if (args.valEvery > 0 && !valSplit) log('warning: the dataset has no val split: no validation, `best` is not written');

    // iterations (loss.png), results.csv and plots
    const iterations: IterationPoint[] = [];
    const resumedIters = (o.resume?.state.extra as { iterations?: IterationPoint[] } | null)?.iterations;
    if (resumedIters) iterations.push(...resumedIters);
    const onProgress = (p: Progress) => {
      iterations.push({ iteration: p.iteration, loss: p.loss, lr: p.lr });
      o.onProgress?.(p);
    };
    const files = new Set<string>();
    if (runDir) files.add(writeLabelsPlot(runDir, loader.scan.images, spec.names));
    const writeResults = (history: readonly EpochSummary[]) => {
      if (!runDir) return;
      const csv = path.join(runDir, 'results.csv');
      writeFileAtomic(csv, resultsCsv(history));
      files.add(csv);
      for (const f of writeTrainingPlots(runDir, history, iterations)) files.add(f);
    };
    let historyNow: EpochSummary[] = [...(o.resume?.state.history ?? [])];
    const onEpochEnd = (e: EpochSummary) => {
      historyNow = [...historyNow.filter((h) => h.epoch !== e.epoch), e];
      o.onEpochEnd?.(e);
      writeResults(historyNow);
    };

    const result = await runTrainer({
      gpu, network: net, loader, loss: yoloTrainLoss(yl), optimizer, schedule, subdivisions: args.subdivisions,
      epochs: args.epochs, maxBatches: bound !== undefined ? bound - k0 : undefined,
      ema: args.ema, checkpointDir: runDir ? path.join(runDir, 'weights') : undefined, saveEvery: args.saveEvery, keepEvery: o.keepEvery,
      evaluate, evalEveryEpochs: args.valEvery,
      buildEvalNetwork: o.buildEvalNetwork,
      resume: o.resume, freeze: args.freeze,
      // Darknet writes the total seen: the starting weights' (k0 whole batches) plus this run's
      seenOffset: k0 * args.batch,
      iterationOffset: k0,
      extraState: () => ({ iterations: downsample(iterations, 20000) }),
      onProgress, onEpochEnd, log, signal: o.signal,
    });
    closed = true;
    await loader.close();
    writeResults(result.history);
    if (runDir) {
      const w = path.join(runDir, 'weights');
      for (const f of ['last.weights', 'last.state', 'best.weights', 'best.state', 'final.weights']) if (fs.existsSync(path.join(w, f))) files.add(path.join(w, f));
    }
    return { ...result, files: [...files] };
  } finally {
    if (!closed) await loader.close();
  }
}

/** Options of the library's `train`. */
export interface TrainOptions {
  /** The model to train (its parameters are updated in place; detect with it afterwards). */
  model: Model;
  /** Dataset: a Darknet .data or Ultralytics .yaml file (paths in it relative to it, as usual). */
  data: string;
  /** Epochs to train (or maxBatches; default: the cfg's max_batches). */
  epochs?: number;
  /** Updates (iterations) to train. */
  maxBatches?: number;
  /** Images per update (default: the cfg's batch). */
  batch?: number;
  /** Mini-batches per update (default: the cfg's subdivisions). */
  subdivisions?: number;
  /**
   * 'darknet' ([yolo] loss) or 'yolov5' (needs heads in YOLOv5 form: logistic head conv, new_coords=1,
   * scale_x_y=2; other heads are refused with a TrainError). Default: 'yolov5' with `hyp` on YOLOv5-form
   * heads, else 'darknet'.
   */
  loss?: LossKind;
  /** Ultralytics hyperparameters: a hyp yaml path or the numbers (selects the Ultralytics schedule). */
  hyp?: string | Record<string, number>;
  schedule?: 'darknet' | 'ultralytics';
  cosLr?: boolean;
  optimizer?: OptimizerKind;
  lr?: number;
  /** Keep an EMA of the weights for validation and saving. */
  ema?: boolean;
  /** Augmentation from the cfg (jitter, flip, HSV, mosaic); default true. */
  augment?: boolean;
  /** Multi-scale training (default: the cfg's `random` when augment is on). */
  multiScale?: boolean;
  seed?: number;
  /** Data loader worker threads (0: load on the main thread). */
  workers?: number;
  /**
   * Run folder for checkpoints (weights/last, best, final .weights + .state), results.csv, plots and the
   * last validation (val/). Default: none, nothing is written (save the model yourself).
   */
  out?: string;
  /** Save `last` every N updates (default 100; needs `out`). */
  saveEvery?: number;
  /** Validate every N epochs on the dataset's val split (default 1 with `out`, else 0: never). */
  valEvery?: number;
  protocol?: Protocol;
  /**
   * Freeze layers 0..freeze-1 (as Ultralytics `train.py --freeze N`; Darknet layer indices): they get no
   * gradient and no update (no weight decay either; with `ema` their average stays equal to them), which
   * saves their backward pass. Their batchnorm keeps running in train mode, so its rolling statistics still
   * update (as yolov5's BatchNorm2d in model.train()). 0 ≤ freeze ≤ the number of layers; a freeze that
   * leaves no trainable layer is refused (TrainError). Default 0. The cfg's `stopbackward=1` /
   * `train_only_bn=1` freeze by Darknet's rules on top (docs/training.md, Freezing).
   */
  freeze?: number;
  /** Called after every update. */
  onProgress?: (p: TrainProgress) => void;
  /** Called at the end of every epoch (with the validation metrics when it validated). */
  onEpochEnd?: (e: EpochSummary) => void;
  /**
   * Stops training after the update in progress (the report says stopped: 'aborted'). Progress events
   * trail the GPU by up to two updates (the loss is read back asynchronously), so aborting from
   * onProgress stops one or two updates after the one reported.
   */
  signal?: AbortSignal;
  /** Informational lines (loader, checkpoints, validation); default: silent. */
  log?: (line: string) => void;
  /** Folder relative paths are resolved against (default process.cwd()). */
  cwd?: string;
}

export interface TrainReport {
  /** 'done', or 'aborted' when the signal stopped it. */
  stopped: 'done' | 'aborted';
  /** Updates done. */
  iterations: number;
  epochs: number;
  /** Images seen. */
  images: number;
  /** The last update's loss (null when no update ran). */
  loss: number | null;
  history: EpochSummary[];
  best: { fitness: number; iteration: number; epoch: number } | null;
  /** Files written in `out`. */
  files: string[];
  /** Milliseconds the training loop spent awaiting the data loader's next batch, of `loopMs` (its wall time). */
  dataWaitMs: number;
  loopMs: number;
}

/**
 * Trains a model on a dataset. The model's parameters are updated in place; afterwards `model.detect`
 * uses them and `model.save(file)` writes them. Throws DatasetError, TrainError (non-finite loss ...).
 */
export async function train(opts: TrainOptions): Promise<TrainReport> {
  const model = opts.model;
  return model.exclusive(async () => {
    const cwd = opts.cwd ?? process.cwd();
    const abs = (p: string) => path.resolve(cwd, p);
    const hyp = typeof opts.hyp === 'string' ? { ...HYP_DEFAULTS, ...readHyp(abs(opts.hyp)) } : opts.hyp ? { ...HYP_DEFAULTS, ...opts.hyp } : undefined;
    const settings = resolveTrainSettings(model.network, {
      batch: opts.batch, subdivisions: opts.subdivisions, epochs: opts.epochs, maxBatches: opts.maxBatches, loss: opts.loss, hyp,
      schedule: opts.schedule, cosLr: opts.cosLr, optimizer: opts.optimizer, lr: opts.lr, ema: opts.ema, augment: opts.augment,
      multiScale: opts.multiScale, seed: opts.seed, workers: opts.workers, saveEvery: opts.saveEvery, valEvery: opts.valEvery ?? (opts.out ? 1 : 0), protocol: opts.protocol,
      freeze: opts.freeze,
    });
    const I = model.network.input;
    model.reloadForInference();
    try {
      const r = await trainNetwork({
        gpu: model.engine.gpu, network: model.network, data: abs(opts.data), settings, runDir: opts.out ? abs(opts.out) : undefined,
        buildEvalNetwork: () => Network.build(parseCfg(model.cfgText, model.cfgName), { width: I.w, height: I.h, channels: I.c }),
        onProgress: opts.onProgress, onEpochEnd: opts.onEpochEnd, log: opts.log ?? (() => {}), signal: opts.signal, cwd,
      });
      return {
        stopped: r.stopped, iterations: r.iteration, epochs: r.epoch, images: r.seen, loss: r.last?.loss ?? null,
        history: r.history, best: r.best, files: r.files.sort(), dataWaitMs: r.dataWaitMs, loopMs: r.loopMs,
      };
    } finally {
      // the trainer leaves the trained raw parameters on the host and the network prepared for training
      try {
        await model.network.pullParams();
      } catch { /* a failed run keeps whatever the host copies hold */ }
      model.reloadForInference();
    }
  });
}
