/**
 * The kernel bench: how close the conv2d kernels come to the best plain matmul this device runs.
 *
 * 1. The ceiling: a small sweep of kernels/matmul.wgsl variants and tile configs at sizes that finish in
 *    seconds on a CPU adapter (512^3 for every config, 1024x1024x1152 for the best few); the best GFLOP/s.
 * 2. The conv2d layers of yolov3-tiny at size x size input (shapes scale with size/416), batch 1: every
 *    algorithm for the forward pass and the backward passes (data and weights); per case the median wall
 *    time of repeats after a warm-up, GFLOP/s (2*B*Cout*OH*OW*(Cin/g)*kH*kW for every pass) and the
 *    fraction of the matmul ceiling.
 *
 * 3. The device peak (src/perf/peak.ts, kernels/peak.wgsl: pure register FMAs), measured first: every case
 *    is also reported as a fraction of it (`fraction_of_peak`), the matmul ceiling included.
 *
 * Timing is wall clock around gpu.sync() (submit + onSubmittedWorkDone): the runtime records all dispatches
 * into its own compute pass, so per-pass timestamp queries are not available to the bench. Fast cases run
 * several calls per sample so that the submit/wait overhead (~0.1-1 ms) does not dominate.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { matmul, matmulFlops, matmulConfigsFor, configName, tileName, type MatmulConfig, type MatmulTile, type MatmulVariant } from '../tensor/ops/matmul.js';
import {
  conv2dForward, conv2dBackwardData, conv2dBackwardWeights, conv2dFlops, convGeom, chooseConvAlgo, CONV_ALGOS,
  type ConvAlgo, type ConvPass, type Conv2dParams,
} from '../tensor/ops/conv2d.js';
import { conv2dWinograd, useWinograd, winogradSupported, winogradTile, winogradWeights } from '../tensor/ops/conv2d_winograd.js';
import { Rng, randomArray } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { measureLoads, measurePeak, type LoadResult, type PeakResult } from './peak.js';

export interface KernelBenchOptions {
  /** Network input size (default 416); layer shapes scale with size/416. */
  size?: number;
  /** Timed repeats per case after the warm-up (default 5; fewer when a case is slow, at least `minIters`). */
  iters?: number;
  /** Write the result as JSON to this file. */
  json?: string;
  /**
   * Conv algorithms to time (default: every one except 'auto', then 'winograd': the forward of the 3x3
   * stride-1 layers through conv2d_winograd.ts, the weights transformed once as inference keeps them; 'auto'
   * is reported as the one it picks).
   */
  variants?: string[];
  /** Passes to time (default: fwd, bwd_data, bwd_weights). */
  passes?: ConvPass[];
  /** Only these yolov3-tiny layer indices (default: all 13 conv layers). */
  layers?: number[];
  /** Matmul sizes [M, N, K] for the ceiling sweep (default [[512,512,512],[1024,1024,1152]]). */
  matmulSizes?: [number, number, number][];
  /** Matmul configs for the sweep (default: the MATMUL_CONFIGS this device supports). */
  matmulConfigs?: readonly MatmulConfig[];
  /** How many of the best configs at the first size are re-measured at the larger sizes (default 3). */
  matmulTop?: number;
  /** Seconds after which a case stops repeating once it has `minIters` samples (default 6). */
  budgetSeconds?: number;
  /** Minimum timed repeats per case (default 3). */
  minIters?: number;
  /**
   * Quick mode (for --size 96 smoke runs): up to 3 repeats (2 once a case took a second), only the best
   * matmul config is re-measured at the larger size. Explicit options win.
   */
  quick?: boolean;
  /**
   * The device peak every case is compared with: true (default) measures it first (src/perf/peak.ts, a few
   * seconds), a PeakResult reuses one, false leaves it out (fraction_of_peak NaN, `peak` null).
   */
  peak?: boolean | PeakResult;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface MatmulSample {
  variant: MatmulVariant;
  config: string;
  tile: MatmulTile;
  M: number;
  N: number;
  K: number;
  ms: number;
  gflops: number;
  /** Median process CPU ms per call (see ConvSample.cpu_ms). */
  cpu_ms: number;
  /** FLOPs / (cpu_ms / CPU count) (see ConvSample.gflops_cpu). */
  gflops_cpu: number;
  samples: number;
}

export interface ConvSample {
  layer: number;
  batch: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
  groups: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
  /** FLOPs of the pass: 2*B*Cout*OH*OW*(Cin/g)*kH*kW. */
  flops: number;
  pass: ConvPass;
  variant: string;
  /** Whether 'auto' picks this variant for this layer and pass. */
  auto: boolean;
  /** Median wall milliseconds per call. */
  ms: number;
  /** Fastest sample, per call. */
  ms_min: number;
  gflops: number;
  fraction_of_matmul: number;
  /** gflops / the device peak (NaN without a peak). */
  fraction_of_peak: number;
  /**
   * GFLOP/s of the ceiling's matmul config (at the first sweep size) re-measured just before this layer:
   * the reference under the machine's load at that moment (other processes come and go on a shared machine).
   */
  matmul_now_gflops: number;
  /** gflops / matmul_now_gflops. */
  fraction_of_matmul_now: number;
  /**
   * Median process CPU milliseconds per call, all threads (JS, Dawn, the CPU adapter's worker threads).
   * On a CPU adapter sharing the machine with other work this grows much less than wall time.
   */
  cpu_ms: number;
  /**
   * FLOPs / (cpu_ms / CPU count): what the pass would reach with every core to itself, assuming it
   * scales over all of them. Meaningful on CPU adapters only (on a GPU, CPU time is mostly idle waiting).
   */
  gflops_cpu: number;
  samples: number;
  /** Calls per timed sample. */
  calls: number;
  /** When a case could not run (error message); then ms/gflops are NaN (null in JSON). */
  error?: string;
}

export interface KernelBenchResult {
  device: string;
  adapter: { kind: string; backend: string; description: string; featureLevel: string };
  size: number;
  date: string;
  host: { cpus: number; cpu_model: string; loadavg_start: number[]; loadavg_end: number[] };
  timing: string;
  /** The device's measured FMA peak (src/perf/peak.ts); null when not measured. */
  peak: PeakResult | null;
  /** What storage loads cost (src/perf/peak.ts measureLoads), measured with the peak; absent in older results. */
  loads?: LoadResult | null;
  matmul: {
    best: { variant: MatmulVariant; config: string; gflops: number; ms: number; M: number; N: number; K: number; gflops_cpu: number; fraction_of_peak: number };
    sweep: MatmulSample[];
  };
  conv: ConvSample[];
  seconds: number;
}

/** A conv layer of yolov3-tiny at 416: spatial size = size / div. */
export interface ConvLayer {
  layer: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  div: number;
}

/** The 13 convolutional layers of yolov3-tiny (cfg indices), input 416x416. */
export const YOLOV3_TINY_CONVS: readonly ConvLayer[] = [
  { layer: 0, cin: 3, cout: 16, k: 3, stride: 1, div: 1 },
  { layer: 2, cin: 16, cout: 32, k: 3, stride: 1, div: 2 },
  { layer: 4, cin: 32, cout: 64, k: 3, stride: 1, div: 4 },
  { layer: 6, cin: 64, cout: 128, k: 3, stride: 1, div: 8 },
  { layer: 8, cin: 128, cout: 256, k: 3, stride: 1, div: 16 },
  { layer: 10, cin: 256, cout: 512, k: 3, stride: 1, div: 32 },
  { layer: 12, cin: 512, cout: 1024, k: 3, stride: 1, div: 32 },
  { layer: 13, cin: 1024, cout: 256, k: 1, stride: 1, div: 32 },
  { layer: 14, cin: 256, cout: 512, k: 3, stride: 1, div: 32 },
  { layer: 15, cin: 512, cout: 255, k: 1, stride: 1, div: 32 },
  { layer: 18, cin: 256, cout: 128, k: 1, stride: 1, div: 32 },
  { layer: 21, cin: 384, cout: 256, k: 3, stride: 1, div: 16 },
  { layer: 22, cin: 256, cout: 255, k: 1, stride: 1, div: 16 },
];

export const CONV_PASSES: readonly ConvPass[] = ['fwd', 'bwd_data', 'bwd_weights'];

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

interface Timing {
  ms: number;
  msMin: number;
  /** Median process CPU milliseconds per call (all threads: JS, Dawn, the CPU adapter's workers). */
  cpuMs: number;
  samples: number;
  calls: number;
}

/**
 * Times `run` (which records dispatches and returns tensors to dispose): one warm-up (compiles pipelines),
 * then samples of `calls` calls each (calls chosen so a sample takes >= ~30 ms), until `iters` samples or,
 * past `budget` seconds, `minIters` samples. Returns per-call milliseconds.
 */
async function timeIt(gpu: Gpu, run: () => Tensor | Tensor[], o: { iters: number; minIters: number; budget: number }): Promise<Timing> {
  const cpu: number[] = [];
  const once = async (calls: number) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const outs: Tensor[] = [];
    for (let i = 0; i < calls; i++) {
      const r = run();
      if (Array.isArray(r)) outs.push(...r);
      else outs.push(r);
      // Free outputs in stream order as we go (the pool reuses them only after the queue moved on).
      if (calls > 1) for (const t of outs.splice(0)) t.dispose();
    }
    await gpu.sync();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000 / calls);
    for (const t of outs) t.dispose();
    return ms;
  };
  const warm = await once(1);
  // A second call measures the steady state (the first one includes pipeline compilation); when one call
  // is long enough to time on its own it is also the first sample.
  const samples: number[] = [];
  let calls = 1;
  let firstCpu = 1; // cpu[] entries of the warm-up (and probe when it is not a sample) are not samples
  if (warm < 2000) {
    const probe = await once(1);
    if (probe < 30) {
      calls = Math.min(64, Math.ceil(30 / Math.max(probe, 0.05)));
      firstCpu = 2;
    } else samples.push(probe);
  }
  const t0 = performance.now();
  while (samples.length < o.iters) {
    if (samples.length >= o.minIters && performance.now() - t0 > o.budget * 1000) break;
    samples.push((await once(calls)) / calls);
  }
  return { ms: median(samples), msMin: Math.min(...samples), cpuMs: median(cpu.slice(firstCpu)), samples: samples.length, calls };
}

function scaledSpatial(size: number, div: number): number {
  return Math.max(1, Math.round(size / div));
}

const fmtG = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-');
const fmtMs = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-');
const fmtPct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(0)}%` : '-');

/** Runs the matmul sweep and the conv2d layer benchmarks; see the file comment. */
export async function benchKernels(gpu: Gpu, opts: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const log = opts.log ?? (() => {});
  const size = opts.size ?? 416;
  if (!Number.isInteger(size) || size < 32) throw new Error(`bench kernels: size must be an integer >= 32, got ${size}`);
  const q = opts.quick ?? false;
  const iters = Math.max(1, opts.iters ?? (q ? 3 : 5));
  const minIters = Math.min(iters, Math.max(1, opts.minIters ?? (q ? 2 : 3)));
  const budget = opts.budgetSeconds ?? (q ? 1 : 6);
  const timing = { iters, minIters, budget };
  const allAlgos = [...CONV_ALGOS.filter((a) => a !== 'auto'), 'winograd'];
  const variants = (opts.variants ?? allAlgos) as string[];
  for (const v of variants) {
    if (v !== 'winograd' && !(CONV_ALGOS as readonly string[]).includes(v)) throw new Error(`bench kernels: unknown conv variant '${v}' (use ${[...CONV_ALGOS, 'winograd'].join(', ')})`);
  }
  const passes = opts.passes ?? [...CONV_PASSES];
  const layers = YOLOV3_TINY_CONVS.filter((l) => !opts.layers || opts.layers.includes(l.layer));
  const started = performance.now();
  const loadStart = os.loadavg();
  const ncpu = os.cpus().length;

  log(`device: ${gpu.info.summary}`);
  log(`host: ${os.cpus().length} CPU(s), load average ${loadStart.map((v) => v.toFixed(2)).join(' ')}`);

  // ---------------------------------------------------------------- device peak
  const peak = opts.peak === false ? null : opts.peak === undefined || opts.peak === true ? await measurePeak(gpu, { log }) : opts.peak;
  const ofPeak = (gflops: number) => (peak ? gflops / peak.gflops : NaN);
  const peakNote = (gflops: number) => (peak ? `, ${fmtPct(ofPeak(gflops))} of peak` : '');
  // what a load costs against that peak (measured when the peak is: a few seconds)
  const loads = opts.peak === undefined || opts.peak === true ? await measureLoads(gpu, { log, peak: peak ?? undefined }) : null;

  // ---------------------------------------------------------------- matmul ceiling
  const sizes = opts.matmulSizes ?? [[512, 512, 512], [1024, 1024, 1152]];
  const configs = opts.matmulConfigs ?? matmulConfigsFor(gpu);
  const top = opts.matmulTop ?? (q ? 1 : 3);
  const sweep: MatmulSample[] = [];
  const rng = new Rng(1234);
  let candidates = [...configs];
  for (const [si, [M, N, K]] of sizes.entries()) {
    const a = Tensor.from(gpu, [M, K], randomArray(rng, M * K), 'bench.A');
    const b = Tensor.from(gpu, [K, N], randomArray(rng, K * N), 'bench.B');
    const here: MatmulSample[] = [];
    for (const cfg of candidates) {
      const t = await timeIt(gpu, () => matmul(a, b, cfg), timing);
      const gflops = matmulFlops(M, N, K) / (t.ms * 1e6);
      const s: MatmulSample = {
        variant: cfg.variant, config: tileName(cfg.tile), tile: cfg.tile, M, N, K, ms: t.ms, gflops,
        cpu_ms: t.cpuMs, gflops_cpu: matmulFlops(M, N, K) / ((t.cpuMs / ncpu) * 1e6), samples: t.samples,
      };
      here.push(s);
      sweep.push(s);
      log(`matmul ${M}x${N}x${K} ${configName(cfg).padEnd(26)} ${fmtMs(t.ms).padStart(7)} ms ${fmtG(gflops).padStart(6)} GFLOP/s  (cpu ${fmtMs(t.cpuMs)} ms, ${fmtG(s.gflops_cpu)} GFLOP per ${ncpu} cpu-s${peakNote(gflops)})`);
    }
    a.dispose();
    b.dispose();
    if (si === 0) {
      // Keep the best `top` configs overall and (unless quick) the best one of each variant for the larger sizes.
      const ranked = [...here].sort((x, y) => y.gflops - x.gflops);
      const keep = new Set<MatmulSample>(ranked.slice(0, top));
      if (!q) for (const v of new Set(here.map((h) => h.variant))) keep.add(ranked.find((r) => r.variant === v)!);
      candidates = candidates.filter((c) => [...keep].some((k) => k.variant === c.variant && k.config === tileName(c.tile)));
    }
  }
  const bestS = sweep.reduce((p, c) => (c.gflops > p.gflops ? c : p));
  const best = {
    variant: bestS.variant, config: bestS.config, gflops: bestS.gflops, ms: bestS.ms, M: bestS.M, N: bestS.N, K: bestS.K,
    gflops_cpu: Math.max(...sweep.map((x) => x.gflops_cpu)), fraction_of_peak: ofPeak(bestS.gflops),
  };
  log(`matmul ceiling: ${fmtG(best.gflops)} GFLOP/s (${best.variant} ${best.config} at ${best.M}x${best.N}x${best.K}${peakNote(best.gflops)})`);

  // The best config at the first sweep size, re-timed before every layer as the load-matched reference.
  const [rM, rN, rK] = sizes[0];
  const firstBest = sweep.filter((x) => x.M === rM && x.N === rN && x.K === rK).reduce((p, c) => (c.gflops > p.gflops ? c : p));
  const refCfg: MatmulConfig = { variant: firstBest.variant, tile: firstBest.tile };
  const refA = Tensor.from(gpu, [rM, rK], randomArray(rng, rM * rK), 'bench.refA');
  const refB = Tensor.from(gpu, [rK, rN], randomArray(rng, rK * rN), 'bench.refB');
  const matmulNow = async () => {
    const t = await timeIt(gpu, () => matmul(refA, refB, refCfg), { iters: 3, minIters: 3, budget: 0 });
    return matmulFlops(rM, rN, rK) / (t.ms * 1e6);
  };

  // ---------------------------------------------------------------- conv2d layers
  const conv: ConvSample[] = [];
  for (const L of layers) {
    const now = passes.length && variants.length ? await matmulNow() : NaN;
    const hw = scaledSpatial(size, L.div);
    const pad = Math.floor(L.k / 2);
    const p: Conv2dParams = { stride: L.stride, pad };
    const xShape = [1, L.cin, hw, hw];
    const wShape = [L.cout, L.cin, L.k, L.k];
    const g = convGeom(xShape, wShape, p);
    const flops = conv2dFlops(xShape, wShape, p);
    const x = Tensor.from(gpu, xShape, randomArray(rng, L.cin * hw * hw), `bench.x${L.layer}`);
    const w = Tensor.from(gpu, wShape, randomArray(rng, L.cout * L.cin * L.k * L.k, -0.1, 0.1), `bench.w${L.layer}`);
    const bias = Tensor.from(gpu, [L.cout], randomArray(rng, L.cout), `bench.b${L.layer}`);
    const dy = Tensor.from(gpu, [1, L.cout, g.OH, g.OW], randomArray(rng, L.cout * g.OH * g.OW), `bench.dy${L.layer}`);
    const shape = `${L.cin}->${L.cout} k${L.k} s${L.stride} @${hw}`;
    for (const pass of passes) {
      const autoPick = chooseConvAlgo(gpu.info.kind, g, pass);
      for (const variant of variants) {
        // winograd: the forwards it takes, with the weights transformed once (what inference keeps); its '*' says
        // that inference at precision auto runs it (useWinograd)
        const wino = variant === 'winograd';
        if (wino && (pass !== 'fwd' || !winogradSupported(g))) continue;
        const u = wino ? winogradWeights(w, undefined, winogradTile(g)) : null;
        // tile's backward passes (what training runs on lavapipe): dx through the forward tile kernel, dw with
        // conv2d_bwd_tile.wgsl; gemm_reg's kernels where tileBackwardSupported says no (its 'tile' column there)
        const algo = variant as ConvAlgo;
        const run = (): Tensor =>
          u ? conv2dWinograd(x, u, bias, p, 'leaky')
          : pass === 'fwd' ? conv2dForward(x, w, bias, p, algo, 'leaky')
            : pass === 'bwd_data' ? conv2dBackwardData(dy, w, xShape, p, algo)
              : conv2dBackwardWeights(x, dy, wShape, p, algo);
        const base = {
          layer: L.layer, batch: 1, cin: L.cin, cout: L.cout, k: L.k, stride: L.stride, pad, groups: 1, h: hw, w: hw, oh: g.OH, ow: g.OW,
          flops, pass, variant, auto: wino ? useWinograd(gpu, g) : variant === autoPick || (variant === 'auto'),
        };
        try {
          const t = await timeIt(gpu, run, timing);
          const gflops = flops / (t.ms * 1e6);
          conv.push({
            ...base, ms: t.ms, ms_min: t.msMin, gflops, fraction_of_matmul: gflops / best.gflops, fraction_of_peak: ofPeak(gflops),
            matmul_now_gflops: now, fraction_of_matmul_now: gflops / now,
            cpu_ms: t.cpuMs, gflops_cpu: flops / ((t.cpuMs / ncpu) * 1e6), samples: t.samples, calls: t.calls,
          });
          log(`conv ${String(L.layer).padStart(2)} ${shape.padEnd(24)} ${pass.padEnd(11)} ${variant.padEnd(10)} ${fmtMs(t.ms).padStart(8)} ms ${fmtG(gflops).padStart(6)} GFLOP/s ${fmtPct(gflops / best.gflops).padStart(5)} of matmul (${fmtPct(gflops / now)} of ${fmtG(now)} now)${peakNote(gflops)}`);
        } catch (e) {
          const msg = (e as Error).message.split('\n')[0];
          conv.push({
            ...base, ms: NaN, ms_min: NaN, gflops: NaN, fraction_of_matmul: NaN, fraction_of_peak: NaN, matmul_now_gflops: now, fraction_of_matmul_now: NaN,
            cpu_ms: NaN, gflops_cpu: NaN, samples: 0, calls: 0, error: msg,
          });
          log(`conv ${String(L.layer).padStart(2)} ${shape.padEnd(24)} ${pass.padEnd(11)} ${variant.padEnd(10)} FAILED: ${msg}`);
          await gpu.sync().catch(() => {});
        } finally {
          u?.dispose();
        }
      }
    }
    for (const t of [x, w, bias, dy]) t.dispose();
  }
  refA.dispose();
  refB.dispose();

  const result: KernelBenchResult = {
    device: gpu.info.summary,
    adapter: { kind: gpu.info.kind, backend: gpu.info.backend, description: gpu.info.description, featureLevel: gpu.info.featureLevel },
    size,
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? '?', loadavg_start: loadStart, loadavg_end: os.loadavg() },
    timing: `wall clock around gpu.sync(), median of up to ${iters} samples (at least ${minIters}; fewer than ${iters} once a case passed ${budget} s) after warm-up; cpu_ms/gflops_cpu from process CPU time`,
    peak,
    loads,
    matmul: { best, sweep },
    conv,
    seconds: (performance.now() - started) / 1000,
  };
  if (opts.json) writeJson(opts.json, result);
  return result;
}

/** Writes a bench result as JSON (atomically; NaN as null). */
export function writeJson(file: string, r: KernelBenchResult & { git?: { commit: string; dirty: string[]; note?: string } }): void {
  // NaN (a failed case) is written as null.
  writeFileAtomic(file, `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
}

/** A plain-text (markdown-compatible) report of a bench result: the matmul sweep, then one table per pass. */
export function formatKernelBench(r: KernelBenchResult): string {
  const out: string[] = [];
  out.push(`device: ${r.device}`);
  out.push(`input size ${r.size}, batch 1; ${r.timing}`);
  out.push(`host: ${r.host.cpus} CPU(s) ${r.host.cpu_model}; load average at start ${r.host.loadavg_start.map((v) => v.toFixed(2)).join(' ')}, at end ${r.host.loadavg_end.map((v) => v.toFixed(2)).join(' ')}`);
  out.push('');
  const b = r.matmul.best;
  // Results written before the peak probe existed have no `peak`.
  const pk = r.peak ?? null;
  const ofPeak = (gflops: number) => (pk ? gflops / pk.gflops : NaN);
  if (pk) {
    const v = pk.variants.find((x) => x.acc === pk.best.acc && x.wg === pk.best.wg);
    out.push(`device peak: ${fmtG(pk.gflops)} GFLOP/s (kernels/peak.wgsl register FMAs, best of ${pk.variants.length} variants: ${pk.best.acc} vec4 accumulators, workgroup ${pk.best.wg}${v ? `, ${v.invocations} invocations` : ''}; ${fmtG(pk.gflops_cpu)} GFLOP per ${r.host.cpus} cpu-s)`);
  }
  const ld = r.loads ?? null;
  if (ld) {
    const rate = (w: string, a: string) => ld.variants.find((x) => x.width === w && x.addresses === a)?.gfloats ?? NaN;
    out.push(`storage loads (kernels/load_probe.wgsl, G floats/s): f32 per-lane ${fmtG(rate('f32', 'lane'))}, f32 uniform ${fmtG(rate('f32', 'uniform'))}, vec4 per-lane ${fmtG(rate('vec4', 'lane'))}, vec4 uniform ${fmtG(rate('vec4', 'uniform'))}${ld.fmasPerLoad !== undefined ? `; one f32 load costs the time of ${ld.fmasPerLoad.toFixed(1)} FMAs at the peak` : ''}`);
  }
  out.push(`matmul ceiling: ${fmtG(b.gflops)} GFLOP/s (${b.variant} ${b.config}, ${b.M}x${b.N}x${b.K}, ${fmtMs(b.ms)} ms)${pk ? `, ${fmtPct(ofPeak(b.gflops))} of the device peak` : ''}`);
  out.push('');
  out.push(`| matmul M x N x K | variant | tile | ms | GFLOP/s | GFLOP per ${r.host.cpus} cpu-s |${pk ? ' % of peak |' : ''}`);
  out.push(`|---|---|---|---:|---:|---:|${pk ? '---:|' : ''}`);
  for (const s of r.matmul.sweep) out.push(`| ${s.M}x${s.N}x${s.K} | ${s.variant} | ${s.config} | ${fmtMs(s.ms)} | ${fmtG(s.gflops)} | ${fmtG(s.gflops_cpu)} |${pk ? ` ${fmtPct(ofPeak(s.gflops))} |` : ''}`);
  const passes = [...new Set(r.conv.map((c) => c.pass))];
  for (const pass of passes) {
    const rows = r.conv.filter((c) => c.pass === pass);
    // per pass: tile is a forward algorithm
    const variants = [...new Set(rows.map((c) => c.variant))];
    const layers = [...new Set(rows.map((c) => c.layer))];
    out.push('');
    out.push(`conv2d ${pass}: ms, GFLOP/s, % of the matmul ceiling (${fmtG(b.gflops)} GFLOP/s) and, in brackets, % of the ceiling's config re-timed just before the layer (column "mm now")${pk ? `; "pk": % of the device peak (${fmtG(pk.gflops)} GFLOP/s)` : ''}; * = what 'auto' picks (winograd: what inference runs at precision auto)${pass === 'fwd' ? '; winograd: at the tile inference takes untuned (F(2x2) on maps up to 10x10, else F(4x4)), effective GFLOP/s (the direct conv\'s FLOPs over its time), only where it applies' : ''}`);
    out.push('');
    const pkHead = pk ? ' | pk' : '';
    const pkRule = pk ? '|---:' : '';
    out.push(`| layer | shape | GFLOP | mm now | ${variants.map((v) => `${v} ms | GFLOP/s | %${pkHead}`).join(' | ')} |`);
    out.push(`|---:|---|---:|---:|${variants.map(() => `---:|---:|---:${pkRule}`).join('|')}|`);
    const empty = pk ? '- | - | - | -' : '- | - | -';
    const totals = new Map<string, { ms: number; flops: number; ok: boolean }>(variants.map((v) => [v, { ms: 0, flops: 0, ok: true }]));
    let totalFlops = 0;
    for (const layer of layers) {
      const lr = rows.filter((c) => c.layer === layer);
      const f = lr[0];
      totalFlops += f.flops;
      const cells = variants.map((v) => {
        const c = lr.find((x) => x.variant === v);
        const t = totals.get(v)!;
        if (!c || !Number.isFinite(c.ms)) {
          t.ok = false;
          return c?.error ? `failed${empty.slice(1)}` : empty;
        }
        t.ms += c.ms;
        t.flops += c.flops;
        const now = Number.isFinite(c.fraction_of_matmul_now ?? NaN) ? ` (${fmtPct(c.fraction_of_matmul_now)})` : '';
        return `${fmtMs(c.ms)}${c.auto ? '*' : ''} | ${fmtG(c.gflops)} | ${fmtPct(c.fraction_of_matmul)}${now}${pk ? ` | ${fmtPct(ofPeak(c.gflops))}` : ''}`;
      });
      out.push(`| ${layer} | ${f.cin}->${f.cout} k${f.k} @${f.h} | ${(f.flops / 1e9).toFixed(3)} | ${fmtG(f.matmul_now_gflops ?? NaN)} | ${cells.join(' | ')} |`);
    }
    const tcells = variants.map((v) => {
      const t = totals.get(v)!;
      if (!t.ok || t.ms === 0) return empty;
      const gf = t.flops / (t.ms * 1e6);
      return `${fmtMs(t.ms)} | ${fmtG(gf)} | ${fmtPct(gf / b.gflops)}${pk ? ` | ${fmtPct(ofPeak(gf))}` : ''}`;
    });
    out.push(`| all | | ${(totalFlops / 1e9).toFixed(3)} | | ${tcells.join(' | ')} |`);
    // CPU-time view (robust to other load on a shared machine): totals per variant.
    const cpuCells = variants.map((v) => {
      const vr = rows.filter((c) => c.variant === v);
      if (!vr.length || vr.some((c) => !Number.isFinite(c.cpu_ms))) return `${v} -`;
      const cpuMs = vr.reduce((a, c) => a + c.cpu_ms, 0);
      const gf = vr.reduce((a, c) => a + c.flops, 0) / ((cpuMs / r.host.cpus) * 1e6);
      return `${v} ${fmtG(gf)} (${fmtPct(gf / b.gflops_cpu)}${pk ? `; ${fmtPct(gf / pk.gflops_cpu)} of the peak's` : ''})`;
    });
    out.push('');
    out.push(`all layers, GFLOP per ${r.host.cpus} cpu-s (% of the matmul's ${fmtG(b.gflops_cpu)}${pk ? `; of the peak's ${fmtG(pk.gflops_cpu)}` : ''}): ${cpuCells.join(', ')}`);
  }
  const failed = r.conv.filter((c) => c.error);
  if (failed.length) {
    out.push('');
    out.push('failures:');
    for (const c of failed) out.push(`  layer ${c.layer} ${c.pass} ${c.variant}: ${c.error}`);
  }
  out.push('');
  out.push(`bench took ${r.seconds.toFixed(0)} s`);
  return out.join('\n');
}
