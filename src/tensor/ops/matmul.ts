/**
 * Matrix multiply (kernels/matmul.wgsl): C = alpha * op(A) x op(B) + beta * C for row-major float32
 * matrices, optionally batched (leading dimensions of equal size) and transposed, in three kernel families:
 *
 * - 'reg':   register blocking with plain global loads (vec4 loads when A and B are row-major and K, N are
 *            multiples of 4, else scalar loads with any strides).
 * - 'tiled': workgroup-memory tiles of A and B plus register blocking: what real GPUs want.
 * - 'sg':    'reg' with vec4 loads where the workgroup is one subgroup and its lanes share the rows of A
 *            through subgroupShuffle (needs the 'subgroups' feature and a fixed subgroup size equal to the
 *            tile's wgx). Fastest on lavapipe, where every lane's load is a separate bounds-checked scalar
 *            load and sharing A cuts the loads per FMA ~4x. Shapes it cannot take (transposes, K or N not a
 *            multiple of 4) run the default 'reg' kernel instead.
 *
 * On CPU adapters (lavapipe, llvmpipe) workgroup memory and barriers are emulated and cost about as much
 * as they save, so 'sg' (or 'reg' without subgroups) is the default there and 'tiled' on real GPUs.
 * Tile sizes are specializations (template defines for register arrays, override constants for the
 * workgroup size); every distinct config is one cached pipeline.
 */
import type { Gpu, KernelSpec } from '../../gpu/device.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Tape } from '../tape.js';

export const MATMUL_VARIANTS = ['reg', 'tiled', 'sg'] as const;
export type MatmulVariant = (typeof MATMUL_VARIANTS)[number];

/** A tile config: each invocation owns tm rows x tn columns of C; a workgroup is wgx x wgy invocations. */
export interface MatmulTile {
  /** rows per invocation ('sg': rows per workgroup, a multiple of the subgroup size) */
  tm: number;
  /** columns per invocation (a multiple of 4 for 'tiled', 'sg' and the vec4 path of 'reg') */
  tn: number;
  /** workgroup size ('sg': must equal the device's subgroup size; wgy 1) */
  wgx: number;
  wgy: number;
  /** k-depth of the workgroup-memory tile ('tiled' only) */
  bk?: number;
}

export interface MatmulConfig {
  variant: MatmulVariant;
  tile: MatmulTile;
}

/**
 * Tile configs the bench sweeps (the first of each variant is its default). The 'reg' and 'sg' ones were
 * picked on lavapipe (a 2-core CPU); the first 'tiled' one is the classic 64x64 tile for real GPUs. 'sg' 16x4
 * is the fastest or within 10% of it on every shape measured since regsg takes 4 k-steps per accumulator
 * write (docs/performance.md, session 11); 32x8, the best before, now spills and runs 2-3x slower.
 */
export const MATMUL_CONFIGS: readonly MatmulConfig[] = [
  { variant: 'reg', tile: { tm: 8, tn: 8, wgx: 8, wgy: 1 } },
  { variant: 'reg', tile: { tm: 16, tn: 8, wgx: 8, wgy: 1 } },
  { variant: 'reg', tile: { tm: 8, tn: 4, wgx: 8, wgy: 8 } },
  { variant: 'reg', tile: { tm: 4, tn: 8, wgx: 8, wgy: 8 } },
  { variant: 'reg', tile: { tm: 4, tn: 4, wgx: 8, wgy: 8 } },
  { variant: 'tiled', tile: { tm: 4, tn: 4, wgx: 16, wgy: 16, bk: 16 } },
  { variant: 'tiled', tile: { tm: 4, tn: 8, wgx: 8, wgy: 8, bk: 16 } },
  { variant: 'tiled', tile: { tm: 8, tn: 8, wgx: 8, wgy: 8, bk: 8 } },
  { variant: 'tiled', tile: { tm: 8, tn: 8, wgx: 8, wgy: 4, bk: 16 } },
  { variant: 'sg', tile: { tm: 16, tn: 4, wgx: 8, wgy: 1 } },
  { variant: 'sg', tile: { tm: 16, tn: 8, wgx: 8, wgy: 1 } },
  { variant: 'sg', tile: { tm: 24, tn: 4, wgx: 8, wgy: 1 } },
  { variant: 'sg', tile: { tm: 24, tn: 8, wgx: 8, wgy: 1 } },
  { variant: 'sg', tile: { tm: 32, tn: 8, wgx: 8, wgy: 1 } },
];

/** The device's subgroup size when it is fixed (min == max) and the 'subgroups' feature is enabled. */
export function fixedSubgroupSize(gpu: Gpu): number | undefined {
  if (!gpu.hasFeature('subgroups')) return undefined;
  const info = gpu.device.adapterInfo;
  const lo = info?.subgroupMinSize;
  const hi = info?.subgroupMaxSize;
  return lo !== undefined && lo === hi ? lo : undefined;
}

/** Whether this device can run a config (the 'sg' ones need a fixed subgroup size equal to wgx). */
export function matmulSupported(gpu: Gpu, c: MatmulConfig): boolean {
  if (c.variant !== 'sg') return true;
  const sg = fixedSubgroupSize(gpu);
  return sg !== undefined && c.tile.wgx === sg && c.tile.wgy === 1 && c.tile.tm % sg === 0 && c.tile.tn % 4 === 0;
}

/**
 * 'sg' tiles for a fixed subgroup size other than lavapipe's 8 (MATMUL_CONFIGS' 'sg' tiles are for 8): the
 * workgroup is one subgroup of `size` lanes, 16 and 32 rows (rounded up to a multiple of `size`), 2 vec4
 * columns per lane. None above 32 lanes (64 rows of vec4 accumulators would not stay in registers).
 */
export function sgConfigsFor(size: number): MatmulConfig[] {
  if (!Number.isInteger(size) || size < 1 || size > 32) return [];
  const rows = [...new Set([16, 32].map((r) => Math.ceil(r / size) * size))].filter((r) => r <= 32);
  return rows.map((tm) => ({ variant: 'sg' as const, tile: { tm, tn: 8, wgx: size, wgy: 1 } }));
}

/** The configs of MATMUL_CONFIGS this device can run, plus 'sg' tiles for its subgroup size when that is not 8. */
export function matmulConfigsFor(gpu: Gpu): MatmulConfig[] {
  const sg = fixedSubgroupSize(gpu);
  const extra = sg !== undefined && sg !== 8 ? sgConfigsFor(sg) : [];
  return [...MATMUL_CONFIGS, ...extra].filter((c) => matmulSupported(gpu, c));
}

export function defaultTile(variant: MatmulVariant): MatmulTile {
  return MATMUL_CONFIGS.find((c) => c.variant === variant)!.tile;
}

/** The variant to use when none is asked for: 'tiled' on real GPUs, else 'sg' where it runs, else 'reg'. */
export function defaultVariant(gpu: Gpu): MatmulVariant {
  if (gpu.info.kind === 'gpu') return 'tiled';
  return matmulSupported(gpu, { variant: 'sg', tile: defaultTile('sg') }) ? 'sg' : 'reg';
}

export function tileName(t: MatmulTile): string {
  return `${t.tm}x${t.tn} wg${t.wgx}x${t.wgy}${t.bk ? ` bk${t.bk}` : ''}`;
}

export function configName(c: MatmulConfig): string {
  return `${c.variant} ${tileName(c.tile)}`;
}

export interface MatmulOptions {
  /** A is stored transposed (as [..., K, M]). */
  transA?: boolean;
  /** B is stored transposed (as [..., N, K]). */
  transB?: boolean;
  variant?: MatmulVariant;
  tile?: MatmulTile;
  alpha?: number;
  /** With `out`: C = alpha*AB + beta*out (accumulate). Default 0. */
  beta?: number;
  /** Write into this tensor (shape [..., M, N]) instead of a new one; not recorded on the tape. */
  out?: Tensor;
}

interface Dims {
  M: number;
  N: number;
  K: number;
  batch: number;
  batchShape: number[];
}

function dims(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Dims {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul: operands need >= 2 dimensions, got ${a.describe()} and ${b.describe()}`);
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [M, Ka] = transA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [Kb, N] = transB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (Ka !== Kb) throw new Error(`matmul: inner dimensions differ: op(A) of ${a.describe()}${transA ? '^T' : ''} is ${M}x${Ka}, op(B) of ${b.describe()}${transB ? '^T' : ''} is ${Kb}x${N}`);
  const batchShape = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  if (shapeStr(batchShape) !== shapeStr(bb)) throw new Error(`matmul: batch dimensions differ: ${a.describe()} vs ${b.describe()} (no broadcasting)`);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  return { M, N, K: Ka, batch, batchShape };
}

function checkTile(variant: MatmulVariant, t: MatmulTile): void {
  const ok = [t.tm, t.tn, t.wgx, t.wgy].every((v) => Number.isInteger(v) && v > 0);
  if (!ok) throw new Error(`matmul: invalid tile ${JSON.stringify(t)}`);
  if (variant === 'tiled' && (t.tn % 4 !== 0 || !t.bk || t.bk <= 0)) throw new Error(`matmul: tiled needs tn % 4 == 0 and bk > 0, got ${tileName(t)}`);
  if (variant === 'sg' && (t.tn % 4 !== 0 || t.wgy !== 1 || t.tm % t.wgx !== 0)) throw new Error(`matmul: sg needs tn % 4 == 0, wgy == 1 and tm a multiple of wgx (the subgroup size), got ${tileName(t)}`);
}

// Template defines that switch the subgroup section of matmul.wgsl off (or on).
const SG_OFF = { ENABLE: '', SGB: '/*', SGE: '*/', SG: 1 };

/**
 * The kernel spec and the grid for one matmul (exported for the bench). `vec4`: row-major operands with
 * K % 4 == 0 and N % 4 == 0. An 'sg' config on a shape that is not vec4 falls back to the default 'reg'.
 */
export function matmulKernel(variant: MatmulVariant, tile: MatmulTile, d: { M: number; N: number; K: number; batch: number }, vec4: boolean): { spec: KernelSpec; groups: [number, number, number] } {
  if (variant === 'sg' && !vec4) return matmulKernel('reg', defaultTile('reg'), d, vec4);
  checkTile(variant, tile);
  const { tm, tn, wgx, wgy } = tile;
  const constants = { WGX: wgx, WGY: wgy };
  // Every placeholder of the file needs a value; the ones an entry point does not use are set to 1 so that
  // they do not multiply pipelines.
  const defs: Record<string, string | number> = { TM: tm, TN: 1, TNV: 1, BK: 1, BM: 1, BN4: 1, NT: 1, ...SG_OFF };
  let entry: string;
  let groups: [number, number, number];
  if (variant === 'sg') {
    Object.assign(defs, { TNV: tn / 4, ENABLE: 'enable subgroups;', SGB: '', SGE: '', SG: wgx });
    entry = 'regsg';
    groups = [Math.ceil(d.N / 4 / (wgx * (tn / 4))), Math.ceil(d.M / tm), d.batch];
  } else if (variant === 'tiled') {
    const tnv = tn / 4;
    Object.assign(defs, { TNV: tnv, BK: tile.bk!, BM: wgy * tm, BN4: wgx * tnv, NT: wgx * wgy });
    entry = 'tiled';
    groups = [Math.ceil(d.N / (wgx * tn)), Math.ceil(d.M / (wgy * tm)), d.batch];
  } else if (vec4 && tn % 4 === 0) {
    Object.assign(defs, { TNV: tn / 4 });
    entry = 'reg4';
    groups = [Math.ceil(d.N / 4 / (wgx * (tn / 4))), Math.ceil(d.M / (wgy * tm)), d.batch];
  } else {
    Object.assign(defs, { TN: tn });
    entry = 'reg';
    groups = [Math.ceil(d.N / (wgx * tn)), Math.ceil(d.M / (wgy * tm)), d.batch];
  }
  return { spec: { file: 'matmul', entry, defines: defs, constants }, groups };
}

/**
 * C = alpha * op(A) x op(B) (+ beta * out). A is [..., M, K] ([..., K, M] with transA), B is [..., K, N]
 * ([..., N, K] with transB), equal leading (batch) dimensions; C is [..., M, N]. Recorded on the tape
 * (unless `out` is given): dA and dB are matmuls of dC with the other operand.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const gpu = a.gpu;
  const d = dims(a, b, transA, transB);
  const variant = opts.variant ?? defaultVariant(gpu);
  if (!MATMUL_VARIANTS.includes(variant)) throw new Error(`matmul: unknown variant '${variant}' (use ${MATMUL_VARIANTS.join(', ')})`);
  const tile = opts.tile ?? defaultTile(variant);
  if (variant === 'sg' && !matmulSupported(gpu, { variant, tile })) {
    throw new Error(`matmul: variant 'sg' ${tileName(tile)} needs the 'subgroups' feature with a fixed subgroup size equal to wgx (this device: ${fixedSubgroupSize(gpu) ?? 'none'})`);
  }
  const alpha = opts.alpha ?? 1;
  const beta = opts.out ? (opts.beta ?? 0) : 0;
  const outShape = [...d.batchShape, d.M, d.N];
  let out: Tensor;
  if (opts.out) {
    if (shapeStr(opts.out.shape) !== shapeStr(outShape)) throw new Error(`matmul: out is ${opts.out.describe()}, expected ${shapeStr(outShape)}`);
    out = opts.out;
  } else out = new Tensor(gpu, outShape);
  if (d.M === 0 || d.N === 0 || d.batch === 0) return out;

  const vec4 = !transA && !transB && d.K % 4 === 0 && d.N % 4 === 0;
  const { spec, groups } = matmulKernel(variant, tile, d, vec4);
  const sam = transA ? 1 : d.K;
  const sak = transA ? d.M : 1;
  const sbk = transB ? 1 : d.N;
  const sbn = transB ? d.K : 1;
  const params = { M: d.M, N: d.N, K: d.K, batch: d.batch, sam, sak, sbk, sbn, bsa: d.M * d.K, bsb: d.K * d.N, bsc: d.M * d.N, alpha, beta, bp4: 0 };
  const bindings: Record<number, Tensor> = spec.entry === 'reg4' || spec.entry === 'regsg' ? { 4: a, 5: b, 6: out } : { 1: a, 2: b, 3: out };
  gpu.dispatch(spec, params, bindings, groups);

  if (!opts.out) {
    const o = { variant, tile };
    Tape.push({
      op: 'matmul', inputs: [a, b], outputs: [out], saved: [a, b],
      backward: ([g]) => {
        let da: Tensor | null = null;
        let db: Tensor | null = null;
        if (a.requiresGrad) {
          da = transA
            ? matmul(b, g!, { ...o, transA: transB, transB: true, alpha })
            : matmul(g!, b, { ...o, transB: !transB, alpha });
        }
        if (b.requiresGrad) {
          db = transB
            ? matmul(g!, a, { ...o, transA: true, transB: transA, alpha })
            : matmul(a, g!, { ...o, transA: !transA, alpha });
        }
        return [da, db];
      },
    });
  }
  return out;
}

/**
 * The column panels of B for an 'sg' tile: B [..., K, N] stored as [..., N/P, K, P] with P = wgx * tn columns
 * (one workgroup's), so that a workgroup reads its columns of B as one contiguous block in k order instead of
 * P values every N. On lavapipe the Winograd products (B = the transformed weights, tens of MB streamed
 * once per forward) made yolov3-tiny 416 b1 1.07x faster (docs/kernels.md "Winograd").
 */
export function panelWidth(tile: MatmulTile): number {
  return tile.wgx * tile.tn;
}

/**
 * out = A x B (bit for bit matmul's 'sg' sums) with B in column panels: a [batch, M, K], bp [batch, N/P, K, P]
 * (P = panelWidth(tile)), out [batch, M, N]; not recorded. Needs the 'sg' variant (checked), K % 4 == 0.
 */
export function matmulPanels(a: Tensor, bp: Tensor, out: Tensor, tile: MatmulTile): void {
  const gpu = a.gpu;
  const P = panelWidth(tile);
  const [batch, M, K] = a.shape;
  const N = bp.shape[1] * P;
  if (a.shape.length !== 3 || bp.shape.length !== 4 || bp.shape[0] !== batch || bp.shape[2] !== K || bp.shape[3] !== P || K % 4) {
    throw new Error(`matmul panels: A must be [batch, M, K] with K % 4 == 0 and B [batch, N/${P}, K, ${P}] (panels of the tile ${tileName(tile)}), got ${a.describe()} and ${bp.describe()}`);
  }
  if (shapeStr(out.shape) !== shapeStr([batch, M, N])) throw new Error(`matmul panels: out is ${out.describe()}, expected ${shapeStr([batch, M, N])}`);
  if (!matmulSupported(gpu, { variant: 'sg', tile })) {
    throw new Error(`matmul panels: needs the 'sg' variant, whose tile ${tileName(tile)} this device cannot run (subgroups: ${fixedSubgroupSize(gpu) ?? 'none'})`);
  }
  const { spec, groups } = matmulKernel('sg', tile, { M, N, K, batch }, true);
  const params = { M, N, K, batch, sam: K, sak: 1, sbk: N, sbn: 1, bsa: M * K, bsb: K * N, bsc: M * N, alpha: 1, beta: 0, bp4: P / 4 };
  gpu.dispatch(spec, params, { 4: a, 5: bp, 6: out }, groups);
}

/** 2*M*N*K per batch entry. */
export function matmulFlops(M: number, N: number, K: number, batch = 1): number {
  return 2 * M * N * K * batch;
}
