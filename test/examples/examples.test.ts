/**
 * Each example in examples/ run as a user runs it (a separate node process through tsx), on the bundled
 * cfg and fixtures, with tiny sizes: its output is checked against the library called in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet, type Detection } from '../../src/index.js';
import { detectionsDiffer, type ServedDetection } from '../../bench/server-load.js';
import { packageRoot } from '../../src/util/paths.js';
import { miniWeights } from '../helpers/mini.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-examples-'));
const CFG = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const NAMES = path.join(root, 'fixtures/cfg/yolo-mini.names');
const IMAGES = path.join(root, 'fixtures/images');

function start(example: string, args: string[]): ChildProcess {
  // tsx resolved from here: the examples run in a temporary folder, as a user's script would
  return spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'examples', example), ...args], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
}

function run(example: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = start(example, args);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

const seededWeights = () => miniWeights(tmp);

const strip = (d: Detection) => ({ ...d, score: +d.score.toFixed(5), objectness: +d.objectness.toFixed(5), box: Object.fromEntries(Object.entries(d.box).map(([k, v]) => [k, +v.toFixed(3)])) });

test('examples/detect-folder.ts: JSON of every image = model.detectBatch in this process', async () => {
  const w = await seededWeights();
  const out = path.join(tmp, 'dets.json');
  const r = await run('detect-folder.ts', ['--cfg', CFG, '--weights', w, '--names', NAMES, '--images', IMAGES, '--out', out, '--conf', '0.05']);
  assert.is(r.code, 0, r.out);
  const got = JSON.parse(fs.readFileSync(out, 'utf8')) as { image: string; detections: Detection[] }[];
  const files = fs.readdirSync(IMAGES).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  assert.equal(got.map((g) => g.image), files);
  const model = await loadDarknet({ cfg: CFG, weights: w, names: NAMES, engine: new Engine(await getGpu()) });
  const want = await model.detectBatch(files.map((f) => path.join(IMAGES, f)), { conf: 0.05, batch: 4 });
  model.dispose();
  assert.ok(want.some((d) => d.length > 0), 'something detected');
  got.forEach((g, i) => assert.equal(g.detections.map(strip), want[i].map(strip), g.image));
});

test('examples/finetune.ts: trains a few iterations on generated data and saves loadable .weights', async () => {
  const w = await seededWeights();
  const out = path.join(tmp, 'tuned.weights');
  const r = await run('finetune.ts', ['--cfg', CFG, '--weights', w, '--size', '64', '--iterations', '4', '--out', out]);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /iteration 4 {2}loss [\d.]+/);
  assert.match(r.out, /done after 4 iterations \(16 images\)/);
  const tuned = await loadDarknet({ cfg: CFG, weights: out, engine: new Engine(await getGpu()) });
  const orig = await loadDarknet({ cfg: CFG, weights: w, engine: new Engine(await getGpu()) });
  const a = tuned.toWeights();
  const b = orig.toWeights();
  assert.is(a.length, b.length);
  assert.ok(a.some((v, i) => i >= 20 && v !== b[i]), 'the parameters changed');
  const file = fs.readFileSync(out);
  assert.is(Number(file.readBigUInt64LE(12)), 16, 'seen = 16 images in the header');
  tuned.dispose();
  orig.dispose();
});

test('examples/server.ts (createDetectionServer): POST an image to /detect on 127.0.0.1 -> the detections of model.detect', async () => {
  const w = await seededWeights();
  const p = start('server.ts', ['--cfg', CFG, '--weights', w, '--names', NAMES, '--host', '127.0.0.1', '--port', '0']);
  let out = '';
  p.stderr!.on('data', (d) => (out += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 120_000);
      p.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      p.on('close', (code) => reject(new Error(`server exited (${code}): ${out}`)));
    });
    const health = (await (await fetch(`${url}/health`)).json()) as { ok: boolean; names: string[] };
    assert.ok(health.ok);
    assert.equal(health.names, ['circle', 'square', 'triangle']);
    const image = path.join(IMAGES, 'smooth-40x24.jpg');
    const res = await fetch(`${url}/detect?conf=0.05&iou=0.45`, { method: 'POST', body: fs.readFileSync(image), headers: { 'content-type': 'image/jpeg' } });
    assert.is(res.status, 200);
    const body = (await res.json()) as { width: number; height: number; detections: ServedDetection[] };
    const model = await loadDarknet({ cfg: CFG, weights: w, names: NAMES, engine: new Engine(await getGpu()) });
    const want = await model.detect(image, { conf: 0.05, iou: 0.45 });
    model.dispose();
    assert.ok(want.length > 0, 'something detected');
    assert.equal([body.width, body.height], [40, 24]);
    assert.is(detectionsDiffer(body.detections, want), null, 'the detections of model.detect');
    const bad = await fetch(`${url}/detect`, { method: 'POST', body: new Uint8Array(Buffer.from('not an image')) });
    assert.is(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /not a PNG or JPEG/);
    const text = await fetch(`${url}/detect`, { method: 'POST', body: 'not an image' });
    assert.is(text.status, 415, 'text/plain: not an image content type');
  } finally {
    const closed = new Promise((r) => p.once('close', r));
    p.kill('SIGTERM');
    await closed;
  }
});

test.run();
