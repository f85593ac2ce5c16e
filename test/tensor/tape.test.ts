import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Tensor, Tape, activation, add, mul, scale, newTape } from '../../src/tensor/index.js';
import { axpyInPlace } from '../../src/tensor/ops/elementwise.js';

test('no tape: ops record nothing', async () => {
  const gpu = await getGpu();
  const x = Tensor.param(gpu, [3], [1, -2, 3]);
  const y = activation(x, 'leaky');
  assert.is(y.node, null);
  assert.is(y.requiresGrad, false);
  y.dispose();
  x.dispose();
});

test('tape: fan-out gradients accumulate; leaves keep .grad; backward twice sums', async () => {
  const gpu = await getGpu();
  const x = Tensor.param(gpu, [3], [1, -2, 3]);
  const w = Tensor.param(gpu, [3], [0.5, 4, -1]);
  const run = () => {
    const tape = newTape();
    // f = sum(x*w + x) = sum over x*(w+1): df/dx = w + 1, df/dw = x
    const y = tape.record(() => add(mul(x, w), x));
    tape.backward(y);
    y.dispose();
    tape.dispose();
  };
  run();
  assert.equal([...(await x.grad!.toArray())], [1.5, 5, 0]);
  assert.equal([...(await w.grad!.toArray())], [1, -2, 3]);
  run();
  assert.equal([...(await x.grad!.toArray())], [3, 10, 0], 'second backward adds into .grad');
  x.grad!.dispose(); w.grad!.dispose(); x.dispose(); w.dispose();
});

test('gradient accumulation (axpyInPlace): vec4 and scalar kernels, exact against float64 on representable values', async () => {
  const gpu = await getGpu();
  for (const n of [4, 12, 7, 1030]) {
    const a = Float32Array.from({ length: n }, (_, i) => (i % 13) * 0.25 - 1.5);
    const b = Float32Array.from({ length: n }, (_, i) => (i % 7) * 0.5 - 2);
    const into = Tensor.from(gpu, [n], a);
    const x = Tensor.from(gpu, [n], b);
    axpyInPlace(into, x, 2);
    // a + 2b is exact in float32 for these quarter-steps: any kernel must give exactly it
    assert.equal([...(await into.toArray())], Array.from(a, (v, i) => v + 2 * b[i]), `n ${n}`);
    into.dispose();
    x.dispose();
  }
});

test('tape: inputs that do not require grad get none and cost no backward', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [2], [1, 2]);
  const w = Tensor.param(gpu, [2], [3, 4]);
  const tape = newTape();
  const y = tape.record(() => scale(mul(x, w), 2));
  assert.is(tape.nodes.length, 2);
  tape.backward(y);
  assert.is(x.grad, null);
  assert.equal([...(await w.grad!.toArray())], [2, 4]);
  y.dispose(); w.grad!.dispose(); x.dispose(); w.dispose(); tape.dispose();
});

test('tape: backward frees intermediates as soon as they are no longer needed', async () => {
  const gpu = await getGpu();
  await gpu.sync();
  const x = Tensor.param(gpu, [64, 64], new Float32Array(4096).fill(0.5));
  const before = gpu.pool.inUse;
  const tape = newTape();
  const y = tape.record(() => {
    let h = x;
    for (let i = 0; i < 8; i++) h = activation(scale(h, 1.1), 'mish');
    return h;
  });
  const during = gpu.pool.inUse;
  assert.ok(during >= before + 16 * 16384, 'forward holds 16 intermediates');
  tape.backward(y);
  // after backward only y (the root, the caller's) and x.grad remain
  assert.is(gpu.pool.inUse, before + 2 * 16384);
  assert.is(tape.nodes.length, 0);
  const g = await x.grad!.toArray();
  assert.ok(g.every((v) => Number.isFinite(v) && v > 0));
  y.dispose(); x.grad!.dispose(); x.dispose(); tape.dispose();
  assert.is(gpu.pool.inUse, before - 16384);
});

test('tape.keep protects an intermediate; Tape.untracked records nothing', async () => {
  const gpu = await getGpu();
  const x = Tensor.param(gpu, [2], [1, 2]);
  const tape = newTape();
  let mid!: Tensor;
  const y = tape.record(() => {
    mid = tape.keep(scale(x, 3));
    const free = Tape.untracked(() => scale(x, 5));
    assert.is(free.node, null);
    free.dispose();
    return scale(mid, 2);
  });
  tape.backward(y);
  assert.equal([...(await mid.toArray())], [3, 6]);
  assert.equal([...(await x.grad!.toArray())], [6, 6]);
  mid.dispose(); y.dispose(); x.grad!.dispose(); x.dispose(); tape.dispose();
});

test.run();
