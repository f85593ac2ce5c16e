import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import { softmaxRowsBackwardRef, softmaxRowsRef, type RowsRef } from '../reference/softmax.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { softmaxRows } from '../../src/tensor/ops/softmax.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const FWD = { atol: 1e-7, rtol: 2e-6 };
const BWD = { atol: 1e-6, rtol: 1e-5 };

const cases: { name: string; shape: number[]; rows: RowsRef }[] = [
  // [softmax] groups=3 of a flat 2 x 30 input, temperature 0.5
  { name: '[softmax] groups 3, temperature 0.5, batch 2', shape: [2, 30, 1, 1], rows: { rows: 6, n: 10, c0: 3, s0: 10, s2: 30, temperature: 0.5 } },
  // [region]: classes (entries 5..7 of 8) of 2 anchors on a 3x4 grid, stride H*W; x..obj untouched
  { name: '[region] classes, strided rows', shape: [2, 16, 3, 4], rows: { rows: 2 * 2 * 12, n: 3, stride: 12, offset: 5 * 12, c0: 12, s0: 1, c1: 2, s1: 8 * 12, s2: 16 * 12 } },
  // [detection]: classes of each of 2x2 cells, then untouched confidences/boxes
  { name: '[detection] per-cell classes', shape: [1, 2 * 2 * (4 + 2 * 5), 1, 1], rows: { rows: 4, n: 4, c0: 4, s0: 4, s2: 56 } },
];

for (const c of cases) {
  test(`softmax ${c.name}: forward vs float64, backward vs analytic and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(3);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -4, 4);
    const x = Tensor.param(gpu, c.shape, xv);
    const tape = newTape();
    const y = tape.record(() => softmaxRows(x, c.rows));
    assertClose(await y.toArray(), softmaxRowsRef(xv, c.rows), FWD, 'softmax forward');
    const dyv = randomArray(rng, n, -1, 1);
    const dy = Tensor.from(gpu, c.shape, dyv);
    tape.backward(y, dy);
    const gx = await x.grad!.toArray();
    assertClose(gx, softmaxRowsBackwardRef(xv, dyv, c.rows), BWD, 'softmax backward vs analytic');
    const xs = f64(xv);
    const idx = sampleIndices(n, 40);
    assertClose(idx.map((i) => gx[i]), finiteDiff(() => dot(softmaxRowsRef(xs, c.rows), dyv), xs, idx, 1e-5), { atol: 1e-5, rtol: 1e-4 }, 'softmax backward vs finite differences');
    for (const t of [x, y, dy, x.grad!]) t.dispose();
    tape.dispose();
  });
}

test('softmax: large logits do not overflow; rows outside the tensor are refused', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 4, 1, 1], [1000, 1001, -1000, 999]);
  const y = softmaxRows(x, { rows: 1, n: 4 });
  assertClose(await y.toArray(), softmaxRowsRef([1000, 1001, -1000, 999], { rows: 1, n: 4 }), FWD, 'large logits');
  assert.throws(() => softmaxRows(x, { rows: 2, n: 4, s2: 4 }), /beyond/);
  x.dispose();
  y.dispose();
});

test.run();
