/**
 * A tiny detection service on node:http: POST an image (PNG or JPEG bytes) to /detect and get the
 * detections as JSON; GET /health says what it runs on, its limits, load and memory. One model, loaded once.
 *
 *   node --import tsx examples/server.ts --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --names coco.names \
 *     [--host 127.0.0.1] [--port 8080] [--max-bytes 8388608] [--max-pixels 67108864] \
 *     [--max-concurrent 1] [--max-queue 16] [--timeout-ms 30000]
 *   curl --data-binary @dog.jpg 'http://127.0.0.1:8080/detect?conf=0.25&iou=0.45&maxDet=100'
 *
 * Prints its limits, then `listening on http://HOST:PORT` when ready (--port 0 picks a free port). SIGTERM /
 * SIGINT stop it. In your own project, import from 'yolo-wgsl' instead of '../src/index.js'.
 *
 * Limits (a request past one gets a JSON `{ error, ... }` and the process carries on):
 * - --max-bytes: the body. 413 as soon as Content-Length says more, or when the streamed body passes it;
 *   the rest is not read (the connection is closed).
 * - --max-pixels: width x height as the PNG / JPEG header declares it, checked before anything is decoded
 *   (a 200-byte PNG can declare 20000x20000): 413 with `width`, `height` and `limit`. 413 rather than 422
 *   because, like --max-bytes, the request is well-formed but too big for this server.
 * - --max-concurrent: requests decoded and run at once; --max-queue more wait (reading their body, or for a
 *   slot); past that 503 with Retry-After, at once.
 * - --timeout-ms, from the request's arrival: a body still incomplete then gets 408, a request still waiting
 *   for a slot 503 (Retry-After), one still running 504 (its work finishes in the background and keeps its
 *   slot meanwhile). Node's headersTimeout / requestTimeout cut connections that send too slowly.
 * Query parameters: conf and iou (numbers in [0, 1]), maxDet (an integer in [1, 10000]); anything else,
 * or a value out of range, is 400 naming the parameter and what it accepts. A body that is not a PNG / JPEG
 * or is corrupt is 400; an internal failure 500 with the message (the stack goes to stderr only).
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createEngine, loadDarknet, imageDimensions, ImageError, DEFAULT_MAX_PIXELS, type Detection } from '../src/index.js';

const USAGE = `usage: server.ts --cfg X.cfg [--weights X.weights] [--names X.names] [--host H] [--port P]
                 [--max-bytes N] [--max-pixels N] [--max-concurrent N] [--max-queue N] [--timeout-ms N]`;

function die(message: string): never {
  console.error(`server.ts: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

let a: Record<string, string | undefined>;
try {
  a = parseArgs({
    options: {
      cfg: { type: 'string' }, weights: { type: 'string' }, names: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8080' },
      'max-bytes': { type: 'string', default: String(8 << 20) },
      'max-pixels': { type: 'string', default: String(DEFAULT_MAX_PIXELS) },
      'max-concurrent': { type: 'string', default: '1' },
      'max-queue': { type: 'string', default: '16' },
      'timeout-ms': { type: 'string', default: '30000' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  die((e as Error).message);
}
if (!a.cfg) die('--cfg is required');
if (!a.host) die('--host must not be empty');

/** A command-line integer in [min, max], or exit 2 saying which option and what it accepts. */
function intOption(name: string, min: number, max: number): number {
  const v = a[name]!;
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) die(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}
const port = intOption('port', 0, 65535);
const maxBytes = intOption('max-bytes', 1, 1 << 30);
const maxPixels = intOption('max-pixels', 1, Number.MAX_SAFE_INTEGER);
const maxConcurrent = intOption('max-concurrent', 1, 64);
const maxQueue = intOption('max-queue', 0, 100_000);
const timeoutMs = intOption('timeout-ms', 1, 24 * 3600_000);

const mp = (n: number) => `${(n / 1e6).toFixed(1)} megapixels`;
console.log(`limits: max-bytes ${maxBytes} (${(maxBytes / 2 ** 20).toFixed(1)} MiB), max-pixels ${maxPixels} (${mp(maxPixels)}), max-concurrent ${maxConcurrent}, max-queue ${maxQueue}, timeout-ms ${timeoutMs}`);

let engine: Awaited<ReturnType<typeof createEngine>>;
let model: Awaited<ReturnType<typeof loadDarknet>>;
try {
  engine = await createEngine();
  model = await loadDarknet({ engine, cfg: a.cfg, weights: a.weights, names: a.names, maxPixels });
} catch (e) {
  console.error(`server.ts: ${(e as Error).name}: ${(e as Error).message}`);
  process.exit(1);
}

// ---------------------------------------------------------------- errors and responses

/** An answer other than 200: status, message, extra JSON fields and headers. */
class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly fields: Record<string, unknown> = {}, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const retryAfter = { 'retry-after': '1' };
/** Answers sent, by status code (GET /health shows them). */
const answered: Record<string, number> = {};
let requests = 0;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  answered[status] = (answered[status] ?? 0) + 1;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

/** Whether a request still has body bytes to come (it declares a body that was not read to its end). */
function bodyPending(req: http.IncomingMessage): boolean {
  if (req.readableEnded) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Answers a request whose body was not read (or not all of it): closes the connection after the answer and
 * reads no more of the body than arrives in the next moments (discarded, never kept). Without a pending
 * body, a plain answer (the connection stays open).
 */
function sendAndClose(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (!bodyPending(req)) return send(res, status, body, headers);
  send(res, status, body, { ...headers, connection: 'close' });
  req.removeAllListeners('data');
  req.resume();
  const t = setTimeout(() => req.socket.destroy(), 1000);
  t.unref();
  req.socket.once('close', () => clearTimeout(t));
}

// ---------------------------------------------------------------- query parameters

const PARAMS = {
  conf: { min: 0, max: 1, integer: false, default: 0.25 },
  iou: { min: 0, max: 1, integer: false, default: 0.45 },
  maxDet: { min: 1, max: 10000, integer: true, default: 1000 },
} as const;
type Param = keyof typeof PARAMS;
const accepts = (p: Param) => `${PARAMS[p].integer ? 'an integer' : 'a number'} in [${PARAMS[p].min}, ${PARAMS[p].max}]`;
const ACCEPTED = (Object.keys(PARAMS) as Param[]).map((p) => `${p} (${accepts(p)})`).join(', ');

function queryParams(url: URL): Record<Param, number> {
  const out = Object.fromEntries((Object.keys(PARAMS) as Param[]).map((p) => [p, PARAMS[p].default])) as Record<Param, number>;
  for (const key of new Set(url.searchParams.keys())) {
    if (!Object.hasOwn(PARAMS, key)) throw new HttpError(400, `unknown query parameter ${JSON.stringify(key)}; accepted: ${ACCEPTED}`, { parameter: key });
    const p = key as Param;
    const values = url.searchParams.getAll(p);
    if (values.length > 1) throw new HttpError(400, `query parameter ${p} given ${values.length} times; give it once, ${accepts(p)}`, { parameter: p, accepted: accepts(p) });
    const v = values[0];
    const n = Number(v);
    const ok = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) && Number.isFinite(n) && n >= PARAMS[p].min && n <= PARAMS[p].max && (!PARAMS[p].integer || Number.isInteger(n));
    if (!ok) throw new HttpError(400, `query parameter ${p}=${JSON.stringify(v)}: expected ${accepts(p)}`, { parameter: p, accepted: accepts(p) });
    out[p] = n;
  }
  return out;
}

// ---------------------------------------------------------------- admission, slots, deadline

/** Requests admitted and not yet answered: reading their body, waiting for a slot or running. */
let admitted = 0;
/** Slots taken by work still running (including work whose request timed out). */
let running = 0;
const waiters: Array<() => void> = [];

function acquire(signal: AbortSignal): Promise<void> {
  if (running < maxConcurrent && waiters.length === 0) {
    running++;
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      const i = waiters.indexOf(grant);
      if (i >= 0) waiters.splice(i, 1);
      reject(signal.reason);
    };
    const grant = () => {
      signal.removeEventListener('abort', onAbort);
      running++;
      resolve();
    };
    waiters.push(grant);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function release(): void {
  running--;
  waiters.shift()?.();
}

/** Abort reasons of a request: its deadline passed; its client went away. */
const TIMEOUT = Symbol('timeout');
const GONE = Symbol('client gone');

/** The request's body, up to maxBytes; rejects with the signal's reason or a 413 HttpError. */
function readBody(req: http.IncomingMessage, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (e?: unknown) => {
      signal.removeEventListener('abort', onAbort);
      req.removeListener('data', onData).removeListener('end', onEnd).removeListener('close', onClose);
      if (e) reject(e);
      else resolve(Buffer.concat(chunks, size));
    };
    const onAbort = () => done(signal.reason);
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) done(new HttpError(413, `body larger than --max-bytes ${maxBytes}`, { limit: maxBytes }));
      else chunks.push(c);
    };
    const onEnd = () => done();
    const onClose = () => done(GONE);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData).on('end', onEnd).on('close', onClose);
  });
}

async function detect(req: http.IncomingMessage, res: http.ServerResponse, url: URL, expectContinue: boolean): Promise<void> {
  const q = queryParams(url);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new HttpError(413, `body of ${declared} bytes, over --max-bytes ${maxBytes}`, { limit: maxBytes });
  }
  if (admitted >= maxConcurrent + maxQueue) {
    throw new HttpError(503, `busy: ${maxConcurrent} running and ${maxQueue} waiting (--max-concurrent, --max-queue); retry later`, {}, retryAfter);
  }
  admitted++;
  const t0 = performance.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(TIMEOUT), timeoutMs);
  const onGone = () => ac.abort(GONE);
  res.once('close', onGone);
  const stage = (s: 'body' | 'queue' | 'run') => (reason: unknown): never => {
    if (reason === TIMEOUT) {
      if (s === 'body') throw new HttpError(408, `the body did not arrive within --timeout-ms ${timeoutMs}`, { timeoutMs }, { connection: 'close' });
      if (s === 'queue') throw new HttpError(503, `waited over --timeout-ms ${timeoutMs} for a free slot; retry later`, { timeoutMs, reason: 'timeout' }, retryAfter);
      throw new HttpError(504, `detection took over --timeout-ms ${timeoutMs}`, { timeoutMs });
    }
    throw reason;
  };
  try {
    if (expectContinue) res.writeContinue();
    const body = await readBody(req, ac.signal).catch(stage('body'));
    if (body.length === 0) throw new HttpError(400, 'empty body: POST the bytes of a PNG or JPEG image');
    // the declared size, before queueing or decoding (the library checks it again when it decodes)
    const dims = imageDimensions(body, 'image');
    if (!dims) throw new HttpError(400, 'image: not a PNG or JPEG file', { code: 'IMAGE_FORMAT' });
    if (dims.width * dims.height > maxPixels) {
      throw new HttpError(413, `image is ${dims.width}x${dims.height} (${mp(dims.width * dims.height)}), over --max-pixels ${maxPixels} (${mp(maxPixels)})`,
        { code: 'IMAGE_TOO_LARGE', width: dims.width, height: dims.height, limit: maxPixels });
    }
    await acquire(ac.signal).catch(stage('queue'));
    let work: Promise<Detection[]>;
    try {
      if (ac.signal.aborted) stage('queue')(ac.signal.reason);
      work = model.detect(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), { conf: q.conf, iou: q.iou, maxDet: q.maxDet, maxPixels });
    } catch (e) {
      release();
      throw e;
    }
    work.then(release, release); // the slot stays taken until the work ends, also after a 504
    const aborted = new Promise<never>((_, reject) => {
      if (ac.signal.aborted) reject(ac.signal.reason);
      ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
    });
    aborted.catch(() => {});
    const detections = await Promise.race([work, aborted]).catch(stage('run'));
    send(res, 200, { detections, ms: +(performance.now() - t0).toFixed(1) });
  } finally {
    clearTimeout(timer);
    res.removeListener('close', onGone);
    admitted--;
  }
}

function errorBody(e: unknown): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
  if (e instanceof HttpError) return { status: e.status, body: { error: e.message, ...e.fields }, headers: e.headers };
  if (e instanceof ImageError) {
    const status = e.code === 'IMAGE_TOO_LARGE' ? 413 : 400;
    return { status, body: { error: `${e.name}: ${e.message}`, code: e.code, ...(e.width !== undefined ? { width: e.width, height: e.height } : {}), ...(e.limit !== undefined ? { limit: e.limit } : {}) }, headers: {} };
  }
  console.error(`server.ts: internal error: ${(e as Error)?.stack ?? String(e)}`);
  return { status: 500, body: { error: `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}` }, headers: {} };
}

// ---------------------------------------------------------------- the server

async function handle(req: http.IncomingMessage, res: http.ServerResponse, expectContinue = false): Promise<void> {
  requests++;
  req.on('error', () => {}); // a client that goes away mid-body: nothing to answer
  res.on('error', () => {});
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/health') {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendAndClose(req, res, 405, { error: 'GET /health' }, { allow: 'GET, HEAD' });
    return send(res, 200, {
      ok: true, device: engine.adapterInfo.summary, model: model.info().cfg, input: model.input, names: model.names,
      limits: { maxBytes, maxPixels, maxConcurrent, maxQueue, timeoutMs },
      running, waiting: Math.max(0, admitted - running), rss: process.memoryUsage().rss, requests, answered,
    });
  }
  if (url.pathname !== '/detect') return sendAndClose(req, res, 404, { error: 'POST an image to /detect, or GET /health' });
  if (req.method !== 'POST') return sendAndClose(req, res, 405, { error: 'POST the image bytes to /detect' }, { allow: 'POST' });
  try {
    await detect(req, res, url, expectContinue);
  } catch (e) {
    if (e === GONE || res.destroyed) return; // nobody to answer
    const { status, body, headers } = errorBody(e);
    sendAndClose(req, res, status, body, headers); // when the body was not (all) read: stop reading it
  }
}

const server = http.createServer({
  headersTimeout: Math.max(1000, Math.min(timeoutMs, 10_000)),
  requestTimeout: Math.max(1000, Math.min(timeoutMs, 10_000), timeoutMs) + 1000,
  connectionsCheckingInterval: 1000,
}, (req, res) => {
  handle(req, res).catch((e) => send(res, 500, errorBody(e).body));
});
// Expect: 100-continue (curl sends it for bodies over 1 KiB): the limits answer before the body is sent
server.on('checkContinue', (req, res) => {
  handle(req, res, true).catch((e) => send(res, 500, errorBody(e).body));
});
server.on('error', (e) => {
  console.error(`server.ts: ${e.message}`);
  process.exit(1);
});
server.listen(port, a.host, () => {
  const addr = server.address() as { port: number };
  console.log(`listening on http://${a.host}:${addr.port} (${engine.adapterInfo.summary})`);
});

const stop = () => {
  server.close(() => {
    model.dispose();
    engine.dispose();
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
