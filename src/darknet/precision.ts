/**
 * Inference precision of a network (docs/kernels.md "f16 storage"): 'f32', 'f16' (weights and activations
 * stored as float16 where the layer's kernels have the f16 variant, sums in float32; the adapter needs the
 * `shader-f16` feature), or 'auto' (the default): f16 only where `yolo-wgsl tune` measured the whole forward
 * faster in f16 than in f32 (by 5%) on this adapter, at this network's shapes (autotunePrecision; the record is kept
 * per adapter in the tuning table under the family 'precision', src/gpu/tune.ts), else f32. Training is f32.
 * At 'auto' the float32 3x3 stride-1 convs may also run as Winograd F(4x4, 3x3) or F(2x2, 3x3) (useWinograd,
 * src/tensor/ops/conv2d_winograd.ts; docs/kernels.md "Winograd"); F(4x4) rounds about 10x more than a direct
 * conv; 'f32' keeps the direct kernels (Network.prepare records which, ForwardContext.winograd).
 */
import { GpuError } from '../gpu/errors.js';
import type { Gpu } from '../gpu/device.js';
import { tuneTable } from '../gpu/tune.js';
import { Tensor, type DType } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import type { Network } from './network.js';

export type Precision = 'f32' | 'f16' | 'auto';
export const PRECISIONS: readonly Precision[] = ['auto', 'f32', 'f16'];

/** The tuning table family of the measured precision picks. */
export const PRECISION_FAMILY = 'precision';

/** Throws unless `p` is one of PRECISIONS (what an option or a CLI flag passes through). */
export function checkPrecision(p: unknown, what = 'precision'): Precision {
  if (typeof p === 'string' && (PRECISIONS as readonly string[]).includes(p)) return p as Precision;
  throw new Error(`${what} must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(p)}`);
}

/**
 * The tuning key of a network's precision pick: its input size and a hash of its layers' kinds, shapes and
 * table lines (the same structure at the same size times the same; the cfg's file name does not matter).
 * Not the batch: the pick measured at the tune's batch stands for every batch.
 */
export function precisionKey(net: Network): string {
  const I = net.input;
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const line = net.layers.map((l) => {
    const d = l.describe();
    const o = l.output;
    return `${l.kind}|${d.type}|${d.filters}|${d.size}|${o.c}x${o.h}x${o.w}|${l.sources.join(',')}`;
  }).join('\n');
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return `${I.w}x${I.h}x${I.c}:${net.layers.length}L:${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
}

/**
 * The storage a network prepared at `precision` on this adapter uses: 'f16' asked for on an adapter
 * without shader-f16 is an error naming the adapter; 'auto' is f16 only with a measured pick of f16 for
 * this network in the adapter's tuning table (and the feature), else f32.
 */
export function resolvePrecision(gpu: Gpu, net: Network, precision: Precision): DType {
  const p = checkPrecision(precision);
  if (p === 'f32') return 'f32';
  const has = gpu.hasFeature('shader-f16');
  if (p === 'f16') {
    if (!has) throw new GpuError('limits', '', `precision f16 needs the adapter feature shader-f16, which ${gpu.info.summary} lacks (use precision f32 or auto)`);
    return 'f16';
  }
  return has && tuneTable(gpu).get(PRECISION_FAMILY, precisionKey(net))?.pick === 'f16' ? 'f16' : 'f32';
}

export interface PrecisionTuneOptions {
  /** Batch of the timed forwards (default 1). */
  batch?: number;
  /** Timed samples per precision, alternating f32 / f16 (default 5). */
  samples?: number;
  /**
   * How much faster f16 must be to be picked (default 0.05: its median below 95% of f32's). f32 is the more
   * accurate of the two, so a difference within the run-to-run noise (a few % on a loaded CPU adapter) keeps it.
   */
  margin?: number;
  /** Re-measure when the table already has a measured or cached pick (default false). */
  force?: boolean;
  log?: (line: string) => void;
}

export interface PrecisionTuneResult {
  key: string;
  /** f16 when it was faster by the margin, else f32 ('f32' too when the adapter has no shader-f16: nothing is measured then). */
  pick: DType;
  /** Median ms per forward of each precision measured. */
  ms: Partial<Record<DType, number>>;
  /** True when nothing was run (a known pick, or no shader-f16). */
  cached: boolean;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times the whole inference forward of `net` (weights loaded or initialized) at `batch` in f32 and in f16,
 * alternating (a warm-up forward first, which compiles; then samples of enough forwards for ~0.3 s each,
 * each ending with a sync), and records the pick in the adapter's tuning table, which `auto` then follows:
 * f16 when its median is faster than f32's by `margin`, else f32. f32 is timed as `auto` runs it without an
 * f16 record: float32 storage with the Winograd convs useWinograd picks (the network's record is out of the
 * table while measuring, put back if the measurement fails).
 * The network is left released (prepare it again), its `precision` setting as it was. Nothing is measured
 * without shader-f16.
 */
export async function autotunePrecision(gpu: Gpu, net: Network, o: PrecisionTuneOptions = {}): Promise<PrecisionTuneResult> {
  const key = precisionKey(net);
  const log = o.log ?? (() => {});
  if (!gpu.hasFeature('shader-f16')) {
    log(`tune: precision ${key}: f32 (${gpu.info.summary} has no shader-f16: nothing to measure)`);
    return { key, pick: 'f32', ms: {}, cached: true };
  }
  const table = tuneTable(gpu);
  const known = table.get(PRECISION_FAMILY, key);
  if (known && !o.force && known.source !== 'default') {
    return { key, pick: known.pick === 'f16' ? 'f16' : 'f32', ms: known.ms ?? {}, cached: true };
  }
  const B = o.batch ?? 1;
  const I = net.input;
  const rng = new Rng(0x16f);
  const data = new Float32Array(B * I.c * I.h * I.w);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(0, 1);
  const x = Tensor.from(gpu, [B, I.c, I.h, I.w], data, 'tune-input');
  const run = () => {
    for (const t of new Set(net.forward(x).values())) if (t !== x) t.dispose();
  };
  const time = async (calls: number) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) run();
    await gpu.sync();
    return (performance.now() - t0) / calls;
  };
  const order: DType[] = ['f32', 'f16'];
  const setting = net.precision;
  const calls: Partial<Record<DType, number>> = {};
  const samples: Record<DType, number[]> = { f32: [], f16: [] };
  const previous = table.delete(PRECISION_FAMILY, key);
  try {
    for (let round = 0; round < (o.samples ?? 5); round++) {
      for (const p of order) {
        net.prepare(gpu, 'infer', { precision: p === 'f32' ? 'auto' : 'f16' });
        if (calls[p] === undefined) {
          await net.precompile(gpu, { batch: B });
          await time(1); // warm-up
          calls[p] = Math.max(1, Math.min(16, Math.ceil(300 / Math.max(await time(1), 1))));
        }
        samples[p].push(await time(calls[p]!));
      }
    }
  } catch (e) {
    if (previous) table.put(PRECISION_FAMILY, key, previous);
    throw e;
  } finally {
    x.dispose();
    net.release();
    net.precision = setting;
  }
  const ms = { f32: Number(median(samples.f32).toPrecision(4)), f16: Number(median(samples.f16).toPrecision(4)) };
  const margin = o.margin ?? 0.05;
  const pick: DType = ms.f16 < ms.f32 * (1 - margin) ? 'f16' : 'f32';
  table.set(PRECISION_FAMILY, key, pick, ms);
  log(`tune: precision ${key} at batch ${B}: ${pick}  (f32 ${ms.f32} ms, f16 ${ms.f16} ms per forward; f16 is picked when ${Math.round(100 * margin)}% faster)`);
  return { key, pick, ms, cached: false };
}
