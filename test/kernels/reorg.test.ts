import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff } from '../helpers/check.js';
import { reorgExtraRef, reorgRef } from '../reference/reorg.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { reorg, reorgExtra, type ReorgCall } from '../../src/tensor/ops/reorg.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const EXACT = { atol: 0, rtol: 0 };

const cases: { name: string; x: number[]; out: number[]; call: ReorgCall }[] = [
  // [reorg] (YOLOv2 passthrough): reorg_cpu(x, w, h, c, batch, s, 0)
  { name: '[reorg] stride 2, batch 2', x: [2, 8, 4, 6], out: [2, 32, 2, 3], call: { W: 6, H: 4, C: 8, stride: 2, forward: 0 } },
  // [reorg] reverse=1: reorg_cpu(x, w, h, c, batch, s, 1)
  { name: '[reorg] reverse stride 2', x: [1, 8, 3, 5], out: [1, 2, 6, 10], call: { W: 5, H: 3, C: 8, stride: 2, forward: 1 } },
  // [reorg3d]: reorg_cpu(x, w/s, h/s, c*s*s, batch, s, 0)
  { name: '[reorg3d] stride 3, odd channels', x: [2, 3, 6, 9], out: [2, 27, 2, 3], call: { W: 3, H: 2, C: 27, stride: 3, forward: 0 } },
];

for (const c of cases) {
  test(`reorg ${c.name}: forward exact vs reorg_cpu, backward is the transpose`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(11);
    const n = c.x.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -1, 1);
    const x = Tensor.param(gpu, c.x, xv);
    const tape = newTape();
    const y = tape.record(() => reorg(x, c.out, c.call));
    assert.equal([...y.shape], c.out);
    const ref = reorgRef(xv, c.call.W, c.call.H, c.call.C, c.x[0], c.call.stride, c.call.forward);
    assertClose(await y.toArray(), ref, EXACT, 'reorg forward');
    const dyv = randomArray(rng, n, -1, 1);
    const dy = Tensor.from(gpu, c.out, dyv);
    tape.backward(y, dy);
    const xs = f64(xv);
    const fd = finiteDiff(() => dot(reorgRef(xs, c.call.W, c.call.H, c.call.C, c.x[0], c.call.stride, c.call.forward), dyv), xs, undefined, 0.5);
    assertClose(await x.grad!.toArray(), fd, { atol: 1e-6, rtol: 1e-6 }, 'reorg backward');
    for (const t of [x, y, dy, x.grad!]) t.dispose();
    tape.dispose();
  });
}

test('reorg extra (pjreddie, go.cfg): forward exact vs copy_cpu with zeros after, backward vs finite differences', async () => {
  const gpu = await getGpu();
  const rng = new Rng(12);
  const shape = [3, 2, 3, 5];
  const n = 90;
  const xv = randomArray(rng, n, -1, 1);
  const x = Tensor.param(gpu, shape, xv);
  const tape = newTape();
  const y = tape.record(() => reorgExtra(x, 4));
  assert.equal([...y.shape], [3, 34, 1, 1]);
  assertClose(await y.toArray(), reorgExtraRef(xv, 3, 4), EXACT, 'reorg extra forward');
  const dyv = randomArray(rng, 3 * 34, -1, 1);
  const dy = Tensor.from(gpu, y.shape, dyv);
  tape.backward(y, dy);
  const xs = f64(xv);
  const fd = finiteDiff(() => dot(reorgExtraRef(xs, 3, 4), dyv), xs, undefined, 0.5);
  assertClose(await x.grad!.toArray(), fd, { atol: 1e-6, rtol: 1e-6 }, 'reorg extra backward');
  for (const t of [x, y, dy, x.grad!]) t.dispose();
  tape.dispose();
});

test('reorg rejects inconsistent sizes', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 6, 2, 2], new Float32Array(24));
  assert.throws(() => reorg(x, [1, 24, 1, 1], { W: 2, H: 2, C: 6, stride: 2, forward: 0 }), /C=6 is not divisible by stride\^2=4/);
  assert.throws(() => reorg(x, [1, 20, 1, 1], { W: 2, H: 3, C: 4, stride: 2, forward: 0 }), /has 24 values, expected batch 1 x 4 x 3 x 2 = 24|does not hold/);
  x.dispose();
});

test.run();
