/**
 * The network bench: a whole Darknet cfg on this engine, inference and training, as a user runs it.
 *
 * - Inference: ms per call and per image at each input size and batch (default sizes 256 and 416,
 *   batches 1 and 8); `Network.forward` in 'infer' mode (BN folded, fused epilogues), then gpu.sync().
 *   Outputs are not read back (the peers bench, bench/peers.ts, times forward + readback for every engine).
 * - Training: ms per step (default batches 1 and 4 at the same sizes). A step is what src/train/trainer.ts
 *   does for one mini-batch and one update (Trainer.miniBatch + Trainer.update): forward in 'train' mode on
 *   a tape (BN with batch statistics), the loss on the head inputs, tape.backward, the optimizer step with
 *   the loss's gradScale, zeroGrad({free: true}), then gpu.sync(). Loss: the real YOLO loss of the cfg
 *   (`lossFromNetwork`, Darknet semantics by default) on seeded synthetic boxes, or 'sumsq' (Σ z² over the
 *   head inputs: the loss bench/peers.ts gives every engine). Optimizer: the trainer's default, SGD with the
 *   cfg's momentum and decay (networkParams + the trainer's weight-decay rule).
 * - First run vs warm: the first call of every case is timed on its own (it compiles whatever pipelines the
 *   case needs first: the first case of a fresh device compiles all of them); warm = median of the timed
 *   repeats after it.
 * - Peak GPU memory: the buffer pool's high-water mark of bytes handed out (src/gpu/pool.ts `peak`) during
 *   the case, counted from before the parameters were uploaded (so parameters + input + activations +
 *   gradients and optimizer state), and the high-water mark of bytes the pool holds including its free
 *   lists (`peakHeld`: what the device really has allocated through the pool). Compared with the size of
 *   the (inference: BN-folded) weights plus the two largest activations of the case.
 * - Linearity: ms vs batch at one size and ms vs pixels at batch 1 (`sweepBatches`, `sweepSizes`), with
 *   ms per image and ms per megapixel so a straight line shows as a constant.
 *
 * - Device peak: the FMA peak of src/perf/peak.ts, measured first (`peak`); every inference case reports its
 *   GFLOP/s as a fraction of it (`fraction_of_peak`).
 *
 * Timing is wall clock around gpu.sync() (submit + onSubmittedWorkDone), medians of up to `iters` repeats
 * (at least `minIters`; fewer than `iters` once a case has run `budgetSeconds`), with process CPU time per
 * call alongside (less sensitive to other load on a shared machine).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { Network } from '../darknet/network.js';
import type { Precision } from '../darknet/precision.js';
import { loadWeights } from '../darknet/weights.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { packTensors } from '../tensor/arena.js';
import { newTape } from '../tensor/index.js';
import { sumSquares } from '../tensor/ops/reduce.js';
import { add } from '../tensor/ops/elementwise.js';
import { SGD, type OptimParam } from '../train/optim.js';
import { networkParams } from '../train/params.js';
import type { TrainLoss } from '../train/types.js';
import { yoloTrainLoss } from '../train/yolo_loss.js';
import { darknetHyper } from '../train/schedule.js';
import { lossFromNetwork, type Truth } from '../yolo/loss.js';
import { Rng, randomArray } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { measurePeak, type PeakResult } from './peak.js';

export type BenchLossKind = 'darknet' | 'yolov5' | 'sumsq';

export interface NetworkBenchOptions {
  /** The Darknet .cfg to bench. */
  cfg: string;
  /** Darknet .weights (default: seeded random weights, `seed`). */
  weights?: string;
  seed?: number;
  /** Use this device (default: a new one from Gpu.create, disposed at the end). */
  gpu?: Gpu;
  /** Input sizes (square) for inference (default [256, 416]; quick [128]). */
  sizes?: number[];
  /** Inference batches (default [1, 8]; quick [1, 2]). */
  inferBatches?: number[];
  /** Input sizes for training (default: `sizes`). */
  trainSizes?: number[];
  /** Training batches (default [1, 4]; quick [1, 2]). Empty: no training cases. */
  trainBatches?: number[];
  /** Training loss (default 'darknet'). */
  loss?: BenchLossKind;
  /** Batches for the time-vs-batch sweep at the smallest size (default [1, 2, 4, 8]; quick [1, 2, 4]; [] none). */
  sweepBatches?: number[];
  /** Sizes for the time-vs-pixels sweep at batch 1 (default [128, 192, 256, 320, 416]; quick [64, 96, 128]; [] none). */
  sweepSizes?: number[];
  /** Timed repeats per case after the first run (default 5; quick 3). */
  iters?: number;
  /** Minimum timed repeats (default 3; quick 2). */
  minIters?: number;
  /** Seconds after which a case stops repeating once it has minIters samples (default 20; quick 5). */
  budgetSeconds?: number;
  /**
   * A fast case repeats past `iters` until its samples add up to this many seconds, at most 5 x iters samples
   * (default 1; quick 0.3): the median of 5 samples of a 30 ms forward moved by 5-10% between runs on lavapipe.
   */
  minSeconds?: number;
  /** Small sizes and batches, fewer repeats; explicit options win. */
  quick?: boolean;
  /** Write the result as JSON here. */
  json?: string;
  /** The device peak (src/perf/peak.ts): true (default) measures it first, a PeakResult reuses one, false skips it. */
  peak?: boolean | PeakResult;
  /** Inference precision (src/darknet/precision.ts; default 'auto'): the storage each case ran at is in its `precision`. */
  precision?: Precision;
  log?: (line: string) => void;
}

export interface CaseTiming {
  /** First call of the case (pipeline compilation for anything not compiled before). */
  first_ms: number;
  /** Median of the timed repeats. */
  ms: number;
  ms_min: number;
  /** Median process CPU ms per call (all threads). */
  cpu_ms: number;
  samples: number;
  /** Pipelines compiled during the first call. */
  pipelines_compiled: number;
}

export interface MemoryUse {
  /** Peak bytes handed out by the pool during the case, parameters included. */
  peak_bytes: number;
  /** Peak bytes the pool held (handed out + free lists) during the case. */
  peak_held_bytes: number;
  /** Parameter bytes on the device for the mode (inference: BN-folded weights). */
  weights_bytes: number;
  /** The two largest layer outputs of the case (batch included), bytes. */
  two_largest_activations_bytes: number;
  /** peak_bytes / (weights_bytes + two_largest_activations_bytes). */
  peak_ratio: number;
}

export interface InferCase extends CaseTiming, MemoryUse {
  size: number;
  batch: number;
  ms_per_image: number;
  gflops: number;
  /** gflops / the device peak (NaN without one). */
  fraction_of_peak: number;
  /** The storage the forward ran at (NetworkBenchOptions.precision resolved on this adapter). */
  precision?: 'f32' | 'f16';
  /**
   * The same forward recorded once and replayed (Network.recordForward, ForwardReplay.run + sync): what
   * repeated inference at one shape costs without the layers' JavaScript on the host.
   */
  replay?: { ms: number; ms_min: number; samples: number; gflops: number; fraction_of_peak: number };
}

export interface TrainCase extends CaseTiming, MemoryUse {
  size: number;
  batch: number;
  loss: BenchLossKind;
  ms_per_image: number;
  /** The loss value of the last step (sanity: finite). */
  loss_value: number;
}

export interface SweepPoint {
  size: number;
  batch: number;
  ms: number;
  ms_per_image: number;
  /** ms per image per megapixel of input. */
  ms_per_mpixel: number;
  /** Median process CPU ms per call (less sensitive to other load than wall time). */
  cpu_ms: number;
}

export interface NetworkBenchResult {
  device: string;
  adapter: { kind: string; backend: string; description: string; featureLevel: string };
  cfg: string;
  weights: string;
  date: string;
  host: { cpus: number; cpu_model: string; loadavg_start: number[]; loadavg_end: number[] };
  timing: string;
  /** The device's measured FMA peak (src/perf/peak.ts); null when not measured. */
  peak: PeakResult | null;
  params: number;
  /** Darknet BFLOPs per image at each size. */
  bflops: Record<string, number>;
  infer: InferCase[];
  train: TrainCase[];
  sweep: { batch: SweepPoint[]; pixels: SweepPoint[] };
  /** The cold first inference of the run (device fresh, nothing compiled) vs the warm median of that case. */
  first_run: { size: number; batch: number; first_ms: number; warm_ms: number; ratio: number; pipelines_compiled: number } | null;
  seconds: number;
  errors: string[];
}

export const median = (v: number[]): number => {
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/**
 * Times an async call: one first call, then repeats until `iters` samples or, past `budget` seconds,
 * `minIters` samples; past `iters`, on while the samples add up to less than `minSeconds` (at most 5 x iters).
 * Returns first and median wall ms and median CPU ms.
 */
export async function timeCalls(fn: () => Promise<void>, o: { iters: number; minIters: number; budget: number; minSeconds?: number }): Promise<{ first: number; ms: number; min: number; cpu: number; samples: number; all: number[] }> {
  const once = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpu: (c.user + c.system) / 1000 };
  };
  const first = (await once()).ms;
  const ms: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  let total = 0;
  const more = () => ms.length < o.iters || (ms.length < 5 * o.iters && total < (o.minSeconds ?? 0) * 1000);
  while (more()) {
    if (ms.length >= o.minIters && performance.now() - t0 > o.budget * 1000) break;
    const s = await once();
    ms.push(s.ms);
    total += s.ms;
    cpu.push(s.cpu);
  }
  return { first, ms: median(ms), min: Math.min(...ms), cpu: median(cpu), samples: ms.length, all: ms };
}

/** Synthetic truths: 1-3 boxes per image, seeded, inside the image. */
export function syntheticTruths(rng: Rng, batch: number, classes: number): Truth[][] {
  const out: Truth[][] = [];
  for (let b = 0; b < batch; b++) {
    const n = 1 + Math.floor(rng.uniform(0, 3));
    const t: Truth[] = [];
    for (let i = 0; i < n; i++) {
      const w = rng.uniform(0.05, 0.5);
      const h = rng.uniform(0.05, 0.5);
      t.push({ x: rng.uniform(w / 2, 1 - w / 2), y: rng.uniform(h / 2, 1 - h / 2), w, h, cls: Math.floor(rng.uniform(0, Math.max(1, classes) - 1e-9)) });
    }
    out.push(t);
  }
  return out;
}

/** Layer indices of the head inputs: the sources of the [yolo]/[region]/[detection] layers (else the output layers). */
export function headInputLayers(net: Network): number[] {
  const heads = net.heads();
  if (!heads.length) return net.outputLayers();
  return heads.map((l) => l.sources[0]);
}

/** Σ z² over the head inputs: the simple loss every engine of bench/peers.ts trains with. */
export function sumSquaresLoss(net: Network): TrainLoss<Truth> {
  return {
    headSources: headInputLayers(net),
    gradScale: () => 1,
    compute(heads) {
      let l = sumSquares(heads[0]);
      for (const h of heads.slice(1)) l = add(l, sumSquares(h));
      return { loss: l };
    },
  };
}

/** Parameter bytes of a prepared network: the GPU copies of every layer's parameters for the mode. */
function weightsBytes(net: Network, mode: 'infer' | 'train'): number {
  let n = 0;
  for (const l of net.layers) {
    if (!l.params.length) continue;
    if (mode === 'train') {
      n += l.paramCount;
      continue;
    }
    // inference: conv layers upload BN-folded weights + bias only
    const bn = l.kind === 'convolutional' && l.batchNormalize ? 3 * l.filters : 0;
    n += l.paramCount - bn;
  }
  return n * 4;
}

function twoLargestActivations(net: Network, batch: number): number {
  const sizes = net.layers.map((l) => l.output.c * l.output.h * l.output.w * 4 * batch).sort((a, b) => b - a);
  return (sizes[0] ?? 0) + (sizes[1] ?? 0);
}

/** A step of training as src/train/trainer.ts runs one mini-batch + one update (see the file comment). */
export class TrainStep {
  readonly opt: SGD;
  private readonly loss: TrainLoss<Truth>;
  private readonly headSources: number[];
  /** The loss value of the last step ([1], copied out before the loss's buffers are freed). */
  readonly lastLoss: Tensor;

  constructor(readonly gpu: Gpu, readonly net: Network, lossKind: BenchLossKind, opts: { lr?: number; momentum?: number; decay?: number } = {}) {
    net.prepare(gpu, 'train');
    this.loss = lossKind === 'sumsq' ? sumSquaresLoss(net) : yoloTrainLoss(lossFromNetwork(net, { kind: lossKind }));
    this.headSources = [...(this.loss.headSources ?? net.outputLayers())];
    const h = darknetHyper(net.net);
    const all = networkParams(net);
    // packed as the trainer packs them: one dispatch updates every parameter
    packTensors(gpu, all.map((p) => p.tensor));
    const specs: OptimParam[] = all.filter((p) => p.trainable).map((p) => ({ param: p.tensor, decay: p.decay, lrScale: p.lrScale }));
    this.opt = new SGD(specs, { lr: opts.lr ?? h.schedule.learningRate, momentum: opts.momentum ?? h.momentum, decay: opts.decay ?? h.decay });
    this.lastLoss = Tape.untracked(() => new Tensor(gpu, [1], 'bench.loss'));
  }

  /** Records one step (not synced). The loss [1] stays in `lastLoss` until the next step. */
  run(x: Tensor, truths: readonly (readonly Truth[])[]): void {
    const tape = newTape();
    let res: ReturnType<TrainLoss<Truth>['compute']> | null = null;
    try {
      const loss = tape.record(() => {
        const outs = this.net.forward(x, { mode: 'train', keep: this.headSources, logits: this.loss.logitSources });
        const heads = this.headSources.map((i) => outs.get(i)!);
        res = this.loss.compute(heads, truths, { network: this.net, headLayers: this.headSources.map((i) => this.net.layers[i]), iteration: 1, epoch: 0 });
        const items = res.items;
        if (items instanceof Tensor) tape.keep(items);
        else for (const t of Object.values(items ?? {})) tape.keep(t);
        return res.loss;
      });
      tape.backward(loss);
      this.gpu.copy(loss, 0, this.lastLoss, 0, 4);
      loss.dispose();
      const r = res as unknown as ReturnType<TrainLoss<Truth>['compute']>;
      if (r.items instanceof Tensor) r.items.dispose();
      else for (const t of Object.values(r.items ?? {})) t.dispose();
      r.dispose?.();
    } finally {
      tape.dispose();
    }
    const gradScale = this.loss.gradScale ? this.loss.gradScale(x.shape[0]) : 1 / x.shape[0];
    this.opt.step({ gradScale });
    this.opt.zeroGrad({ free: true });
  }

  dispose(): void {
    this.lastLoss.dispose();
    this.opt.dispose();
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-');
const mib = (b: number) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '-');

function gitInfo(): { commit: string } | undefined {
  try {
    const head = fs.readFileSync(path.join('.git', 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref:')) return { commit: head.slice(0, 7) };
    const ref = head.slice(5).trim();
    const f = path.join('.git', ref);
    if (fs.existsSync(f)) return { commit: fs.readFileSync(f, 'utf8').trim().slice(0, 7) };
  } catch { /* not a checkout */ }
  return undefined;
}

/** Runs the network bench; see the file comment. */
export async function benchNetwork(opts: NetworkBenchOptions): Promise<NetworkBenchResult & { git?: { commit: string } }> {
  const log = opts.log ?? (() => {});
  const q = opts.quick ?? false;
  const sizes = opts.sizes ?? (q ? [128] : [256, 416]);
  const inferBatches = opts.inferBatches ?? (q ? [1, 2] : [1, 8]);
  const trainSizes = opts.trainSizes ?? sizes;
  const trainBatches = opts.trainBatches ?? (q ? [1, 2] : [1, 4]);
  const lossKind = opts.loss ?? 'darknet';
  const sweepBatches = opts.sweepBatches ?? (q ? [1, 2, 4] : [1, 2, 4, 8]);
  const sweepSizes = opts.sweepSizes ?? (q ? [64, 96, 128] : [128, 192, 256, 320, 416]);
  const iters = Math.max(1, opts.iters ?? (q ? 3 : 5));
  const minIters = Math.min(iters, Math.max(1, opts.minIters ?? (q ? 2 : 3)));
  const budget = opts.budgetSeconds ?? (q ? 5 : 20);
  const minSeconds = opts.minSeconds ?? (q ? 0.3 : 1);
  const timing = { iters, minIters, budget, minSeconds };
  for (const s of [...sizes, ...trainSizes, ...sweepSizes]) if (!Number.isInteger(s) || s < 32 || s % 32 !== 0) throw new Error(`bench network: sizes must be multiples of 32, got ${s}`);
  for (const b of [...inferBatches, ...trainBatches, ...sweepBatches]) if (!Number.isInteger(b) || b < 1) throw new Error(`bench network: batches must be positive integers, got ${b}`);
  const seed = opts.seed ?? 1;
  const started = performance.now();
  const loadStart = os.loadavg();
  const errors: string[] = [];

  const probe = Network.fromFile(opts.cfg);
  const ownGpu = !opts.gpu;
  const gpu = opts.gpu ?? (await Gpu.create({ log }));
  log(`device: ${gpu.info.summary}`);
  log(`cfg: ${opts.cfg} (${probe.layers.length} layers, ${probe.paramCount} parameters), ${opts.weights ? `weights ${opts.weights}` : `seeded random weights (seed ${seed})`}`);
  log(`host: ${os.cpus().length} CPU(s), load average ${loadStart.map((v) => v.toFixed(2)).join(' ')}`);
  const peak = opts.peak === false ? null : opts.peak === undefined || opts.peak === true ? await measurePeak(gpu, { log }) : opts.peak;

  const { netAt, nets } = networksBySize(opts.cfg, opts.weights, seed);
  const bflops: Record<string, number> = {};
  const rng = new Rng(seed + 7);
  const input = (net: Network, batch: number) => {
    const I = net.input;
    return Tape.untracked(() => Tensor.from(gpu, [batch, I.c, I.h, I.w], randomArray(rng, batch * I.c * I.h * I.w, 0, 1), 'bench.input'));
  };
  const memory = (base: number, net: Network, mode: 'infer' | 'train', batch: number): MemoryUse => {
    const weights = weightsBytes(net, mode);
    const acts = twoLargestActivations(net, batch);
    const peak = gpu.pool.peak - base;
    return { peak_bytes: peak, peak_held_bytes: gpu.pool.peakHeld - base, weights_bytes: weights, two_largest_activations_bytes: acts, peak_ratio: peak / (weights + acts) };
  };

  // ------------------------------------------------------------ inference (+ the sweeps, which are inference too)
  const inferCases: { size: number; batch: number; kind: 'main' | 'sweep' }[] = [];
  const seen = new Set<string>();
  const addCase = (size: number, batch: number, kind: 'main' | 'sweep') => {
    const k = `${size}x${batch}`;
    if (!seen.has(k)) {
      seen.add(k);
      inferCases.push({ size, batch, kind });
    }
  };
  for (const s of sizes) for (const b of inferBatches) addCase(s, b, 'main');
  const sweepSize = Math.min(...sizes);
  for (const b of sweepBatches) addCase(sweepSize, b, 'sweep');
  for (const s of sweepSizes) addCase(s, 1, 'sweep');
  // the first (cold) case is the first main size at batch 1 when there is one
  inferCases.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'main' ? -1 : 1));

  /** Starts a case from a released network and a trimmed pool: the memory base and the pipeline count. */
  const freshCase = (net: Network, size: number): { base: number; p0: number } => {
    bflops[size] = net.totalBflops;
    net.release();
    gpu.pool.trim();
    const base = gpu.pool.inUse;
    gpu.pool.resetPeak();
    return { base, p0: gpu.pipelineCount };
  };
  const infer: InferCase[] = [];
  const all = new Map<string, InferCase>();
  let firstRun: NetworkBenchResult['first_run'] = null;
  for (const c of inferCases) {
    const net = netAt(c.size);
    const { base, p0 } = freshCase(net, c.size);
    let x: Tensor | null = null;
    try {
      net.prepare(gpu, 'infer', { precision: opts.precision });
      x = input(net, c.batch);
      const xx = x;
      const t = await timeCalls(async () => {
        const outs = net.forward(xx);
        for (const o of new Set(outs.values())) if (o !== xx) o.dispose();
        await gpu.sync();
      }, timing);
      const pipelines = gpu.pipelineCount - p0;
      const gflops = (net.totalBflops * c.batch) / (t.ms / 1000);
      const r: InferCase = {
        size: c.size, batch: c.batch, first_ms: t.first, ms: t.ms, ms_min: t.min, cpu_ms: t.cpu, samples: t.samples, pipelines_compiled: pipelines,
        ms_per_image: t.ms / c.batch, gflops, fraction_of_peak: peak ? gflops / peak.gflops : NaN,
        ...memory(base, net, 'infer', c.batch), precision: net.inferPrecision ?? 'f32',
      };
      if (c.kind === 'main') {
        const rp = net.recordForward(xx);
        try {
          const tr = await timeCalls(async () => {
            rp.run();
            await gpu.sync();
          }, timing);
          const g = (net.totalBflops * c.batch) / (tr.ms / 1000);
          r.replay = { ms: tr.ms, ms_min: tr.min, samples: tr.samples, gflops: g, fraction_of_peak: peak ? g / peak.gflops : NaN };
        } finally {
          rp.dispose();
        }
      }
      all.set(`${c.size}x${c.batch}`, r);
      if (c.kind === 'main') infer.push(r);
      if (!firstRun) firstRun = { size: c.size, batch: c.batch, first_ms: t.first, warm_ms: t.ms, ratio: t.first / t.ms, pipelines_compiled: pipelines };
      log(`infer ${c.size}x${c.size} b${c.batch}${r.precision === 'f16' ? ' f16' : ''}: ${fmt(t.ms)} ms (${fmt(t.ms / c.batch)} ms/image, ${fmt(gflops)} GFLOP/s${peak ? ` = ${(100 * r.fraction_of_peak).toFixed(0)}% of the device peak` : ''}, min ${fmt(t.min)}, first ${fmt(t.first)} ms with ${pipelines} pipelines compiled, ${t.samples} samples), peak ${mib(r.peak_bytes)} MiB (${r.peak_ratio.toFixed(2)}x weights + 2 largest activations)${r.replay ? `; replayed (recordForward): ${fmt(r.replay.ms)} ms${peak ? ` = ${(100 * r.replay.fraction_of_peak).toFixed(0)}% of the peak` : ''}, min ${fmt(r.replay.ms_min)}` : ''}`);
    } catch (e) {
      const msg = `infer ${c.size} b${c.batch}: ${(e as Error).message.split('\n')[0]}`;
      errors.push(msg);
      log(`FAILED ${msg}`);
      await gpu.sync().catch(() => {});
    } finally {
      x?.dispose();
      net.release();
    }
  }
  const point = (r: InferCase): SweepPoint => ({ size: r.size, batch: r.batch, ms: r.ms, ms_per_image: r.ms / r.batch, ms_per_mpixel: r.ms / r.batch / ((r.size * r.size) / 1e6), cpu_ms: r.cpu_ms });
  const sweep = {
    batch: sweepBatches.map((b) => all.get(`${sweepSize}x${b}`)).filter((r): r is InferCase => !!r).map(point),
    pixels: sweepSizes.map((s) => all.get(`${s}x1`)).filter((r): r is InferCase => !!r).map(point),
  };

  // ------------------------------------------------------------ training
  const train: TrainCase[] = [];
  for (const size of trainBatches.length ? trainSizes : []) {
    for (const batch of trainBatches) {
      const net = netAt(size);
      const { base, p0 } = freshCase(net, size);
      let x: Tensor | null = null;
      let step: TrainStep | null = null;
      try {
        step = new TrainStep(gpu, net, lossKind);
        x = input(net, batch);
        const classes = net.heads().find((l) => l.kind === 'yolo')?.options.classes ?? 1;
        const truths = syntheticTruths(new Rng(seed + batch), batch, classes);
        const xx = x;
        const st = step;
        const t = await timeCalls(async () => {
          st.run(xx, truths);
          await gpu.sync();
        }, timing);
        const lossValue = (await st.lastLoss.toArray())[0];
        const r: TrainCase = {
          size, batch, loss: lossKind, first_ms: t.first, ms: t.ms, ms_min: t.min, cpu_ms: t.cpu, samples: t.samples, pipelines_compiled: gpu.pipelineCount - p0,
          ms_per_image: t.ms / batch, loss_value: lossValue, ...memory(base, net, 'train', batch),
        };
        train.push(r);
        log(`train ${size}x${size} b${batch} (${lossKind} loss): ${fmt(t.ms)} ms/step (${fmt(t.ms / batch)} ms/image, min ${fmt(t.min)}, first ${fmt(t.first)} ms, ${t.samples} samples), loss ${lossValue.toPrecision(4)}, peak ${mib(r.peak_bytes)} MiB`);
      } catch (e) {
        const msg = `train ${size} b${batch}: ${(e as Error).message.split('\n')[0]}`;
        errors.push(msg);
        log(`FAILED ${msg}`);
        await gpu.sync().catch(() => {});
      } finally {
        step?.dispose();
        x?.dispose();
        net.release();
      }
    }
  }
  for (const n of nets.values()) n.dispose();

  const result: NetworkBenchResult & { git?: { commit: string } } = {
    device: gpu.info.summary,
    adapter: { kind: gpu.info.kind, backend: gpu.info.backend, description: gpu.info.description, featureLevel: gpu.info.featureLevel },
    cfg: opts.cfg,
    weights: opts.weights ?? `seeded random (seed ${seed})`,
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? '?', loadavg_start: loadStart, loadavg_end: os.loadavg() },
    timing: `wall clock around gpu.sync(); first call timed alone, then the median of up to ${iters} repeats (at least ${minIters}; fewer than ${iters} once a case passed ${budget} s; more, up to ${5 * iters}, until they add up to ${minSeconds} s); cpu_ms from process CPU time`,
    peak,
    params: probe.paramCount,
    bflops,
    infer,
    train,
    sweep,
    first_run: firstRun,
    seconds: (performance.now() - started) / 1000,
    errors,
    git: gitInfo(),
  };
  if (ownGpu) gpu.dispose();
  if (opts.json) writeResultJson(opts.json, result);
  return result;
}

/**
 * The cfg built once per input size, with the same parameters at every size: `weights` loaded, else the
 * seeded initialization (the benches compare sizes and engines on identical numbers).
 */
export function networksBySize(cfg: string, weights: string | undefined, seed: number): { netAt: (size: number) => Network; nets: Map<number, Network> } {
  const nets = new Map<number, Network>();
  const netAt = (size: number): Network => {
    let n = nets.get(size);
    if (!n) {
      n = Network.fromFile(cfg, { width: size, height: size });
      if (weights) loadWeights(n, weights);
      else n.initWeights(seed);
      nets.set(size, n);
    }
    return n;
  };
  return { netAt, nets };
}

/** Writes a result as JSON (atomically; NaN and Infinity as null). */
export function writeResultJson(file: string, r: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
}

/** A markdown report of a network bench result. */
export function formatNetworkBench(r: NetworkBenchResult): string {
  const out: string[] = [];
  out.push(`device: ${r.device}`);
  out.push(`cfg: ${r.cfg} (${r.params} parameters; ${Object.entries(r.bflops).map(([s, b]) => `${b.toFixed(3)} BFLOPs at ${s}`).join(', ')}), weights: ${r.weights}`);
  out.push(`timing: ${r.timing}`);
  out.push(`host: ${r.host.cpus} CPU(s) ${r.host.cpu_model}; load average at start ${r.host.loadavg_start.map((v) => v.toFixed(2)).join(' ')}, at end ${r.host.loadavg_end.map((v) => v.toFixed(2)).join(' ')}`);
  // Results written before the peak probe existed have no `peak`.
  const pk = r.peak ?? null;
  if (pk) out.push(`device peak: ${fmt(pk.gflops)} GFLOP/s (src/perf/peak.ts: register FMAs, ${pk.best.acc} vec4 accumulators, workgroup ${pk.best.wg})`);
  if (r.infer.length) {
    out.push('');
    out.push('Inference (forward + sync, no readback; "replay": the same forward recorded once and replayed, Network.recordForward):');
    out.push('');
    out.push('| size | batch | ms (median) | ms/image | min | first run ms | GFLOP/s | % of device peak | replay ms | replay % of peak | cpu ms | peak MiB | held MiB | weights + 2 largest act. MiB | peak ratio |');
    out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of r.infer) {
      const ofPeak = pk ? `${((100 * c.gflops) / pk.gflops).toFixed(0)}%` : '-';
      const rp = c.replay;
      const rpPeak = pk && rp ? `${((100 * rp.gflops) / pk.gflops).toFixed(0)}%` : '-';
      out.push(`| ${c.size} | ${c.batch} | ${fmt(c.ms)} | ${fmt(c.ms_per_image)} | ${fmt(c.ms_min)} | ${fmt(c.first_ms)} | ${fmt(c.gflops)} | ${ofPeak} | ${rp ? fmt(rp.ms) : '-'} | ${rpPeak} | ${fmt(c.cpu_ms)} | ${mib(c.peak_bytes)} | ${mib(c.peak_held_bytes)} | ${mib(c.weights_bytes + c.two_largest_activations_bytes)} | ${c.peak_ratio.toFixed(2)} |`);
    }
  }
  if (r.first_run) {
    const f = r.first_run;
    out.push('');
    out.push(`First inference of the run (${f.size}x${f.size} b${f.batch}, ${f.pipelines_compiled} pipelines compiled): ${fmt(f.first_ms)} ms vs warm median ${fmt(f.warm_ms)} ms = ${f.ratio.toFixed(2)}x`);
  }
  if (r.train.length) {
    out.push('');
    out.push(`Training step (forward on a tape + ${r.train[0].loss} loss + backward + SGD, as src/train/trainer.ts; then sync):`);
    out.push('');
    out.push('| size | batch | ms/step (median) | ms/image | min | first run ms | cpu ms | loss | peak MiB | held MiB |');
    out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of r.train) out.push(`| ${c.size} | ${c.batch} | ${fmt(c.ms)} | ${fmt(c.ms_per_image)} | ${fmt(c.ms_min)} | ${fmt(c.first_ms)} | ${fmt(c.cpu_ms)} | ${c.loss_value.toPrecision(4)} | ${mib(c.peak_bytes)} | ${mib(c.peak_held_bytes)} |`);
  }
  const lin = (pts: SweepPoint[], what: 'batch' | 'pixels') => {
    if (pts.length < 2) return;
    out.push('');
    if (what === 'batch') {
      out.push(`Time vs batch at ${pts[0].size}x${pts[0].size} (linear: ms/image constant):`);
      out.push('');
      out.push('| batch | ms | ms/image | vs batch 1 per image | cpu ms | cpu ms/image |');
      out.push('|---:|---:|---:|---:|---:|---:|');
      for (const p of pts) out.push(`| ${p.batch} | ${fmt(p.ms)} | ${fmt(p.ms_per_image)} | ${(p.ms_per_image / pts[0].ms_per_image).toFixed(2)} | ${fmt(p.cpu_ms ?? NaN)} | ${fmt((p.cpu_ms ?? NaN) / p.batch)} |`);
    } else {
      out.push('Time vs pixels at batch 1 (linear: ms per megapixel constant):');
      out.push('');
      out.push('| size | megapixels | ms | ms/MPixel | vs smallest | cpu ms |');
      out.push('|---:|---:|---:|---:|---:|---:|');
      for (const p of pts) out.push(`| ${p.size} | ${((p.size * p.size) / 1e6).toFixed(3)} | ${fmt(p.ms)} | ${fmt(p.ms_per_mpixel)} | ${(p.ms_per_mpixel / pts[0].ms_per_mpixel).toFixed(2)} | ${fmt(p.cpu_ms ?? NaN)} |`);
    }
  };
  lin(r.sweep.batch, 'batch');
  lin(r.sweep.pixels, 'pixels');
  if (r.errors.length) {
    out.push('');
    out.push('failures:');
    for (const e of r.errors) out.push(`  ${e}`);
  }
  out.push('');
  out.push(`bench took ${r.seconds.toFixed(0)} s`);
  return out.join('\n');
}
