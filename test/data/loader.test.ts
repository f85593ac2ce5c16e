import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateSynth } from '../../src/data/synth.js';
import { DEFAULT_AUGMENT, sizeSchedule, type AugmentConfig } from '../../src/data/augment.js';
import { BatchLoader, epochOrder, type LoaderBatch, type LoaderOptions } from '../../src/data/loader.js';

const tmpDirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-loader-'));
  tmpDirs.push(d);
  return d;
}

let ds: string | undefined;
/** 30 train / 7 val images of 64x64 (seed 5). */
function dataset(): string {
  if (!ds) {
    const dir = tmp();
    ds = generateSynth({ out: dir, trainCount: 30, valCount: 7, size: 64, seed: 5 }).yaml;
  }
  return ds;
}

const AUG: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.3, hue: 0.1, saturation: 1.5, exposure: 1.5, mosaic: true };

function open(o: Partial<LoaderOptions> = {}): BatchLoader {
  return BatchLoader.open({ dataset: dataset(), split: 'train', batchSize: 4, width: 48, height: 48, augment: AUG, seed: 9, workers: 0, log: () => undefined, ...o });
}

async function take(l: BatchLoader, n: number): Promise<LoaderBatch[]> {
  const out: LoaderBatch[] = [];
  for (let i = 0; i < n; i++) {
    const b = await l.next();
    if (!b) break;
    out.push(b);
  }
  return out;
}

function sameBatch(a: LoaderBatch, b: LoaderBatch, what: string): void {
  assert.equal([a.index, a.epoch, a.position], [b.index, b.epoch, b.position], what);
  assert.equal(a.shape, b.shape, what);
  assert.equal(a.files, b.files, what);
  assert.equal(a.truths, b.truths, what);
  assert.ok(Buffer.from(a.images.buffer, a.images.byteOffset, a.images.byteLength).equals(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength)), `${what}: pixels`);
}

test('loader: batches are a pure function of the seed (same seed, same batches; another seed, another order); epochs are permutations', async () => {
  const a = open();
  const b = open();
  const c = open({ seed: 10 });
  try {
    assert.is(a.batchesPerEpoch, 7); // floor(30 / 4), dropLast
    const ba = await take(a, 16);
    const bb = await take(b, 16);
    const bc = await take(c, 7);
    ba.forEach((x, i) => sameBatch(x, bb[i], `batch ${i}`));
    assert.not.equal(ba.slice(0, 7).map((x) => x.files), bc.map((x) => x.files));
    // epoch 0 and epoch 1: each a permutation (28 distinct of the 30 images), in different orders
    const e0 = ba.slice(0, 7).flatMap((x) => x.files);
    const e1 = ba.slice(7, 14).flatMap((x) => x.files);
    assert.is(new Set(e0).size, 28);
    assert.is(new Set(e1).size, 28);
    assert.not.equal(e0, e1);
    assert.equal([ba[7].epoch, ba[7].position, ba[7].index], [1, 0, 7]);
    for (const x of ba) {
      assert.equal(x.shape, [4, 3, 48, 48]);
      assert.is(x.images.length, 4 * 3 * 48 * 48);
      for (const v of x.images) if (!(v >= 0 && v <= 1)) assert.unreachable(`pixel ${v}`);
      for (const ts of x.truths) for (const t of ts) {
        assert.ok(t.cls >= 0 && t.cls < 3 && Number.isInteger(t.cls));
        assert.ok(t.x - t.w / 2 >= -1e-9 && t.x + t.w / 2 <= 1 + 1e-9 && t.y - t.h / 2 >= -1e-9 && t.y + t.h / 2 <= 1 + 1e-9);
        assert.ok(t.w * 48 >= 2 - 1e-9 && t.h * 48 >= 2 - 1e-9);
      }
    }
    assert.ok(ba.some((x) => x.truths.some((t) => t.length > 0)));
    // the order function itself
    assert.equal(Array.from(epochOrder(1, 0, 5, false)), [0, 1, 2, 3, 4]);
    assert.equal([...epochOrder(1, 3, 50, true)].sort((p, q) => p - q), [...Array(50).keys()]);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('loader: worker threads give the same batches as building in this thread', async () => {
  const a = open({ workers: 0 });
  const w = open({ workers: 1, prefetch: 3 });
  try {
    assert.is(w.workerCount, 1);
    const ba = await take(a, 9);
    const bw = await take(w, 9);
    ba.forEach((x, i) => sameBatch(x, bw[i], `batch ${i}`));
  } finally {
    await Promise.all([a.close(), w.close()]);
  }
});

test('loader: resume from state() (also through JSON, across an epoch end) yields identical batches', async () => {
  const a = open({ workers: 0 });
  try {
    const first = await take(a, 5);
    const saved = JSON.parse(JSON.stringify(a.state()));
    assert.equal([saved.epoch, saved.position, saved.batch], [0, 5, 5]);
    const rest = await take(a, 6); // batches 5..10 cross into epoch 1
    const b = open({ workers: 1, seed: 1234 }); // the state carries the seed
    try {
      b.restore(saved);
      const again = await take(b, 6);
      rest.forEach((x, i) => sameBatch(x, again[i], `resumed batch ${5 + i}`));
      // restoring rewinds a running loader too (prefetched batches are dropped)
      a.restore(saved);
      const third = await take(a, 2);
      sameBatch(third[0], rest[0], 'rewound');
      sameBatch(third[1], rest[1], 'rewound + 1');
    } finally {
      await b.close();
    }
    assert.is(first.length, 5);
  } finally {
    await a.close();
  }
});

test('loader: prefetch builds the next batches while the consumer is busy (async wait in-thread; CPU busy with a worker)', async () => {
  // in this thread: batches are built while the consumer awaits (e.g. a GPU readback)
  const a = open({ workers: 0, prefetch: 2, batchSize: 6 });
  try {
    await a.next();
    let early = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 40));
      const asked = performance.now();
      const b = (await a.next())!;
      if (b.readyAt <= asked) early++;
    }
    assert.ok(early >= 4, `${early} of 5 batches were ready before they were asked for`);
  } finally {
    await a.close();
  }
  // a worker builds while this thread computes synchronously
  const w = open({ workers: 1, prefetch: 2, batchSize: 6 });
  try {
    const b0 = (await w.next())!;
    const busy = Math.max(60, 2 * b0.buildMs);
    let early = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      while (performance.now() - t0 < busy) { /* the consumer's own work */ }
      const asked = performance.now();
      const b = (await w.next())!;
      // the batch arrived (message handled) after the busy loop, but was built during it
      if (b.readyAt - asked < 0.5 * b.buildMs) early++;
    }
    assert.ok(early >= 4, `${early} of 5 batches were built during the consumer's work`);
  } finally {
    await w.close();
  }
});

test('loader: corrupt label lines and unreadable images are skipped with file:line warnings, never a crash', async () => {
  const src = path.dirname(dataset());
  const dir = tmp();
  fs.cpSync(src, dir, { recursive: true });
  const lbl = path.join(dir, 'labels/train/000003.txt');
  const good = fs.readFileSync(lbl, 'utf8');
  fs.writeFileSync(lbl, `${good}7 0.5 0.5 0.1 0.1\n0 0.5 oops 0.1 0.1\n`);
  const goodLines = good.trim().split('\n').filter(Boolean).length;
  fs.writeFileSync(path.join(dir, 'images/train/000004.png'), 'not a png'); // fails the header check
  const png = fs.readFileSync(path.join(dir, 'images/train/000005.png'));
  fs.writeFileSync(path.join(dir, 'images/train/000005.png'), png.subarray(0, 60)); // header fine, data cut
  const logs: string[] = [];
  const l = BatchLoader.open({ dataset: path.join(dir, 'synth.yaml'), split: 'train', batchSize: 5, width: 32, height: 32, augment: false, shuffle: false, workers: 0, log: (x) => logs.push(x) });
  try {
    assert.ok(logs.some((x) => x.includes(`${lbl}:${goodLines + 1}:`) && /class 7 out of range/.test(x)), logs.join('\n'));
    assert.ok(logs.some((x) => x.includes(`${lbl}:${goodLines + 2}:`) && /non-numeric/.test(x)), logs.join('\n'));
    assert.ok(logs.some((x) => x.includes('000004.png') && /not a PNG or JPEG/.test(x)), logs.join('\n'));
    assert.is(l.size, 29);
    const all = await take(l, 100);
    assert.is(all.length, 6); // ceil(29 / 5), validation order
    const files = all.flatMap((b) => b.files);
    assert.not.ok(files.some((f) => f.endsWith('000004.png')));
    assert.not.ok(files.some((f) => f.endsWith('000005.png')), 'the truncated image is replaced');
    assert.ok(logs.some((x) => x.includes('000005.png') && /replaced by the next image/.test(x)), logs.join('\n'));
    // the image with corrupt lines keeps its good boxes
    const i3 = files.findIndex((f) => f.endsWith('000003.png'));
    assert.is(all[Math.floor(i3 / 5)].truths[i3 % 5].length, goodLines);
    assert.equal(all[5].shape, [4, 3, 32, 32]);
  } finally {
    await l.close();
  }
});

test('loader: validation mode (no shuffle, one epoch, short last batch, labels as written); multi-scale sizes per batch', async () => {
  const v = open({ split: 'val', augment: false, batchSize: 3, workers: 0 });
  try {
    const all = await take(v, 10);
    assert.equal(all.map((b) => b.shape[0]), [3, 3, 1]);
    assert.equal(all.flatMap((b) => b.files.map((f) => path.basename(f))), [0, 1, 2, 3, 4, 5, 6].map((i) => `${String(i).padStart(6, '0')}.png`));
    const labels = fs.readFileSync(path.join(path.dirname(dataset()), 'labels/val/000001.txt'), 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
    const t = all[0].truths[1];
    assert.is(t.length, labels.length);
    t.forEach((b, i) => assert.ok(b.cls === labels[i][0] && Math.abs(b.x - labels[i][1]) < 1e-6 && Math.abs(b.w - labels[i][3]) < 1e-6));
    assert.is(await v.next(), null);
  } finally {
    await v.close();
  }
  const sizes = sizeSchedule({ seed: 4, width: 64, height: 64, random: 1, resizeStep: 16, period: 2, maxAtEnds: false });
  const m = open({ sizeFor: sizes, workers: 0 });
  try {
    const bs = await take(m, 12);
    bs.forEach((b, i) => {
      const s = sizes(i);
      assert.equal(b.shape, [4, 3, s.height, s.width]);
      assert.is(b.images.length, 4 * 3 * s.width * s.height);
    });
    assert.ok(new Set(bs.map((b) => b.shape[3])).size > 1, 'the size changes');
  } finally {
    await m.close();
  }
});

test('loader speed (reported): 16 x 128x128 synth images per batch, augmentation with mosaic', async () => {
  const dir = tmp();
  const yaml = generateSynth({ out: dir, trainCount: 64, valCount: 0, size: 128, seed: 2 }).yaml;
  for (const workers of [0, 1]) {
    const l = BatchLoader.open({ dataset: yaml, split: 'train', batchSize: 16, width: 128, height: 128, augment: AUG, workers, log: () => undefined });
    try {
      await l.next();
      const bs = await take(l, 4);
      const build = bs.reduce((s, b) => s + b.buildMs, 0) / bs.length;
      console.log(`  loader (workers=${workers}): ${build.toFixed(1)} ms to decode + augment a batch of 16 at 128x128 (${(build / 16).toFixed(2)} ms per image)`);
    } finally {
      await l.close();
    }
  }
});

test.after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

test.run();
