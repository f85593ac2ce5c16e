/**
 * The error classes the library throws. Each is a subclass of Error with a `name` of its own, so callers
 * can `instanceof`-test or switch on `err.name`:
 *
 * - CfgError: a .cfg problem; `file`, `line` (1-based) and `key` (the offending key, when one) say where.
 * - WeightsError: a .weights file that does not fit the cfg (too short / too long) or cannot be read/saved.
 * - DatasetError: a dataset description or label problem; `file` and `line` when known.
 * - GpuError: a device problem; `kind` ('compile' | 'validation' | 'out-of-memory' | 'device-lost' |
 *   'internal' | 'limits' | 'no-adapter') and `kernel`, the WGSL file and entry point concerned ('' for
 *   device-level errors).
 * - TrainError: training stopped; `kind` ('non-finite' | 'config' | 'data') and the `iteration`.
 * - ImageError: an image that cannot be read or decoded, or is over the pixel limit; `code`
 *   ('IMAGE_TOO_LARGE' | 'IMAGE_FORMAT' | 'IMAGE_INVALID' | 'IMAGE_UNREADABLE'), `file`, and `width`,
 *   `height`, `limit` when known.
 * - SettingError (a RangeError): an option out of its range (`conf: NaN`, `maxBatches: -3`); `setting`
 *   names it.
 * - WriteError: a file could not be written (a full disk, no permission); `file` is the final name, `code`
 *   the system's (ENOSPC ...). Nothing is left under that name: writes are atomic.
 */
export { CfgError } from '../darknet/cfg.js';
export { WeightsError } from '../darknet/weights.js';
export { DatasetError } from '../data/dataset.js';
export { GpuError } from '../gpu/errors.js';
export { TrainError } from '../train/types.js';
export { ImageError, type ImageErrorCode } from '../data/image.js';
export { SettingError } from '../util/validate.js';
export { WriteError } from '../util/fs.js';
