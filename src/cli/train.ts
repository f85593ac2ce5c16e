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
 * labels.jpg, results.png, chart.png, metrics.png, loss.png, lr.png (src/train/plots.ts), val/ (the last
 * validation's metrics.json, plots and val batch mosaics).
 * Ctrl-C saves `last` and stops; `--resume <run folder or checkpoint>` continues exactly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { Network } from '../darknet/network.js';
import { WeightsError, type WeightsHeader } from '../darknet/weights.js';
import { loadStartWeights } from '../api/model.js';
import { loadTrainCheckpoint } from '../train/checkpointing.js';
import { TrainError, type EpochSummary, type Progress, type TrainResult, type TrainState } from '../train/types.js';
import { darknetHyper } from '../train/schedule.js';
import { writeFileAtomic } from '../util/fs.js';
import { HYP_DEFAULTS, readHyp, resolveTrainSettings, trainNetwork, type TrainSettings } from '../api/train.js';

// The training core (loader, loss, schedule, validation, results files) is src/api/train.ts, which the
// library's train() uses too; these stay importable from here.

/**
 * The `train` command's options: the training settings (src/api/train.ts TrainSettings, all optional:
 * what is not given comes from --resume's args.json, then the cfg), plus the run folder and console.
 */
export interface TrainCliOptions extends Partial<Omit<TrainSettings, 'hyp'>> {
  cfg?: string;
  data?: string;
  /**
   * start from these .weights: a whole file, or a cut one (Darknet's `partial` output, e.g.
   * yolov4-tiny.conv.29: the layers after the cut start from the seeded initialization). In Darknet mode the
   * run continues from their `seen` (Darknet's iteration seen / batch) unless `clear`.
   */
  weights?: string;
  /**
   * the cfg the --weights were made with, when it differs from --cfg (another class count): transfer by
   * shape (every layer whose kind and parameter shapes match; the rest start from the initialization)
   */
  weightsCfg?: string;
  /** Darknet's -clear: start from iteration 0 whatever the weights' `seen` says */
  clear?: boolean;
  /** network width = height */
  img?: number;
  /** a run folder or a checkpoint (.state / .weights); options not given come from its args.json */
  resume?: string;
  out?: string;
  name?: string;
  existOk?: boolean;
  /** Ultralytics hyperparameters (hyp.scratch-low.yaml style) */
  hyp?: string;
  /** keep weights/iter_<n>.weights every N iterations (Darknet's numbered backups; default 0: none) */
  keepEvery?: number;
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

interface Args extends TrainSettings {
  cfg: string;
  data: string;
  weights?: string;
  weightsCfg?: string;
  clear?: boolean;
  /** Darknet's continuation: the iteration the run started from (the weights' seen / batch; 0 with --clear) */
  startIteration?: number;
  img?: number;
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
  const hyp = opts.hyp ? { ...HYP_DEFAULTS, ...readHyp(abs(opts.hyp)) } : undefined;
  const settings = resolveTrainSettings(net, { ...opts, hyp }, prev);
  const args: Args = {
    cfg, data, weights: opts.weights ? abs(opts.weights) : prev.weights, weightsCfg: opts.weightsCfg ? abs(opts.weightsCfg) : prev.weightsCfg,
    clear: opts.clear ?? prev.clear, startIteration: prev.startIteration, img, ...settings,
  };
  const { batch, subdivisions } = args;
  const miniBatch = batch / subdivisions;

  // ---------------------------------------------------------------- weights (before the run folder: a bad file leaves none)
  const weightsLines: string[] = [];
  if (!resumeState) {
    if (args.weightsCfg && !args.weights) throw new Error('train: --weights-cfg names the cfg of the --weights: give --weights too');
    if (args.weights) {
      const seed = args.seed + 1;
      let h: WeightsHeader;
      try {
        const r = loadStartWeights(net, { weights: args.weights, partial: true, weightsCfg: args.weightsCfg, seed });
        h = r.header;
        weightsLines.push(`weights: ${r.line}`);
      } catch (e) {
        // weights of another cfg (another class count): say how to transfer what fits
        if (e instanceof WeightsError && !args.weightsCfg && /wrong cfg for these weights/.test(e.message)) {
          throw new WeightsError(`${e.message}. Weights made for another cfg (another class count)? Give that cfg with --weights-cfg to transfer every layer whose shapes match`, e.file);
        }
        throw e;
      }
      args.startIteration = !args.clear && settings.schedule === 'darknet' ? Number(h.seen / BigInt(batch)) : 0;
      if (h.seen === 0n) {
        // nothing to continue from (a cut file from Darknet's partial has seen 0)
      } else if (args.clear) weightsLines.push(`--clear: the weights' seen (${h.seen} images) is ignored; the run starts at iteration 0 (Darknet's -clear)`);
      else if (settings.schedule !== 'darknet') weightsLines.push(`the weights' seen (${h.seen} images) is ignored: the Ultralytics schedule starts at epoch 0`);
      else {
        const k0 = args.startIteration;
        const bound = settings.maxBatches ?? (settings.epochs ? undefined : darknetHyper(net.net).maxBatches);
        if (bound !== undefined && k0 >= bound) {
          throw new TrainError('config', `train: ${args.weights} has seen ${h.seen} images: Darknet's iteration ${k0} (seen / batch ${batch}), already at or past max_batches ${bound}: nothing is left to train (Darknet stops at once). Give --clear (Darknet's -clear) to start from iteration 0, or a larger --max-batches`);
        }
        weightsLines.push(`the weights have seen ${h.seen} images: Darknet's iteration ${k0} (seen / batch ${batch}); as Darknet without -clear, the schedule continues from update ${k0 + 1}${bound !== undefined ? ` and the run ends at max_batches ${bound} (${bound - k0} updates, counted from 1 here)` : ''}; --clear starts from iteration 0`);
      }
    } else {
      net.initWeights(args.seed + 1);
      weightsLines.push(`no --weights: seeded initialization (seed ${args.seed + 1})`);
    }
  }
  fs.mkdirSync(path.join(runDir, 'weights'), { recursive: true });
  writeFileAtomic(path.join(runDir, 'args.json'), `${JSON.stringify(args, null, 2)}\n`);
  log(`train: ${path.basename(cfg)} ${net.input.w}x${net.input.h}, ${net.paramCount} parameters; batch ${batch} = ${subdivisions} x ${miniBatch}; run folder ${runDir}`);
  for (const l of weightsLines) log(l);

  // ---------------------------------------------------------------- device
  const ownGpu = !opts.gpu;
  const gpu = opts.gpu ?? (await Gpu.create({ log }));

  // ---------------------------------------------------------------- progress
  const mode = opts.progress ?? 'auto';
  const bar = mode === 'bar' || (mode === 'auto' && !!process.stdout.isTTY && !opts.log);
  const logEvery = Math.max(1, opts.logEvery ?? 10);
  const onProgress = (p: Progress) => {
    if (mode === 'none') return;
    if (bar) {
      process.stdout.write(`\r\x1b[K${progressLine(p, args.epochs ?? 0, 20)}`);
      barOpen = true;
    } else if (p.iteration % logEvery === 0 || p.iteration === 1) log(progressLine(p, args.epochs ?? 0));
  };
  const onEpochEnd = (e: EpochSummary) => {
    if (mode !== 'none') log(`epoch ${e.epoch + 1}${args.epochs ? `/${args.epochs}` : ''} done: iteration ${e.iteration}, loss ${e.loss.toPrecision(4)}${Object.entries(e.lossItems).map(([k, v]) => ` ${k} ${v.toPrecision(4)}`).join('')}, ${e.seconds.toFixed(1)} s${e.fitness !== undefined ? `, fitness ${e.fitness.toFixed(4)}` : ''}`);
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

  let result: TrainResult & { files: string[] };
  try {
    result = await trainNetwork({
      gpu, network: net, data, settings, runDir, keepEvery: opts.keepEvery,
      buildEvalNetwork: () => Network.fromFile(cfg, { width: net.input.w, height: net.input.h, channels: net.input.c }),
      resume: resumeState ?? undefined, startIteration: args.startIteration ?? 0, onProgress, onEpochEnd, log, signal: ac.signal, cwd,
    });
  } finally {
    if (barOpen) process.stdout.write('\n');
    if (cliSignals) process.off('SIGINT', onSigint);
    opts.signal?.removeEventListener('abort', relay);
    net.dispose();
    if (ownGpu) gpu.dispose();
  }
  const files = new Set(result.files);
  files.add(path.join(runDir, 'args.json'));
  const how = result.stopped === 'aborted' ? 'interrupted' : 'finished';
  log(`train ${how} at iteration ${result.iteration} (epoch ${result.epoch}, ${result.seen} images)${result.best ? `; best fitness ${result.best.fitness.toFixed(4)} at epoch ${result.best.epoch + 1}` : ''}; results in ${runDir}`);
  if (result.loopMs > 0) log(`data: the loop waited ${(result.dataWaitMs / 1000).toFixed(1)} s of ${(result.loopMs / 1000).toFixed(1)} s for batches (${((100 * result.dataWaitMs) / result.loopMs).toFixed(1)}%)`);
  if (result.stopped === 'aborted') log(`resume with: yolo-wgsl train --resume ${runDir}`);
  const { files: _f, ...rest } = result;
  return { ...rest, runDir, files: [...files].sort() };
}

/** For tests and tools: the state of a run's newest consistent `last` checkpoint. */
export function readRunState(runDir: string): TrainState {
  return loadTrainCheckpoint(runDir).state;
}
