/**
 * Measured autotune of conv2d (burn's kernel/conv/tune): for each (shape, pass) times every algorithm on
 * this device with random data and records the fastest in the device's tuning table (src/gpu/tune.ts),
 * which conv2d's `auto` then follows. Persisting the table is the caller's choice (src/gpu/tune-file.ts
 * saveTuning, done by `yolo-wgsl tune`).
 *
 * Timing: one warm-up call per algorithm (it compiles the pipelines, not timed), then samples of `calls`
 * calls each (calls chosen so a sample lasts >= ~20 ms), each sample ending with a device sync; the median
 * sample decides. An algorithm whose first sample is over 3x the best median so far is dropped after it.
 */
import type { Gpu } from '../../gpu/device.js';
import { tuneTable } from '../../gpu/tune.js';
import { Rng } from '../../util/rng.js';
import { Tensor } from '../tensor.js';
import {
  conv2dBackwardData, conv2dBackwardWeights, conv2dForward, convGeom, convTuneKey, chooseConvAlgo,
  type Conv2dParams, type ConvGeom, type ConvKernelAlgo, type ConvPass,
} from './conv2d.js';

export interface ConvTuneCase {
  /** Input [B, Cin, H, W] and weights [Cout, Cin/groups, kH, kW]. */
  x: readonly number[];
  w: readonly number[];
  p: Conv2dParams;
  pass: ConvPass;
  /** A label for logs (e.g. the layer index). */
  label?: string;
}

export interface ConvTuneResult {
  key: string;
  label?: string;
  pick: ConvKernelAlgo;
  /** The heuristic's choice, for comparison. */
  heuristic: ConvKernelAlgo;
  ms: Partial<Record<ConvKernelAlgo, number>>;
  /** True when the table already had a measured/cached entry and nothing was run. */
  cached: boolean;
}

export interface AutotuneOptions {
  /** Algorithms to try (default all three). */
  algos?: readonly ConvKernelAlgo[];
  /** Timed samples per algorithm (default 3). */
  samples?: number;
  /** Re-measure even when the table has an entry (default false: measured/cached entries are kept). */
  force?: boolean;
  log?: (line: string) => void;
}

const ALL: readonly ConvKernelAlgo[] = ['direct', 'gemm_tiled', 'gemm_reg'];

function randomTensor(gpu: Gpu, shape: readonly number[], rng: Rng): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.uniform(-1, 1);
  return Tensor.from(gpu, shape, d);
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeCalls(gpu: Gpu, run: () => Tensor, calls: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) run().dispose();
  await gpu.sync();
  return (performance.now() - t0) / calls;
}

/** Measures one case (see the file comment) and records the winner. */
export async function autotuneConvCase(gpu: Gpu, c: ConvTuneCase, opts: AutotuneOptions = {}): Promise<ConvTuneResult> {
  const g: ConvGeom = convGeom(c.x, c.w, c.p);
  const key = convTuneKey(g, c.pass);
  const table = tuneTable(gpu);
  const heuristic = chooseConvAlgo(gpu.info.kind, g, c.pass);
  const known = table.get('conv2d', key);
  if (known && !opts.force && known.source !== 'default') {
    return { key, label: c.label, pick: known.pick as ConvKernelAlgo, heuristic, ms: (known.ms ?? {}) as ConvTuneResult['ms'], cached: true };
  }
  const rng = new Rng(0x7e57 ^ g.Cout ^ (g.H << 8));
  const dyShape = [g.B, g.Cout, g.OH, g.OW];
  const a = c.pass === 'bwd_data' ? randomTensor(gpu, dyShape, rng) : randomTensor(gpu, c.x, rng);
  const b = c.pass === 'fwd' ? randomTensor(gpu, c.w, rng) : c.pass === 'bwd_data' ? randomTensor(gpu, c.w, rng) : randomTensor(gpu, dyShape, rng);
  const runner = (algo: ConvKernelAlgo): (() => Tensor) =>
    c.pass === 'fwd' ? () => conv2dForward(a, b, null, c.p, algo)
      : c.pass === 'bwd_data' ? () => conv2dBackwardData(a, b, c.x, c.p, algo)
        : () => conv2dBackwardWeights(a, b, c.w, c.p, algo);
  const ms: ConvTuneResult['ms'] = {};
  let best = Infinity;
  try {
    for (const algo of opts.algos ?? ALL) {
      const run = runner(algo);
      const warm = await timeCalls(gpu, run, 1); // compiles
      if (warm > 3 * best + 50) { ms[algo] = warm; continue; }
      const probe = await timeCalls(gpu, run, 1);
      const calls = Math.max(1, Math.min(32, Math.ceil(20 / Math.max(probe, 0.05))));
      const samples = [calls === 1 ? probe : await timeCalls(gpu, run, calls)];
      const want = opts.samples ?? 3;
      while (samples.length < want && samples[0] <= 3 * best) samples.push(await timeCalls(gpu, run, calls));
      ms[algo] = median(samples);
      best = Math.min(best, ms[algo]!);
    }
  } finally {
    a.dispose();
    b.dispose();
  }
  const pick = (Object.entries(ms) as [ConvKernelAlgo, number][]).reduce((x, y) => (y[1] < x[1] ? y : x))[0];
  const rounded = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Number(v.toPrecision(4))]));
  table.set('conv2d', key, pick, rounded);
  opts.log?.(`tune: ${c.label ? `${c.label} ` : ''}${key}: ${pick}  (${Object.entries(rounded).map(([k, v]) => `${k} ${v} ms`).join(', ')}${pick !== heuristic ? `; heuristic ${heuristic}` : ''})`);
  return { key, label: c.label, pick, heuristic, ms: rounded, cached: false };
}

/** Tunes every case (duplicates by key are measured once). */
export async function autotuneConv(gpu: Gpu, cases: readonly ConvTuneCase[], opts: AutotuneOptions = {}): Promise<ConvTuneResult[]> {
  const out: ConvTuneResult[] = [];
  const seen = new Map<string, ConvTuneResult>();
  for (const c of cases) {
    const key = convTuneKey(convGeom(c.x, c.w, c.p), c.pass);
    const prev = seen.get(key);
    if (prev) { out.push({ ...prev, label: c.label, cached: true }); continue; }
    const r = await autotuneConvCase(gpu, c, opts);
    seen.set(key, r);
    out.push(r);
  }
  return out;
}
