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
 *   auto        the measured pick for this adapter and shape (src/tensor/ops/conv_tune.ts autotuneConv,
 *               kept per adapter by src/gpu/tune-file.ts) when there is one, else chooseConvAlgo(): direct
 *               for tiny work, gemm_reg on CPU adapters, gemm_tiled on GPUs.
 * dw splits its reduction over B*OH*OW into chunks (partial sums + conv2d_direct.wgsl:reduce_split) when
 * there would be too few workgroups; db is a per-channel workgroup reduction.
 */
import type { Gpu, KernelSpec } from '../../gpu/device.js';
import { tuneTable } from '../../gpu/tune.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Tape } from '../tape.js';
import { activation, activationCode, type Activation } from './activation.js';

export interface Conv2dParams {
  stride?: number | [number, number];
  pad?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export type ConvAlgo = 'auto' | 'direct' | 'gemm_tiled' | 'gemm_reg';
export const CONV_ALGOS: readonly ConvAlgo[] = ['auto', 'direct', 'gemm_tiled', 'gemm_reg'];
export type ConvKernelAlgo = Exclude<ConvAlgo, 'auto'>;
export type ConvPass = 'fwd' | 'bwd_data' | 'bwd_weights';

/** gemm_reg's register block limits: up to maxTM rows x TN columns per invocation, WG invocations. */
export interface RegTiling { maxTM: number; TN: number; WG: number }

/**
 * An algorithm with, for gemm_reg, an explicit register tiling (what the autotune measures and records as
 * `gemm_reg@<maxTM>x<TN>x<WG>`); without `reg`, gemm_reg uses convRegTuning.
 */
export interface ConvChoice { algo: ConvKernelAlgo; reg?: RegTiling }

/** 'gemm_reg@16x2x64' -> { algo: 'gemm_reg', reg: {maxTM 16, TN 2, WG 64} }; a plain name -> { algo }. */
export function parseConvPick(pick: string): ConvChoice | null {
  const m = /^gemm_reg@(\d+)x(\d+)x(\d+)$/.exec(pick);
  if (m) {
    const [maxTM, TN, WG] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const pow2 = (v: number) => v >= 1 && (v & (v - 1)) === 0;
    if (!pow2(maxTM) || maxTM > 64 || TN < 1 || TN > 16 || !pow2(WG) || WG < 8 || WG > 256) return null;
    return { algo: 'gemm_reg', reg: { maxTM, TN, WG } };
  }
  return pick !== 'auto' && (CONV_ALGOS as readonly string[]).includes(pick) ? { algo: pick as ConvKernelAlgo } : null;
}

export function convPickName(c: ConvChoice): string {
  return c.reg ? `${c.algo}@${c.reg.maxTM}x${c.reg.TN}x${c.reg.WG}` : c.algo;
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
 * multiply-adds), gemm_reg on CPU adapters (workgroup tiles + barriers measured 2.5-5x slower there),
 * gemm_tiled on real GPUs. `pass` is unused for now; an autotune may pick per pass.
 */
export function chooseConvAlgo(kind: Gpu['info']['kind'], g: ConvGeom, pass: ConvPass = 'fwd'): ConvKernelAlgo {
  const macs = g.B * g.Cout * g.OH * g.OW * g.Cg * g.kH * g.kW;
  void pass;
  if (macs < 64 * 1024) return 'direct';
  return kind === 'gpu' ? 'gemm_tiled' : 'gemm_reg';
}

/**
 * The key of a conv pass in the tuning table (src/gpu/tune.ts): everything that changes the kernels' work,
 * `<pass>:B<b>:<Cin>x<H>x<W>:<Cout>x<kH>x<kW>:s<sy>x<sx>:p<py>x<px>:d<dy>x<dx>:g<G>`.
 */
export function convTuneKey(g: ConvGeom, pass: ConvPass): string {
  return `${pass}:B${g.B}:${g.Cin}x${g.H}x${g.W}:${g.Cout}x${g.kH}x${g.kW}:s${g.sy}x${g.sx}:p${g.py}x${g.px}:d${g.dy}x${g.dx}:g${g.G}`;
}

/** `auto`: the measured choice for this adapter and shape when there is one, else chooseConvAlgo. */
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

interface Extra { Ctot?: number; Coff?: number; S?: number; chunk?: number; n?: number; act?: number; bias?: boolean }

/** Depth of a workgroup-memory tile of conv2d_gemm.wgsl (its constant BK, passed as P.kt). */
const TILE_K = 16;

/**
 * The uniform Params of every conv2d kernel (kernels/lib/conv_params.wgsl), by field name; t0 is set per
 * dispatch (dispatchTiles). The epilogue (activation code, bias flag) is uniform, not an override: on CPU
 * adapters each pipeline variant costs 0.3-2 s of LLVM compile time, the uniform switch nothing measurable.
 */
function params(g: ConvGeom, e: Extra = {}) {
  return {
    B: g.B, Cin: g.Cin, H: g.H, W: g.W,
    Cout: g.Cout, OH: g.OH, OW: g.OW, KH: g.kH,
    KW: g.kW, SY: g.sy, SX: g.sx, PY: g.py,
    PX: g.px, DY: g.dy, DX: g.dx, G: g.G,
    Cg: g.Cg, Mg: g.Mg, Ctot: e.Ctot ?? g.Cout, Coff: e.Coff ?? 0,
    S: e.S ?? 1, chunk: e.chunk ?? 0, n: e.n ?? 0, t0: 0,
    act: e.act ?? 0, has_bias: e.bias ? 1 : 0, kt: TILE_K,
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

function checkTensor(what: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`conv2d: ${what} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
  }
}

/**
 * y = act(conv2d(x, w) + b), not recorded. With `out`, writes into channels [channelOffset, +Cout) of
 * out.dst (shape [B, Ctot, OH, OW]) and returns out.dst.
 */
export function conv2dForward(x: Tensor, w: Tensor, b: Tensor | null, p: Conv2dParams = {}, algo: ConvAlgo | ConvChoice = 'auto', act: Activation = 'linear', out?: ConvOutSlice): Tensor {
  const g = convGeom(x.shape, w.shape, p);
  if (b) checkTensor('bias', b, [g.Cout]);
  const ACT = activationCode(act);
  let y: Tensor;
  let Ctot = g.Cout;
  let Coff = 0;
  if (out) {
    const d = out.dst.shape;
    Ctot = d[1];
    Coff = out.channelOffset;
    if (d.length !== 4 || d[0] !== g.B || d[2] !== g.OH || d[3] !== g.OW) {
      throw new Error(`conv2d: output slice destination has shape ${shapeStr(d)}, expected [${g.B}, C, ${g.OH}, ${g.OW}]`);
    }
    if (!Number.isInteger(Coff) || Coff < 0 || Coff + g.Cout > Ctot) {
      throw new Error(`conv2d: output channels [${Coff}, ${Coff + g.Cout}) do not fit in the destination's ${Ctot} channels`);
    }
    if (out.dst === x || out.dst === w || out.dst === b) throw new Error('conv2d: the output slice destination must not be an input');
    y = out.dst;
  } else {
    y = new Tensor(x.gpu, [g.B, g.Cout, g.OH, g.OW]);
  }
  const gpu = x.gpu;
  const choice = resolve(algo, gpu, g, 'fwd');
  const a = choice.algo;
  const epi = { Ctot, Coff, act: ACT, bias: b !== null };
  const bind = { 1: x, 2: w, 3: b ?? w, 4: y };
  const N = g.B * g.OH * g.OW;
  if (a === 'direct') {
    const n = g.B * g.Cout * g.OH * g.OW;
    gpu.dispatch({ file: 'conv2d_direct', entry: 'fwd', constants: { WG: DIRECT_WG } }, params(g, { ...epi, n }), bind, gpu.grid(n, DIRECT_WG));
  } else if (a === 'gemm_tiled') {
    const spec = { file: 'conv2d_gemm', entry: 'main', constants: { MODE: 0 } };
    dispatchTiles(gpu, spec, params(g, epi), bind, cdiv(N, 64), cdiv(g.Mg, 64), g.G);
  } else {
    const blk = regBlock(g.Mg, choice.reg ?? convRegTuning.fwd);
    const TM = blk.TM;
    const { TN, WG } = fitColumns(N, blk.WG, blk.TN, Math.max(8, subgroupSize(gpu)));
    const spec = { file: 'conv2d_reg', entry: 'fwd', defines: { TM, TN, ...subgroupDefines(gpu, WG) }, constants: { WG } };
    dispatchTiles(gpu, spec, params(g, epi), bind, cdiv(N, WG * TN), cdiv(g.Mg, TM), g.G);
  }
  return y;
}

/** dx of loss given dy = d loss / d y (the transposed convolution of dy with w), not recorded. */
export function conv2dBackwardData(dy: Tensor, w: Tensor, xShape: readonly number[], p: Conv2dParams = {}, algo: ConvAlgo | ConvChoice = 'auto'): Tensor {
  const g = convGeom(xShape, w.shape, p);
  checkTensor('dy', dy, [g.B, g.Cout, g.OH, g.OW]);
  const gpu = dy.gpu;
  const dx = new Tensor(gpu, xShape);
  const choice = resolve(algo, gpu, g, 'bwd_data');
  const a = choice.algo;
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
  const a = choice.algo;
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
    gpu.dispatch({ file: 'conv2d_direct', entry: 'reduce_split', constants: { WG: DIRECT_WG } }, params(g, { S, n: nw }), { 1: part, 4: dw }, gpu.grid(nw, DIRECT_WG));
    part.dispose();
  }
  return dw;
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
  gpu.dispatch({ file: 'conv2d_direct', entry: 'bwd_bias', constants: { WG: DIRECT_WG } }, params(g), { 2: dy, 4: db }, [cdiv(C, gy), gy]);
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
