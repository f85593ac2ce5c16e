/**
 * A detection service on node:http, for one loaded model (`yolo-wgsl serve`, or embedded in your program):
 *
 *   POST /detect[?conf=&iou=&maxDet=]  a PNG / JPEG as the raw body (content-type image/png, image/jpeg,
 *        application/octet-stream, or none) or as the one file of a multipart/form-data form (whose text
 *        fields may carry conf, iou, maxDet) -> 200 with the JSON that `detect` writes per image
 *        ({ image, width, height, detections: [{ class_id, name, score, objectness, bbox_xyxy,
 *        bbox_cxcywh_norm }] }); headers x-batch-size and x-inference-ms say how it ran.
 *   GET  /health   device, model, limits, load, memory.
 *   GET  /metrics  requests, answers by status, errors, latency p50/p90/p99, queue depth, batch sizes
 *        (JSON; `?format=prom` for Prometheus' text format).
 *
 * Concurrent requests are batched (src/serve/batcher.ts): those that queue while a batch runs, or arrive
 * within batchWaitMs of each other, run as one forward of up to maxBatch images (requests with different
 * conf / iou / maxDet go to different batches). Every failure is a JSON `{ error, ... }` with a 4xx / 5xx
 * status, and the server carries on:
 * - 400: a bad query or form value (naming it and its range), an empty body, a body that is not a PNG /
 *   JPEG or is corrupt, a multipart form without exactly one file; 404 / 405: another path or method;
 * - 408: a body still incomplete after timeoutMs;
 * - 413: a body over maxBytes (from Content-Length at once, else as soon as the streamed body passes it),
 *   an image whose header declares more than maxPixels (checked before anything is decoded: a 100-byte PNG
 *   can declare 20000x20000);
 * - 415: a content type other than the above, or one that the bytes contradict (image/png holding a JPEG);
 * - 503 (with Retry-After): the server is full (maxConcurrent x maxBatch running and maxQueue waiting), or a
 *   request waited in the queue past timeoutMs; 504: its batch ran past timeoutMs (it finishes in the
 *   background); 500: an internal failure (the message; the stack goes to the log).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Model } from '../api/model.js';
import { toImage } from '../api/model.js';
import { detectImages, objectsJson, type FoundObject } from '../api/detector.js';
import { checkImageSize, formatPixels, imageDimensions, ImageError, resolveMaxPixels, type Image, type ImageFormat } from '../data/image.js';
import { HeadDecoder } from '../yolo/decode.js';
import { checkNumber, type NumberRule } from '../util/validate.js';
import { Batcher, BatchAbort, QueueFull } from './batcher.js';
import { ServeMetrics, type ServeMetricsSnapshot } from './metrics.js';
import { PORT_RULE, SERVE_LIMIT_RULES, type ServeLimits } from './limits.js';

export type { ServeLimits } from './limits.js';

export interface DetectionServerOptions {
  /** The model to serve (loadDarknet); the server does not dispose it. */
  model: Model;
  /** Largest request body in bytes (default 8 MiB). */
  maxBytes?: number;
  /** Largest image, width x height from its header (default: YOLO_WGSL_MAX_PIXELS, else 64 megapixels). */
  maxPixels?: number;
  /** Batches decoded and run at once (default 1). */
  maxConcurrent?: number;
  /** Requests that may wait for the GPU beyond those running (default 64); past that, 503 at once. */
  maxQueue?: number;
  /** Largest batch: requests per forward (default 8). */
  maxBatch?: number;
  /** How long the oldest queued request waits for others to join its batch, in ms (default 5). */
  batchWaitMs?: number;
  /** Time limit of a request from its arrival, in ms (default 30000): then 408, 503 or 504 by stage. */
  timeoutMs?: number;
  /** Internal errors (500) and their stacks (default: console.error). */
  log?: (line: string) => void;
}

export interface DetectionServer {
  /** The node:http server (not listening until listen()). Its handler serves the routes above. */
  readonly server: http.Server;
  readonly limits: ServeLimits;
  /** Starts listening (port 0: a free port); resolves with the address. */
  listen(port?: number, host?: string): Promise<{ url: string; host: string; port: number }>;
  /** The counters GET /metrics shows. */
  metrics(): ServeMetricsSnapshot;
  /** Stops accepting connections, answers what is in flight, frees the server's GPU buffers (not the model). */
  close(): Promise<void>;
}

/** An answer other than 200: status, message, extra JSON fields and headers. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly fields: Record<string, unknown> = {}, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

// ---------------------------------------------------------------- request parameters

const PARAMS = {
  conf: { min: 0, max: 1, integer: false, default: 0.25 },
  iou: { min: 0, max: 1, integer: false, default: 0.45 },
  maxDet: { min: 1, max: 10000, integer: true, default: 1000 },
} as const;
type Param = keyof typeof PARAMS;
type Params = Record<Param, number>;
const accepts = (p: Param) => `${PARAMS[p].integer ? 'an integer' : 'a number'} in [${PARAMS[p].min}, ${PARAMS[p].max}]`;
const ACCEPTED = (Object.keys(PARAMS) as Param[]).map((p) => `${p} (${accepts(p)})`).join(', ');

/** conf, iou, maxDet from the query (and a form's text fields): each once, in its range. */
export function requestParams(given: URLSearchParams, where = 'query parameter'): Params {
  const out = Object.fromEntries((Object.keys(PARAMS) as Param[]).map((p) => [p, PARAMS[p].default])) as Params;
  for (const key of new Set(given.keys())) {
    if (!Object.hasOwn(PARAMS, key)) throw new HttpError(400, `unknown ${where} ${JSON.stringify(key)}; accepted: ${ACCEPTED}`, { parameter: key });
    const p = key as Param;
    const values = given.getAll(p);
    if (values.length > 1) throw new HttpError(400, `${where} ${p} given ${values.length} times; give it once, ${accepts(p)}`, { parameter: p, accepted: accepts(p) });
    const v = values[0];
    const n = Number(v);
    const ok = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) && Number.isFinite(n) && n >= PARAMS[p].min && n <= PARAMS[p].max && (!PARAMS[p].integer || Number.isInteger(n));
    if (!ok) throw new HttpError(400, `${where} ${p}=${JSON.stringify(v)}: expected ${accepts(p)}`, { parameter: p, accepted: accepts(p) });
    out[p] = n;
  }
  return out;
}

const RAW_TYPES: Record<string, ImageFormat | null> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/jpg': 'jpeg', 'image/pjpeg': 'jpeg', 'application/octet-stream': null };
const ACCEPTED_TYPES = 'image/png, image/jpeg or application/octet-stream (the image bytes), or multipart/form-data with one image file';

/** What the Content-Type header says the body is; 415 for anything else. */
function bodyKind(header: string | undefined): { kind: 'raw'; format: ImageFormat | null } | { kind: 'multipart' } {
  const type = (header ?? '').split(';')[0].trim().toLowerCase();
  if (type === '') return { kind: 'raw', format: null };
  if (Object.hasOwn(RAW_TYPES, type)) return { kind: 'raw', format: RAW_TYPES[type] };
  if (type === 'multipart/form-data') {
    if (!/;\s*boundary=/i.test(header!)) throw new HttpError(400, 'multipart/form-data without a boundary parameter');
    return { kind: 'multipart' };
  }
  throw new HttpError(415, `content-type ${JSON.stringify(header)} is not accepted: send ${ACCEPTED_TYPES}`, { contentType: header, accepted: ACCEPTED_TYPES });
}

/**
 * The one image file of a multipart/form-data body, parsed by Node's own fetch implementation (undici's
 * Request.formData: no dependency, and the body was already bounded by maxBytes while it was read), and
 * the form's text fields (conf, iou, maxDet).
 */
async function formImage(body: Buffer, contentType: string): Promise<{ bytes: Uint8Array; name: string; type: string; fields: URLSearchParams }> {
  let form: FormData;
  try {
    form = await new Request('http://localhost/', { method: 'POST', headers: { 'content-type': contentType }, body: body as unknown as BodyInit }).formData();
  } catch (e) {
    throw new HttpError(400, `the multipart/form-data body cannot be parsed: ${(e as Error).message}`);
  }
  const files: File[] = [];
  const fields = new URLSearchParams();
  for (const [k, v] of form) {
    if (typeof v === 'string') fields.append(k, v);
    else files.push(v);
  }
  if (files.length !== 1) {
    throw new HttpError(400, files.length === 0
      ? 'the form has no file: send the image as a file field (curl -F image=@dog.jpg)'
      : `the form has ${files.length} files: send one image per request`, { files: files.length });
  }
  const f = files[0];
  return { bytes: new Uint8Array(await f.arrayBuffer()), name: f.name || 'body', type: f.type, fields };
}

// ---------------------------------------------------------------- the server

/** Abort reasons of a request: its deadline passed; its client went away. */
const TIMEOUT = Symbol('timeout');
const GONE = Symbol('client gone');

interface Job {
  bytes: Uint8Array;
  name: string;
  params: Params;
  signal: AbortSignal;
}

interface Answer {
  json: object;
  batch: number;
  inferenceMs: number;
}

/** The per-image JSON of `yolo-wgsl detect` (src/cli/detect.ts resultJson). */
function answerJson(name: string, im: Image, objects: readonly FoundObject[]): object {
  return { image: name, width: im.width, height: im.height, detections: objectsJson(objects) };
}

/** Creates the server (not yet listening): `await s.listen(8080, '127.0.0.1')`. Checks every option. */
export function createDetectionServer(opts: DetectionServerOptions): DetectionServer {
  const { model } = opts;
  const lim = {} as ServeLimits;
  for (const [k, rule] of Object.entries(SERVE_LIMIT_RULES) as [keyof typeof SERVE_LIMIT_RULES, NumberRule & { default: number }][]) {
    lim[k] = checkNumber(k, opts[k] ?? rule.default, rule);
  }
  lim.maxPixels = resolveMaxPixels(opts.maxPixels);
  const limits: ServeLimits = Object.freeze({ ...lim });
  const log = opts.log ?? ((l: string) => console.error(l));
  const metrics = new ServeMetrics();
  const retryAfter = { 'retry-after': '1' };
  let decoder: HeadDecoder | null = null;
  /** Requests admitted and not yet answered: reading their body, queued or running. */
  let admitted = 0;
  const capacity = limits.maxConcurrent * limits.maxBatch + limits.maxQueue;

  const batcher = new Batcher<Job, Answer>({
    maxBatch: limits.maxBatch, waitMs: limits.batchWaitMs, maxConcurrent: limits.maxConcurrent, maxQueue: capacity,
    key: (j) => `${j.params.conf}/${j.params.iou}/${j.params.maxDet}`,
    onBatch: (n) => metrics.batch(n),
    run: runBatch,
  });

  /** One batch: decode each image (a bad one fails alone), one forward and decode for all, NMS per image. */
  async function runBatch(jobs: Job[]): Promise<PromiseSettledResult<Answer>[]> {
    const out: PromiseSettledResult<Answer>[] = jobs.map(() => ({ status: 'rejected', reason: undefined }));
    const images: Image[] = [];
    const which: number[] = [];
    for (let i = 0; i < jobs.length; i++) {
      if (jobs[i].signal.aborted) continue; // answered already (timed out, or the client left)
      try {
        images.push(await toImage(jobs[i].bytes, { maxPixels: limits.maxPixels }));
        which.push(i);
      } catch (e) {
        out[i] = { status: 'rejected', reason: e };
      }
    }
    if (images.length === 0) return out;
    const p = jobs[which[0]].params;
    const t0 = performance.now();
    const r = await model.exclusive(async () => {
      const net = model.detectNetwork();
      decoder ??= new HeadDecoder(model.engine.gpu, net.heads, { width: net.width, height: net.height });
      return detectImages(model.engine.gpu, net, images, { conf: p.conf, iou: p.iou, maxDet: p.maxDet, names: model.names }, decoder);
    });
    const inferenceMs = +(performance.now() - t0).toFixed(1);
    which.forEach((i, k) => {
      out[i] = { status: 'fulfilled', value: { json: answerJson(jobs[i].name, images[k], r.images[k].objects), batch: images.length, inferenceMs } };
    });
    return out;
  }

  function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, type = 'application/json'): void {
    if (res.headersSent || res.destroyed) return;
    metrics.answered(status);
    res.writeHead(status, { 'content-type': type, ...headers });
    res.end(typeof body === 'string' ? body : `${JSON.stringify(body)}\n`);
  }

  /** Whether a request still has body bytes to come (it declares a body that was not read to its end). */
  function bodyPending(req: http.IncomingMessage): boolean {
    if (req.readableEnded) return false;
    return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  }

  /**
   * Answers a request whose body was not read (or not all of it): closes the connection after the answer
   * and reads no more than arrives in the next moments (discarded). Without a pending body, a plain answer.
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
        if (size > limits.maxBytes) done(new HttpError(413, `body larger than the limit of ${limits.maxBytes} bytes (--max-bytes)`, { limit: limits.maxBytes }));
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
    metrics.detectRequests++;
    const t0 = performance.now();
    let params = requestParams(url.searchParams);
    const kind = bodyKind(req.headers['content-type']);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limits.maxBytes) {
      throw new HttpError(413, `body of ${declared} bytes, over the limit of ${limits.maxBytes} (--max-bytes)`, { limit: limits.maxBytes });
    }
    if (admitted >= capacity) {
      throw new HttpError(503, `busy: ${admitted} requests in flight, the most this server admits (--max-concurrent ${limits.maxConcurrent} x --max-batch ${limits.maxBatch} running, --max-queue ${limits.maxQueue} waiting); retry later`, { inFlight: admitted }, retryAfter);
    }
    admitted++;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(TIMEOUT), limits.timeoutMs);
    const onGone = () => ac.abort(GONE);
    res.once('close', onGone);
    const timeout = (stage: 'body' | 'queue' | 'run') => {
      const t = limits.timeoutMs;
      if (stage === 'body') return new HttpError(408, `the body did not arrive within the time limit of ${t} ms (--timeout-ms)`, { timeoutMs: t }, { connection: 'close' });
      if (stage === 'queue') return new HttpError(503, `waited over the time limit of ${t} ms (--timeout-ms) for the GPU; retry later`, { timeoutMs: t, reason: 'timeout' }, retryAfter);
      return new HttpError(504, `detection took over the time limit of ${t} ms (--timeout-ms)`, { timeoutMs: t });
    };
    try {
      if (expectContinue) res.writeContinue();
      const body = await readBody(req, ac.signal).catch((e) => {
        throw e === TIMEOUT ? timeout('body') : e;
      });
      if (body.length === 0) throw new HttpError(400, 'empty body: POST the bytes of a PNG or JPEG image');
      let bytes: Uint8Array = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      let name = 'body';
      let declaredFormat = kind.kind === 'raw' ? kind.format : null;
      let typeSaid = req.headers['content-type'];
      if (kind.kind === 'multipart') {
        const f = await formImage(body, req.headers['content-type']!);
        if ([...f.fields.keys()].some((k) => url.searchParams.has(k))) {
          const both = [...f.fields.keys()].find((k) => url.searchParams.has(k))!;
          throw new HttpError(400, `${both} given both in the query and in the form; give it once`, { parameter: both });
        }
        params = { ...params, ...Object.fromEntries(Object.entries(requestParams(f.fields, 'form field')).filter(([k]) => f.fields.has(k))) };
        bytes = f.bytes;
        name = f.name;
        declaredFormat = RAW_TYPES[f.type.toLowerCase()] ?? null;
        typeSaid = f.type;
        if (bytes.length === 0) throw new HttpError(400, `the form's file ${JSON.stringify(name)} is empty`);
      }
      // the format and declared size, from the header, before queueing or decoding
      const dims = imageDimensions(bytes, 'image');
      if (!dims) throw new HttpError(400, 'image: not a PNG or JPEG file', { code: 'IMAGE_FORMAT' });
      if (declaredFormat && declaredFormat !== dims.format) {
        throw new HttpError(415, `content-type ${typeSaid} but the bytes are a ${dims.format.toUpperCase()}`, { contentType: typeSaid, format: dims.format });
      }
      if (!(dims.width > 0 && dims.height > 0)) checkImageSize('image', dims.width, dims.height, limits.maxPixels); // no pixels: 400
      const pixels = dims.width * dims.height;
      if (pixels > limits.maxPixels) {
        throw new HttpError(413, `image is ${dims.width}x${dims.height} (${formatPixels(pixels)}), over the limit of ${limits.maxPixels} pixels (${formatPixels(limits.maxPixels)}; --max-pixels)`,
          { code: 'IMAGE_TOO_LARGE', width: dims.width, height: dims.height, limit: limits.maxPixels });
      }
      let a: Answer;
      try {
        a = await batcher.submit({ bytes, name, params, signal: ac.signal }, ac.signal);
      } catch (e) {
        if (e instanceof QueueFull) throw new HttpError(503, `busy: the queue is full (--max-queue ${limits.maxQueue}); retry later`, {}, retryAfter);
        if (e instanceof BatchAbort) throw e.reason === TIMEOUT ? timeout(e.stage) : e.reason;
        throw e;
      }
      const ms = performance.now() - t0;
      metrics.latency(ms);
      send(res, 200, a.json, { 'x-batch-size': String(a.batch), 'x-inference-ms': String(a.inferenceMs), 'x-latency-ms': ms.toFixed(1) });
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
    log(`serve: internal error: ${(e as Error)?.stack ?? String(e)}`);
    return { status: 500, body: { error: `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}` }, headers: {} };
  }

  const live = () => ({ queueDepth: batcher.depth, inFlight: admitted, runningBatches: batcher.running });
  const snapshot = () => metrics.snapshot(live());

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, expectContinue = false): Promise<void> {
    metrics.requests++;
    req.on('error', () => {}); // a client that goes away mid-body: nothing to answer
    res.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://localhost');
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (url.pathname === '/health' || url.pathname === '/metrics') {
      if (!get) return sendAndClose(req, res, 405, { error: `GET ${url.pathname}` }, { allow: 'GET, HEAD' });
      if (url.pathname === '/metrics') {
        const format = url.searchParams.get('format') ?? 'json';
        if (format === 'prom' || format === 'prometheus') return send(res, 200, metrics.prometheus(snapshot(), limits.maxBatch), {}, 'text/plain; version=0.0.4; charset=utf-8');
        if (format !== 'json') return send(res, 400, { error: `format=${JSON.stringify(format)}: expected json or prom`, parameter: 'format' });
        return send(res, 200, snapshot());
      }
      const info = model.info();
      return send(res, 200, {
        ok: true, device: model.engine.adapterInfo.summary, model: info.cfg, input: info.input, classes: info.classes, names: model.names,
        limits, running: batcher.running, waiting: batcher.depth, inFlight: admitted, rss: process.memoryUsage().rss, uptimeS: snapshot().uptimeS,
      });
    }
    if (url.pathname !== '/detect') return sendAndClose(req, res, 404, { error: 'POST an image to /detect; GET /health or /metrics' });
    if (req.method !== 'POST') return sendAndClose(req, res, 405, { error: 'POST the image to /detect' }, { allow: 'POST' });
    try {
      await detect(req, res, url, expectContinue);
    } catch (e) {
      if (e === GONE || res.destroyed) return; // nobody to answer
      const { status, body, headers } = errorBody(e);
      sendAndClose(req, res, status, body, headers); // when the body was not (all) read: stop reading it
    }
  }

  const server = http.createServer({
    headersTimeout: Math.max(1000, Math.min(limits.timeoutMs, 10_000)),
    requestTimeout: Math.max(1000, Math.min(limits.timeoutMs, 10_000), limits.timeoutMs) + 1000,
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    handle(req, res).catch((e) => send(res, 500, errorBody(e).body));
  });
  // Expect: 100-continue (curl sends it for bodies over 1 KiB): the limits answer before the body is sent
  server.on('checkContinue', (req, res) => {
    handle(req, res, true).catch((e) => send(res, 500, errorBody(e).body));
  });

  return {
    server,
    limits,
    metrics: snapshot,
    listen(port = 8080, host = '127.0.0.1') {
      checkNumber('port', port, PORT_RULE);
      return new Promise((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.removeListener('error', onError);
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve({ url: `http://${h}:${a.port}`, host: a.address, port: a.port });
        });
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
      // the requests in flight are answered (each within timeoutMs); idle keep-alive connections closed
      while (admitted > 0) await new Promise((r) => setTimeout(r, 10));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 1000);
      await closed;
      clearTimeout(force);
      await batcher.idle();
      await model.exclusive(async () => {
        decoder?.dispose();
        decoder = null;
      });
    },
  };
}
