import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase } from '../helpers/check.js';
import { upsampleRef, upsampleSumRef } from '../reference/upsample.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { upsample } from '../../src/tensor/ops/upsample.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Forward is a scaled copy (exact up to the scale multiply); backward sums stride² float32 values.
const TOL = { atol: 1e-6, rtol: 1e-6 };
const FD_TOL = { atol: 1e-5, rtol: 1e-5 };
const GOLDEN_TOL = { atol: 1e-4, rtol: 1e-4 };

// Evenly spread distinct indices (helpers' sampleIndices can loop forever on some lengths, e.g. 36).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));

const cases: Array<{ shape: number[]; stride: number; scale?: number }> = [
  { shape: [2, 3, 5, 7], stride: 2 },
  { shape: [2, 3, 3, 5], stride: 3, scale: 0.5 },
  { shape: [1, 5, 3, 2], stride: 4 },
  { shape: [2, 3, 2, 3], stride: 1, scale: 2 },
];

for (const c of cases) {
  test(`upsample stride ${c.stride} scale ${c.scale ?? 1} on ${c.shape.join('x')}: forward, backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(3 + c.stride);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -2, 2);
    const [N, C, H, W] = c.shape;
    const outShape = [N, C, H * c.stride, W * c.stride];
    const dyv = randomArray(rng, n * c.stride * c.stride, -1, 1);
    const x = Tensor.param(gpu, c.shape, xv);
    const dy = Tensor.from(gpu, outShape, dyv);
    const tape = newTape();
    const y = tape.record(() => upsample(x, c.stride, { scale: c.scale }));
    assert.equal([...y.shape], outShape);
    const yRef = upsampleRef(xv, c.shape, c.stride, c.scale);
    assertClose(await y.toArray(), yRef, TOL, 'upsample forward');
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, upsampleSumRef(dyv, c.shape, c.stride, c.scale), TOL, 'upsample dx');
    const xs = f64(xv);
    const idx = spread(n, 40);
    const fd = finiteDiff(() => dot(upsampleRef(xs, c.shape, c.stride, c.scale), dyv), xs, idx, 1e-3);
    assertClose(idx.map((i) => dx[i]), fd, FD_TOL, 'upsample dx vs finite differences');
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  });
}

test('upsample reverse (stride -2, scale 0.25): block sums forward, nearest expansion backward', async () => {
  const gpu = await getGpu();
  const rng = new Rng(9);
  const shape = [2, 3, 6, 4];
  const small = [2, 3, 3, 2];
  const xv = randomArray(rng, 144, -2, 2);
  const dyv = randomArray(rng, 36, -1, 1);
  const x = Tensor.param(gpu, shape, xv);
  const dy = Tensor.from(gpu, small, dyv);
  const tape = newTape();
  const y = tape.record(() => upsample(x, -2, { scale: 0.25 }));
  assert.equal([...y.shape], small);
  const fwd = (v: ArrayLike<number>) => upsampleSumRef(v, small, 2, 0.25);
  assertClose(await y.toArray(), fwd(xv), TOL, 'reverse forward');
  tape.backward(y, dy);
  const dx = await x.grad!.toArray();
  assertClose(dx, upsampleRef(dyv, small, 2, 0.25), TOL, 'reverse dx');
  const xs = f64(xv);
  const idx = spread(144, 30);
  assertClose(idx.map((i) => dx[i]), finiteDiff(() => dot(fwd(xs), dyv), xs, idx, 1e-3), FD_TOL, 'reverse dx vs finite differences');
  assert.throws(() => upsample(Tensor.from(gpu, [1, 1, 5, 4], new Float32Array(20)), -2), /divisible/);
  for (const t of [y, dy, x.grad!, x]) t.dispose();
  tape.dispose();
});

test('upsample_nearest2x vs PyTorch golden', async () => {
  const gpu = await getGpu();
  const c = gradCase('upsample_nearest2x');
  const x = Tensor.param(gpu, c.tensors.x.shape, f32In(c.tensors.x));
  const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
  const tape = newTape();
  const y = tape.record(() => upsample(x, 2));
  assert.equal([...y.shape], c.tensors.y.shape);
  assertClose(await y.toArray(), c.tensors.y.data, GOLDEN_TOL, 'golden y');
  tape.backward(y, dy);
  assertClose(await x.grad!.toArray(), c.tensors.dx.data, GOLDEN_TOL, 'golden dx');
  for (const t of [y, dy, x.grad!, x]) t.dispose();
  tape.dispose();
});

test.run();
