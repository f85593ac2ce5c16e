import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, f64 } from '../helpers/check.js';
import { adamRef, darknetUpdateRef, sgdRef, type AdamRefState, type SgdRefState } from '../reference/optim.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { mse } from '../../src/tensor/ops/loss.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { scaleGrads, scaleInPlace, zeroGrads } from '../../src/tensor/ops/optim.js';
import { Adam, AdamW, SGD, type Optimizer } from '../../src/train/optim.js';
import type { Gpu } from '../../src/gpu/device.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Several f32 steps vs the float64 recurrences: each step adds ~1 ulp of |w| (and of the buffers); Adam's
// m/sqrt(v) is O(1) per step, so weights stay within ~1e-6 after 6 steps.
const TOL = { atol: 2e-6, rtol: 1e-5 };
// v = Σ (1-β2) β2^k g² is positive: relative (a few f32 roundings per step)
const V_TOL = { atol: 1e-12, rtol: 4e-6 };

const SIZES = [1, 255, 257, 4099];

interface Case { p: Tensor; w: Float64Array; decay: boolean; lrScale: number }

function makeParams(gpu: Gpu, rng: Rng): Case[] {
  return SIZES.map((n, k) => {
    const wv = randomArray(rng, n, -1, 1);
    const p = Tensor.param(gpu, [n], wv, `p${k}`);
    p.grad = new Tensor(gpu, [n]);
    // the second tensor is a "bias": no decay; the third trains at twice the rate
    return { p, w: f64(wv), decay: k !== 1, lrScale: k === 2 ? 2 : 1 };
  });
}

function disposeAll(cases: Case[], opt: Optimizer): void {
  for (const c of cases) {
    c.p.grad?.dispose();
    c.p.dispose();
  }
  opt.dispose();
}

const sgdConfigs = [
  { name: 'momentum 0.9, decay 5e-4 (Darknet defaults)', momentum: 0.9, decay: 5e-4 },
  { name: 'momentum 0.8, dampening 0.3', momentum: 0.8, dampening: 0.3, decay: 1e-2 },
  { name: 'nesterov, momentum 0.7', momentum: 0.7, nesterov: true, decay: 1e-3 },
  { name: 'no momentum (no buffer)', momentum: 0, decay: 1e-2 },
];

for (const cfg of sgdConfigs) {
  test(`SGD ${cfg.name}: 6 steps (changing lr, gradScale) vs float64 torch.optim.SGD`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(31);
    const cases = makeParams(gpu, rng);
    const opt = new SGD(cases.map((c) => ({ param: c.p, decay: c.decay, lrScale: c.lrScale })), { lr: 0.1, momentum: cfg.momentum, dampening: cfg.dampening, nesterov: cfg.nesterov, decay: cfg.decay });
    const refs: SgdRefState[] = cases.map((c) => ({ w: c.w, b: new Float64Array(c.w.length), t: 0 }));
    for (let step = 1; step <= 6; step++) {
      opt.lr = 0.1 * step ** 0.5; // a burn-in-like schedule: the buffer must not absorb lr
      const gradScale = step % 2 ? 1 : 0.25;
      cases.forEach((c, k) => {
        const gv = randomArray(rng, c.w.length, -2, 2);
        c.p.grad!.write(gv);
        sgdRef(refs[k], gv, { lr: opt.lr * c.lrScale, momentum: cfg.momentum, dampening: cfg.dampening, decay: c.decay ? cfg.decay : 0, nesterov: cfg.nesterov, gradScale });
      });
      opt.step({ gradScale });
    }
    let worst = 0;
    for (const [k, c] of cases.entries()) {
      worst = Math.max(worst, assertClose(await c.p.toArray(), refs[k].w, TOL, `${cfg.name} w[${k}] (n=${c.w.length})`));
      if (cfg.momentum) worst = Math.max(worst, assertClose(await opt.state.get(c.p)!.slots.momentum.toArray(), refs[k].b, TOL, `${cfg.name} buffer[${k}]`));
      assert.is(opt.state.get(c.p)!.step, 6);
    }
    console.log(`  SGD ${cfg.name}: max |err| ${worst.toExponential(2)} (w, buffer)`);
    disposeAll(cases, opt);
  });
}

for (const decoupled of [false, true]) {
  const name = decoupled ? 'AdamW' : 'Adam';
  test(`${name}: 6 steps vs float64 torch.optim.${name} (bias correction, decay flag, lrScale, gradScale)`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(decoupled ? 41 : 42);
    const cases = makeParams(gpu, rng);
    const hyper = { lr: 0.01, beta1: 0.85, beta2: 0.99, eps: 1e-6, decay: decoupled ? 0.05 : 1e-2 };
    const specs = cases.map((c) => ({ param: c.p, decay: c.decay, lrScale: c.lrScale }));
    const opt = decoupled ? new AdamW(specs, hyper) : new Adam(specs, hyper);
    const refs: AdamRefState[] = cases.map((c) => ({ w: c.w, m: new Float64Array(c.w.length), v: new Float64Array(c.w.length), t: 0 }));
    for (let step = 1; step <= 6; step++) {
      const gradScale = step === 3 ? 0.5 : 1;
      cases.forEach((c, k) => {
        const gv = randomArray(rng, c.w.length, -1, 1);
        if (c.w.length > 3) gv[3] = 0; // a weight whose gradient is always 0 (m = v = 0: eps alone)
        c.p.grad!.write(gv);
        adamRef(refs[k], gv, { ...hyper, lr: hyper.lr * c.lrScale, decay: c.decay ? hyper.decay : 0, decoupled, gradScale });
      });
      opt.step({ gradScale });
    }
    let worst = 0;
    let worstV = 0;
    for (const [k, c] of cases.entries()) {
      const st = opt.state.get(c.p)!;
      worst = Math.max(worst, assertClose(await c.p.toArray(), refs[k].w, TOL, `${name} w[${k}] (n=${c.w.length})`));
      worst = Math.max(worst, assertClose(await st.slots.m.toArray(), refs[k].m, TOL, `${name} m[${k}]`));
      const vGot = await st.slots.v.toArray();
      assertClose(vGot, refs[k].v, V_TOL, `${name} v[${k}]`);
      vGot.forEach((x, i) => (worstV = Math.max(worstV, refs[k].v[i] ? Math.abs(x - refs[k].v[i]) / refs[k].v[i] : 0)));
    }
    console.log(`  ${name}: max |err| ${worst.toExponential(2)} (w, m); v max rel err ${worstV.toExponential(2)}`);
    disposeAll(cases, opt);
  });
}

test("SGD with gradScale 1/B reproduces Darknet's update (updates accumulator, -decay·B·w, lr/B) with a changing lr", async () => {
  const gpu = await getGpu();
  const rng = new Rng(51);
  const n = 257;
  const B = 8; // batch·subdivisions
  const wv = randomArray(rng, n, -1, 1);
  const p = Tensor.param(gpu, [n], wv);
  p.grad = new Tensor(gpu, [n]);
  const opt = new SGD([p], { lr: 1e-3, momentum: 0.9, decay: 5e-4 });
  const ref = { w: f64(wv), updates: new Float64Array(n) };
  for (let step = 1; step <= 8; step++) {
    // Darknet burn_in (1000, power 4) style ramp, then constant
    const lr = 1e-3 * Math.min(1, (step / 5) ** 4);
    const sumGrad = randomArray(rng, n, -3, 3); // Σ over the B images of dL/dw
    p.grad!.write(sumGrad);
    darknetUpdateRef(ref, sumGrad, { lr, momentum: 0.9, decay: 5e-4, batch: B });
    opt.lr = lr;
    opt.step({ gradScale: 1 / B });
  }
  assertClose(await p.toArray(), ref.w, TOL, 'w vs darknet');
  // the relation between the states: buffer = −updates/B (before Darknet's final scal by momentum)
  assertClose(await opt.state.get(p)!.slots.momentum.toArray(), ref.updates.map((u) => -u / B / 0.9), { atol: 1e-7, rtol: 1e-5 }, 'buffer = -updates/B');
  p.grad!.dispose(); p.dispose(); opt.dispose();
});

test('gradients from the tape: 10 Adam steps on sum(mse(w, target)) match the float64 reference and converge', async () => {
  const gpu = await getGpu();
  const rng = new Rng(61);
  const n = 255;
  const wv = randomArray(rng, n, -1, 1);
  const tv = randomArray(rng, n, -1, 1);
  const w = Tensor.param(gpu, [n], wv, 'w');
  const t = Tensor.from(gpu, [n], tv);
  const hyper = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 0 };
  const opt = new Adam([w], hyper);
  const ref: AdamRefState = { w: f64(wv), m: new Float64Array(n), v: new Float64Array(n), t: 0 };
  let first = 0;
  let last = 0;
  for (let step = 1; step <= 10; step++) {
    const tape = newTape();
    const loss = tape.record(() => sum(mse(w, t)));
    tape.backward(loss);
    const l = (await loss.toArray())[0];
    if (step === 1) first = l;
    last = l;
    adamRef(ref, Float64Array.from(ref.w, (v, i) => 2 * (v - tv[i])), { ...hyper, decoupled: false });
    opt.step();
    opt.zeroGrad();
    loss.dispose();
    tape.dispose();
  }
  assertClose(await w.toArray(), ref.w, { atol: 1e-5, rtol: 1e-5 }, 'w after 10 Adam steps');
  assert.ok(last < first * 0.5, `loss fell ${first} -> ${last}`);
  assert.equal([...(await w.grad!.toArray())].every((v) => v === 0), true, 'zeroGrad zeroes in place');
  w.grad!.dispose(); w.dispose(); t.dispose(); opt.dispose();
});

test('parameters without a gradient are skipped; zeroGrads / scaleGrads / scaleInPlace', async () => {
  const gpu = await getGpu();
  const a = Tensor.param(gpu, [3], [1, 2, 3]);
  const b = Tensor.param(gpu, [2], [4, 5]);
  a.grad = Tensor.from(gpu, [3], [1, 1, 1]);
  const opt = new SGD([a, b], { lr: 0.5, momentum: 0.9 });
  opt.step();
  assertClose(await a.toArray(), [0.5, 1.5, 2.5], { atol: 0, rtol: 0 }, 'a updated');
  assertClose(await b.toArray(), [4, 5], { atol: 0, rtol: 0 }, 'b untouched');
  assert.is(opt.state.has(b), false, 'no state for a parameter never updated');
  scaleGrads([a, b], 3);
  assertClose(await a.grad!.toArray(), [3, 3, 3], { atol: 0, rtol: 0 }, 'scaleGrads');
  const odd = Tensor.from(gpu, [100003], new Float32Array(100003).fill(2));
  scaleInPlace(odd, -0.25);
  const ov = await odd.toArray();
  assert.ok(ov.every((v) => v === -0.5), 'scaleInPlace over 100003 values');
  zeroGrads([a, b]);
  assertClose(await a.grad!.toArray(), [0, 0, 0], { atol: 0, rtol: 0 }, 'zeroGrads');
  zeroGrads([a], true);
  assert.is(a.grad, null, 'zeroGrads(free) drops the gradient');
  odd.dispose(); a.dispose(); b.dispose(); opt.dispose();
});

test('state export / import: a restored optimizer continues bit-identically', async () => {
  const gpu = await getGpu();
  const rng = new Rng(71);
  for (const make of [
    (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9, decay: 1e-3 }),
    (ps: Tensor[]) => new AdamW(ps, { lr: 0.01 }),
  ]) {
    const w0 = [randomArray(rng, 5, -1, 1), randomArray(rng, 257, -1, 1)];
    const A = w0.map((v, i) => Tensor.param(gpu, [v.length], v, `w${i}`));
    const optA = make(A);
    const grads = Array.from({ length: 5 }, () => w0.map((v) => randomArray(rng, v.length, -1, 1)));
    const apply = (ps: Tensor[], opt: Optimizer, step: number) => {
      ps.forEach((p, i) => {
        p.grad ??= new Tensor(gpu, [p.size]);
        p.grad.write(grads[step][i]);
      });
      opt.step();
    };
    for (let s = 0; s < 3; s++) apply(A, optA, s);
    const saved = await optA.exportState();
    assert.equal(saved.params.map((p) => [p.name, p.step]), [['w0', 3], ['w1', 3]]);
    assert.equal(optA.stateTensors().map((s) => s.name), optA.kind === 'sgd' ? ['w0.momentum', 'w1.momentum'] : ['w0.m', 'w0.v', 'w1.m', 'w1.v']);
    // a fresh optimizer on copies of the current weights
    const B = await Promise.all(A.map(async (p, i) => Tensor.param(gpu, p.shape, await p.toArray(), `w${i}`)));
    const optB = make(B);
    optB.importState(saved);
    for (let s = 3; s < 5; s++) {
      apply(A, optA, s);
      apply(B, optB, s);
    }
    for (let i = 0; i < A.length; i++) assert.equal(await B[i].toArray(), await A[i].toArray(), `${optA.kind} w${i} after restore`);
    assert.throws(() => new Adam(B, { lr: 1 }).importState(saved), /cannot be loaded/);
    for (const p of [...A, ...B]) { p.grad?.dispose(); p.dispose(); }
    optA.dispose(); optB.dispose();
  }
});

test.run();
