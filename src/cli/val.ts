/**
 * `yolo-wgsl val`: the evaluation core is src/api/val.ts (shared with the library's evaluate() and with
 * training-time validation); this adds the command's network loading.
 */
import { Gpu } from '../gpu/device.js';
import { loadDarknet } from './detect.js';
import { networkDetector, runVal, type ValOptions, type ValResult } from '../api/val.js';

export * from '../api/val.js';

/** `val --cfg X --weights W --data D`: loads the network, scores the split, disposes everything. */
export async function runValNetwork(opts: ValOptions & { cfg: string; weights?: string; batch?: number; letterbox?: boolean; img?: number }): Promise<ValResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const gpu = await Gpu.create({ log });
  try {
    const net = await loadDarknet(gpu, opts.cfg, opts.weights, log, { width: opts.img, height: opts.img });
    try {
      return await runVal({ ...opts, detector: networkDetector(gpu, net, { batch: opts.batch, letterbox: opts.letterbox }) });
    } finally {
      net.dispose?.();
    }
  } finally {
    gpu.dispose();
  }
}
