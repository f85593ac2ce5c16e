/**
 * `yolo-wgsl train`: trains a Darknet cfg on a dataset (Darknet .data or Ultralytics .yaml).
 *
 *   network      --cfg (built with --img as width/height), --weights to start from (else seeded init)
 *   data         src/data/loader.ts over the train split (augmentation from the cfg: jitter, hue,
 *                saturation, exposure, flip, mosaic; --no-augment for plain resizing)
 *   loss         src/yolo/loss.ts: 'darknet' ([yolo] loss) or 'yolov5' (ComputeLoss, --hyp gains)
 *   schedule     Darknet: the [net] policy over iterations (max_batches, or --max-batches); Ultralytics
 *                (--hyp, or --schedule ultralytics): warm-up + linear/cosine over --epochs
 *   optimizer    SGD from [net] momentum/decay (Darknet), Adam when [net] adam=1, or --optimizer
 *   validation   every --val-every epochs on the val split (src/eval through val.ts's network detector):
 *                P, R, mAP50, mAP50-95; fitness = 0.1·mAP50 + 0.9·mAP50-95 picks `best`
 *
 * Run folder (<out>/<name>, numbered exp, exp2, ... unless --exist-ok): args.json, weights/{last,best}
 * .weights + .state (src/train/checkpoint.ts), weights/final.weights, results.csv (a row per epoch),
 * results.png, metrics.png, loss.png, lr.png, val/ (the last validation's metrics.json and plots).
 * Ctrl-C saves `last` and stops; `--resume <run folder or checkpoint>` continues exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Gpu } from '../gpu/device.js';
import { Network } from '../darknet/network.js';
import { loadWeights } from '../darknet/weights.js';
import { BatchLoader } from '../data/loader.js';
import { augmentConfigFromNetwork } from '../data/augment.js';
import { loadDataset } from '../data/dataset.js';
import { lossFromNetwork, type LossKind } from '../yolo/loss.js';
import { scaleV5Hyp, type V5Hyp } from '../yolo/loss_v5.js';
import { fromDarknetNetwork } from './detect.js';
import { networkDetector, runVal } from './val.js';
import { isProtocol, type Protocol } from '../eval/types.js';
import { train, yoloTrainLoss, loadTrainCheckpoint, type EpochSummary, type EvalResult, type OptimizerKind, type OptimizerSettings, type Progress, type TrainResult, type TrainState } from '../train/trainer.js';
import { DarknetSchedule, UltralyticsSchedule, darknetHyper, type LrSchedule } from '../train/schedule.js';
import { downsample, writeTrainingPlots, type IterationPoint } from '../train/plots.js';
import { writeFileAtomic } from '../util/fs.js';

export interface TrainCliOptions {
  cfg?: string;
  data?: string;
  /** start from these .weights (their `seen` is ignored: the run starts at iteration 0) */
  weights?: string;
  epochs?: number;
  maxBatches?: number;
  /** images per update (default [net] batch) */
  batch?: number;
  /** mini-batches per update (default [net] subdivisions) */
  subdivisions?: number;
  /** network width = height */
  img?: number;
  /** a run folder or a checkpoint (.state / .weights); options not given come from its args.json */
  resume?: string;
  out?: string;
  name?: string;
  existOk?: boolean;
  loss?: LossKind;
  /** Ultralytics hyperparameters (hyp.scratch-low.yaml style) */
  hyp?: string;
  schedule?: 'darknet' | 'ultralytics';
  cosLr?: boolean;
  optimizer?: OptimizerKind;
  lr?: number;
  ema?: boolean;
  augment?: boolean;
  seed?: number;
  workers?: number;
  /** save `last` every N iterations (default 100; epoch ends always save) */
  saveEvery?: number;
  /** keep weights/iter_<n>.weights every N iterations (Darknet's numbered backups; default 0: none) */
  keepEvery?: number;
  /** validate every N epochs (default 1; 0: never) */
  valEvery?: number;
  protocol?: Protocol;
  /** progress: 'auto' (bar on a TTY), 'bar', 'lines', 'none' */
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  /** plain progress line every N iterations (default 10) */
  logEvery?: number;
  log?: (line: string) => void;
  /** an existing device (tests); default Gpu.create() */
  gpu?: Gpu;
  /** stop (as Ctrl-C); the CLI wires SIGINT to it */
  signal?: AbortSignal;
  cwd?: string;
}

export interface TrainCliResult extends TrainResult {
  runDir: string;
  files: string[];
}

/** The next free <out>/<name>, <name>2, <name>3, ... (Ultralytics increment_path). */
export function runFolder(out: string, name: string, existOk = false): string {
  const base = path.join(out, name);
  if (existOk || !fs.existsSync(base)) return base;
  for (let k = 2; ; k++) {
    const p = `${base}${k}`;
    if (!fs.existsSync(p)) return p;
  }
}

const HYP_DEFAULTS = { lr0: 0.01, lrf: 0.01, momentum: 0.937, weight_decay: 0.0005, warmup_epochs: 3.0, warmup_momentum: 0.8, warmup_bias_lr: 0.1 };

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

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** The progress line: epoch, batch in epoch, loss items, lr, throughput, ETA (and a bar when `width`). */
export function progressLine(p: Progress, epochs: number, barWidth = 0): string {
  const ep = epochs > 0 ? `${p.epoch + 1}/${epochs}` : `${p.epoch + 1}`;
  const bpe = p.batchesPerEpoch;
  const pos = bpe ? `${p.batchInEpoch}/${bpe}` : `${p.batchInEpoch}`;
  const items = Object.entries(p.lossItems).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join('  ');
  let bar = '';
  if (barWidth > 0 && bpe) {
    const f = Math.min(1, p.batchInEpoch / bpe);
    const n = Math.round(f * barWidth);
    bar = ` |${'#'.repeat(n)}${'.'.repeat(barWidth - n)}|`;
  }
  return `epoch ${ep} ${pos}${bar}  iter ${p.iteration}  loss ${p.loss.toPrecision(4)}${items ? `  ${items}` : ''}  lr ${p.lr.toExponential(2)}  ${p.imagesPerSec.toFixed(1)} img/s  ETA ${fmtDuration(p.eta)}`;
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

interface Args {
  cfg: string;
  data: string;
  weights?: string;
  img?: number;
  batch: number;
  subdivisions: number;
  epochs?: number;
  maxBatches?: number;
  loss: LossKind;
  schedule: 'darknet' | 'ultralytics';
  hyp: Record<string, number> | null;
  cosLr: boolean;
  optimizer: OptimizerKind;
  lr?: number;
  ema: boolean;
  augment: boolean;
  seed: number;
  workers?: number;
  saveEvery: number;
  valEvery: number;
  protocol: Protocol;
}

export async function runTrain(opts: TrainCliOptions): Promise<TrainCliResult> {
  const out = opts.log ?? ((l: string) => console.log(l));
  // a progress bar line in the way is ended first
  let barOpen = false;
  const log = (l: string) => {
    if (barOpen) {
      process.stdout.write('\n');
      barOpen = false;
    }
    out(l);
  };
  const cwd = opts.cwd ?? process.cwd();
  const abs = (p: string) => path.resolve(cwd, p);

  // ---------------------------------------------------------------- options (resume: from args.json)
  let resumeState: ReturnType<typeof loadTrainCheckpoint> | null = null;
  let runDir: string;
  let prev: Partial<Args> = {};
  if (opts.resume) {
    resumeState = loadTrainCheckpoint(abs(opts.resume));
    const wdir = path.dirname(resumeState.stateFile);
    runDir = path.basename(wdir) === 'weights' ? path.dirname(wdir) : wdir;
    const argsFile = path.join(runDir, 'args.json');
    if (fs.existsSync(argsFile)) prev = JSON.parse(fs.readFileSync(argsFile, 'utf8')) as Partial<Args>;
  } else {
    runDir = runFolder(abs(opts.out ?? 'runs/train'), opts.name ?? 'exp', opts.existOk);
  }
  const cfg = opts.cfg ? abs(opts.cfg) : prev.cfg;
  const data = opts.data ? abs(opts.data) : prev.data;
  if (!cfg) throw new Error('train: --cfg is required (or --resume a run folder with args.json)');
  if (!data) throw new Error('train: --data is required (or --resume a run folder with args.json)');
  const img = opts.img ?? prev.img;
  const net = Network.fromFile(cfg, img ? { width: img, height: img } : {});
  for (const w of net.warnings) log(`warning: ${w.file}:${w.line}: ${w.message}`);
  const hyperNet = darknetHyper(net.net);
  const hyp = opts.hyp ? { ...HYP_DEFAULTS, ...readHyp(abs(opts.hyp)) } : prev.hyp ?? null;
  const scheduleKind = opts.schedule ?? prev.schedule ?? (hyp ? 'ultralytics' : 'darknet');
  const batch = opts.batch ?? prev.batch ?? hyperNet.batch;
  let subdivisions = opts.subdivisions ?? prev.subdivisions ?? hyperNet.subdivisions;
  if (scheduleKind === 'ultralytics' && opts.subdivisions === undefined && prev.subdivisions === undefined) subdivisions = 1;
  if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(subdivisions) && subdivisions >= 1 && batch % subdivisions === 0)) {
    throw new Error(`train: batch ${batch} must be a positive multiple of subdivisions ${subdivisions}`);
  }
  const args: Args = {
    cfg, data, weights: opts.weights ? abs(opts.weights) : prev.weights, img,
    batch, subdivisions,
    epochs: opts.epochs ?? prev.epochs,
    maxBatches: opts.maxBatches ?? prev.maxBatches,
    loss: opts.loss ?? prev.loss ?? (scheduleKind === 'ultralytics' ? 'yolov5' : 'darknet'),
    schedule: scheduleKind,
    hyp,
    cosLr: opts.cosLr ?? prev.cosLr ?? false,
    optimizer: opts.optimizer ?? prev.optimizer ?? (hyperNet.adam ? 'adam' : 'sgd'),
    lr: opts.lr ?? prev.lr,
    ema: opts.ema ?? prev.ema ?? scheduleKind === 'ultralytics',
    augment: opts.augment ?? prev.augment ?? true,
    seed: opts.seed ?? prev.seed ?? 0,
    workers: opts.workers ?? prev.workers,
    saveEvery: opts.saveEvery ?? prev.saveEvery ?? 100,
    valEvery: opts.valEvery ?? prev.valEvery ?? 1,
    protocol: opts.protocol ?? prev.protocol ?? 'ultralytics',
  };
  if (!isProtocol(args.protocol)) throw new Error(`train: unknown protocol '${args.protocol}'`);
  if (scheduleKind === 'ultralytics' && !args.epochs) throw new Error('train: the Ultralytics schedule needs --epochs');
  if (!args.epochs && !args.maxBatches && !hyperNet.maxBatches) throw new Error('train: give --epochs or --max-batches (the cfg has no max_batches)');
  const miniBatch = batch / subdivisions;
  fs.mkdirSync(path.join(runDir, 'weights'), { recursive: true });
  writeFileAtomic(path.join(runDir, 'args.json'), `${JSON.stringify(args, null, 2)}\n`);
  log(`train: ${path.basename(cfg)} ${net.input.w}x${net.input.h}, ${net.paramCount} parameters; batch ${batch} = ${subdivisions} x ${miniBatch}; run folder ${runDir}`);

  // ---------------------------------------------------------------- weights
  if (!resumeState) {
    if (args.weights) {
      const h = loadWeights(net, args.weights);
      log(`weights ${args.weights} (seen ${h.seen}; training starts at iteration 0)`);
    } else {
      net.initWeights(args.seed + 1);
      log(`no --weights: seeded initialization (seed ${args.seed + 1})`);
    }
  }

  // ---------------------------------------------------------------- device, data, loss, schedule
  const ownGpu = !opts.gpu;
  const gpu = opts.gpu ?? (await Gpu.create({ log }));
  const spec = loadDataset(data, cwd);
  const augment = args.augment ? augmentConfigFromNetwork(net) : false;
  const loader = BatchLoader.open({
    dataset: spec, split: 'train', batchSize: miniBatch, width: net.input.w, height: net.input.h,
    augment, letterBox: net.net.letterBox, seed: args.seed, shuffle: true, workers: args.workers, log, cwd,
  });
  const heads = net.layers.filter((l) => l.kind === 'yolo');
  const yl = lossFromNetwork(net, args.loss === 'yolov5'
    ? { kind: 'yolov5', hyp: scaleV5Hyp((hyp ?? {}) as Partial<V5Hyp>, { nl: heads.length, nc: spec.nc, imgsz: net.input.w }) }
    : { kind: 'darknet' });
  let schedule: LrSchedule;
  let optimizer: OptimizerSettings;
  if (scheduleKind === 'ultralytics') {
    const h = hyp ?? HYP_DEFAULTS;
    const nbs = 64;
    schedule = new UltralyticsSchedule({
      lr0: args.lr ?? h.lr0, lrf: h.lrf, epochs: args.epochs!, batchesPerEpoch: loader.batchesPerEpoch, cosLr: args.cosLr,
      warmupEpochs: h.warmup_epochs, warmupMomentum: h.warmup_momentum, warmupBiasLr: h.warmup_bias_lr, momentum: h.momentum,
      nbs, batchSize: miniBatch, warmupMomentumEnabled: args.optimizer === 'sgd',
    });
    // train.py: weight_decay *= batch_size * accumulate / nbs; SGD with nesterov; Adam's beta1 = momentum
    const decay = h.weight_decay * (miniBatch * subdivisions) / nbs;
    optimizer = args.optimizer === 'sgd'
      ? { kind: 'sgd', lr: args.lr ?? h.lr0, momentum: h.momentum, nesterov: true, decay }
      : { kind: args.optimizer, lr: args.lr ?? h.lr0, beta1: h.momentum, beta2: 0.999, decay };
  } else {
    schedule = new DarknetSchedule({ ...hyperNet.schedule, learningRate: args.lr ?? hyperNet.schedule.learningRate });
    optimizer = { kind: args.optimizer, lr: args.lr };
  }

  // ---------------------------------------------------------------- evaluation
  const valSplit = !!spec.val;
  const evaluate = args.valEvery > 0 && valSplit
    ? async ({ network, epoch }: { network: Network; epoch: number }): Promise<EvalResult> => {
      const lines: string[] = [];
      const detector = networkDetector(gpu, fromDarknetNetwork(network, gpu), { batch: miniBatch });
      const r = await runVal({ data, split: 'val', protocol: args.protocol, out: path.join(runDir, 'val'), detector, log: (l) => lines.push(l), cwd });
      const s = r.summary;
      log(`  val epoch ${epoch + 1}: P ${s.precision.toFixed(4)}  R ${s.recall.toFixed(4)}  mAP50 ${s.map50.toFixed(4)}  mAP50-95 ${s.map50_95.toFixed(4)}  (${s.numImages} images, ${s.instances} objects, ${s.detections} detections)`);
      return { fitness: 0.1 * s.map50 + 0.9 * s.map50_95, metrics: { precision: s.precision, recall: s.recall, map50: s.map50, map50_95: s.map50_95 } };
    }
    : undefined;
  if (args.valEvery > 0 && !valSplit) log('warning: the dataset has no val split: no validation, `best` is not written');

  // ---------------------------------------------------------------- progress, results, plots
  const mode = opts.progress ?? 'auto';
  const bar = mode === 'bar' || (mode === 'auto' && !!process.stdout.isTTY && !opts.log);
  const logEvery = Math.max(1, opts.logEvery ?? 10);
  const iterations: IterationPoint[] = [];
  const resumedIters = (resumeState?.state.extra as { iterations?: IterationPoint[] } | null)?.iterations;
  if (resumedIters) iterations.push(...resumedIters);
  const onProgress = (p: Progress) => {
    iterations.push({ iteration: p.iteration, loss: p.loss, lr: p.lr });
    if (mode === 'none') return;
    if (bar) {
      process.stdout.write(`\r\x1b[K${progressLine(p, args.epochs ?? 0, 20)}`);
      barOpen = true;
    } else if (p.iteration % logEvery === 0 || p.iteration === 1) log(progressLine(p, args.epochs ?? 0));
  };
  const files = new Set<string>();
  const writeResults = (history: readonly EpochSummary[]) => {
    const csv = path.join(runDir, 'results.csv');
    writeFileAtomic(csv, resultsCsv(history));
    files.add(csv);
    for (const f of writeTrainingPlots(runDir, history, iterations)) files.add(f);
  };
  let historyNow: EpochSummary[] = [...(resumeState?.state.history ?? [])];
  const onEpochEnd = (e: EpochSummary) => {
    historyNow = [...historyNow.filter((h) => h.epoch !== e.epoch), e];
    if (mode !== 'none') log(`epoch ${e.epoch + 1}${args.epochs ? `/${args.epochs}` : ''} done: iteration ${e.iteration}, loss ${e.loss.toPrecision(4)}${Object.entries(e.lossItems).map(([k, v]) => ` ${k} ${v.toPrecision(4)}`).join('')}, ${e.seconds.toFixed(1)} s${e.fitness !== undefined ? `, fitness ${e.fitness.toFixed(4)}` : ''}`);
    writeResults(historyNow);
  };

  // ---------------------------------------------------------------- Ctrl-C
  const ac = new AbortController();
  const relay = () => ac.abort();
  opts.signal?.addEventListener('abort', relay);
  if (opts.signal?.aborted) ac.abort();
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints > 1) {
      log('second interrupt: exiting without saving');
      process.exit(130);
    }
    log('\ninterrupt: finishing the current step, saving last (Ctrl-C again to quit at once)');
    ac.abort();
  };
  // SIGINT here only when the caller passed no signal of its own (src/cli/main.ts wires Ctrl-C to one)
  const cliSignals = ownGpu && !opts.signal;
  if (cliSignals) process.on('SIGINT', onSigint);

  let result: TrainResult;
  try {
    result = await train({
      gpu, network: net, loader, loss: yoloTrainLoss(yl), optimizer, schedule, subdivisions,
      epochs: args.epochs, maxBatches: args.maxBatches ?? (args.epochs ? undefined : hyperNet.maxBatches),
      ema: args.ema, checkpointDir: path.join(runDir, 'weights'), saveEvery: args.saveEvery, keepEvery: opts.keepEvery,
      evaluate, evalEveryEpochs: args.valEvery,
      buildEvalNetwork: () => Network.fromFile(cfg, { width: net.input.w, height: net.input.h, channels: net.input.c }),
      resume: resumeState ?? undefined,
      extraState: () => ({ iterations: downsample(iterations, 20000) }),
      onProgress, onEpochEnd, log, signal: ac.signal,
    });
  } finally {
    if (barOpen) process.stdout.write('\n');
    if (cliSignals) process.off('SIGINT', onSigint);
    opts.signal?.removeEventListener('abort', relay);
    await loader.close();
    net.dispose();
    if (ownGpu) gpu.dispose();
  }
  writeResults(result.history);
  const w = path.join(runDir, 'weights');
  for (const f of ['last.weights', 'last.state', 'best.weights', 'best.state', 'final.weights']) if (fs.existsSync(path.join(w, f))) files.add(path.join(w, f));
  files.add(path.join(runDir, 'args.json'));
  const how = result.stopped === 'aborted' ? 'interrupted' : 'finished';
  log(`train ${how} at iteration ${result.iteration} (epoch ${result.epoch}, ${result.seen} images)${result.best ? `; best fitness ${result.best.fitness.toFixed(4)} at epoch ${result.best.epoch + 1}` : ''}; results in ${runDir}`);
  if (result.stopped === 'aborted') log(`resume with: yolo-wgsl train --resume ${runDir}`);
  return { ...result, runDir, files: [...files].sort() };
}

/** For tests and tools: the state of a run's newest consistent `last` checkpoint. */
export function readRunState(runDir: string): TrainState {
  return loadTrainCheckpoint(runDir).state;
}
