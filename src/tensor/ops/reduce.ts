/**
 * Reductions (kernels/reduce.wgsl): sum, mean, sum of squares of a whole tensor (-> [1]) and per-channel
 * sums / means / sums of squares over NCHW (-> [C]), recorded on the tape; their backward broadcasts the
 * upstream gradient. Accumulation is double-float (TwoSum pairs through every level), so results are the
 * exact sum rounded to f32 within 1 ulp (see test/kernels/reduce.test.ts for the measured error).
 */
import type { Gpu } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

/**
 * Tree reductions over the threads of one workgroup (kernels/lib/tree.wgsl: batchnorm.wgsl's partials,
 * conv2d_direct.wgsl bwd_bias, pool.wgsl avg_fwd) run their `threads` on fewer invocations where that is
 * cheaper: each invocation runs several threads one after the other and adds the tree's first levels in
 * registers, so the sums are the same bit for bit at every width. On lavapipe each SIMD group of 8
 * invocations in a workgroup is a coroutine switched at every barrier; one group instead of eight made the
 * batchnorm partials 1.2-2x faster and the average pool 4x. GPUs keep one invocation per thread. `width`
 * (tests): a power of two from 8 to the threads, 0 = by adapter.
 */
export const treeTuning = { width: 0 };

/** Invocations for a tree reduction of `threads` virtual threads (the kernels' override WV). */
export function treeInvocations(gpu: Gpu, threads: number): number {
  const w = treeTuning.width;
  if (!w) return gpu.info.kind === 'gpu' ? threads : 8;
  if (w < 8 || w > threads || (w & (w - 1)) !== 0) throw new Error(`tree reduction width must be a power of two from 8 to ${threads}, got ${w}`);
  return w;
}

/** A scale folded into the final pass, and launch tuning (tests shrink it to exercise multi-pass and 2-D grids). */
export interface ReduceOptions {
  /** Multiplies the result (and so the gradient), at no extra cost: e.g. sumSquares(d, { scale: 1 / n }). */
  scale?: number;
  /** Workgroup size, a power of two (default 256). */
  wg?: number;
  /** Values per thread per pass (default 16). */
  items?: number;
  /** Cap on workgroups per grid dimension (default: the adapter's maxComputeWorkgroupsPerDimension). */
  maxGroupsPerDim?: number;
}

/**
 * Where the values of each row live: value j of row r is at
 * `r * rowStride + floor(j / inner) * outerStride + j % inner`.
 */
export interface RowLayout {
  rows: number;
  /** values per row */
  count: number;
  /** contiguous run length inside a row (>= 1) */
  inner: number;
  outerStride: number;
  rowStride: number;
}

/** NCHW view for per-channel reductions: n outer blocks, c channels, inner = H*W (any trailing dims). */
export interface ChannelLayout {
  n: number;
  c: number;
  inner: number;
}

const WG = 256;
const ITEMS = 16; // lavapipe: 4M values in 91 ms at 16, 122 ms at 8 (an elementwise pass: 100 ms)

/** [N, C, ...rest] -> {n: N, c: C, inner: prod(rest)}; [C] -> {1, C, 1}. */
export function channelLayout(shape: readonly number[]): ChannelLayout {
  if (shape.length === 0) throw new Error('channel reduction of a scalar tensor');
  if (shape.length === 1) return { n: 1, c: shape[0], inner: 1 };
  return { n: shape[0], c: shape[1], inner: shape.slice(2).reduce((a, b) => a * b, 1) };
}

function checkTuning(o: ReduceOptions): { wg: number; items: number; maxDim: number } {
  const wg = o.wg ?? WG;
  const items = o.items ?? ITEMS;
  if (!Number.isInteger(wg) || wg < 1 || (wg & (wg - 1)) !== 0) throw new Error(`reduce: workgroup size ${wg} is not a power of two`);
  if (!Number.isInteger(items) || items < 1) throw new Error(`reduce: items ${items} must be a positive integer`);
  if (wg * items < 2) throw new Error('reduce: wg * items must be at least 2 (each pass must shrink the rows)');
  return { wg, items, maxDim: o.maxGroupsPerDim ?? Infinity };
}

/** 2-D grid of at least `groups` workgroups with at most maxDim per dimension. */
function grid2d(gpu: Gpu, groups: number, maxDim: number): [number, number] {
  const lim = Math.min(maxDim, gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535);
  if (groups <= lim) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / lim);
  if (y > lim) throw new Error(`reduce: ${groups} workgroups exceed a ${lim}x${lim} grid`);
  return [Math.ceil(groups / y), y];
}

/**
 * out[r] = scale * Σ_j v(r, j) (v = x or x², per `square`) for each row of `layout`, into `out` (size >= rows).
 * Not recorded; `scale` is this argument (opts.scale is applied by the recorded ops, not here).
 * Dispatches ceil(log_{wg*items}(count)) passes of one kernel; temporaries go back to the pool.
 */
export function reduceRowsInto(x: Tensor, out: Tensor, layout: RowLayout, square = false, scale = 1, opts: ReduceOptions = {}): Tensor {
  const { wg, items, maxDim } = checkTuning(opts);
  const { rows } = layout;
  if (out.size < rows) throw new Error(`reduce: output ${out.describe()} smaller than ${rows} rows`);
  if (rows === 0) return out;
  const gpu = x.gpu;
  const per = wg * items;
  const lanes = 2 ** Math.ceil(Math.log2(wg) / 2); // ~sqrt(wg): the middle stage of the workgroup sum
  const spec = { file: 'reduce', entry: 'reduce', constants: { WG: wg, LANES: lanes } };
  // flags: 1 square, 4 pairs in, 8 final (kernels/reduce.wgsl)
  const pass = (input: Tensor, output: Tensor, count: number, inner: number, outer: number, rowStride: number, chunks: number, flags: number) =>
    gpu.dispatch(spec, { count, inner, outer_stride: outer, row_stride: rowStride, chunks, total: rows * chunks, channels: 0, scale: flags & 8 ? scale : 1, zero: 0, flags, items }, { 1: input, 4: output }, grid2d(gpu, rows * chunks, maxDim));
  const inner = Math.max(1, layout.inner);
  const sq = square ? 1 : 0;
  let chunks = Math.max(1, Math.ceil(layout.count / per));
  if (chunks === 1) {
    pass(x, out, layout.count, inner, layout.outerStride, layout.rowStride, 1, sq | 8);
    return out;
  }
  const temp = (n: number) => Tape.untracked(() => new Tensor(gpu, [n * 2], 'reduce-partials'));
  let part = temp(rows * chunks);
  pass(x, part, layout.count, inner, layout.outerStride, layout.rowStride, chunks, sq);
  for (;;) {
    const cnt = chunks;
    chunks = Math.max(1, Math.ceil(cnt / per));
    if (chunks === 1) {
      pass(part, out, cnt, cnt, 0, cnt, 1, 4 | 8);
      break;
    }
    const next = temp(rows * chunks);
    pass(part, next, cnt, cnt, 0, cnt, chunks, 4);
    part.dispose();
    part = next;
  }
  part.dispose();
  return out;
}

/** The broadcast backward: dx[i] = scale * g[0] (or g[c(i)] per channel), times 2*x[i] when `square`. */
function broadcastGrad(x: Tensor, g: Tensor, square: boolean, scale: number, ch: ChannelLayout | null): Tensor {
  const gpu = x.gpu;
  const dx = new Tensor(gpu, x.shape);
  const spec = { file: 'reduce', entry: square ? 'bcast_sq' : 'bcast', constants: { WG } };
  const params = { count: x.size, inner: Math.max(1, ch?.inner ?? 1), outer_stride: 0, row_stride: 0, chunks: 0, total: 0, channels: Math.max(1, ch?.c ?? 1), scale, zero: 0, flags: ch ? 2 : 0, items: 0 };
  const bind: Record<number, Tensor> = { 4: dx, 5: g };
  if (square) bind[1] = x;
  gpu.dispatch(spec, params, bind, gpu.grid(x.size, WG));
  return dx;
}

function wholeReduce(op: string, x: Tensor, square: boolean, base: number, opts?: ReduceOptions): Tensor {
  const scale = base * (opts?.scale ?? 1);
  const y = new Tensor(x.gpu, [1]);
  reduceRowsInto(x, y, { rows: 1, count: x.size, inner: Math.max(1, x.size), outerStride: 0, rowStride: 0 }, square, scale, opts);
  Tape.push({ op, inputs: [x], outputs: [y], saved: square ? [x] : [], backward: ([g]) => [broadcastGrad(x, g!, square, scale, null)] });
  return y;
}

/** Σ x -> [1] (times opts.scale). Backward: dx = g (times opts.scale). */
export function sum(x: Tensor, opts?: ReduceOptions): Tensor {
  return wholeReduce('sum', x, false, 1, opts);
}

/** Σ x / n -> [1] (NaN for an empty tensor). Backward: dx = g / n. */
export function mean(x: Tensor, opts?: ReduceOptions): Tensor {
  return wholeReduce('mean', x, false, x.size ? 1 / x.size : NaN, opts);
}

/** Σ x² -> [1]. Backward: dx = 2 g x. */
export function sumSquares(x: Tensor, opts?: ReduceOptions): Tensor {
  return wholeReduce('sumSquares', x, true, 1, opts);
}

function channelReduce(op: string, x: Tensor, square: boolean, isMean: boolean, layout?: ChannelLayout, opts?: ReduceOptions): Tensor {
  const ch = layout ?? channelLayout(x.shape);
  if (ch.n * ch.c * ch.inner !== x.size) throw new Error(`${op}: layout n=${ch.n} c=${ch.c} inner=${ch.inner} does not cover ${x.describe()}`);
  const count = ch.n * ch.inner;
  const scale = (isMean ? (count ? 1 / count : NaN) : 1) * (opts?.scale ?? 1);
  const y = new Tensor(x.gpu, [ch.c]);
  reduceRowsInto(x, y, { rows: ch.c, count, inner: Math.max(1, ch.inner), outerStride: ch.c * ch.inner, rowStride: ch.inner }, square, scale, opts);
  Tape.push({ op, inputs: [x], outputs: [y], saved: square ? [x] : [], backward: ([g]) => [broadcastGrad(x, g!, square, scale, ch)] });
  return y;
}

/**
 * Per-channel Σ over N and the spatial dims of an NCHW tensor -> [C] (bias gradients, BN statistics).
 * `layout` overrides the view taken from the shape (default {N, C, H*W}).
 * Backward: dx[n,c,h,w] = g[c].
 */
export function channelSum(x: Tensor, layout?: ChannelLayout, opts?: ReduceOptions): Tensor {
  return channelReduce('channelSum', x, false, false, layout, opts);
}

/** Per-channel mean over N, H, W -> [C]. Backward: dx = g[c] / (N*H*W). */
export function channelMean(x: Tensor, layout?: ChannelLayout, opts?: ReduceOptions): Tensor {
  return channelReduce('channelMean', x, false, true, layout, opts);
}

/** Per-channel Σ x² over N, H, W -> [C]. Backward: dx = 2 g[c] x. */
export function channelSumSquares(x: Tensor, layout?: ChannelLayout, opts?: ReduceOptions): Tensor {
  return channelReduce('channelSumSquares', x, true, false, layout, opts);
}
