import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Tensor, newTape, dropout, dropBlock } from '../../src/tensor/index.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import type { DropoutLayer } from '../../src/layers/dropout.js';
import { runTrainer } from '../../src/train/trainer.js';
import { MseLoss, SyntheticLoader, tinyNetwork } from '../train/helpers.js';

test('dropout: drops about p of the values, scales the rest by 1/(1-p); the backward uses the same mask; seeded', async () => {
  const gpu = await getGpu();
  const n = 20000;
  const p = 0.3;
  const rng = new Rng(3);
  const xv = randomArray(rng, n, 0.5, 1.5); // never 0: a 0 output means dropped
  const dyv = randomArray(rng, n, -1, 1);
  const x = Tensor.param(gpu, [4, 5, 10, 100], xv);
  const tape = newTape();
  const y = tape.record(() => dropout(x, p, 12345));
  const yv = await y.toArray();
  tape.backward(y, Tensor.from(gpu, [4, 5, 10, 100], dyv));
  const dx = await x.grad!.toArray();
  const scale = Math.fround(1 / (1 - p));
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    if (yv[i] === 0) {
      dropped++;
      assert.is(dx[i], 0, `dx ${i} of a dropped value`);
    } else {
      assert.is(yv[i], Math.fround(xv[i] * scale), `y ${i}`);
      assert.is(dx[i], Math.fround(dyv[i] * scale), `dx ${i}`);
    }
  }
  // binomial(n, p): 3 standard deviations
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(dropped - n * p) < 3 * sd, `${dropped} dropped of ${n}, expected ${n * p} ± ${3 * sd}`);
  // neighbours are not correlated (the hash has no stripes): drops among the successors of drops ≈ p
  let pairs = 0, both = 0;
  for (let i = 0; i + 1 < n; i++) if (yv[i] === 0) { pairs++; if (yv[i + 1] === 0) both++; }
  assert.ok(Math.abs(both / pairs - p) < 0.03, `P(drop | previous dropped) = ${both / pairs}`);
  // same seed, same mask; another seed, another mask
  const again = await dropout(x, p, 12345).toArray();
  assert.equal(Array.from(again), Array.from(yv));
  const other = await dropout(x, p, 12346).toArray();
  let same = 0;
  for (let i = 0; i < n; i++) if ((other[i] === 0) === (yv[i] === 0)) same++;
  assert.ok(same < n * 0.7, `masks of two seeds agree on ${same} of ${n}`);
  assert.equal(Array.from(await dropout(x, 0, 1).toArray()), Array.from(Float32Array.from(xv)), 'p = 0: identity');
  assert.throws(() => dropout(x, 1, 1), /\[0, 1\)/);
  tape.dispose();
});

test('[dropout] layer: identity at inference, masks in training (seeded per forward)', async () => {
  const gpu = await getGpu();
  const cfg = (extra: string) => `[net]\nwidth=8\nheight=8\nchannels=2\n\n[dropout]\nprobability=.5\n${extra}\n`;
  const net = Network.build(parseCfg(cfg(''), 'd.cfg'));
  const xv = randomArray(new Rng(1), 128, 1, 2);
  const x = Tensor.from(gpu, [1, 2, 8, 8], xv);
  net.prepare(gpu, 'infer');
  assert.equal(Array.from(await net.forward(x).get(0)!.toArray()), Array.from(Float32Array.from(xv)));
  net.release();
  net.prepare(gpu, 'train');
  const a = await net.forward(x, { mode: 'train', seed: 7 }).get(0)!.toArray();
  const b = await net.forward(x, { mode: 'train', seed: 7 }).get(0)!.toArray();
  const c = await net.forward(x, { mode: 'train', seed: 8 }).get(0)!.toArray();
  assert.equal(Array.from(a), Array.from(b));
  assert.ok(Array.from(a).some((v, i) => (v === 0) !== (c[i] === 0)), 'another seed, another mask');
  const zeros = Array.from(a).filter((v) => v === 0).length;
  assert.ok(zeros > 30 && zeros < 98, `${zeros} of 128 dropped at p = .5`);
  x.dispose();
});

// ---------------------------------------------------------------- DropBlock (AlexeyAB dropout_layer_kernels.cu)

/** Per channel of y (NCHW, x > 0 so 0 means dropped): the dropped square's corner and side, or null; throws if the zeros are not one square. */
function blocksOf(y: ArrayLike<number>, B: number, C: number, H: number, W: number): ({ x: number; y: number; side: number } | null)[] {
  const out: ({ x: number; y: number; side: number } | null)[] = [];
  for (let ch = 0; ch < B * C; ch++) {
    let n = 0, x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let j = 0; j < H; j++) for (let i = 0; i < W; i++) {
      if (y[ch * H * W + j * W + i] !== 0) continue;
      n++;
      x0 = Math.min(x0, i); x1 = Math.max(x1, i); y0 = Math.min(y0, j); y1 = Math.max(y1, j);
    }
    if (!n) {
      out.push(null);
      continue;
    }
    const side = x1 - x0 + 1;
    if (y1 - y0 + 1 !== side || n !== side * side) throw new Error(`channel ${ch}: ${n} zeros in a ${side} x ${y1 - y0 + 1} box, not one square`);
    out.push({ x: x0, y: y0, side });
  }
  return out;
}

test('dropBlock: one bs x bs square per channel at most, seeded at rate 1 - (1 - p/bs²)^(H·W); AlexeyAB\'s corner rule; per-image scale; the backward uses the same mask and scale', async () => {
  const gpu = await getGpu();
  const [B, C, H, W] = [4, 128, 12, 12];
  const n = B * C * H * W;
  const rng = new Rng(21);
  const xv = randomArray(rng, n, 0.5, 1.5);
  const dyv = randomArray(rng, n, -1, 1);
  for (const [p, bs] of [[0.05, 3], [0.3, 3], [0.2, 5]]) {
    const x = Tensor.param(gpu, [B, C, H, W], xv);
    const tape = newTape();
    const y = tape.record(() => dropBlock(x, { p, blockSize: bs, seed: 99 }));
    const yv = await y.toArray();
    tape.backward(y, Tensor.from(gpu, [B, C, H, W], dyv));
    const dx = await x.grad!.toArray();
    const blocks = blocksOf(yv, B, C, H, W);
    assert.ok(blocks.every((b) => !b || b.side === bs), 'every square has side bs');
    // the number of channels with a square: binomial(B·C, 1 - (1 - p/bs²)^(H·W)), within 3.5 standard deviations
    const q = 1 - (1 - p / (bs * bs)) ** (H * W);
    const k = blocks.filter((b) => b).length;
    const sd = Math.sqrt(B * C * q * (1 - q));
    assert.ok(Math.abs(k - B * C * q) < 3.5 * sd + 1, `p ${p}, bs ${bs}: ${k} squares in ${B * C} channels, expected ${(B * C * q).toFixed(1)} ± ${(3.5 * sd).toFixed(1)}`);
    // the kept values are x · 1/(1 − dropped/outputs) of their image; the gradient is dy · the same
    for (let b = 0; b < B; b++) {
      const nb = blocks.slice(b * C, (b + 1) * C).filter((v) => v).length;
      const scale = 1 / (1 - (nb * bs * bs) / (C * H * W));
      for (let e = b * C * H * W; e < (b + 1) * C * H * W; e++) {
        if (yv[e] === 0) {
          if (dx[e] !== 0) assert.unreachable(`dx ${e} of a dropped value is ${dx[e]}`);
          continue;
        }
        if (Math.abs(yv[e] - xv[e] * scale) > 1e-6 * xv[e] * scale) assert.unreachable(`y ${e}: ${yv[e]} vs ${xv[e] * scale}`);
        if (Math.abs(dx[e] - dyv[e] * scale) > 1e-6 * Math.abs(dyv[e] * scale) + 1e-7) assert.unreachable(`dx ${e}: ${dx[e]} vs ${dyv[e] * scale}`);
      }
    }
    if (p === 0.3) {
      // the seed is uniform over the map; a seed past W - bs moves back by W - bs (not clamped): corners
      // 1..bs-1 come from two seed positions, the others from one
      const corners = blocks.flatMap((b) => (b ? [b.x, b.y] : []));
      const count = (v: number) => corners.filter((c) => c === v).length;
      const twice = (count(1) + count(2)) / 2;
      const once = [0, 3, 4, 5, 6, 7, 8, 9].reduce((a, v) => a + count(v), 0) / 8;
      assert.ok(corners.every((c) => c >= 0 && c <= W - bs));
      assert.ok(twice / once > 1.5 && twice / once < 2.6, `corners 1, 2: ${twice} each, the others ${once} each (expected 2:1)`);
    }
    tape.dispose();
    x.dispose();
  }
  // seeded: the same seed draws the same squares, another seed others; p = 0 is the identity
  const x = Tensor.from(gpu, [B, C, H, W], xv);
  const a = await dropBlock(x, { p: 0.3, blockSize: 3, seed: 5 }).toArray();
  const a2 = await dropBlock(x, { p: 0.3, blockSize: 3, seed: 5 }).toArray();
  const other = await dropBlock(x, { p: 0.3, blockSize: 3, seed: 6 }).toArray();
  assert.equal(Array.from(a), Array.from(a2));
  assert.ok(Array.from(a).some((v, i) => (v === 0) !== (other[i] === 0)));
  assert.is(dropBlock(x, { p: 0, blockSize: 3, seed: 5 }), x);
  assert.throws(() => dropBlock(x, { p: 0.1, blockSize: 13, seed: 1 }), /block size 13/);
  // every channel dropped whole: the scale is 0 (Darknet's 1/(1 - 1) would make the outputs NaN)
  const one = Tensor.from(gpu, [1, 1, 2, 2], [1, 2, 3, 4]);
  let whole = 0;
  for (let s = 0; s < 20; s++) {
    const v = Array.from(await dropBlock(one, { p: 0.99, blockSize: 2, seed: s }).toArray());
    assert.ok(v.every((e) => Number.isFinite(e)));
    if (v.every((e) => e === 0)) whole++;
    else assert.equal(v, [1, 2, 3, 4]);
  }
  assert.ok(whole > 5, `${whole} of 20 seeds dropped the whole map`);
  x.dispose();
});

test('[dropout] dropblock=1: the cfg keys as AlexeyAB parse_dropout reads them; the schedule; identity at inference', async () => {
  const gpu = await getGpu();
  const cfg = (keys: string, w = 12, h = 12) => `[net]\nwidth=${w}\nheight=${h}\nchannels=4\n\n[dropout]\nprobability=.3\ndropblock=1\n${keys}\n`;
  const layer = (keys: string, w?: number, h?: number) => {
    const net = Network.build(parseCfg(cfg(keys, w, h), 'db.cfg'));
    return { net, l: net.layers[0] as DropoutLayer };
  };
  assert.equal(layer('dropblock_size_abs=5').l.dropblock, { enabled: true, sizeRel: 0, sizeAbs: 5 });
  assert.equal(layer('dropblock_size_abs=5.9').l.dropblock.sizeAbs, 5, 'an int, as Darknet reads it');
  assert.equal(layer('').l.dropblock, { enabled: true, sizeRel: 0, sizeAbs: 7 }, 'neither size: 7');
  assert.equal(layer('dropblock_size_rel=0.5\ndropblock_size_abs=3').l.dropblock, { enabled: true, sizeRel: 0, sizeAbs: 3 }, 'both: abs');
  const big = layer('dropblock_size_abs=20', 12, 9);
  assert.is(big.l.dropblock.sizeAbs, 9);
  assert.equal(big.net.warnings.map((w) => [w.key, w.line]), [['dropblock_size_abs', 9]]);
  assert.throws(() => layer('dropblock_size_abs=-2'), /db\.cfg:9: \[dropout\] key 'dropblock_size_abs': must be >= 0/);
  assert.throws(() => layer('dropblock_size_rel=-0.1'), /db\.cfg:9: \[dropout\] key 'dropblock_size_rel': must be >= 0/);
  assert.throws(() => Network.build(parseCfg('[net]\nwidth=4\nheight=4\nchannels=1\n[softmax]\n[dropout]\ndropblock=1\n', 'c.cfg')), /c\.cfg:7: \[dropout\] key 'dropblock': DropBlock needs an image input/);
  // AlexeyAB forward_dropout_layer_gpu: multiplier = iteration / (0.85 max_batches) until 85% of the run
  const { l } = layer('dropblock_size_abs=5');
  const at = (iteration: number) => l.dropBlockSchedule({ iteration, maxBatches: 100 });
  assert.equal(at(0), { p: 0, blockSize: 1, multiplier: 0 });
  assert.equal(at(17), { p: Math.fround(0.3 * Math.fround(17 / Math.fround(85))), blockSize: 1, multiplier: Math.fround(17 / Math.fround(85)) });
  assert.equal(at(51).blockSize, 3);
  assert.equal(at(85), { p: Math.fround(0.3), blockSize: 5, multiplier: 1 });
  assert.equal(l.dropBlockSchedule(), at(99));
  // dropblock_size_rel: a fraction of each side, the smaller side wins
  assert.is(layer('dropblock_size_rel=0.5', 12, 8).l.dropBlockSchedule().blockSize, 4);
  assert.is(layer('dropblock_size_rel=0.5', 12, 8).l.dropBlockSchedule({ iteration: 34, maxBatches: 100 }).blockSize, 1);
  // inference, and training at iteration 0, are the identity; later, squares of the scheduled side
  const { net } = layer('dropblock_size_abs=5');
  const xv = randomArray(new Rng(3), 2 * 4 * 144, 1, 2);
  const x = Tensor.from(gpu, [2, 4, 12, 12], xv);
  net.prepare(gpu, 'infer');
  assert.equal(Array.from(await net.forward(x).get(0)!.toArray()), Array.from(Float32Array.from(xv)));
  net.release();
  net.prepare(gpu, 'train');
  assert.equal(Array.from(await net.forward(x, { mode: 'train', seed: 3, progress: { iteration: 0, maxBatches: 100 } }).get(0)!.toArray()), Array.from(Float32Array.from(xv)));
  const sides = new Set<number>();
  for (let s = 0; s < 4; s++) {
    const y = await net.forward(x, { mode: 'train', seed: s, progress: { iteration: 51, maxBatches: 100 } }).get(0)!.toArray();
    for (const b of blocksOf(y, 2, 4, 12, 12)) if (b) sides.add(b.side);
  }
  assert.equal([...sides], [3]);
  x.dispose();
  net.dispose();
});

test('the trainer passes its progress (iterationOffset + updates done, of the run\'s length) to the forward', async () => {
  const gpu = await getGpu();
  for (const [opts, want] of [
    [{ maxBatches: 3 }, [[0, 3], [1, 3], [2, 3]]],
    [{ maxBatches: 2, iterationOffset: 10 }, [[10, 12], [11, 12]]],
    [{ epochs: 1 }, [[0, 2], [1, 2]]],
  ] as const) {
    const net = tinyNetwork();
    const seen: number[][] = [];
    const forward = net.forward.bind(net);
    net.forward = (x, o) => {
      seen.push([o?.progress?.iteration ?? -1, o?.progress?.maxBatches ?? -1]);
      return forward(x, o);
    };
    const loss = new MseLoss(gpu);
    await runTrainer({ gpu, network: net, loader: new SyntheticLoader(8, 4, 5, true), loss, subdivisions: 1, ...opts });
    assert.equal(seen, want.map((v) => [...v]), JSON.stringify(opts));
    loss.dispose();
    net.dispose();
  }
});

test.run();
