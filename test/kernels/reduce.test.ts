import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase, sampleIndices } from '../helpers/check.js';
import { channelGradRef, channelSumRef, sumGradRef, sumRef } from '../reference/reduce.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { channelMean, channelSum, channelSumSquares, mean, sum, sumSquares, type ReduceOptions } from '../../src/tensor/ops/reduce.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Accumulation is double-float, so results are the exact sum rounded to f32: within 1 ulp of the float64
// reference (sums: 2^-23 relative); means and squares add one or two f32 roundings (2 ulp).
const ULP = 2 ** -23;
const SUM_TOL = { atol: 0, rtol: ULP };
const SCALED_TOL = { atol: 0, rtol: 2 * ULP };
// Broadcast backward: g*scale (and 2*g*x) in f32.
const GRAD_TOL = { atol: 1e-7, rtol: 4 * ULP };
// Central differences of the float64 forward (linear/quadratic in x: only cancellation error).
const FD_TOL = { atol: 1e-6, rtol: 1e-6 };

// Forcing many passes and 2-D grids on small inputs (the default workgroup, so no extra pipeline) ...
const GRID: ReduceOptions = { items: 1, maxGroupsPerDim: 17 };
// ... and tiny workgroups (one more pipeline).
const TINY: ReduceOptions = { wg: 4, items: 1, maxGroupsPerDim: 9 };

type Whole = 'sum' | 'mean' | 'sumSquares';
const wholeOps: Record<Whole, (x: Tensor, o?: ReduceOptions) => Tensor> = { sum, mean, sumSquares };

function wholeRef(x: ArrayLike<number>, op: Whole): number {
  if (op === 'mean') return sumRef(x) / x.length;
  return sumRef(x, op === 'sumSquares');
}

for (const op of ['sum', 'mean', 'sumSquares'] as Whole[]) {
  test(`${op}: forward (n = 1, 255, 257, 100003) and backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(3);
    for (const n of [1, 255, 257, 100003]) {
      const xv = randomArray(rng, n, -2, 2);
      const x = Tensor.param(gpu, [n], xv);
      const tape = newTape();
      const y = tape.record(() => wholeOps[op](x));
      assert.equal(y.shape, [1]);
      const g = Tensor.from(gpu, [1], [0.75]);
      const yv = await y.toArray();
      assertClose(yv, [wholeRef(xv, op)], op === 'sum' ? SUM_TOL : SCALED_TOL, `${op} n=${n} forward`);
      tape.backward(y, g);
      const dx = await x.grad!.toArray();
      const scale = op === 'mean' ? 1 / n : 1;
      assertClose(dx, sumGradRef(xv, 0.75, scale, op === 'sumSquares'), GRAD_TOL, `${op} n=${n} backward`);
      const xs = f64(xv);
      const idx = sampleIndices(n, 12);
      const fd = finiteDiff(() => 0.75 * wholeRef(xs, op), xs, idx, 1e-3);
      assertClose(idx.map((i) => dx[i]), fd, FD_TOL, `${op} n=${n} backward vs finite differences`);
      x.grad!.dispose(); x.dispose(); g.dispose(); y.dispose(); tape.dispose();
    }
  });
}

test('sum of 1e6 values with heavy cancellation: within 1 ulp of float64 (a sequential f32 sum is ~1e3 ulp off)', async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  const n = 1_000_000;
  // ±1000 alternating plus uniform noise: every partial sum is O(1000) while the total is O(500).
  const xv = new Float32Array(n);
  for (let i = 0; i < n; i++) xv[i] = (i % 2 ? 1000 : -1000) + rng.uniform(-1, 1);
  const x = Tensor.from(gpu, [n], xv);
  const ref = sumRef(xv);
  const got = (await sum(x).toArray())[0];
  const ulp = 2 ** (Math.floor(Math.log2(Math.abs(ref))) - 23);
  let naive = Math.fround(0);
  for (let i = 0; i < n; i++) naive = Math.fround(naive + xv[i]);
  const errUlp = Math.abs(got - ref) / ulp;
  console.log(`  sum of 1e6: |err| = ${Math.abs(got - ref).toExponential(2)} = ${errUlp.toFixed(3)} ulp (rel ${(Math.abs(got - ref) / Math.abs(ref)).toExponential(2)}); sequential f32: ${(Math.abs(naive - ref) / ulp).toFixed(0)} ulp`);
  assert.ok(errUlp <= 1, `sum of 1e6 values ${got} vs float64 ${ref}: ${errUlp} ulp`);
  // squares of the same values (all positive, sum ~1e12) and the mean
  const sq = (await sumSquares(x).toArray())[0];
  const refSq = sumRef(xv, true);
  const sqRel = Math.abs(sq - refSq) / refSq;
  const mu = (await mean(x).toArray())[0];
  const muRel = Math.abs(mu - ref / n) / Math.abs(ref / n);
  console.log(`  sumSquares of 1e6: rel err ${sqRel.toExponential(2)}; mean: rel err ${muRel.toExponential(2)}`);
  assert.ok(sqRel <= ULP && muRel <= 2 * ULP, `sumSquares rel ${sqRel}, mean rel ${muRel}`);
  x.dispose();
});

test('exact cases: cancellation, ties, and values an f32 pairwise sum loses', async () => {
  const gpu = await getGpu();
  const cases: [number[], number][] = [
    [[1e8, 1, -1e8], 1],
    [[2 ** 24, 1, 1, 1, 1], 2 ** 24 + 4],
    [[1, 2 ** -24, 2 ** -24, 2 ** -24, 2 ** -24], 1 + 2 ** -22],
    [[3e30, -3e30, 7], 7],
  ];
  for (const opts of [undefined, TINY]) {
    for (const [v, want] of cases) {
      const x = Tensor.from(gpu, [v.length], v);
      assert.is((await sum(x, opts).toArray())[0], Math.fround(want), `sum ${v.join(',')} ${opts ? '4-thread workgroups' : ''}`);
      x.dispose();
    }
  }
  // sum of squares with exact products: (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 needs the product's low part
  const x = Tensor.from(gpu, [3], [1 + 2 ** -12, -(1 + 2 ** -12), 2 ** -12]);
  const want = 2 * (1 + 2 ** -11 + 2 ** -24) + 2 ** -24;
  assert.is((await sumSquares(x).toArray())[0], Math.fround(want));
  // empty tensor: the sum is 0
  const e = Tensor.from(gpu, [0], []);
  assert.is((await sum(e).toArray())[0], 0);
  x.dispose(); e.dispose();
});

test('multi-pass and 2-D grid path (1 item per thread, at most 17 workgroups per dimension; 4-thread workgroups)', async () => {
  const gpu = await getGpu();
  const rng = new Rng(9);
  // 70001 values -> 274 partials on a 17x17 grid (15 idle workgroups) -> 2 -> 1: three passes
  for (const n of [1, 257, 70001]) {
    const xv = randomArray(rng, n, -1, 1);
    const x = Tensor.from(gpu, [n], xv);
    const before = gpu.dispatches;
    const s = await sum(x, GRID).toArray();
    assert.is(gpu.dispatches - before, n === 1 ? 1 : n === 257 ? 2 : 3, `passes for ${n} values`);
    assertClose(s, [sumRef(xv)], SUM_TOL, `sum n=${n} small grid`);
    assertClose(await sumSquares(x, GRID).toArray(), [sumRef(xv, true)], SCALED_TOL, `sumSquares n=${n} small grid`);
    x.dispose();
  }
  // 4-thread workgroups: 257 values -> 65 partials on a 9x8 grid -> 17 -> 5 -> 2 -> 1: five passes
  const xv = randomArray(rng, 257, -1, 1);
  const x = Tensor.from(gpu, [257], xv);
  const before = gpu.dispatches;
  assertClose(await sum(x, TINY).toArray(), [sumRef(xv)], SUM_TOL, 'sum, 4-thread workgroups');
  assert.is(gpu.dispatches - before, 5, 'passes with 4-thread workgroups');
  x.dispose();
  // per channel: 20 rows x 2 chunks = 40 workgroups on a 17x3 grid
  const [N, C, H, W] = [3, 20, 11, 9];
  const cv = randomArray(rng, N * C * H * W, -1, 1);
  const c = Tensor.from(gpu, [N, C, H, W], cv);
  assertClose(await channelSum(c, undefined, GRID).toArray(), channelSumRef(cv, N, C, H * W), { atol: 1e-7, rtol: ULP }, 'channelSum small grid');
  assertClose(await channelSumSquares(c, undefined, GRID).toArray(), channelSumRef(cv, N, C, H * W, true), { atol: 1e-7, rtol: 2 * ULP }, 'channelSumSquares small grid');
  c.dispose();
});

const channelShapes: number[][] = [
  [2, 3, 5, 7], // odd spatial, batch 2
  [2, 5, 1, 1], // inner 1
  [1, 4, 1, 3],
  [3, 7, 40, 41], // 4920 values per channel: two passes
  [7], // [C]: one value per channel
  [4, 6], // [N, C]
];

for (const [name, fn, square, isMean] of [
  ['channelSum', channelSum, false, false],
  ['channelMean', channelMean, false, true],
  ['channelSumSquares', channelSumSquares, true, false],
] as const) {
  test(`${name}: forward and backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(21);
    for (const shape of channelShapes) {
      const n = shape.length === 1 ? 1 : shape[0];
      const c = shape.length === 1 ? shape[0] : shape[1];
      const inner = shape.slice(2).reduce((a, b) => a * b, 1);
      const size = n * c * inner;
      const xv = randomArray(rng, size, -2, 2);
      const gv = randomArray(rng, c, -1, 1);
      const x = Tensor.param(gpu, shape, xv);
      const g = Tensor.from(gpu, [c], gv);
      const tape = newTape();
      const y = tape.record(() => fn(x));
      assert.equal(y.shape, [c]);
      const scale = isMean ? 1 / (n * inner) : 1;
      const ref = channelSumRef(xv, n, c, inner, square).map((v) => v * scale);
      assertClose(await y.toArray(), ref, { atol: 1e-7, rtol: isMean || square ? 2 * ULP : ULP }, `${name} ${shape} forward`);
      tape.backward(y, g);
      const dx = await x.grad!.toArray();
      assertClose(dx, channelGradRef(xv, gv, n, c, inner, scale, square), GRAD_TOL, `${name} ${shape} backward`);
      const xs = f64(xv);
      const idx = sampleIndices(size, 16);
      const fd = finiteDiff(() => dot(channelSumRef(xs, n, c, inner, square).map((v) => v * scale), gv), xs, idx, 1e-3);
      assertClose(idx.map((i) => dx[i]), fd, FD_TOL, `${name} ${shape} backward vs finite differences`);
      x.grad!.dispose(); x.dispose(); g.dispose(); y.dispose(); tape.dispose();
    }
  });
}

test('channelSum of dy = conv bias gradient (PyTorch goldens db)', async () => {
  const gpu = await getGpu();
  for (const name of ['conv2d_k3s1p1', 'conv2d_k3s2p1_odd', 'conv2d_k1s2p0']) {
    const c = gradCase(name);
    const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
    assertClose(await channelSum(dy).toArray(), c.tensors.db.data, { atol: 1e-6, rtol: 1e-6 }, `${name} db`);
    dy.dispose();
  }
});

test('composition on the tape: mean(channelSumSquares(x)) and sum(x) twice accumulate', async () => {
  const gpu = await getGpu();
  const rng = new Rng(4);
  const [N, C, HW] = [2, 3, 10];
  const xv = randomArray(rng, N * C * HW, -1, 1);
  const x = Tensor.param(gpu, [N, C, 2, 5], xv);
  const tape = newTape();
  const loss = tape.record(() => mean(channelSumSquares(x)));
  const want = sumRef(channelSumRef(xv, N, C, HW, true)) / C;
  assertClose(await loss.toArray(), [want], SCALED_TOL, 'loss');
  tape.backward(loss);
  assertClose(await x.grad!.toArray(), Float64Array.from(xv, (v) => (2 * v) / C), GRAD_TOL, 'd loss / dx');
  // a second backward adds into .grad
  const loss2 = tape.record(() => sum(x));
  tape.backward(loss2);
  assertClose(await x.grad!.toArray(), Float64Array.from(xv, (v) => (2 * v) / C + 1), GRAD_TOL, 'accumulated grad');
  loss.dispose(); loss2.dispose(); x.grad!.dispose(); x.dispose(); tape.dispose();
});

test('scale option: sumSquares(d, { scale: 1/n }) and channelSum(x, _, { scale }) scale value and gradient', async () => {
  const gpu = await getGpu();
  const rng = new Rng(8);
  const n = 257;
  const xv = randomArray(rng, n, -1, 1);
  const x = Tensor.param(gpu, [1, 1, n], xv);
  const tape = newTape();
  const y = tape.record(() => sumSquares(x, { scale: 1 / n }));
  assertClose(await y.toArray(), [sumRef(xv, true) / n], SCALED_TOL, 'scaled sumSquares');
  tape.backward(y);
  assertClose(await x.grad!.toArray(), sumGradRef(xv, 1, 1 / n, true), GRAD_TOL, 'scaled sumSquares backward');
  const c = tape.record(() => channelMean(x, undefined, { scale: -3 }));
  assertClose(await c.toArray(), [(-3 * sumRef(xv)) / n], SCALED_TOL, 'scaled channelMean');
  y.dispose(); c.dispose(); x.grad!.dispose(); x.dispose(); tape.dispose();
});

test('bad tuning and layouts are rejected with clear errors', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [2, 3, 2, 2], new Float32Array(24));
  assert.throws(() => sum(x, { wg: 6 }), /power of two/);
  assert.throws(() => sum(x, { wg: 1, items: 1 }), /at least 2/);
  assert.throws(() => channelSum(x, { n: 2, c: 3, inner: 3 }), /does not cover/);
  x.dispose();
});

test.run();
