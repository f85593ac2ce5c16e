/**
 * Dropout (kernels/dropout.wgsl): y = x * m / (1 - p) with m_i = [u(seed, i) >= p], u a counter-based
 * hash, so the mask is a pure function of (seed, index): the backward regenerates it (dx = dy * m / (1 - p),
 * Darknet's backward_dropout_layer) and a seeded run repeats exactly. Recorded on the tape.
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

function apply(x: Tensor, p: number, seed: number): Tensor {
  const y = new Tensor(x.gpu, x.shape);
  x.gpu.dispatch({ file: 'dropout', entry: 'apply', constants: { WG } }, { n: x.size, seed: seed >>> 0, p, scale: 1 / (1 - p) }, { 1: x, 2: y }, x.gpu.grid(x.size, WG));
  return y;
}

export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: probability must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed)) throw new Error(`dropout: seed must be an integer, got ${seed}`);
  const y = apply(x, p, seed);
  if (!Tape.wants([x])) return y;
  Tape.push({ op: `dropout:${p}`, inputs: [x], outputs: [y], saved: [], backward: ([dy]) => [apply(dy!, p, seed)] });
  return y;
}
