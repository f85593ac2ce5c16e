import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { localRef } from '../reference/local.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { local } from '../../src/tensor/ops/local.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const cases = [
  { name: 'size 3 pad 1 stride 1 (YOLOv1), batch 2', shape: [2, 3, 5, 6], filters: 4, size: 3, stride: 1, pad: 1, outH: 5, outW: 6 },
  { name: 'size 2 pad 0 stride 2', shape: [1, 2, 6, 5], filters: 3, size: 2, stride: 2, pad: 0, outH: 3, outW: 2 },
];

for (const c of cases) {
  test(`local ${c.name}: forward vs float64 im2col + per-location GEMM`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(2);
    const [, C] = c.shape;
    const L = c.outH * c.outW;
    const nx = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, nx, -1, 1);
    const wv = randomArray(rng, L * c.filters * C * c.size * c.size, -1, 1);
    const bv = randomArray(rng, c.filters * L, -1, 1);
    const x = Tensor.from(gpu, c.shape, xv);
    const w = Tensor.from(gpu, [L, c.filters, C * c.size * c.size], wv);
    const b = Tensor.from(gpu, [c.filters * L], bv);
    const y = local(x, w, b, c);
    assert.equal([...y.shape], [c.shape[0], c.filters, c.outH, c.outW]);
    assertClose(await y.toArray(), localRef(xv, c.shape, wv, bv, c), { atol: 1e-5, rtol: 1e-5 }, 'local forward');
    for (const t of [x, w, b, y]) t.dispose();
  });
}

test('local: recording it for training is refused (no backward yet)', async () => {
  const gpu = await getGpu();
  const x = Tensor.param(gpu, [1, 1, 2, 2], [1, 2, 3, 4]);
  const w = Tensor.from(gpu, [4, 1, 1], [1, 1, 1, 1]);
  const b = Tensor.from(gpu, [4], [0, 0, 0, 0]);
  const tape = newTape();
  assert.throws(() => tape.record(() => local(x, w, b, { size: 1, stride: 1, pad: 0, filters: 1, outH: 2, outW: 2 })), /backward is not implemented/);
  for (const t of [x, w, b]) t.dispose();
  tape.dispose();
});

test.run();
