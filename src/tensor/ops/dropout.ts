/**
 * Dropout (kernels/dropout.wgsl): y = x * m / (1 - p) with m_i = [u(seed, i) >= p], u a counter-based
 * hash, so the mask is a pure function of (seed, index): the backward regenerates it (dx = dy * m / (1 - p),
 * Darknet's backward_dropout_layer) and a seeded run repeats exactly. Recorded on the tape.
 *
 * DropBlock (AlexeyAB dropout_layer_kernels.cu, forward_dropout_layer_gpu with dropblock=1): per image and
 * channel at most one blockSize x blockSize square is zeroed, seeded at the position with the lowest
 * u(seed, index) below blockProb = p / blockSize² (none if no position is below); every output of an image
 * is then scaled by 1 / (1 − its dropped fraction). The block corners and the per-image scales are kept for
 * the backward (dx = dy · the same mask · the same scale, Darknet's backward_dropblock_kernel and
 * scale_dropblock_kernel).
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

export interface DropBlockOptions {
  /** the drop probability (Darknet's cur_prob: probability times the schedule's multiplier), in [0, 1) */
  p: number;
  /** the square's side, 1 <= blockSize <= min(H, W) */
  blockSize: number;
  seed: number;
}

/** DropBlock on NCHW x (see the module comment); p = 0 returns x itself, as no block can be drawn. */
export function dropBlock(x: Tensor, o: DropBlockOptions): Tensor {
  if (x.shape.length !== 4) throw new Error(`dropBlock: expected NCHW, got ${x.describe()}`);
  const [B, C, H, W] = x.shape;
  const bs = o.blockSize;
  if (!(o.p >= 0 && o.p < 1)) throw new Error(`dropBlock: probability must be in [0, 1), got ${o.p}`);
  if (!(Number.isInteger(bs) && bs >= 1 && bs <= Math.min(H, W))) throw new Error(`dropBlock: block size ${bs} is not an integer in 1..${Math.min(H, W)} (the map is ${H}x${W})`);
  if (!Number.isInteger(o.seed)) throw new Error(`dropBlock: seed must be an integer, got ${o.seed}`);
  if (o.p === 0) return x;
  const gpu = x.gpu;
  const seed = o.seed >>> 0;
  const params = (n: number) => ({ n, seed, C, H, W, bs, blockProb: Math.fround(o.p) / (bs * bs) });
  const blk = new Tensor(gpu, [B * C + B], 'dropblock.blocks');
  gpu.dispatch({ file: 'dropout', entry: 'db_seed', constants: { WG } }, params(B * C), { 3: blk }, gpu.grid(B * C, WG));
  gpu.dispatch({ file: 'dropout', entry: 'db_scale', constants: { WG } }, params(B), { 3: blk }, gpu.grid(B, WG));
  const run = (src: Tensor) => {
    const out = new Tensor(gpu, src.shape);
    gpu.dispatch({ file: 'dropout', entry: 'db_apply', constants: { WG } }, params(src.size), { 1: src, 2: out, 3: blk }, gpu.grid(src.size, WG));
    return out;
  };
  const y = run(x);
  if (!Tape.wants([x])) {
    blk.dispose();
    return y;
  }
  Tape.push({ op: `dropblock:${o.p}:${bs}`, inputs: [x], outputs: [y], saved: [blk], backward: ([dy]) => [run(dy!)] });
  return y;
}
