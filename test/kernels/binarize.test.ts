/**
 * kernels/binarize.wgsl (src/tensor/ops/binarize.ts) against the float64 reference (test/reference/binarize.ts):
 * the per-filter binary weights (sign * mean|w|, 0 counts as negative), the binary input (x > 0 ? 1 : -1),
 * their backward (straight-through weights, hardtan' on the input), and an XNOR conv chained on the tape
 * (conv2d on binarized input and weights) against conv2dGradRef with the same straight-through rules.
 * The forward is a step function, so finite differences apply only to the conv itself (test/kernels/conv2d).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs } from '../helpers/check.js';
import { Tensor, newTape, conv2d } from '../../src/tensor/index.js';
import { binarizeInput, binarizeWeights } from '../../src/tensor/ops/binarize.js';
import { binarizeInputGradRef, binarizeInputRef, binarizeWeightsRef } from '../reference/binarize.js';
import { conv2dGradRef, conv2dRef } from '../reference/conv2d.js';
import { Rng, randomArray } from '../../src/util/rng.js';

test('binarizeWeights: sign(w) * mean|w| per filter (0 -> -mean); backward passes the gradient straight through', async () => {
  const gpu = await getGpu();
  for (const shape of [[4, 3, 3, 3], [7, 5, 1, 1], [1, 1, 1, 1], [33, 2, 5, 3]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const rng = new Rng(n);
    const wv = randomArray(rng, n, -1, 1);
    wv[0] = 0;
    const w = Tensor.param(gpu, shape, wv);
    const tape = newTape();
    const y = tape.record(() => binarizeWeights(w));
    const got = await y.toArray();
    const ref = binarizeWeightsRef(wv, shape[0]);
    assertClose(got, ref, { atol: 0, rtol: 1e-6 }, `wb ${shape}`);
    if (n > 1) assert.ok(got[0] < 0, '0 binarizes to -mean');
    const dyv = randomArray(rng, n, -1, 1);
    tape.backward(y, Tensor.from(gpu, shape, dyv));
    assert.equal(Array.from(await w.grad!.toArray()), Array.from(dyv), `dw = dwb ${shape}`);
    tape.dispose();
    w.dispose();
  }
});

test('binarizeInput: x > 0 ? 1 : -1; backward dy where -1 < x < 1, else 0', async () => {
  const gpu = await getGpu();
  const n = 5003;
  const rng = new Rng(2);
  const xv = randomArray(rng, n, -2, 2);
  xv.set([0, 1, -1, 0.999, -0.999, 1e-30, -1e-30], 0);
  const x = Tensor.param(gpu, [n], xv);
  const tape = newTape();
  const y = tape.record(() => binarizeInput(x));
  assert.equal(Array.from(await y.toArray()), Array.from(binarizeInputRef(xv)));
  const dyv = randomArray(rng, n, -1, 1);
  tape.backward(y, Tensor.from(gpu, [n], dyv));
  assert.equal(Array.from(await x.grad!.toArray()), Array.from(Float32Array.from(binarizeInputGradRef(xv, dyv))));
  const head = Array.from(await x.grad!.toArray()).slice(0, 7);
  assert.equal(head.map((v) => v !== 0), [true, false, false, true, true, true, true], 'the mask at 0, ±1, ±0.999, ±1e-30');
  tape.dispose();
  x.dispose();
});

test('an XNOR conv on the tape: forward and gradients = conv2dRef / conv2dGradRef on the binarized tensors (STE)', async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  const xShape = [2, 3, 7, 6];
  const wShape = [4, 3, 3, 3];
  const nx = xShape.reduce((a, b) => a * b, 1);
  const nw = wShape.reduce((a, b) => a * b, 1);
  const xv = randomArray(rng, nx, -1.5, 1.5);
  const wv = randomArray(rng, nw, -1, 1);
  const x = Tensor.param(gpu, xShape, xv);
  const w = Tensor.param(gpu, wShape, wv);
  const p = { stride: [2, 1] as [number, number], pad: [1, 1] as [number, number] };
  const tape = newTape();
  const y = tape.record(() => conv2d(binarizeInput(x), binarizeWeights(w), null, p));
  const xb = binarizeInputRef(xv);
  const wb = binarizeWeightsRef(wv, wShape[0]);
  const ref = conv2dRef(xb, xShape, wb, wShape, null, { stride: [2, 1], pad: 1 });
  assert.equal([...y.shape], ref.shape);
  assertClose(await y.toArray(), ref.y, { atol: 1e-5 * maxAbs(ref.y), rtol: 0 }, 'y');
  const dyv = randomArray(rng, ref.y.length, -1, 1);
  tape.backward(y, Tensor.from(gpu, ref.shape, dyv));
  const g = conv2dGradRef(xb, xShape, wb, wShape, dyv, { stride: [2, 1], pad: 1 });
  assertClose(await w.grad!.toArray(), g.dw, { atol: 1e-5 * maxAbs(g.dw), rtol: 0 }, 'dw (straight through to the real weights)');
  const dx = binarizeInputGradRef(xv, g.dx);
  assertClose(await x.grad!.toArray(), dx, { atol: 1e-5 * maxAbs(dx), rtol: 0 }, "dx (through the binary weights, times hardtan')");
  tape.dispose();
  x.dispose();
  w.dispose();
});

test.run();
