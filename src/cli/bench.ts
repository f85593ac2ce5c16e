/** `yolo-wgsl bench kernels`: wires the CLI to bench/kernels.ts. */
import { Gpu } from '../gpu/device.js';

export async function runBenchKernels(opts: { size: number; iters?: number; json?: string; quick?: boolean; variants?: string[]; passes?: string[]; layers?: number[] }): Promise<void> {
  const { benchKernels, formatKernelBench } = await import('../../bench/kernels.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await benchKernels(gpu, {
      size: opts.size, iters: opts.iters, json: opts.json, quick: opts.quick, variants: opts.variants,
      passes: opts.passes as ('fwd' | 'bwd_data' | 'bwd_weights')[] | undefined, layers: opts.layers, log: (l: string) => console.log(l),
    });
    console.log(formatKernelBench(r));
  } finally {
    gpu.dispose();
  }
}
