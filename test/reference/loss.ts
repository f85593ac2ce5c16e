/** Float64 CPU references of the elementwise losses in src/tensor/ops/loss.ts and their x-gradients. */
import type { ElementLossKind } from '../../src/tensor/ops/loss.js';

const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

export function lossRef(x: number, t: number, kind: ElementLossKind): number {
  switch (kind) {
    case 'bceWithLogits': return Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    case 'mse': return (x - t) ** 2;
    case 'sigmoidMse': return (sigmoid(x) - t) ** 2;
    case 'l1': return Math.abs(x - t);
  }
}

export function lossGradRef(x: number, t: number, kind: ElementLossKind): number {
  switch (kind) {
    case 'bceWithLogits': return sigmoid(x) - t;
    case 'mse': return 2 * (x - t);
    case 'sigmoidMse': { const s = sigmoid(x); return 2 * (s - t) * s * (1 - s); }
    case 'l1': return Math.sign(x - t);
  }
}

/** out[i] = alpha * w[i] * l(x[i], t[i]). */
export function elementLossRef(kind: ElementLossKind, x: ArrayLike<number>, t: ArrayLike<number>, alpha = 1, w?: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => alpha * (w ? w[i] : 1) * lossRef(x[i], t[i], kind));
}

/** dx[i] = g[i] * alpha * w[i] * dl/dx. */
export function elementLossGradRef(kind: ElementLossKind, x: ArrayLike<number>, t: ArrayLike<number>, g: ArrayLike<number>, alpha = 1, w?: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => g[i] * alpha * (w ? w[i] : 1) * lossGradRef(x[i], t[i], kind));
}
