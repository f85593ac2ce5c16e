/** Kernel benchmarks for kernel authors (bench/kernels.ts; `yolo-wgsl bench kernels` prints the same). */
export { benchKernels, formatKernelBench, type KernelBenchOptions, type KernelBenchResult } from '../../bench/kernels.js';
