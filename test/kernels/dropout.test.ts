import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Tensor, newTape, dropout } from '../../src/tensor/index.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { Rng, randomArray } from '../../src/util/rng.js';

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

test('[dropout] layer: identity at inference, masks in training (seeded per forward), DropBlock refused in training', async () => {
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
  const db = Network.build(parseCfg(cfg('dropblock=1\ndropblock_size_abs=2'), 'db.cfg'));
  db.prepare(gpu, 'train');
  assert.throws(() => db.forward(x, { mode: 'train' }), /DropBlock/);
  x.dispose();
});

test.run();
