/**
 * `yolo-wgsl serve` started as a separate process on 127.0.0.1 (port 0; bench/server-load.ts starts it):
 * answers equal to the library's model.detect on the same images (raw body and multipart), every kind of
 * bad input a 4xx naming its cause, batching under concurrent clients (GET /metrics shows batches of more
 * than one), the queue bound (503) and a body that stalls (408), a reduced load test; and the same server
 * embedded through the library (createDetectionServer in this process) for the per-request time limit
 * (503/504) and the Prometheus format. The command line's checks run in this process (main()).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { miniWeights, MINI_CFG as CFG, MINI_NAMES as NAMES } from '../helpers/mini.js';
import { Engine } from '../../src/api/engine.js';
import { loadDarknet, type Detection, type Model } from '../../src/api/model.js';
import { DEFAULT_MAX_PIXELS } from '../../src/data/image.js';
import { createDetectionServer, type DetectionServerOptions } from '../../src/serve/server.js';
import { main } from '../../src/cli/main.js';
import { packageRoot } from '../../src/util/paths.js';
import {
  BAD_STATUS, bombPng, detectionsDiffer, fixtureImages, json, loadTest, request, startServer,
  type HttpResult, type ServedDetection, type ServerHandle,
} from '../../bench/server-load.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-serve-'));
const JPG = fs.readFileSync(path.join(root, 'fixtures/images/smooth-40x24.jpg'));
const PNG13 = fs.readFileSync(path.join(root, 'fixtures/images/rgb-13x9.png'));
const MB = 2 ** 20;
const CONF = 0.05;

interface Answer { image: string; width: number; height: number; detections: ServedDetection[] }
interface Metrics { requests: number; detectRequests: number; responses: Record<string, number>; errors: { client: number; server: number }; latencyMs: { count: number; p50: number; p90: number; p99: number }; queueDepth: number; inFlight: number; batches: number; images: number; batchSizes: Record<string, number> }

let libModel: Model | undefined;
/** The library's detections of an image (model.detect on this process's device, same weights). */
async function libraryDetect(bytes: Uint8Array, conf = CONF, maxDet = 1000): Promise<Detection[]> {
  libModel ??= await loadDarknet({ cfg: CFG, weights: await miniWeights(tmp), names: NAMES, engine: new Engine(await getGpu()) });
  return libModel.detect(bytes, { conf, iou: 0.45, maxDet });
}

async function withServer(args: string[], fn: (s: ServerHandle) => Promise<void>): Promise<void> {
  const s = await startServer(['--cfg', CFG, '--weights', await miniWeights(tmp), '--names', NAMES, ...args], { cwd: tmp });
  try {
    await fn(s);
    const h = await request(`${s.url}/health`, { agent: false });
    assert.is(h.status, 200, 'the server still answers /health');
  } finally {
    const code = await s.stop();
    assert.is(code, 0, `the server exits cleanly on SIGTERM: ${s.output()}`);
  }
  assert.not.match(s.output(), /internal error|Unhandled|uncaught/i, s.output());
  assert.match(s.output(), /serve: stopped after \d+ detect requests/);
}

/** A POST whose headers go out now and whose body is sent by send() (or never). */
function held(url: string, length: number): { send: (body: Uint8Array) => void; part: (body: Uint8Array) => void; result: Promise<HttpResult> } {
  let req!: http.ClientRequest;
  const result = new Promise<HttpResult>((resolve, reject) => {
    const t0 = performance.now();
    req = http.request(url, { method: 'POST', headers: { 'content-length': String(length), 'content-type': 'image/jpeg' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  return { send: (b) => req.end(b), part: (b) => req.write(b), result };
}

async function waitFor(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A multipart/form-data POST through fetch (Node builds the body and its boundary). */
async function postForm(url: string, form: FormData): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, { method: 'POST', body: form });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const file = (bytes: Uint8Array, name: string, type: string) => new File([bytes as Uint8Array<ArrayBuffer>], name, { type });

/** A flat-colour PNG: small to send, slow to decode when large. */
function flatPng(width: number, height: number): Buffer {
  const p = new PNG({ width, height });
  p.data.fill(128);
  return PNG.sync.write(p);
}

test('command line: bad numbers exit 2 naming the option and its range, before any model is loaded', async () => {
  for (const [args, re] of [
    [['--port', 'abc'], /--port: expected an integer in \[0, 65535\], got 'abc'/],
    [['--port', '70000'], /--port: expected an integer in \[0, 65535\], got '70000'/],
    [['--max-batch', '0'], /--max-batch: expected an integer in \[1, 256\], got '0'/],
    [['--batch-wait-ms', '-1'], /--batch-wait-ms: expected a number in \[0, 60000\], got '-1'/],
    [['--max-bytes', '1.5'], /--max-bytes: expected an integer in \[1, \d+\], got '1.5'/],
    [['--timeout-ms', '0'], /--timeout-ms: expected an integer in \[1, \d+\], got '0'/],
  ] as const) {
    const e = await main(['serve', '--cfg', CFG, ...args]).then(() => null, (x: Error) => x);
    assert.ok(e, `${args.join(' ')} was refused`);
    assert.ok(e!.name === 'UsageError' || e!.name === 'SettingError', `${args.join(' ')}: ${e!.name}: ${e!.message}`); // exit 2
    assert.match(e!.message, re);
  }
  const e = await main(['serve', '--cfg', path.join(tmp, 'missing.cfg'), '--port', '0']).then(() => null, (x: Error) => x);
  assert.match(String(e?.message), /cannot read cfg .*missing\.cfg/);
});

test('serve: answers = the library\'s detect (raw and multipart); 4xx for bad input; batching under 4 clients; queue bound 503; stalled body 408; load', async () => {
  await withServer(['--max-bytes', '65536', '--max-batch', '4', '--batch-wait-ms', '150', '--max-queue', '2', '--timeout-ms', '4000'], async (s) => {
    assert.match(s.output(), /limits: max-bytes 65536 \(0\.1 MiB\), max-pixels 67108864 \(67\.1 megapixels\), max-concurrent 1, max-batch 4, batch-wait-ms 150, max-queue 2, timeout-ms 4000/);
    const detect = `${s.url}/detect`;
    const metrics = async () => json<Metrics>(await request(`${s.url}/metrics`, { agent: false }));

    // ---- right answers: the JSON of `detect`, with the detections of model.detect
    let r = await request(`${detect}?conf=${CONF}`, { body: JPG, headers: { 'content-type': 'image/jpeg' }, agent: false });
    assert.is(r.status, 200, r.body);
    const a = json<Answer>(r);
    assert.equal([a.image, a.width, a.height], ['body', 40, 24]);
    assert.equal(Object.keys(a.detections[0]), ['class_id', 'name', 'score', 'objectness', 'bbox_xyxy', 'bbox_cxcywh_norm'], 'the fields of detect\'s JSON');
    const want = await libraryDetect(JPG);
    assert.ok(want.length > 0, 'something detected');
    assert.is(detectionsDiffer(a.detections, want), null, 'raw body: the library\'s detections');
    assert.is(r.headers['x-batch-size'], '1');
    // multipart: a file field, and conf / maxDet as form fields
    const f = await postForm(detect, new FormData());
    assert.is(f.status, 400, JSON.stringify(f.body)); // an empty form: no file
    const form = new FormData();
    form.append('image', file(PNG13, 'rgb-13x9.png', 'image/png'));
    form.append('conf', String(CONF));
    form.append('maxDet', '7');
    const m = await postForm(detect, form);
    assert.is(m.status, 200, JSON.stringify(m.body));
    assert.equal([m.body.image, m.body.width, m.body.height], ['rgb-13x9.png', 13, 9]);
    assert.is(detectionsDiffer(m.body.detections as ServedDetection[], await libraryDetect(PNG13, CONF, 7)), null, 'multipart: the library\'s detections');
    assert.is((m.body.detections as unknown[]).length, 7, 'maxDet from the form');

    // ---- bad input: 4xx with a JSON error naming the cause
    const bad: [string, Promise<HttpResult>, number, RegExp][] = [
      ['body over --max-bytes (Content-Length)', request(detect, { body: Buffer.alloc(70_000, 1), agent: false }), 413, /body of 70000 bytes, over the limit of 65536/],
      ['body over --max-bytes (chunked)', request(detect, { body: Buffer.alloc(70_000, 1), chunked: true, agent: false }), 413, /body larger than the limit of 65536 bytes/],
      ['PNG bomb', request(detect, { body: bombPng(20000, 20000), agent: false }), 413, /image is 20000x20000 \(400\.0 megapixels\), over the limit of 67108864 pixels/],
      ['not an image', request(detect, { body: Buffer.from('not an image at all'), headers: { 'content-type': 'application/octet-stream' }, agent: false }), 400, /image: not a PNG or JPEG file/],
      ['empty body', request(detect, { body: Buffer.alloc(0), agent: false }), 400, /empty body/],
      ['truncated JPEG', request(detect, { body: JPG.subarray(0, 100), agent: false }), 400, /cannot decode JPEG: truncated before the frame header/],
      ['corrupt PNG', request(detect, { body: Buffer.concat([bombPng(20, 20).subarray(0, 33), Buffer.from('IDATbroken bytes here')]), agent: false }), 400, /cannot decode PNG/],
      ['0x5 PNG', request(detect, { body: bombPng(0, 5), agent: false }), 400, /image is 0x5: no pixels/],
      ['form-urlencoded (curl --data-binary without -H)', request(detect, { body: JPG, headers: { 'content-type': 'application/x-www-form-urlencoded' }, agent: false }), 415, /content-type "application\/x-www-form-urlencoded" is not accepted: send image\/png, image\/jpeg/],
      ['text/plain', request(detect, { body: JPG, headers: { 'content-type': 'text/plain' }, agent: false }), 415, /is not accepted/],
      ['image/png holding a JPEG', request(detect, { body: JPG, headers: { 'content-type': 'image/png' }, agent: false }), 415, /content-type image\/png but the bytes are a JPEG/],
      ['multipart without a boundary', request(detect, { body: JPG, headers: { 'content-type': 'multipart/form-data' }, agent: false }), 400, /without a boundary/],
      ['broken multipart', request(detect, { body: Buffer.from('--xyz\r\nnot a part'), headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, agent: false }), 400, /multipart\/form-data body cannot be parsed/],
      ['bad query', request(`${detect}?conf=abc`, { body: JPG, agent: false }), 400, /query parameter conf="abc": expected a number in \[0, 1\]/],
      ['unknown query', request(`${detect}?confidence=0.5`, { body: JPG, agent: false }), 400, /unknown query parameter "confidence"; accepted: conf/],
      ['maxDet out of range', request(`${detect}?maxDet=0`, { body: JPG, agent: false }), 400, /query parameter maxDet="0": expected an integer in \[1, 10000\]/],
      ['GET /detect', request(detect, { method: 'GET', agent: false }), 405, /POST the image to \/detect/],
      ['another path', request(`${s.url}/nope`, { agent: false }), 404, /POST an image to \/detect/],
      ['bad metrics format', request(`${s.url}/metrics?format=xml`, { agent: false }), 400, /format="xml": expected json or prom/],
    ];
    for (const [what, p, status, re] of bad) {
      const x = await p;
      assert.is(x.status, status, `${what}: ${x.body}`);
      assert.match(json<{ error: string }>(x).error, re, what);
    }
    const bomb = json<{ code: string; width: number; height: number; limit: number }>(await request(detect, { body: bombPng(20000, 20000), agent: false }));
    assert.equal([bomb.code, bomb.width, bomb.height, bomb.limit], ['IMAGE_TOO_LARGE', 20000, 20000, DEFAULT_MAX_PIXELS]);
    const jpgBomb = Buffer.from(JPG);
    const sof = jpgBomb.indexOf(Buffer.from([0xff, 0xc0]));
    jpgBomb.writeUInt16BE(9000, sof + 5);
    jpgBomb.writeUInt16BE(9000, sof + 7);
    r = await request(detect, { body: jpgBomb, agent: false });
    assert.is(r.status, 413, r.body);
    assert.match(json<{ error: string }>(r).error, /image is 9000x9000 \(81\.0 megapixels\)/);
    for (const [what, build, status, re] of [
      ['two files', (fd: FormData) => { fd.append('a', file(JPG, 'a.jpg', 'image/jpeg')); fd.append('b', file(JPG, 'b.jpg', 'image/jpeg')); }, 400, /the form has 2 files: send one image per request/],
      ['a bomb in a form', (fd: FormData) => fd.append('image', file(bombPng(20000, 20000), 'bomb.png', 'image/png')), 413, /image is 20000x20000/],
      ['a text file in a form', (fd: FormData) => fd.append('image', file(Buffer.from('hello'), 'a.txt', 'text/plain')), 400, /not a PNG or JPEG/],
      ['a JPEG declared PNG in a form', (fd: FormData) => fd.append('image', file(JPG, 'a.png', 'image/png')), 415, /content-type image\/png but the bytes are a JPEG/],
      ['a bad form field', (fd: FormData) => { fd.append('image', file(JPG, 'a.jpg', 'image/jpeg')); fd.append('iou', '2'); }, 400, /form field iou="2": expected a number in \[0, 1\]/],
      ['an unknown form field', (fd: FormData) => { fd.append('image', file(JPG, 'a.jpg', 'image/jpeg')); fd.append('threshold', '0.5'); }, 400, /unknown form field "threshold"/],
    ] as const) {
      const fd = new FormData();
      build(fd);
      const x = await postForm(detect, fd);
      assert.is(x.status, status, `${what}: ${JSON.stringify(x.body)}`);
      assert.match(String(x.body.error), re, what);
    }
    const both = new FormData();
    both.append('image', file(JPG, 'a.jpg', 'image/jpeg'));
    both.append('conf', '0.3');
    const x = await postForm(`${detect}?conf=0.2`, both);
    assert.is(x.status, 400);
    assert.match(String(x.body.error), /conf given both in the query and in the form/);

    // ---- batching: 4 concurrent clients -> batches of more than one (one forward each), same answers
    const before = await metrics();
    const images = fixtureImages().filter((im) => /\.(jpg|png)$/.test(im.name)).slice(0, 4);
    const answers = await Promise.all(images.map((im) => request(`${detect}?conf=${CONF}`, { body: im.bytes, agent: false })));
    const after = await metrics();
    for (let i = 0; i < images.length; i++) {
      assert.is(answers[i].status, 200, answers[i].body);
      assert.is(detectionsDiffer(json<Answer>(answers[i]).detections, await libraryDetect(images[i].bytes)), null, `${images[i].name} batched: the library's detections`);
    }
    const sizes = Object.entries(after.batchSizes).map(([k, v]) => [Number(k), v - (before.batchSizes[k] ?? 0)]).filter(([, n]) => n > 0);
    assert.is(after.images - before.images, 4, 'four images ran');
    assert.ok(after.batches - before.batches < 4 && sizes.some(([k]) => k > 1), `batches by size: ${JSON.stringify(sizes)}`);
    assert.ok(answers.some((q) => Number(q.headers['x-batch-size']) > 1), 'an answer says it ran in a batch');

    // ---- the queue bound: 4 (one batch) + 2 (--max-queue) admitted, the seventh 503 at once
    const hold = Array.from({ length: 6 }, () => held(`${detect}?conf=${CONF}`, JPG.length));
    await waitFor('six admitted requests', async () => (await metrics()).inFlight === 6);
    r = await request(detect, { body: JPG, agent: false });
    assert.is(r.status, 503, r.body);
    assert.is(r.headers['retry-after'], '1');
    assert.match(json<{ error: string }>(r).error, /busy: 6 requests in flight, the most this server admits \(--max-concurrent 1 x --max-batch 4 running, --max-queue 2 waiting\)/);
    for (const h of hold) h.send(JPG);
    const held6 = await Promise.all(hold.map((h) => h.result));
    for (const q of held6) {
      assert.is(q.status, 200, q.body);
      assert.is(detectionsDiffer(json<Answer>(q).detections, want), null);
    }
    assert.ok(held6.some((q) => q.headers['x-batch-size'] === '4'), `a full batch of 4: ${held6.map((q) => q.headers['x-batch-size'])}`);

    // ---- --timeout-ms: a body that stops half way is cut with 408
    const slow = held(detect, JPG.length);
    slow.part(JPG.subarray(0, 100));
    const rs = await slow.result;
    assert.is(rs.status, 408, rs.body);
    assert.match(json<{ error: string }>(rs).error, /the body did not arrive within the time limit of 4000 ms/);
    assert.ok(rs.ms >= 3900, `cut after ${rs.ms} ms`);

    // ---- a reduced load test: good and bad requests from 3 clients
    const lr = await loadTest({ server: s, requests: 30, clients: 3, maxBytes: 65536, conf: CONF, maxDet: 100, images: fixtureImages() });
    assert.equal(lr.errors, [], 'every request answered');
    assert.equal(lr.failures, [], 'no wrong answer');
    assert.is(lr.good.ok, lr.good.sent, 'every good request: 200 with the lone request\'s detections');
    for (const [kind, k] of Object.entries(lr.bad.byKind)) assert.equal(k.statuses, k.sent ? { [BAD_STATUS[kind as keyof typeof BAD_STATUS]]: k.sent } : {}, kind);
    assert.ok(lr.rss.max - lr.rss.start < 150 * MB, `server RSS ${(lr.rss.start / MB).toFixed(0)} -> max ${(lr.rss.max / MB).toFixed(0)} MB`);

    // ---- /metrics: counts and percentiles; /health
    const mt = await metrics();
    assert.ok(mt.detectRequests >= 60 && mt.responses['200'] >= 20 && mt.responses['413'] >= 4 && mt.responses['415'] >= 4 && mt.responses['503'] >= 1, JSON.stringify(mt.responses));
    assert.is(mt.errors.server, mt.responses['503'], 'the only 5xx: the 503 of the full queue');
    assert.ok(mt.errors.client >= 30);
    assert.ok(mt.latencyMs.count >= 20 && mt.latencyMs.count < mt.responses['200'] && mt.latencyMs.p50 > 0 && mt.latencyMs.p50 <= mt.latencyMs.p90 && mt.latencyMs.p90 <= mt.latencyMs.p99, JSON.stringify(mt.latencyMs));
    assert.equal([mt.queueDepth, mt.inFlight], [0, 0]);
    const h = json<{ ok: boolean; names: string[]; input: { width: number }; limits: { maxBatch: number } }>(await request(`${s.url}/health`, { agent: false }));
    assert.equal([h.ok, h.names, h.input.width, h.limits.maxBatch], [true, ['circle', 'square', 'triangle'], 128, 4]);
  });
});

test('embedded (createDetectionServer): the time limit gives 503 / 504 and the server carries on; Prometheus metrics', async () => {
  const model = await loadDarknet({ cfg: CFG, weights: await miniWeights(tmp), names: NAMES, engine: new Engine(await getGpu()) });
  const lines: string[] = [];
  const serve = async (o: Partial<DetectionServerOptions>, fn: (url: string) => Promise<void>) => {
    const s = createDetectionServer({ model, log: (l) => lines.push(l), ...o });
    const { url } = await s.listen(0, '127.0.0.1');
    try {
      await fn(url);
    } finally {
      await s.close();
    }
    assert.not.ok(s.server.listening);
  };
  try {
    assert.throws(() => createDetectionServer({ model, maxBatch: 0 }), /maxBatch: expected an integer in \[1, 256\], got 0/);
    await serve({ timeoutMs: 1 }, async (url) => {
      const r = await request(`${url}/detect`, { body: flatPng(1000, 1000), agent: false });
      assert.ok([408, 503, 504].includes(r.status), `${r.status} ${r.body}`);
      assert.match(json<{ error: string }>(r).error, /time limit of 1 ms \(--timeout-ms\)/);
      assert.is((await request(`${url}/health`, { agent: false })).status, 200, 'the server carries on');
    });
    await serve({ maxBatch: 2, batchWaitMs: 100 }, async (url) => {
      const rs = await Promise.all([JPG, PNG13, JPG].map((b) => request(`${url}/detect?conf=${CONF}`, { body: b, agent: false })));
      assert.equal(rs.map((r) => r.status), [200, 200, 200]);
      assert.is(detectionsDiffer(json<Answer>(rs[0]).detections, await libraryDetect(JPG, 0.05, 1000)), null);
      const prom = await request(`${url}/metrics?format=prom`, { agent: false });
      assert.is(prom.status, 200);
      assert.match(String(prom.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      assert.match(prom.body, /^# TYPE yolo_wgsl_serve_requests_total counter$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_responses_total\{code="200"\} 3$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_detect_latency_seconds\{quantile="0\.99"\} [\d.e-]+$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_detect_latency_seconds_count 3$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_batch_size_bucket\{le="1"\} 1$/m, 'a batch of one (the third, past maxBatch 2)');
      assert.match(prom.body, /^yolo_wgsl_serve_batch_size_bucket\{le="2"\} 2$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_batch_size_sum 3$/m);
      assert.match(prom.body, /^yolo_wgsl_serve_queue_depth 0$/m);
    });
    await serve({ maxPixels: 100 }, async (url) => {
      const r = await request(`${url}/detect`, { body: PNG13, agent: false });
      assert.is(r.status, 413, r.body);
      assert.equal(json(r), { error: 'image is 13x9 (117 pixels), over the limit of 100 pixels (100 pixels; --max-pixels)', code: 'IMAGE_TOO_LARGE', width: 13, height: 9, limit: 100 });
      assert.is((await request(`${url}/detect`, { body: flatPng(10, 10), agent: false })).status, 200, '100 pixels pass');
    });
    assert.equal(lines, [], 'no internal error logged');
  } finally {
    model.dispose();
    libModel?.dispose();
    libModel = undefined;
  }
});

test.run();
