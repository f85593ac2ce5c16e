/**
 * A tiny detection service on node:http: POST an image (PNG or JPEG bytes) to /detect and get the
 * detections as JSON; GET /health says what it runs on. One model, loaded once; requests run in turn.
 *
 *   node --import tsx examples/server.ts --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --names coco.names \
 *     [--host 127.0.0.1] [--port 8080]
 *   curl --data-binary @dog.jpg 'http://127.0.0.1:8080/detect?conf=0.25&iou=0.45'
 *
 * Prints `listening on http://HOST:PORT` when ready (--port 0 picks a free port). SIGTERM / SIGINT stop it.
 * In your own project, import from 'yolo-wgsl' instead of '../src/index.js'.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createEngine, loadDarknet } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    cfg: { type: 'string' }, weights: { type: 'string' }, names: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8080' },
    'max-bytes': { type: 'string', default: String(32 << 20) },
  },
});
if (!a.cfg) {
  console.error('usage: server.ts --cfg X.cfg [--weights X.weights] [--names X.names] [--host H] [--port P]');
  process.exit(2);
}

const engine = await createEngine();
const model = await loadDarknet({ engine, cfg: a.cfg, weights: a.weights, names: a.names });
const maxBytes = Number(a['max-bytes']);

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/health') {
    send(res, 200, { ok: true, device: engine.adapterInfo.summary, model: model.info().cfg, input: model.input, names: model.names });
    return;
  }
  if (req.method !== 'POST' || url.pathname !== '/detect') {
    send(res, 404, { error: 'POST an image to /detect, or GET /health' });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > maxBytes) {
      send(res, 413, { error: `image larger than ${maxBytes} bytes` });
      req.destroy();
    } else chunks.push(c);
  });
  req.on('end', async () => {
    if (res.headersSent) return;
    try {
      const num = (k: string, d: number) => (url.searchParams.has(k) ? Number(url.searchParams.get(k)) : d);
      const t0 = performance.now();
      const detections = await model.detect(new Uint8Array(Buffer.concat(chunks)), { conf: num('conf', 0.25), iou: num('iou', 0.45), maxDet: num('maxDet', 1000) });
      send(res, 200, { detections, ms: +(performance.now() - t0).toFixed(1) });
    } catch (e) {
      send(res, 400, { error: `${(e as Error).name}: ${(e as Error).message}` });
    }
  });
});

server.listen(Number(a.port), a.host, () => {
  const addr = server.address() as { port: number };
  console.log(`listening on http://${a.host}:${addr.port} (${engine.adapterInfo.summary})`);
});

const stop = () => {
  server.close(() => {
    model.dispose();
    engine.dispose();
    process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
