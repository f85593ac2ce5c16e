import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, finiteDiff, gradCase, f64 } from '../helpers/check.js';
import { activationRef, actGrad } from '../reference/activation.js';
import { Tensor, activation, newTape, ACTIVATIONS } from '../../src/tensor/index.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// f32 kernels vs float64 references: transcendental activations carry ~1e-6 relative error.
const TOL = { atol: 2e-6, rtol: 2e-5 };

// an odd size (the scalar kernels) and a multiple of 4 (the vec4 kernels)
for (const [act, shape] of ACTIVATIONS.flatMap((a) => [[a, [2, 3, 5, 7]], [a, [2, 3, 4, 6]]] as const)) {
  test(`activation ${act} ${shape.join('x')}: forward and backward vs float64 reference and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(11);
    // include values around the softplus thresholds and exact zero
    const n = shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -6, 6);
    xv[0] = 0; xv[1] = 21; xv[2] = -21; xv[3] = 1e-3; xv[4] = -1e-3;
    const dyv = randomArray(rng, n, -1, 1);
    const x = Tensor.param(gpu, [...shape], xv);
    const dy = Tensor.from(gpu, [...shape], dyv);
    const tape = newTape();
    const y = tape.record(() => activation(x, act));
    assertClose(await y.toArray(), activationRef(xv, act), TOL, `${act} forward`);
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, Float64Array.from(xv, (v, i) => dyv[i] * actGrad(v, act)), TOL, `${act} backward vs analytic`);
    // central differences of the float64 forward, away from the kinks of leaky/relu
    const xs = f64(xv);
    const idx = [...Array(n).keys()].filter((i) => Math.abs(xs[i]) > 1e-2);
    const fd = finiteDiff(() => dot(activationRef(xs, act), dyv), xs, idx, 1e-4);
    assertClose(idx.map((i) => dx[i]), fd, { atol: 1e-5, rtol: 1e-4 }, `${act} backward vs finite differences`);
    y.dispose(); dy.dispose(); x.grad!.dispose(); x.dispose(); tape.dispose();
  });
}

test('leaky_relu vs PyTorch golden (slope 0.1, exact 0 gets gradient 0.1)', async () => {
  const gpu = await getGpu();
  const c = gradCase('leaky_relu');
  const x = Tensor.param(gpu, c.tensors.x.shape, f32In(c.tensors.x));
  const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
  const tape = newTape();
  const y = tape.record(() => activation(x, 'leaky'));
  tape.backward(y, dy);
  const tol = { atol: 1e-4, rtol: 1e-4 };
  assertClose(await y.toArray(), c.tensors.y.data, tol, 'leaky y');
  assertClose(await x.grad!.toArray(), c.tensors.dx.data, tol, 'leaky dx');
  assert.ok(c.tensors.x.data.includes(0), 'golden has an exact zero input');
});

test('linear activation is the identity and records nothing', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [3], [1, 2, 3]);
  assert.is(activation(x, 'linear'), x);
});

test.run();
