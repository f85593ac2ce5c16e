/**
 * The peers bench: the same network, with the same weights, in the same run, in our engine and in the
 * peers that run here:
 *
 *   yolo-wgsl     this engine on the selected adapter (YOLO_WGSL_BACKEND)
 *   tfjs-webgpu   TF.js (@tensorflow/tfjs) with @tensorflow/tfjs-backend-webgpu on OUR GPUDevice (the same
 *                 Dawn instance and adapter): WebGPUBackend is constructed on gpu.device and registered
 *                 under the name 'webgpu' (its kernels are registered for that name), with
 *                 globalThis.navigator.gpu set to the webgpu package's GPU object (the backend checks it)
 *   tfjs-wasm     TF.js with @tensorflow/tfjs-backend-wasm, SIMD; single-threaded in Node (TF.js turns
 *                 multithreading off under Node; forcing it fails: Node's Worker cannot load its blob: script)
 *   tfjs-cpu      TF.js's plain JS backend (not run unless asked: slow)
 *   ort-cpu       onnxruntime-node, CPU execution provider, 2 intra-op threads (inference only)
 *   ort-webgpu    onnxruntime-node's WebGPU execution provider (its own Dawn, Vulkan: lavapipe here)
 *   darknet       AlexeyAB's Darknet, a binary given with `darknet` (--darknet PATH), as a child process:
 *                 the demo training job (demo.cfg on the demo's synthetic data, img/s, against our trainer on
 *                 the same job) and inference at each size (bench/peers/darknet.ts); listed as not run
 *                 without a binary
 *
 * Models are built from the parsed Darknet layers and the engine's host parameters (bench/peers/tfjs.ts,
 * bench/peers/onnx.ts), seeded random weights (or --weights), so every engine holds the same numbers.
 * Before any timing, every peer's [yolo] outputs at batch 1 are compared with ours:
 * max |diff| / max |ours| must be <= `tolerance` (default 1e-3) or the peer is not timed for that size;
 * and the training graphs' first-step loss must agree to the same relative tolerance.
 *
 * Timed: inference = forward + reading the [yolo] outputs back to the host, input already on the device
 * (the same definition for every engine); training step (engines with one) = forward in training mode
 * (BN with batch statistics) + loss + gradients + SGD update + reading the loss back. The loss is the
 * simple one every engine can run: Σ z² over the head inputs (the convolutions feeding [yolo]); SGD with
 * learning rate 1e-9, no momentum, no weight decay. Ours updates the BN running statistics too, TF.js's
 * graph does not. Optionally also our real YOLO-loss step (`yoloLoss`).
 *
 * Engines are timed round-robin within each case (one sample of each engine in turn) so that load changes
 * on a shared machine hit all of them alike; medians per engine. First-run times (pipeline / kernel
 * compilation) are the first call of each engine on each case.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gpu } from '../src/gpu/device.js';
import { Network } from '../src/darknet/network.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Tape } from '../src/tensor/tape.js';
import { Rng, randomArray } from '../src/util/rng.js';
import { TrainStep, median, networksBySize, syntheticTruths, writeResultJson } from '../src/perf/network.js';
import { buildTfModel, nchwToNhwc, nhwcToNchw, type TfModel } from './peers/tfjs.js';
import { buildOnnxModel } from './peers/onnx.js';
import { registerWasmConv2DBackpropFilter } from './peers/wasm-kernels.js';
import { darknetInfer, darknetTrainJob, oursTrainJob, probeDarknet, writeDarknetData, type DemoJobResult } from './peers/darknet.js';
import { saveWeights } from '../src/darknet/weights.js';
import { encodePng, generateSynth } from '../src/data/synth.js';
import { packageRoot } from '../src/util/paths.js';

export const ENGINES = ['yolo-wgsl', 'yolo-wgsl-replay', 'tfjs-webgpu', 'tfjs-wasm', 'tfjs-cpu', 'ort-cpu', 'ort-webgpu'] as const;
export type EngineName = (typeof ENGINES)[number];
export const DEFAULT_ENGINES: EngineName[] = ['yolo-wgsl', 'yolo-wgsl-replay', 'tfjs-webgpu', 'tfjs-wasm', 'ort-cpu', 'ort-webgpu'];

export interface PeersBenchOptions {
  cfg: string;
  weights?: string;
  seed?: number;
  /** Inference sizes at batch `inferBatch` (default [416, 256]; quick [128]). */
  inferSizes?: number[];
  inferBatch?: number;
  /** Training size and batches (default 256, [1, 4]; quick 128, [1, 2]). Empty batches: no training. */
  trainSize?: number;
  trainBatches?: number[];
  /** Engines to run (default DEFAULT_ENGINES; yolo-wgsl always runs: it is the reference). */
  engines?: EngineName[];
  /** Also time our step with the real YOLO loss (Darknet semantics) for reference (default true; quick false). */
  yoloLoss?: boolean;
  /** Timed samples per engine and case (default 5; quick 3), at least minIters (default 3; quick 2). */
  iters?: number;
  minIters?: number;
  /** Seconds after which a case stops once every engine has minIters samples (default 60; quick 10). */
  budgetSeconds?: number;
  /** Relative tolerance of the output check (default 1e-3). */
  tolerance?: number;
  quick?: boolean;
  /** An AlexeyAB Darknet binary (bench/peers/darknet.ts); without it Darknet is listed as not run. */
  darknet?: string;
  /** Updates of the demo training job for Darknet and our trainer (default 200; quick 30). */
  darknetIters?: number;
  gpu?: Gpu;
  json?: string;
  log?: (line: string) => void;
}

export interface EngineInfo {
  name: string;
  available: boolean;
  /** Why it did not run (missing package, failed init, unsupported layer). */
  reason?: string;
  /** Device / threads / version. */
  description: string;
  /** What it takes to run it here. */
  notes: string[];
}

export interface Check {
  engine: string;
  what: 'infer' | 'train';
  size: number;
  batch: number;
  /** infer: max |ours - peer| over the [yolo] outputs; train: |loss difference|. */
  max_abs_diff: number;
  /** infer: max |ours|; train: |our loss|. */
  scale: number;
  rel: number;
  ok: boolean;
  error?: string;
}

export interface EngineTiming {
  engine: string;
  first_ms: number;
  ms: number;
  ms_min: number;
  cpu_ms: number;
  samples: number;
  error?: string;
}

export interface PeerCase {
  what: 'infer' | 'train';
  size: number;
  batch: number;
  /** The loss of a training case ('sumsq' for every engine; 'darknet' for our extra YOLO-loss row). */
  loss?: string;
  results: EngineTiming[];
}

export interface PeersBenchResult {
  device: string;
  adapter: { kind: string; backend: string; description: string; featureLevel: string };
  cfg: string;
  weights: string;
  date: string;
  host: { cpus: number; cpu_model: string; loadavg_start: number[]; loadavg_end: number[]; node: string };
  timing: string;
  engines: EngineInfo[];
  checks: Check[];
  cases: PeerCase[];
  /** TF.js webgpu median over ours, inference at the largest inference size (same adapter, same run). */
  speedup_vs_tfjs_webgpu_infer: number | null;
  /** TF.js webgpu median over ours, training step at the largest training batch. */
  speedup_vs_tfjs_webgpu_train: number | null;
  /** Every engine's median over ours, per case key (e.g. "infer 416 b1"). */
  ratios: Record<string, Record<string, number>>;
  /** The demo training job, Darknet against our trainer (only with a Darknet binary). */
  demo_job: DemoJobResult | null;
  seconds: number;
}

interface InferRunner {
  /** One forward + readback; returns the [yolo] outputs NCHW by layer index. */
  outputs(): Promise<Map<number, Float32Array>>;
  /** One forward + readback (the timed call). */
  run(): Promise<void>;
  dispose(): void;
}

interface TrainRunner {
  /** One training step; returns the loss (read back). */
  step(): Promise<number>;
  dispose(): void;
}

interface Engine {
  info: EngineInfo;
  infer?(net: Network, x: Float32Array, batch: number): Promise<InferRunner>;
  train?(net: Network, x: Float32Array, batch: number): Promise<TrainRunner>;
  dispose?(): void;
}

const LR = 1e-9;
const fmt = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-');
const errMsg = (e: unknown) => ((e as Error)?.message ?? String(e)).split('\n')[0].slice(0, 300);

type TFModule = typeof import('@tensorflow/tfjs-core');

/** The TF.js module (@tensorflow/tfjs: core + the gradients) loaded once; null with the reason when missing. */
let tfLoaded: { tf: TFModule } | { error: string } | null = null;
async function loadTf(): Promise<{ tf: TFModule } | { error: string }> {
  if (!tfLoaded) {
    try {
      const m = (await import('@tensorflow/tfjs')) as unknown as TFModule & { default?: TFModule };
      const tf = (m.default && typeof m.default.tensor === 'function' ? m.default : m) as TFModule;
      tf.env().set('PROD', true);
      tfLoaded = { tf };
    } catch (e) {
      tfLoaded = { error: `@tensorflow/tfjs is not installed or failed to load (${errMsg(e)}); npm install --save-dev @tensorflow/tfjs` };
    }
  }
  return tfLoaded;
}

// ------------------------------------------------------------------------------------------ engines

/**
 * Prepares `net` for our inference as a user runs it, in float32 like every peer: precision auto (Winograd on
 * the 3x3 convs where winogradPlan picks it), or f32 where a tuned auto would store f16 (bench network
 * --precision times that). A no-op when it already is.
 */
function prepareOurInference(gpu: Gpu, net: Network): void {
  net.prepare(gpu, 'infer', { precision: 'auto' });
  if (net.inferPrecision === 'f16') {
    net.release();
    net.prepare(gpu, 'infer', { precision: 'f32' });
  }
}

/** An inference runner whose call reads `outputs()` back (what every engine's timed call does). */
function readingRunner(outputs: () => Promise<Map<number, Float32Array>>, dispose: () => void): InferRunner {
  return {
    outputs,
    async run() {
      await outputs();
    },
    dispose,
  };
}

function oursEngine(gpu: Gpu, yoloLoss: boolean): Engine & { yoloTrain?: (net: Network, x: Float32Array, batch: number) => Promise<TrainRunner> } {
  const inputTensor = (net: Network, x: Float32Array, batch: number) => {
    const I = net.input;
    return Tape.untracked(() => Tensor.from(gpu, [batch, I.c, I.h, I.w], x, 'peers.input'));
  };
  const trainRunner = async (net: Network, x: Float32Array, batch: number, loss: 'sumsq' | 'darknet'): Promise<TrainRunner> => {
    net.release();
    const step = new TrainStep(gpu, net, loss, loss === 'sumsq' ? { lr: LR, momentum: 0, decay: 0 } : {});
    const xt = inputTensor(net, x, batch);
    const classes = net.heads().find((l) => l.kind === 'yolo')?.options.classes ?? 1;
    const truths = loss === 'sumsq' ? Array.from({ length: batch }, () => []) : syntheticTruths(new Rng(11), batch, classes);
    return {
      async step() {
        step.run(xt, truths);
        return (await step.lastLoss.toArray())[0];
      },
      dispose() {
        step.dispose();
        xt.dispose();
        net.release();
      },
    };
  };
  return {
    info: { name: 'yolo-wgsl', available: true, description: gpu.info.summary, notes: ['this engine: hand-written WGSL through the webgpu package (Dawn); inference at precision auto in float32 storage (Winograd F(4x4, 3x3) or F(2x2, 3x3) on the 3x3 convs where it applies)'] },
    async infer(net, x, batch) {
      net.release();
      prepareOurInference(gpu, net);
      const xt = inputTensor(net, x, batch);
      return readingRunner(async () => {
        const outs = net.forward(xt);
        const m = new Map<number, Float32Array>();
        for (const [k, t] of outs) m.set(k, await t.toArray());
        for (const t of new Set(outs.values())) t.dispose();
        return m;
      }, () => {
        xt.dispose();
        net.release();
      });
    },
    train: (net, x, batch) => trainRunner(net, x, batch, 'sumsq'),
    yoloTrain: yoloLoss ? (net, x, batch) => trainRunner(net, x, batch, 'darknet') : undefined,
  };
}

/**
 * Our inference recorded once and replayed (Network.recordForward, ForwardReplay): what repeated inference at
 * one shape costs without the layers' JavaScript. The same network, precision and bits as `yolo-wgsl`.
 */
function oursReplayEngine(gpu: Gpu): Engine {
  return {
    info: { name: 'yolo-wgsl-replay', available: true, description: gpu.info.summary, notes: ['yolo-wgsl with its forward recorded once and replayed (Network.recordForward); inference only'] },
    async infer(net, x, batch) {
      prepareOurInference(gpu, net);
      const I = net.input;
      const xt = Tape.untracked(() => Tensor.from(gpu, [batch, I.c, I.h, I.w], x, 'peers.replay.input'));
      const replay = net.recordForward(xt);
      return readingRunner(async () => {
        const m = new Map<number, Float32Array>();
        for (const [k, t] of replay.run()) m.set(k, await t.toArray());
        return m;
      }, () => {
        replay.dispose();
        xt.dispose();
      });
    },
  };
}

/** A TF.js engine on an initialized backend. */
function tfEngine(tf: TFModule, backend: string, info: EngineInfo, opts: { train: boolean }): Engine {
  const use = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  const models = new Map<string, TfModel>();
  return {
    info,
    async infer(net, x, batch) {
      await use();
      const I = net.input;
      const model = buildTfModel(tf, net);
      const xin = tf.tensor4d(nchwToNhwc(x, batch, I.c, I.h, I.w), [batch, I.h, I.w, I.c]);
      const forward = async (read: boolean) => {
        await use();
        const ys = tf.tidy(() => model.predict(xin));
        try {
          const data = await Promise.all(ys.map((y) => y.data()));
          if (!read) return null;
          const m = new Map<number, Float32Array>();
          model.heads.forEach((h, i) => {
            const o = net.layers[h].output;
            m.set(h, nhwcToNchw(data[i] as Float32Array, batch, o.c, o.h, o.w));
          });
          return m;
        } finally {
          tf.dispose(ys);
        }
      };
      return {
        outputs: async () => (await forward(true))!,
        async run() {
          await forward(false);
        },
        dispose() {
          model.dispose();
          xin.dispose();
        },
      };
    },
    train: opts.train
      ? async (net, x, batch) => {
        await use();
        const I = net.input;
        const model = buildTfModel(tf, net, { train: true });
        models.set(`${I.w}x${batch}`, model);
        const xin = tf.tensor4d(nchwToNhwc(x, batch, I.c, I.h, I.w), [batch, I.h, I.w, I.c]);
        const opt = tf.train.sgd(LR);
        return {
          async step() {
            await use();
            const cost = opt.minimize(() => model.trainLoss(xin), true, model.variables);
            if (!cost) throw new Error('minimize returned no cost');
            const v = (await cost.data())[0];
            cost.dispose();
            return v;
          },
          dispose() {
            opt.dispose();
            model.dispose();
            xin.dispose();
          },
        };
      }
      : undefined,
  };
}

async function tfWebgpuEngine(gpu: Gpu): Promise<Engine> {
  const info: EngineInfo = { name: 'tfjs-webgpu', available: false, description: `TF.js webgpu backend on ${gpu.info.summary}`, notes: [] };
  const loaded = await loadTf();
  if ('error' in loaded) return { info: { ...info, reason: loaded.error } };
  const tf = loaded.tf;
  try {
    // The backend checks navigator.gpu (Node 20 has no navigator); hand it the very GPU object our device came from.
    const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
    const instance = (gpu as unknown as { instance: unknown }).instance;
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu: instance }, configurable: true, writable: true });
    else if (!g.navigator.gpu) g.navigator.gpu = instance;
    const wg = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { WebGPUBackend: new (d: GPUDevice, i?: unknown) => unknown; version_webgpu?: string };
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', async () => new wg.WebGPUBackend(gpu.device, (gpu.device as unknown as { adapterInfo?: unknown }).adapterInfo) as never, 0);
    if (!(await tf.setBackend('webgpu'))) throw new Error('setBackend(webgpu) returned false');
    info.available = true;
    info.description = `TF.js ${tf.version_core} webgpu backend on our GPUDevice: ${gpu.info.summary}`;
    info.notes.push(
      'npm install --save-dev @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu (pure JS)',
      "WebGPUBackend constructed on our GPUDevice and registered under the name 'webgpu' (its kernels are registered for that name); globalThis.navigator.gpu = the webgpu package's GPU object (Node 20 has no navigator; the backend checks it)",
      'reads with `await tensor.data()` (dataSync() is a synchronous readback WebGPU in Node cannot do)',
    );
    if (gpu.info.featureLevel === 'compatibility') info.notes.push("GL adapter: the device comes from an adapter requested with featureLevel: 'compatibility' (src/gpu/adapter.ts)");
    return tfEngine(tf, 'webgpu', info, { train: true });
  } catch (e) {
    return { info: { ...info, reason: `TF.js webgpu backend failed to start: ${errMsg(e)}` } };
  }
}

async function tfWasmEngine(): Promise<Engine> {
  const info: EngineInfo = { name: 'tfjs-wasm', available: false, description: 'TF.js wasm backend', notes: [] };
  const loaded = await loadTf();
  if ('error' in loaded) return { info: { ...info, reason: loaded.error } };
  const tf = loaded.tf;
  try {
    const w = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as { getThreadsCount(): number };
    if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) returned false');
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const added = registerWasmConv2DBackpropFilter(tf);
    info.available = true;
    info.description = `TF.js ${tf.version_core} wasm backend, ${simd ? 'SIMD' : 'no SIMD'}, ${w.getThreadsCount()} thread(s)`;
    info.notes.push(
      'npm install --save-dev @tensorflow/tfjs-backend-wasm (ships its .wasm files; nothing else to set in Node)',
      "single-threaded: TF.js disables WASM multithreading under Node (flag WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE); forcing it makes the threaded build spawn a Worker from a blob: URL, which Node's Worker refuses (ERR_WORKER_PATH)",
    );
    if (added) info.notes.push("training: the wasm backend has no Conv2DBackpropFilter kernel (conv2d's weight gradient); bench/peers/wasm-kernels.ts registers one composed of the backend's own PadV2/Transpose/Conv2D/Slice kernels");
    return tfEngine(tf, 'wasm', info, { train: true });
  } catch (e) {
    return { info: { ...info, reason: `TF.js wasm backend failed to start: ${errMsg(e)}` } };
  }
}

async function tfCpuEngine(): Promise<Engine> {
  const info: EngineInfo = { name: 'tfjs-cpu', available: false, description: 'TF.js cpu (plain JS) backend', notes: [] };
  const loaded = await loadTf();
  if ('error' in loaded) return { info: { ...info, reason: loaded.error } };
  const tf = loaded.tf;
  try {
    if (!(await tf.setBackend('cpu'))) throw new Error('setBackend(cpu) returned false');
    info.available = true;
    info.description = `TF.js ${tf.version_core} cpu backend (plain JS, 1 thread)`;
    info.notes.push('comes with @tensorflow/tfjs');
    return tfEngine(tf, 'cpu', info, { train: true });
  } catch (e) {
    return { info: { ...info, reason: `TF.js cpu backend failed to start: ${errMsg(e)}` } };
  }
}

type Ort = typeof import('onnxruntime-node');

async function ortEngine(ep: 'cpu' | 'webgpu'): Promise<Engine> {
  const name = ep === 'cpu' ? 'ort-cpu' : 'ort-webgpu';
  const info: EngineInfo = { name, available: false, description: `onnxruntime-node ${ep} execution provider`, notes: [] };
  let ort: Ort;
  try {
    const m = (await import('onnxruntime-node')) as unknown as Ort & { default?: Ort };
    ort = (m.default && typeof m.default.InferenceSession === 'function' ? m.default : m) as Ort;
  } catch (e) {
    return { info: { ...info, reason: `onnxruntime-node is not installed or failed to load (${errMsg(e)}); install it with ONNXRUNTIME_NODE_INSTALL=skip (the repo's .npmrc sets onnxruntime-node-install=skip)` } };
  }
  const version = (ort as unknown as { env?: { versions?: { common?: string } } }).env?.versions?.common ?? '';
  info.available = true;
  info.description = ep === 'cpu'
    ? `onnxruntime-node ${version} CPU execution provider, 2 intra-op threads`
    : `onnxruntime-node ${version} WebGPU execution provider (its own Dawn; Vulkan: lavapipe is the only Vulkan driver here)`;
  info.notes.push(
    'npm install --save-dev onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=skip (or the repo .npmrc line onnxruntime-node-install=skip): its postinstall otherwise downloads CUDA libraries from NuGet, which fails offline and fails npm ci',
    'model: the ONNX graph of the shipped exporter (src/export/onnx, `yolo-wgsl export --format onnx`; opset 13, protobufjs), BN folded; inference only (no training API in onnxruntime-node)',
  );
  if (ep === 'webgpu') info.notes.push("executionProviders: ['webgpu']; it finds libvulkan.so.1 because our Dawn already loaded it into the process, and lavapipe through VK_ICD_FILENAMES (set by src/gpu/adapter.ts); on the GL adapter it still runs on Vulkan");
  return {
    info,
    async infer(net, x, batch) {
      const I = net.input;
      const om = buildOnnxModel(net);
      const so = ep === 'cpu'
        ? { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const }
        : { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' as const };
      const sess = await ort.InferenceSession.create(om.bytes, so);
      const feeds = { [om.input]: new ort.Tensor('float32', x, [batch, I.c, I.h, I.w]) };
      const forward = async () => {
        const r = await sess.run(feeds);
        const m = new Map<number, Float32Array>();
        for (const o of om.outputs) m.set(o.layer, r[o.name].data as Float32Array);
        return m;
      };
      return {
        outputs: forward,
        async run() {
          await forward();
        },
        dispose() {
          void sess.release();
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------------------ timing

interface Runner {
  engine: string;
  call: () => Promise<unknown>;
  first: number;
  ms: number[];
  cpu: number[];
  error?: string;
}

/** Round-robin samples over the runners (see the file comment); fast calls are batched to >= 50 ms per sample. */
async function roundRobin(runners: Runner[], o: { iters: number; minIters: number; budget: number }): Promise<void> {
  const t0 = performance.now();
  const live = () => runners.filter((r) => !r.error);
  for (;;) {
    const rs = live();
    if (!rs.length) return;
    const min = Math.min(...rs.map((r) => r.ms.length));
    if (min >= o.iters) return;
    if (min >= o.minIters && performance.now() - t0 > o.budget * 1000) return;
    for (const r of rs) {
      if (r.ms.length >= o.iters) continue;
      const last = r.ms.length ? r.ms[r.ms.length - 1] : r.first;
      const calls = last < 50 ? Math.min(16, Math.ceil(50 / Math.max(last, 1))) : 1;
      try {
        const c0 = process.cpuUsage();
        const s0 = performance.now();
        for (let i = 0; i < calls; i++) await r.call();
        const ms = (performance.now() - s0) / calls;
        const c = process.cpuUsage(c0);
        r.ms.push(ms);
        r.cpu.push((c.user + c.system) / 1000 / calls);
      } catch (e) {
        r.error = errMsg(e);
      }
    }
  }
}

function timingOf(r: Runner): EngineTiming {
  return { engine: r.engine, first_ms: r.first, ms: median(r.ms), ms_min: r.ms.length ? Math.min(...r.ms) : NaN, cpu_ms: median(r.cpu), samples: r.ms.length, ...(r.error ? { error: r.error } : {}) };
}

function compare(ours: Map<number, Float32Array>, peer: Map<number, Float32Array>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (const [k, a] of ours) {
    const b = peer.get(k);
    if (!b || b.length !== a.length) throw new Error(`head ${k}: ${b ? `${b.length} values, ours ${a.length}` : 'missing'}`);
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(a[i]));
      const d = Math.abs(a[i] - b[i]);
      diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    }
  }
  return { diff, scale };
}

// ------------------------------------------------------------------------------------------ Darknet

/** The bench input [1, 3, size, size] in [0, 1] as an 8-bit PNG (what Darknet's `detector test` reads). */
function writeInputPng(file: string, x: Float32Array, size: number): void {
  const hw = size * size;
  const rgb = new Uint8Array(3 * hw);
  for (let i = 0; i < hw; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = Math.round(255 * Math.min(1, Math.max(0, x[c * hw + i])));
  fs.writeFileSync(file, encodePng(rgb, size, size));
}

/**
 * The demo training job (bench/peers/darknet.ts): the demo's synthetic shapes (its parameters; as many train
 * images as the job uses, at most the demo's 2000), Darknet then our trainer, one after the other.
 */
async function demoTrainingJob(gpu: Gpu, bin: string, dir: string, iterations: number, log: (l: string) => void): Promise<DemoJobResult> {
  const cfg = path.join(packageRoot(), 'fixtures', 'cfg', 'demo.cfg');
  const net = Network.fromFile(cfg);
  const { batch, width: size } = net.net;
  const classes = net.heads().find((l) => l.kind === 'yolo')?.options.classes ?? 1;
  net.dispose();
  const trainCount = Math.min(2000, Math.max(64, iterations * batch));
  const synth = generateSynth({ out: path.join(dir, 'synth'), trainCount, valCount: 8, size: 96, seed: 1 });
  const data = writeDarknetData(path.join(dir, 'darknet-train'), synth.out, classes, synth.names);
  const skip = Math.max(5, Math.round(iterations / 10));
  log(`demo job: ${path.relative(process.cwd(), cfg)}, batch ${batch}, ${size} px, ${iterations} iterations on ${synth.train} synthetic images; img/s from iteration ${skip} on`);
  const timeoutMs = Math.max(300, iterations * 3) * 1000;
  const runs = [
    await darknetTrainJob(bin, { cfg, data, dir: path.join(dir, 'darknet-train'), iterations, batch, skip, timeoutMs, log }),
    await oursTrainJob(gpu, { cfg, data: synth.data, dir: path.join(dir, 'ours-train'), iterations, batch, skip, log }),
  ];
  for (const r of runs) log(`demo job ${r.engine}: ${r.error ? `FAILED: ${r.error}` : `${fmt(r.img_per_s)} img/s (iterations ${r.steady_from}-${r.iterations}); ${fmt(r.img_per_s_total)} img/s over the whole run (${fmt(r.wall_s)} s)${r.data_wait_s !== undefined && r.loop_s ? `; waited for data ${fmt(r.data_wait_s)} s of ${fmt(r.loop_s)} s (${((100 * r.data_wait_s) / r.loop_s).toFixed(1)}%)` : ''}`}`);
  return {
    cfg: path.relative(packageRoot(), cfg), batch, size, iterations, train_images: synth.train,
    data: `src/data/synth.ts: ${synth.train} train images, 96 px, seed 1 (the demo's generator and parameters)`,
    notes: [
      `darknet: \`detector train\` (cfg copy with max_batches=${iterations}); its own [yolo] loss and data loader (built without OpenCV: stb_image, Darknet's augmentation)`,
      'yolo-wgsl: runTrain as `make demo` (YOLOv5 loss, seed 0, no validation); the loader, augmentation and optimizer of the trainer',
      `img/s = images between iteration ${skip} and the last / the time between the two iteration lines (start-up, compilation and the first batches excluded); "whole run" includes them`,
    ],
    runs,
  };
}

// ------------------------------------------------------------------------------------------ the bench

/** Runs the peers bench; see the file comment. */
export async function benchPeers(opts: PeersBenchOptions): Promise<PeersBenchResult> {
  const log = opts.log ?? (() => {});
  const q = opts.quick ?? false;
  const inferSizes = opts.inferSizes ?? (q ? [128] : [416, 256]);
  const inferBatch = opts.inferBatch ?? 1;
  const trainSize = opts.trainSize ?? (q ? 128 : 256);
  const trainBatches = opts.trainBatches ?? (q ? [1, 2] : [1, 4]);
  const yoloLoss = opts.yoloLoss ?? !q;
  const iters = Math.max(1, opts.iters ?? (q ? 3 : 5));
  const minIters = Math.min(iters, Math.max(1, opts.minIters ?? (q ? 2 : 3)));
  const budget = opts.budgetSeconds ?? (q ? 10 : 60);
  const tol = opts.tolerance ?? 1e-3;
  const timing = { iters, minIters, budget };
  const wanted = new Set<EngineName>(['yolo-wgsl', ...(opts.engines ?? DEFAULT_ENGINES)]);
  for (const e of wanted) if (!ENGINES.includes(e)) throw new Error(`bench peers: unknown engine '${e}' (${ENGINES.join(', ')})`);
  for (const s of [...inferSizes, trainSize]) if (!Number.isInteger(s) || s < 32 || s % 32 !== 0) throw new Error(`bench peers: sizes must be multiples of 32, got ${s}`);
  const seed = opts.seed ?? 1;
  const started = performance.now();
  const loadStart = os.loadavg();

  const ownGpu = !opts.gpu;
  const gpu = opts.gpu ?? (await Gpu.create({ log }));
  log(`device: ${gpu.info.summary}`);
  log(`host: ${os.cpus().length} CPU(s), load average ${loadStart.map((v) => v.toFixed(2)).join(' ')}`);

  // engines (each reports why it cannot run instead of failing the bench)
  const ours = oursEngine(gpu, yoloLoss);
  const engines: Engine[] = [ours];
  for (const name of ENGINES) {
    if (name === 'yolo-wgsl' || !wanted.has(name)) continue;
    const e = name === 'yolo-wgsl-replay' ? oursReplayEngine(gpu)
      : name === 'tfjs-webgpu' ? await tfWebgpuEngine(gpu)
      : name === 'tfjs-wasm' ? await tfWasmEngine()
        : name === 'tfjs-cpu' ? await tfCpuEngine()
          : await ortEngine(name === 'ort-cpu' ? 'cpu' : 'webgpu');
    engines.push(e);
  }
  // Darknet: a child process, timed apart from the round-robin (bench/peers/darknet.ts)
  const dk = probeDarknet(opts.darknet);
  const darknetInfo: EngineInfo = {
    name: 'darknet', available: dk.available, description: dk.description, ...(dk.reason ? { reason: dk.reason } : {}),
    notes: dk.available ? [
      'a child process: timed apart from the round-robin, after the in-process engines of each case',
      "inference: `detector test` with the same seeded weights (a .weights file), batch 1; Darknet's own 'Predicted in' time (network_predict: no image loading, no NMS, no readback; BN folded at load); outputs not compared",
      'training: the demo job (demo.cfg on the demo synthetic data) against our trainer on the same job, img/s (see "Demo training job")',
    ] : [],
  };
  engines.push({ info: darknetInfo });
  for (const e of engines) log(`engine ${e.info.name}: ${e.info.available ? e.info.description : `NOT AVAILABLE: ${e.info.reason}`}`);
  const dkDir = dk.available ? fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-darknet-')) : '';
  let dkWeights = '';

  const { netAt, nets } = networksBySize(opts.cfg, opts.weights, seed);
  const inputFor = (size: number, batch: number) => randomArray(new Rng(seed * 1000 + size + batch), batch * 3 * size * size, 0, 1);
  const checks: Check[] = [];
  const cases: PeerCase[] = [];
  const available = engines.filter((e) => e.info.available);

  // ---------------------------------------------------------------- inference
  for (const size of inferSizes) {
    const net = netAt(size);
    const x = inputFor(size, inferBatch);
    const runners: Runner[] = [];
    const disposers: (() => void)[] = [];
    let ref: Map<number, Float32Array> | null = null;
    for (const e of available) {
      if (!e.infer) continue;
      const r: Runner = { engine: e.info.name, call: async () => {}, first: NaN, ms: [], cpu: [] };
      try {
        const runner = await e.infer(net, x, inferBatch);
        disposers.push(() => runner.dispose());
        const t0 = performance.now();
        const outs = await runner.outputs();
        r.first = performance.now() - t0;
        r.call = () => runner.run();
        if (e === ours) ref = outs;
        else {
          const { diff, scale } = compare(ref!, outs);
          const rel = diff / Math.max(scale, 1e-30);
          const ok = rel <= tol;
          checks.push({ engine: e.info.name, what: 'infer', size, batch: inferBatch, max_abs_diff: diff, scale, rel, ok });
          log(`check ${e.info.name} ${size}x${size}: [yolo] outputs max |diff| ${diff.toExponential(2)}, max |ours| ${scale.toFixed(3)}, relative ${rel.toExponential(2)} ${ok ? '<=' : '>'} ${tol}: ${ok ? 'ok' : 'MISMATCH (not timed)'}`);
          if (!ok) r.error = `output mismatch: relative ${rel.toExponential(2)}`;
        }
        log(`first run ${e.info.name} infer ${size}x${size} b${inferBatch}: ${fmt(r.first)} ms`);
      } catch (err) {
        r.error = errMsg(err);
        if (e !== ours) checks.push({ engine: e.info.name, what: 'infer', size, batch: inferBatch, max_abs_diff: NaN, scale: NaN, rel: NaN, ok: false, error: r.error });
        log(`${e.info.name} infer ${size}: FAILED: ${r.error}`);
        if (e === ours) throw err;
      }
      runners.push(r);
    }
    await roundRobin(runners, timing);
    for (const d of disposers) d();
    const c: PeerCase = { what: 'infer', size, batch: inferBatch, results: runners.map(timingOf) };
    if (dk.available) {
      const t: EngineTiming = { engine: 'darknet', first_ms: NaN, ms: NaN, ms_min: NaN, cpu_ms: NaN, samples: 0 };
      try {
        if (inferBatch !== 1) throw new Error('darknet detector test runs batch 1 only');
        if (!dkWeights) {
          dkWeights = path.join(dkDir, 'bench.weights');
          saveWeights(net, dkWeights);
        }
        const image = path.join(dkDir, `input-${size}.png`);
        if (!fs.existsSync(image)) writeInputPng(image, x, size);
        const classes = net.heads().find((l) => l.kind === 'yolo')?.options.classes ?? 1;
        const d = await darknetInfer(opts.darknet!, { cfg: opts.cfg, weights: dkWeights, size, classes, image, dir: path.join(dkDir, 'infer'), calls: iters, timeoutMs: Math.max(120, budget * 2) * 1000 });
        Object.assign(t, { first_ms: d.first_ms, ms: d.ms, ms_min: d.ms_min, samples: d.samples }, d.error ? { error: d.error } : {});
      } catch (err) {
        t.error = errMsg(err);
      }
      c.results.push(t);
    }
    cases.push(c);
    for (const t of c.results) log(`infer ${size}x${size} b${inferBatch} ${t.engine.padEnd(12)} ${t.error ? `FAILED: ${t.error}` : `${fmt(t.ms)} ms (min ${fmt(t.ms_min)}, first ${fmt(t.first_ms)}, cpu ${fmt(t.cpu_ms)} ms, ${t.samples} samples)`}`);
  }

  // ---------------------------------------------------------------- training
  for (const batch of trainBatches) {
    const net = netAt(trainSize);
    const x = inputFor(trainSize, batch);
    const runners: Runner[] = [];
    const disposers: (() => void)[] = [];
    let refLoss = NaN;
    const trainers: { name: string; make: () => Promise<TrainRunner>; check: boolean }[] = [];
    for (const e of available) if (e.train) trainers.push({ name: e.info.name, make: () => e.train!(net, x, batch), check: e !== ours });
    for (const t of trainers) {
      const r: Runner = { engine: t.name, call: async () => {}, first: NaN, ms: [], cpu: [] };
      try {
        const runner = await t.make();
        disposers.push(() => runner.dispose());
        const t0 = performance.now();
        const loss = await runner.step();
        r.first = performance.now() - t0;
        r.call = () => runner.step();
        if (!t.check) refLoss = loss;
        else {
          const diff = Math.abs(loss - refLoss);
          const rel = diff / Math.max(Math.abs(refLoss), 1e-30);
          const ok = rel <= tol;
          checks.push({ engine: t.name, what: 'train', size: trainSize, batch, max_abs_diff: diff, scale: Math.abs(refLoss), rel, ok });
          log(`check ${t.name} train ${trainSize}x${trainSize} b${batch}: first-step loss ${loss.toPrecision(7)} vs ours ${refLoss.toPrecision(7)}, relative ${rel.toExponential(2)}: ${ok ? 'ok' : 'MISMATCH (not timed)'}`);
          if (!ok) r.error = `loss mismatch: relative ${rel.toExponential(2)}`;
        }
        log(`first run ${t.name} train ${trainSize}x${trainSize} b${batch}: ${fmt(r.first)} ms`);
      } catch (err) {
        r.error = errMsg(err);
        if (t.check) checks.push({ engine: t.name, what: 'train', size: trainSize, batch, max_abs_diff: NaN, scale: NaN, rel: NaN, ok: false, error: r.error });
        log(`${t.name} train ${trainSize} b${batch}: FAILED: ${r.error}`);
      }
      runners.push(r);
      // one engine's training graph at a time holds its memory; the round-robin needs them all, which fits here
    }
    await roundRobin(runners, timing);
    for (const d of disposers) d();
    const c: PeerCase = { what: 'train', size: trainSize, batch, loss: 'sumsq', results: runners.map(timingOf) };
    cases.push(c);
    for (const t of c.results) log(`train ${trainSize}x${trainSize} b${batch} ${t.engine.padEnd(12)} ${t.error ? `FAILED: ${t.error}` : `${fmt(t.ms)} ms/step (min ${fmt(t.ms_min)}, first ${fmt(t.first_ms)}, cpu ${fmt(t.cpu_ms)} ms, ${t.samples} samples)`}`);
  }
  if (ours.yoloTrain) {
    for (const batch of trainBatches) {
      const net = netAt(trainSize);
      const x = inputFor(trainSize, batch);
      const r: Runner = { engine: 'yolo-wgsl', call: async () => {}, first: NaN, ms: [], cpu: [] };
      let runner: TrainRunner | null = null;
      try {
        runner = await ours.yoloTrain(net, x, batch);
        const t0 = performance.now();
        await runner.step();
        r.first = performance.now() - t0;
        const rr = runner;
        r.call = () => rr.step();
        await roundRobin([r], timing);
      } catch (err) {
        r.error = errMsg(err);
      } finally {
        runner?.dispose();
      }
      const c: PeerCase = { what: 'train', size: trainSize, batch, loss: 'darknet', results: [timingOf(r)] };
      cases.push(c);
      log(`train ${trainSize}x${trainSize} b${batch} yolo-wgsl with the Darknet YOLO loss: ${r.error ? `FAILED: ${r.error}` : `${fmt(c.results[0].ms)} ms/step`}`);
    }
  }
  for (const n of nets.values()) n.dispose();
  for (const e of engines) e.dispose?.();

  // ---------------------------------------------------------------- the demo training job (with Darknet only)
  let demoJob: DemoJobResult | null = null;
  if (dk.available) {
    try {
      demoJob = await demoTrainingJob(gpu, opts.darknet!, dkDir, opts.darknetIters ?? (q ? 30 : 200), log);
    } catch (err) {
      log(`demo job: FAILED: ${errMsg(err)}`);
    }
  }
  if (dkDir) fs.rmSync(dkDir, { recursive: true, force: true });

  // ---------------------------------------------------------------- ratios
  const ratios: Record<string, Record<string, number>> = {};
  const keyOf = (c: PeerCase) => `${c.what} ${c.size} b${c.batch}${c.loss && c.loss !== 'sumsq' ? ` ${c.loss}` : ''}`;
  for (const c of cases) {
    const o = c.results.find((r) => r.engine === 'yolo-wgsl');
    if (!o || !Number.isFinite(o.ms) || c.loss === 'darknet') continue;
    ratios[keyOf(c)] = Object.fromEntries(c.results.filter((r) => r.engine !== 'yolo-wgsl' && Number.isFinite(r.ms)).map((r) => [r.engine, r.ms / o.ms]));
  }
  const inferKey = `infer ${Math.max(...inferSizes)} b${inferBatch}`;
  const trainKey = trainBatches.length ? `train ${trainSize} b${Math.max(...trainBatches)}` : '';
  const result: PeersBenchResult = {
    device: gpu.info.summary,
    adapter: { kind: gpu.info.kind, backend: gpu.info.backend, description: gpu.info.description, featureLevel: gpu.info.featureLevel },
    cfg: opts.cfg,
    weights: opts.weights ?? `seeded random (seed ${seed})`,
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? '?', loadavg_start: loadStart, loadavg_end: os.loadavg(), node: process.version },
    timing: `round-robin over the engines within each case: a first call (compilation) then up to ${iters} samples each (at least ${minIters}; fewer once a case passed ${budget} s), calls under 50 ms batched per sample; medians. Inference = forward + readback of the [yolo] outputs; train step = forward (BN batch statistics) + Σ z² over the head inputs + gradients + SGD (lr ${LR}, no momentum/decay) + loss readback`,
    engines: engines.map((e) => e.info),
    checks,
    cases,
    speedup_vs_tfjs_webgpu_infer: ratios[inferKey]?.['tfjs-webgpu'] ?? null,
    speedup_vs_tfjs_webgpu_train: trainKey ? ratios[trainKey]?.['tfjs-webgpu'] ?? null : null,
    ratios,
    demo_job: demoJob,
    seconds: (performance.now() - started) / 1000,
  };
  if (ownGpu) gpu.dispose();
  if (opts.json) writeResultJson(opts.json, result);
  return result;
}

/** A markdown report: engines, checks, the table (ms and ratio to ours per case), notes. */
export function formatPeersBench(r: PeersBenchResult): string {
  const out: string[] = [];
  out.push(`device: ${r.device}`);
  out.push(`cfg: ${r.cfg}, weights: ${r.weights}; node ${r.host.node}; ${r.host.cpus} CPU(s) ${r.host.cpu_model}; load average ${r.host.loadavg_start.map((v) => v.toFixed(2)).join(' ')} at start, ${r.host.loadavg_end.map((v) => v.toFixed(2)).join(' ')} at end`);
  out.push(`timing: ${r.timing}`);
  out.push('');
  out.push('Engines:');
  for (const e of r.engines) out.push(`- ${e.name}: ${e.available ? e.description : `not run: ${e.reason}`}`);
  if (r.checks.length) {
    out.push('');
    out.push(`Checks against yolo-wgsl before timing (relative = max |diff| / max |ours|):`);
    for (const c of r.checks) {
      const what = c.what === 'infer' ? `[yolo] outputs ${c.size}x${c.size} b${c.batch}` : `first-step loss ${c.size}x${c.size} b${c.batch}`;
      out.push(`- ${c.engine} ${what}: ${c.error ? `FAILED: ${c.error}` : `max |diff| ${c.max_abs_diff.toExponential(2)} of ${c.scale.toPrecision(4)}, relative ${c.rel.toExponential(2)}: ${c.ok ? 'ok' : 'MISMATCH'}`}`);
    }
  }
  const names = r.engines.filter((e) => e.available).map((e) => e.name);
  const main = r.cases.filter((c) => c.loss !== 'darknet');
  const head = main.map((c) => (c.what === 'infer' ? `${c.size} fwd b${c.batch}` : `train ${c.size} b${c.batch}`));
  out.push('');
  out.push('Median ms (ratio = engine / yolo-wgsl; > 1: yolo-wgsl is faster):');
  out.push('');
  out.push(`| engine | ${head.join(' | ')} |`);
  out.push(`|---|${head.map(() => '---:').join('|')}|`);
  for (const n of names) {
    const cells = main.map((c) => {
      const t = c.results.find((x) => x.engine === n);
      if (!t) return c.what === 'train' && n.startsWith('ort') ? '(no training)' : c.what === 'train' && n === 'darknet' ? '(demo job below)' : '-';
      if (t.error || !Number.isFinite(t.ms)) return 'failed';
      const o = c.results.find((x) => x.engine === 'yolo-wgsl');
      const ratio = n !== 'yolo-wgsl' && o && Number.isFinite(o.ms) ? ` (${(t.ms / o.ms).toFixed(2)}x)` : '';
      return `${fmt(t.ms)}${ratio}`;
    });
    out.push(`| ${n} | ${cells.join(' | ')} |`);
  }
  out.push('');
  out.push('First call (compilation included), ms:');
  out.push('');
  out.push(`| engine | ${head.join(' | ')} |`);
  out.push(`|---|${head.map(() => '---:').join('|')}|`);
  for (const n of names) {
    const cells = main.map((c) => {
      const t = c.results.find((x) => x.engine === n);
      return t && Number.isFinite(t.first_ms) ? fmt(t.first_ms) : '-';
    });
    out.push(`| ${n} | ${cells.join(' | ')} |`);
  }
  const yolo = r.cases.filter((c) => c.loss === 'darknet');
  if (yolo.length) {
    out.push('');
    out.push(`yolo-wgsl training step with the real Darknet YOLO loss (for reference): ${yolo.map((c) => `${c.size} b${c.batch} ${c.results[0].error ? 'failed' : `${fmt(c.results[0].ms)} ms`}`).join(', ')}`);
  }
  const dj = r.demo_job;
  if (dj) {
    out.push('');
    out.push(`Demo training job (${dj.cfg}, batch ${dj.batch}, ${dj.size} px, ${dj.iterations} iterations; ${dj.data}):`);
    out.push('');
    out.push('| engine | img/s | iterations timed | img/s whole run | wall s | loss first -> last | load avg start -> end |');
    out.push('|---|---:|---|---:|---:|---|---|');
    for (const j of dj.runs) {
      const la = `${j.loadavg_start[0].toFixed(2)} -> ${j.loadavg_end[0].toFixed(2)}`;
      out.push(j.error
        ? `| ${j.engine} | failed: ${j.error} | | | | | ${la} |`
        : `| ${j.engine} | ${fmt(j.img_per_s)} | ${j.steady_from}-${j.iterations} | ${fmt(j.img_per_s_total)} | ${fmt(j.wall_s)} | ${j.loss_first.toPrecision(4)} -> ${j.loss_last.toPrecision(4)} | ${la} |`);
    }
    const d = dj.runs.find((j) => j.engine === 'darknet');
    const o = dj.runs.find((j) => j.engine === 'yolo-wgsl');
    if (d && o && Number.isFinite(d.img_per_s) && Number.isFinite(o.img_per_s)) out.push('', `yolo-wgsl / Darknet training throughput: ${(o.img_per_s / d.img_per_s).toFixed(2)}x`);
    if (o?.data_wait_s !== undefined && o.loop_s) out.push('', `yolo-wgsl's training loop awaited the data loader ${fmt(o.data_wait_s)} s of its ${fmt(o.loop_s)} s (${((100 * o.data_wait_s) / o.loop_s).toFixed(1)}%; the GPU work already queued runs meanwhile).`);
    for (const n of dj.notes) out.push(`- ${n}`);
  } else {
    const d = r.engines.find((e) => e.name === 'darknet');
    if (d && !d.available) {
      out.push('');
      out.push(`Demo training job against Darknet: not run (${d.reason})`);
    }
  }
  out.push('');
  const s = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
  out.push(`speedup_vs_tfjs_webgpu_infer: ${s(r.speedup_vs_tfjs_webgpu_infer)}; speedup_vs_tfjs_webgpu_train: ${s(r.speedup_vs_tfjs_webgpu_train)} (TF.js webgpu median / ours, same adapter, same run)`);
  out.push('');
  out.push('What it takes to run each peer here:');
  for (const e of r.engines.filter((x) => x.name !== 'yolo-wgsl')) {
    out.push(`- ${e.name}: ${e.available ? e.notes.join('; ') : `not run: ${e.reason}`}`);
  }
  out.push('');
  out.push(`bench took ${r.seconds.toFixed(0)} s`);
  return out.join('\n');
}
