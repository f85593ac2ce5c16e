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
import { WINOGRAD_PICKS, conv2dWinograd, winogradSupported, winogradWeights } from './conv2d_winograd.js';
import {
  conv2dBackwardData, conv2dBackwardWeights, conv2dForward, convGeom, convTuneKey, chooseConvAlgo, parseConvPick, pointwiseSupported, tileSupported,
  tileBackwardSupported,
  type Conv2dParams, type ConvGeom, type ConvPass,
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
  /** The winner: an algorithm, gemm_reg with a register tiling (`gemm_reg@<maxTM>x<TN>x<WG>`) or tile with a block (`tile@<TM>x<TR>x<TN>`). */
  pick: string;
  /** The heuristic's choice, for comparison. */
  heuristic: string;
  /** Median ms per candidate measured. */
  ms: Record<string, number>;
  /** True when the table already had a measured/cached entry and nothing was run. */
  cached: boolean;
}

export interface AutotuneOptions {
  /**
   * Candidates to try: algorithm names, gemm_reg tilings (`gemm_reg@16x2x64`) and tile blocks (`tile@16x4x2`);
   * default CONV_TUNE_CANDIDATES. Those that do not apply to a case are left out (convTuneCandidates).
   */
  algos?: readonly string[];
  /** Timed samples per algorithm (default 3). */
  samples?: number;
  /** Re-measure even when the table has an entry (default false: measured/cached entries are kept). */
  force?: boolean;
  log?: (line: string) => void;
}

/**
 * The algorithms, then gemm_reg register tilings other than its default 16x4x64 (rows x columns x
 * invocations): on lavapipe the best tiling moved with the shape (fewer accumulators for long reductions,
 * more rows for wide outputs) by up to 2x in a sweep over yolov3-tiny and demo.cfg shapes; then tile blocks
 * (channels x pixel rows x pixel columns), within ~15-35% of each other on yolov3-tiny's 3x3 layers on
 * lavapipe, each ahead on some shape (13x13 maps waste different fractions of a tile). Plain `tile` is what
 * `auto` runs untuned (tileBlockFor: 16x2x4 or 16x2x7 by the map's width and the stride); both blocks are also listed.
 */
export const CONV_TUNE_CANDIDATES: readonly string[] = [
  'direct', 'gemm_tiled', 'gemm_reg', 'gemm_reg@16x2x64', 'gemm_reg@32x2x64', 'gemm_reg@8x8x64', 'gemm_reg@16x4x32', 'gemm_reg@8x4x64',
  'tile', 'tile@16x4x2', 'tile@32x1x4', 'tile@16x1x8', 'tile@8x2x4', 'tile@16x2x7', 'tile@16x2x4', 'winograd', 'winograd2',
];

/**
 * The candidates that apply to a pass of a shape: tile blocks only for the forward of shapes it computes;
 * plain tile also for the backward passes it has (tileBackwardSupported: dx through the forward, dw with
 * conv2d_bwd_tile.wgsl, whose block the forward's tile@ picks do not set). Elsewhere tile would time
 * gemm_reg again. With `gpu`: no tile blocks for a forward that conv2d_pw.wgsl computes (pointwiseSupported,
 * float32), which has no block: they would time the same kernel again.
 */
export function convTuneCandidates(g: ConvGeom, pass: ConvPass, algos: readonly string[] = CONV_TUNE_CANDIDATES, gpu?: Gpu): string[] {
  const pointwise = pass === 'fwd' && gpu !== undefined && pointwiseSupported(gpu, g, 'f32');
  return algos.filter((a) => {
    if (WINOGRAD_PICKS.has(a)) return pass === 'fwd' && winogradSupported(g);
    if (pointwise && a.startsWith('tile@')) return false;
    return !a.startsWith('tile') || (pass === 'fwd' ? tileSupported(g) : a === 'tile' && tileBackwardSupported(g, pass));
  });
}

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
    return { key, label: c.label, pick: known.pick, heuristic, ms: known.ms ?? {}, cached: true };
  }
  const algos = convTuneCandidates(g, c.pass, opts.algos, gpu);
  if (!algos.length) throw new Error(`autotune: none of the candidates (${(opts.algos ?? []).join(', ')}) applies to ${key}`);
  const rng = new Rng(0x7e57 ^ g.Cout ^ (g.H << 8));
  const dyShape = [g.B, g.Cout, g.OH, g.OW];
  const a = c.pass === 'bwd_data' ? randomTensor(gpu, dyShape, rng) : randomTensor(gpu, c.x, rng);
  const b = c.pass === 'fwd' ? randomTensor(gpu, c.w, rng) : c.pass === 'bwd_data' ? randomTensor(gpu, c.w, rng) : randomTensor(gpu, dyShape, rng);
  const wino: Tensor[] = [];
  const runner = (name: string): (() => Tensor) => {
    // Winograd as inference runs it: the weights transformed once (the layer keeps them), not per call
    const n = WINOGRAD_PICKS.get(name);
    if (n && c.pass === 'fwd') {
      const u = winogradWeights(b, undefined, n);
      wino.push(u);
      return () => conv2dWinograd(a, u, null, c.p);
    }
    const algo = parseConvPick(name);
    if (!algo) throw new Error(`autotune: unknown conv candidate '${name}'`);
    if (c.pass === 'fwd') return () => conv2dForward(a, b, null, c.p, algo);
    if (c.pass === 'bwd_data') return () => conv2dBackwardData(a, b, c.x, c.p, algo);
    return () => conv2dBackwardWeights(a, b, c.w, c.p, algo);
  };
  const ms: ConvTuneResult['ms'] = {};
  let best = Infinity;
  try {
    for (const algo of algos) {
      const run = runner(algo);
      const warm = await timeCalls(gpu, run, 1); // compiles
      // The warm-up includes the pipeline's compilation (up to ~3 s for a tile kernel on lavapipe with Mesa's
      // shader cache cold): only a call slower than that by far drops a candidate untimed; the probe decides.
      if (warm > 3 * best + 5000) { ms[algo] = warm; continue; }
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
    for (const u of wino) u.dispose();
  }
  const pick = Object.entries(ms).reduce((x, y) => (y[1] < x[1] ? y : x))[0];
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
