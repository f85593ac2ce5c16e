/// <reference types="@webgpu/types" preserve="true" />
/**
 * yolo-wgsl in a browser: the same engine and kernels on the page's WebGPU (navigator.gpu). Built into one
 * ES module by scripts/build-browser.mjs (`make browser` -> dist/browser/yolo-wgsl.js); the package exports
 * it as `yolo-wgsl/browser`.
 *
 * Everything is passed as data: the cfg as text, the weights as bytes (fetch(url).arrayBuffer()), images as
 * ImageBitmap / ImageData / <img> / canvas or PNG/JPEG bytes. Training takes the dataset as files in memory
 * (`trainOnFiles`: name -> bytes, e.g. a picked folder, with YOLO labels or a COCO / VOC / labelme export,
 * converted as `convert` does: `convertFiles`; docs/browser.md); evaluation of a dataset on disk (`evaluate`)
 * is Node-only.
 *
 * @packageDocumentation
 */
export { createEngine, Engine, type EngineOptions, type AdapterInfo } from './api/engine.js';
export {
  loadDarknet, Model, toImage,
  type LoadDarknetOptions, type CfgSource, type Bytes, type Detection, type DetectOptions, type DetectBatchOptions,
  type ImageInput, type RawImage, type ModelInfo,
} from './api/model.js';
export { CfgError } from './darknet/cfg.js';
export { WeightsError } from './darknet/weights.js';
export { GpuError } from './gpu/errors.js';
export { ImageError, DEFAULT_MAX_PIXELS, type ImageErrorCode } from './data/image.js';
export { SettingError } from './util/validate.js';
export { Gpu } from './gpu/device.js';
export { Tensor, type DType } from './tensor/tensor.js';
export type { Precision } from './darknet/precision.js';
export {
  trainOnFiles, type TrainOnFilesOptions, type TrainingRun, type FilesTrainReport, type FileMap,
} from './api/train_files.js';
export { memoryDataset, normalizeName, type MemoryDataset, type MemoryDatasetOptions } from './data/memory.js';
export {
  convertFiles, detectFormat, type ConvertFilesOptions, type DatasetFormat, type DetectedFormat, type FilesConversion,
} from './data/convert/memory.js';
export { formatIssue, SourceError, type ConvertIssue, type IssueKind, type Where } from './data/convert/source.js';
export { NothingToWriteError } from './data/convert/plan.js';
export { DatasetError, formatProblem, describeScan, type Problem, type ScanReport } from './data/labels.js';
export { TrainError, type Progress as TrainProgress, type EpochSummary } from './train/types.js';
export { encodeWeights } from './darknet/weights.js';
