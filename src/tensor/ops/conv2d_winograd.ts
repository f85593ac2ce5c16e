/**
 * Winograd F(4x4, 3x3) and F(2x2, 3x3) for the inference forward of 3x3 stride-1 convolutions
 * (kernels/conv2d_winograd.wgsl, where the method is described): the input and the weights are transformed
 * into 36 (F(4x4)) or 16 (F(2x2)) matrices each, the conv becomes as many matrix products over the channels
 * (matmul.ts, batched), and an output transform applies the bias and the activation. 4x (F(4x4)) or 2.25x
 * (F(2x2)) fewer multiply-adds than a direct conv, at the price of three extra passes over memory and a
 * different rounding (bounded against float64 by test/kernels/conv2d_winograd.test.ts). F(2x2) is for the
 * small maps where F(4x4) has too few tiles for the products' rows (winogradTile).
 *
 * Inference only, not on the tape: the transformed weights (winogradWeights, 36/9 = 4x or 16/9 = 1.8x the
 * weights) are made once and kept by the layer (ConvolutionalLayer in 'infer' mode). Used where winogradPlan
 * says so, at its tile; training and every other caller of conv2dForward keep the direct kernels, so training's
 * numbers do not change.
 */
import type { Gpu } from '../../gpu/device.js';
import { tuneTable } from '../../gpu/tune.js';
import { Tensor, shapeStr } from '../tensor.js';
import { activationCode, type Activation } from './activation.js';
import { convGeom, convTuneKey, forwardOutput, parseConvPick, type Conv2dParams, type ConvGeom, type ConvOutSlice } from './conv2d.js';
import { defaultTile, defaultVariant, fixedSubgroupSize, matmul, matmulKernel, matmulPanels, panelWidth, tileName, type MatmulConfig } from './matmul.js';
import { fusableMaxpool, maxpoolGeometry, type MaxpoolGeometry, type MaxpoolOptions } from './pool.js';

/** Invocations per workgroup of the three transforms. */
const WINO_WG = 64;

/**
 * The shapes the kernels take: a 3x3 stride-1 conv without dilation or groups, channels in and out a
 * multiple of 4 (the transforms work on 4 channels at a time), float32.
 */
export function winogradSupported(g: ConvGeom): boolean {
  return g.kH === 3 && g.kW === 3 && g.sy === 1 && g.sx === 1 && g.dy === 1 && g.dx === 1 && g.G === 1 && g.Cin % 4 === 0 && g.Cout % 4 === 0;
}

/** The side of an output tile: F(4x4, 3x3) or F(2x2, 3x3). */
export type WinogradTile = 4 | 2;

/** Output tiles down and across (n x n outputs each) and in all (times the batch). */
function tiles(g: ConvGeom, n: WinogradTile): { TH: number; TW: number; T: number } {
  const TH = Math.ceil(g.OH / n);
  const TW = Math.ceil(g.OW / n);
  return { TH, TW, T: g.B * TH * TW };
}

/** How many outputs an image's n x n tiles compute per output of the map (1: no padding past the map). */
function waste(g: ConvGeom, n: WinogradTile): number {
  const { TH, TW } = tiles(g, n);
  return (TH * TW * n * n) / (g.OH * g.OW);
}

/** The products (elements of a transformed block) of an n x n tile: (n + 2)^2. */
const positions = (n: WinogradTile) => (n + 2) * (n + 2);

/**
 * The tile a conv's Winograd takes untuned (winogradPlan), by the size of one image's products: F(4x4) unless
 * F(2x2)'s are smaller, counting each product's rows (the image's tiles) padded to 16, the rows of the
 * products' tile on lavapipe (productConfig), as the kernel computes them. F(2x2) has 16 products to F(4x4)'s
 * 36, and 4x the rows: it is the smaller on maps of up to 10x10 (an 8x8 map: 16 x 16 rows against 36 x 16, its
 * 4 tiles padded), F(4x4) from 11x11 on. One image, not the batch: an image gets the same kernels, so the same
 * bits, in any batch. Measured on lavapipe: docs/performance.md "F(2x2, 3x3)".
 */
export function winogradTile(g: ConvGeom): WinogradTile {
  const size = (n: WinogradTile) => {
    const { TH, TW } = tiles(g, n);
    return positions(n) * Math.ceil((TH * TW) / 16) * 16;
  };
  return size(2) < size(4) ? 2 : 4;
}

/**
 * The tuning table's picks (`yolo-wgsl tune`, conv_tune.ts) that run a forward through Winograd, by tile:
 * 'winograd' F(4x4) (the name tables have held since it landed), 'winograd2' F(2x2).
 */
export const WINOGRAD_PICKS: ReadonlyMap<string, WinogradTile> = new Map([['winograd', 4], ['winograd2', 2]]);

/** Whether the inference forward of a conv takes Winograd on this adapter (winogradPlan). */
export function useWinograd(gpu: Gpu, g: ConvGeom): boolean {
  return winogradPlan(gpu, g) !== 0;
}

/**
 * The tile the inference forward of a conv takes through Winograd on this adapter, or 0: the direct kernels.
 * Never where its buffers (the transformed weights, 4x or 1.8x the weights; the transformed input and product,
 * 36/16 or 16/4 of the input and output per tile) would pass the adapter's binding limit, or the matmul's grid
 * its workgroup limit. Else the tuned pick for the shape when `yolo-wgsl tune` measured one: 'winograd' F(4x4),
 * 'winograd2' F(2x2) (tune times both against the direct kernels, at the batch it was given), a direct kernel
 * 0. Else winogradTile's tile on the CPU adapters with the 8-lane subgroup matmul (lavapipe) for a conv of at
 * least 4e7 multiply-adds per image at F(4x4) (below, the four dispatches and thin matrices cost more than
 * they save; 1e8 until the products read their weights in panels, when 16x16 128 -> 256 gained 1.63x and
 * yolov3-tiny at 256 b1 1.06x) or 2.5e7 at F(2x2) (whose transforms cost less, on small maps where the direct
 * kernel fills fewer lanes: 2.9e7 to 3.8e7 gained 1.4-1.5x, 1.9e7 was even), from 64 input channels on, where
 * the tiles waste at most 60% more outputs (a 13x13 map pads to 16x16 in F(4x4) tiles: 1.51x, and still
 * gained). Until F(2x2), F(4x4) also needed 16 tiles per image (the products' rows): with fewer it lost to the
 * direct kernels (0.61x on an 8x8 map at batch 1), where winogradTile now takes F(2x2) (1.2-1.5x on maps of
 * 4x4 to 10x10 at batch 1). Measured on lavapipe: docs/performance.md "Winograd" and "F(2x2, 3x3)".
 * The untuned rule looks at one image, not the batch: an image gets the same kernels, so the same bits, in a
 * forward of any batch size (a served request alone or batched, detect --batch; docs/serve.md). Counting the
 * batch would run the 8x8 maps of 256-pixel inputs through F(4x4) from batch 4 on (2.2x faster than the
 * direct kernel at batch 8, where F(2x2) is 1.4x) at the cost of that; `tune` at that batch can pick it.
 */
export function winogradPlan(gpu: Gpu, g: ConvGeom): WinogradTile | 0 {
  if (!winogradSupported(g)) return 0;
  // a measured pick: 'winograd' or 'winograd2', or one of the direct kernels (which conv2d's auto follows)
  const e = tuneTable(gpu).get('conv2d', convTuneKey(g, 'fwd'));
  const tuned = e ? WINOGRAD_PICKS.get(e.pick) : undefined;
  const n = tuned ?? winogradTile(g);
  const { T } = tiles(g, n);
  const limit = gpu.limits.maxStorageBufferBindingSize ?? 128 * 1024 * 1024;
  if (positions(n) * 4 * Math.max(g.Cin * g.Cout, T * g.Cin, T * g.Cout) > limit) return 0;
  // the matmul's grid (the products along z, rows of tiles along y) is not split past the per-dimension limit
  const mm = productConfig(gpu, T);
  const grid = matmulKernel(mm.variant, mm.tile, { M: T, N: g.Cout, K: g.Cin, batch: positions(n) }, true).groups;
  if (Math.max(...grid) > (gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535)) return 0;
  if (tuned) return tuned;
  if (e && parseConvPick(e.pick)) return 0;
  if (gpu.info.kind === 'gpu' || fixedSubgroupSize(gpu) !== 8) return 0;
  const macs = g.OH * g.OW * g.Cout * g.Cin * 9;
  return macs >= (n === 2 ? 2.5e7 : 4e7) && g.Cin >= 64 && waste(g, n) <= 1.6 ? n : 0;
}

/**
 * The matmul config of the 36 products over T tiles: the device's default variant at its default tile; for
 * 'sg', 16 or 24 rows (tiles) x 4 columns (output channels) per lane: 24 unless it pads the rows 5% more than
 * 16 does. On lavapipe (A/B in one process) 16x4 was the best or within 10% of it on every product of
 * yolov3-tiny's layers at batch 1, and 24x4 4-12% faster than 16x4 on 392 to 2704 tiles (3.5% slower on 128,
 * which 16 divides).
 */
export function productConfig(gpu: Gpu, T: number): MatmulConfig {
  const variant = defaultVariant(gpu);
  const tile = defaultTile(variant);
  if (variant !== 'sg') return { variant, tile };
  const pad = (tm: number) => Math.ceil(T / tm) * tm;
  return { variant, tile: { ...tile, tm: pad(24) <= 1.05 * pad(16) ? 24 : 16, tn: 4 } };
}

/**
 * The column-panel width of the products' B operand (U) on this adapter for Cout output channels: the 'sg'
 * tile's columns (wgx * tn: 32 on lavapipe) where the products run 'sg' and Cout is a multiple of it, else 0
 * (U row-major). In panels each workgroup of a product streams its columns of U as one block: on lavapipe
 * the 36 products of yolov3-tiny's 512 -> 1024 layer at 416 b1 (75 MB of U) ran 7% faster, the network 1.07x.
 */
export function winogradPanel(gpu: Gpu, Cout: number): number {
  const mm = productConfig(gpu, 1);
  const P = panelWidth(mm.tile);
  return mm.variant === 'sg' && Cout % P === 0 ? P : 0;
}

/**
 * The transformed weights of w [Cout, Cin, 3, 3] (float32; a new tensor, not recorded) for n x n output tiles
 * (default F(4x4)): U [(n+2)^2, Cin, Cout], or with `panel` P > 0 the same values in column panels,
 * [(n+2)^2, Cout/P, Cin, P] (matmulPanels' B). Default panel: the adapter's winogradPanel.
 */
export function winogradWeights(w: Tensor, panel = winogradPanel(w.gpu, w.shape[0]), n: WinogradTile = 4): Tensor {
  const [M, C, kh, kw] = w.shape;
  if (w.shape.length !== 4 || kh !== 3 || kw !== 3 || C % 4 || M % 4 || w.dtype !== 'f32') {
    throw new Error(`conv2d winograd: weights must be float32 [Cout, Cin, 3, 3] with Cin and Cout multiples of 4, got ${w.describe()}`);
  }
  if (panel && (panel % 4 || M % panel)) throw new Error(`conv2d winograd: panels of ${panel} columns need Cout (${M}) a multiple of them, and the width a multiple of 4`);
  if (n !== 4 && n !== 2) throw new Error(`conv2d winograd: the output tile must be 4 or 2, got ${n}`);
  const gpu = w.gpu;
  const X = positions(n);
  const u = new Tensor(gpu, panel ? [X, M / panel, C, panel] : [X, C, M]);
  gpu.dispatch({ file: 'conv2d_winograd', entry: 'wt', defines: { N: n }, constants: { WG: WINO_WG } }, uniforms(C, 1, 1, M, 0, 0, 0, 0, 0, 0, 0, { P4: panel / 4 }), { 1: w, 2: u }, gpu.grid(C * (M / 4), WINO_WG));
  return u;
}

function uniforms(C: number, H: number, W: number, M: number, OH: number, OW: number, PY: number, PX: number, TH: number, TW: number, T: number, e: { Ctot?: number; Coff?: number; act?: number; bias?: boolean; poolH?: number; poolW?: number; P4?: number } = {}) {
  return { C, H, W, M, OH, OW, PY, PX, TH, TW, T, Ctot: e.Ctot ?? M, Coff: e.Coff ?? 0, act: e.act ?? 0, has_bias: e.bias ? 1 : 0, t0: 0, pool_h: e.poolH ?? 0, pool_w: e.poolW ?? 0, P4: e.P4 ?? 0 };
}

export interface WinogradOptions {
  /** The matmul config of the 36 or 16 products (default: productConfig). */
  matmul?: MatmulConfig;
  /** Write into channels [channelOffset, +Cout) of out.dst, as conv2dForward (not with `pool`). */
  out?: ConvOutSlice;
  /**
   * Darknet's [maxpool] size=2 stride=2 after the activation, in the output transform (fusableMaxpool; a 4x4
   * or 2x2 tile holds whole windows): returns the pooled [B, Cout, outH, outW] map, as conv2dMaxpoolForward.
   */
  pool?: MaxpoolOptions;
}

/**
 * y = act(conv2d(x, w) + b) through Winograd, with u = winogradWeights(w, panel, n): F(4x4, 3x3) or F(2x2, 3x3)
 * by u's first dimension (36 or 16); not recorded (as conv2dForward). `p` as conv2dForward's (stride 1, any
 * padding).
 */
export function conv2dWinograd(x: Tensor, u: Tensor, b: Tensor | null, p: Conv2dParams = {}, act: Activation = 'linear', opts: WinogradOptions = {}): Tensor {
  const panels = u.shape.length === 4;
  const X = u.shape[0];
  if ((u.shape.length !== 3 && !panels) || (X !== 36 && X !== 16)) throw new Error(`conv2d winograd: transformed weights must be [36 or 16, Cin, Cout] or its panels [36 or 16, Cout/P, Cin, P] (winogradWeights), got ${u.describe()}`);
  const n: WinogradTile = X === 36 ? 4 : 2;
  const C = panels ? u.shape[2] : u.shape[1];
  const M = panels ? u.shape[1] * u.shape[3] : u.shape[2];
  const g = convGeom(x.shape, [M, C, 3, 3], p);
  if (!winogradSupported(g) || x.dtype !== 'f32') throw new Error(`conv2d winograd: needs a float32 3x3 stride-1 conv without dilation or groups, channels multiples of 4; got input ${x.describe()}, weights [${M}, ${C}, 3, 3], ${JSON.stringify(p)}`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== M)) throw new Error(`conv2d winograd: bias has shape ${shapeStr(b.shape)}, expected [${M}]`);
  const gpu = x.gpu;
  let q: MaxpoolGeometry | null = null;
  if (opts.pool) {
    if (!fusableMaxpool(opts.pool) || opts.out) throw new Error(`conv2d winograd: only a 2x2/2 maxpool without an output slice is fused, got ${JSON.stringify(opts.pool)}${opts.out ? ' with an output slice' : ''}`);
    q = maxpoolGeometry(g.OH, g.OW, opts.pool);
  }
  const { y, Ctot, Coff } = q ? { y: Tensor.like(x, [g.B, M, q.outH, q.outW]), Ctot: M, Coff: 0 } : forwardOutput(x, g, opts.out, [u, b]);
  const { TH, TW, T } = tiles(g, n);
  const prm = uniforms(C, g.H, g.W, M, g.OH, g.OW, g.py, g.px, TH, TW, T, { Ctot, Coff, act: activationCode(act), bias: b !== null, poolH: q?.outH, poolW: q?.outW });
  const v = new Tensor(gpu, [X, T, C]);
  const z = new Tensor(gpu, [X, T, M]);
  try {
    dispatchTiles(gpu, n, 'it', prm, { 1: x, 2: v }, T * (C / 4));
    const mm = opts.matmul ?? productConfig(gpu, T);
    if (panels) {
      if (mm.variant !== 'sg' || panelWidth(mm.tile) !== u.shape[3]) throw new Error(`conv2d winograd: weights in panels of ${u.shape[3]} columns need an 'sg' product tile that wide, got ${mm.variant} ${tileName(mm.tile)}`);
      matmulPanels(v, u, z, mm.tile);
    } else {
      matmul(v, u, { variant: mm.variant, tile: mm.tile, out: z });
    }
    const vec4 = n === 4 && g.OW % 4 === 0 && !q;
    dispatchTiles(gpu, n, vec4 ? 'ot4' : 'ot', prm, { 3: z, 4: b ?? u, [vec4 ? 6 : 5]: y }, T * (M / 4));
  } finally {
    v.dispose();
    z.dispose();
  }
  return y;
}

/**
 * One transform of n x n tiles over `count` = tiles x channel groups invocations (WINO_WG per workgroup, in
 * several dispatches past the limit).
 */
function dispatchTiles(gpu: Gpu, n: WinogradTile, entry: 'it' | 'ot' | 'ot4', prm: ReturnType<typeof uniforms>, bind: Record<number, Tensor>, count: number): void {
  const groups = Math.ceil(count / WINO_WG);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  for (let t0 = 0; t0 < groups; t0 += max) {
    prm.t0 = t0;
    gpu.dispatch({ file: 'conv2d_winograd', entry, defines: { N: n }, constants: { WG: WINO_WG } }, prm, bind, [Math.min(max, groups - t0), 1, 1]);
  }
}
