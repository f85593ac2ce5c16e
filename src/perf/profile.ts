/**
 * `yolo-wgsl bench profile --cfg X [--img N] [--batch B] [--train] [--loss yolov5]`: device time per kernel
 * of one inference forward or one training step (forward, loss, backward, SGD update), from timestamp
 * queries around every dispatch (Gpu.startProfile: lavapipe and real GPUs; the GL compat adapter has no
 * timestamps). Warm-up steps first (compilation), then `steps` profiled steps averaged.
 */
import type { Gpu } from '../gpu/device.js';
import { Network } from '../darknet/network.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';
import { TrainStep, syntheticTruths, type BenchLossKind } from './network.js';

export interface ProfileOptions {
  cfg: string;
  img?: number;
  batch?: number;
  train?: boolean;
  loss?: BenchLossKind;
  steps?: number;
  warmup?: number;
  /** One row per kernel and workgroup grid (tells the layers of one kernel apart) instead of per kernel. */
  byGrid?: boolean;
}

export interface KernelProfileRow {
  kernel: string;
  /** Device milliseconds per step. */
  ms: number;
  /** Dispatches per step. */
  calls: number;
  share: number;
}

export interface ProfileResult {
  device: string;
  cfg: string;
  mode: 'infer' | 'train';
  batch: number;
  size: number;
  /** Wall ms per step without profiling (batched as usual) and device ms per step summed over dispatches. */
  wallMs: number;
  deviceMs: number;
  /**
   * Host ms per step spent recording the step (the call that encodes its commands, until it returns), part of
   * wallMs. A step is normally submitted once, at the sync after it, so the device has nothing to run
   * meanwhile; on a real GPU, where the device time is small, this is what bounds a step.
   */
  hostMs: number;
  dispatches: number;
  rows: KernelProfileRow[];
}

export async function profileNetwork(gpu: Gpu, o: ProfileOptions): Promise<ProfileResult> {
  const net = Network.fromFile(o.cfg, o.img ? { width: o.img, height: o.img } : {});
  net.initWeights(1);
  const B = o.batch ?? 1;
  const I = net.input;
  const rng = new Rng(7);
  const data = new Float32Array(B * I.c * I.h * I.w);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  const x = Tensor.from(gpu, [B, I.c, I.h, I.w], data);
  let run: () => void;
  let done: () => void = () => {};
  if (o.train) {
    const step = new TrainStep(gpu, net, o.loss ?? 'yolov5');
    const classes = net.heads().find((l) => l.kind === 'yolo')?.options.classes ?? 1;
    const truths = syntheticTruths(rng, B, classes);
    run = () => step.run(x, truths);
    done = () => step.dispose();
  } else {
    net.prepare(gpu, 'infer');
    run = () => {
      for (const t of new Set(net.forward(x).values())) if (t !== x) t.dispose();
    };
  }
  try {
    for (let i = 0; i < (o.warmup ?? 2); i++) { run(); await gpu.sync(); }
    const steps = o.steps ?? 3;
    const d0 = gpu.dispatches;
    let host = 0;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const h = performance.now();
      run();
      host += performance.now() - h;
      await gpu.sync();
    }
    const wallMs = (performance.now() - t0) / steps;
    const dispatches = (gpu.dispatches - d0) / steps;
    gpu.startProfile({ byGrid: o.byGrid });
    for (let i = 0; i < steps; i++) run();
    const totals = await gpu.stopProfile();
    let deviceMs = 0;
    for (const v of totals.values()) deviceMs += v.ms / steps;
    const rows = [...totals.entries()]
      .map(([kernel, v]) => ({ kernel, ms: v.ms / steps, calls: v.n / steps, share: v.ms / steps / deviceMs }))
      .sort((a, b) => b.ms - a.ms);
    return { device: gpu.info.summary, cfg: o.cfg, mode: o.train ? 'train' : 'infer', batch: B, size: I.w, wallMs, deviceMs, hostMs: host / steps, dispatches, rows };
  } finally {
    done();
    x.dispose();
    net.dispose();
  }
}

export function formatProfile(r: ProfileResult): string {
  const lines = [
    `profile: ${r.cfg} ${r.mode} ${r.size}x${r.size} batch ${r.batch} on ${r.device}`,
    `wall ${r.wallMs.toFixed(1)} ms per step (unprofiled; ${r.hostMs.toFixed(1)} of them recording it on the host), device ${r.deviceMs.toFixed(1)} ms per step over ${r.dispatches} dispatches`,
    '| kernel | ms/step | calls | share |',
    '|---|---:|---:|---:|',
    ...r.rows.map((x) => `| ${x.kernel} | ${x.ms.toFixed(2)} | ${x.calls} | ${(100 * x.share).toFixed(1)}% |`),
  ];
  return lines.join('\n');
}
