import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff } from '../helpers/check.js';
import { localBackwardRef, localRef } from '../reference/local.js';
import { Tensor, mse, newTape, sgdUpdate, sum, zeroGrads } from '../../src/tensor/index.js';
import { local } from '../../src/tensor/ops/local.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Forward and backward sum at most C*K*K (forward, dx over filters) or B (dw, db) float32 products.
const FWD_TOL = { atol: 1e-5, rtol: 1e-5 };
const BWD_TOL = { atol: 1e-5, rtol: 1e-5 };
const FD_TOL = { atol: 2e-5, rtol: 2e-5 };

// Evenly spread distinct indices (first and last included).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));

const cases = [
  { name: 'size 3 pad 1 stride 1 (YOLOv1), batch 2', shape: [2, 3, 5, 6], filters: 4, size: 3, stride: 1, pad: 1, outH: 5, outW: 6 },
  { name: 'size 2 pad 0 stride 2', shape: [1, 2, 6, 5], filters: 3, size: 2, stride: 2, pad: 0, outH: 3, outW: 2 },
  { name: 'size 3 pad 1 stride 2 (odd input), batch 2', shape: [2, 2, 7, 6], filters: 3, size: 3, stride: 2, pad: 1, outH: 4, outW: 3 },
  { name: 'size 1 pad 0 stride 1, batch 2', shape: [2, 3, 4, 3], filters: 2, size: 1, stride: 1, pad: 0, outH: 4, outW: 3 },
];

function inputs(c: (typeof cases)[number], seed: number) {
  const rng = new Rng(seed);
  const [B, C] = c.shape;
  const L = c.outH * c.outW;
  const nx = c.shape.reduce((a, b) => a * b, 1);
  return {
    xv: randomArray(rng, nx, -1, 1),
    wv: randomArray(rng, L * c.filters * C * c.size * c.size, -1, 1),
    bv: randomArray(rng, c.filters * L, -1, 1),
    dyv: randomArray(rng, B * c.filters * L, -1, 1),
    wShape: [L, c.filters, C * c.size * c.size],
  };
}

for (const c of cases) {
  test(`local ${c.name}: forward vs float64 im2col + per-location GEMM`, async () => {
    const gpu = await getGpu();
    const { xv, wv, bv, wShape } = inputs(c, 2);
    const x = Tensor.from(gpu, c.shape, xv);
    const w = Tensor.from(gpu, wShape, wv);
    const b = Tensor.from(gpu, [bv.length], bv);
    const y = local(x, w, b, c);
    assert.equal([...y.shape], [c.shape[0], c.filters, c.outH, c.outW]);
    assertClose(await y.toArray(), localRef(xv, c.shape, wv, bv, c), FWD_TOL, 'local forward');
    for (const t of [x, w, b, y]) t.dispose();
  });

  test(`local ${c.name}: dx, dweights, dbiases vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const { xv, wv, bv, dyv, wShape } = inputs(c, 3);
    const x = Tensor.param(gpu, c.shape, xv);
    const w = Tensor.param(gpu, wShape, wv);
    const b = Tensor.param(gpu, [bv.length], bv);
    const dy = Tensor.from(gpu, [c.shape[0], c.filters, c.outH, c.outW], dyv);
    const tape = newTape();
    const y = tape.record(() => local(x, w, b, c));
    assertClose(await y.toArray(), localRef(xv, c.shape, wv, bv, c), FWD_TOL, 'local forward (recorded)');
    tape.backward(y, dy);
    const [dx, dw, db] = [await x.grad!.toArray(), await w.grad!.toArray(), await b.grad!.toArray()];
    const ref = localBackwardRef(xv, c.shape, wv, dyv, c);
    assertClose(dx, ref.dx, BWD_TOL, 'local dx');
    assertClose(dw, ref.dw, BWD_TOL, 'local dweights');
    assertClose(db, ref.db, BWD_TOL, 'local dbiases');
    // central differences of the float64 forward, loss = sum(y * dy)
    const xs = f64(xv);
    const ws = f64(wv);
    const bs = f64(bv);
    const loss = () => dot(localRef(xs, c.shape, ws, bs, c), dyv);
    for (const [label, vals, got] of [['dx', xs, dx], ['dweights', ws, dw], ['dbiases', bs, db]] as const) {
      const idx = spread(vals.length, 48);
      assertClose(idx.map((i) => got[i]), finiteDiff(loss, vals, idx, 1e-3), FD_TOL, `local ${label} vs finite differences`);
    }
    for (const t of [x.grad!, w.grad!, b.grad!, x, w, b, y, dy]) t.dispose();
    tape.dispose();
  });
}

test('local: a constant input gets no gradient; only the parameters do', async () => {
  const gpu = await getGpu();
  const c = cases[2];
  const { xv, wv, bv, dyv, wShape } = inputs(c, 4);
  const x = Tensor.from(gpu, c.shape, xv);
  const w = Tensor.param(gpu, wShape, wv);
  const b = Tensor.from(gpu, [bv.length], bv);
  const dy = Tensor.from(gpu, [c.shape[0], c.filters, c.outH, c.outW], dyv);
  const tape = newTape();
  const y = tape.record(() => local(x, w, b, c));
  tape.backward(y, dy);
  assert.is(x.grad, null);
  assert.is(b.grad, null);
  assertClose(await w.grad!.toArray(), localBackwardRef(xv, c.shape, wv, dyv, c).dw, BWD_TOL, 'local dweights (constant x, b)');
  for (const t of [w.grad!, x, w, b, y, dy]) t.dispose();
  tape.dispose();
});

test('local: writing into filter chunks of another tensor cannot be recorded for training', async () => {
  const gpu = await getGpu();
  const x = Tensor.param(gpu, [1, 1, 2, 2], [1, 2, 3, 4]);
  const w = Tensor.from(gpu, [4, 1, 1], [1, 1, 1, 1]);
  const b = Tensor.from(gpu, [4], [0, 0, 0, 0]);
  const dst = Tensor.empty(gpu, [1, 2, 2, 2]);
  const tape = newTape();
  assert.throws(() => tape.record(() => local(x, w, b, { size: 1, stride: 1, pad: 0, filters: 1, outH: 2, outW: 2 }, { dst, channelOffset: 1 })), /inference only/);
  for (const t of [x, w, b, dst]) t.dispose();
  tape.dispose();
});

test('local trains: SGD steps on its weights and biases lower an MSE loss', async () => {
  const gpu = await getGpu();
  const c = cases[0];
  const { xv, wv, bv, wShape } = inputs(c, 5);
  const x = Tensor.param(gpu, c.shape, xv); // gradients flow through x too (as inside a network)
  const w = Tensor.param(gpu, wShape, Float32Array.from(wv, (v) => v * 0.2));
  const b = Tensor.param(gpu, [bv.length], new Float32Array(bv.length));
  const target = Tensor.from(gpu, [c.shape[0], c.filters, c.outH, c.outW], randomArray(new Rng(6), c.shape[0] * c.filters * c.outH * c.outW, -1, 1));
  const losses: number[] = [];
  for (let step = 0; step < 6; step++) {
    const tape = newTape();
    const l = tape.record(() => sum(mse(local(x, w, b, c), target)));
    losses.push((await l.toArray())[0]);
    tape.backward(l);
    sgdUpdate(w, w.grad!, null, { lr: 0.05 });
    sgdUpdate(b, b.grad!, null, { lr: 0.05 });
    zeroGrads([x, w, b]);
    l.dispose();
    tape.dispose();
  }
  assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
  for (let i = 1; i < losses.length; i++) assert.ok(losses[i] < losses[i - 1], `loss rises at step ${i}: ${losses.join(', ')}`);
  assert.ok(losses.at(-1)! < losses[0] / 2, `loss ${losses[0]} -> ${losses.at(-1)}`);
  zeroGrads([x, w, b], true);
  for (const t of [x, w, b, target]) t.dispose();
});

test.run();
