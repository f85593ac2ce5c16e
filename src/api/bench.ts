/**
 * Benchmarks for kernel authors: the kernel bench (bench/kernels.ts; `yolo-wgsl bench kernels`) and the
 * whole-network bench (bench/network.ts: inference and training steps, peak memory, linearity).
 */
export { benchKernels, formatKernelBench, type KernelBenchOptions, type KernelBenchResult } from '../../bench/kernels.js';
export { benchNetwork, formatNetworkBench, type NetworkBenchOptions, type NetworkBenchResult } from '../../bench/network.js';
