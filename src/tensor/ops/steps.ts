/**
 * The time steps of Darknet's recurrent layers (rnn_layer.c, crnn_layer.c, gru_layer.c, lstm_layer.c): a
 * batch of B = steps * b rows holds the steps one after the other (`state.input += l.inputs*l.batch` per
 * step), so step t is rows [t*b, (t+1)*b). These ops cut a batch into such chunks and put the per-step
 * outputs back together (`l.output` of each step at the same offsets). Buffer copies in stream order, no
 * kernel; backward on the tape.
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { fill } from './elementwise.js';

/** Rows [start, start + count) of x along the batch (first) dimension. */
export function batchSlice(x: Tensor, start: number, count: number): Tensor {
  const N = x.shape[0];
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > N) {
    throw new Error(`batchSlice: rows [${start}, ${start + count}) are not inside ${x.describe()}`);
  }
  if (start === 0 && count === N) return x;
  const row = x.size / N;
  const y = new Tensor(x.gpu, [count, ...x.shape.slice(1)]);
  x.gpu.copy(x, 4 * start * row, y, 0, y.bytes);
  Tape.push({
    op: 'batchSlice', inputs: [x], outputs: [y], saved: [],
    backward: ([g]) => {
      const dx = fill(new Tensor(x.gpu, x.shape), 0);
      x.gpu.copy(g!, 0, dx, 4 * start * row, g!.bytes);
      return [dx];
    },
  });
  return y;
}

/** The parts (equal shapes but the first dimension) one after the other along the batch dimension. */
export function batchConcat(parts: Tensor[]): Tensor {
  if (parts.length === 0) throw new Error('batchConcat: no parts');
  if (parts.length === 1) return parts[0];
  const inner = parts[0].shape.slice(1);
  for (const p of parts) {
    if (p.shape.length !== inner.length + 1 || p.shape.slice(1).some((d, i) => d !== inner[i])) {
      throw new Error(`batchConcat: ${p.describe()} does not match ${parts[0].describe()} past the batch dimension`);
    }
  }
  const N = parts.reduce((s, p) => s + p.shape[0], 0);
  const gpu = parts[0].gpu;
  const y = new Tensor(gpu, [N, ...inner]);
  const offsets: number[] = [];
  let off = 0;
  for (const p of parts) {
    offsets.push(off);
    gpu.copy(p, 0, y, off, p.bytes);
    off += p.bytes;
  }
  Tape.push({
    op: 'batchConcat', inputs: [...parts], outputs: [y], saved: [],
    backward: ([g]) => parts.map((p, k) => {
      if (!p.requiresGrad) return null;
      const dp = new Tensor(gpu, p.shape);
      gpu.copy(g!, offsets[k], dp, 0, p.bytes);
      return dp;
    }),
  });
  return y;
}
