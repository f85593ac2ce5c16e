/**
 * A detection service embedded in your own program: the library's createDetectionServer on one model.
 * `yolo-wgsl serve` is the same server as a command (docs/serve.md: routes, limits, batching, metrics).
 *
 *   node --import tsx examples/server.ts --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --names coco.names \
 *     [--host 127.0.0.1] [--port 8080]
 *   curl -H 'content-type: image/jpeg' --data-binary @dog.jpg 'http://127.0.0.1:8080/detect?conf=0.25'
 *   curl -F image=@dog.jpg http://127.0.0.1:8080/detect
 *
 * Prints `listening on http://HOST:PORT (adapter)` when ready (--port 0 picks a free port); SIGTERM / SIGINT
 * answer the requests in flight and stop it. In your own project, import from 'yolo-wgsl' instead of
 * '../src/index.js'.
 */
import { parseArgs } from 'node:util';
import { createDetectionServer, createEngine, loadDarknet } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    cfg: { type: 'string' }, weights: { type: 'string' }, names: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8080' },
  },
  strict: true,
});
if (!a.cfg) {
  console.error('usage: server.ts --cfg X.cfg [--weights X.weights] [--names X.names] [--host H] [--port P]');
  process.exit(2);
}

const engine = await createEngine();
const model = await loadDarknet({ engine, cfg: a.cfg, weights: a.weights, names: a.names });
// the limits of `yolo-wgsl serve`, here spelled out: body, pixels, batching, queue, time per request
const server = createDetectionServer({ model, maxBytes: 8 << 20, maxPixels: 64 << 20, maxBatch: 8, batchWaitMs: 5, maxQueue: 64, timeoutMs: 30_000 });
const { url } = await server.listen(Number(a.port), a.host);
console.log(`listening on ${url} (${engine.adapterInfo.summary})`);

const stop = async () => {
  await server.close();
  console.log(`stopped: ${JSON.stringify(server.metrics().batchSizes)} batches by size`);
  model.dispose();
  engine.dispose();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
