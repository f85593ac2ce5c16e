/**
 * `train` end to end on a generated dataset (src/data/synth.ts) with the bundled yolo-mini cfg at 64x64:
 * the real loader (augmentation), the Darknet [yolo] loss, validation with mAP, the run folder, and exact
 * resume through the CLI: 2 epochs straight == 1 epoch + resume, and == interrupted + resume (bitwise).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { generateSynth } from '../../src/data/synth.js';
import { fmtDuration, progressLine, readRunState, runFolder, runTrain, type TrainCliOptions } from '../../src/cli/train.js';
import { resultsCsv } from '../../src/api/train.js';
import { packageRoot } from '../../src/util/paths.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-train-cli-'));
const cfg = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');

async function runCli(o: Partial<TrainCliOptions>) {
  const gpu = await getGpu();
  const lines: string[] = [];
  const r = await runTrain({ cfg, img: 64, batch: 4, subdivisions: 1, workers: 0, out: path.join(root, 'runs'), progress: 'lines', logEvery: 1, gpu, log: (l) => lines.push(l), ...o });
  return { r, lines };
}

test('train: run folder, results.csv, plots, last/best/final, validation metrics; exact resume through the CLI', async () => {
  const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 8, valCount: 3, size: 64, seed: 7 });
  const data = synth.data;
  const { r: a, lines } = await runCli({ data, epochs: 2, name: 'a' });
  assert.is(a.iteration, 4);
  assert.is(a.epoch, 2);
  assert.is(a.runDir, path.join(root, 'runs', 'a'));
  for (const f of ['args.json', 'results.csv', 'results.png', 'metrics.png', 'loss.png', 'lr.png', 'chart.png', 'labels.jpg', 'val/val_batch0_labels.jpg', 'val/val_batch0_pred.jpg', 'val/PR_curve.png', 'weights/last.weights', 'weights/last.state', 'weights/best.weights', 'weights/final.weights', 'val/metrics.json']) {
    assert.ok(fs.existsSync(path.join(a.runDir, f)), `${f} written`);
  }
  const csv = fs.readFileSync(path.join(a.runDir, 'results.csv'), 'utf8').trim().split('\n');
  assert.is(csv[0], 'epoch,iteration,loss,box,obj,cls,lr,seconds,precision,recall,map50,map50_95,fitness');
  assert.is(csv.length, 3);
  assert.ok(lines.some((l) => /^ {2}val epoch 1: P [\d.]+ {2}R [\d.]+ {2}mAP50 [\d.]+ {2}mAP50-95 [\d.]+/.test(l)), 'validation line');
  assert.ok(lines.some((l) => /^epoch 1\/2 1\/2 {2}iter 1 {2}loss [\d.]+ {2}box /.test(l)), `progress lines (${lines.find((l) => l.startsWith('epoch'))})`);
  assert.is(readRunState(a.runDir).iteration, 4);
  // a numbered folder when the name exists
  assert.is(runFolder(path.join(root, 'runs'), 'a'), path.join(root, 'runs', 'a2'));

  // 1 epoch, then --resume (cfg, data, sizes from args.json) to 2 epochs
  const { r: b1 } = await runCli({ data, epochs: 1, name: 'b' });
  assert.is(b1.iteration, 2);
  const { r: b2, lines: bl } = await runCli({ resume: b1.runDir, epochs: 2, cfg: undefined });
  assert.ok(bl.some((l) => l.startsWith('resumed from')), 'resumed');
  assert.is(b2.runDir, b1.runDir);
  // interrupted (as Ctrl-C) after the first update, then resumed
  const abortable = new AbortController();
  const { r: e1 } = await runCli({
    data, epochs: 2, name: 'e', signal: abortable.signal, log: (l) => { if (/^epoch 1\/2 1\/2/.test(l)) abortable.abort(); },
  });
  assert.is(e1.stopped, 'aborted');
  assert.ok(e1.iteration >= 1 && e1.iteration < 4);
  const { r: e2 } = await runCli({ resume: e1.runDir, epochs: 2 });
  assert.is(e2.iteration, 4);

  const wa = fs.readFileSync(path.join(a.runDir, 'weights', 'last.weights'));
  for (const dir of [b1.runDir, e1.runDir]) assert.ok(wa.equals(fs.readFileSync(path.join(dir, 'weights', 'last.weights'))), `${path.basename(dir)}: last.weights equal to the straight run`);
  assert.equal(fs.readFileSync(path.join(b1.runDir, 'results.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, 3).join()), fs.readFileSync(path.join(a.runDir, 'results.csv'), 'utf8').split('\n').map((l) => l.split(',').slice(0, 3).join()));
});

test('progress line, duration and results.csv formats', () => {
  assert.is(fmtDuration(3725), '1:02:05');
  assert.is(fmtDuration(65), '1:05');
  assert.is(fmtDuration(NaN), '--:--');
  const line = progressLine({ iteration: 7, epoch: 1, batchInEpoch: 3, batchesPerEpoch: 6, loss: 1.23456, lossItems: { box: 0.5, obj: 0.25 }, lr: 0.001, seen: 70, imagesPerSec: 12.34, eta: 61, elapsed: 3 }, 5, 10);
  assert.is(line, 'epoch 2/5 3/6 |#####.....|  iter 7  loss 1.235  box 0.5000  obj 0.2500  lr 1.00e-3  12.3 img/s  ETA 1:01');
  const csv = resultsCsv([{ epoch: 0, iteration: 2, loss: 1.5, lossItems: { box: 1, obj: 0.5 }, lr: 0.01, seconds: 1.234, fitness: 0.5, metrics: { map50: 0.9 } }]);
  assert.is(csv, 'epoch,iteration,loss,box,obj,lr,seconds,map50,fitness\n0,2,1.5,1,0.5,0.01,1.23,0.9,0.5\n');
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
