/**
 * Fine-tunes a Darknet model: loads a cfg (+ .weights), trains a few iterations on a dataset, saves the
 * new .weights. Without --data it trains on a small synthetic shapes dataset written to a temporary folder
 * (the bundled generator). Ctrl-C stops after the current update and still saves.
 *
 *   node --import tsx examples/finetune.ts --cfg fixtures/cfg/yolo-mini.cfg [--weights in.weights] \
 *     [--data my.yaml] [--iterations 20] [--size 64] --out tuned.weights
 *
 * In your own project, import from 'yolo-wgsl' instead of '../src/index.js'.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine, generateSynth, loadDarknet, train } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    cfg: { type: 'string' }, weights: { type: 'string' }, data: { type: 'string' }, names: { type: 'string' },
    iterations: { type: 'string', default: '20' }, batch: { type: 'string', default: '4' }, size: { type: 'string' },
    lr: { type: 'string', default: '0.01' }, out: { type: 'string', default: 'finetuned.weights' },
  },
});
if (!a.cfg) {
  console.error('usage: finetune.ts --cfg X.cfg [--weights X.weights] [--data X.yaml] [--iterations N] [--size S] --out Y.weights');
  process.exit(2);
}

let data = a.data;
let tmpData: string | undefined;
if (!data) {
  tmpData = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-finetune-'));
  data = generateSynth({ out: tmpData, trainCount: 16, valCount: 4, size: 64, seed: 1 }).data;
  console.log(`data: synthetic shapes in ${tmpData} (removed at the end)`);
}
const size = a.size ? Number(a.size) : undefined;
const engine = await createEngine();
console.log(`device: ${engine.adapterInfo.summary}`);
const model = await loadDarknet({ engine, cfg: a.cfg, weights: a.weights, names: a.names, width: size, height: size });
const ac = new AbortController();
process.once('SIGINT', () => ac.abort());
try {
  const report = await train({
    model, data, maxBatches: Number(a.iterations), batch: Number(a.batch), subdivisions: 1, augment: false, workers: 0,
    // Ultralytics schedule without warm-up: a short run learns from the first update
    hyp: { lr0: Number(a.lr), warmup_epochs: 0 }, epochs: 1000, signal: ac.signal,
    onProgress: (p) => console.log(`iteration ${p.iteration}  loss ${p.loss.toFixed(4)}  ${Object.entries(p.lossItems).map(([k, v]) => `${k} ${v.toFixed(4)}`).join('  ')}`),
  });
  await model.save(a.out!, { seen: report.images });
  console.log(`${report.stopped === 'aborted' ? 'stopped' : 'done'} after ${report.iterations} iterations (${report.images} images); saved ${a.out}`);
} finally {
  model.dispose();
  engine.dispose();
  if (tmpData) fs.rmSync(tmpData, { recursive: true, force: true });
}
