/**
 * The device's arithmetic peak, measured: kernels/peak.wgsl (pure register FMAs, vec4, ACC independent
 * accumulators per invocation, no memory traffic in the loop) over a few workgroup shapes, the best
 * GFLOP/s. `bench kernels` and `bench network` report every kernel and the whole network as a fraction of it
 * (besides the fraction of our own best matmul, which is a kernel, not the device).
 *
 * Variants: ACC 4 and 8 accumulators x 16 and 32 invocations per workgroup (plus 64 and 256 on a real GPU,
 * whose schedulers like bigger workgroups), enough workgroups to fill the device (8192 invocations on a CPU
 * adapter, 2^20 on a GPU). Per variant: one call to compile, then the loop count is scaled until a call
 * takes about `targetMs`, then the median of `samples` calls (wall clock around gpu.sync(), process CPU time
 * beside it). FLOPs = invocations * iters * 4 (unroll) * ACC * 4 (vec4) * 2.
 */
import os from 'node:os';
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';

/** One shape of the probe: ACC vec4 accumulators per invocation, WG invocations per workgroup. */
export interface PeakVariant {
  acc: number;
  wg: number;
}

export interface PeakSample extends PeakVariant {
  invocations: number;
  /** Loop rounds per invocation (each UNROLL x ACC vec4 FMAs). */
  iters: number;
  flops: number;
  /** Median wall ms per call. */
  ms: number;
  gflops: number;
  /** Median process CPU ms per call (all threads). */
  cpu_ms: number;
  /** flops / (cpu_ms / CPU count): meaningful on CPU adapters only. */
  gflops_cpu: number;
  samples: number;
}

export interface PeakResult {
  /** The best variant's GFLOP/s (wall): the device peak the benches compare with. */
  gflops: number;
  /** The best CPU-time GFLOP/s of the variants (CPU adapters: robust to other load). */
  gflops_cpu: number;
  best: PeakVariant;
  variants: PeakSample[];
  timing: string;
  seconds: number;
}

export interface PeakOptions {
  /** Variants to time (default: peakVariants(gpu)). */
  variants?: PeakVariant[];
  /** Invocations per call (default 8192 on CPU adapters, 2^20 on a GPU). */
  invocations?: number;
  /** Wall ms a call should take once calibrated (default 100). */
  targetMs?: number;
  /** Timed calls per variant (default 3). */
  samples?: number;
  log?: (line: string) => void;
}

/** The kernel's inner unroll (kernels/peak.wgsl UNROLL). */
export const PEAK_UNROLL = 4;

/** ACC {4, 8} x WG {16, 32}, plus WG {64, 256} on a real GPU. */
export function peakVariants(gpu: Gpu): PeakVariant[] {
  const wgs = gpu.info.kind === 'gpu' ? [16, 32, 64, 256] : [16, 32];
  const max = gpu.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  return [4, 8].flatMap((acc) => wgs.filter((wg) => wg <= max).map((wg) => ({ acc, wg })));
}

/** FLOPs of one call (see the file comment). */
export function peakFlops(invocations: number, iters: number, acc: number): number {
  return invocations * iters * PEAK_UNROLL * acc * 4 * 2;
}

/** The probe's uniform constants: a = a * PEAK_M + PEAK_C (|m| < 1: the values stay finite). */
export const PEAK_M = 0.999;
export const PEAK_C = 0.001;

/**
 * Records one call of the probe kernel: `invocations` (a multiple of v.wg) invocations of `iters` rounds,
 * each writing the sum of its accumulators to out[4 i .. 4 i + 3] (`out`: at least 4 * invocations floats).
 */
export function dispatchPeak(gpu: Gpu, v: PeakVariant, out: Tensor, invocations: number, iters: number): void {
  const spec = { file: 'peak', entry: 'fma_peak', defines: { ACC: v.acc }, constants: { WG: v.wg } };
  gpu.dispatch(spec, { n: invocations, iters, m: PEAK_M, c: PEAK_C }, { 1: out }, gpu.grid(invocations, v.wg));
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/** Measures the FMA peak of the device (see the file comment). */
export async function measurePeak(gpu: Gpu, opts: PeakOptions = {}): Promise<PeakResult> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const variants = opts.variants ?? peakVariants(gpu);
  if (!variants.length) throw new Error('measurePeak: no variants');
  const target = opts.targetMs ?? 100;
  const nSamples = Math.max(1, opts.samples ?? 3);
  const ncpu = os.cpus().length;
  const results: PeakSample[] = [];
  for (const v of variants) {
    if (![1, 2, 4, 8, 16].includes(v.acc) || !Number.isInteger(v.wg) || v.wg < 1) throw new Error(`measurePeak: bad variant acc ${v.acc} wg ${v.wg}`);
    const invocations = Math.ceil((opts.invocations ?? (gpu.info.kind === 'gpu' ? 1 << 20 : 8192)) / v.wg) * v.wg;
    const out = Tape.untracked(() => new Tensor(gpu, [invocations * 4], 'peak.out'));
    const call = async (iters: number) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      dispatchPeak(gpu, v, out, invocations, iters);
      await gpu.sync();
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      return { ms, cpu: (c.user + c.system) / 1000 };
    };
    try {
      let iters = 16;
      await call(iters); // compiles the pipeline
      let t = await call(iters);
      for (let k = 0; k < 6 && t.ms < target / 2; k++) {
        iters = Math.min(2 ** 30, Math.max(iters * 2, Math.round((iters * target) / Math.max(t.ms, 0.05))));
        t = await call(iters);
      }
      const ms: number[] = [];
      const cpu: number[] = [];
      for (let s = 0; s < nSamples; s++) {
        const r = await call(iters);
        ms.push(r.ms);
        cpu.push(r.cpu);
      }
      const flops = peakFlops(invocations, iters, v.acc);
      const m = median(ms);
      const c = median(cpu);
      const sample: PeakSample = {
        ...v, invocations, iters, flops, ms: m, gflops: flops / (m * 1e6), cpu_ms: c, gflops_cpu: flops / ((c / ncpu) * 1e6), samples: ms.length,
      };
      results.push(sample);
      log(`peak acc ${v.acc} wg ${String(v.wg).padEnd(3)} ${invocations} invocations x ${iters} rounds: ${m.toFixed(1)} ms ${sample.gflops.toFixed(2)} GFLOP/s (cpu ${c.toFixed(0)} ms, ${sample.gflops_cpu.toFixed(2)} GFLOP per ${ncpu} cpu-s)`);
    } finally {
      out.dispose();
    }
  }
  const best = results.reduce((p, c) => (c.gflops > p.gflops ? c : p));
  log(`device peak: ${best.gflops.toFixed(2)} GFLOP/s (register FMAs, acc ${best.acc} wg ${best.wg})`);
  return {
    gflops: best.gflops,
    gflops_cpu: Math.max(...results.map((r) => r.gflops_cpu)),
    best: { acc: best.acc, wg: best.wg },
    variants: results,
    timing: `kernels/peak.wgsl: per variant one compile call, loop count scaled to ~${target} ms per call, then the median of ${nSamples} calls (wall clock around gpu.sync())`,
    seconds: (performance.now() - started) / 1000,
  };
}

// ------------------------------------------------------------------------------------------ loads

/** One variant of the load probe (kernels/load_probe.wgsl): f32 or vec4 loads, per-lane or uniform addresses. */
export interface LoadVariant {
  width: 'f32' | 'vec4';
  addresses: 'lane' | 'uniform';
}

export interface LoadSample extends LoadVariant {
  invocations: number;
  /** Floats each invocation loads per call. */
  count: number;
  /** Median wall ms per call. */
  ms: number;
  /** Floats loaded per nanosecond (10^9 per second), all invocations. */
  gfloats: number;
  samples: number;
}

export interface LoadResult {
  variants: LoadSample[];
  /** The f32, per-lane variant's rate: what a kernel's ordinary `x[i]` costs. */
  gfloats: number;
  /** With a peak given: the FMAs (peak GFLOP/s / 2) the device does in the time of one f32 load. */
  fmasPerLoad?: number;
  timing: string;
  seconds: number;
}

/** Floats in the probe's source buffer (256 KiB: the CPU's caches hold it). */
export const LOAD_PROBE_FLOATS = 1 << 16;

export const LOAD_VARIANTS: readonly LoadVariant[] = [
  { width: 'f32', addresses: 'lane' }, { width: 'f32', addresses: 'uniform' },
  { width: 'vec4', addresses: 'lane' }, { width: 'vec4', addresses: 'uniform' },
];

/**
 * Records one call of the load probe: `invocations` (a multiple of wg) invocations each summing `count` (a
 * multiple of 4) floats of `src` (LOAD_PROBE_FLOATS values) into out[i].
 */
export function dispatchLoads(gpu: Gpu, v: LoadVariant, src: Tensor, out: Tensor, invocations: number, count: number, wg = 32): void {
  const spec = { file: 'load_probe', entry: v.width === 'f32' ? 'scalar' : 'vec4', constants: { WG: wg, UNIFORM: v.addresses === 'uniform' ? 1 : 0 } };
  const bind: Record<number, Tensor> = v.width === 'f32' ? { 1: src, 3: out } : { 2: src, 3: out };
  gpu.dispatch(spec, { n: invocations, count, mask: LOAD_PROBE_FLOATS - 1 }, bind, gpu.grid(invocations, wg));
}

/**
 * Measures what storage loads cost on the device (kernels/load_probe.wgsl), as floats loaded per second for
 * each variant, calibrated and timed like measurePeak. With `peak`: how many FMAs one f32 load costs, the
 * arithmetic a kernel needs per loaded value before the FMA peak, not its loads, limits it.
 */
export async function measureLoads(gpu: Gpu, opts: Omit<PeakOptions, 'variants'> & { peak?: PeakResult } = {}): Promise<LoadResult> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const target = opts.targetMs ?? 100;
  const nSamples = Math.max(1, opts.samples ?? 3);
  const wg = 32;
  const invocations = Math.ceil((opts.invocations ?? (gpu.info.kind === 'gpu' ? 1 << 20 : 8192)) / wg) * wg;
  const results: LoadSample[] = [];
  const src = Tape.untracked(() => Tensor.from(gpu, [LOAD_PROBE_FLOATS], Float32Array.from({ length: LOAD_PROBE_FLOATS }, (_, i) => i % 7), 'loads.src'));
  const out = Tape.untracked(() => new Tensor(gpu, [invocations], 'loads.out'));
  try {
    for (const v of LOAD_VARIANTS) {
      const call = async (count: number) => {
        const t0 = performance.now();
        dispatchLoads(gpu, v, src, out, invocations, count, wg);
        await gpu.sync();
        return performance.now() - t0;
      };
      let count = 64;
      await call(count); // compiles the pipeline
      let t = await call(count);
      for (let k = 0; k < 6 && t < target / 2; k++) {
        count = Math.min(1 << 24, Math.max(count * 2, 4 * Math.round((count * target) / Math.max(t, 0.05) / 4)));
        t = await call(count);
      }
      const ms: number[] = [];
      for (let s = 0; s < nSamples; s++) ms.push(await call(count));
      const m = median(ms);
      const sample: LoadSample = { ...v, invocations, count, ms: m, gfloats: (invocations * count) / (m * 1e6), samples: ms.length };
      results.push(sample);
      log(`loads ${v.width.padEnd(4)} ${v.addresses.padEnd(7)} ${invocations} invocations x ${count} floats: ${m.toFixed(1)} ms ${sample.gfloats.toFixed(2)} G floats/s`);
    }
  } finally {
    src.dispose();
    out.dispose();
  }
  const gfloats = results[0].gfloats;
  const fmasPerLoad = opts.peak ? opts.peak.gflops / 2 / gfloats : undefined;
  if (fmasPerLoad !== undefined) log(`loads: one f32 storage load costs the time of ${fmasPerLoad.toFixed(1)} FMAs at the device peak`);
  return {
    variants: results, gfloats, ...(fmasPerLoad !== undefined ? { fmasPerLoad } : {}),
    timing: `kernels/load_probe.wgsl: ${LOAD_PROBE_FLOATS}-float source, per variant one compile call, the per-invocation count scaled to ~${target} ms per call, then the median of ${nSamples} calls`,
    seconds: (performance.now() - started) / 1000,
  };
}
