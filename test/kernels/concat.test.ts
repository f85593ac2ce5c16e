import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase } from '../helpers/check.js';
import { concatBackwardRef, concatRef } from '../reference/concat.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { concat } from '../../src/tensor/ops/concat.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Pure copies: forward and backward must be exact.
const EXACT = { atol: 0, rtol: 0 };
const FD_TOL = { atol: 1e-6, rtol: 1e-6 };
const GOLDEN_TOL = { atol: 1e-4, rtol: 1e-4 };

// Evenly spread distinct indices (helpers' sampleIndices can loop forever on some lengths, e.g. 36).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

const cases: Array<{ name: string; shapes: number[][]; groups?: number; groupId?: number }> = [
  { name: 'three inputs, odd channels, batch 2', shapes: [[2, 2, 3, 5], [2, 3, 3, 5], [2, 5, 3, 5]] },
  { name: 'single input groups 2 group_id 1 (yolov4-tiny CSP)', shapes: [[2, 6, 3, 5]], groups: 2, groupId: 1 },
  { name: 'two inputs groups 3 group_id 2', shapes: [[2, 3, 2, 3], [2, 9, 2, 3]], groups: 3, groupId: 2 },
  { name: 'groups 2 group_id 0, odd spatial', shapes: [[1, 4, 5, 3], [1, 2, 5, 3]], groups: 2, groupId: 0 },
];

for (const c of cases) {
  test(`concat ${c.name}: forward, backward vs float64 and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(5);
    const vals = c.shapes.map((s) => randomArray(rng, size(s), -1, 1));
    const xs = c.shapes.map((s, k) => Tensor.param(gpu, s, vals[k]));
    const refIn = c.shapes.map((s, k) => ({ data: vals[k] as ArrayLike<number>, shape: s }));
    const yRef = concatRef(refIn, c.groups, c.groupId);
    const g = c.groups ?? 1;
    const outShape = [c.shapes[0][0], c.shapes.reduce((a, s) => a + s[1] / g, 0), c.shapes[0][2], c.shapes[0][3]];
    const dyv = randomArray(rng, yRef.length, -1, 1);
    const dy = Tensor.from(gpu, outShape, dyv);
    const tape = newTape();
    const y = tape.record(() => concat(xs, { groups: c.groups, groupId: c.groupId }));
    assert.equal([...y.shape], outShape);
    assertClose(await y.toArray(), yRef, EXACT, 'concat forward');
    tape.backward(y, dy);
    const dref = concatBackwardRef(dyv, refIn, c.groups, c.groupId);
    for (let k = 0; k < xs.length; k++) {
      const dx = await xs[k].grad!.toArray();
      assertClose(dx, dref[k], EXACT, `concat d input ${k}`);
      const x64 = f64(vals[k]);
      const idx = spread(x64.length, 30);
      const fd = finiteDiff(() => dot(concatRef(refIn.map((r, j) => (j === k ? { data: x64, shape: r.shape } : r)), c.groups, c.groupId), dyv), x64, idx, 1e-3);
      assertClose(idx.map((i) => dx[i]), fd, FD_TOL, `concat d input ${k} vs finite differences`);
    }
    for (const t of [y, dy, ...xs.map((x) => x.grad!), ...xs]) t.dispose();
    tape.dispose();
  });
}

test('concat of the same input twice accumulates both gradient slices', async () => {
  const gpu = await getGpu();
  const rng = new Rng(6);
  const xv = randomArray(rng, 2 * 3 * 2 * 2, -1, 1);
  const x = Tensor.param(gpu, [2, 3, 2, 2], xv);
  const dyv = randomArray(rng, 2 * 6 * 4, -1, 1);
  const dy = Tensor.from(gpu, [2, 6, 2, 2], dyv);
  const tape = newTape();
  const y = tape.record(() => concat([x, x]));
  tape.backward(y, dy);
  const r = { data: xv as ArrayLike<number>, shape: [2, 3, 2, 2] };
  const [d0, d1] = concatBackwardRef(dyv, [r, r]);
  assertClose(await x.grad!.toArray(), d0.map((v, i) => v + d1[i]), { atol: 1e-7, rtol: 1e-7 }, 'dx of concat(x, x)');
  for (const t of [y, dy, x.grad!, x]) t.dispose();
  tape.dispose();
});

test('concat rejects mismatched spatial sizes and indivisible groups', async () => {
  const gpu = await getGpu();
  const a = Tensor.from(gpu, [1, 2, 3, 3], new Float32Array(18));
  const b = Tensor.from(gpu, [1, 3, 3, 4], new Float32Array(36));
  assert.throws(() => concat([a, b]), /spatial/);
  assert.throws(() => concat([a, Tensor.from(gpu, [1, 3, 3, 3], new Float32Array(27))], { groups: 2, groupId: 1 }), /divisible/);
});

test('concat_channels vs PyTorch golden', async () => {
  const gpu = await getGpu();
  const c = gradCase('concat_channels');
  const a = Tensor.param(gpu, c.tensors.a.shape, f32In(c.tensors.a));
  const b = Tensor.param(gpu, c.tensors.b.shape, f32In(c.tensors.b));
  const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
  const tape = newTape();
  const y = tape.record(() => concat([a, b]));
  assertClose(await y.toArray(), c.tensors.y.data, GOLDEN_TOL, 'golden y');
  tape.backward(y, dy);
  assertClose(await a.grad!.toArray(), c.tensors.da.data, GOLDEN_TOL, 'golden da');
  assertClose(await b.grad!.toArray(), c.tensors.db.data, GOLDEN_TOL, 'golden db');
  for (const t of [y, dy, a.grad!, b.grad!, a, b]) t.dispose();
  tape.dispose();
});

test.run();
