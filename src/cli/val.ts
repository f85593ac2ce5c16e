/**
 * `yolo-wgsl val`: the evaluation core is src/api/val.ts (shared with the library's evaluate() and with
 * training-time validation); this adds the command's network loading.
 */
import { Gpu } from '../gpu/device.js';
import { loadDetectNetwork } from './detect.js';
import { networkDetector, runVal, type ValOptions, type ValResult } from '../api/val.js';
import type { Precision } from '../darknet/precision.js';

/** `val --cfg X --weights W --data D`: loads the network, scores the split, disposes everything. */
export async function runValNetwork(opts: ValOptions & { cfg: string; weights?: string; batch?: number; letterbox?: boolean; img?: number; precision?: Precision }): Promise<ValResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const gpu = await Gpu.create({ log });
  try {
    const net = await loadDetectNetwork(gpu, opts.cfg, opts.weights, log, { width: opts.img, height: opts.img, precision: opts.precision });
    try {
      return await runVal({ ...opts, detector: networkDetector(gpu, net, { batch: opts.batch, letterbox: opts.letterbox }) });
    } finally {
      net.dispose?.();
    }
  } finally {
    gpu.dispose();
  }
}

/** The `val` command: scores a COCO-format detections file (`predictions`) or runs the network (`cfg`). */
export async function runValCommand(opts: ValOptions & { cfg?: string; weights?: string; batch?: number; img?: number; precision?: Precision }): Promise<ValResult> {
  if (opts.predictions) return runVal(opts);
  if (!opts.cfg) throw new Error('val needs --cfg (and --weights) to run a network, or --predictions to score a detections file');
  return runValNetwork({ ...opts, cfg: opts.cfg });
}
