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

/**
 * Darknet's hierarchical softmax (softmax_layer.c softmax_tree; kernels/softmax_tree.wgsl): the row layout of
 * softmaxRows, each row holding a tree's classes (`n` = the tree's class count), and a softmax over every
 * group of sibling classes instead of the whole row. `groups` is the tree's (offset, size) table
 * (src/darknet/tree.ts groupTable). Values outside the rows are copied. Recorded on the tape.
 */
export function softmaxTree(x: Tensor, r: SoftmaxRows, groups: Float32Array): Tensor {
  const T = r.temperature ?? 1;
  if (!(T > 0)) throw new Error(`softmax tree: temperature must be > 0, got ${T}`);
  if (extent(r) > x.size) throw new Error(`softmax tree: the row layout reaches index ${extent(r) - 1}, beyond ${x.describe()}`);
  const G = groups.length / 2;
  const gpu = x.gpu;
  const y = new Tensor(gpu, x.shape);
  const covers = r.rows * r.n === x.size;
  if (!covers) gpu.copy(x, 0, y, 0, x.bytes);
  const table = Tensor.from(gpu, [groups.length], groups, 'softmax-tree.groups');
  const q = params(r, 1 / T);
  const p = { rows: q.rows, groups: G, stride: q.stride, offset: q.offset, c0: q.c0, s0: q.s0, c1: q.c1, s1: q.s1, s2: q.s2, invT: q.invT };
  const count = r.rows * G;
  gpu.dispatch({ file: 'softmax_tree', entry: 'fwd', constants: { WG } }, p, { 1: x, 2: y, 4: table }, gpu.grid(count, WG));
  if (!Tape.current) table.dispose(); // the queue runs in order: the pool hands the buffer out only to later work
  Tape.push({
    op: 'softmaxTree', inputs: [x], outputs: [y], saved: [y, table],
    backward: ([g]) => {
      const dx = new Tensor(gpu, x.shape);
      if (!covers) gpu.copy(g!, 0, dx, 0, g!.bytes);
      gpu.dispatch({ file: 'softmax_tree', entry: 'bwd', constants: { WG } }, p, { 1: y, 2: dx, 3: g!, 4: table }, gpu.grid(count, WG));
      return [dx];
    },
  });
  return y;
}

/**
 * Darknet's classifier cost on a softmax output y (blas.c softmax_x_ent as forward_softmax_layer_gpu applies
 * it; kernels/xent.wgsl): per element -log(y) where the target is non-zero, 0 where it is 0 or NaN (NaN marks
 * masked classes: src/darknet/tree.ts hierarchyTarget's groups off the label's path, Darknet's SECRET_NUM).
 * Returns the per-element loss (sum it); the backward through y and its softmax / softmaxTree gives
 * dL/dx = y - t on the groups holding a target and 0 on the masked ones: Darknet's delta t - y, negated.
 * Recorded (gradient w.r.t. y only).
 */
export function softmaxCrossEntropy(y: Tensor, target: Tensor): Tensor {
  if (target.size !== y.size) throw new Error(`softmax cross-entropy: target ${target.describe()} does not match ${y.describe()}`);
  const gpu = y.gpu;
  const out = new Tensor(gpu, y.shape);
  gpu.dispatch({ file: 'xent', entry: 'fwd', constants: { WG: 256 } }, { n: y.size }, { 1: y, 2: target, 3: out }, gpu.grid(y.size, 256));
  Tape.push({
    op: 'softmaxCrossEntropy', inputs: [y], outputs: [out], saved: [y, target],
    backward: ([g]) => {
      const dy = new Tensor(gpu, y.shape);
      gpu.dispatch({ file: 'xent', entry: 'bwd', constants: { WG: 256 } }, { n: y.size }, { 1: y, 2: target, 3: dy, 4: g! }, gpu.grid(y.size, 256));
      return [dy];
    },
  });
  return out;
}
