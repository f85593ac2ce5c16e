/**
 * Benchmarks for kernel authors: the kernel bench (src/perf/kernels.ts; `yolo-wgsl bench kernels`), the device's
 * FMA peak both benches compare with (src/perf/peak.ts), the whole-network bench (src/perf/network.ts:
 * inference and training steps, peak memory, linearity), the
 * per-kernel profile (src/perf/profile.ts; `bench profile`) and the conv autotune (`yolo-wgsl tune`).
 * The comparison with TF.js / ONNX Runtime (`bench peers`, `bench chart`) is not part of the library: it
 * lives in the checkout's bench/ with its devDependencies.
 */
export { benchKernels, formatKernelBench, type KernelBenchOptions, type KernelBenchResult } from '../perf/kernels.js';
export { benchNetwork, formatNetworkBench, type NetworkBenchOptions, type NetworkBenchResult } from '../perf/network.js';
export { measurePeak, measureLoads, type PeakOptions, type PeakResult, type LoadResult } from '../perf/peak.js';
export { profileNetwork, formatProfile, type ProfileOptions, type ProfileResult, type KernelProfileRow } from '../perf/profile.js';
export { autotuneNetwork, networkConvCases, type NetworkTuneOptions } from '../darknet/tune.js';
export { autotuneConv, CONV_TUNE_CANDIDATES, type ConvTuneCase, type ConvTuneResult } from '../tensor/ops/conv_tune.js';
export { tuneTable, TuneTable, type TuneEntry } from '../gpu/tune.js';
export { loadTuning, saveTuning, tuneCacheDir } from '../gpu/tune-file.js';
