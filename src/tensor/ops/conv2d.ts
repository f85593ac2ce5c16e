/**
 * 2-D convolution (kernels/conv2d_*.wgsl): NCHW float32 input, OIHW weights [Cout, Cin/groups, kH, kW]
 * (Darknet order), any kernel size, stride (sy, sx), symmetric zero padding (py, px), dilation, groups
 * (depthwise included), optional bias, batch > 1. Forward with a fused bias + activation epilogue and an
 * optional output channel slice; backward data (dx), weights (dw) and bias (db).
 *
 * Algorithms (all compute the same function, forward and backward):
 *   direct      one output per invocation (conv2d_direct.wgsl): tiny shapes, and the plainest reference.
 *   gemm_tiled  implicit GEMM (M = Cout/G, N = B*OH*OW, K = Cin/G*kH*kW; dx and dw as the transposed
 *               GEMMs), 16x16 invocations computing a 64x64 block of C from 64x16 / 16x64 vec4 tiles of A
 *               and B in workgroup memory, 4x4 outputs per invocation (conv2d_gemm.wgsl): real GPUs.
 *   gemm_reg    implicit GEMM with register blocking and plain global loads (conv2d_reg.wgsl,
 *               conv2d_bwd.wgsl): up to 16 rows x 4 columns per invocation, 64 invocations per workgroup,
 *               the per-step row operand (weights, or dy for dw) loaded once per subgroup and shared with
 *               subgroupShuffle, taps outer / channels inner; dx by stride phases (no wasted taps): CPU
 *               adapters (lavapipe / llvmpipe).
 *   tile        (conv2d_tile.wgsl): 16 output channels x a 2x4 pixel tile per invocation, the
 *               input window of the tile loaded once per channel and reused by every tap, the weights
 *               shared through subgroupShuffle as in gemm_reg: about 3x fewer loads per FMA than gemm_reg
 *               on 3x3 layers, the forward on lavapipe. Kernels up to 3x3 without dilation (tileSupported);
 *               other shapes use gemm_reg. Backward (tileBackwardSupported, else gemm_reg): dx of a stride-1
 *               conv as the forward of dy with the flipped weights (read in place by the tile kernel); of a
 *               strided conv one output phase at a time, each a stride-1 conv of dy with a sub-kernel
 *               (conv2d_phase.wgsl) written into its rows and columns of dx; dw with conv2d_bwd_tile.wgsl
 *               (one input channel x 16 output channels x 9 taps per invocation over pixel tiles, dy
 *               shared through subgroupShuffle): 2-3x faster than gemm_reg's on demo.cfg's layers.
 *               Depthwise convs up to 7x7 (depthwiseSupported) have their own kernels in this algorithm,
 *               conv2d_depthwise.wgsl (forward, dx, dw; no subgroups, so on GL too), and so do the forwards
 *               of 1x1 stride-1 convs with Cin % 4 == 0 where subgroups have a fixed size
 *               (pointwiseSupported): conv2d_pw.wgsl, matmul.wgsl's regsg with the conv's epilogue,
 *               1.2-1.5x faster than the tile kernel and the same bits.
 *   auto        the measured pick for this adapter and shape (src/tensor/ops/conv_tune.ts autotuneConv,
 *               kept per adapter by src/gpu/tune-file.ts) when there is one, else chooseConvAlgo(): direct
 *               for tiny work, tile / gemm_reg on CPU adapters, gemm_tiled on GPUs.
 * dw splits its reduction over B*OH*OW into chunks (partial sums + conv2d_direct.wgsl:reduce_split) when
 * there would be too few workgroups; db is a per-channel workgroup reduction.
 * The forward also runs on f16 storage (inference): x, w and y f16, the bias f32, every algorithm through its
 * kernel's ST=f16 variant, sums in f32 (docs/kernels.md "f16 storage"). The inference forward of a
 * [convolutional] layer may instead run Winograd F(4x4, 3x3) (conv2d_winograd.ts), which keeps transformed
 * weights and so is the layer's choice, not one of these algorithms.
 */
import { storageDefines, type Gpu, type KernelSpec } from '../../gpu/device.js';
import { tuneTable } from '../../gpu/tune.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Tape } from '../tape.js';
import { activation, activationCode, type Activation } from './activation.js';
import { fill } from './elementwise.js';
import { fusableMaxpool, maxpool, maxpoolGeometry, type MaxpoolOptions } from './pool.js';
import { treeInvocations } from './reduce.js';

export interface Conv2dParams {
  stride?: number | [number, number];
  pad?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export type ConvAlgo = 'auto' | 'direct' | 'gemm_tiled' | 'gemm_reg' | 'tile';
export const CONV_ALGOS: readonly ConvAlgo[] = ['auto', 'direct', 'gemm_tiled', 'gemm_reg', 'tile'];
export type ConvKernelAlgo = Exclude<ConvAlgo, 'auto'>;
export type ConvPass = 'fwd' | 'bwd_data' | 'bwd_weights';

/** gemm_reg's register block limits: up to maxTM rows x TN columns per invocation, WG invocations. */
export interface RegTiling { maxTM: number; TN: number; WG: number }

/**
 * tile's block: up to TM output channels x a TR x TN tile of output pixels per invocation (TM a power of
 * two <= 32, TR * TN <= 16; TM shrinks to the layer's channels per group).
 */
export interface TileShape { TM: number; TR: number; TN: number }

/**
 * An algorithm with, for gemm_reg, an explicit register tiling (what the autotune measures and records as
 * `gemm_reg@<maxTM>x<TN>x<WG>`; without `reg`, gemm_reg uses convRegTuning), for tile an explicit block
 * (`tile@<TM>x<TR>x<TN>`; without `tile`, convTileTuning).
 */
export interface ConvChoice { algo: ConvKernelAlgo; reg?: RegTiling; tile?: TileShape }

const pow2 = (v: number) => v >= 1 && (v & (v - 1)) === 0;

/**
 * 'gemm_reg@16x2x64' -> { algo: 'gemm_reg', reg: {maxTM 16, TN 2, WG 64} }; 'tile@16x2x4' -> { algo: 'tile',
 * tile: {TM 16, TR 2, TN 4} }; a plain name -> { algo }.
 */
export function parseConvPick(pick: string): ConvChoice | null {
  const m = /^gemm_reg@(\d+)x(\d+)x(\d+)$/.exec(pick);
  if (m) {
    const [maxTM, TN, WG] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (!pow2(maxTM) || maxTM > 64 || TN < 1 || TN > 16 || !pow2(WG) || WG < 8 || WG > 256) return null;
    return { algo: 'gemm_reg', reg: { maxTM, TN, WG } };
  }
  const t = /^tile@(\d+)x(\d+)x(\d+)$/.exec(pick);
  if (t) {
    const [TM, TR, TN] = [Number(t[1]), Number(t[2]), Number(t[3])];
    if (!pow2(TM) || TM > 32 || TR < 1 || TN < 1 || TR * TN > 16) return null;
    return { algo: 'tile', tile: { TM, TR, TN } };
  }
  return pick !== 'auto' && (CONV_ALGOS as readonly string[]).includes(pick) ? { algo: pick as ConvKernelAlgo } : null;
}

export function convPickName(c: ConvChoice): string {
  if (c.tile) return `${c.algo}@${c.tile.TM}x${c.tile.TR}x${c.tile.TN}`;
  return c.reg ? `${c.algo}@${c.reg.maxTM}x${c.reg.TN}x${c.reg.WG}` : c.algo;
}

/**
 * Shapes the tile kernel computes (conv2d_tile.wgsl unrolls the taps: kernels up to 3x3; no dilation);
 * the others run gemm_reg when 'tile' is asked for.
 */
export function tileSupported(g: ConvGeom): boolean {
  return g.kH <= 3 && g.kW <= 3 && g.dy === 1 && g.dx === 1 && g.sy <= 4 && g.sx <= 4;
}

/** Where the forward writes: channels [channelOffset, channelOffset + Cout) of dst [B, Ctot, OH, OW]. */
export interface ConvOutSlice {
  dst: Tensor;
  channelOffset: number;
}

/** Everything the kernels need, validated. Cg = Cin/G (weight depth), Mg = Cout/G. */
export interface ConvGeom {
  B: number; Cin: number; H: number; W: number;
  Cout: number; Cg: number; Mg: number; G: number;
  kH: number; kW: number; sy: number; sx: number; py: number; px: number; dy: number; dx: number;
  OH: number; OW: number;
}

function pair(what: string, v: number | [number, number] | undefined, dflt: number, min: number): [number, number] {
  const r: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (r.length !== 2 || !r.every((e) => Number.isInteger(e) && e >= min)) {
    throw new Error(`conv2d: ${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return r;
}

/** Validates shapes and parameters; throws an Error that says what does not fit. */
export function convGeom(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams = {}): ConvGeom {
  if (xShape.length !== 4) throw new Error(`conv2d: input must be 4-D NCHW, got ${shapeStr(xShape)}`);
  if (wShape.length !== 4) throw new Error(`conv2d: weights must be 4-D [Cout, Cin/groups, kH, kW], got ${shapeStr(wShape)}`);
  const [B, Cin, H, W] = xShape;
  const [Cout, Cg, kH, kW] = wShape;
  const G = p.groups ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new Error(`conv2d: groups must be a positive integer, got ${G}`);
  const [sy, sx] = pair('stride', p.stride, 1, 1);
  const [py, px] = pair('pad', p.pad, 0, 0);
  const [dy, dx] = pair('dilation', p.dilation, 1, 1);
  if ([B, Cin, H, W].some((d) => d < 1)) throw new Error(`conv2d: empty input ${shapeStr(xShape)}`);
  if ([Cout, Cg, kH, kW].some((d) => d < 1)) throw new Error(`conv2d: empty weights ${shapeStr(wShape)}`);
  if (Cin !== G * Cg) throw new Error(`conv2d: input has ${Cin} channels, weights expect ${G * Cg} (groups ${G} x ${Cg})`);
  if (Cout % G !== 0) throw new Error(`conv2d: ${Cout} output channels are not divisible by groups ${G}`);
  const OH = Math.floor((H + 2 * py - dy * (kH - 1) - 1) / sy) + 1;
  const OW = Math.floor((W + 2 * px - dx * (kW - 1) - 1) / sx) + 1;
  if (OH < 1 || OW < 1) {
    throw new Error(`conv2d: empty output: input ${H}x${W} with padding ${py},${px} is smaller than the dilated kernel ${dy * (kH - 1) + 1}x${dx * (kW - 1) + 1}`);
  }
  return { B, Cin, H, W, Cout, Cg, Mg: Cout / G, G, kH, kW, sy, sx, py, px, dy, dx, OH, OW };
}

export function conv2dOutShape(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams = {}): number[] {
  const g = convGeom(xShape, wShape, p);
  return [g.B, g.Cout, g.OH, g.OW];
}

/** Multiply-adds times two: 2 * B * Cout * OH * OW * (Cin/groups) * kH * kW. */
export function conv2dFlops(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams = {}): number {
  const g = convGeom(xShape, wShape, p);
  return 2 * g.B * g.Cout * g.OH * g.OW * g.Cg * g.kH * g.kW;
}

/**
 * The one place that picks an algorithm (a measured autotune can replace it): direct when the whole pass
 * is tiny (launch and tiling overheads dominate; on lavapipe the crossover with gemm_reg is near 64k
 * multiply-adds), tile for the passes of 3x3-like kernels it has and gemm_reg otherwise on CPU adapters
 * (workgroup tiles + barriers measured 2.5-5x slower there), gemm_tiled on real GPUs.
 */
export function chooseConvAlgo(kind: Gpu['info']['kind'], g: ConvGeom, pass: ConvPass = 'fwd'): ConvKernelAlgo {
  const macs = g.B * g.Cout * g.OH * g.OW * g.Cg * g.kH * g.kW;
  if (macs < 64 * 1024) return 'direct';
  if (kind === 'gpu') return 'gemm_tiled';
  // Depthwise convs up to 7x7 on every CPU adapter: conv2d_depthwise.wgsl (forward, dx, dw), 1.3-2.4x faster
  // than tile's one-channel blocks (3x3) or gemm_reg (5x5) forward, 4-6x faster dw on lavapipe.
  if (depthwiseSupported(g)) return 'tile';
  // The forward on the Vulkan CPU adapters (lavapipe; SwiftShader 'cpu'), which have subgroups to share the
  // weights: tile (on lavapipe, CPU time: about 2x gemm_reg on yolov3-tiny's 3x3 layers, 1.3-1.5x on its
  // 1x1 layers). Not on GL (no subgroups: every invocation would load all its weights).
  if (pass === 'fwd' && kind !== 'llvmpipe' && tileSupported(g)) return 'tile';
  // The backward passes the tile algorithm has (tileBackwardSupported): dx through the forward tile kernel,
  // dw with conv2d_bwd_tile.wgsl.
  if (pass !== 'fwd' && kind !== 'llvmpipe' && tileBackwardSupported(g, pass)) return 'tile';
  return 'gemm_reg';
}

/**
 * The key of a conv pass in the tuning table (src/gpu/tune.ts): everything that changes the kernels' work,
 * `<pass>:B<b>:<Cin>x<H>x<W>:<Cout>x<kH>x<kW>:s<sy>x<sx>:p<py>x<px>:d<dy>x<dx>:g<G>`.
 */
export function convTuneKey(g: ConvGeom, pass: ConvPass): string {
  return `${pass}:B${g.B}:${g.Cin}x${g.H}x${g.W}:${g.Cout}x${g.kH}x${g.kW}:s${g.sy}x${g.sx}:p${g.py}x${g.px}:d${g.dy}x${g.dx}:g${g.G}`;
}

/**
 * `auto`: the measured choice for this adapter and shape when there is one, else chooseConvAlgo. A measured
 * 'winograd' is not a choice here: it is for the inference layer, which keeps the transformed weights
 * (useWinograd in conv2d_winograd.ts); auto then takes chooseConvAlgo's kernel.
 */
export function autoConvChoice(gpu: Gpu, g: ConvGeom, pass: ConvPass): ConvChoice {
  const e = tuneTable(gpu).get('conv2d', convTuneKey(g, pass));
  const c = e ? parseConvPick(e.pick) : null;
  return c ?? { algo: chooseConvAlgo(gpu.info.kind, g, pass) };
}

export function autoConvAlgo(gpu: Gpu, g: ConvGeom, pass: ConvPass): ConvKernelAlgo {
  return autoConvChoice(gpu, g, pass).algo;
}

function resolve(algo: ConvAlgo | ConvChoice | undefined, gpu: Gpu, g: ConvGeom, pass: ConvPass): ConvChoice {
  if (typeof algo === 'object' && algo) {
    if (!(CONV_ALGOS as readonly string[]).includes(algo.algo) || (algo.algo as string) === 'auto') throw new Error(`conv2d: unknown algorithm '${algo.algo}'`);
    return algo;
  }
  const a = algo ?? 'auto';
  if (!CONV_ALGOS.includes(a)) throw new Error(`conv2d: unknown algorithm '${a}' (supported: ${CONV_ALGOS.join(', ')})`);
  return a === 'auto' ? autoConvChoice(gpu, g, pass) : { algo: a };
}

// ------------------------------------------------------------------------------------------ dispatch

const DIRECT_WG = 256;
/**
 * gemm_reg register blocks: TM rows x TN columns per invocation, WG invocations per workgroup. Rows are
 * output channels (forward, dw) or input channels (dx) of one group; fewer rows than TM would be wasted
 * work (depthwise has one), so small row counts get a smaller TM and longer TN. `maxTM`/`TN`/`WG` are
 * mutable so a benchmark / autotune can try others (every distinct value is one more cached pipeline).
 */
export const convRegTuning = {
  /** Share the row operand through subgroupShuffle when the adapter has fixed-size subgroups. */
  subgroups: true,
  fwd: { maxTM: 16, TN: 4, WG: 64 },
  data: { maxTM: 16, TN: 4, WG: 64 },
  weights: { maxTM: 16, TN: 4, WG: 64 },
};

/** tile's default block (mutable like convRegTuning, for benches; the autotune records others per shape). */
export const convTileTuning: TileShape = { TM: 16, TR: 2, TN: 4 };

/**
 * The wider block `auto` takes where it fits (tileBlockFor); `on: false` turns it off (benches sweeping convTileTuning).
 * 14 pixels per tile reuse each loaded input value for more outputs than 8 do: measured A/B in one process on
 * lavapipe (yolov3-tiny's 3x3 shapes, batch 1), 16x2x7 against 16x2x4 was 1.26-1.36x faster at 13x13 (which
 * 2x4 tiles cover at 75%, 2x7 at 86%), 1.36x at 19x19, 1.2x at 52 and 104, 1.0-1.2x at 26, equal at 208 and
 * 0.6x at 10x10 (40% of a 7-wide tile's columns idle). The summation order is the same: identical outputs.
 */
export const convTileWide = { on: true, TM: 16, TR: 2, TN: 7 };

/**
 * tile's block for a forward with no tuned pick: convTileWide when the output is at least 13 wide, not one
 * flattened row (1x1), the conv has stride 1, and a 7-wide tile wastes at most 10% more columns than a 4-wide
 * one; else convTileTuning. `evenOnly` (the fused maxpool, whose windows must not straddle tiles) keeps
 * convTileTuning. A strided conv reuses an input column for fewer outputs, so the wide tile's window (15
 * columns for 7 outputs at stride 2, against 9 for 4) buys nothing and costs registers: measured on lavapipe
 * (A/B in one process, batch 1, stride 2; same outputs), 16x2x4 against 16x2x7 was 1.30x faster for 32 -> 64
 * channels at 208 -> 104 pixels, 1.12x for 64 -> 128 at 208, 1.25x for 128 -> 256 at 104, 1.31x for
 * 256 -> 512 at 52, 1.10x for 512 -> 1024 at 26, and equal for 3 -> 32 at 416.
 */
export function tileBlockFor(g: ConvGeom, evenOnly = false): TileShape {
  const t = convTileTuning;
  const { on, TM, TR, TN } = convTileWide;
  const flat = g.kH === 1 && g.kW === 1 && g.sy === 1 && g.sx === 1 && g.py === 0 && g.px === 0;
  if (!on || evenOnly || flat || g.OW < 13 || g.sy > 1 || g.sx > 1) return t;
  const cover = (tn: number) => (cdiv(g.OW, tn) * tn) / g.OW;
  return cover(TN) <= 1.1 * cover(t.TN) ? { TM, TR, TN } : t;
}

function regBlock(rows: number, t: RegTiling): { TM: number; TN: number; WG: number } {
  let TM = 1;
  while (TM * 2 <= Math.min(rows, t.maxTM)) TM *= 2;
  // Fewer rows: longer columns (about the same registers).
  const TN = Math.max(1, Math.min(8, Math.floor((t.TN * t.maxTM) / TM)));
  return { TM, TN, WG: t.WG };
}

/**
 * Shrinks a gemm_reg column block (WG invocations x TN columns) to `n` columns when it is much wider: lanes
 * past the last column would otherwise repeat the last column's whole reduction (their loads are clamped),
 * which on small spatial shapes at batch 1 (a 4x4 map of 1024 channels) was most of the work. WG stays a
 * multiple of `minWG` (the subgroup the weight sharing needs).
 */
function fitColumns(n: number, WG: number, TN: number, minWG: number): { WG: number; TN: number } {
  while (WG / 2 >= minWG && (WG / 2) % minWG === 0 && (WG / 2) * TN >= n) WG /= 2;
  while (TN > 1 && WG * Math.ceil(TN / 2) >= n) TN = Math.ceil(TN / 2);
  return { WG, TN };
}

/** The adapter's fixed subgroup size when gemm_reg may share weights through it (convRegTuning.subgroups), else 1. */
function subgroupSize(gpu: Gpu): number {
  const info = (gpu.device as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const sg = info?.subgroupMinSize;
  return convRegTuning.subgroups && gpu.hasFeature('subgroups') && sg && sg === info?.subgroupMaxSize ? sg : 1;
}

interface Extra {
  Ctot?: number; Coff?: number; S?: number; chunk?: number; n?: number; act?: number; bias?: boolean; poolH?: number; poolW?: number;
  /** conv2d_tile.wgsl: w holds the weights of the conv this one transposes (dx; tileBackwardData) */
  transposed?: boolean;
  /** conv2d_tile.wgsl: the destination's plane size, offset, row and column strides (default: the conv's own map) */
  out?: { plane: number; off: number; row: number; col: number };
}

/** Depth of a workgroup-memory tile of conv2d_gemm.wgsl (its constant BK, passed as P.kt). */
const TILE_K = 16;

/**
 * The uniform Params of every conv2d kernel (kernels/lib/conv_params.wgsl), by field name; t0 is set per
 * dispatch (dispatchTiles). The epilogue (activation code, bias flag) is uniform, not an override: on CPU
 * adapters each pipeline variant costs 0.3-2 s of LLVM compile time, the uniform switch nothing measurable.
 */
function params(g: ConvGeom, e: Extra = {}) {
  const khw = g.kH * g.kW;
  return {
    B: g.B, Cin: g.Cin, H: g.H, W: g.W,
    Cout: g.Cout, OH: g.OH, OW: g.OW, KH: g.kH,
    KW: g.kW, SY: g.sy, SX: g.sx, PY: g.py,
    PX: g.px, DY: g.dy, DX: g.dx, G: g.G,
    Cg: g.Cg, Mg: g.Mg, Ctot: e.Ctot ?? g.Cout, Coff: e.Coff ?? 0,
    S: e.S ?? 1, chunk: e.chunk ?? 0, n: e.n ?? 0, t0: 0,
    act: e.act ?? 0, has_bias: e.bias ? 1 : 0, kt: TILE_K,
    pool_h: e.poolH ?? 0, pool_w: e.poolW ?? 0,
    wrow: e.transposed ? khw : g.Cg * khw, wcin: e.transposed ? g.Mg * khw : khw, wflip: e.transposed ? 1 : 0,
    oplane: e.out?.plane ?? g.OH * g.OW, ooff: e.out?.off ?? 0, orow: e.out?.row ?? g.OW, ocol: e.out?.col ?? 1,
  };
}
type ConvUniforms = ReturnType<typeof params>;

/** Dispatches `tiles` workgroups along x (in several dispatches, offset by P.t0, past the per-dimension limit). */
function dispatchTiles(gpu: Gpu, spec: KernelSpec, prm: ConvUniforms, bind: Record<number, Tensor>, tiles: number, y: number, z: number): void {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  for (let t0 = 0; t0 < tiles; t0 += max) {
    prm.t0 = t0; // dispatch copies the values into its uniform slot at once
    gpu.dispatch(spec, prm, bind, [Math.min(max, tiles - t0), y, z]);
  }
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * Template defines of the gemm_reg kernels: weight sharing through subgroupShuffle when the device has
 * subgroups of one fixed size (lavapipe: 8), else SG = 1 with every invocation loading its own weights.
 */
function subgroupDefines(gpu: Gpu, WG: number): Record<string, string | number> {
  const sg = subgroupSize(gpu);
  // Subgroups must be full (WG a multiple of their size): a shuffle from an absent lane is undefined.
  if (sg > 1 && WG % sg === 0) {
    return { ENABLE: 'enable subgroups;', SG: sg, SGARG: ', @builtin(subgroup_invocation_id) sgl: u32', SGLANE: 'sgl', SHUFFLE: 'subgroupShuffle' };
  }
  return { ENABLE: '', SG: 1, SGARG: '', SGLANE: '0u', SHUFFLE: 'noshuffle' };
}

/**
 * The workgroup of the tile dw kernel (and of the tile forward on adapters with subgroups wider than 8) for
 * `tiles` invocations: 32 (or the subgroup size when larger), or 8 when
 * that leaves over 5% fewer idle invocations (each computes a copy of the last tile: 13x13 1x1 layers).
 * Only two sizes: every distinct one is another pipeline, and the tile kernel's compile is not cheap on
 * lavapipe (~0.2 s of NIR per pipeline with the shader cache warm, ~1.5 s cold).
 */
function tileWorkgroup(tiles: number, sg: number): number {
  const big = Math.max(32, sg);
  if (sg > 8) return big;
  return cdiv(tiles, big) * big - cdiv(tiles, 8) * 8 > 0.05 * tiles ? 8 : big;
}

/**
 * The tile forward's workgroup on CPU adapters (subgroups of at most 8 lanes: lavapipe 8, SwiftShader 4): one
 * size for every shape, so that a network compiles one pipeline per block, not one per block and workgroup
 * size. Measured on lavapipe (A/B in one process, identical outputs), 8 against tileWorkgroup's 8-or-32:
 * yolov3-tiny 416 b1 0.99x, 256 b1 1.01x, 256 b4 1.01x, yolov4-tiny 416 b1 0.97x, training steps 0.98-1.00x;
 * the first forward of yolov3-tiny at 256 compiled two pipelines fewer (~0.4 s of its 0.8 s).
 */
const TILE_FWD_WG = 8;

/**
 * Whether conv2d_pw.wgsl computes this forward (the `tile` algorithm's kernel for it): a 1x1 conv with
 * stride 1, no padding and one group, Cin a multiple of 4, float32, on an adapter with subgroups of one
 * fixed size up to 32 (the workgroup is one subgroup).
 */
export function pointwiseSupported(gpu: Gpu, g: ConvGeom, dtype: Tensor['dtype']): boolean {
  const sg = subgroupSize(gpu);
  return sg > 1 && sg <= 32 && dtype === 'f32' && g.kH === 1 && g.kW === 1 && g.sy === 1 && g.sx === 1 && g.py === 0 && g.px === 0 &&
    g.G === 1 && g.Cin % 4 === 0;
}

/** Output channels per workgroup of conv2d_pw.wgsl: 16 rounded up to a multiple of the subgroup size. */
export const pointwiseRows = (sg: number) => Math.ceil(16 / sg) * sg;

/** The forward with conv2d_pw.wgsl: vec4s of pixels x pointwiseRows channels per lane, one image per grid z. */
function pointwiseForward(gpu: Gpu, g: ConvGeom, epi: Extra, bind: Record<number, Tensor>): void {
  const sg = subgroupSize(gpu);
  const TM = pointwiseRows(sg);
  const hw = g.H * g.W;
  const defines = { ENABLE: 'enable subgroups;', SGB: '', SGE: '', SG: sg, TM, HW4: hw % 4 };
  // x is read as vec4 (its size is a multiple of 16 bytes: Cin % 4 == 0)
  dispatchTiles(gpu, { file: 'conv2d_pw', entry: 'fwd', defines }, params(g, epi), bind, cdiv(cdiv(hw, 4), sg), cdiv(g.Cout, TM), g.B);
}

/**
 * The forward with conv2d_tile.wgsl (see the file comment), or conv2d_pw.wgsl where pointwiseSupported (not
 * for dx, a phase or the fused pool, which pass their own addressing). A 1x1 stride-1 unpadded conv whose
 * output is the size of its input, written as its own map, runs on the pixels as one row (H = 1, W = H*W: no
 * window edges), with TR*TN pixels per invocation. TM is at most 4 subgroups (the kernel's loads of a lane's
 * rows are unrolled).
 */
function tileForward(gpu: Gpu, g: ConvGeom, t: TileShape, epi: Extra, bind: Record<number, Tensor>): void {
  if (!epi.transposed && !epi.out && !epi.poolH && pointwiseSupported(gpu, g, bind[1].dtype)) return pointwiseForward(gpu, g, epi, bind);
  const sg = subgroupSize(gpu);
  const flat = g.kH === 1 && g.kW === 1 && g.sy === 1 && g.sx === 1 && g.py === 0 && g.px === 0 && g.OH === g.H && g.OW === g.W && !epi.out;
  const gk: ConvGeom = flat ? { ...g, H: 1, W: g.H * g.W, OH: 1, OW: g.OH * g.OW } : g;
  const TR = flat ? 1 : t.TR;
  const TN = flat ? t.TR * t.TN : t.TN;
  let TM = 1;
  while (TM * 2 <= Math.min(t.TM, g.Mg, 4 * sg)) TM *= 2;
  const tiles = g.B * cdiv(gk.OH, TR) * cdiv(gk.OW, TN);
  const WG = sg > 8 ? tileWorkgroup(tiles, sg) : TILE_FWD_WG;
  const defines = { TM, TR, TN, KH: g.kH, KW: g.kW, SY: g.sy, SX: g.sx, ...subgroupDefines(gpu, WG), ...storageDefines(bind[1].dtype) };
  dispatchTiles(gpu, { file: 'conv2d_tile', entry: 'fwd', defines, constants: { WG } }, params(gk, epi), bind, cdiv(tiles, WG), cdiv(g.Mg, TM), g.G);
}

function checkTensor(what: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`conv2d: ${what} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
  }
}

/**
 * The tensor a forward writes: a new [B, Cout, OH, OW] like x, or the checked channel slice `out` of a
 * destination [B, Ctot, OH, OW] (which must not be one of the inputs).
 */
export function forwardOutput(x: Tensor, g: ConvGeom, out: ConvOutSlice | undefined, inputs: (Tensor | null)[]): { y: Tensor; Ctot: number; Coff: number } {
  if (!out) return { y: Tensor.like(x, [g.B, g.Cout, g.OH, g.OW]), Ctot: g.Cout, Coff: 0 };
  const d = out.dst.shape;
  const Ctot = d[1];
  const Coff = out.channelOffset;
  if (d.length !== 4 || d[0] !== g.B || d[2] !== g.OH || d[3] !== g.OW) {
    throw new Error(`conv2d: output slice destination has shape ${shapeStr(d)}, expected [${g.B}, C, ${g.OH}, ${g.OW}]`);
  }
  if (!Number.isInteger(Coff) || Coff < 0 || Coff + g.Cout > Ctot) {
    throw new Error(`conv2d: output channels [${Coff}, ${Coff + g.Cout}) do not fit in the destination's ${Ctot} channels`);
  }
  if (out.dst === x || inputs.includes(out.dst)) throw new Error('conv2d: the output slice destination must not be an input');
  return { y: out.dst, Ctot, Coff };
}

/**
 * y = act(conv2d(x, w) + b), not recorded. With `out`, writes into channels [channelOffset, +Cout) of
 * out.dst (shape [B, Ctot, OH, OW]) and returns out.dst.
 */
export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}, algo: ConvAlgo | ConvChoice = 'auto', act: Activation = 'linear', out?: ConvOutSlice): Tensor {
  const g = convGeom(x.shape, w.shape, p);
  if (b) checkTensor('bias', b, [g.Cout]);
  const ACT = activationCode(act);
  const { y, Ctot, Coff } = forwardOutput(x, g, out, [w, b]);
  // f16 storage (inference): x, w and y all f16 (the bias stays f32); the kernels' ST=f16 variants
  if (w.dtype !== x.dtype || y.dtype !== x.dtype || (b && b.dtype !== 'f32')) {
    throw new Error(`conv2d: storage types do not match: x ${x.dtype}, w ${w.dtype}, y ${y.dtype}${b ? `, bias ${b.dtype} (always f32)` : ''}`);
  }
  const sd = storageDefines(x.dtype);
  const gpu = x.gpu;
  const choice = resolve(algo, gpu, g, 'fwd');
  const a = choice.algo;
  const epi = { Ctot, Coff, act: ACT, bias: b !== null };
  const bind = { 1: x, 2: w, 3: b ?? w, 4: y };
  const N = g.B * g.OH * g.OW;
  if (a === 'tile' && depthwiseSupported(g) && x.dtype === 'f32') {
    depthwiseForward(gpu, g, epi, bind);
  } else if (a === 'tile' && tileSupported(g)) {
    tileForward(gpu, g, choice.tile ?? tileBlockFor(g), epi, bind);
  } else if (a === 'direct') {
    const n = g.B * g.Cout * g.OH * g.OW;
    gpu.dispatch({ file: 'conv2d_direct', entry: 'fwd', defines: sd, constants: { WG: DIRECT_WG } }, params(g, { ...epi, n }), bind, gpu.grid(n, DIRECT_WG));
  } else if (a === 'gemm_tiled') {
    const spec = { file: 'conv2d_gemm', entry: 'main', defines: sd, constants: { MODE: 0 } };
    dispatchTiles(gpu, spec, params(g, epi), bind, cdiv(N, 64), cdiv(g.Mg, 64), g.G);
  } else {
    // gemm_reg (also 'tile' on shapes it does not cover)
    const blk = regBlock(g.Mg, choice.reg ?? convRegTuning.fwd);
    const TM = blk.TM;
    const { TN, WG } = fitColumns(N, blk.WG, blk.TN, Math.max(8, subgroupSize(gpu)));
    const spec = { file: 'conv2d_reg', entry: 'fwd', defines: { TM, TN, ...subgroupDefines(gpu, WG), ...sd }, constants: { WG } };
    dispatchTiles(gpu, spec, params(g, epi), bind, cdiv(N, WG * TN), cdiv(g.Mg, TM), g.G);
  }
  return y;
}


/**
 * maxpool(act(conv2d(x, w) + b), pool), not recorded (inference): in one pass when the forward runs the tile
 * kernel with an even tile and fusableMaxpool(pool) (the conv's output is never written: a quarter of the
 * stores, no pooling pass), else the conv then the maxpool op; the same numbers either way (the max of the
 * same float32 activations).
 */
export function conv2dMaxpoolForward(x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams, pool: MaxpoolOptions, algo: ConvAlgo | ConvChoice = 'auto', act: Activation = 'linear'): Tensor {
  const g = convGeom(x.shape, w.shape, p);
  const q = maxpoolGeometry(g.OH, g.OW, pool);
  const gpu = x.gpu;
  const choice = resolve(algo, gpu, g, 'fwd');
  const t = choice.tile ?? convTileTuning;
  const flat = g.kH === 1 && g.kW === 1 && g.sy === 1 && g.sx === 1 && g.py === 0 && g.px === 0;
  if (choice.algo !== 'tile' || !tileSupported(g) || !fusableMaxpool(pool) || flat || t.TR % 2 || t.TN % 2) {
    const y = conv2dForward(x, w, b, p, choice, act);
    try {
      return maxpool(y, pool);
    } finally {
      y.dispose();
    }
  }
  if (b) checkTensor('bias', b, [g.Cout]);
  const dst = Tensor.like(x, [g.B, g.Cout, q.outH, q.outW]); // f32, or f16 at inference
  const epi = { act: activationCode(act), bias: b !== null, poolH: q.outH, poolW: q.outW };
  tileForward(gpu, g, t, epi, { 1: x, 2: w, 3: b ?? w, 4: dst }); // epi.poolH > 0: the pooled epilogue
  return dst;
}

/** dx of loss given dy = d loss / d y (the transposed convolution of dy with w), not recorded. */
export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: readonly number[], p: Conv2dParams = {}, algo: ConvAlgo | ConvChoice = 'auto'): Tensor {
  const g = convGeom(xShape, w.shape, p);
  checkTensor('dy', dy, [g.B, g.Cout, g.OH, g.OW]);
  const gpu = dy.gpu;
  const choice = resolve(algo, gpu, g, 'bwd_data');
  if (choice.algo === 'tile' && tileBackwardSupported(g, 'bwd_data')) {
    const stride1 = g.sy === 1 && g.sx === 1 && g.py <= g.kH - 1 && g.px <= g.kW - 1;
    // depthwise: at stride 1 the depthwise forward on dy (tileBackwardData), else its output-phase kernel
    if (depthwiseSupported(g) && dy.dtype === 'f32' && !stride1) return depthwiseBackwardData(dy, w, g);
    return g.sy === 1 && g.sx === 1 ? tileBackwardData(dy, w, g) : tilePhasedBackwardData(dy, w, g, dataPhases(g)!);
  }
  const dx = new Tensor(gpu, xShape);
  const a = choice.algo; // 'tile' where tileBackwardSupported says no: gemm_reg's kernels (the last branch)
  if (a === 'direct') {
    const n = g.B * g.Cin * g.H * g.W;
    gpu.dispatch({ file: 'conv2d_direct', entry: 'bwd_data', constants: { WG: DIRECT_WG } }, params(g, { n }), { 1: dy, 2: w, 4: dx }, gpu.grid(n, DIRECT_WG));
  } else if (a === 'gemm_tiled') {
    const spec = { file: 'conv2d_gemm', entry: 'main', constants: { MODE: 1 } };
    dispatchTiles(gpu, spec, params(g), { 1: dy, 2: w, 3: w, 4: dx }, cdiv(g.B * g.H * g.W, 64), cdiv(g.Cg, 64), g.G);
  } else {
    const n = g.B * cdiv(g.H, g.sy) * cdiv(g.W, g.sx);
    const blk = regBlock(g.Cg, choice.reg ?? convRegTuning.data);
    const TM = blk.TM;
    const { TN, WG } = fitColumns(n, blk.WG, blk.TN, Math.max(8, subgroupSize(gpu)));
    const spec = { file: 'conv2d_bwd', entry: 'data', defines: { TM, TN, ...subgroupDefines(gpu, WG) }, constants: { WG } };
    dispatchTiles(gpu, spec, params(g), { 1: dy, 2: w, 4: dx }, cdiv(n, WG * TN), cdiv(g.Cg, TM), g.G * g.sy * g.sx);
  }
  return dx;
}

/**
 * Split of the reduction over r = (b, oy, ox) for dw: enough workgroups in flight (`target`) without
 * chunks shorter than `minChunk`. Returns the chunk length (a multiple of 16) and the number of chunks.
 */
function splitK(R: number, tiles: number, target: number, minChunk: number): { S: number; chunk: number } {
  let S = Math.max(1, Math.min(cdiv(target, tiles), Math.floor(R / minChunk)));
  const chunk = cdiv(cdiv(R, S), 16) * 16;
  S = cdiv(R, chunk);
  return { S, chunk };
}

/** dw of loss given dy (a GEMM over r = (b, oy, ox) per group), not recorded. */
export function conv2dBackwardWeights(x: Tensor, dy: Tensor, wShape: readonly number[], p: Conv2dParams = {}, algo: ConvAlgo | ConvChoice = 'auto'): Tensor {
  const g = convGeom(x.shape, wShape, p);
  checkTensor('dy', dy, [g.B, g.Cout, g.OH, g.OW]);
  const gpu = x.gpu;
  const dw = new Tensor(gpu, wShape);
  const choice = resolve(algo, gpu, g, 'bwd_weights');
  if (choice.algo === 'tile' && tileBackwardSupported(g, 'bwd_weights')) {
    dw.dispose();
    return tileBackwardWeights(x, dy, g);
  }
  const a = choice.algo; // 'tile' where tileBackwardSupported says no: gemm_reg's kernels (the last branches)
  const K = g.Cg * g.kH * g.kW;
  const nw = g.Cout * K;
  const R = g.B * g.OH * g.OW;
  if (a === 'direct') {
    gpu.dispatch({ file: 'conv2d_direct', entry: 'bwd_weights', constants: { WG: DIRECT_WG } }, params(g, { n: nw }), { 1: x, 2: dy, 4: dw }, gpu.grid(nw, DIRECT_WG));
    return dw;
  }
  let spec: KernelSpec;
  let tilesN: number;
  let tilesM: number;
  let S: number;
  let chunk: number;
  if (a === 'gemm_tiled') {
    spec = { file: 'conv2d_gemm', entry: 'main', constants: { MODE: 2 } };
    tilesN = cdiv(K, 64);
    tilesM = cdiv(g.Mg, 64);
    ({ S, chunk } = splitK(R, tilesN * tilesM * g.G, gpu.info.kind === 'gpu' ? 512 : 16, 256));
  } else {
    const blk = regBlock(g.Mg, choice.reg ?? convRegTuning.weights);
    const TM = blk.TM;
    // The columns are K = Cg*kH*kW, often small (27 for a first layer): shrink the workgroup, then TN, so
    // that fewer invocations idle.
    let WG = blk.WG;
    while (WG > 16 && K <= WG / 2) WG /= 2;
    let TN = blk.TN;
    while (TN > 1 && K <= (WG * TN) / 2) TN = Math.ceil(TN / 2);
    spec = { file: 'conv2d_bwd', entry: 'weights', defines: { TM, TN, ...subgroupDefines(gpu, WG) }, constants: { WG } };
    tilesN = cdiv(K, WG * TN);
    tilesM = cdiv(g.Mg, TM);
    ({ S, chunk } = splitK(R, tilesN * tilesM * g.G, gpu.info.kind === 'gpu' ? 512 : 16, 64));
  }
  const part = S > 1 ? new Tensor(gpu, [S, nw]) : dw;
  const bind: Record<number, Tensor> = a === 'gemm_tiled' ? { 1: x, 2: dy, 3: x, 4: part } : { 1: x, 2: dy, 4: part };
  dispatchTiles(gpu, spec, params(g, { S, chunk }), bind, tilesN, tilesM, g.G * S);
  if (S > 1) {
    reduceSplit(gpu, g, part, dw, S);
    part.dispose();
  }
  return dw;
}

// ------------------------------------------------------------------ tile backward (conv2d_bwd_tile.wgsl)

/**
 * Which backward passes the `tile` algorithm computes itself (else gemm_reg's kernels run them): dx of a
 * stride-1 conv with padding at most k-1 (the forward tile kernel on dy, reading the weights flipped) or of a
 * strided conv whose output phases all have a padding >= 0 (padding < stride: dataPhases), dw of
 * tile-supported shapes with at least 3 input channels per group (one channel per invocation: a first
 * layer's 3 channels leave 5 of lavapipe's 8 lanes idle and still ran 1.8x faster than gemm_reg; 2-channel
 * groups stay with gemm_reg), and dx and dw of depthwise convs up to 7x7 (depthwiseSupported: their own
 * kernels).
 */
export function tileBackwardSupported(g: ConvGeom, pass: 'bwd_data' | 'bwd_weights'): boolean {
  if (depthwiseSupported(g)) return true;
  if (!tileSupported(g)) return false;
  if (pass === 'bwd_data') return g.sy === 1 && g.sx === 1 ? g.py <= g.kH - 1 && g.px <= g.kW - 1 : dataPhases(g) !== null;
  return g.Cg >= 3;
}

/**
 * A depthwise conv (one input and one output channel per group: groups = Cin = Cout) that the tile algorithm
 * runs with conv2d_depthwise.wgsl (forward, dx, dw): kernels up to 7x7, no dilation, strides up to 4 (one grid
 * row of workgroups per channel: at most 65535).
 */
export function depthwiseSupported(g: ConvGeom): boolean {
  return g.Cg === 1 && g.Mg === 1 && g.kH <= 7 && g.kW <= 7 && g.dy === 1 && g.dx === 1 && g.sy <= 4 && g.sx <= 4 && g.Cout <= 65535;
}

/** One output phase of a strided conv's dx (tilePhasedBackwardData): rows ry + sy*a, columns rx + sx*b. */
interface DataPhase {
  ry: number; rx: number;
  /** rows and columns of dx in the phase */
  A: number; Bw: number;
  /** the taps that reach it: ky0 + sy*t for t < nky (0: none, the phase is zeros), likewise kx */
  ky0: number; kx0: number; nky: number; nkx: number;
  /** the padding of the stride-1 conv of dy that computes it */
  padY: number; padX: number;
}

/** Along one axis: the taps k0 + s*t (t < n) of phase r and the stride-1 conv's padding, n - 1 - floor((r + p) / s). */
function phaseAxis(r: number, p: number, s: number, k: number): { k0: number; n: number; pad: number } {
  const k0 = (r + p) % s;
  const n = k0 < k ? Math.ceil((k - k0) / s) : 0;
  return { k0, n, pad: n - 1 - Math.floor((r + p) / s) };
}

/**
 * The sy*sx output phases of dx for a strided conv, or null when one would need a negative padding (a padding
 * of at least the stride: then gemm_reg computes dx).
 */
function dataPhases(g: ConvGeom): DataPhase[] | null {
  const out: DataPhase[] = [];
  for (let ry = 0; ry < Math.min(g.sy, g.H); ry++) {
    for (let rx = 0; rx < Math.min(g.sx, g.W); rx++) {
      const y = phaseAxis(ry, g.py, g.sy, g.kH);
      const x = phaseAxis(rx, g.px, g.sx, g.kW);
      if (y.n && x.n && (y.pad < 0 || x.pad < 0)) return null;
      out.push({ ry, rx, A: cdiv(g.H - ry, g.sy), Bw: cdiv(g.W - rx, g.sx), ky0: y.k0, kx0: x.k0, nky: y.n, nkx: x.n, padY: y.pad, padX: x.pad });
    }
  }
  return out;
}

/**
 * dx of a strided conv with the tile kernel, one output phase at a time (kernels/conv2d_phase.wgsl): the
 * phase's sub-kernel, transposed and flipped, into a small weight tensor; the tile forward on dy with it (a
 * stride-1 conv of at most ceil(kH/sy) x ceil(kW/sx) taps), writing its A x Bw outputs straight into the
 * phase's rows and columns of dx (Extra.out). Phases no tap reaches (a 1x1 stride-2 conv's odd rows) are
 * zeros. Per dx value: channels outer, taps inner, as the tile forward sums. On lavapipe 1.6-2x faster than
 * gemm_reg's dx on yolov4-tiny's and yolov4's stride-2 layers (docs/performance.md, session 9).
 */
function tilePhasedBackwardData(dy: Tensor, w: Tensor, g: ConvGeom, phases: DataPhase[]): Tensor {
  const gpu = dy.gpu;
  const dx = new Tensor(gpu, [g.B, g.Cin, g.H, g.W]);
  if (phases.some((f) => !f.nky || !f.nkx)) fill(dx, 0);
  for (const f of phases) {
    if (!f.nky || !f.nkx) continue;
    const wP = new Tensor(gpu, [g.Cin, g.Mg, f.nky, f.nkx]);
    const pp = { n: g.Cg, Cg: g.Cg, Mg: g.Mg, KH: g.kH, KW: g.kW, ky0: f.ky0, kx0: f.kx0, nky: f.nky, nkx: f.nkx, SY: g.sy, SX: g.sx };
    gpu.dispatch({ file: 'conv2d_phase', entry: 'weights' }, pp, { 1: w, 2: wP }, [cdiv(g.Cg, 64), g.Mg, g.G]);
    const gk: ConvGeom = {
      B: g.B, Cin: g.Cout, H: g.OH, W: g.OW, Cout: g.Cin, Cg: g.Mg, Mg: g.Cg, G: g.G,
      kH: f.nky, kW: f.nkx, sy: 1, sx: 1, py: f.padY, px: f.padX, dy: 1, dx: 1, OH: f.A, OW: f.Bw,
    };
    const out = { plane: g.H * g.W, off: f.ry * g.W + f.rx, row: g.sy * g.W, col: g.sx };
    tileForward(gpu, gk, tileBlockFor(gk), { out }, { 1: dy, 2: wP, 3: wP, 4: dx });
    wP.dispose();
  }
  return dx;
}

/** The block of the tile dw kernel: output channels per invocation and the pixel tile (mutable for benches). */
export const convTileBackwardTuning: TileShape = { TM: 16, TR: 2, TN: 4 };

const NO_SUBGROUPS = { ENABLE: '', SG: 1, SGARG: '', SGLANE: '0u', SHUFFLE: 'noshuffle' };

/**
 * dx of a stride-1 conv as a forward conv (whatever `auto` runs for that shape: the tile kernel on CPU
 * adapters): dx = conv(dy, w') with w'[g*Cg + c, m] = w[g*Mg + m, c] flipped in both axes, padding k-1-p.
 * The tile kernel reads w' out of w itself (Extra.transposed: conv_params' wrow, wcin, wflip); the other
 * kernels get a flipped copy (conv2d_bwd_tile.wgsl flip).
 */
function tileBackwardData(dy: Tensor, w: Tensor, g: ConvGeom): Tensor {
  const gpu = dy.gpu;
  const pT: Conv2dParams = { stride: 1, pad: [g.kH - 1 - g.py, g.kW - 1 - g.px], groups: g.G };
  const gT = convGeom(dy.shape, [g.Cin, g.Mg, g.kH, g.kW], pT);
  if (depthwiseSupported(gT) && dy.dtype === 'f32' && gT.OH === g.H && gT.OW === g.W) {
    // depthwise: w'[c, 0] = w[c, 0] flipped, conv2d_depthwise.wgsl fwd reading the taps reversed
    const dx = new Tensor(gpu, [g.B, g.Cin, g.H, g.W]);
    depthwiseForward(gpu, gT, {}, { 1: dy, 2: w, 3: w, 4: dx }, true);
    return dx;
  }
  const choice = autoConvChoice(gpu, gT, 'fwd');
  if (choice.algo === 'tile' && tileSupported(gT) && gT.OH === g.H && gT.OW === g.W) {
    const dx = new Tensor(gpu, [g.B, g.Cin, g.H, g.W]);
    tileForward(gpu, gT, choice.tile ?? tileBlockFor(gT), { transposed: true }, { 1: dy, 2: w, 3: w, 4: dx });
    return dx;
  }
  const wT = new Tensor(gpu, [g.Cin, g.Mg, g.kH, g.kW]);
  const n = g.Cin * g.Mg;
  const defines = { ...NO_SUBGROUPS, TM: 1, TR: 1, TN: 1, KH: 1, KW: 1, SY: 1, SX: 1 };
  gpu.dispatch({ file: 'conv2d_bwd_tile', entry: 'flip', defines }, params(g, { n }), { 1: w, 4: wT }, gpu.grid(n, 256));
  try {
    return conv2dForward(dy, wT, null, pT);
  } finally {
    wT.dispose();
  }
}

/**
 * dw with conv2d_bwd_tile.wgsl (see the file comment): one input channel per invocation, TM output channels
 * per workgroup, the batch's TR x TN pixel tiles split into chunks (partials summed by reduce_split) when
 * there would be too few workgroups. A 1x1 stride-1 unpadded conv runs on the pixels as one row.
 */
function tileBackwardWeights(x: Tensor, dy: Tensor, g: ConvGeom): Tensor {
  if (depthwiseSupported(g)) return depthwiseBackwardWeights(x, dy, g);
  const gpu = x.gpu;
  const t = convTileBackwardTuning;
  const sg = subgroupSize(gpu);
  const flat = g.kH === 1 && g.kW === 1 && g.sy === 1 && g.sx === 1 && g.py === 0 && g.px === 0;
  const gk: ConvGeom = flat ? { ...g, H: 1, W: g.H * g.W, OH: 1, OW: g.OH * g.OW } : g;
  const TR = flat ? 1 : t.TR;
  const TN = flat ? t.TR * t.TN : t.TN;
  let TM = 1;
  while (TM * 2 <= Math.min(t.TM, g.Mg)) TM *= 2;
  const WG = tileWorkgroup(g.Cg, sg);
  const tilesN = cdiv(g.Cg, WG);
  const tilesM = cdiv(g.Mg, TM);
  const T = g.B * cdiv(gk.OH, TR) * cdiv(gk.OW, TN);
  const { S, chunk } = splitTiles(T, tilesN * tilesM * g.G, gpu.info.kind === 'gpu' ? 512 : 16, 4);
  const nw = g.Cout * g.Cg * g.kH * g.kW;
  const dw = new Tensor(gpu, [g.Cout, g.Cg, g.kH, g.kW]);
  const part = S > 1 ? new Tensor(gpu, [S, nw]) : dw;
  const defines = { TM, TR, TN, KH: g.kH, KW: g.kW, SY: g.sy, SX: g.sx, ...subgroupDefines(gpu, WG) };
  dispatchTiles(gpu, { file: 'conv2d_bwd_tile', entry: 'weights', defines, constants: { WG } }, params(gk, { S, chunk }), { 1: x, 2: dy, 4: part }, tilesN, tilesM, g.G * S);
  if (S > 1) {
    reduceSplit(gpu, g, part, dw, S);
    part.dispose();
  }
  return dw;
}

/** Tiles per workgroup of conv2d_depthwise.wgsl fwd and data (no barriers: wider than the dw's 8). */
const DEPTHWISE_TILE_WG = 32;

/** The forward of a depthwise conv with conv2d_depthwise.wgsl fwd (2x8 output tiles; see the file comment). */
function depthwiseForward(gpu: Gpu, g: ConvGeom, epi: Extra, bind: Record<number, Tensor>, flip = false): void {
  const WG = DEPTHWISE_TILE_WG;
  const tiles = cdiv(g.OH, 2) * cdiv(g.OW, 8);
  const prm = params(g, epi);
  prm.wflip = flip ? 1 : 0;
  const defines = { KH: g.kH, KW: g.kW, SY: g.sy, SX: g.sx };
  dispatchTiles(gpu, { file: 'conv2d_depthwise', entry: 'fwd', defines, constants: { WG } }, prm, bind, cdiv(tiles, WG), g.Cout, g.B);
}

/** dx of a depthwise conv at any stride with conv2d_depthwise.wgsl data: one output phase per grid z. */
function depthwiseBackwardData(dy: Tensor, w: Tensor, g: ConvGeom): Tensor {
  const gpu = dy.gpu;
  const WG = DEPTHWISE_TILE_WG;
  const dx = new Tensor(gpu, [g.B, g.Cin, g.H, g.W]);
  const rows = cdiv(g.H, g.sy);
  const segs = cdiv(cdiv(g.W, g.sx), 8);
  const defines = { KH: g.kH, KW: g.kW, SY: g.sy, SX: g.sx };
  dispatchTiles(gpu, { file: 'conv2d_depthwise', entry: 'data', defines, constants: { WG } }, params(g), { 1: dy, 2: w, 4: dx }, cdiv(rows * segs, WG), g.Cout, g.B * g.sy * g.sx);
  return dx;
}

/**
 * dw of a depthwise conv with conv2d_depthwise.wgsl (see the file comment): a workgroup of 8 lanes per channel
 * and chunk of the B*OH rows of dy; chunks (partials summed by reduce_split) only when there are fewer than
 * 16 channels to keep the cores busy.
 */
function depthwiseBackwardWeights(x: Tensor, dy: Tensor, g: ConvGeom): Tensor {
  const gpu = x.gpu;
  const WG = 8;
  const { S, chunk } = splitTiles(g.B * g.OH, g.Cout, 16, 4 * WG);
  const n = g.Cout * g.kH * g.kW;
  const dw = new Tensor(gpu, [g.Cout, 1, g.kH, g.kW]);
  const part = S > 1 ? new Tensor(gpu, [S, n]) : dw;
  const defines = { KH: g.kH, KW: g.kW, SY: g.sy, SX: g.sx };
  gpu.dispatch({ file: 'conv2d_depthwise', entry: 'weights', defines, constants: { WG } }, params(g, { S, chunk, n }), { 1: x, 2: dy, 4: part }, [g.Cout, S, 1]);
  if (S > 1) {
    reduceSplit(gpu, g, part, dw, S);
    part.dispose();
  }
  return dw;
}

/** dw = the sum of the S partials [S, dw.size] of a split reduction (conv2d_direct.wgsl reduce_split, vec4s when it can). */
function reduceSplit(gpu: Gpu, g: ConvGeom, part: Tensor, dw: Tensor, S: number): void {
  const n = dw.size;
  const entry = n % 4 === 0 ? 'reduce_split4' : 'reduce_split';
  gpu.dispatch({ file: 'conv2d_direct', entry, constants: { WG: DIRECT_WG } }, params(g, { S, n }), { 1: part, 4: dw }, gpu.grid(n % 4 === 0 ? n / 4 : n, DIRECT_WG));
}

/** Chunks of `T` pixel tiles: enough workgroups in flight (`target`) without chunks under `minChunk` tiles. */
function splitTiles(T: number, wgs: number, target: number, minChunk: number): { S: number; chunk: number } {
  let S = Math.max(1, Math.min(cdiv(target, wgs), Math.floor(T / minChunk)));
  const chunk = cdiv(T, S);
  S = cdiv(T, chunk);
  return { S, chunk };
}

/** db[c] = sum of dy[:, c, :, :], not recorded. */
export function conv2dBackwardBias(dy: Tensor): Tensor {
  if (dy.shape.length !== 4) throw new Error(`conv2d: dy must be 4-D NCHW, got ${shapeStr(dy.shape)}`);
  const [B, C, OH, OW] = dy.shape;
  const gpu = dy.gpu;
  const db = new Tensor(gpu, [C]);
  const g: ConvGeom = { B, Cin: C, H: OH, W: OW, Cout: C, Cg: 1, Mg: 1, G: C, kH: 1, kW: 1, sy: 1, sx: 1, py: 0, px: 0, dy: 1, dx: 1, OH, OW };
  const max = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  const gy = cdiv(C, max);
  gpu.dispatch({ file: 'conv2d_direct', entry: 'bwd_bias', constants: { WV: treeInvocations(gpu, 256) } }, params(g), { 2: dy, 4: db }, [cdiv(C, gy), gy]);
  return db;
}

export interface Conv2dOptions {
  algo?: ConvAlgo;
  /** Fused activation (inference epilogue; while recording, the activation op is applied after the conv). */
  act?: Activation;
  /** Write into a channel slice of a bigger tensor (inference only). */
  out?: ConvOutSlice;
}

/**
 * y = act(conv2d(x, w) + b), recorded on the tape when a tape is recording and x, w or b requires grad
 * (backward to each of them that requires grad).
 */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}, opts: Conv2dOptions = {}): Tensor {
  const act = opts.act ?? 'linear';
  const algo = opts.algo ?? 'auto';
  if (!Tape.wants([x, w, b])) return conv2dForward(x, w, b, p, algo, act, opts.out);
  if (opts.out) throw new Error('conv2d: writing into a channel slice (opts.out) is for inference; it cannot be recorded for backward');
  if (act !== 'linear') return activation(conv2d(x, w, b, p, { algo }), act);
  const y = conv2dForward(x, w, b, p, algo);
  Tape.push({
    op: 'conv2d',
    inputs: b ? [x, w, b] : [x, w],
    outputs: [y],
    saved: [x, w],
    backward: ([gy]) => [
      x.requiresGrad ? conv2dBackwardData(gy!, w, x.shape, p, algo) : null,
      w.requiresGrad ? conv2dBackwardWeights(x, gy!, w.shape, p, algo) : null,
      b?.requiresGrad ? conv2dBackwardBias(gy!) : null,
    ],
  });
  return y;
}
