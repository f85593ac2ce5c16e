/** Float64 CPU reference of Darknet's activations (activations.c) and their gradients. */
import type { Activation } from '../../src/tensor/ops/activation.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 20 ? v : v < -20 ? Math.exp(v) : Math.log(Math.exp(v) + 1));

export function act(v: number, a: Activation): number {
  switch (a) {
    case 'linear': return v;
    case 'leaky': return v > 0 ? v : 0.1 * v;
    case 'logistic': return sigmoid(v);
    case 'relu': return v > 0 ? v : 0;
    case 'mish': return v * Math.tanh(softplus(v));
    case 'swish': return v * sigmoid(v);
    case 'relu6': return Math.min(Math.max(v, 0), 6);
    case 'ramp': return (v > 0 ? v : 0) + 0.1 * v;
    case 'tanh': return Math.tanh(v);
  }
}

/** Analytic derivative (leaky/relu at exactly 0 take the x <= 0 branch, as Darknet does). */
export function actGrad(v: number, a: Activation): number {
  switch (a) {
    case 'linear': return 1;
    case 'leaky': return v > 0 ? 1 : 0.1;
    case 'logistic': { const s = sigmoid(v); return s * (1 - s); }
    case 'relu': return v > 0 ? 1 : 0;
    case 'mish': { const t = Math.tanh(softplus(v)); return t + v * (1 - t * t) * sigmoid(v); }
    case 'swish': { const s = sigmoid(v); return s + v * s * (1 - s); }
    case 'relu6': return v > 0 && v < 6 ? 1 : 0;
    case 'ramp': return (v > 0 ? 1 : 0) + 0.1;
    case 'tanh': { const t = Math.tanh(v); return 1 - t * t; }
  }
}

export function activationRef(x: ArrayLike<number>, a: Activation): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => act(v, a));
}
