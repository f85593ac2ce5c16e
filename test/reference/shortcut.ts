/** Float64 reference of Darknet's shortcut layer (shortcut_layer.c + blas.c shortcut_cpu) with activation. */
import type { Activation } from '../../src/tensor/ops/activation.js';
import { act, actGrad } from './activation.js';

/**
 * Pairs (out index into a, add index into b) that shortcut_cpu(batch, w1=bw, h1=bh, c1=bc, add=b,
 * w2=aw, h2=ah, c2=ac, ...) combines.
 */
export function shortcutPairs(aShape: readonly number[], bShape: readonly number[]): Array<[number, number]> {
  const [batch, c2, h2, w2] = aShape;
  const [, c1, h1, w1] = bShape;
  let stride = Math.floor(w1 / w2);
  let sample = Math.floor(w2 / w1);
  if (stride < 1) stride = 1;
  if (sample < 1) sample = 1;
  const minw = Math.min(w1, w2);
  const minh = Math.min(h1, h2);
  const minc = Math.min(c1, c2);
  const pairs: Array<[number, number]> = [];
  for (let b = 0; b < batch; b++)
    for (let k = 0; k < minc; k++)
      for (let j = 0; j < minh; j++)
        for (let i = 0; i < minw; i++) {
          const outIndex = i * sample + w2 * (j * sample + h2 * (k + c2 * b));
          const addIndex = i * stride + w1 * (j * stride + h1 * (k + c1 * b));
          pairs.push([outIndex, addIndex]);
        }
  return pairs;
}

/** Pre-activation z: copy of a, then z = alpha*z + beta*b on the shared positions. */
export function shortcutPreact(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[], alpha = 1, beta = 1): Float64Array {
  const z = Float64Array.from(a as ArrayLike<number>);
  for (const [o, k] of shortcutPairs(aShape, bShape)) z[o] = alpha * z[o] + beta * b[k];
  return z;
}

export function shortcutRef(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[], activation: Activation, alpha = 1, beta = 1): Float64Array {
  return shortcutPreact(a, aShape, b, bShape, alpha, beta).map((v) => act(v, activation));
}

/** Exact gradients (da, db) of sum(shortcutRef * dy). */
export function shortcutBackwardRef(a: ArrayLike<number>, aShape: readonly number[], b: ArrayLike<number>, bShape: readonly number[], dy: ArrayLike<number>, activation: Activation, alpha = 1, beta = 1): [Float64Array, Float64Array] {
  const z = shortcutPreact(a, aShape, b, bShape, alpha, beta);
  const g = Float64Array.from(z, (v, i) => dy[i] * actGrad(v, activation));
  const da = Float64Array.from(g);
  const db = new Float64Array(b.length);
  for (const [o, k] of shortcutPairs(aShape, bShape)) {
    da[o] = alpha * g[o];
    db[k] += beta * g[o];
  }
  return [da, db];
}
