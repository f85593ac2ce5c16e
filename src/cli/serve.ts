/**
 * `yolo-wgsl serve --cfg C [--weights W] [--names N] [--port 8080] [--host 127.0.0.1]`: the detection server
 * of src/serve/server.ts on one model. Prints its limits, then `listening on http://HOST:PORT (adapter)` when
 * ready (--port 0 picks a free port); SIGTERM / SIGINT answer the requests in flight and stop it.
 */
import { loadDarknet } from '../api/model.js';
import { formatPixels } from '../data/image.js';
import { createDetectionServer } from '../serve/server.js';
import type { ServeLimits } from '../serve/limits.js';

export interface ServeCommandOptions extends Partial<Omit<ServeLimits, 'maxPixels'>> {
  cfg: string;
  weights?: string;
  names?: string;
  /** Network input size (square; default: the cfg's). */
  img?: number;
  /** Inference precision: 'auto' (default), 'f32' or 'f16' (LoadDarknetOptions.precision). */
  precision?: 'auto' | 'f32' | 'f16';
  port?: number;
  host?: string;
  /** Lines for the terminal (default console.log); warnings go to console.error. */
  log?: (line: string) => void;
  /** Stops the server when aborted (default: SIGTERM and SIGINT). */
  signal?: AbortSignal;
}

export async function runServe(o: ServeCommandOptions): Promise<void> {
  const log = o.log ?? ((l: string) => console.log(l));
  const warn = (l: string) => console.error(l);
  // the cfg and weights are read before a device exists: their errors come first
  const model = await loadDarknet({ cfg: o.cfg, weights: o.weights, names: o.names, width: o.img, height: o.img, precision: o.precision, log: warn });
  try {
    const s = createDetectionServer({
      model, maxBytes: o.maxBytes, maxConcurrent: o.maxConcurrent, maxQueue: o.maxQueue, maxBatch: o.maxBatch,
      batchWaitMs: o.batchWaitMs, timeoutMs: o.timeoutMs, log: warn,
    });
    const L = s.limits;
    log(`limits: max-bytes ${L.maxBytes} (${(L.maxBytes / 2 ** 20).toFixed(1)} MiB), max-pixels ${L.maxPixels} (${formatPixels(L.maxPixels)}), ` +
      `max-concurrent ${L.maxConcurrent}, max-batch ${L.maxBatch}, batch-wait-ms ${L.batchWaitMs}, max-queue ${L.maxQueue}, timeout-ms ${L.timeoutMs}`);
    const stopped = new Promise<void>((resolve) => {
      if (o.signal) {
        if (o.signal.aborted) return resolve();
        o.signal.addEventListener('abort', () => resolve(), { once: true });
      } else {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      }
    });
    const addr = await s.listen(o.port ?? 8080, o.host ?? '127.0.0.1');
    log(`listening on ${addr.url} (${model.engine.adapterInfo.summary})`);
    await stopped;
    log('serve: stopping (answering the requests in flight)');
    await s.close();
    const m = s.metrics();
    log(`serve: stopped after ${m.detectRequests} detect requests, ${m.batches} batches (mean ${m.meanBatchSize} images)`);
  } finally {
    model.dispose(); // and its engine, which loadDarknet created
  }
}
