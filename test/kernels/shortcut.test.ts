import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase } from '../helpers/check.js';
import { shortcutBackwardRef, shortcutPairs, shortcutPreact, shortcutRef } from '../reference/shortcut.js';
import { Tensor, newTape, ACTIVATIONS, type Activation } from '../../src/tensor/index.js';
import { shortcut, shortcutTuning, type ShortcutOptions } from '../../src/tensor/ops/shortcut.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// f32 kernels vs float64 references: transcendental activations carry ~1e-6 relative error.
const TOL = { atol: 2e-6, rtol: 2e-5 };
const FD_TOL = { atol: 1e-5, rtol: 1e-4 };
const GOLDEN_TOL = { atol: 1e-4, rtol: 1e-4 };

// Evenly spread distinct indices (helpers' sampleIndices can loop forever on some lengths, e.g. 36).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function check(label: string, aShape: number[], bShape: number[], act: Activation, o: ShortcutOptions = {}, seed = 1): Promise<void> {
  const gpu = await getGpu();
  const rng = new Rng(seed);
  const av = randomArray(rng, size(aShape), -3, 3);
  const bv = randomArray(rng, size(bShape), -3, 3);
  const dyv = randomArray(rng, size(aShape), -1, 1);
  const alpha = o.alpha ?? 1;
  const beta = o.beta ?? 1;
  const a = Tensor.param(gpu, aShape, av);
  const b = Tensor.param(gpu, bShape, bv);
  const dy = Tensor.from(gpu, aShape, dyv);
  const tape = newTape();
  const y = tape.record(() => shortcut(a, b, { ...o, activation: act }));
  assert.equal([...y.shape], aShape);
  assertClose(await y.toArray(), shortcutRef(av, aShape, bv, bShape, act, alpha, beta), TOL, `${label} forward`);
  tape.backward(y, dy);
  const da = await a.grad!.toArray();
  const db = await b.grad!.toArray();
  const [daRef, dbRef] = shortcutBackwardRef(av, aShape, bv, bShape, dyv, act, alpha, beta);
  assertClose(da, daRef, TOL, `${label} da`);
  assertClose(db, dbRef, TOL, `${label} db`);
  // central differences of the float64 forward, away from the kinks of leaky/relu (|z| > 1e-2)
  const a64 = f64(av);
  const b64 = f64(bv);
  const z = shortcutPreact(av, aShape, bv, bShape, alpha, beta);
  const outOfB = new Map(shortcutPairs(aShape, bShape).map(([oi, k]) => [k, oi]));
  const smooth = (oi: number | undefined) => oi === undefined || Math.abs(z[oi]) > 1e-2;
  const loss = () => dot(shortcutRef(a64, aShape, b64, bShape, act, alpha, beta), dyv);
  const ia = spread(av.length, 50).filter((i) => smooth(i));
  const ib = spread(bv.length, 50).filter((k) => smooth(outOfB.get(k)));
  assertClose(ia.map((i) => da[i]), finiteDiff(loss, a64, ia, 1e-4), FD_TOL, `${label} da vs finite differences`);
  assertClose(ib.map((i) => db[i]), finiteDiff(loss, b64, ib, 1e-4), FD_TOL, `${label} db vs finite differences`);
  for (const t of [y, dy, a.grad!, b.grad!, a, b]) t.dispose();
  tape.dispose();
}

for (const act of ACTIVATIONS) {
  test(`shortcut ${act}, same shapes, batch 2`, () => check(act, [2, 3, 5, 7], [2, 3, 5, 7], act, {}, 3));
}

// 240 values: the vec4 entries (fwd4, bwd4); the cases above have 210 and take the general ones
for (const act of ACTIVATIONS) {
  test(`shortcut ${act}, same shapes in whole vec4s (fwd4, bwd4)`, () => check(`${act} vec4`, [2, 4, 5, 6], [2, 4, 5, 6], act, { alpha: 0.75, beta: 1.25 }, 10));
}

test('shortcut vec4 entries: the same bits as the general entries (y, da, db; b without grad: da alone)', async () => {
  const gpu = await getGpu();
  const shape = [2, 8, 3, 6];
  const rng = new Rng(11);
  const av = randomArray(rng, size(shape), -3, 3);
  const bv = randomArray(rng, size(shape), -3, 3);
  const dyv = randomArray(rng, size(shape), -1, 1);
  const run = async (act: Activation, bGrad: boolean) => {
    const a = Tensor.param(gpu, shape, av);
    const b = bGrad ? Tensor.param(gpu, shape, bv) : Tensor.from(gpu, shape, bv);
    const dy = Tensor.from(gpu, shape, dyv);
    const tape = newTape();
    const y = tape.record(() => shortcut(a, b, { activation: act, alpha: 0.75, beta: -1.5 }));
    tape.backward(y, dy);
    const out = { y: await y.toArray(), da: await a.grad!.toArray(), db: bGrad ? await b.grad!.toArray() : new Float32Array(0) };
    for (const t of [y, dy, a.grad!, ...(bGrad ? [b.grad!] : []), a, b]) t.dispose();
    tape.dispose();
    return out;
  };
  for (const act of ACTIVATIONS) {
    for (const bGrad of [true, false]) {
      const v4 = await run(act, bGrad);
      shortcutTuning.vec4 = false;
      const gen = await run(act, bGrad).finally(() => (shortcutTuning.vec4 = true));
      for (const k of ['y', 'da', 'db'] as const) assertClose(v4[k], gen[k], { atol: 0, rtol: 0 }, `${act} b grad ${bGrad}: ${k}`);
    }
  }
});

test('shortcut mismatched channels: from layer has fewer channels (only the shared ones add)', () => check('fewer', [2, 5, 3, 4], [2, 3, 3, 4], 'leaky', {}, 4));
test('shortcut mismatched channels: from layer has more channels', () => check('more', [2, 3, 3, 4], [2, 5, 3, 4], 'mish', {}, 5));
test('shortcut from a 2x larger layer (stride 2) with mismatched channels', () => check('stride', [2, 3, 3, 4], [2, 4, 6, 8], 'swish', {}, 6));
test('shortcut from a 2x smaller layer (sample 2)', () => check('sample', [1, 3, 6, 8], [1, 2, 3, 4], 'logistic', {}, 7));
test('shortcut non-integer size ratio: top-left overlap only', () => check('overlap', [1, 2, 5, 5], [1, 2, 3, 3], 'linear', {}, 8));
test('shortcut alpha 0.5 beta -1.5 (unshared positions keep a unscaled, as Darknet)', () => check('alphabeta', [2, 4, 3, 5], [2, 3, 3, 5], 'relu', { alpha: 0.5, beta: -1.5 }, 9));

test('shortcut rejects different batch and inconsistent w/h ratios', async () => {
  const gpu = await getGpu();
  const a = Tensor.from(gpu, [1, 2, 4, 4], new Float32Array(32));
  assert.throws(() => shortcut(a, Tensor.from(gpu, [2, 2, 4, 4], new Float32Array(64))), /batch/);
  assert.throws(() => shortcut(a, Tensor.from(gpu, [1, 2, 8, 4], new Float32Array(64))), /ratios/);
});

test('residual_add vs PyTorch golden (linear shortcut)', async () => {
  const gpu = await getGpu();
  const c = gradCase('residual_add');
  const a = Tensor.param(gpu, c.tensors.a.shape, f32In(c.tensors.a));
  const b = Tensor.param(gpu, c.tensors.b.shape, f32In(c.tensors.b));
  const dy = Tensor.from(gpu, c.tensors.dy.shape, f32In(c.tensors.dy));
  const tape = newTape();
  const y = tape.record(() => shortcut(a, b));
  assertClose(await y.toArray(), c.tensors.y.data, GOLDEN_TOL, 'golden y');
  tape.backward(y, dy);
  assertClose(await a.grad!.toArray(), c.tensors.da.data, GOLDEN_TOL, 'golden da');
  assertClose(await b.grad!.toArray(), c.tensors.db.data, GOLDEN_TOL, 'golden db');
  for (const t of [y, dy, a.grad!, b.grad!, a, b]) t.dispose();
  tape.dispose();
});

test.run();
