/**
 * Training on files held in memory (src/api/train_files.ts, what the browser page trains with), in Node:
 * the in-memory dataset reports the same problems as the same files scanned on disk, its batch source
 * builds byte for byte the batches of the disk loader (augmentation and mosaic included), and trainOnFiles
 * trains exactly as train() does on the same files on disk (same losses, same .weights), validates, pauses
 * and hands out .weights mid-run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet, train, type TrainProgress } from '../../src/index.js';
import { trainOnFiles, type TrainState } from '../../src/api/train_files.js';
import { memoryDataset, MemoryBatchSource } from '../../src/data/memory.js';
import { BatchLoader } from '../../src/data/loader.js';
import { loadDataset, scanSplit, formatProblem } from '../../src/data/dataset.js';
import { augmentConfigFromNetwork } from '../../src/data/augment.js';
import { decodeImage } from '../../src/data/image.js';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { decodeWeights } from '../../src/darknet/weights.js';
import { generateSynth } from '../../src/data/synth.js';
import { packageRoot } from '../../src/util/paths.js';
import { readTree } from '../helpers/files.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-train-files-'));
const cfg = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 8, valCount: 3, size: 64, seed: 3 });

test('memory dataset: the checks and messages of the same files scanned on disk; folder split; names from the yaml', () => {
  const dir = path.join(root, 'bad');
  fs.cpSync(synth.out, dir, { recursive: true });
  const label = path.join(dir, 'labels/train/000001.txt');
  const good = fs.readFileSync(label, 'utf8').trim().split('\n');
  fs.writeFileSync(label, [good[0], '7 0.5 0.5 0.1 0.1', 'x 0.5 0.5 0.1 0.1', good[0], '0 0.5 1.5 0.1 0.1', '0 0.5 0.5 0.1'].join('\n'));
  fs.writeFileSync(path.join(dir, 'images/train/broken.png'), 'not a png');
  const spec = loadDataset(path.join(dir, 'synth.yaml'));
  const disk = scanSplit(spec, 'train');
  const logged: string[] = [];
  const mem = memoryDataset(readTree(dir), { nc: 3, log: (l) => logged.push(l) });
  assert.is(mem.split, 'folders');
  assert.equal(mem.names, spec.names);
  const rel = (s: string) => s.split(`${dir}/`).join('');
  assert.equal(mem.train.problems.map(formatProblem), disk.problems.map((p) => rel(formatProblem(p))));
  assert.equal(mem.train.counts, disk.counts);
  assert.equal(mem.train.images.map((i) => ({ ...i, labelFile: i.labelFile })), disk.images.map((i) => ({ ...i, file: rel(i.file), labelFile: i.labelFile && rel(i.labelFile) })));
  assert.ok(logged.includes('warning: labels/train/000001.txt:2: class 7 out of range 0..2'), logged.join('\n'));
  assert.ok(logged.some((l) => l.startsWith('warning: images/train/broken.png: unreadable image')), logged.join('\n'));
  assert.is(mem.val?.images.length, 3);
  // no split folders: a seeded split, the same for the same seed, every image in exactly one part
  const flat = new Map([...readTree(synth.out)].filter(([k]) => k.startsWith('images/') || k.startsWith('labels/')).map(([k, v]) => [k.replace(/(images|labels)\/(train|val)\//, '$1/$2_'), v]));
  const a = memoryDataset(flat, { nc: 3, seed: 5, valFraction: 0.25 });
  const b = memoryDataset(flat, { nc: 3, seed: 5, valFraction: 0.25 });
  assert.is(a.split, 'seeded');
  assert.is(a.val!.images.length, 3); // round(11 * 0.25)
  assert.equal(a.val!.images.map((i) => i.file), b.val!.images.map((i) => i.file));
  assert.is(new Set([...a.train.images, ...a.val!.images].map((i) => i.file)).size, 11);
  assert.is(a.train.counts.boxes + a.val!.counts.boxes, a.train.images.concat(a.val!.images).reduce((s, i) => s + i.boxes.length, 0));
  assert.throws(() => memoryDataset(new Map([['a.txt', new Uint8Array(1)]]), { nc: 3 }), /no PNG or JPEG image/);
});

test('memory batch source: byte for byte the disk loader\'s batches (augmentation, mosaic), and its state resumes', async () => {
  const net = Network.build(parseCfg(fs.readFileSync(cfg, 'utf8'), cfg), { width: 64, height: 64 });
  const augment = augmentConfigFromNetwork(net, { mosaic: true });
  const spec = loadDataset(synth.yaml);
  const disk = BatchLoader.open({ dataset: spec, split: 'train', batchSize: 3, width: 64, height: 64, augment, seed: 9, shuffle: true, workers: 0, log: () => {} });
  const mem = memoryDataset(readTree(synth.out), { nc: 3 });
  const src = new MemoryBatchSource({
    images: mem.train.images, bytes: (f) => mem.files.get(f)!, decode: async (b, n) => decodeImage(b, n), batchSize: 3, width: 64, height: 64, augment, seed: 9,
  });
  assert.is(src.batchesPerEpoch, disk.batchesPerEpoch);
  try {
    for (let g = 0; g < 5; g++) {
      const d = (await disk.next())!;
      const m = await src.next();
      assert.equal(m.shape, d.shape);
      assert.equal(m.truths, d.truths, `batch ${g} truths`);
      assert.ok(m.images.every((v, i) => v === d.images[i]), `batch ${g} pixels`);
      assert.equal(m.files, d.files.map((f) => path.relative(synth.out, f)));
      if (g === 2) {
        const s = src.state();
        const again = new MemoryBatchSource({ images: mem.train.images, bytes: (f) => mem.files.get(f)!, decode: async (b, n) => decodeImage(b, n), batchSize: 3, width: 64, height: 64, augment, seed: 9, cacheMB: 0 });
        again.restore(s);
        const x = await again.next();
        const y = await src.build(3);
        assert.ok(x.images.every((v, i) => v === y.images[i]), 'restored: the same next batch (no cache)');
      }
    }
  } finally {
    await disk.close();
  }
});

test('trainOnFiles = train() on the same files on disk: the same losses and .weights; val runs; pause, weights mid-run', async () => {
  const engine = new Engine(await getGpu());
  const settings = { maxBatches: 8, batch: 4, subdivisions: 1, seed: 4, lr: 0.002 };
  const a = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
  const diskLoss: number[] = [];
  await train({ model: a, data: synth.yaml, ...settings, workers: 0, onProgress: (p) => diskLoss.push(p.loss) });

  const b = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
  const seen: TrainProgress[] = [];
  const lines: string[] = [];
  let mid: Uint8Array | null = null;
  const run = trainOnFiles({ model: b, files: readTree(synth.out), ...settings, valEvery: 1, log: (l) => lines.push(l), onProgress: (p) => seen.push(p) });
  const ds = await run.dataset;
  assert.is(ds.train.images.length, 8);
  while (seen.length < 3) await new Promise((r) => setTimeout(r, 5));
  await run.pause();
  assert.ok(run.paused);
  const held = seen.length;
  mid = await run.weights();
  await new Promise((r) => setTimeout(r, 50));
  assert.is(seen.length, held, 'no update while paused');
  run.resume();
  const report = await run.done;
  assert.is(report.stopped, 'done');
  assert.is(report.iterations, 8);
  const memLoss = seen.map((p) => p.loss);
  const worst = Math.max(...memLoss.map((l, i) => Math.abs(l - diskLoss[i]) / Math.abs(diskLoss[i])));
  const wa = a.toWeights({ seen: 32 });
  const wb = await run.weights();
  const fa = new Float32Array(wa.buffer, wa.byteOffset + 20, (wa.length - 20) / 4);
  const fb = new Float32Array(wb.buffer, wb.byteOffset + 20, (wb.length - 20) / 4);
  let maxW = 0;
  for (let i = 0; i < fa.length; i++) maxW = Math.max(maxW, Math.abs(fa[i] - fb[i]));
  console.log(`  [losses ${memLoss[0].toFixed(3)} -> ${memLoss[7].toFixed(3)}; vs train() on disk: max relative loss difference ${worst.toExponential(2)}, max |weight difference| ${maxW.toExponential(2)}]`);
  assert.is(wa.length, wb.length);
  assert.ok(worst <= 1e-6 && maxW <= 1e-6, `same run: loss ${worst}, weights ${maxW}`);
  assert.ok(report.history.length === 4 && report.history.every((h) => h.metrics && Number.isFinite(h.metrics.map50)), 'val every epoch');
  assert.ok(lines.some((l) => l.startsWith('  val epoch 1: P ')), lines.join('\n'));
  // the mid-run weights parse and differ from the final ones
  const check = Network.build(parseCfg(fs.readFileSync(cfg, 'utf8'), cfg), { width: 64, height: 64 });
  assert.is(Number(decodeWeights(check, mid!).seen), held * 4);
  assert.not.equal(mid, wb);
  const dets = await b.detect(path.join(synth.out, 'images/val/000000.png'), { conf: 0.001 });
  assert.ok(dets.length > 0, 'the trained model detects');
  a.dispose();
  b.dispose();
});

test('trainOnFiles: checkpoints to a sink; a run resumed from the `last` pair at update 4 ends with the same .weights as the uninterrupted run', async () => {
  const engine = new Engine(await getGpu());
  const files = readTree(synth.out);
  const settings = { maxBatches: 8, batch: 4, subdivisions: 1, seed: 6, lr: 0.002, valEvery: 0 };
  const saved: { name: string; iteration: number; weights: Uint8Array; state: TrainState }[] = [];
  let finals = 0;
  const a = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
  const runA = trainOnFiles({
    model: a, files, ...settings, saveEvery: 4,
    checkpoint: { save: (name, weights, state, iteration) => { saved.push({ name, iteration, weights: weights.slice(), state: structuredClone(state) }); }, final: () => { finals++; } },
  });
  await runA.done;
  const full = await runA.weights();
  assert.ok(saved.some((c) => c.iteration === 4 && c.name === 'last'), JSON.stringify(saved.map((c) => [c.name, c.iteration])));
  assert.is(finals, 1);
  const at4 = saved.find((c) => c.iteration === 4 && c.name === 'last')!;
  const b = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 99 }); // other weights: the pair's replace them
  const its: number[] = [];
  const runB = trainOnFiles({ model: b, files, ...settings, resume: { weights: at4.weights, state: at4.state }, onProgress: (p) => its.push(p.iteration) });
  const r = await runB.done;
  assert.equal(its, [5, 6, 7, 8]);
  assert.is(r.iterations, 8);
  const resumed = await runB.weights();
  assert.is(resumed.length, full.length);
  let diff = 0;
  for (let i = 0; i < full.length; i++) if (full[i] !== resumed[i]) diff++;
  console.log(`  [resumed at update 4 of 8: ${diff} bytes of ${full.length} differ from the uninterrupted run]`);
  assert.is(diff, 0, 'byte-identical .weights');
  a.dispose();
  b.dispose();
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
