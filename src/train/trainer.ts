/**
 * The training loop. Pluggable pieces (the seams and options are in src/train/types.ts):
 *
 *   network    a built src/darknet Network with host parameters (loaded .weights or initWeights), or the
 *              network to restore a checkpoint into (`resume`)
 *   loader     BatchSource: an AsyncIterable of mini-batches; ONE pass of its iterator is one epoch (the
 *              trainer asks for a new iterator at each epoch); state()/restore() position it exactly
 *   loss       TrainLoss: compute(heads, truths, ctx) -> { loss: [1] tensor, items: named [1] tensors },
 *              recorded on the tape (the YOLO losses plug in here, src/train/yolo_loss.ts)
 *   optimizer  SGD from [net] momentum/decay by default (Darknet), Adam from [net] adam=1, or AdamW; weight
 *              decay on conv/connected weights only (not on biases or batchnorm scales); per-layer
 *              learning_rate scale from the cfg (src/train/params.ts)
 *   schedule   an LrSchedule (default: the [net] policy, src/train/schedule.ts)
 *   ema        optional ModelEma of all parameters and batchnorm statistics, used for evaluation and saving
 *   freeze     layers 0..N-1 (`freeze`, the cfg's stopbackward / train_only_bn; src/train/freeze.ts) get
 *              no gradient (their parameters do not require one, so the tape records nothing of them) and
 *              no update
 *
 * One update = `subdivisions` mini-batches (forward + backward each, gradients accumulated), then one
 * optimizer step with gradScale 1/(images in the update) for a loss summed over images (Darknet's
 * convention; reduction 'mean' uses 1/subdivisions). An epoch end always closes the update in progress.
 * Checkpoints (src/train/checkpointing.ts, files by src/train/checkpoint.ts) `last` every `saveEvery`
 * updates, at epoch ends, on abort and at the end; `best` when the evaluation's fitness improves
 * (src/train/validation.ts); `final.weights` at the end.
 *
 * No synchronous readback per step: the loss and its items are copied into a small tensor per update and
 * read back asynchronously (at most `maxInFlight` reads outstanding; src/train/readback.ts). A non-finite
 * value stops the run with the update named; a checkpoint is written only after every earlier loss was
 * read and found finite and the parameters read back are finite, so the last checkpoint on disk is always
 * a good one.
 *
 * Exact resume: the state file holds the iteration/epoch counters, optimizer moments and step counts, EMA
 * tensors and update count, the raw parameters when the .weights hold the EMA, the schedule and loader
 * states and any registered RNGs, all taken at an update boundary. A run of 2N updates and a run of N
 * updates + save + a fresh Network/optimizer resumed from the checkpoint + N updates give identical bytes.
 */
import type { Gpu } from '../gpu/device.js';
import type { Network } from '../darknet/network.js';
import type { Layer } from '../darknet/layer.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { packTensors } from '../tensor/arena.js';
import { newTape } from '../tensor/index.js';
import type { Truth } from '../yolo/targets.js';
import { SGD, type Optimizer } from './optim.js';
import { DarknetSchedule, darknetHyper, type LrSchedule, type ScheduleValues } from './schedule.js';
import { ModelEma } from './ema.js';
import type { LoadedCheckpoint } from './checkpoint.js';
import { buildOptimizer, networkParams, optimParams, refuseUntrainable, type NetworkParam, type OptimParamGroups } from './params.js';
import { describeFreeze, freezePlan, gradientCut, type FreezePlan } from './freeze.js';
import { LossReadback } from './readback.js';
import { Checkpointer, collectState, openResume, restoreState, type EmaValues, type RunParts, type RunPosition } from './checkpointing.js';
import { Validation } from './validation.js';
import { TrainError, type Batch, type EpochSummary, type EvalResult, type LossContext, type LossResult, type OptimizerKind, type OptimizerSettings, type TrainerOptions, type TrainResult, type TrainState } from './types.js';

/**
 * Trains `network` (see the file comment and TrainerOptions). Afterwards the network stays prepared for
 * training and its host parameters (layer.data) hold the trained raw weights.
 */
export async function runTrainer<T = Truth>(opts: TrainerOptions<T>): Promise<TrainResult> {
  return new Trainer<T>(opts).run();
}

class Trainer<T> {
  private readonly o: TrainerOptions<T>;
  private readonly gpu: Gpu;
  private readonly net: Network;
  private readonly log: (l: string) => void;
  private readonly readback: LossReadback;
  private readonly saver: Checkpointer;
  private readonly validation: Validation;
  private opt!: Optimizer;
  private groups!: OptimParamGroups;
  private ema: ModelEma | null = null;
  private schedule!: LrSchedule;
  private headLayers!: Layer[];
  private freeze!: FreezePlan;
  /** trained parameters of the layers a stopbackward=K>1 cuts off until iteration K (requiresGrad per mini-batch) */
  private delayedParams: NetworkParam[] = [];
  private headSources!: number[];
  private subdivisions!: number;
  private maxBatches = 0;
  private epochs = 0;

  iteration = 0;
  epoch = 0;
  batchInEpoch = 0;
  seen = 0;
  private history: EpochSummary[] = [];
  /** loader state and batchInEpoch at the last update boundary */
  private boundary: { loader: unknown; batchInEpoch: number } = { loader: undefined, batchInEpoch: 0 };
  // the update in progress
  private sub = 0;
  private updImages = 0;
  private lastValues: ScheduleValues = { lr: 0 };
  private epochStart = performance.now();
  private resumedExtra: unknown;
  private resumedFrom: TrainResult['resumedFrom'];

  constructor(o: TrainerOptions<T>) {
    this.o = o;
    this.gpu = o.gpu;
    this.net = o.network;
    this.log = o.log ?? (() => {});
    this.readback = new LossReadback(o);
    this.saver = new Checkpointer(o.checkpointDir, o.network, this.log);
    this.validation = new Validation(o, o.network, this.log);
  }

  private get reduction(): 'sum' | 'mean' {
    return this.o.loss.reduction ?? 'sum';
  }

  // -------------------------------------------------------------- setup / resume

  private async setup(): Promise<void> {
    const o = this.o;
    refuseUntrainable(this.net);
    const hyper = darknetHyper(this.net.net);
    this.freeze = freezePlan(this.net, o.freeze ?? 0);
    const ck = o.resume !== undefined ? openResume(o.resume, this.net, this.log) : null;
    this.net.release();
    this.net.prepare(this.gpu, 'train');

    const params = networkParams(this.net);
    // parameters and statistics in one buffer: the optimizer and the EMA update them in one dispatch each
    packTensors(this.gpu, params.map((p) => p.tensor));
    const fz = this.freeze;
    this.groups = optimParams(params, this.net.file, fz.frozen);
    const lastDelayed = fz.delayed.length ? fz.delayed[fz.delayed.length - 1].layer : -1;
    this.delayedParams = params.filter((p) => p.trainable && p.layer.index <= lastDelayed);
    const os: OptimizerSettings = typeof o.optimizer === 'string' ? { kind: o.optimizer } : o.optimizer ?? {};
    const kind: OptimizerKind = os.kind ?? (hyper.adam ? 'adam' : 'sgd');
    this.opt = buildOptimizer(kind, this.groups.all, os, this.net);
    this.schedule = o.schedule ?? new DarknetSchedule({ ...hyper.schedule, learningRate: os.lr ?? hyper.schedule.learningRate });
    if (o.ema) {
      const eo = o.ema === true ? {} : o.ema;
      // a frozen parameter never changes, nor do the statistics of a layer on its rolling statistics
      const fixed = (p: NetworkParam) => p.layer.index < fz.frozen && (p.group !== 'buffer' || p.layer.index < fz.rollingBn);
      this.ema = new ModelEma(params.map((p) => ({ name: p.key, tensor: p.tensor, fixed: fixed(p) })), eo);
    }
    this.headSources = [...(o.loss.headSources ?? this.net.outputLayers())];
    for (const i of this.headSources) if (!(Number.isInteger(i) && i >= 0 && i < this.net.layers.length)) throw new TrainError('config', `loss head source ${i} is not a layer of ${this.net.file}`);
    this.headLayers = this.headSources.map((i) => this.net.layers[i]);
    this.subdivisions = o.subdivisions ?? this.net.net.subdivisions;
    if (!(Number.isInteger(this.subdivisions) && this.subdivisions >= 1)) throw new TrainError('config', `subdivisions must be an integer >= 1, got ${this.subdivisions}`);
    this.epochs = o.epochs ?? 0;
    this.maxBatches = o.maxBatches ?? (o.epochs ? 0 : hyper.maxBatches);
    if (!(this.epochs > 0) && !(this.maxBatches > 0)) throw new TrainError('config', 'nothing bounds the run: give epochs or max batches (or max_batches in [net])');

    if (ck) this.resume(ck);
    this.boundary = { loader: this.o.loader.state(), batchInEpoch: this.batchInEpoch };
    const all = this.groups.all;
    const frozenNote = describeFreeze(fz);
    if (frozenNote) this.log(frozenNote);
    this.log(`optimizer ${this.opt.kind}: ${all.length} tensors (${all.reduce((a, s) => a + s.param.size, 0)} values), decay on ${all.filter((s) => s.decay !== false).length}; schedule ${this.schedule.describe()}; subdivisions ${this.subdivisions}${this.ema ? `; EMA decay ${this.ema.decay} tau ${this.ema.tau}` : ''}`);
  }

  private resume(ck: LoadedCheckpoint<TrainState>): void {
    const s = ck.state;
    if ((s.frozen ?? 0) !== this.freeze.frozen) {
      const was = s.frozen ? `layers 0..${s.frozen - 1} frozen` : 'nothing frozen';
      const now = this.freeze.frozen ? `freezes layers 0..${this.freeze.frozen - 1}` : 'freezes nothing';
      throw new TrainError('config', `resume: ${ck.stateFile} was trained with ${was}, this run ${now}: resume with the same freeze`);
    }
    restoreState(this.parts(), s, this.log);
    this.iteration = s.iteration;
    this.epoch = s.epoch;
    this.batchInEpoch = s.batchInEpoch;
    this.seen = s.seen;
    this.validation.best = s.best;
    this.history = s.history ?? [];
    this.resumedExtra = s.extra;
    this.resumedFrom = { file: ck.stateFile, iteration: s.iteration, generation: ck.generation, fellBack: ck.fellBack };
    this.log(`resumed from ${ck.stateFile} (generation ${ck.generation}): iteration ${s.iteration}, epoch ${s.epoch}, ${s.seen} images seen`);
  }

  // -------------------------------------------------------------- loop

  private finished(): boolean {
    return (this.maxBatches > 0 && this.iteration >= this.maxBatches) || (this.epochs > 0 && this.epoch >= this.epochs);
  }

  async run(): Promise<TrainResult> {
    await this.setup();
    let stopped: TrainResult['stopped'] = 'done';
    // wall time of the loop, and the part of it spent awaiting the loader's next batch (the GPU may still be
    // busy meanwhile: on a CPU adapter the loader's threads and the shaders share the cores)
    const loopStart = performance.now();
    let dataWaitMs = 0;
    try {
      let it = this.o.loader[Symbol.asyncIterator]();
      let emptyPasses = 0;
      while (!this.finished()) {
        if (this.o.signal?.aborted) {
          stopped = 'aborted';
          break;
        }
        this.throwIfNonFinite();
        const waitStart = performance.now();
        const r = await it.next();
        dataWaitMs += performance.now() - waitStart;
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
      await this.readback.drain();
      this.throwIfNonFinite();
      // save `last` now (end of run, abort) unless this update's is on disk
      if (this.saver.dir && this.iteration > 0 && this.saver.lastSaved?.iteration !== this.iteration) await this.checkpoint(['last'], {});
      // the caller's network holds the trained (raw) parameters on the host too
      else await this.net.pullParams();
      if (stopped === 'done' && this.iteration > 0) this.saver.saveFinal();
    } finally {
      await this.readback.settle();
      this.readback.discardUpdate();
      this.validation.dispose();
    }
    return {
      iteration: this.iteration,
      epoch: this.epoch,
      seen: this.seen,
      stopped,
      best: this.validation.best,
      history: this.history,
      last: this.readback.lastProgress,
      resumedExtra: this.resumedExtra,
      resumedFrom: this.resumedFrom,
      dataWaitMs,
      loopMs: performance.now() - loopStart,
    };
  }

  /** Drops the gradients of an unfinished update (abort): the checkpoint describes the last boundary. */
  private discardPartial(): void {
    if (this.sub === 0) return;
    this.opt.zeroGrad({ free: true });
    this.readback.discardUpdate();
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
    if (this.delayedParams.length) {
      // stopbackward=K>1: no gradient into the layers below the cut while Darknet's iteration is < K
      const cut = gradientCut(this.freeze, this.iteration, this.sub, this.subdivisions);
      for (const p of this.delayedParams) p.tensor.requiresGrad = p.layer.index >= cut;
    }
    const tape = newTape();
    let res: LossResult | null = null;
    // seen: Darknet's *net.seen during this mini-batch (advanced by it before the forward; the [region] prior)
    const ctx: LossContext = { network: net, headLayers, iteration: this.iteration + 1, epoch: this.epoch, seen: this.seen + (this.o.seenOffset ?? 0) + this.updImages + n };
    try {
      const loss = tape.record(() => {
        // the mini-batch's position seeds its random layers ([dropout]): a resumed run draws the same masks
        const outs = net.forward(x, { mode: 'train', keep: this.headSources, logits: this.o.loss.logitSources, seed: this.iteration * this.subdivisions + this.sub + 1, frozenBn: this.freeze.rollingBn, progress: this.progress(), timeSteps: this.o.timeSteps });
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
        this.readback.record(loss, r, this.sub, this.subdivisions);
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
      this.opt.step(this.groups.other, { gradScale });
      this.opt.lr = v.biasLr;
      this.opt.step(this.groups.bias, { gradScale });
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

    this.readback.timeUpdate();
    const every = this.o.lossEvery ?? 1;
    const read = this.iteration % every === 0 || this.finished();
    this.readback.endUpdate(read ? { iteration: this.iteration, epoch: this.epoch, batchInEpoch: this.batchInEpoch, subs, images, seen: this.seen, lr: v.lr, remaining: this.remainingUpdates() } : null);

    const se = this.o.saveEvery ?? 100;
    const ke = this.o.keepEvery ?? 0;
    const names: string[] = [];
    if (this.saver.dir && se > 0 && this.iteration % se === 0) names.push('last');
    const keep = !!this.saver.dir && ke > 0 && this.iteration % ke === 0;
    const evalNow = this.validation.dueAfterUpdate(this.iteration);
    if (names.length || keep || evalNow) await this.checkpoint(names, { keep, evaluate: evalNow });
    await this.readback.waitBelow(Math.max(1, this.o.maxInFlight ?? 2));
  }

  /**
   * Darknet's get_current_iteration and max_batches for this mini-batch (DropBlock's schedule): the updates
   * done and the run's length, both after iterationOffset; the length is max batches, else the updates of
   * `epochs` epochs, else unknown (0: the layers run at full strength).
   */
  private progress(): { iteration: number; maxBatches: number } {
    const k0 = this.o.iterationOffset ?? 0;
    const bpe = this.o.loader.batchesPerEpoch;
    const length = this.maxBatches > 0 ? this.maxBatches : this.epochs > 0 && bpe ? Math.ceil((this.epochs * bpe) / this.subdivisions) : 0;
    return { iteration: k0 + this.iteration, maxBatches: length > 0 ? k0 + length : 0 };
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

  private throwIfNonFinite(): void {
    this.readback.throwIfNonFinite(() => this.saver.lastGoodNote());
  }

  private async endEpoch(): Promise<void> {
    await this.readback.drain();
    this.throwIfNonFinite();
    const means = this.readback.epochMeans();
    const summary: EpochSummary = {
      epoch: this.epoch,
      iteration: this.iteration,
      loss: means.loss,
      lossItems: means.lossItems,
      lr: this.lastValues.lr,
      seconds: (performance.now() - this.epochStart) / 1000,
    };
    this.epoch++;
    this.batchInEpoch = 0;
    this.boundary = { loader: this.o.loader.state(), batchInEpoch: 0 };
    const evalNow = this.validation.dueAtEpochEnd(this.epoch, this.finished());
    const save = this.saver.dir && (this.o.saveEpochs ?? true) ? ['last'] : [];
    // the summary joins the history before the state is collected, so a resumed run has all of it
    await this.checkpoint(save, { evaluate: evalNow, summary });
    if (!this.history.includes(summary)) this.history.push(summary);
    await this.o.onEpochEnd?.(summary);
    this.readback.resetEpoch();
    this.epochStart = performance.now();
  }

  // -------------------------------------------------------------- checkpoints, evaluation

  /**
   * Saves `names`, keeps a numbered copy and/or evaluates (saving `best` when fitness improves); an epoch
   * `summary` gets the evaluation's metrics and joins the history before the state is collected.
   */
  private async checkpoint(names: string[], what: { keep?: boolean; evaluate?: boolean; summary?: EpochSummary }): Promise<void> {
    const dir = this.saver.dir;
    const evaluate = !!what.evaluate && this.validation.enabled;
    if (!(dir && (names.length || what.keep)) && !evaluate) {
      if (what.summary) this.history.push(what.summary);
      return;
    }
    const ema = await this.snapshot();
    let result: EvalResult | null = null;
    const saveNames = dir ? [...names] : [];
    if (evaluate) {
      const e = await this.validation.run(ema, this.iteration, what.summary?.epoch ?? this.epoch);
      result = e.result;
      if (e.improved && dir) saveNames.push('best');
    }
    if (what.summary) {
      if (result) {
        what.summary.fitness = result.fitness;
        what.summary.metrics = result.metrics;
      }
      this.history.push(what.summary);
    }
    if (!dir || (!saveNames.length && !what.keep)) return;
    const weights = this.saver.encodeWeights(ema, this.seen + (this.o.seenOffset ?? 0));
    if (saveNames.length) {
      const state = await collectState(this.parts(), this.position(), ema);
      if (this.freeze.frozen) state.frozen = this.freeze.frozen;
      await this.saver.save(saveNames, weights, state, this.iteration);
    }
    if (what.keep) this.saver.keep(weights, this.iteration);
  }

  /** Host copies (raw parameters, EMA values) once every earlier loss was read and found finite. */
  private async snapshot(): Promise<EmaValues | null> {
    await this.readback.drain();
    this.throwIfNonFinite();
    return await this.saver.snapshot(this.ema, this.iteration);
  }

  private parts(): RunParts {
    return { net: this.net, opt: this.opt, ema: this.ema, schedule: this.schedule, loader: this.o.loader, rngs: this.o.rngs, extraState: this.o.extraState };
  }

  private position(): RunPosition {
    return { iteration: this.iteration, epoch: this.epoch, seen: this.seen, boundary: this.boundary, best: this.validation.best, history: this.history };
  }
}
