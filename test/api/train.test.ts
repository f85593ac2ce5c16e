/**
 * train() and evaluate() through the library API on a small generated dataset: the loss goes down on a
 * fixed batch, progress events arrive per update, an AbortSignal stops the run, the trained model detects
 * and saves loadable .weights, and evaluate() gives the numbers the val command's core gives.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { DatasetError, Engine, TrainError, evaluate, generateSynth, loadDarknet, train, type TrainProgress } from '../../src/index.js';
import { networkDetector, runVal } from '../../src/api/val.js';
import { packageRoot } from '../../src/util/paths.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-api-train-'));
const cfg = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 4, valCount: 3, size: 64, seed: 3 });
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

test('train: the loss goes down on a fixed batch; progress per update; the model detects and saves loadable weights', async () => {
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
  const before = model.toWeights();
  const seen: TrainProgress[] = [];
  const report = await train({
    model, data: synth.data, maxBatches: 16, epochs: 100, batch: 4, subdivisions: 1, augment: false, workers: 0,
    hyp: { lr0: 0.02, warmup_epochs: 0 }, onProgress: (p) => seen.push(p),
  });
  assert.is(report.stopped, 'done');
  assert.is(report.iterations, 16);
  assert.is(report.images, 64);
  assert.ok(report.loopMs > 0 && report.dataWaitMs >= 0 && report.dataWaitMs <= report.loopMs, `data wait ${report.dataWaitMs} of ${report.loopMs} ms`);
  assert.is(seen.length, 16);
  assert.equal(seen.map((p) => p.iteration), [...Array(16).keys()].map((i) => i + 1));
  const losses = seen.map((p) => p.loss);
  assert.ok(losses.every(Number.isFinite));
  const first = mean(losses.slice(0, 3));
  const last = mean(losses.slice(-3));
  console.log(`  [loss ${first.toFixed(4)} (first 3) -> ${last.toFixed(4)} (last 3)]`);
  assert.ok(last < first * 0.9, `loss went down: ${first} -> ${last}`);
  assert.is(report.loss, losses[losses.length - 1]);
  assert.equal(report.files, [], 'nothing written without out');

  // the trained parameters are what the model now detects with and saves
  const after = model.toWeights();
  assert.is(after.length, before.length);
  assert.ok(after.some((v, i) => v !== before[i]), 'parameters changed');
  const img = path.join(path.dirname(synth.data), fs.readFileSync(synth.data, 'utf8').match(/val\s*=\s*(\S+)/)?.[1] ?? '');
  const file = path.join(root, 'tuned.weights');
  await model.save(file, { seen: report.images });
  const reloaded = await loadDarknet({ engine, cfg, width: 64, height: 64, weights: file });
  assert.equal([...reloaded.toWeights()].slice(20), [...after].slice(20), 'the saved file holds the trained parameters');
  void img;
  const valImages = fs.readdirSync(path.join(path.dirname(synth.data)), { recursive: true }).map(String).filter((f) => f.endsWith('.png'));
  const probe = path.join(path.dirname(synth.data), valImages[0]);
  assert.equal(await reloaded.detect(probe, { conf: 0.01 }), await model.detect(probe, { conf: 0.01 }));
  reloaded.dispose();
  model.dispose();
});

test('train: an AbortSignal stops the run within a few updates; a run folder gets checkpoints and results', async () => {
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ engine, cfg, width: 64, height: 64 });
  const ac = new AbortController();
  const out = path.join(root, 'run');
  const report = await train({
    model, data: synth.data, epochs: 5, batch: 2, subdivisions: 1, augment: false, workers: 0, out, valEvery: 1,
    onProgress: (p) => { if (p.iteration === 3) ac.abort(); }, signal: ac.signal,
  });
  assert.is(report.stopped, 'aborted');
  // progress events trail the GPU by up to two updates (asynchronous loss readback): it stops soon after
  assert.ok(report.iterations >= 3 && report.iterations <= 5, `stopped at ${report.iterations}`);
  assert.ok(report.files.some((f) => f.endsWith(path.join('weights', 'last.weights'))), report.files.join(', '));
  assert.ok(report.history.length >= 1, 'the first epoch (2 updates) ended');
  assert.ok(report.history[0].metrics && Number.isFinite(report.history[0].metrics.map50), 'validated at the epoch end');
  // still usable for detection
  assert.ok(Array.isArray(await model.detect(path.join(packageRoot(), 'fixtures/images/rgb-13x9.png'))));
  model.dispose();
});

test('train: --loss yolov5 on heads that decode Darknet boxes is refused, naming the heads and the fix; hyp alone picks the Darknet loss there', async () => {
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
  const err = await train({ model, data: synth.data, maxBatches: 1, batch: 4, subdivisions: 1, augment: false, workers: 0, loss: 'yolov5' }).catch((e: Error) => e);
  assert.ok(err instanceof TrainError, String(err));
  assert.match(err.message, /yolo-mini\.cfg:\d+: this \[yolo\] head decodes Darknet's x = σ\(t\), w = e\^t·anchor/);
  assert.match(err.message, /new_coords=1 and scale_x_y=2\.0/);
  const lines: string[] = [];
  const r = await train({ model, data: synth.data, maxBatches: 1, epochs: 1, batch: 4, subdivisions: 1, augment: false, workers: 0, hyp: { warmup_epochs: 0 }, log: (l) => lines.push(l) });
  assert.is(r.stopped, 'done');
});

test('evaluate: the val command core on the same model gives the same metrics', async () => {
  const gpu = await getGpu();
  const engine = new Engine(gpu);
  const model = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 4 });
  const r = await evaluate({ model, data: synth.data, protocol: 'coco', conf: 0.001 });
  assert.is(r.images, 3);
  assert.is(r.metrics.numImages, 3);
  assert.ok(r.metrics.instances > 0);
  assert.ok(r.metrics.detections > 0);
  const ref = await runVal({ data: synth.data, protocol: 'coco', conf: 0.001, detector: networkDetector(gpu, model.detectNetwork(), { maxDet: 300 }), log: () => {} });
  assert.is(r.metrics.map50, ref.summary.map50);
  assert.is(r.metrics.map50_95, ref.summary.map50_95);
  assert.is(r.metrics.detections, ref.summary.detections);
  assert.equal(r.confusion, ref.confusion.matrix.map((row) => Array.from(row)));
  try {
    await evaluate({ model, data: path.join(root, 'missing.yaml') });
    assert.unreachable('missing dataset');
  } catch (e) {
    assert.instance(e, DatasetError);
  }
  model.dispose();
});

test.run();
