/**
 * Helpers shared by the layer files: GPU uploads, BN folding, Darknet initialization, and LinearParams (the
 * GPU side of a [convolutional] / [connected] layer's parameters: prepare, release, pull, parameters).
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Rng } from '../util/rng.js';
import type { Layer, LayerTensor, Mode, ParamRole } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { batchnorm, batchnormMaxpool } from '../tensor/ops/batchnorm.js';
import type { MaxpoolOptions } from '../tensor/ops/pool.js';
import { conv2d, type Conv2dParams } from '../tensor/ops/conv2d.js';

/** Darknet's inference BN denominator: sqrt(rolling_variance) + .000001 (normalize_cpu). */
export const BN_EPS = 1e-6;

/** A constant tensor (never owned by a tape), float32 or (inference weights) float16. */
export function constTensor(gpu: Gpu, shape: number[], data: Float32Array, name: string, dtype: DType = 'f32'): Tensor {
  return Tape.untracked(() => Tensor.from(gpu, shape, data, name, dtype));
}

/** The largest finite float16 value: weights beyond it would be infinite in f16 storage. */
export const HALF_MAX = 65504;

/** Whether every value is within +-HALF_MAX (and not NaN). */
export function fitsHalf(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]) <= HALF_MAX)) return false;
  return true;
}

/** The host array of a parameter, with a clear error when weights were neither loaded nor initialized. */
export function hostParam(layer: Layer, name: string): Float32Array {
  const d = layer.data?.[name];
  if (!d) throw new Error(`layer ${layer.index} [${layer.kind}] (${layer.where}): parameter '${name}' has no values; load .weights or initialize the network first`);
  return d;
}

/**
 * Folds inference BN into the preceding linear map: w'[o, ...] = w[o, ...] * s[o] and
 * b'[o] = beta[o] - s[o] * mean[o] with s = gamma / (sqrt(var) + 1e-6). Computed in float64.
 */
export function foldBn(weights: Float32Array, n: number, biases: Float32Array, scales: Float32Array, mean: Float32Array, variance: Float32Array): { w: Float32Array; b: Float32Array } {
  const per = weights.length / n;
  const w = new Float32Array(weights.length);
  const b = new Float32Array(n);
  for (let o = 0; o < n; o++) {
    const s = scales[o] / (Math.sqrt(variance[o]) + BN_EPS);
    b[o] = biases[o] - s * mean[o];
    const base = o * per;
    for (let k = 0; k < per; k++) w[base + k] = weights[base + k] * s;
  }
  return { w, b };
}

/** n values scale * uniform(-1, 1) (Darknet's weight initialization). */
export function uniformInit(rng: Rng, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.uniform(-1, 1);
  return a;
}

export function filled(n: number, v: number): Float32Array {
  return new Float32Array(n).fill(v);
}

/** Disposes every tensor in a record and clears it. */
export function disposeAll(r: Record<string, Tensor | null | undefined>): void {
  for (const k of Object.keys(r)) {
    r[k]?.dispose();
    delete r[k];
  }
}

/** Reads tensors back into host arrays. */
export async function pullInto(data: Record<string, Float32Array>, tensors: Record<string, Tensor | undefined>): Promise<void> {
  for (const [k, t] of Object.entries(tensors)) {
    if (t && data[k]) data[k].set(await t.toArray());
  }
}

/** A cap below the device's limits for the weight chunking (tests set it small to exercise chunking). */
export const paramChunking = { maxBytes: Infinity };

/** The largest parameter tensor a layer uploads in one piece on this device, in bytes. */
export function bindLimit(gpu: Gpu): number {
  return Math.min(gpu.limits.maxStorageBufferBindingSize ?? Infinity, gpu.limits.maxBufferSize ?? Infinity, paramChunking.maxBytes);
}

/**
 * Splits `rows` rows of `rowFloats` float32 values each into consecutive ranges [start, count) whose bytes
 * stay within `limitBytes` (one range when everything fits).
 */
export function chunkRows(rows: number, rowFloats: number, limitBytes: number): [number, number][] {
  const per = Math.max(1, Math.floor(limitBytes / (4 * rowFloats)));
  const out: [number, number][] = [];
  for (let s = 0; s < rows; s += per) out.push([s, Math.min(per, rows - s)]);
  return out;
}

/** The optimizer role of each parameter name of a linear layer (Layer.parameters). */
const LINEAR_ROLES: Record<string, ParamRole> = { weights: 'weights', biases: 'bias', scales: 'bn', rolling_mean: 'buffer', rolling_variance: 'buffer' };

/**
 * The GPU copies of a linear layer's parameters ([convolutional], [connected]: weights OIHW, biases and the
 * optional BN triple), uploaded from the host arrays (`layer.data`) for a mode:
 *   infer  BN folded into the weights and biases (foldBn): constants `w` and `b`; with `split`, weights above
 *          the device's binding limit are uploaded in parts of output rows (`chunks`) instead
 *   train  weights, biases and BN scales as Tensor.param; rolling_mean / rolling_variance as constants (the
 *          batchnorm forward updates them in place)
 * GPU tensors are named `<prefix><layer index>.<name>` (conv3.weights, fc5.w). A layer made of several linear
 * parts (the recurrent layers: Darknet's input_layer, self_layer, ... inside one [rnn]) gives each part a
 * `sub` prefix: its ParamSpec names are `<sub><name>` (`input.weights`) and Layer.parameters lists them so.
 */
export class LinearParams {
  /** infer: `w`, `b` (BN folded; empty when split in `chunks`); train: by ParamSpec name. */
  t: Record<string, Tensor> = {};
  /** Inference weights split by output rows when one tensor would exceed the device's binding limit. */
  chunks: { start: number; w: Tensor; b: Tensor }[] = [];
  /** The mode prepared for, or null. */
  mode: Mode | null = null;
  /**
   * The storage of the inference weights `w` (the bias stays f32): 'f16' when prepared with dtype 'f16' and
   * every folded weight fits a half (|w| <= 65504; else 'f32', the layer then runs in float32).
   */
  dtype: DType = 'f32';
  private asked: DType = 'f32';
  private gpu: Gpu | null = null;

  constructor(private readonly layer: Layer, private readonly prefix: string, private readonly sub = '') {}

  /**
   * Uploads for `mode` (nothing when already prepared for it on this device); `dtype` 'f16': the inference
   * weights as float16 (see `dtype`).
   */
  prepare(gpu: Gpu, mode: Mode, o: { n: number; wShape: number[]; batchNormalize: boolean; split?: boolean; dtype?: DType }): void {
    const asked = mode === 'infer' ? o.dtype ?? 'f32' : 'f32';
    if (this.mode === mode && this.gpu === gpu && this.asked === asked) return;
    this.release();
    const { n, wShape } = o;
    const name = `${this.prefix}${this.layer.index}.${this.sub}`.replace(/\.$/, '');
    const host = (k: string) => hostParam(this.layer, this.sub + k);
    const wts = host('weights');
    const biases = host('biases');
    if (mode === 'infer') {
      let w = wts;
      let b = biases;
      if (o.batchNormalize) ({ w, b } = foldBn(wts, n, biases, host('scales'), host('rolling_mean'), host('rolling_variance')));
      const K = w.length / n;
      const ranges = o.split ? chunkRows(n, K, bindLimit(gpu)) : [[0, n]];
      this.dtype = asked === 'f16' && ranges.length === 1 && fitsHalf(w) ? 'f16' : 'f32';
      if (ranges.length === 1) this.t = { w: constTensor(gpu, wShape, w, `${name}.w`, this.dtype), b: constTensor(gpu, [n], b, `${name}.b`) };
      else {
        // e.g. AlexNet's 9216 -> 4096 [connected] (151 MB) on an adapter that binds at most 128 MB
        this.chunks = ranges.map(([s, c]) => ({
          start: s,
          w: constTensor(gpu, [c, ...wShape.slice(1)], w.subarray(s * K, (s + c) * K), `${name}.w${s}`),
          b: constTensor(gpu, [c], b.subarray(s, s + c), `${name}.b${s}`),
        }));
      }
    } else {
      this.t = { weights: Tensor.param(gpu, wShape, wts, `${name}.weights`), biases: Tensor.param(gpu, [n], biases, `${name}.biases`) };
      if (o.batchNormalize) {
        this.t.scales = Tensor.param(gpu, [n], host('scales'), `${name}.scales`);
        this.t.rolling_mean = constTensor(gpu, [n], host('rolling_mean'), `${name}.rolling_mean`);
        this.t.rolling_variance = constTensor(gpu, [n], host('rolling_variance'), `${name}.rolling_variance`);
      }
    }
    this.mode = mode;
    this.asked = asked;
    this.gpu = gpu;
  }

  /** Frees the GPU tensors. */
  release(): void {
    disposeAll(this.t);
    for (const c of this.chunks) {
      c.w.dispose();
      c.b.dispose();
    }
    this.chunks = [];
    this.mode = null;
    this.dtype = 'f32';
    this.asked = 'f32';
    this.gpu = null;
  }

  /** Copies the trained parameters and statistics back into `layer.data` (train mode; no-op otherwise). */
  async pull(): Promise<void> {
    if (this.mode !== 'train' || !this.layer.data) return;
    if (!this.sub) return pullInto(this.layer.data, this.t);
    await pullInto(this.layer.data, Object.fromEntries(Object.entries(this.t).map(([k, t]) => [this.sub + k, t])));
  }

  /** Layer.parameters: in the layer's ParamSpec order; throws unless prepared for `mode`. */
  list(mode: Mode): LayerTensor[] {
    if (this.mode !== mode) throw new Error(`layer ${this.layer.index} [${this.layer.kind}]: parameters are not prepared for '${mode}' (call Network.prepare)`);
    const sub = this.sub;
    if (mode === 'train') {
      return this.layer.params.flatMap((p) => {
        const k = p.name.slice(sub.length);
        return p.name.startsWith(sub) && this.t[k] ? [{ name: p.name, tensor: this.t[k], role: LINEAR_ROLES[k] }] : [];
      });
    }
    if (!this.chunks.length) return [{ name: `${sub}biases`, tensor: this.t.b, role: 'bias' }, { name: `${sub}weights`, tensor: this.t.w, role: 'weights' }];
    return this.chunks.flatMap((c) => [{ name: `${sub}biases`, tensor: c.b, role: 'bias' as const, part: c.start }, { name: `${sub}weights`, tensor: c.w, role: 'weights' as const, part: c.start }]);
  }
}

/**
 * The forward of a linear layer from its LinearParams tensors (not split): infer: conv2d with the folded bias
 * and the activation in the epilogue; train: the same with Tensor.param weights, or without BN bias, then
 * batchnorm with batch statistics (Darknet formula) and the activation fused into it, and with `pool` (training
 * with batchnorm only: Network planning) the 2x2/2 [maxpool] after it as well (batchnormMaxpool), returning the
 * pooled output. Intermediates are freed unless a tape is recording (it owns them).
 */
export function linearForward(x: Tensor, t: Record<string, Tensor>, mode: Mode, geom: Conv2dParams, act: Activation, batchNormalize: boolean, rollingStats = false, pool?: MaxpoolOptions): Tensor {
  if (pool && (mode === 'infer' || !batchNormalize)) throw new Error('linearForward: a fused maxpool needs training with batchnorm');
  if (mode === 'infer') return conv2d(x, t.w, t.b, geom, { act });
  if (!batchNormalize) return conv2d(x, t.weights, t.biases, geom, { act });
  const y = conv2d(x, t.weights, null, geom);
  // batchnorm and the activation in one pass forward and fused backward passes (src/tensor/ops/batchnorm.ts)
  const state = { runningMean: t.rolling_mean, runningVar: t.rolling_variance };
  const opts = { training: !rollingStats, mode: 'darknet' as const, act };
  const z = pool ? batchnormMaxpool(y, t.scales, t.biases, state, opts, pool) : batchnorm(y, t.scales, t.biases, state, opts);
  // an intermediate no recorded op reads (no tape, or nothing after it needs a gradient: a frozen layer) goes now
  if (!Tape.current || !z.requiresGrad) y.dispose();
  return z;
}
