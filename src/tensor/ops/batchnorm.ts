/**
 * Batch normalization (kernels/batchnorm.wgsl) over NCHW tensors (any [N, C, ...] shape), Darknet or PyTorch
 * semantics, training (batch statistics, running-stat update) and inference (running statistics), with the
 * exact gradient of the forward formula to x, gamma (Darknet `scales`) and beta (Darknet conv `biases`).
 *
 * Darknet (batchnorm_layer.c forward_batchnorm_layer; blas.c variance_cpu, normalize_cpu):
 *   y = gamma*(x - mean)/(sqrt(var) + 1e-6) + beta with the UNBIASED batch variance (1/(M-1)),
 *   rolling = 0.99*rolling + 0.01*batch (mean and unbiased variance); inference uses the rolling statistics
 *   in the same formula.
 * PyTorch (BatchNorm2d): y = gamma*(x - mean)/sqrt(var_biased + 1e-5) + beta,
 *   running = 0.9*running + 0.1*batch with the unbiased variance for running_var.
 * `act` fuses the activation that follows (Darknet's conv -> BN -> activation): z = act(y) in the normalize
 * pass and act'(y) folded into the backward passes (y recomputed from x, never stored): the same values as
 * activation(batchnorm(x)) with two fewer full passes over the tensor forward and one backward.
 */
import type { Gpu } from '../../gpu/device.js';
import { BufferUsage } from '../../gpu/usage.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { ACT_CODE, type Activation } from './act_codes.js';
import { fusableMaxpool, maxpool, type MaxpoolOptions } from './pool.js';
import { treeInvocations } from './reduce.js';

const WG = 256;
const MAX_GROUPS = 65535;
/**
 * Default elements per reduction workgroup (256 per thread): long enough that the workgroup's tree reduction
 * (barriers, on lavapipe a switch of every SIMD group) is a small part of its work. Fwd + bwd of a
 * [8, 16, 96, 96] batchnorm on lavapipe, CPU time: 15.1 ms with 4096, 13.1 with 16384, 12.8 with 65536.
 */
const DEFAULT_CHUNK = 16384;

/** Invocations of a partial-reduction workgroup (the override WV: its 64 tree threads, reduce.ts treeInvocations). */
function reduceWidth(gpu: Gpu): { WV: number } {
  return { WV: treeInvocations(gpu, 64) };
}

export type BatchnormMode = 'darknet' | 'torch';

export interface BatchnormState {
  runningMean: Tensor;
  runningVar: Tensor;
}

export interface BatchnormStatsOptions {
  mode?: BatchnormMode;
  /** Darknet: added to sqrt(var) (default 1e-6); torch: added to var inside the sqrt (default 1e-5). */
  eps?: number;
  /** Values of a channel each reduction workgroup handles (tuning and tests; default 16384). */
  chunk?: number;
}

export interface BatchnormOptions extends BatchnormStatsOptions {
  training: boolean;
  /** Weight of the batch statistic in the running update (default 0.01 darknet, 0.1 torch). */
  momentum?: number;
  /** Update the running statistics in training (default true). */
  updateRunning?: boolean;
  /** The activation applied to the output, fused (default linear). */
  act?: Activation;
}

interface Geo {
  N: number;
  C: number;
  HW: number;
  M: number;
  L: number;
  P: number;
}

function geometry(x: Tensor, chunk?: number): Geo {
  if (x.shape.length < 2) throw new Error(`batchnorm: expected [N, C, ...], got ${x.describe()}`);
  const [N, C] = x.shape;
  const HW = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const M = N * HW;
  if (C > MAX_GROUPS) throw new Error(`batchnorm: ${C} channels exceed ${MAX_GROUPS}`);
  const want = chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(want) || want < 1) throw new Error(`batchnorm: chunk must be a positive integer, got ${want}`);
  // with HW % 4 == 0 the chunks are whole vec4s (the vec4 partial kernels)
  const q = HW % 4 === 0 ? 4 : 1;
  const up = (v: number) => Math.ceil(v / q) * q;
  let L = up(Math.max(want, Math.ceil(M / MAX_GROUPS), 1));
  let P = Math.max(Math.ceil(M / L), 1);
  L = up(Math.max(Math.ceil(M / P), 1));
  P = Math.max(Math.ceil(M / L), 1); // no empty trailing chunk
  return { N, C, HW, M, L, P };
}

function defaults(mode: BatchnormMode, eps?: number, momentum?: number): { eps: number; momentum: number } {
  return mode === 'torch' ? { eps: eps ?? 1e-5, momentum: momentum ?? 0.1 } : { eps: eps ?? 1e-6, momentum: momentum ?? 0.01 };
}

const MODE_CODE: Record<BatchnormMode, number> = { darknet: 0, torch: 1 };

/** The uniform Params of every batchnorm entry point (kernels/batchnorm.wgsl). */
function params(g: Geo, keep: number, mom: number, eps: number) {
  return { C: g.C, HW: g.HW, M: g.M, L: g.L, P: g.P, n: g.N * g.C * g.HW, keep, mom, eps, planes: g.N * g.C, ipp: Math.ceil(g.HW / 4 / V4), w4: 0 };
}

/** vec4s per invocation of the vec4 elementwise kernels (kernels/batchnorm.wgsl V4). */
const V4 = 4;

/**
 * The elementwise kernels: the vec4 forms (normalize4, grad_input4) when a plane is a whole number of vec4s,
 * V4 vec4s per invocation, ceil(HW/4 / V4) invocations per plane; else the scalar forms. Flat grids.
 */
function elementwise(gpu: Tensor['gpu'], g: Geo, entry: 'normalize' | 'grad_input'): { entry: string; grid: [number, number, number?] } {
  if (g.HW % 4 !== 0) return { entry, grid: gpu.grid(g.N * g.C * g.HW, WG) };
  return { entry: `${entry}4`, grid: gpu.grid(g.N * g.C * Math.ceil(g.HW / 4 / V4), WG) };
}

/**
 * Batch statistics of x per channel as a [4, C] tensor: rows mean, biased variance, unbiased variance and
 * r = 1/denominator of the mode (darknet 1/(sqrt(var_unbiased)+eps), torch 1/sqrt(var_biased+eps)).
 * When `running` is given, it is updated in place (keep*running + momentum*batch, unbiased variance).
 * Not recorded.
 */
export function batchnormStats(x: Tensor, opts: BatchnormStatsOptions = {}, running?: { state: BatchnormState; momentum: number; keep?: number }): Tensor {
  const mode = opts.mode ?? 'darknet';
  const { eps } = defaults(mode, opts.eps);
  const g = geometry(x, opts.chunk);
  if (g.M < 2) throw new Error(`batchnorm: training needs more than one value per channel, got ${x.describe()}`);
  if (running) checkState(running.state, g.C);
  const gpu = x.gpu;
  const part = Tape.untracked(() => new Tensor(gpu, [g.C, g.P, 2], 'bn-partials'));
  const stats = new Tensor(gpu, [4, g.C], 'bn-stats');
  const mom = running?.momentum ?? 0;
  // Darknet writes .99*r + .01*b; pass keep explicitly so 1 - 0.01 is not re-rounded.
  const keep = running?.keep ?? 1 - mom;
  const p = params(g, keep, mom, eps);
  const c = { MODE: MODE_CODE[mode] };
  gpu.dispatch({ file: 'batchnorm', entry: g.HW % 4 === 0 ? 'stats_partial4' : 'stats_partial', constants: reduceWidth(gpu) }, p, { 1: x, 5: part }, [g.P, g.C]);
  // Without a running state the update is compiled out (UPDATE=0), but its bindings still need buffers.
  const [rm, rv] = running ? [running.state.runningMean, running.state.runningVar] : scratch(gpu);
  gpu.dispatch({ file: 'batchnorm', entry: 'stats_final', constants: { ...c, UPDATE: running ? 1 : 0 } }, p, { 1: x, 5: part, 6: stats, 7: rm, 8: rv }, [Math.ceil(g.C / 64)]);
  part.dispose();
  return stats;
}

let scratchBufs: { gpu: Tensor['gpu']; bufs: [GPUBuffer, GPUBuffer] } | null = null;
/** Two tiny buffers to bind where compiled-out writable bindings still need distinct buffers. */
function scratch(gpu: Tensor['gpu']): [GPUBuffer, GPUBuffer] {
  if (!scratchBufs || scratchBufs.gpu !== gpu) {
    const mk = () => gpu.device.createBuffer({ size: 256, usage: BufferUsage.STORAGE, label: 'bn-unused' });
    scratchBufs = { gpu, bufs: [mk(), mk()] };
  }
  return scratchBufs.bufs;
}

function checkState(s: BatchnormState, C: number): void {
  if (s.runningMean.size !== C || s.runningVar.size !== C) {
    throw new Error(`batchnorm: running statistics ${s.runningMean.describe()} / ${s.runningVar.describe()} do not have ${C} channels`);
  }
}

/** [4, C] statistics built from the running statistics (inference). */
function runningStats(x: Tensor, state: BatchnormState, mode: BatchnormMode, eps: number, g: Geo): Tensor {
  checkState(state, g.C);
  const stats = new Tensor(x.gpu, [4, g.C], 'bn-stats');
  x.gpu.dispatch({ file: 'batchnorm', entry: 'stats_running', constants: { MODE: MODE_CODE[mode] } }, params(g, 1, 0, eps), { 6: stats, 7: state.runningMean, 8: state.runningVar }, [Math.ceil(g.C / 64)]);
  return stats;
}

/** A forward's statistics and what its backward needs (batchnorm, batchnormMaxpool). */
interface Normalized {
  g: Geo;
  p: ReturnType<typeof params>;
  stats: Tensor;
  mode: BatchnormMode;
  training: boolean;
  act: Activation;
  /** The ACT override where the activation is not linear (linear kernels keep the override's default). */
  ac: Record<string, number> | undefined;
}

/** Checks the arguments and computes the statistics: the batch's in training (updating `state`), else `state`'s. */
function normalizeStats(op: string, x: Tensor, gamma: Tensor, beta: Tensor, state: BatchnormState, opts: BatchnormOptions): Normalized {
  const mode = opts.mode ?? 'darknet';
  const { eps, momentum } = defaults(mode, opts.eps, opts.momentum);
  const g = geometry(x, opts.chunk);
  if (gamma.size !== g.C || beta.size !== g.C) throw new Error(`${op}: gamma ${gamma.describe()} / beta ${beta.describe()} do not have ${g.C} values for ${x.describe()}`);
  const act = opts.act ?? 'linear';
  const code = ACT_CODE[act];
  if (code === undefined) throw new Error(`${op}: unknown activation '${act}'`);
  const training = opts.training;
  const update = opts.updateRunning ?? true;
  const keep = mode === 'darknet' && opts.momentum === undefined ? 0.99 : 1 - momentum;
  const stats = training
    ? batchnormStats(x, { mode, eps, chunk: opts.chunk }, update ? { state, momentum, keep } : undefined)
    : runningStats(x, state, mode, eps, g);
  return { g, p: params(g, keep, momentum, eps), stats, mode, training, act, ac: code ? { ACT: code } : undefined };
}

/**
 * The gradients to x, gamma and beta from dy at act(y) (null where an input needs none). With `pooled`, dy is
 * the gradient at the 2x2/2 maxpool of act(y) and `pooled.idx` its argmax (batchnormMaxpool): the kernels
 * rebuild the full-size gradient as they read it (grad_partial_pool4, grad_input_pool4).
 */
function normalizeBackward(n: Normalized, x: Tensor, gamma: Tensor, beta: Tensor, dy: Tensor, pooled?: { idx: Tensor; w4: number }): [Tensor | null, Tensor | null, Tensor | null] {
  const { g, stats, ac } = n;
  const p = pooled ? { ...n.p, w4: pooled.w4 } : n.p;
  const dyb: Record<number, Tensor> = pooled ? { 9: dy, 12: pooled.idx } : { 9: dy };
  const gpu = x.gpu;
  const part = new Tensor(gpu, [g.C, g.P, 2], 'bn-partials');
  const dgamma = new Tensor(gpu, [g.C], 'dgamma');
  const dbeta = new Tensor(gpu, [g.C], 'dbeta');
  const gp = pooled ? 'grad_partial_pool4' : g.HW % 4 === 0 ? 'grad_partial4' : 'grad_partial';
  gpu.dispatch({ file: 'batchnorm', entry: gp, constants: { ...ac, ...reduceWidth(gpu) } }, p, { 1: x, 2: gamma, 3: beta, 5: part, 6: stats, ...dyb }, [g.P, g.C]);
  const train = { MODE: MODE_CODE[n.mode], TRAIN: n.training ? 1 : 0 };
  // pooled: grad_final_pool also writes the channel constants grad_input_pool4 reads (2 vec4s per channel)
  const coef = pooled ? new Tensor(gpu, [g.C, 8], 'bn-coef') : null;
  if (coef) gpu.dispatch({ file: 'batchnorm', entry: 'grad_final_pool', constants: train }, p, { 2: gamma, 3: beta, 5: part, 6: stats, 10: dgamma, 11: dbeta, 13: coef }, [Math.ceil(g.C / 64)]);
  else gpu.dispatch({ file: 'batchnorm', entry: 'grad_final' }, p, { 5: part, 10: dgamma, 11: dbeta }, [Math.ceil(g.C / 64)]);
  part.dispose();
  let dx: Tensor | null = null;
  if (x.requiresGrad) {
    dx = new Tensor(gpu, x.shape);
    const gi = elementwise(gpu, g, 'grad_input');
    if (coef) gpu.dispatch({ file: 'batchnorm', entry: 'grad_input_pool4', constants: ac }, p, { 1: x, 4: dx, 13: coef, ...dyb }, gi.grid);
    else gpu.dispatch({ file: 'batchnorm', entry: gi.entry, constants: { ...train, ...ac } }, p, { 1: x, 2: gamma, 3: beta, 4: dx, 6: stats, 9: dy, 10: dgamma, 11: dbeta }, gi.grid);
  }
  coef?.dispose();
  const dg = gamma.requiresGrad ? dgamma : (dgamma.dispose(), null);
  const db = beta.requiresGrad ? dbeta : (dbeta.dispose(), null);
  return [dx, dg, db];
}

function opName(n: Normalized): string {
  return `batchnorm:${n.mode}:${n.training ? 'train' : 'infer'}${n.ac ? `+${n.act}` : ''}`;
}

/**
 * y = gamma*(x - mean)*r + beta per channel (gamma, beta: C values). Training uses the batch statistics and
 * updates `state` in place; inference uses `state`. Recorded on the tape when x, gamma or beta requires grad
 * (in inference the running statistics are constants of the gradient).
 */
export function batchnorm(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchnormState, opts: BatchnormOptions): Tensor {
  const n = normalizeStats('batchnorm', x, gamma, beta, state, opts);
  const gpu = x.gpu;
  const y = new Tensor(gpu, x.shape);
  const nz = elementwise(gpu, n.g, 'normalize');
  gpu.dispatch({ file: 'batchnorm', entry: nz.entry, constants: n.ac }, n.p, { 1: x, 2: gamma, 3: beta, 4: y, 6: n.stats }, nz.grid);
  if (!Tape.wants([x, gamma, beta])) {
    n.stats.dispose();
    return y;
  }
  Tape.push({
    op: opName(n), inputs: [x, gamma, beta], outputs: [y], saved: [n.stats],
    backward: ([dy]) => normalizeBackward(n, x, gamma, beta, dy!),
  });
  return y;
}

/** Pairs of pooled outputs per invocation of normalize_pool4 (kernels/batchnorm.wgsl PV). */
const PV = 4;

/**
 * maxpool(batchnorm(x, { act }), pool) for Darknet's [maxpool] size=2 stride=2 (fusableMaxpool) after a
 * [convolutional] with batch_normalize: Network.forward plans it in training (ForwardContext.fusedMaxpool).
 * Where the windows tile the planes (H even, W % 4 == 0) one pass normalizes, activates and pools, and writes
 * the pooled map and its argmax but not the activated map (kernels/batchnorm.wgsl normalize_pool4); the
 * backward reads the pooled gradient and the argmax where batchnorm's reads the full-size gradient
 * (grad_partial_pool4, grad_input_pool4), so that is never written either: three full-size passes fewer per
 * step. The values and gradients are those of the two ops bit for bit, which run instead on other shapes.
 */
export function batchnormMaxpool(x: Tensor, gamma: Tensor, beta: Tensor, state: BatchnormState, opts: BatchnormOptions, pool: MaxpoolOptions): Tensor {
  if (!fusableMaxpool(pool)) throw new Error(`batchnormMaxpool: the pool must be size 2 stride 2 with Darknet's default padding, got ${JSON.stringify(pool)}`);
  const [N, C, H, W] = x.shape;
  if (x.shape.length !== 4 || H % 2 !== 0 || W % 4 !== 0) {
    const z = batchnorm(x, gamma, beta, state, opts);
    const y = maxpool(z, pool);
    if (!Tape.current || !y.requiresGrad) z.dispose();
    return y;
  }
  const n = normalizeStats('batchnormMaxpool', x, gamma, beta, state, opts);
  const gpu = x.gpu;
  const shape = [N, C, H / 2, W / 2];
  const y = new Tensor(gpu, shape);
  const idx = new Tensor(gpu, shape, 'maxpool-argmax');
  const ipp = Math.ceil(H * W / 8 / PV);
  gpu.dispatch({ file: 'batchnorm', entry: 'normalize_pool4', constants: n.ac }, { ...n.p, ipp, w4: W / 4 }, { 1: x, 2: gamma, 3: beta, 4: y, 6: n.stats, 12: idx }, gpu.grid(N * C * ipp, 256));
  if (!Tape.wants([x, gamma, beta])) {
    n.stats.dispose();
    idx.dispose();
    return y;
  }
  Tape.push({
    op: `${opName(n)}+maxpool:2/2`, inputs: [x, gamma, beta], outputs: [y], saved: [n.stats, idx],
    backward: ([dy]) => {
      return normalizeBackward(n, x, gamma, beta, dy!, { idx, w4: W / 4 });
    },
  });
  return y;
}
