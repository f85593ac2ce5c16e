/**
 * Darknet softmax over strided rows (kernels/softmax.wgsl), forward and backward. Row r starts at
 * offset + (r % c0)*s0 + ((r / c0) % c1)*s1 + (r / (c0*c1))*s2 and has n values `stride` apart.
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 64;

export interface SoftmaxRows {
  rows: number;
  n: number;
  stride?: number;
  offset?: number;
  c0?: number;
  s0?: number;
  c1?: number;
  s1?: number;
  s2?: number;
  /** Darknet `temperature` (default 1): softmax(x / temperature). */
  temperature?: number;
}

/** The uniform Params of kernels/softmax.wgsl. */
function params(r: SoftmaxRows, invT: number) {
  return { rows: r.rows, n: r.n, stride: r.stride ?? 1, offset: r.offset ?? 0, c0: r.c0 ?? 1, s0: r.s0 ?? 0, c1: r.c1 ?? 1, s1: r.s1 ?? 0, s2: r.s2 ?? 0, invT };
}

/** The largest flat index a row layout touches (+1), for validation. */
function extent(r: SoftmaxRows): number {
  if (r.rows === 0 || r.n === 0) return 0;
  const c0 = r.c0 ?? 1;
  const c1 = r.c1 ?? 1;
  const last = r.rows - 1;
  const r0 = Math.min(last, c0 - 1);
  const r1 = Math.min(Math.floor(last / c0), c1 - 1);
  const r2 = Math.floor(last / (c0 * c1));
  return (r.offset ?? 0) + r0 * (r.s0 ?? 0) + r1 * (r.s1 ?? 0) + r2 * (r.s2 ?? 0) + (r.n - 1) * (r.stride ?? 1) + 1;
}

/**
 * Softmax of the rows of x; values outside every row are copied unchanged (y starts as a copy of x when
 * the rows do not cover it). Recorded on the tape.
 */
export function softmaxRows(x: Tensor, r: SoftmaxRows): Tensor {
  const T = r.temperature ?? 1;
  if (!(T > 0)) throw new Error(`softmax: temperature must be > 0, got ${T}`);
  if (extent(r) > x.size) throw new Error(`softmax: the row layout reaches index ${extent(r) - 1}, beyond ${x.describe()}`);
  const gpu = x.gpu;
  const y = new Tensor(gpu, x.shape);
  const covers = r.rows * r.n === x.size;
  if (!covers) gpu.copy(x, 0, y, 0, x.bytes);
  const p = params(r, 1 / T);
  gpu.dispatch({ file: 'softmax', entry: 'fwd', constants: { WG } }, p, { 1: x, 2: y }, gpu.grid(r.rows, WG));
  Tape.push({
    op: 'softmax', inputs: [x], outputs: [y], saved: [y],
    backward: ([g]) => {
      const dx = new Tensor(gpu, x.shape);
      if (!covers) gpu.copy(g!, 0, dx, 0, g!.bytes);
      gpu.dispatch({ file: 'softmax', entry: 'bwd', constants: { WG } }, p, { 1: y, 2: dx, 3: g! }, gpu.grid(r.rows, WG));
      return [dx];
    },
  });
  return y;
}
