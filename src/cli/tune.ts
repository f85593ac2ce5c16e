/**
 * `yolo-wgsl tune --cfg X [--img N] [--batch B] [--train] [--force] [--defaults]`: measures every conv
 * algorithm on every [convolutional] shape of a cfg on this adapter (src/darknet/tune.ts), keeps the fastest
 * per shape and pass in the adapter's tuning cache (src/gpu/tune-file.ts), which every later run on this
 * adapter follows for `auto`. Then, where the adapter has shader-f16, it times the whole inference forward
 * in f32 and in f16 and records the faster (src/darknet/precision.ts autotunePrecision): what precision
 * `auto` runs. `--defaults` also writes the table as the shipped defaults for this adapter kind
 * (kernels/tune/<kind>.json).
 */
import { Gpu } from '../gpu/device.js';
import { loadTuning, saveTuning, writeTuneDefaults } from '../gpu/tune-file.js';
import { Network } from '../darknet/network.js';
import { autotuneNetwork } from '../darknet/tune.js';
import { autotunePrecision, type PrecisionTuneResult } from '../darknet/precision.js';
import type { ConvTuneResult } from '../tensor/ops/conv_tune.js';

export interface TuneCliOptions {
  cfg: string;
  img?: number;
  batch?: number;
  train?: boolean;
  force?: boolean;
  defaults?: boolean;
  backend?: string;
  gpu?: Gpu;
  log?: (line: string) => void;
}

export interface TuneCliResult {
  rows: ConvTuneResult[];
  cacheFile: string | null;
  defaultsFile?: string;
  /** Sum over cases of (heuristic's time - pick's time), where both were measured, in ms. */
  savedMs: number;
  /** The whole forward in f32 and f16 (with seeded weights) and the faster: what precision `auto` runs. */
  precision: PrecisionTuneResult;
}

export async function runTune(opts: TuneCliOptions): Promise<TuneCliResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const net = Network.fromFile(opts.cfg, { width: opts.img, height: opts.img });
  const gpu = opts.gpu ?? (await Gpu.create({ log, backend: opts.backend as never }));
  try {
    const loaded = loadTuning(gpu);
    log(`tune: ${gpu.info.summary}; cache ${loaded.cacheFile ?? '(off: YOLO_WGSL_CACHE_DIR=off)'} (${loaded.fromCache} entries, ${loaded.fromDefaults} shipped defaults)`);
    const rows = await autotuneNetwork(gpu, net, { batch: opts.batch ?? 1, train: !!opts.train, force: !!opts.force, log });
    let saved = 0;
    for (const r of rows) {
      const h = r.ms[r.heuristic], p = r.ms[r.pick];
      if (!r.cached && h !== undefined && p !== undefined) saved += h - p;
    }
    const measured = rows.filter((r) => !r.cached).length;
    const differs = rows.filter((r) => r.pick !== r.heuristic).length;
    // after the conv picks (the forwards it times use them); timing does not depend on the weights' values
    net.initWeights(1);
    const precision = await autotunePrecision(gpu, net, { batch: opts.batch ?? 1, force: !!opts.force, log });
    if (precision.cached && precision.ms.f32 !== undefined) log(`tune: precision ${precision.key}: ${precision.pick} (already measured: f32 ${precision.ms.f32} ms, f16 ${precision.ms.f16} ms)`);
    const cacheFile = saveTuning(gpu);
    log(`tune: ${rows.length} cases (${measured} measured, ${rows.length - measured} already known); the pick differs from the heuristic in ${differs}; measured saving ${saved.toFixed(1)} ms per network pass set`);
    if (cacheFile) log(`tune: saved ${cacheFile}`);
    let defaultsFile: string | undefined;
    if (opts.defaults) {
      defaultsFile = writeTuneDefaults(gpu);
      log(`tune: wrote shipped defaults ${defaultsFile}`);
    }
    return { rows, cacheFile, defaultsFile, savedMs: saved, precision };
  } finally {
    if (!opts.gpu) gpu.dispose();
  }
}
