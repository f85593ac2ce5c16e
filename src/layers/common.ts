/** Helpers shared by the layer files: GPU uploads, BN folding, Darknet initialization. */
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Rng } from '../util/rng.js';
import type { Layer } from '../darknet/layer.js';

/** Darknet's inference BN denominator: sqrt(rolling_variance) + .000001 (normalize_cpu). */
export const BN_EPS = 1e-6;

/** A constant tensor (never owned by a tape). */
export function constTensor(gpu: Gpu, shape: number[], data: Float32Array, name: string): Tensor {
  return Tape.untracked(() => Tensor.from(gpu, shape, data, name));
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
