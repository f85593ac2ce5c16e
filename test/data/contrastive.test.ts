/**
 * The loader for [net] contrastive=1 (AugmentConfig.contrastive, src/data/worker.ts contrastiveBatch): pairs
 * (slot 2k+1 is slot 2k's file again), track ids shared by the boxes of a pair and distinct across files,
 * the pair's crop / flip and HSV shared unless contrastive_jit_flip / contrastive_color, mosaic pairs; the
 * config read from a cfg; no track ids without it. And train() on contrastive-mini.cfg: the [contrastive]
 * gradient reaches the embedding layer (its biases move: nothing else trains them).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { generateSynth } from '../../src/data/synth.js';
import { DEFAULT_AUGMENT, augmentConfigFromNetwork, type AugmentConfig } from '../../src/data/augment.js';
import { BatchLoader, type LoaderBatch } from '../../src/data/loader.js';
import { Network } from '../../src/darknet/network.js';
import { Engine, TrainError, loadDarknet, train } from '../../src/index.js';
import { CONTRASTIVE_MINI_CFG, CONTRASTIVE_MINI_SEED } from '../yolo/contrastive_mini.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-contrastive-'));
const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 12, valCount: 2, size: 64, seed: 4 });

async function batches(augment: AugmentConfig, n = 3): Promise<LoaderBatch[]> {
  const l = BatchLoader.open({ dataset: synth.yaml, split: 'train', batchSize: 4, width: 64, height: 48, augment, seed: 3, workers: 0, log: () => undefined });
  const out: LoaderBatch[] = [];
  try {
    for (let i = 0; i < n; i++) out.push((await l.next())!);
  } finally {
    await l.close();
  }
  return out;
}

const per = 3 * 64 * 48;
/** The bytes of slot s's image. */
const pixels = (b: LoaderBatch, s: number) => Buffer.from(b.images.buffer, b.images.byteOffset + s * per * 4, per * 4);
const tracks = (b: LoaderBatch, s: number) => b.truths[s].map((t) => t.track!);

const BASE: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.3, hue: 0.1, saturation: 1.5, exposure: 1.5 };

test('pairs: the same file twice, the same track ids; shared crop and HSV give the same image', async () => {
  for (const b of await batches({ ...BASE, contrastive: { jitFlip: false, color: false } })) {
    assert.equal([b.files[1], b.files[3]], [b.files[0], b.files[2]]);
    for (const s of [0, 1, 2, 3]) assert.ok(b.truths[s].every((t) => Number.isInteger(t.track) && t.track! >= 0), `slot ${s} track ids`);
    assert.equal(b.truths[1], b.truths[0], 'same crop: same boxes, same ids');
    assert.ok(pixels(b, 1).equals(pixels(b, 0)), 'same pixels');
    if (b.files[2] !== b.files[0]) assert.ok(tracks(b, 2).every((t) => !tracks(b, 0).includes(t)), 'another file, other ids');
  }
});

test('pairs with contrastive_jit_flip: their own crop, the ids of their file on the boxes they keep', async () => {
  let differ = 0;
  let shared = 0;
  for (const b of await batches({ ...BASE, contrastive: { jitFlip: true, color: false } }, 4)) {
    assert.equal([b.files[1], b.files[3]], [b.files[0], b.files[2]]);
    for (const p of [0, 2]) {
      const [a, c] = [tracks(b, p), tracks(b, p + 1)];
      // a box one crop drops loses its id in that image only; the other pair's file has other ids
      const other = b.files[2 - p] === b.files[p] ? [] : [...tracks(b, 2 - p), ...tracks(b, 3 - p)];
      assert.ok([...a, ...c].every((t) => !other.includes(t)), `pair ${p}: ids ${a} / ${c} vs ${other}`);
      if (a.some((t) => c.includes(t))) shared++;
      if (!pixels(b, p).equals(pixels(b, p + 1))) differ++;
    }
  }
  assert.ok(differ >= 6, `the pairs' crops differ (${differ} of 8)`);
  assert.ok(shared >= 4, `pairs sharing ids: ${shared} of 8`);
});

test('mosaic pairs: the same 4 images (the same ids), their own cut; no ids without contrastive', async () => {
  const [b] = await batches({ ...BASE, mosaic: true, mosaicProb: 1, contrastive: { jitFlip: false, color: false } }, 1);
  assert.equal(b.files[1], b.files[0]);
  const all = new Set(tracks(b, 0));
  assert.ok(tracks(b, 1).some((t) => all.has(t)), 'shared ids');
  assert.ok(!pixels(b, 0).equals(pixels(b, 1)), 'their own cut point');
  const [plain] = await batches(BASE, 1);
  assert.ok(plain.truths.flat().every((t) => !('track' in t)), 'no track ids');
});

test('the cfg: [net] contrastive, contrastive_jit_flip, contrastive_color; train() needs a mini-batch of 2', async () => {
  const net = Network.fromFile(CONTRASTIVE_MINI_CFG);
  assert.equal(augmentConfigFromNetwork(net).contrastive, { jitFlip: true, color: false });
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ engine, cfg: CONTRASTIVE_MINI_CFG, seed: CONTRASTIVE_MINI_SEED });
  try {
    await train({ model, data: synth.yaml, maxBatches: 1, batch: 1, subdivisions: 1, loss: 'darknet', workers: 0 });
    assert.unreachable('trained');
  } catch (e) {
    assert.instance(e, TrainError);
    assert.match((e as Error).message, /contrastive=1 .* batch \/ subdivisions >= 2/);
  }
  model.dispose();
});

test('train(): the [contrastive] gradient trains the embedding layer (its biases move; only that loss reaches them)', async () => {
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ engine, cfg: CONTRASTIVE_MINI_CFG, seed: CONTRASTIVE_MINI_SEED });
  const layer9 = () => {
    const net = model.network;
    const d = net.layers[9].data!;
    return Array.from(d.biases);
  };
  const before = layer9();
  const report = await train({ model, data: synth.yaml, maxBatches: 3, batch: 4, subdivisions: 1, loss: 'darknet', workers: 0 });
  assert.is(report.stopped, 'done');
  assert.ok(report.loss !== null && Number.isFinite(report.loss));
  const after = layer9();
  assert.ok(after.some((v, i) => v !== before[i]), 'the embedding biases moved');
  console.log(`  contrastive train: 3 updates, loss ${report.loss!.toFixed(3)}, embedding biases max|change| ${Math.max(...after.map((v, i) => Math.abs(v - before[i]))).toExponential(1)}`);
  model.dispose();
});

test.run();
