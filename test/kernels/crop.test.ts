import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff } from '../helpers/check.js';
import { cropBackwardRef, cropRef } from '../reference/crop.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { centerCrop } from '../../src/tensor/ops/crop.js';
import { Rng, randomArray } from '../../src/util/rng.js';

for (const noadjust of [false, true]) {
  test(`crop (inference, noadjust=${noadjust ? 1 : 0}): centred window, odd margins, batch 2`, async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 9, 8];
    const xv = randomArray(new Rng(4), 2 * 3 * 9 * 8, 0, 1);
    const x = Tensor.from(gpu, shape, xv);
    const y = centerCrop(x, 6, 5, noadjust ? 1 : 2, noadjust ? 0 : -1);
    assertClose(await y.toArray(), cropRef(xv, shape, 6, 5, noadjust), { atol: 1e-7, rtol: 0 }, 'crop');
    x.dispose();
    y.dispose();
  });
}

// The backward is a copy times scale (1 or 2): exact. Finite differences of the float64 forward.
const cases = [
  { shape: [2, 3, 9, 8], outH: 6, outW: 5, noadjust: false, name: 'odd margins, batch 2' },
  { shape: [1, 2, 6, 7], outH: 6, outW: 3, noadjust: true, name: 'full height, noadjust' },
  { shape: [1, 1, 4, 4], outH: 4, outW: 4, noadjust: false, name: 'no crop (the whole plane)' },
];
for (const c of cases) {
  test(`crop backward (${c.name}): dx = scale * dy in the centred window, 0 outside; vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(8);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, 0, 1);
    const dyv = randomArray(rng, c.shape[0] * c.shape[1] * c.outH * c.outW, -1, 1);
    const x = Tensor.param(gpu, c.shape, xv);
    const dy = Tensor.from(gpu, [c.shape[0], c.shape[1], c.outH, c.outW], dyv);
    const tape = newTape();
    const y = tape.record(() => centerCrop(x, c.outH, c.outW, c.noadjust ? 1 : 2, c.noadjust ? 0 : -1));
    assertClose(await y.toArray(), cropRef(xv, c.shape, c.outH, c.outW, c.noadjust), { atol: 1e-7, rtol: 0 }, 'crop forward (recorded)');
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, cropBackwardRef(dyv, c.shape, c.outH, c.outW, c.noadjust), { atol: 0, rtol: 0 }, 'crop dx');
    const xs = f64(xv);
    const idx = [...Array(n).keys()];
    assertClose(dx, finiteDiff(() => dot(cropRef(xs, c.shape, c.outH, c.outW, c.noadjust), dyv), xs, idx), { atol: 1e-6, rtol: 1e-6 }, 'crop dx vs finite differences');
    for (const t of [x.grad!, x, y, dy]) t.dispose();
    tape.dispose();
  });
}

test('crop outside a tape or on a constant input records nothing', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 1, 3, 3], randomArray(new Rng(1), 9));
  const tape = newTape();
  const y = tape.record(() => centerCrop(x, 2, 2));
  assert.is(tape.nodes.length, 0);
  assert.is(y.requiresGrad, false);
  y.dispose();
  tape.dispose();
  x.dispose();
});

test.run();
