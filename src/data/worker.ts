/**
 * Batch building for src/data/loader.ts over files on disk: decode (with a per-thread cache) + augment the
 * images of one batch into an NCHW buffer (src/data/build.ts). `buildBatch` is a pure function of (context,
 * job): the loader runs it in worker threads (this module is also the worker's entry point) or in its own
 * thread, with identical results either way.
 */
import fs from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { decodeImage, type Image } from './image.js';
import { buildBatchWith, type BatchJob, type BuildContext, type BuiltBatch } from './build.js';

// the batch building itself is in build.ts (no file system or threads: in-memory datasets use it too)
export type { BatchJob, BuildContext, BuiltBatch, DecodeFile, LoaderImage } from './build.js';

/** This thread's decoded images (decoding is deterministic, so the cache never changes a batch). */
const cache = new Map<string, Image>();
let cachedBytes = 0;

function cached(ctx: BuildContext, file: string, decode: () => Image): Image {
  const hit = cache.get(file);
  if (hit) {
    cache.delete(file); // most recently used last
    cache.set(file, hit);
    return hit;
  }
  const im = decode();
  const bytes = im.data.byteLength;
  if (bytes <= ctx.cacheBytes) {
    while (cachedBytes + bytes > ctx.cacheBytes && cache.size) {
      const [k, v] = cache.entries().next().value as [string, Image];
      cache.delete(k);
      cachedBytes -= v.data.byteLength;
    }
    cache.set(file, im);
    cachedBytes += bytes;
  }
  return im;
}

/** Builds one batch from files on disk (decoded through this thread's cache): build.ts buildBatchWith. */
export function buildBatch(ctx: BuildContext, job: BatchJob): BuiltBatch {
  return buildBatchWith(ctx, job, (file) => cached(ctx, file, () => decodeImage(fs.readFileSync(file), file)));
}

// ---------------------------------------------------------------- worker entry

export const WORKER_TAG = 'yolo-wgsl-loader';

if (!isMainThread && parentPort && (workerData as { tag?: string } | null)?.tag === WORKER_TAG) {
  const ctx = (workerData as { ctx: BuildContext }).ctx;
  const port = parentPort;
  port.on('message', (job: BatchJob) => {
    try {
      const b = buildBatch(ctx, job);
      port.postMessage({ ok: true, batch: b }, [b.images.buffer as ArrayBuffer]);
    } catch (e) {
      // the message for the log line; the stack travels too, for --verbose / YOLO_WGSL_VERBOSE=1
      port.postMessage({ ok: false, id: job.id, error: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined });
    }
  });
}
