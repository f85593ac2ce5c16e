/// <reference types="@webgpu/types" preserve="true" />
/**
 * yolo-wgsl in a browser: the same engine and kernels on the page's WebGPU (navigator.gpu). Built into one
 * ES module by scripts/build-browser.mjs (`make browser` -> dist/browser/yolo-wgsl.js); the package exports
 * it as `yolo-wgsl/browser`.
 *
 * Everything is passed as data: the cfg as text, the weights as bytes (fetch(url).arrayBuffer()), images as
 * ImageBitmap / ImageData / <img> / canvas or PNG/JPEG bytes. Training and evaluation need a dataset on
 * disk and are Node-only.
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
export { Tensor } from './tensor/tensor.js';
