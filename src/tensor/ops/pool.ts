/**
 * Darknet [maxpool], [local_avgpool] (maxpool_layer.c) and global [avgpool] (kernels/pool.wgsl), forward
 * and backward.
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { fill } from './elementwise.js';
import { treeInvocations } from './reduce.js';

const WG = 256;

export interface MaxpoolOptions {
  size: number;
  /** Both strides (Darknet `stride`, default 1). */
  stride?: number;
  /** Darknet `stride_x` / `stride_y` (override `stride`). */
  strideX?: number;
  strideY?: number;
  /** Total padding per axis (Darknet `padding`, default size-1); the window starts at -padding/2. */
  padding?: number;
}

export interface MaxpoolGeometry {
  size: number;
  strideX: number;
  strideY: number;
  padding: number;
  outH: number;
  outW: number;
}

/** Darknet's output size: out = (in + padding - size)/stride + 1 (integer division). */
export function maxpoolGeometry(h: number, w: number, opts: MaxpoolOptions): MaxpoolGeometry {
  const size = opts.size;
  const strideX = opts.strideX ?? opts.stride ?? 1;
  const strideY = opts.strideY ?? opts.stride ?? 1;
  const padding = opts.padding ?? size - 1;
  for (const [k, v] of Object.entries({ size, strideX, strideY })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`maxpool: ${k} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`maxpool: padding must be a non-negative integer, got ${padding}`);
  const outH = Math.floor((h + padding - size) / strideY) + 1;
  const outW = Math.floor((w + padding - size) / strideX) + 1;
  if (outH < 1 || outW < 1) throw new Error(`maxpool: input ${h}x${w} is smaller than the window (size ${size}, padding ${padding})`);
  return { size, strideX, strideY, padding, outH, outW };
}

function nchw(op: string, x: Tensor): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: expected an NCHW tensor, got ${x.describe()}`);
  return x.shape as unknown as [number, number, number, number];
}

/**
 * Darknet's [maxpool] size=2 stride=2 with windows from (0, 0) (padding 0 or 1, the default): the pool that
 * other passes apply to their own output (the tile conv's epilogue at inference, batchnormMaxpool in training).
 */
export function fusableMaxpool(pool: MaxpoolOptions): boolean {
  const sx = pool.strideX ?? pool.stride ?? 1;
  const sy = pool.strideY ?? pool.stride ?? 1;
  if (pool.size !== 2 || sx !== 2 || sy !== 2) return false;
  // a 2x2 map always holds a 2x2 window (any padding): the probe cannot throw
  return Math.floor(maxpoolGeometry(2, 2, pool).padding / 2) === 0;
}

/**
 * Windows at least this wide run as two passes (kernels/pool.wgsl max_rows, max_cols: 2*size loads per output
 * instead of size*size, the same outputs and argmax bit for bit): SPP's 5, 9 and 13.
 */
const SEPARABLE_FROM = 5;

/**
 * Invocations per workgroup of max_infer (one plane's outputs per grid row: 64 leaves fewer idle lanes on
 * 13x13 maps than 256, and measured the same on yolov3-tiny's 26x26 and 13x13 pools).
 */
const INFER_WG = 64;

/**
 * Darknet maxpool: [N, C, H, W] -> [N, C, outH, outW]; padding taps are -FLT_MAX, the first maximum of a
 * window (row-major) wins. Backward sends dy to the saved argmax of each window.
 */
export function maxpool(x: Tensor, opts: MaxpoolOptions): Tensor {
  const [N, C, H, W] = nchw('maxpool', x);
  const g = maxpoolGeometry(H, W, opts);
  const gpu = x.gpu;
  const y = Tensor.like(x, [N, C, g.outH, g.outW]); // f32, or f16 at inference
  const params = (n: number) => ({ n, w: W, h: H, ow: g.outW, oh: g.outH, size: g.size, sx: g.strideX, sy: g.strideY, pad: g.padding });
  // 2x2/2 windows from (0, 0), width a multiple of 4: pairs of outputs from vec4 rows (max2_fwd / max2_bwd)
  const pairs = g.size === 2 && g.strideX === 2 && g.strideY === 2 && Math.floor(g.padding / 2) === 0 && W % 4 === 0 && g.outW * 2 === W;
  const np = y.size / 2;
  const defines = storageDefines(x.dtype);
  const plane = g.outH * g.outW;
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (!pairs && g.size < SEPARABLE_FROM && !Tape.wants([x]) && N * C <= maxWg && Math.ceil(plane / INFER_WG) <= maxWg) {
    // inference: no argmax to save; a plane per grid row, the window size a pipeline constant (unrolled taps)
    gpu.dispatch({ file: 'pool', entry: 'max_infer', defines, constants: { WG: INFER_WG, KS: g.size } }, params(plane), { 1: x, 2: y }, [Math.ceil(plane / INFER_WG), N * C, 1]);
    return y;
  }
  const idx = new Tensor(gpu, y.shape, 'maxpool-argmax'); // i32 argmax within the plane, -1 for none
  if (pairs) gpu.dispatch({ file: 'pool', entry: 'max2_fwd', defines, constants: { WG } }, params(np), { 1: x, 2: y, 3: idx }, gpu.grid(np, WG));
  else if (g.size >= SEPARABLE_FROM) {
    // row maxima (and their columns) per input row and output column, then the max over the window's rows
    const rows = Tensor.like(x, [N, C, H, g.outW]);
    const cols = new Tensor(gpu, rows.shape, 'maxpool-rowargmax');
    gpu.dispatch({ file: 'pool', entry: 'max_rows', defines, constants: { WG } }, params(rows.size), { 1: x, 2: rows, 3: cols }, gpu.grid(rows.size, WG));
    gpu.dispatch({ file: 'pool', entry: 'max_cols', defines, constants: { WG } }, params(y.size), { 1: rows, 2: y, 3: idx, 5: cols }, gpu.grid(y.size, WG));
    rows.dispose();
    cols.dispose();
  } else gpu.dispatch({ file: 'pool', entry: 'max_fwd', defines, constants: { WG } }, params(y.size), { 1: x, 2: y, 3: idx }, gpu.grid(y.size, WG));
  if (!Tape.wants([x])) {
    idx.dispose();
    return y;
  }
  Tape.push({
    op: `maxpool:${g.size}/${g.strideX}x${g.strideY}p${g.padding}`, inputs: [x], outputs: [y], saved: [idx],
    backward: ([dy]) => {
      const dx = new Tensor(gpu, x.shape);
      const tiles = g.size === g.strideX && g.size === g.strideY && Math.floor(g.padding / 2) === 0 && W === g.outW * g.size && H === g.outH * g.size;
      if (tiles && pairs) {
        gpu.dispatch({ file: 'pool', entry: 'max2_bwd', constants: { WG } }, params(np), { 2: dx, 3: idx, 4: dy! }, gpu.grid(np, WG));
      } else if (tiles) {
        // the windows tile the input: each output writes its whole window, no zero fill
        gpu.dispatch({ file: 'pool', entry: 'max_bwd_tile', constants: { WG } }, params(dy!.size), { 2: dx, 3: idx, 4: dy! }, gpu.grid(dy!.size, WG));
      } else if (g.size <= g.strideX && g.size <= g.strideY) {
        // windows do not overlap: zero dx, scatter each output's gradient to its argmax
        fill(dx, 0);
        gpu.dispatch({ file: 'pool', entry: 'max_bwd_scatter', constants: { WG } }, params(dy!.size), { 2: dx, 3: idx, 4: dy! }, gpu.grid(dy!.size, WG));
      } else {
        // one invocation per input row (kernels/pool.wgsl max_bwd)
        gpu.dispatch({ file: 'pool', entry: 'max_bwd', constants: { WG } }, params(N * C * H), { 2: dx, 3: idx, 4: dy! }, gpu.grid(N * C * H, WG));
      }
      return [dx];
    },
  });
  return y;
}

/**
 * Darknet [local_avgpool]: the maxpool window geometry, each output the mean of its window's valid taps
 * (padding taps not counted). Backward: the exact gradient, each input gets dy / count of every window
 * covering it (kernels/pool.wgsl says where Darknet's backward differs).
 */
export function localAvgpool(x: Tensor, opts: MaxpoolOptions): Tensor {
  const [N, C, H, W] = nchw('local_avgpool', x);
  const g = maxpoolGeometry(H, W, opts);
  const gpu = x.gpu;
  const y = new Tensor(gpu, [N, C, g.outH, g.outW]);
  const params = (n: number) => ({ n, w: W, h: H, ow: g.outW, oh: g.outH, size: g.size, sx: g.strideX, sy: g.strideY, pad: g.padding });
  gpu.dispatch({ file: 'pool', entry: 'local_avg_fwd', constants: { WG } }, params(y.size), { 1: x, 2: y }, gpu.grid(y.size, WG));
  Tape.push({
    op: `local_avgpool:${g.size}/${g.strideX}x${g.strideY}p${g.padding}`, inputs: [x], outputs: [y], saved: [],
    backward: ([dy]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'pool', entry: 'local_avg_bwd', constants: { WG } }, params(dx.size), { 2: dx, 4: dy! }, gpu.grid(dx.size, WG));
      return [dx];
    },
  });
  return y;
}

/**
 * On CPU adapters the global average pool's planes of at most `planeMax` values take one invocation each
 * (pool.wgsl avg_fwd_planes), larger ones a workgroup each (avg_fwd); both make the same additions (the same
 * bits). Real GPUs keep a workgroup per plane (a 256-value register array per invocation would spill there).
 * Mutable for the tests, which compare the two.
 */
export const avgpoolTuning = { planeMax: 1024 };
const AVG_PLANES_WG = 32;

/** Darknet global average pool: [N, C, H, W] -> [N, C, 1, 1] (mean over each plane). */
export function avgpool(x: Tensor): Tensor {
  const [N, C, H, W] = nchw('avgpool', x);
  const gpu = x.gpu;
  const hw = H * W;
  const planes = N * C;
  const y = new Tensor(gpu, [N, C, 1, 1]);
  // a 256-thread tree per plane: in one invocation (small planes) or one workgroup (2-D grid of workgroups);
  // w is the plane size, the window fields unused
  const params = (n: number) => ({ n, w: hw, h: 1, ow: 1, oh: 1, size: 1, sx: 1, sy: 1, pad: 0 });
  if (hw <= avgpoolTuning.planeMax && gpu.info.kind !== 'gpu') gpu.dispatch({ file: 'pool', entry: 'avg_fwd_planes', constants: { WG: AVG_PLANES_WG } }, params(planes), { 1: x, 2: y }, gpu.grid(planes, AVG_PLANES_WG));
  else gpu.dispatch({ file: 'pool', entry: 'avg_fwd', constants: { WV: treeInvocations(gpu, 256) } }, params(planes), { 1: x, 2: y }, gpu.grid(planes, 1));
  Tape.push({
    op: 'avgpool', inputs: [x], outputs: [y], saved: [],
    backward: ([dy]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'pool', entry: 'avg_bwd', constants: { WG } }, params(dx.size), { 2: dx, 4: dy! }, gpu.grid(dx.size, WG));
      return [dx];
    },
  });
  return y;
}
