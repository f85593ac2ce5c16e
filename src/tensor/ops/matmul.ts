/**
 * Matrix multiply (kernels/matmul.wgsl): C = alpha * op(A) x op(B) + beta * C for row-major float32
 * matrices, optionally batched (leading dimensions of equal size) and transposed, in two kernel families:
 *
 * - 'reg':   register blocking with plain global loads (vec4 loads when A and B are row-major and K, N are
 *            multiples of 4, else scalar loads with any strides). Fastest on CPU adapters (lavapipe, llvmpipe),
 *            where workgroup memory and barriers are emulated and cost more than they save.
 * - 'tiled': workgroup-memory tiles of A and B plus register blocking: what real GPUs want.
 *
 * Tile sizes are specializations (template defines for register arrays, override constants for the
 * workgroup size); every distinct config is one cached pipeline.
 */
import type { Gpu, KernelSpec } from '../../gpu/device.js';
import { f32 } from '../../gpu/device.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Tape } from '../tape.js';

export const MATMUL_VARIANTS = ['reg', 'tiled'] as const;
export type MatmulVariant = (typeof MATMUL_VARIANTS)[number];

/** A tile config: each invocation owns tm rows x tn columns of C; a workgroup is wgx x wgy invocations. */
export interface MatmulTile {
  /** rows per invocation */
  tm: number;
  /** columns per invocation (a multiple of 4 for 'tiled' and for the vec4 path of 'reg') */
  tn: number;
  wgx: number;
  wgy: number;
  /** k-depth of the workgroup-memory tile ('tiled' only) */
  bk?: number;
}

export interface MatmulConfig {
  variant: MatmulVariant;
  tile: MatmulTile;
}

/** Tile configs the bench sweeps (the first of each variant is its default). */
export const MATMUL_CONFIGS: readonly MatmulConfig[] = [
  { variant: 'reg', tile: { tm: 4, tn: 8, wgx: 8, wgy: 8 } },
  { variant: 'reg', tile: { tm: 4, tn: 4, wgx: 8, wgy: 8 } },
  { variant: 'reg', tile: { tm: 8, tn: 8, wgx: 8, wgy: 4 } },
  { variant: 'reg', tile: { tm: 2, tn: 8, wgx: 16, wgy: 4 } },
  { variant: 'reg', tile: { tm: 8, tn: 4, wgx: 8, wgy: 8 } },
  { variant: 'tiled', tile: { tm: 4, tn: 4, wgx: 16, wgy: 16, bk: 16 } },
  { variant: 'tiled', tile: { tm: 4, tn: 8, wgx: 8, wgy: 8, bk: 16 } },
  { variant: 'tiled', tile: { tm: 8, tn: 8, wgx: 8, wgy: 8, bk: 8 } },
  { variant: 'tiled', tile: { tm: 4, tn: 4, wgx: 8, wgy: 8, bk: 32 } },
];

export function defaultTile(variant: MatmulVariant): MatmulTile {
  return MATMUL_CONFIGS.find((c) => c.variant === variant)!.tile;
}

/** The variant to use when none is asked for: 'reg' on CPU adapters, 'tiled' on real GPUs. */
export function defaultVariant(gpu: Gpu): MatmulVariant {
  return gpu.info.kind === 'gpu' ? 'tiled' : 'reg';
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
}

/** The kernel spec and the shape of the grid for one matmul (exported for the bench). */
export function matmulKernel(variant: MatmulVariant, tile: MatmulTile, d: { M: number; N: number; K: number; batch: number }, vec4: boolean): { spec: KernelSpec; groups: [number, number, number] } {
  checkTile(variant, tile);
  const { tm, tn, wgx, wgy } = tile;
  const constants = { WGX: wgx, WGY: wgy };
  // Every placeholder of the file needs a value; the ones an entry point does not use are set to 1 so that
  // they do not multiply pipelines.
  const defs = { TM: tm, TN: 1, TNV: 1, BK: 1, BM: 1, BN4: 1, NT: 1 };
  let entry: string;
  let groups: [number, number, number];
  if (variant === 'tiled') {
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
  const params = [d.M, d.N, d.K, d.batch, sam, sak, sbk, sbn, d.M * d.K, d.K * d.N, d.M * d.N, f32(alpha), f32(beta)];
  const bindings: Record<number, Tensor> = spec.entry === 'reg4' ? { 4: a, 5: b, 6: out } : { 1: a, 2: b, 3: out };
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

/** 2*M*N*K per batch entry. */
export function matmulFlops(M: number, N: number, K: number, batch = 1): number {
  return 2 * M * N * K * batch;
}
