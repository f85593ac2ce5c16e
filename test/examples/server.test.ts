/**
 * examples/server.ts under bad input and load, as a separate process on 127.0.0.1 (bench/server-load.ts
 * starts it): one case per limit (body size, pixels, queue, timeout), query and command-line validation,
 * bad bodies, and a reduced load test (good and bad requests from a few clients: right answers, flat RSS).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { DEFAULT_MAX_PIXELS, Engine, loadDarknet } from '../../src/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { BAD_STATUS, bombPng, fixtureImages, json, loadTest, request, startServer, type HttpResult, type ServerHandle } from '../../bench/server-load.js';
import { miniWeights } from '../helpers/mini.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-server-'));
const CFG = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const NAMES = path.join(root, 'fixtures/cfg/yolo-mini.names');
const IMAGE = fs.readFileSync(path.join(root, 'fixtures/images/smooth-40x24.jpg'));
const MB = 2 ** 20;

const seededWeights = () => miniWeights(tmp);

async function withServer(args: string[], fn: (s: ServerHandle) => Promise<void>): Promise<void> {
  const s = await startServer(['--cfg', CFG, '--weights', await seededWeights(), '--names', NAMES, ...args], { cwd: tmp });
  try {
    await fn(s);
    const h = await request(`${s.url}/health`, { agent: false });
    assert.is(h.status, 200, 'the server still answers /health');
  } finally {
    const code = await s.stop();
    assert.is(code, 0, `the server exits cleanly on SIGTERM: ${s.output()}`);
  }
  assert.not.match(s.output(), /internal error|Unhandled|uncaught/i, s.output());
}

/** A POST whose headers go out now and whose body is sent by send() (or never). */
function held(url: string, length: number): { send: (body: Uint8Array) => void; part: (body: Uint8Array) => void; result: Promise<HttpResult> } {
  let req!: http.ClientRequest;
  const result = new Promise<HttpResult>((resolve, reject) => {
    const t0 = performance.now();
    req = http.request(url, { method: 'POST', headers: { 'content-length': String(length) }, agent: false }, (res) => {
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

/** A flat-colour PNG: small to send, slow to decode when large. */
function flatPng(width: number, height: number): Buffer {
  const p = new PNG({ width, height });
  p.data.fill(128);
  return PNG.sync.write(p);
}

test('command line: bad numbers and unknown options exit 2 naming the option and the range', () => {
  const server = path.join(root, 'examples/server.ts');
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), server, '--cfg', CFG, ...args], { cwd: tmp, encoding: 'utf8', timeout: 60_000 });
  for (const [args, re] of [
    [['--port', 'abc'], /--port must be an integer in \[0, 65535\], got "abc"/],
    [['--port', '70000'], /--port must be an integer in \[0, 65535\], got "70000"/],
    [['--max-concurrent', '0'], /--max-concurrent must be an integer in \[1, 64\], got "0"/],
    [['--max-bytes', '1.5'], /--max-bytes must be an integer in \[1, \d+\], got "1.5"/],
    [['--max-pixels=-1'], /--max-pixels must be an integer in \[1, \d+\], got "-1"/],
    [['--timeout-ms', ''], /--timeout-ms must be an integer/],
    [['--bogus', '1'], /Unknown option '--bogus'/],
  ] as const) {
    const r = run(...args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /usage: server\.ts --cfg/);
  }
});

test('limits: body size, pixel bomb, queue, slow body; bad queries and bodies: 4xx naming the cause; /health after each', async () => {
  await withServer(['--max-bytes', '65536', '--max-concurrent', '1', '--max-queue', '1', '--timeout-ms', '1500'], async (s) => {
    assert.match(s.output(), /limits: max-bytes 65536 \(0\.1 MiB\), max-pixels 67108864 \(67\.1 megapixels\), max-concurrent 1, max-queue 1, timeout-ms 1500/);
    const detect = `${s.url}/detect`;
    const health = async () => json<{ rss: number; running: number; waiting: number }>(await request(`${s.url}/health`, { agent: false }));

    // --max-bytes: by Content-Length, and a streamed (chunked) body that passes it
    const big = Buffer.alloc(70_000, 1);
    let r = await request(detect, { body: big, agent: false });
    assert.is(r.status, 413, r.body);
    assert.equal(json(r), { error: 'body of 70000 bytes, over --max-bytes 65536', limit: 65536 });
    r = await request(detect, { body: big, chunked: true, agent: false });
    assert.is(r.status, 413, r.body);
    assert.match(json<{ error: string }>(r).error, /body larger than --max-bytes 65536/);

    // --max-pixels: a 20000x20000 PNG bomb (and a JPEG) of a few bytes: 413 from the header, memory flat
    const rss0 = (await health()).rss;
    r = await request(detect, { body: bombPng(20000, 20000), agent: false });
    assert.is(r.status, 413, r.body);
    const b = json<{ error: string; code: string; width: number; height: number; limit: number }>(r);
    assert.equal([b.code, b.width, b.height, b.limit], ['IMAGE_TOO_LARGE', 20000, 20000, DEFAULT_MAX_PIXELS]);
    assert.match(b.error, /image is 20000x20000 \(400\.0 megapixels\), over --max-pixels 67108864 \(67\.1 megapixels\)/);
    const jpg = Buffer.from(IMAGE);
    const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
    jpg.writeUInt16BE(9000, sof + 5);
    jpg.writeUInt16BE(9000, sof + 7);
    r = await request(detect, { body: jpg, agent: false });
    assert.is(r.status, 413, r.body);
    assert.match(json<{ error: string }>(r).error, /image is 9000x9000 \(81\.0 megapixels\)/);
    assert.ok((await health()).rss - rss0 < 100 * MB, 'the server did not allocate the bomb');

    // query parameters: each bad value is a 400 naming the parameter and its range
    for (const [q, param, re] of [
      ['conf=abc', 'conf', /query parameter conf="abc": expected a number in \[0, 1\]/],
      ['conf=2', 'conf', /query parameter conf="2": expected a number in \[0, 1\]/],
      ['conf=', 'conf', /query parameter conf="": expected a number in \[0, 1\]/],
      ['iou=-0.1', 'iou', /query parameter iou="-0\.1": expected a number in \[0, 1\]/],
      ['iou=NaN', 'iou', /query parameter iou="NaN"/],
      ['maxDet=0', 'maxDet', /query parameter maxDet="0": expected an integer in \[1, 10000\]/],
      ['maxDet=1.5', 'maxDet', /query parameter maxDet="1\.5": expected an integer in \[1, 10000\]/],
      ['maxDet=10001', 'maxDet', /maxDet="10001"/],
      ['conf=0.5&conf=0.6', 'conf', /query parameter conf given 2 times/],
      ['confidence=0.5', 'confidence', /unknown query parameter "confidence"; accepted: conf \(a number in \[0, 1\]\), iou \(a number in \[0, 1\]\), maxDet \(an integer in \[1, 10000\]\)/],
    ] as const) {
      r = await request(`${detect}?${q}`, { body: IMAGE, agent: false });
      assert.is(r.status, 400, `${q}: ${r.body}`);
      const e = json<{ error: string; parameter: string }>(r);
      assert.is(e.parameter, param, q);
      assert.match(e.error, re, q);
    }
    for (const q of ['conf=0&iou=1&maxDet=10000', 'conf=1', 'conf=.5&maxDet=1', 'conf=5e-2']) {
      r = await request(`${detect}?${q}`, { body: IMAGE, agent: false });
      assert.is(r.status, 200, `${q}: ${r.body}`);
    }

    // bad bodies: 400 with the reason
    for (const [body, re] of [
      [Buffer.from('not an image at all'), /image: not a PNG or JPEG file/],
      [Buffer.alloc(0), /empty body/],
      [bombPng(20000, 20000).subarray(0, 20), /cannot decode PNG: truncated/],
      [IMAGE.subarray(0, 100), /cannot decode JPEG: truncated before the frame header/],
      [Buffer.concat([bombPng(20, 20).subarray(0, 33), Buffer.from('IDATbroken bytes here')]), /cannot decode PNG/],
      [bombPng(0, 5), /image is 0x5: no pixels/],
    ] as const) {
      r = await request(detect, { body, agent: false });
      assert.is(r.status, 400, `${re}: ${r.body}`);
      assert.match(json<{ error: string }>(r).error, re);
    }
    r = await request(detect, { method: 'GET', agent: false });
    assert.is(r.status, 405);
    r = await request(`${s.url}/nope`, { agent: false });
    assert.is(r.status, 404);

    // --max-concurrent 1 --max-queue 1: two requests admitted (their bodies held back), the third is 503
    const one = held(detect, IMAGE.length);
    const two = held(detect, IMAGE.length);
    await waitFor('two admitted requests', async () => (await health()).waiting === 2);
    r = await request(detect, { body: IMAGE, agent: false });
    assert.is(r.status, 503, r.body);
    assert.is(r.headers['retry-after'], '1');
    assert.match(json<{ error: string }>(r).error, /busy: 1 running and 1 waiting \(--max-concurrent, --max-queue\)/);
    one.send(IMAGE);
    two.send(IMAGE);
    const [r1, r2] = await Promise.all([one.result, two.result]);
    assert.equal([r1.status, r2.status], [200, 200], `${r1.body} ${r2.body}`);
    assert.equal(json(r1).detections, json(r2).detections);

    // --timeout-ms: a body that stops half way is cut with 408 after the timeout
    const slow = held(detect, IMAGE.length);
    slow.part(IMAGE.subarray(0, 100));
    const rs = await slow.result;
    assert.is(rs.status, 408, rs.body);
    assert.match(json<{ error: string }>(rs).error, /the body did not arrive within --timeout-ms 1500/);
    assert.ok(rs.ms >= 1400, `cut after ${rs.ms} ms`);
    r = await request(detect, { body: IMAGE, agent: false });
    assert.is(r.status, 200, 'the server works on after all that');
  });
});

test('--timeout-ms: a detection running past it gets 503/504 naming the timeout; the server carries on', async () => {
  await withServer(['--timeout-ms', '1'], async (s) => {
    const r = await request(`${s.url}/detect`, { body: flatPng(1000, 1000), agent: false });
    assert.ok(r.status === 503 || r.status === 504, `${r.status} ${r.body}`);
    assert.match(json<{ error: string }>(r).error, /--timeout-ms 1\b/);
  });
});

test('load: 40 requests from 3 clients, good and bad mixed: right detections, the expected 4xx, flat RSS', async () => {
  const w = await seededWeights();
  const images = fixtureImages();
  const model = await loadDarknet({ cfg: CFG, weights: w, names: NAMES, engine: new Engine(await getGpu()) });
  const expected = new Map<string, unknown>();
  for (const im of images) expected.set(im.name, JSON.parse(JSON.stringify(await model.detect(im.bytes, { conf: 0.05, iou: 0.45, maxDet: 100 }))));
  model.dispose();
  assert.ok([...expected.values()].some((d) => (d as unknown[]).length > 0), 'something detected');
  await withServer(['--max-bytes', String(MB)], async (s) => {
    const r = await loadTest({ server: s, requests: 40, clients: 3, maxBytes: MB, conf: 0.05, maxDet: 100, images, expected });
    assert.equal(r.errors, [], 'every request answered');
    assert.equal(r.failures, [], 'no wrong answer');
    assert.is(r.good.sent + r.bad.sent, 40);
    assert.is(r.good.ok, r.good.sent, 'every good request: 200 with the detections of model.detect');
    assert.is(r.bad.asExpected, r.bad.sent, 'every bad request: its 4xx');
    for (const [kind, k] of Object.entries(r.bad.byKind)) {
      assert.ok(k.sent > 0, `${kind} sent`);
      assert.equal(k.statuses, { [BAD_STATUS[kind as keyof typeof BAD_STATUS]]: k.sent }, kind);
    }
    assert.ok(r.rss.max - r.rss.start < 150 * MB, `server RSS ${(r.rss.start / MB).toFixed(0)} -> max ${(r.rss.max / MB).toFixed(0)} MB`);
  });
});

test.run();
