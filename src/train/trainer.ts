/**
 * The training loop. Pluggable pieces:
 *
 *   network    a built src/darknet Network with host parameters (loaded .weights or initWeights), or the
 *              network to restore a checkpoint into (`resume`)
 *   loader     BatchLoader: an AsyncIterable of mini-batches; ONE pass of its iterator is one epoch (the
 *              trainer asks for a new iterator at each epoch); state()/restore() position it exactly
 *   loss       TrainLoss: compute(heads, truths, ctx) -> { loss: [1] tensor, items: named [1] tensors },
 *              recorded on the tape (the YOLO losses plug in here)
 *   optimizer  SGD from [net] momentum/decay by default (Darknet), Adam from [net] adam=1, or AdamW; weight
 *              decay on conv/connected weights only (not on biases or batchnorm scales); per-layer
 *              learning_rate scale from the cfg
 *   schedule   an LrSchedule (default: the [net] policy, src/train/schedule.ts)
 *   ema        optional ModelEma of all parameters and batchnorm statistics, used for evaluation and saving
 *
 * One update = `subdivisions` mini-batches (forward + backward each, gradients accumulated), then one
 * optimizer step with gradScale 1/(images in the update) for a loss summed over images (Darknet's
 * convention; reduction 'mean' uses 1/subdivisions). An epoch end always closes the update in progress.
 * Checkpoints (src/train/checkpoint.ts) `last` every `saveEvery` updates, at epoch ends, on abort and at
 * the end; `best` when the evaluation's fitness improves; `final.weights` at the end.
 *
 * No synchronous readback per step: the loss and its items are copied into a small tensor per update and
 * read back asynchronously (at most `maxInFlight` reads outstanding). A non-finite value stops the run with
 * the update named; a checkpoint is written only after every earlier loss was read and found finite and
 * the parameters read back are finite, so the last checkpoint on disk is always a good one.
 *
 * Exact resume: the state file holds the iteration/epoch counters, optimizer moments and step counts, EMA
 * tensors and update count, the raw parameters when the .weights hold the EMA, the schedule and loader
 * states and any registered RNGs, all taken at an update boundary. A run of 2N updates and a run of N
 * updates + save + a fresh Network/optimizer resumed from the checkpoint + N updates give identical bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Gpu } from '../gpu/device.js';
import type { Network } from '../darknet/network.js';
import { Network as NetworkClass } from '../darknet/network.js';
import type { Layer, ParamRole } from '../darknet/layer.js';
import { decodeWeights, encodeWeights } from '../darknet/weights.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { newTape } from '../tensor/index.js';
import { Adam, AdamW, SGD, type Optimizer, type OptimizerState, type ParamSpec } from './optim.js';
import { DarknetSchedule, darknetHyper, type LrSchedule, type ScheduleValues } from './schedule.js';
import { ModelEma, type EmaOptions, type EmaState } from './ema.js';
import { readCheckpoint, locateCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import type { Rng } from '../util/rng.js';
import type { Truth, YoloLoss } from '../yolo/loss.js';
import { writeFileAtomic } from '../util/fs.js';
import { firstNonFinite } from '../util/validate.js';

// ------------------------------------------------------------------------------------------ interfaces

/** A ground-truth box normalized to the network input: centre x, y, size w, h, class (src/yolo/targets.ts Truth). */
export type TruthBox = Truth;

/** One mini-batch: images NCHW float32 in [0, 1], and the truths of each image. */
export interface Batch<T = TruthBox> {
  images: Float32Array;
  shape: readonly [number, number, number, number];
  truths: readonly (readonly T[])[];
}

/**
 * Mini-batches. An epoch ends when `batchesPerEpoch` batches of it were handed out (when the loader says
 * how many), or when its iterator ends (the trainer then starts a new iteration for the next epoch). Both
 * kinds work: one iteration per epoch, or one endless iteration over all epochs (src/data/loader.ts).
 * `state()` describes the position after the last batch handed out (epoch, index, shuffle seed,
 * augmentation RNG: whatever makes the rest of the run identical) as JSON-able data (Float32Array allowed);
 * `restore(s)` followed by a new iteration yields the batch that followed. A prefetching loader reports
 * the consumer's position, not its own.
 */
export interface BatchLoader<T = TruthBox> extends AsyncIterable<Batch<T>> {
  state(): unknown;
  restore(state: unknown): void;
  /** Batches per epoch when known (ETA, epoch-based schedules). */
  readonly batchesPerEpoch?: number;
}

export interface LossContext {
  network: Network;
  /** The layers whose outputs are `heads`, in that order. */
  headLayers: readonly Layer[];
  /** The update this mini-batch contributes to (1-based) and the epoch (0-based). */
  iteration: number;
  epoch: number;
}

export interface LossResult {
  /** The scalar loss ([1]) to backpropagate. */
  loss: Tensor;
  /**
   * Values to report, read back asynchronously: named [1] tensors, or one tensor with `itemNames`
   * (e.g. YoloLoss's [3] box, obj, cls).
   */
  items?: Record<string, Tensor> | Tensor;
  itemNames?: readonly string[];
  /** Frees what the loss allocated outside the tape (called after the backward and the item copies). */
  dispose?: () => void;
}

/**
 * The loss seam. `heads` are the outputs of the layers `headSources` (default: the network's output
 * layers, [yolo]/[region]/...: Darknet's l.output) in that order, recorded on the current tape; `compute`
 * runs inside tape.record and must record its ops (or push its own tape node). src/yolo/loss.ts's
 * YoloLoss plugs in through `yoloTrainLoss`.
 */
export interface TrainLoss<T = TruthBox> {
  /** Layer indices whose outputs `compute` receives (default: Network.outputLayers()). */
  readonly headSources?: readonly number[];
  /** Head sources `compute` receives before their activation (Network ForwardOptions.logits). */
  readonly logitSources?: readonly number[];
  compute(heads: Tensor[], truths: readonly (readonly T[])[], ctx: LossContext): LossResult;
  /** 'sum' over images (Darknet, default): gradScale 1/images per update; 'mean': 1/subdivisions. */
  readonly reduction?: 'sum' | 'mean';
  /** The optimizer's gradScale for an update of `images` images (wins over `reduction`). */
  gradScale?(images: number): number;
}

/**
 * Adapts a src/yolo/loss.ts YoloLoss (Darknet's [yolo] loss or YOLOv5's ComputeLoss): the head inputs
 * (the head convolutions' outputs), its gradScale, items box/obj/cls.
 */
export function yoloTrainLoss(yl: YoloLoss): TrainLoss<Truth> {
  return {
    headSources: yl.headSources,
    logitSources: yl.logitSources,
    gradScale: (images: number) => yl.gradScale(images),
    compute(heads, truths, ctx) {
      const out = yl.compute(heads, truths, { netSize: { w: ctx.network.input.w, h: ctx.network.input.h } });
      return { loss: out.loss, items: out.items, itemNames: ['box', 'obj', 'cls'], dispose: () => out.dispose() };
    },
  };
}

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface OptimizerSettings {
  kind?: OptimizerKind;
  /** base rate (the schedule's rate replaces it at every update) */
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  decay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface Progress {
  iteration: number;
  epoch: number;
  /** mini-batches done in this epoch */
  batchInEpoch: number;
  batchesPerEpoch?: number;
  /** mean loss per mini-batch of this update, and its items */
  loss: number;
  lossItems: Record<string, number>;
  lr: number;
  seen: number;
  imagesPerSec: number;
  /** seconds left (NaN when unknown) */
  eta: number;
  elapsed: number;
}

export interface EpochSummary {
  epoch: number;
  iteration: number;
  /** mean over the epoch's updates */
  loss: number;
  lossItems: Record<string, number>;
  lr: number;
  seconds: number;
  fitness?: number;
  metrics?: Record<string, number>;
}

export interface EvalContext {
  gpu: Gpu;
  /** An inference network (prepared 'infer') holding the evaluated weights (the EMA when enabled). */
  network: Network;
  iteration: number;
  /** the epoch just completed (epoch-end evaluations) or in progress (by iterations), 0-based */
  epoch: number;
}

export interface EvalResult {
  /** Higher is better (e.g. 0.1·mAP50 + 0.9·mAP50-95). */
  fitness: number;
  metrics?: Record<string, number>;
}

export interface TrainOptions<T = TruthBox> {
  gpu: Gpu;
  network: Network;
  loader: BatchLoader<T>;
  loss: TrainLoss<T>;
  optimizer?: OptimizerKind | OptimizerSettings;
  schedule?: LrSchedule;
  /** mini-batches per update (default [net] subdivisions) */
  subdivisions?: number;
  /** stop after this many updates (default [net] max_batches when `epochs` is not given) */
  maxBatches?: number;
  /** stop after this many epochs */
  epochs?: number;
  /** EMA of the parameters (default off) */
  ema?: boolean | EmaOptions;
  /** folder for last/best checkpoints and final.weights (none: nothing is saved) */
  checkpointDir?: string;
  /** save `last` every N updates (default 100, Darknet's _last; 0: only at epoch ends and the end) */
  saveEvery?: number;
  /** also save `last` at each epoch end (default true) */
  saveEpochs?: boolean;
  /** keep a numbered copy `iter_<n>.weights` every N updates (Darknet's _<n>.weights backups; default 0) */
  keepEvery?: number;
  /** evaluation for `best` (and the epoch summary's metrics) */
  evaluate?: (ctx: EvalContext) => Promise<EvalResult> | EvalResult;
  /** evaluate every N epochs (default 1) and/or every N updates (default 0: not by updates) */
  evalEveryEpochs?: number;
  evalEveryIterations?: number;
  /** builds the inference network used for evaluation (default: Network.fromFile(network.file) at the same size) */
  buildEvalNetwork?: () => Network;
  /** resume: a checkpoint folder, a .state/.weights file, or a loaded checkpoint */
  resume?: string | LoadedCheckpoint<TrainState>;
  /** RNGs whose state is saved and restored (augmentation, ...) */
  rngs?: Record<string, Rng>;
  /** extra JSON-able state saved with checkpoints (given back as `resumedExtra`) */
  extraState?: () => unknown;
  onProgress?: (p: Progress) => void;
  onEpochEnd?: (e: EpochSummary) => void | Promise<void>;
  /** informational lines */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** read the loss back every N updates (default 1) */
  lossEvery?: number;
  /** outstanding loss reads before the loop waits (default 2) */
  maxInFlight?: number;
}

/** What the state file holds (src/train/checkpoint.ts stores it with the .weights). */
export interface TrainState {
  version: 1;
  iteration: number;
  epoch: number;
  batchInEpoch: number;
  seen: number;
  optimizer: OptimizerState;
  ema: EmaState | null;
  /** raw (non-EMA) parameters when the .weights hold the EMA */
  rawParams: { key: string; data: Float32Array }[] | null;
  schedule: Record<string, unknown>;
  loader: unknown;
  rngs: Record<string, number>;
  best: { fitness: number; iteration: number; epoch: number } | null;
  history: EpochSummary[];
  extra: unknown;
  network: { file: string; input: { c: number; h: number; w: number }; params: number };
}

export interface TrainResult {
  iteration: number;
  epoch: number;
  seen: number;
  stopped: 'done' | 'aborted';
  best: TrainState['best'];
  history: EpochSummary[];
  last: Progress | null;
  /** what `extraState` saved in the checkpoint this run resumed from */
  resumedExtra?: unknown;
  /** the checkpoint generation resumed from */
  resumedFrom?: { file: string; iteration: number; generation: number; fellBack: boolean };
}

export class TrainError extends Error {
  override name = 'TrainError';
  constructor(readonly kind: 'non-finite' | 'config' | 'data', message: string, readonly iteration?: number) {
    super(message);
  }
}

// ------------------------------------------------------------------------------------------ parameters

export interface NetworkParam {
  /** `<layer index>.<param name>`, unique */
  key: string;
  layer: Layer;
  name: string;
  tensor: Tensor;
  trainable: boolean;
  /** weight decay applies (conv/connected weights) */
  decay: boolean;
  /** Darknet per-layer learning_rate scale */
  lrScale: number;
  /** Ultralytics parameter group: weights (decay), bn (scales, no decay), bias (no decay); buffer: statistics */
  group: ParamRole;
}

/**
 * Every parameter and batchnorm statistic of a network prepared for training, in .weights order (layer
 * order, then the layer's ParamSpec order): Network.parameters('train') with the optimizer's view of each.
 */
export function networkParams(net: Network): NetworkParam[] {
  return net.parameters('train').map(({ key, layer, name, tensor, role }) => {
    const trainable = role !== 'buffer' && tensor.requiresGrad;
    return { key, layer, name, tensor, trainable, decay: role === 'weights', lrScale: layer.common?.learningRateScale ?? 1, group: role };
  });
}

/** TrainError naming the file:line of the first layer that cannot be trained (Layer.trainingUnsupported). */
function refuseUntrainable(net: Network): void {
  for (const l of net.layers) {
    const why = l.trainingUnsupported();
    if (why) throw new TrainError('config', `${l.where}: layer ${l.index} ${l.section.label} cannot be trained: ${why}`);
  }
}

// ------------------------------------------------------------------------------------------ helpers

function buildOptimizer(kind: OptimizerKind, specs: ParamSpec[], s: OptimizerSettings, net: Network): Optimizer {
  const h = darknetHyper(net.net);
  const lr = s.lr ?? h.schedule.learningRate;
  const decay = s.decay ?? h.decay;
  if (kind === 'sgd') return new SGD(specs, { lr, momentum: s.momentum ?? h.momentum, decay, nesterov: s.nesterov ?? false });
  const beta1 = s.beta1 ?? h.adam?.beta1 ?? 0.9;
  const beta2 = s.beta2 ?? h.adam?.beta2 ?? 0.999;
  const eps = s.eps ?? h.adam?.eps ?? 1e-8;
  if (kind === 'adam') return new Adam(specs, { lr, decay, beta1, beta2, eps });
  if (kind === 'adamw') return new AdamW(specs, { lr, decay, beta1, beta2, eps });
  throw new TrainError('config', `unknown optimizer '${String(kind)}' (sgd, adam, adamw)`);
}

interface PendingRead {
  iteration: number;
  done: Promise<void>;
}

// ------------------------------------------------------------------------------------------ trainer

class Trainer<T> {
  private readonly o: TrainOptions<T>;
  private readonly gpu: Gpu;
  private readonly net: Network;
  private readonly log: (l: string) => void;
  private params!: NetworkParam[];
  private opt!: Optimizer;
  private biasSpecs!: ParamSpec[];
  private otherSpecs!: ParamSpec[];
  private ema: ModelEma | null = null;
  private schedule!: LrSchedule;
  private headLayers!: Layer[];
  private headSources!: number[];
  private subdivisions!: number;
  private maxBatches = 0;
  private epochs = 0;

  iteration = 0;
  epoch = 0;
  batchInEpoch = 0;
  seen = 0;
  private best: TrainState['best'] = null;
  private history: EpochSummary[] = [];
  /** loader state and batchInEpoch at the last update boundary */
  private boundary: { loader: unknown; batchInEpoch: number } = { loader: undefined, batchInEpoch: 0 };
  // the update in progress
  private sub = 0;
  private updImages = 0;
  private stats: Tensor | null = null;
  private itemNames: string[] | null = null;
  private lastValues: ScheduleValues = { lr: 0 };
  // asynchronous readback
  private pending: PendingRead[] = [];
  private chain: Promise<void> = Promise.resolve();
  private nonFinite: { iteration: number; epoch: number; what: string; value: number } | null = null;
  private epochAgg = { n: 0, loss: 0, items: [] as number[] };
  private epochStart = performance.now();
  private lastProgress: Progress | null = null;
  // timing
  private readonly t0 = performance.now();
  private tLast = 0;
  private secPerUpdate = NaN;
  private imagesPerSec = 0;
  private evalNet: Network | null = null;
  private resumedExtra: unknown;
  private resumedFrom: TrainResult['resumedFrom'];
  private lastSaved: { iteration: number; file: string } | null = null;

  constructor(o: TrainOptions<T>) {
    this.o = o;
    this.gpu = o.gpu;
    this.net = o.network;
    this.log = o.log ?? (() => {});
  }

  private get reduction(): 'sum' | 'mean' {
    return this.o.loss.reduction ?? 'sum';
  }

  // -------------------------------------------------------------- setup / resume

  async setup(): Promise<void> {
    const o = this.o;
    refuseUntrainable(this.net);
    const hyper = darknetHyper(this.net.net);
    let ck: LoadedCheckpoint<TrainState> | null = null;
    if (o.resume !== undefined) {
      if (typeof o.resume === 'string') {
        const loc = locateCheckpoint(o.resume);
        ck = readCheckpoint<TrainState>(loc.dir, loc.name);
        if (!ck) throw new TrainError('config', `resume: no checkpoint '${loc.name}' in ${loc.dir}`);
      } else ck = o.resume;
      if (ck.fellBack) this.log(`resume: the newest files were not a consistent pair (${ck.rejected.join('; ')}); using ${ck.stateFile}`);
      const s = ck.state;
      if (s.version !== 1) throw new TrainError('config', `resume: state version ${String(s.version)} is not supported`);
      decodeWeights(this.net, ck.weights, ck.weightsFile);
      if (s.rawParams) {
        const byKey = new Map(s.rawParams.map((r) => [r.key, r.data]));
        for (const l of this.net.layers) {
          if (!l.data) continue;
          for (const p of l.params) {
            const d = byKey.get(`${l.index}.${p.name}`);
            if (d) {
              if (d.length !== p.count) throw new TrainError('config', `resume: raw parameter ${l.index}.${p.name} has ${d.length} values, the network ${p.count}`);
              l.data[p.name] = d;
            }
          }
        }
      }
    }
    this.net.release();
    this.net.prepare(this.gpu, 'train');

    this.params = networkParams(this.net);
    const specs: ParamSpec[] = [];
    this.biasSpecs = [];
    this.otherSpecs = [];
    for (const p of this.params) {
      if (!p.trainable) continue;
      if (p.layer.common?.dontUpdate) {
        p.tensor.requiresGrad = false;
        p.trainable = false;
        continue;
      }
      const spec: ParamSpec = { param: p.tensor, decay: p.decay, lrScale: p.lrScale };
      specs.push(spec);
      (p.group === 'bias' ? this.biasSpecs : this.otherSpecs).push(spec);
    }
    if (!specs.length) throw new TrainError('config', `${this.net.file}: nothing to train (no trainable parameters)`);
    const os: OptimizerSettings = typeof o.optimizer === 'string' ? { kind: o.optimizer } : o.optimizer ?? {};
    const kind: OptimizerKind = os.kind ?? (hyper.adam ? 'adam' : 'sgd');
    this.opt = buildOptimizer(kind, specs, os, this.net);
    this.schedule = o.schedule ?? new DarknetSchedule({ ...hyper.schedule, learningRate: os.lr ?? hyper.schedule.learningRate });
    if (o.ema) {
      const eo = o.ema === true ? {} : o.ema;
      this.ema = new ModelEma(this.params.map((p) => ({ name: p.key, tensor: p.tensor })), eo);
    }
    this.headSources = [...(o.loss.headSources ?? this.net.outputLayers())];
    for (const i of this.headSources) if (!(Number.isInteger(i) && i >= 0 && i < this.net.layers.length)) throw new TrainError('config', `loss head source ${i} is not a layer of ${this.net.file}`);
    this.headLayers = this.headSources.map((i) => this.net.layers[i]);
    this.subdivisions = o.subdivisions ?? this.net.net.subdivisions;
    if (!(Number.isInteger(this.subdivisions) && this.subdivisions >= 1)) throw new TrainError('config', `subdivisions must be an integer >= 1, got ${this.subdivisions}`);
    this.epochs = o.epochs ?? 0;
    this.maxBatches = o.maxBatches ?? (o.epochs ? 0 : hyper.maxBatches);
    if (!(this.epochs > 0) && !(this.maxBatches > 0)) throw new TrainError('config', 'nothing bounds the run: give epochs or max batches (or max_batches in [net])');

    if (ck) {
      const s = ck.state;
      this.opt.importState(s.optimizer);
      if (s.ema && this.ema) this.ema.importState(s.ema);
      else if (this.ema) {
        // resuming a run without EMA: start the average at the current weights
        this.ema.reset(0);
        this.log('resume: the checkpoint has no EMA; the average starts from the resumed weights');
      }
      this.schedule.restore(s.schedule);
      if (s.loader !== undefined && s.loader !== null) this.o.loader.restore(s.loader);
      for (const [k, v] of Object.entries(s.rngs ?? {})) {
        const r = this.o.rngs?.[k];
        if (r) r.state = v;
      }
      this.iteration = s.iteration;
      this.epoch = s.epoch;
      this.batchInEpoch = s.batchInEpoch;
      this.seen = s.seen;
      this.best = s.best;
      this.history = s.history ?? [];
      this.resumedExtra = s.extra;
      this.resumedFrom = { file: ck.stateFile, iteration: s.iteration, generation: ck.generation, fellBack: ck.fellBack };
      this.log(`resumed from ${ck.stateFile} (generation ${ck.generation}): iteration ${s.iteration}, epoch ${s.epoch}, ${s.seen} images seen`);
    }
    this.boundary = { loader: this.o.loader.state(), batchInEpoch: this.batchInEpoch };
    this.log(`optimizer ${this.opt.kind}: ${specs.length} tensors (${specs.reduce((a, s) => a + s.param.size, 0)} values), decay on ${specs.filter((s) => s.decay !== false).length}; schedule ${this.schedule.describe()}; subdivisions ${this.subdivisions}${this.ema ? `; EMA decay ${this.ema.decay} tau ${this.ema.tau}` : ''}`);
  }

  // -------------------------------------------------------------- loop

  private finished(): boolean {
    return (this.maxBatches > 0 && this.iteration >= this.maxBatches) || (this.epochs > 0 && this.epoch >= this.epochs);
  }

  async run(): Promise<TrainResult> {
    await this.setup();
    let stopped: TrainResult['stopped'] = 'done';
    try {
      let it = this.o.loader[Symbol.asyncIterator]();
      let emptyPasses = 0;
      while (!this.finished()) {
        if (this.o.signal?.aborted) {
          stopped = 'aborted';
          break;
        }
        this.throwIfNonFinite();
        const r = await it.next();
        if (r.done) {
          // the iterator ended: the epoch ends here (unless it already ended by count)
          if (this.batchInEpoch > 0) {
            if (this.sub > 0) await this.update();
            await this.endEpoch();
            emptyPasses = 0;
          } else if (++emptyPasses > 1) throw new TrainError('data', `the loader yielded no batches for epoch ${this.epoch}`);
          it = this.o.loader[Symbol.asyncIterator]();
          continue;
        }
        emptyPasses = 0;
        this.miniBatch(r.value);
        const bpe = this.o.loader.batchesPerEpoch;
        const epochFull = !!bpe && this.batchInEpoch >= bpe;
        if (this.sub >= this.subdivisions || (epochFull && this.sub > 0)) await this.update();
        if (epochFull) await this.endEpoch();
      }
      await it.return?.();
      if (stopped === 'aborted') {
        this.discardPartial();
        this.log(`stopping at iteration ${this.iteration} (interrupted)`);
      }
      await this.drain();
      this.throwIfNonFinite();
      if (this.o.checkpointDir && this.iteration > 0 && this.lastSaved?.iteration !== this.iteration) await this.saveLast();
      // the caller's network holds the trained (raw) parameters on the host too
      else await this.net.pullParams();
      if (stopped === 'done' && this.o.checkpointDir && this.iteration > 0) {
        const file = path.join(this.o.checkpointDir, 'final.weights');
        writeFileAtomic(file, fs.readFileSync(path.join(this.o.checkpointDir, 'last.weights')));
        this.log(`saved ${file}`);
      }
    } finally {
      await this.chain.catch(() => {});
      this.stats?.dispose();
      this.stats = null;
      this.evalNet?.dispose();
    }
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      seen: this.seen,
      stopped,
      best: this.best,
      history: this.history,
      last: this.lastProgress,
      resumedExtra: this.resumedExtra,
      resumedFrom: this.resumedFrom,
    };
  }

  /** Drops the gradients of an unfinished update (abort): the checkpoint describes the last boundary. */
  private discardPartial(): void {
    if (this.sub === 0) return;
    this.opt.zeroGrad({ free: true });
    this.stats?.dispose();
    this.stats = null;
    this.sub = 0;
    this.updImages = 0;
    this.batchInEpoch = this.boundary.batchInEpoch;
  }

  private miniBatch(b: Batch<T>): void {
    const gpu = this.gpu;
    const [n, c, h, w] = b.shape;
    const I = this.net.input;
    if (c !== I.c) throw new TrainError('data', `batch of shape [${b.shape.join(', ')}] does not match the network input [B, ${I.c}, ${I.h}, ${I.w}]`);
    // multi-scale: another size runs the same network rebuilt for it, on the same parameters
    let net = this.net;
    if (h !== I.h || w !== I.w) {
      try {
        net = this.net.resized(w, h);
      } catch (e) {
        throw new TrainError('data', `batch of shape [${b.shape.join(', ')}] does not match the network input [B, ${I.c}, ${I.h}, ${I.w}] and the network cannot be resized: ${(e as Error).message}`);
      }
    }
    const headLayers = net === this.net ? this.headLayers : this.headSources.map((i) => net.layers[i]);
    if (b.images.length !== n * c * h * w) throw new TrainError('data', `batch images hold ${b.images.length} values, shape [${b.shape.join(', ')}] needs ${n * c * h * w}`);
    if (b.truths.length !== n) throw new TrainError('data', `batch of ${n} images has truths for ${b.truths.length}`);
    const x = Tape.untracked(() => Tensor.from(gpu, [n, c, h, w], b.images, 'images'));
    const tape = newTape();
    let res: LossResult | null = null;
    const ctx: LossContext = { network: net, headLayers, iteration: this.iteration + 1, epoch: this.epoch };
    try {
      const loss = tape.record(() => {
        // the mini-batch's position seeds its random layers ([dropout]): a resumed run draws the same masks
        const outs = net.forward(x, { mode: 'train', keep: this.headSources, logits: this.o.loss.logitSources, seed: this.iteration * this.subdivisions + this.sub + 1 });
        const heads = this.headSources.map((i) => outs.get(i)!);
        res = this.o.loss.compute(heads, b.truths, ctx);
        const items = res.items;
        if (items instanceof Tensor) tape.keep(items);
        else for (const t of Object.values(items ?? {})) tape.keep(t);
        return res.loss;
      });
      const r = res as unknown as LossResult;
      try {
        if (loss.size !== 1) throw new TrainError('config', `the loss must be a [1] tensor, got ${loss.describe()}`);
        tape.backward(loss);
        // the item values, in one flat list of [1]-slices: (tensor, offset) per name
        const slices: [Tensor, number][] = [];
        let names: string[];
        if (r.items instanceof Tensor) {
          names = [...(r.itemNames ?? [...Array(r.items.size).keys()].map((i) => `item${i}`))];
          if (names.length !== r.items.size) throw new TrainError('config', `the loss names ${names.length} items for a tensor of ${r.items.size}`);
          names.forEach((_, j) => slices.push([r.items as Tensor, j]));
        } else {
          const rec = r.items ?? {};
          names = Object.keys(rec);
          for (const nm of names) {
            if (rec[nm].size !== 1) throw new TrainError('config', `loss item '${nm}' must be a [1] tensor, got ${rec[nm].describe()}`);
            slices.push([rec[nm], 0]);
          }
        }
        if (!this.itemNames) this.itemNames = names;
        else if (names.join() !== this.itemNames.join()) throw new TrainError('config', `the loss items changed from [${this.itemNames.join(', ')}] to [${names.join(', ')}]`);
        const k = 1 + names.length;
        if (!this.stats) this.stats = Tape.untracked(() => new Tensor(gpu, [this.subdivisions * k], 'loss-stats'));
        const base = this.sub * k;
        gpu.copy(loss, 0, this.stats, base * 4, 4);
        slices.forEach(([t, off], j) => gpu.copy(t, off * 4, this.stats!, (base + 1 + j) * 4, 4));
      } finally {
        loss.dispose();
        if (r?.items instanceof Tensor) r.items.dispose();
        else for (const t of Object.values(r?.items ?? {})) t.dispose();
        r?.dispose?.();
      }
    } finally {
      tape.dispose();
      x.dispose();
    }
    this.sub++;
    this.updImages += n;
    this.batchInEpoch++;
  }

  private async update(): Promise<void> {
    this.iteration++;
    const v = this.schedule.at({ iteration: this.iteration, epoch: this.epoch, batchInEpoch: this.batchInEpoch - 1 });
    if (!Number.isFinite(v.lr) || v.lr < 0) throw new TrainError('config', `the schedule gave learning rate ${v.lr} at iteration ${this.iteration}`);
    this.lastValues = v;
    if (v.momentum !== undefined && this.opt instanceof SGD) this.opt.momentum = v.momentum;
    const gradScale = this.o.loss.gradScale ? this.o.loss.gradScale(this.updImages) : this.reduction === 'sum' ? 1 / this.updImages : 1 / this.sub;
    if (v.biasLr !== undefined && v.biasLr !== v.lr) {
      this.opt.lr = v.lr;
      this.opt.step(this.otherSpecs, { gradScale });
      this.opt.lr = v.biasLr;
      this.opt.step(this.biasSpecs, { gradScale });
    } else {
      this.opt.lr = v.lr;
      this.opt.step({ gradScale });
    }
    // freeing (not zeroing) the gradients: every update starts the same way, fresh run or resumed
    this.opt.zeroGrad({ free: true });
    this.ema?.update();
    this.seen += this.updImages;
    this.boundary = { loader: this.o.loader.state(), batchInEpoch: this.batchInEpoch };
    const subs = this.sub;
    const images = this.updImages;
    this.sub = 0;
    this.updImages = 0;

    const now = performance.now();
    if (this.tLast > 0) {
      const dt = (now - this.tLast) / 1000;
      this.secPerUpdate = Number.isNaN(this.secPerUpdate) ? dt : 0.9 * this.secPerUpdate + 0.1 * dt;
    }
    this.tLast = now;
    const seenNow = this.seen;
    const stats = this.stats;
    this.stats = null;
    const every = this.o.lossEvery ?? 1;
    if (stats && (this.iteration % every === 0 || this.finished())) this.readStats(stats, subs, images, seenNow, v);
    else stats?.dispose();

    const se = this.o.saveEvery ?? 100;
    const ke = this.o.keepEvery ?? 0;
    const ee = this.o.evalEveryIterations ?? 0;
    const names: string[] = [];
    if (this.o.checkpointDir && se > 0 && this.iteration % se === 0) names.push('last');
    const keep = this.o.checkpointDir && ke > 0 && this.iteration % ke === 0;
    const evalNow = this.o.evaluate && ee > 0 && this.iteration % ee === 0;
    if (names.length || keep || evalNow) await this.checkpoint(names, { keep: !!keep, evaluate: !!evalNow });
    const limit = Math.max(1, this.o.maxInFlight ?? 2);
    while (this.pending.length > limit) await this.pending.shift()!.done;
  }

  private readStats(stats: Tensor, subs: number, updImages: number, seenAt: number, v: ScheduleValues): void {
    const iteration = this.iteration;
    const epoch = this.epoch;
    const batchInEpoch = this.batchInEpoch;
    const names = this.itemNames ?? [];
    const k = 1 + names.length;
    const read = stats.toArray();
    stats.dispose();
    const secPerUpdate = this.secPerUpdate;
    const remaining = this.remainingUpdates();
    const elapsed = (performance.now() - this.t0) / 1000;
    // in iteration order: readbacks may resolve out of order (Dawn's GL backend does), progress may not
    const done = Promise.all([read, this.chain.catch(() => undefined)]).then(([vals]) => {
      let loss = 0;
      const items = new Array<number>(names.length).fill(0);
      for (let s = 0; s < subs; s++) {
        loss += vals[s * k];
        names.forEach((_, j) => (items[j] += vals[s * k + 1 + j]));
      }
      loss /= subs;
      for (let j = 0; j < items.length; j++) items[j] /= subs;
      if (!this.nonFinite) {
        if (!Number.isFinite(loss)) this.nonFinite = { iteration, epoch, what: 'loss', value: loss };
        else {
          const j = items.findIndex((x) => !Number.isFinite(x));
          if (j >= 0) this.nonFinite = { iteration, epoch, what: `loss item '${names[j]}'`, value: items[j] };
        }
      }
      if (this.nonFinite) return;
      this.epochAgg.n++;
      this.epochAgg.loss += loss;
      items.forEach((x, j) => (this.epochAgg.items[j] = (this.epochAgg.items[j] ?? 0) + x));
      if (!Number.isNaN(secPerUpdate) && secPerUpdate > 0) this.imagesPerSec = updImages / secPerUpdate;
      const p: Progress = {
        iteration,
        epoch,
        batchInEpoch,
        batchesPerEpoch: this.o.loader.batchesPerEpoch,
        loss,
        lossItems: Object.fromEntries(names.map((nm, j) => [nm, items[j]])),
        lr: v.lr,
        seen: seenAt,
        imagesPerSec: this.imagesPerSec,
        eta: Number.isNaN(secPerUpdate) ? NaN : remaining * secPerUpdate,
        elapsed,
      };
      this.lastProgress = p;
      this.o.onProgress?.(p);
    });
    this.chain = done;
    this.pending.push({ iteration, done });
  }

  private remainingUpdates(): number {
    const r: number[] = [];
    if (this.maxBatches > 0) r.push(this.maxBatches - this.iteration);
    const bpe = this.o.loader.batchesPerEpoch;
    if (this.epochs > 0 && bpe) {
      const left = (this.epochs - this.epoch) * bpe - this.batchInEpoch;
      r.push(Math.ceil(left / this.subdivisions));
    }
    return r.length ? Math.max(0, Math.min(...r)) : NaN;
  }

  private async drain(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    for (const x of p) await x.done;
    await this.chain;
  }

  private throwIfNonFinite(): void {
    const nf = this.nonFinite;
    if (!nf) return;
    const last = this.lastSaved ? `; the last good checkpoint is ${this.lastSaved.file} (iteration ${this.lastSaved.iteration})` : this.o.checkpointDir ? '; no checkpoint was written in this run' : '';
    throw new TrainError('non-finite', `${nf.what} is ${nf.value} at iteration ${nf.iteration} (epoch ${nf.epoch}): training stopped${last}`, nf.iteration);
  }

  private async endEpoch(): Promise<void> {
    await this.drain();
    this.throwIfNonFinite();
    const names = this.itemNames ?? [];
    const n = Math.max(1, this.epochAgg.n);
    const summary: EpochSummary = {
      epoch: this.epoch,
      iteration: this.iteration,
      loss: this.epochAgg.loss / n,
      lossItems: Object.fromEntries(names.map((nm, j) => [nm, (this.epochAgg.items[j] ?? 0) / n])),
      lr: this.lastValues.lr,
      seconds: (performance.now() - this.epochStart) / 1000,
    };
    this.epoch++;
    this.batchInEpoch = 0;
    this.boundary = { loader: this.o.loader.state(), batchInEpoch: 0 };
    const ee = this.o.evalEveryEpochs ?? 1;
    const evalNow = !!this.o.evaluate && ee > 0 && (this.epoch % ee === 0 || this.finished());
    const save = this.o.checkpointDir && (this.o.saveEpochs ?? true) ? ['last'] : [];
    // the summary joins the history before the state is collected, so a resumed run has all of it
    await this.checkpoint(save, { evaluate: evalNow, summary });
    if (!this.history.includes(summary)) this.history.push(summary);
    await this.o.onEpochEnd?.(summary);
    this.epochAgg = { n: 0, loss: 0, items: [] };
    this.epochStart = performance.now();
  }

  // -------------------------------------------------------------- snapshots, checkpoints, evaluation

  /** Host copies: raw parameters into the network's layer.data, EMA values by key. Checks finiteness. */
  private async snapshot(): Promise<Map<string, Float32Array> | null> {
    await this.drain();
    this.throwIfNonFinite();
    await this.net.pullParams();
    for (const l of this.net.layers) {
      for (const [name, a] of Object.entries(l.data ?? {})) {
        const i = firstNonFinite(a);
        if (i >= 0) throw new TrainError('non-finite', `parameter ${l.index}.${name}[${i}] is ${a[i]} after iteration ${this.iteration}: training stopped${this.lastSaved ? `; the last good checkpoint is ${this.lastSaved.file} (iteration ${this.lastSaved.iteration})` : ''}`, this.iteration);
      }
    }
    if (!this.ema) return null;
    const e = await this.ema.read();
    for (const [k, a] of e) {
      const i = firstNonFinite(a);
      if (i >= 0) throw new TrainError('non-finite', `EMA of ${k}[${i}] is ${a[i]} after iteration ${this.iteration}`, this.iteration);
    }
    return e;
  }

  /** Runs fn with the EMA values (if any) in place of the raw host parameters. */
  private withEma<R>(ema: Map<string, Float32Array> | null, fn: () => R): R {
    if (!ema) return fn();
    const saved: [Record<string, Float32Array>, string, Float32Array][] = [];
    for (const l of this.net.layers) {
      if (!l.data) continue;
      for (const p of l.params) {
        const v = ema.get(`${l.index}.${p.name}`);
        if (v) {
          saved.push([l.data, p.name, l.data[p.name]]);
          l.data[p.name] = v;
        }
      }
    }
    try {
      return fn();
    } finally {
      for (const [d, k, v] of saved) d[k] = v;
    }
  }

  private encodeWeights(ema: Map<string, Float32Array> | null): Uint8Array {
    return this.withEma(ema, () => encodeWeights(this.net, { seen: BigInt(this.seen) }));
  }

  private async collectState(ema: Map<string, Float32Array> | null): Promise<TrainState> {
    const rawParams = ema
      ? this.net.layers.flatMap((l) => l.params.filter((p) => ema.has(`${l.index}.${p.name}`)).map((p) => ({ key: `${l.index}.${p.name}`, data: Float32Array.from(l.data![p.name]) })))
      : null;
    return {
      version: 1,
      iteration: this.iteration,
      epoch: this.epoch,
      batchInEpoch: this.boundary.batchInEpoch,
      seen: this.seen,
      optimizer: await this.opt.exportState(),
      ema: this.ema ? await this.ema.exportState() : null,
      rawParams,
      schedule: this.schedule.state(),
      loader: this.boundary.loader,
      rngs: Object.fromEntries(Object.entries(this.o.rngs ?? {}).map(([k, r]) => [k, r.state])),
      best: this.best,
      history: this.history,
      extra: this.o.extraState?.() ?? null,
      network: { file: this.net.file, input: { ...this.net.input }, params: this.net.paramCount },
    };
  }

  private async save(names: string[], weights: Uint8Array, state: TrainState): Promise<void> {
    const dir = this.o.checkpointDir;
    if (!dir) return;
    for (const name of names) {
      const { generation, files } = writeCheckpoint(dir, name, weights, state);
      if (name === 'last') this.lastSaved = { iteration: this.iteration, file: files.weights };
      this.log(`saved ${files.weights} (+ ${path.basename(files.state)}, generation ${generation}, iteration ${this.iteration})`);
    }
  }

  /**
   * Saves `names`, keeps a numbered copy and/or evaluates (saving `best` when fitness improves); an epoch
   * `summary` gets the evaluation's metrics and joins the history before the state is collected.
   */
  private async checkpoint(names: string[], what: { keep?: boolean; evaluate?: boolean; summary?: EpochSummary }): Promise<EvalResult | null> {
    const dir = this.o.checkpointDir;
    const evaluate = !!what.evaluate && !!this.o.evaluate;
    if (!(dir && (names.length || what.keep)) && !evaluate) {
      if (what.summary) this.history.push(what.summary);
      return null;
    }
    const ema = await this.snapshot();
    let result: EvalResult | null = null;
    const saveNames = dir ? [...names] : [];
    if (evaluate) {
      result = await this.runEval(ema, what.summary?.epoch ?? this.epoch);
      if (!Number.isFinite(result.fitness)) this.log(`warning: evaluation at iteration ${this.iteration} gave fitness ${result.fitness}`);
      else if (!this.best || result.fitness > this.best.fitness) {
        this.best = { fitness: result.fitness, iteration: this.iteration, epoch: what.summary?.epoch ?? this.epoch };
        if (dir) saveNames.push('best');
      }
    }
    if (what.summary) {
      if (result) {
        what.summary.fitness = result.fitness;
        what.summary.metrics = result.metrics;
      }
      this.history.push(what.summary);
    }
    if (!dir || (!saveNames.length && !what.keep)) return result;
    const weights = this.encodeWeights(ema);
    if (saveNames.length) await this.save(saveNames, weights, await this.collectState(ema));
    if (what.keep) {
      const f = path.join(dir, `iter_${this.iteration}.weights`);
      writeFileAtomic(f, weights);
      this.log(`saved ${f}`);
    }
    return result;
  }

  /** Saves `last` now (end of run, abort). */
  private async saveLast(): Promise<void> {
    await this.checkpoint(['last'], {});
  }

  private async runEval(ema: Map<string, Float32Array> | null, epoch: number): Promise<EvalResult> {
    if (!this.evalNet) {
      const I = this.net.input;
      this.evalNet = this.o.buildEvalNetwork?.() ?? NetworkClass.fromFile(this.net.file, { width: I.w, height: I.h, channels: I.c });
      if (this.evalNet.layers.length !== this.net.layers.length) throw new TrainError('config', 'the evaluation network does not have the training network\'s layers');
    }
    const en = this.evalNet;
    en.release();
    en.layers.forEach((l, i) => {
      const src = this.net.layers[i];
      if (!src.data) return;
      const d: Record<string, Float32Array> = { ...src.data };
      for (const p of src.params) {
        const v = ema?.get(`${src.index}.${p.name}`);
        if (v) d[p.name] = v;
      }
      l.data = d;
    });
    en.prepare(this.gpu, 'infer');
    return await this.o.evaluate!({ gpu: this.gpu, network: en, iteration: this.iteration, epoch });
  }
}

/**
 * Trains `network` (see the file comment and TrainOptions). Afterwards the network stays prepared for
 * training and its host parameters (layer.data) hold the trained raw weights.
 */
export async function train<T = TruthBox>(opts: TrainOptions<T>): Promise<TrainResult> {
  return new Trainer<T>(opts).run();
}

/** Reads the newest consistent checkpoint from a user path (folder, .state or .weights file). */
export function loadTrainCheckpoint(p: string): LoadedCheckpoint<TrainState> {
  const loc = locateCheckpoint(p);
  const ck = readCheckpoint<TrainState>(loc.dir, loc.name);
  if (!ck) throw new TrainError('config', `no checkpoint '${loc.name}' in ${loc.dir}`);
  return ck;
}
