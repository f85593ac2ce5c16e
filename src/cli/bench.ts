/** `yolo-wgsl bench kernels`: wires the CLI to bench/kernels.ts. */
import { Gpu } from '../gpu/device.js';

export async function runBenchKernels(opts: { size: number; iters?: number; json?: string }): Promise<void> {
  const { benchKernels, formatKernelBench } = await import('../../bench/kernels.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await benchKernels(gpu, { size: opts.size, iters: opts.iters, json: opts.json, log: (l: string) => console.log(l) });
    console.log(formatKernelBench(r));
  } finally {
    gpu.dispose();
  }
}
