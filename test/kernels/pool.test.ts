import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase } from '../helpers/check.js';
import { avgpoolBackwardRef, avgpoolRef, localAvgpoolRef, maxpoolBackwardRef, maxpoolRef } from '../reference/pool.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { avgpool, avgpoolTuning, localAvgpool, maxpool, type MaxpoolOptions } from '../../src/tensor/ops/pool.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { sameAtTreeWidths } from '../helpers/tree.js';

// maxpool forward selects values: exact. Backward sums at most size² dy values per input (f32 vs f64).
const EXACT = { atol: 0, rtol: 0 };
const BWD_TOL = { atol: 1e-6, rtol: 1e-6 };
const FD_TOL = { atol: 1e-5, rtol: 1e-5 };
const AVG_TOL = { atol: 1e-6, rtol: 1e-5 };
const GOLDEN_TOL = { atol: 1e-4, rtol: 1e-4 };

// Evenly spread distinct indices (helpers' sampleIndices can loop forever on some lengths, e.g. 36).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Distinct values 0.37 apart in random order (no ties, so finite differences see one argmax). */
function distinct(rng: Rng, n: number): Float32Array {
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return Float32Array.from(p, (v) => v * 0.37 - n * 0.15);
}

const refOpts = (o: MaxpoolOptions) => ({ size: o.size, strideX: o.strideX ?? o.stride ?? 1, strideY: o.strideY ?? o.stride ?? 1, padding: o.padding ?? o.size - 1 });

const cases: Array<{ name: string; shape: number[]; opts: MaxpoolOptions; out: number[] }> = [
  { name: 'size 2 stride 2, odd 5x7 (extra pad right/bottom)', shape: [2, 3, 5, 7], opts: { size: 2, stride: 2 }, out: [3, 4] },
  { name: 'size 2 stride 2, even 4x6 (windows tile the input: one write per input, no zero fill)', shape: [2, 3, 4, 6], opts: { size: 2, stride: 2 }, out: [2, 3] },
  { name: 'size 3 stride 3 padding 1, 6x9 (tiling windows of 9)', shape: [1, 2, 6, 9], opts: { size: 3, stride: 3, padding: 1 }, out: [2, 3] },
  { name: 'size 2 stride 1 (same-size output)', shape: [2, 3, 4, 5], opts: { size: 2, stride: 1 }, out: [4, 5] },
  { name: 'size 3 stride 2 (overlapping windows)', shape: [1, 5, 7, 9], opts: { size: 3, stride: 2 }, out: [4, 5] },
  { name: 'size 5 stride 1 (SPP; separable: max_rows, max_cols)', shape: [1, 3, 6, 7], opts: { size: 5, stride: 1 }, out: [6, 7] },
  { name: 'size 9 stride 1 (SPP, separable)', shape: [2, 2, 9, 11], opts: { size: 9, stride: 1 }, out: [9, 11] },
  { name: 'size 13 stride 1 on 13x13 (SPP, separable)', shape: [1, 2, 13, 13], opts: { size: 13, stride: 1 }, out: [13, 13] },
  { name: 'size 5 stride 2 padding 2 (separable, overlapping, offset 1)', shape: [2, 2, 9, 8], opts: { size: 5, stride: 2, padding: 2 }, out: [4, 3] },
  { name: 'size 6 stride_x 3 stride_y 2 padding 0 (separable)', shape: [1, 2, 12, 9], opts: { size: 6, strideX: 3, strideY: 2, padding: 0 }, out: [4, 2] },
  { name: 'stride_x 2 stride_y 1', shape: [2, 2, 5, 6], opts: { size: 2, strideX: 2, strideY: 1 }, out: [5, 3] },
  { name: 'size 3 stride 3 padding 0', shape: [1, 3, 7, 6], opts: { size: 3, stride: 3, padding: 0 }, out: [2, 2] },
  { name: 'size 3 stride 2 padding 1 (offset 0)', shape: [1, 2, 5, 5], opts: { size: 3, stride: 2, padding: 1 }, out: [2, 2] },
  // width a multiple of 4: pairs of outputs from vec4 rows (max2_fwd / max2_bwd)
  { name: 'size 2 stride 2, 6x8 (pairs of outputs, vec4 rows)', shape: [2, 3, 6, 8], opts: { size: 2, stride: 2 }, out: [3, 4] },
  { name: 'size 2 stride 2, odd 7x12 (pairs; the last windows read one row)', shape: [1, 2, 7, 12], opts: { size: 2, stride: 2 }, out: [4, 6] },
  { name: 'size 2 stride 2 padding 0, 5x4 (pairs, the odd last row dropped)', shape: [2, 2, 5, 4], opts: { size: 2, stride: 2, padding: 0 }, out: [2, 2] },
];

// Ties, -Infinity and NaN: the first maximum in row-major window order wins (Darknet's strict >), NaN is
// never taken, and a window of nothing but -Infinity / NaN gives -FLT_MAX with no argmax. The separable
// passes (size >= 5) must pick the same argmax as the direct kernel, which dx shows.
test('maxpool with ties, -Infinity and NaN: the same values and argmax as Darknet, direct and separable', async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  for (const opts of [{ size: 3, stride: 1 }, { size: 5, stride: 1 }, { size: 9, stride: 1 }, { size: 5, stride: 2, padding: 2 }] as MaxpoolOptions[]) {
    const shape = [2, 3, 10, 11];
    const n = size(shape);
    const xv = Float32Array.from({ length: n }, () => {
      const r = rng.int(20);
      return r === 0 ? Number.NaN : r === 1 ? -Infinity : rng.int(3);
    });
    // one plane of nothing but -Infinity and NaN
    for (let i = 0; i < 110; i++) xv[i] = i % 2 ? Number.NaN : -Infinity;
    const ref = maxpoolRef(xv, shape, refOpts(opts));
    const x = Tensor.param(gpu, shape, xv);
    const tape = newTape();
    const y = tape.record(() => maxpool(x, opts));
    const got = await y.toArray();
    assertClose(got, ref.y, EXACT, `maxpool ${JSON.stringify(opts)} values`);
    const yi = maxpool(x, opts); // outside the tape: inference (max_infer for windows under 5)
    assertClose(await yi.toArray(), ref.y, EXACT, `maxpool ${JSON.stringify(opts)} inference values`);
    yi.dispose();
    assert.ok(got.slice(0, ref.shape[2] * ref.shape[3]).every((v) => v === -3.4028234663852886e38), 'an all -Infinity/NaN window gives -FLT_MAX');
    const dyv = randomArray(rng, ref.y.length, -1, 1);
    const dy = Tensor.from(gpu, ref.shape, dyv);
    tape.backward(y, dy);
    assertClose(await x.grad!.toArray(), maxpoolBackwardRef(dyv, ref.indexes, n), BWD_TOL, `maxpool ${JSON.stringify(opts)} argmax (dx)`);
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  }
});

for (const c of cases) {
  test(`maxpool ${c.name}: forward, backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(17);
    const n = size(c.shape);
    const xv = distinct(rng, n);
    const ref = maxpoolRef(xv, c.shape, refOpts(c.opts));
    assert.equal(ref.shape.slice(2), c.out, 'reference output size');
    const dyv = randomArray(rng, ref.y.length, -1, 1);
    const x = Tensor.param(gpu, c.shape, xv);
    const dy = Tensor.from(gpu, ref.shape, dyv);
    const tape = newTape();
    const y = tape.record(() => maxpool(x, c.opts));
    assert.equal([...y.shape], ref.shape);
    assertClose(await y.toArray(), ref.y, EXACT, 'maxpool forward');
    const yi = maxpool(x, c.opts); // outside the tape: inference, no argmax (max_infer for windows under 5)
    assertClose(await yi.toArray(), ref.y, EXACT, 'maxpool inference forward');
    yi.dispose();
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, maxpoolBackwardRef(dyv, ref.indexes, n), BWD_TOL, 'maxpool dx');
    const xs = f64(xv);
    const idx = spread(n, 60);
    const fd = finiteDiff(() => dot(maxpoolRef(xs, c.shape, refOpts(c.opts)).y, dyv), xs, idx, 1e-3);
    assertClose(idx.map((i) => dx[i]), fd, FD_TOL, 'maxpool dx vs finite differences');
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  });
}

test('maxpool at inference on a plane too large for max_infer\'s grid (64 outputs per workgroup) takes the general kernel', async () => {
  // max_infer runs one plane per grid row in workgroups of 64: past 64 x maxComputeWorkgroupsPerDimension
  // outputs a plane must go to the general kernels (a check against the general kernels' 256 let it through)
  const gpu = await getGpu();
  const side = Math.ceil(Math.sqrt(64 * (gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535) + 1));
  const shape = [1, 1, side, side];
  const xv = randomArray(new Rng(5), side * side, -1, 1);
  const o = { size: 3, stride: 1 };
  const ref = maxpoolRef(xv, shape, refOpts(o));
  const x = Tensor.from(gpu, shape, xv);
  const y = maxpool(x, o);
  assert.is(y.shape[2] * y.shape[3] > 64 * (gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535), true, `a ${side}x${side} plane`);
  assertClose(await y.toArray(), ref.y, EXACT, 'maxpool forward');
  x.dispose();
  y.dispose();
});

test('maxpool ties: the first maximum (row-major) in the window wins and gets the gradient', async () => {
  const gpu = await getGpu();
  const shape = [1, 2, 5, 5];
  const xv = new Float32Array(50);
  for (let i = 0; i < 50; i++) xv[i] = Math.floor(i / 7) % 2; // runs of equal values
  const o = { size: 3, stride: 1 };
  const ref = maxpoolRef(xv, shape, refOpts(o));
  const dyv = Float32Array.from(ref.y, (_, i) => 1 + i);
  const x = Tensor.param(gpu, shape, xv);
  const dy = Tensor.from(gpu, ref.shape, dyv);
  const tape = newTape();
  const y = tape.record(() => maxpool(x, o));
  assertClose(await y.toArray(), ref.y, EXACT, 'tie forward');
  tape.backward(y, dy);
  assertClose(await x.grad!.toArray(), maxpoolBackwardRef(dyv, ref.indexes, 50), BWD_TOL, 'tie dx (first max)');
  for (const t of [y, dy, x.grad!, x]) t.dispose();
  tape.dispose();
});

test('maxpool 2x2/2 pairs path, ties: the first maximum (row-major) wins and gets the gradient', async () => {
  const gpu = await getGpu();
  for (const shape of [[1, 2, 4, 8], [1, 1, 5, 8]]) {
    const n = size(shape);
    const xv = Float32Array.from({ length: n }, (_, i) => Math.floor(i / 3) % 2); // runs of equal values
    const o = { size: 2, stride: 2 };
    const ref = maxpoolRef(xv, shape, refOpts(o));
    const dyv = Float32Array.from(ref.y, (_, i) => 1 + i);
    const x = Tensor.param(gpu, shape, xv);
    const dy = Tensor.from(gpu, ref.shape, dyv);
    const tape = newTape();
    const y = tape.record(() => maxpool(x, o));
    assertClose(await y.toArray(), ref.y, EXACT, `tie forward ${shape}`);
    tape.backward(y, dy);
    assertClose(await x.grad!.toArray(), maxpoolBackwardRef(dyv, ref.indexes, n), EXACT, `tie dx (first max) ${shape}`);
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  }
});

test('maxpool window entirely in padding gives -FLT_MAX and no gradient (Darknet)', async () => {
  const gpu = await getGpu();
  const shape = [1, 1, 2, 2];
  const xv = Float32Array.from([1, -2, 3, -4]);
  const o = { size: 2, stride: 1, padding: 4 };
  const ref = maxpoolRef(xv, shape, refOpts(o));
  assert.equal(ref.shape, [1, 1, 5, 5]);
  assert.is(ref.y[0], -3.4028234663852886e38);
  const x = Tensor.param(gpu, shape, xv);
  const dy = Tensor.from(gpu, ref.shape, new Float32Array(25).fill(1));
  const tape = newTape();
  const y = tape.record(() => maxpool(x, o));
  assertClose(await y.toArray(), ref.y, EXACT, 'padded forward');
  const yi = maxpool(x, o);
  assertClose(await yi.toArray(), ref.y, EXACT, 'padded forward, inference');
  yi.dispose();
  tape.backward(y, dy);
  assertClose(await x.grad!.toArray(), maxpoolBackwardRef(new Float32Array(25).fill(1), ref.indexes, 4), EXACT, 'padded dx');
  for (const t of [y, dy, x.grad!, x]) t.dispose();
  tape.dispose();
});

test('maxpool outside a tape: no argmax buffer is kept', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 2, 4, 4], randomArray(new Rng(1), 32));
  const before = gpu.pool.inUse;
  const y = maxpool(x, { size: 2, stride: 2 });
  y.dispose();
  assert.is(gpu.pool.inUse, before);
  assert.throws(() => maxpool(x, { size: 6, stride: 1, padding: 0 }), /smaller than the window/);
  x.dispose();
});

const goldens: Array<[string, MaxpoolOptions]> = [
  ['maxpool2x2s2', { size: 2, stride: 2, padding: 0 }],
  ['maxpool2x2s2_darknet_odd', { size: 2, stride: 2 }],
  ['maxpool2x2s1_darknet', { size: 2, stride: 1 }],
];
for (const [name, o] of goldens) {
  test(`${name} vs PyTorch golden`, async () => {
    const gpu = await getGpu();
    const c = gradCase(name);
    const x = Tensor.param(gpu, c.tensors.x.shape, f32In(c.tensors.x));
    const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
    const tape = newTape();
    const y = tape.record(() => maxpool(x, o));
    assert.equal([...y.shape], c.tensors.y.shape);
    assertClose(await y.toArray(), c.tensors.y.data, GOLDEN_TOL, `${name} y`);
    tape.backward(y, dy);
    assertClose(await x.grad!.toArray(), c.tensors.dx.data, GOLDEN_TOL, `${name} dx`);
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  });
}

for (const shape of [[2, 3, 5, 7], [1, 2, 33, 17]]) {
  test(`global avgpool ${shape.join('x')}: forward, backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(23);
    const n = size(shape);
    const xv = randomArray(rng, n, -3, 3);
    const dyv = randomArray(rng, shape[0] * shape[1], -1, 1);
    const x = Tensor.param(gpu, shape, xv);
    const dy = Tensor.from(gpu, [shape[0], shape[1], 1, 1], dyv);
    const tape = newTape();
    const y = tape.record(() => avgpool(x));
    assert.equal([...y.shape], [shape[0], shape[1], 1, 1]);
    assertClose(await y.toArray(), avgpoolRef(xv, shape), AVG_TOL, 'avgpool forward');
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, avgpoolBackwardRef(dyv, shape), AVG_TOL, 'avgpool dx');
    const xs = f64(xv);
    const idx = spread(n, 40);
    assertClose(idx.map((i) => dx[i]), finiteDiff(() => dot(avgpoolRef(xs, shape), dyv), xs, idx, 1e-3), FD_TOL, 'avgpool dx vs finite differences');
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  });
}

// The plane sums are a 256-thread tree run by 8 invocations on CPU adapters, 256 on GPUs, or all in one
// invocation for small planes (avg_fwd_planes): the same bits at every width and on both paths (planes under
// and over 256 values; 1600 values: one invocation's threads sum several).
test('global avgpool: the same bits with 8 to 256 invocations per workgroup and with one invocation per plane', async () => {
  const gpu = await getGpu();
  for (const shape of [[2, 3, 5, 7], [1, 2, 33, 17], [1, 1, 40, 40], [1, 70, 7, 7]]) {
    const xv = randomArray(new Rng(size(shape)), size(shape), -3, 3);
    const x = Tensor.from(gpu, shape, xv);
    const keep = avgpoolTuning.planeMax;
    avgpoolTuning.planeMax = 0; // every plane a workgroup
    const runs = await sameAtTreeWidths([256, 64, 16, 8], `avgpool [${shape}]`, async () => {
      const y = avgpool(x);
      const r = { y: await y.toArray() };
      y.dispose();
      return r;
    }).finally(() => (avgpoolTuning.planeMax = keep));
    avgpoolTuning.planeMax = 1 << 30; // every plane an invocation
    const y = avgpool(x);
    const planes = await y.toArray().finally(() => (avgpoolTuning.planeMax = keep));
    y.dispose();
    assertClose(planes, runs[0].y, { atol: 0, rtol: 0 }, `avgpool [${shape}] one invocation per plane vs a workgroup per plane`);
    assertClose(runs[3].y, avgpoolRef(xv, shape), AVG_TOL, `avgpool [${shape}] width 8 vs float64`);
    x.dispose();
  }
});

// [local_avgpool]: the maxpool window geometries (padding taps not counted, so border windows average fewer
// values), plus size 1 stride 1 (the corpus's yolov4-tiny_contrastive) and a window entirely in padding.
const localCases: Array<{ name: string; shape: number[]; opts: MaxpoolOptions }> = [
  ...cases,
  { name: 'size 1 stride 1 (yolov4-tiny_contrastive)', shape: [2, 3, 4, 5], opts: { size: 1, stride: 1 } },
  { name: 'size 2 stride 2 padding 5 (a window entirely in padding: 0)', shape: [1, 2, 3, 3], opts: { size: 2, stride: 2, padding: 5 } },
];
for (const c of localCases) {
  test(`local_avgpool ${c.name}: forward, backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(29);
    const n = size(c.shape);
    const xv = randomArray(rng, n, -2, 2);
    const o = refOpts(c.opts);
    const shapeOut = localAvgpoolRef(xv, c.shape, o).shape;
    const dyv = randomArray(rng, size(shapeOut), -1, 1);
    const ref = localAvgpoolRef(xv, c.shape, o, dyv);
    const x = Tensor.param(gpu, c.shape, xv);
    const dy = Tensor.from(gpu, ref.shape, dyv);
    const tape = newTape();
    const y = tape.record(() => localAvgpool(x, c.opts));
    assert.equal([...y.shape], ref.shape);
    assertClose(await y.toArray(), ref.y, AVG_TOL, 'local_avgpool forward');
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    assertClose(dx, ref.dx, AVG_TOL, 'local_avgpool dx');
    const xs = f64(xv);
    const idx = spread(n, 40);
    assertClose(idx.map((i) => dx[i]), finiteDiff(() => dot(localAvgpoolRef(xs, c.shape, o).y, dyv), xs, idx, 1e-3), FD_TOL, 'local_avgpool dx vs finite differences');
    for (const t of [y, dy, x.grad!, x]) t.dispose();
    tape.dispose();
  });
}

test.run();
