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
 */
export { CfgError } from '../darknet/cfg.js';
export { WeightsError } from '../darknet/weights.js';
export { DatasetError } from '../data/dataset.js';
export { GpuError } from '../gpu/errors.js';
export { TrainError } from '../train/trainer.js';
