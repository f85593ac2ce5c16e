/**
 * The trainer's vocabulary (src/train/trainer.ts runTrainer): the seams it plugs together (BatchSource,
 * TrainLoss, the evaluation callback), what it takes (TrainerOptions), what it reports (Progress,
 * EpochSummary, TrainResult), what its checkpoints' state file holds (TrainState), and TrainError.
 */
import type { Gpu } from '../gpu/device.js';
import type { Network } from '../darknet/network.js';
import type { Layer } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Truth } from '../yolo/targets.js';
import type { Rng } from '../util/rng.js';
import type { OptimizerState } from './optim.js';
import type { LrSchedule } from './schedule.js';
import type { EmaOptions, EmaState } from './ema.js';
import type { LoadedCheckpoint } from './checkpoint.js';

// ------------------------------------------------------------------------------------------ seams

/** One mini-batch: images NCHW float32 in [0, 1], and the truths of each image. */
export interface Batch<T = Truth> {
  images: Float32Array;
  shape: readonly [number, number, number, number];
  truths: readonly (readonly T[])[];
}

/**
 * Mini-batches: the trainer's source of them (src/data/loader.ts's BatchLoader is one). An epoch ends when
 * `batchesPerEpoch` batches of it were handed out (when the loader says how many), or when its iterator
 * ends (the trainer then starts a new iteration for the next epoch). Both kinds work: one iteration per
 * epoch, or one endless iteration over all epochs (src/data/loader.ts).
 * `state()` describes the position after the last batch handed out (epoch, index, shuffle seed,
 * augmentation RNG: whatever makes the rest of the run identical) as JSON-able data (Float32Array allowed);
 * `restore(s)` followed by a new iteration yields the batch that followed. A prefetching loader reports
 * the consumer's position, not its own.
 */
export interface BatchSource<T = Truth> extends AsyncIterable<Batch<T>> {
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
  /** Images seen including this mini-batch (Darknet's *net.seen during its forward; the [region] loss's prior). */
  seen?: number;
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
 * YoloLoss plugs in through `yoloTrainLoss` (src/train/yolo_loss.ts).
 */
export interface TrainLoss<T = Truth> {
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
 * Where checkpoints go when not into a folder (TrainerOptions.checkpointDir): the same pairs a folder gets
 * (src/train/checkpoint.ts), handed over instead of written. `save` is awaited before training goes on.
 */
export interface CheckpointSink {
  /** A `last` or `best` pair: the .weights bytes and the state (JSON-able but for Float32Arrays). */
  save(name: 'last' | 'best', weights: Uint8Array, state: TrainState, iteration: number): void | Promise<void>;
  /** A numbered copy (keepEvery; not awaited); default: dropped. */
  keep?(weights: Uint8Array, iteration: number): void | Promise<void>;
  /** The run completed (the folder's final.weights = last.weights; not awaited). */
  final?(): void | Promise<void>;
  /** How log lines and errors name a checkpoint (default `<name>`). */
  describe?(name: string): string;
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

// ------------------------------------------------------------------------------------------ options

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

/** What runTrainer takes (src/train/trainer.ts's file comment describes the loop). */
export interface TrainerOptions<T = Truth> {
  gpu: Gpu;
  network: Network;
  loader: BatchSource<T>;
  loss: TrainLoss<T>;
  optimizer?: OptimizerKind | OptimizerSettings;
  schedule?: LrSchedule;
  /** mini-batches per update (default [net] subdivisions) */
  subdivisions?: number;
  /** stop after this many updates (default [net] max_batches when `epochs` is not given) */
  maxBatches?: number;
  /** stop after this many epochs */
  epochs?: number;
  /**
   * Freeze layers 0..freeze-1 (Ultralytics `--freeze N`): no gradient, no update, no weight decay, their
   * EMA equal to them; their batchnorm statistics keep updating (train mode). The cfg's stopbackward and
   * train_only_bn freeze too (src/train/freeze.ts). Default 0.
   */
  freeze?: number;
  /**
   * Images the starting weights had seen (their header's `seen`, when a run continues Darknet's schedule
   * from them): added to the `seen` written into every .weights this run saves, as Darknet writes the total,
   * so a later continuation from them starts where this one ended. Default 0.
   */
  seenOffset?: number;
  /**
   * Darknet's iteration at this run's start (the starting weights' seen / batch, when the run continues
   * Darknet's schedule): the layers that follow the run's progress (DropBlock) see iterationOffset + the
   * updates done, out of iterationOffset + the run's updates. Default 0.
   */
  iterationOffset?: number;
  /**
   * Darknet's time_steps for recurrent layers ([crnn], [rnn], [gru], [lstm]): each mini-batch is this many
   * consecutive steps of images / timeSteps rows (step t in rows [t*b, (t+1)*b), Darknet's layout; the loader
   * delivers the sequences so), trained by backpropagation through the steps. Default 1: every image its own
   * one-step sequence from the zero state, so a recurrent layer's self part gets no gradient (as in Darknet
   * with time_steps=1).
   */
  timeSteps?: number;
  /** EMA of the parameters (default off) */
  ema?: boolean | EmaOptions;
  /**
   * folder for last/best checkpoints and final.weights, or a CheckpointSink that receives them (a browser's
   * storage); none: nothing is saved
   */
  checkpointDir?: string | CheckpointSink;
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

// ------------------------------------------------------------------------------------------ reports

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
  /** Milliseconds the loop spent awaiting the loader's next batch, of `loopMs` (the loop's wall time, final save included). */
  dataWaitMs: number;
  loopMs: number;
}

/** Training stopped: a non-finite loss or parameter, a configuration the trainer refuses, or bad data. */
export class TrainError extends Error {
  override name = 'TrainError';
  constructor(readonly kind: 'non-finite' | 'config' | 'data', message: string, readonly iteration?: number) {
    super(message);
  }
}

// ------------------------------------------------------------------------------------------ checkpoint state

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
  /** layers 0..frozen-1 were frozen (src/train/freeze.ts; absent when none): a resume must freeze the same */
  frozen?: number;
}
