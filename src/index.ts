/// <reference types="@webgpu/types" preserve="true" />
/**
 * yolo-wgsl as a library: YOLO detection, training and evaluation on WebGPU with hand-written WGSL kernels.
 *
 * ```ts
 * import { createEngine, loadDarknet } from 'yolo-wgsl';
 * const engine = await createEngine();
 * const model = await loadDarknet({ engine, cfg: 'yolov3-tiny.cfg', weights: 'yolov3-tiny.weights', names: 'coco.names' });
 * const dets = await model.detect('dog.jpg', { conf: 0.25, iou: 0.45 });
 * model.dispose();
 * engine.dispose();
 * ```
 *
 * Importing creates nothing: no device exists until `createEngine` (or `loadDarknet` without an engine).
 * See docs/api.md for the guide.
 *
 * @packageDocumentation
 */
export { createEngine, Engine, type EngineOptions, type AdapterInfo } from './api/engine.js';
export {
  loadDarknet, loadNetwork, Model, toImage,
  type LoadDarknetOptions, type LoadNetworkOptions, type CfgSource, type Bytes, type Detection, type DetectOptions,
  type DetectBatchOptions, type ImageInput, type RawImage, type ModelInfo,
} from './api/model.js';
export { train, type TrainOptions, type TrainReport, type TrainProgress, type EpochSummary } from './api/train.js';
export { trainOnFiles, type TrainOnFilesOptions, type TrainingRun, type FilesTrainReport, type FileMap } from './api/train_files.js';
export { memoryDataset, type MemoryDataset, type MemoryDatasetOptions } from './data/memory.js';
export { convertFiles, detectFormat, type ConvertFilesOptions, type DatasetFormat, type DetectedFormat, type FilesConversion } from './data/convert/memory.js';
export { evaluate, type EvaluateOptions, type EvaluateResult } from './api/evaluate.js';
export { createDetectionServer, type DetectionServer, type DetectionServerOptions, type ServeLimits } from './serve/server.js';
export type { ServeMetricsSnapshot, LatencySummary } from './serve/metrics.js';
export { exportOnnx, exportTfjs, type ExportOnnxOptions, type ExportOnnxResult, type ExportTfjsOptions, type ExportTfjsResult } from './api/export.js';
export type { OnnxTensorInfo } from './export/onnx/index.js';
export type { TfjsTensorInfo } from './export/tfjs/index.js';
export { generateSynth, SYNTH_SHAPES, type SynthOptions, type SynthResult, type SynthShape } from './data/synth.js';
export {
  convertToYolo, yoloToCoco, SourceError,
  type ConvertToYoloOptions, type ConvertResult, type ConvertIssue, type CocoSource, type YoloToCocoOptions, type YoloToCocoResult,
} from './data/convert/convert.js';
export {
  benchKernels, formatKernelBench, benchNetwork, formatNetworkBench, measurePeak, measureLoads, profileNetwork, formatProfile,
  autotuneNetwork, networkConvCases, autotuneConv, CONV_TUNE_CANDIDATES, tuneTable, TuneTable, loadTuning, saveTuning, tuneCacheDir,
  type KernelBenchOptions, type KernelBenchResult, type NetworkBenchOptions, type NetworkBenchResult, type PeakOptions, type PeakResult, type LoadResult,
  type ProfileOptions, type ProfileResult, type KernelProfileRow, type NetworkTuneOptions, type ConvTuneCase,
  type ConvTuneResult, type TuneEntry,
} from './api/bench.js';
export { CfgError, WeightsError, DatasetError, GpuError, TrainError, ImageError, SettingError, WriteError, type ImageErrorCode } from './api/errors.js';
export { DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, imageDimensions, type ImageDimensions, type ImageFormat } from './data/image.js';

// Expert level: the device runtime and tensors the model runs on.
export { Gpu, type GpuOptions } from './gpu/device.js';
export { Tensor, type DType } from './tensor/tensor.js';
export { ForwardReplay } from './darknet/replay.js';
export type { Recording } from './gpu/device.js';
export type { Precision } from './darknet/precision.js';
export type { BackendChoice } from './gpu/adapter.js';
export type { EvalSummary } from './eval/metrics.js';
export type { InfoRow } from './darknet/info.js';
export type { Protocol } from './eval/types.js';
