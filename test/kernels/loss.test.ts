import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, noteMissingShared, sharedDir } from '../helpers/check.js';
import { elementLossGradRef, elementLossRef, lossRef } from '../reference/loss.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { LOSSES, bceWithLogits, elementLoss, mse, type ElementLossKind } from '../../src/tensor/ops/loss.js';
import { mean, sum } from '../../src/tensor/ops/reduce.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// f32 kernels vs float64: exp/log carry a few ulp; BCE near 0 (x << 0, t = 0) is checked relatively.
const FWD_TOL = { atol: 1e-7, rtol: 4e-6 };
const GRAD_TOL = { atol: 1e-7, rtol: 4e-6 };
// central differences (eps 1e-4) of the float64 forward: truncation ~eps² · l''' plus cancellation
const FD_TOL = { atol: 2e-6, rtol: 1e-5 };

function inputs(kind: ElementLossKind, rng: Rng, n: number) {
  const x = randomArray(rng, n, -8, 8);
  // stable-form corner cases: exact zero, saturated logits, tiny and moderately negative values
  const special = [0, 30, -30, 1e-3, -1e-3, -10, 10, -17, 4];
  special.forEach((v, i) => (x[i] = v));
  const t = kind === 'mse' || kind === 'l1' ? randomArray(rng, n, -8, 8) : randomArray(rng, n, 0, 1);
  if (kind !== 'mse' && kind !== 'l1') {
    // hard labels on some, soft on the rest; (x, t) = (±30, 0/1) checks both saturated directions
    [0, 1, 2, 5, 7].forEach((i) => (t[i] = 0));
    [3, 4, 6, 8].forEach((i) => (t[i] = 1));
  }
  return { x, t };
}

for (const kind of LOSSES) {
  for (const weighted of [false, true]) {
    test(`${kind}${weighted ? ' (weighted, alpha 0.7)' : ''}: forward and d/dx vs float64 and finite differences`, async () => {
      const gpu = await getGpu();
      const rng = new Rng(kind.length * 7 + (weighted ? 1 : 0));
      const shape = [2, 3, 5, 7];
      const n = 210;
      const { x: xv, t: tv } = inputs(kind, rng, n);
      const wv = weighted ? randomArray(rng, n, 0, 2) : undefined;
      if (wv) wv[10] = 0; // masked element
      const alpha = weighted ? 0.7 : 1;
      const gv = randomArray(rng, n, -1, 1);
      const x = Tensor.param(gpu, shape, xv);
      const t = Tensor.from(gpu, shape, tv);
      const w = wv ? Tensor.from(gpu, shape, wv) : undefined;
      const g = Tensor.from(gpu, shape, gv);
      const tape = newTape();
      const y = tape.record(() => elementLoss(kind, x, t, { weight: w, alpha: weighted ? alpha : undefined }));
      const yv = await y.toArray();
      const ref = elementLossRef(kind, xv, tv, alpha, wv);
      assertClose(yv, ref, FWD_TOL, `${kind} forward`);
      // the tiny BCE values (x = -10, -17 with t = 0) relative to themselves
      if (kind === 'bceWithLogits' && !weighted) {
        for (const i of [5, 7]) assertClose([yv[i]], [ref[i]], { atol: 0, rtol: 4e-6 }, `bce(${xv[i]}, 0) = ${ref[i]} relative`);
      }
      tape.backward(y, g);
      const dx = await x.grad!.toArray();
      assertClose(dx, elementLossGradRef(kind, xv, tv, gv, alpha, wv), GRAD_TOL, `${kind} d/dx`);
      const xs = f64(xv);
      const idx = [...Array(n).keys()].filter((i) => kind !== 'l1' || Math.abs(xv[i] - tv[i]) > 1e-2);
      const fd = finiteDiff(() => dot(elementLossRef(kind, xs, tv, alpha, wv), gv), xs, idx, 1e-4);
      assertClose(idx.map((i) => dx[i]), fd, FD_TOL, `${kind} d/dx vs finite differences`);
      assert.is(t.grad, null, 'no gradient into the target');
      for (const v of [y, g, t, w, x.grad!, x]) v?.dispose();
      tape.dispose();
    });
  }
}

test('odd lengths 1, 255, 257, 100003: bce and mse forward, mean and sum on the tape', async () => {
  const gpu = await getGpu();
  const rng = new Rng(2);
  for (const n of [1, 255, 257, 100003]) {
    const xv = randomArray(rng, n, -5, 5);
    const tv = randomArray(rng, n, 0, 1);
    const x = Tensor.param(gpu, [n], xv);
    const t = Tensor.from(gpu, [n], tv);
    const tape = newTape();
    const loss = tape.record(() => mean(bceWithLogits(x, t)));
    let want = 0;
    let want2 = 0;
    for (let i = 0; i < n; i++) {
      want += lossRef(xv[i], tv[i], 'bceWithLogits');
      want2 += 0.5 * (xv[i] - tv[i]) ** 2;
    }
    assertClose(await loss.toArray(), [want / n], { atol: 0, rtol: 4e-7 }, `mean bce n=${n}`);
    tape.backward(loss);
    const dx = await x.grad!.toArray();
    // sigmoid(x) - t cancels in f32: absolute error ~ulp(1) / n
    assertClose(dx, Float64Array.from(xv, (v, i) => (1 / (1 + Math.exp(-v)) - tv[i]) / n), { atol: 2e-7 / n, rtol: 4e-6 }, `d mean bce n=${n}`);
    // a second recording: backward adds into .grad
    const l2 = tape.record(() => sum(mse(x, t, { alpha: 0.5 })));
    assertClose(await l2.toArray(), [want2], { atol: 0, rtol: 4e-7 }, `sum 0.5 mse n=${n}`);
    tape.backward(l2);
    const dx2 = await x.grad!.toArray();
    assertClose(dx2, Float64Array.from(xv, (v, i) => (1 / (1 + Math.exp(-v)) - tv[i]) / n + (v - tv[i])), { atol: 1e-6, rtol: 4e-6 }, `accumulated n=${n}`);
    for (const v of [loss, l2, t, x.grad!, x]) v.dispose();
    tape.dispose();
  }
});

test('YOLOv5 v7.0 objectness: mean BCE per layer and d loss / d p[..., 4] vs the golden (real ComputeLoss)', async () => {
  const dir = sharedDir();
  if (!dir) {
    noteMissingShared('the YOLOv5 objectness BCE golden');
    return;
  }
  const gpu = await getGpu();
  interface T { shape: number[]; data: number[] }
  const gold = JSON.parse(fs.readFileSync(path.join(dir, 'golden/yolov5_loss.json'), 'utf8')) as {
    meta: { hyp: { obj: number }; balance: number[] };
    cases: { name: string; bs: number; no: number; p: T[]; grad_p: T[]; per_layer: { obj_bce_mean: number; tobj_nonzero: number[][] }[] }[];
  };
  let worstGrad = 0;
  for (const c of gold.cases) {
    for (let i = 0; i < c.p.length; i++) {
      const [bs, na, ny, nx, no] = c.p[i].shape;
      const cells = bs * na * ny * nx;
      const xv = new Float32Array(cells);
      for (let k = 0; k < cells; k++) xv[k] = Math.fround(c.p[i].data[k * no + 4]);
      const tv = new Float32Array(cells);
      for (const [b, a, gj, gi, v] of c.per_layer[i].tobj_nonzero) tv[((b * na + a) * ny + gj) * nx + gi] = v;
      const x = Tensor.param(gpu, [cells], xv);
      const t = Tensor.from(gpu, [cells], tv);
      const tape = newTape();
      const m = tape.record(() => mean(bceWithLogits(x, t)));
      assertClose(await m.toArray(), [c.per_layer[i].obj_bce_mean], { atol: 0, rtol: 1e-5 }, `${c.name} layer ${i} obj BCE mean`);
      // total loss = bs * (... + obj_gain * Σ balance_i * mean_i + ...): seed the mean with that factor
      const seed = Tensor.from(gpu, [1], [c.bs * gold.meta.hyp.obj * gold.meta.balance[i]]);
      tape.backward(m, seed);
      const dx = await x.grad!.toArray();
      const want = Float64Array.from({ length: cells }, (_, k) => c.grad_p[i].data[k * no + 4]);
      worstGrad = Math.max(worstGrad, assertClose(dx, want, { atol: 1e-6, rtol: 1e-4 }, `${c.name} layer ${i} d loss / d obj`));
      for (const v of [m, seed, t, x.grad!, x]) v.dispose();
      tape.dispose();
    }
  }
  console.log(`  yolov5 objectness gradient: max |err| ${worstGrad.toExponential(2)}`);
});

test('mismatched sizes are rejected', async () => {
  const gpu = await getGpu();
  const a = Tensor.from(gpu, [3], [1, 2, 3]);
  const b = Tensor.from(gpu, [4], [1, 2, 3, 4]);
  assert.throws(() => mse(a, b), /does not match/);
  assert.throws(() => bceWithLogits(a, a, { weight: b }), /weight/);
  a.dispose(); b.dispose();
});

test.run();
