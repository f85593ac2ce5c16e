/**
 * Darknet reorg (kernels/reorg.wgsl, blas.c reorg_cpu): the permutation behind [reorg] (YOLOv2 passthrough,
 * reorg_old_layer.c) and [reorg3d] (space-to-depth, reorg_layer.c), forward and backward (the inverse
 * permutation: the same kernel with the direction flipped).
 */
import { Tensor, shapeStr } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export interface ReorgCall {
  /** The sizes Darknet passes to reorg_cpu (w, h, c); C must be divisible by stride^2. */
  W: number;
  H: number;
  C: number;
  stride: number;
  /** reorg_cpu's `forward` flag: 0 gathers y[i] = x[o(i)], 1 scatters y[o(i)] = x[i]. */
  forward: 0 | 1;
}

function dispatch(x: Tensor, outShape: readonly number[], c: ReorgCall, forward: 0 | 1): Tensor {
  const y = new Tensor(x.gpu, outShape);
  x.gpu.dispatch({ file: 'reorg', entry: 'main', constants: { WG } }, { n: x.size, W: c.W, H: c.H, C: c.C, s: c.stride, fwd: forward }, { 1: x, 2: y }, x.gpu.grid(x.size, WG));
  return y;
}

/**
 * Applies reorg_cpu(x, W, H, C, batch, stride, forward) and gives the result `outShape` (same number of
 * values). Recorded on the tape.
 */
export function reorg(x: Tensor, outShape: readonly number[], c: ReorgCall): Tensor {
  const B = x.shape[0];
  if (!Number.isInteger(c.stride) || c.stride < 1) throw new Error(`reorg: stride must be a positive integer, got ${c.stride}`);
  if (c.C % (c.stride * c.stride) !== 0) throw new Error(`reorg: C=${c.C} is not divisible by stride^2=${c.stride * c.stride}`);
  const n = B * c.W * c.H * c.C;
  if (x.size !== n) throw new Error(`reorg: input ${x.describe()} has ${x.size} values, expected batch ${B} x ${c.C} x ${c.H} x ${c.W} = ${n}`);
  const count = outShape.reduce((a, b) => a * b, 1);
  if (count !== n) throw new Error(`reorg: output shape ${shapeStr(outShape)} does not hold ${n} values`);
  const y = dispatch(x, outShape, c, c.forward);
  Tape.push({
    op: `reorg:${c.stride}:${c.forward}`, inputs: [x], outputs: [y], saved: [],
    backward: ([g]) => [dispatch(g!, x.shape, c, c.forward === 1 ? 0 : 1)],
  });
  return y;
}

/**
 * pjreddie's [reorg] extra= (reorg_layer.c; kernels/reorg_extra.wgsl): each image's values, flattened, then
 * `extra` zeros (Darknet never writes them): output [B, inN + extra, 1, 1]. Backward: the gradient of the
 * copied values (the extra ones have no input). Recorded on the tape.
 */
export function reorgExtra(x: Tensor, extra: number): Tensor {
  if (!Number.isInteger(extra) || extra < 0) throw new Error(`reorg extra: extra must be a non-negative integer, got ${extra}`);
  const B = x.shape[0];
  const inN = x.size / B;
  const outN = inN + extra;
  const gpu = x.gpu;
  const y = new Tensor(gpu, [B, outN, 1, 1]);
  gpu.dispatch({ file: 'reorg_extra', entry: 'fwd', constants: { WG } }, { n: B * outN, inN, outN }, { 1: x, 2: y }, gpu.grid(B * outN, WG));
  Tape.push({
    op: `reorgExtra:${extra}`, inputs: [x], outputs: [y], saved: [],
    backward: ([g]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'reorg_extra', entry: 'bwd', constants: { WG } }, { n: x.size, inN, outN }, { 1: g!, 2: dx }, gpu.grid(x.size, WG));
      return [dx];
    },
  });
  return y;
}
