import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f32In, f64, finiteDiff, gradCase } from '../helpers/check.js';
import { bnApplyRef, bnInferBackwardRef, bnRunningRef, bnStatsRef, bnTrainBackwardRef, bnTrainRef, type Mode } from '../reference/batchnorm.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { batchnorm, batchnormMaxpool, batchnormStats, type BatchnormState } from '../../src/tensor/ops/batchnorm.js';
import { treeTuning } from '../../src/tensor/ops/reduce.js';
import { runBn } from '../helpers/bn.js';
import { sameAtTreeWidths } from '../helpers/tree.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// f32 kernels vs float64 references. Values are O(1) (normalized outputs up to ~3, gradients up to ~10).
const TOL = { atol: 1e-5, rtol: 1e-5 };
const STATS_TOL = { atol: 1e-6, rtol: 1e-5 };
const FD_TOL = { atol: 1e-4, rtol: 1e-4 };
const GOLDEN_TOL = { atol: 1e-4, rtol: 1e-4 };
const VERBOSE = !!process.env.YOLO_WGSL_TEST_VERBOSE;

// Evenly spread distinct indices (helpers' sampleIndices can loop forever on some lengths, e.g. 36).
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));
if (VERBOSE) {
  let t0 = 0;
  test.before.each(() => { t0 = performance.now(); });
  test.after.each(() => console.log(`  (${(performance.now() - t0).toFixed(0)} ms)`));
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const KEEP: Record<Mode, [number, number]> = { darknet: [0.99, 0.01], torch: [0.9, 0.1] };

function close(a: ArrayLike<number>, e: ArrayLike<number>, tol: { atol: number; rtol: number }, label: string): void {
  const err = assertClose(a, e, tol, label);
  if (VERBOSE) console.log(`  ${label}: max |err| ${err.toExponential(2)}`);
}

interface Setup {
  shape: number[];
  xv: Float32Array;
  gv: Float32Array;
  bv: Float32Array;
  rmv: Float32Array;
  rvv: Float32Array;
  dyv: Float32Array;
}

function setup(shape: number[], seed: number, xgen?: (rng: Rng) => number): Setup {
  const rng = new Rng(seed);
  const C = shape[1];
  const n = size(shape);
  // per-channel offsets and scales so channels differ
  const off = Array.from({ length: C }, () => rng.uniform(-2, 2));
  const sc = Array.from({ length: C }, () => rng.uniform(0.5, 2));
  const HW = size(shape.slice(2));
  const xv = Float32Array.from({ length: n }, (_, i) => {
    const c = Math.floor(i / HW) % C;
    return xgen ? xgen(rng) : off[c] + sc[c] * rng.normal();
  });
  return {
    shape, xv,
    gv: randomArray(rng, C, 0.5, 1.5),
    bv: randomArray(rng, C, -0.5, 0.5),
    rmv: randomArray(rng, C, -1, 1),
    rvv: randomArray(rng, C, 0.5, 2),
    dyv: randomArray(rng, n, -1, 1),
  };
}

async function trainCase(mode: Mode, s: Setup, chunk?: number, fd = true, tol = TOL, dgammaTol = tol): Promise<void> {
  const gpu = await getGpu();
  const C = s.shape[1];
  const x = Tensor.param(gpu, s.shape, s.xv);
  const gamma = Tensor.param(gpu, [C], s.gv);
  const beta = Tensor.param(gpu, [C], s.bv);
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], s.rmv), runningVar: Tensor.from(gpu, [C], s.rvv) };
  const dy = Tensor.from(gpu, s.shape, s.dyv);
  const lbl = `${mode}${chunk ? ` chunk ${chunk}` : ''}`;
  // statistics alone (no running update)
  const st = batchnormStats(x, { mode, chunk });
  const stv = await st.toArray();
  const ref = bnStatsRef(s.xv, s.shape);
  close(stv.subarray(0, C), ref.mean, STATS_TOL, `${lbl} batch mean`);
  close(stv.subarray(C, 2 * C), ref.varBiased, STATS_TOL, `${lbl} batch var biased`);
  close(stv.subarray(2 * C, 3 * C), ref.varUnbiased, STATS_TOL, `${lbl} batch var unbiased`);
  st.dispose();

  const tape = newTape();
  const y = tape.record(() => batchnorm(x, gamma, beta, state, { training: true, mode, chunk }));
  close(await y.toArray(), bnTrainRef(s.xv, s.shape, s.gv, s.bv, mode), tol, `${lbl} forward`);
  const [keep, mom] = KEEP[mode];
  close(await state.runningMean.toArray(), bnRunningRef(s.rmv, ref.mean, keep, mom), STATS_TOL, `${lbl} running mean`);
  close(await state.runningVar.toArray(), bnRunningRef(s.rvv, ref.varUnbiased, keep, mom), STATS_TOL, `${lbl} running var`);
  tape.backward(y, dy);
  const dx = await x.grad!.toArray();
  const dg = await gamma.grad!.toArray();
  const db = await beta.grad!.toArray();
  const bref = bnTrainBackwardRef(s.xv, s.shape, s.gv, s.dyv, mode);
  close(dx, bref.dx, tol, `${lbl} dx`);
  close(dg, bref.dgamma, dgammaTol, `${lbl} dgamma`);
  close(db, bref.dbeta, tol, `${lbl} dbeta`);
  if (fd) {
    const x64 = f64(s.xv);
    const g64 = f64(s.gv);
    const b64 = f64(s.bv);
    const loss = () => dot(bnTrainRef(x64, s.shape, g64, b64, mode), s.dyv);
    const ix = spread(x64.length, 40);
    close(ix.map((i) => dx[i]), finiteDiff(loss, x64, ix, 1e-4), FD_TOL, `${lbl} dx vs finite differences`);
    close(dg, finiteDiff(loss, g64, undefined, 1e-4), FD_TOL, `${lbl} dgamma vs finite differences`);
    close(db, finiteDiff(loss, b64, undefined, 1e-4), FD_TOL, `${lbl} dbeta vs finite differences`);
  }
  for (const t of [y, dy, x.grad!, gamma.grad!, beta.grad!, x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
  tape.dispose();
}

for (const mode of ['darknet', 'torch'] as const) {
  test(`batchnorm ${mode} training, [2,5,3,7]: stats, forward, running update, backward vs float64 and finite differences`, () =>
    trainCase(mode, setup([2, 5, 3, 7], 31)));
  test(`batchnorm ${mode} training with 5 uneven partial reductions per channel (chunk 10 of 42)`, () =>
    trainCase(mode, setup([2, 5, 3, 7], 32), 10));
  test(`batchnorm ${mode} training on [3, 6, 5] (no spatial dims beyond one)`, () => trainCase(mode, setup([3, 6, 5], 33)));
  // vec4 partial kernels whose threads step across plane boundaries (a plane of 9 vec4s, 64-thread steps)
  test(`batchnorm ${mode} training on [5, 3, 6, 6], vec4 partials, chunk 40 of 180 (4 uneven partials)`, () =>
    trainCase(mode, setup([5, 3, 6, 6], 34), 40));
  test(`batchnorm ${mode} training on [40, 2, 2, 2] (one vec4 per plane)`, () => trainCase(mode, setup([40, 2, 2, 2], 35)));
}

// 1000 + N(0,1): a one-pass E[x²] - E[x]² in float32 loses everything (1000² · 2^-24 ≈ 0.06 error on a
// variance of 1); Welford per thread + Chan merges keep the variance to ~1e-6 relative.
for (const chunk of [undefined, 256]) {
  test(`batchnorm numerically stable statistics: 1000 + N(0,1), 4800 values per channel, chunk ${chunk ?? 'default (one partial)'}`, async () => {
    const s = setup([2, 3, 48, 50], 41, (rng) => Math.fround(1000 + rng.normal()));
    const C = 3;
    const gpu = await getGpu();
    const x = Tensor.from(gpu, s.shape, s.xv);
    const st = batchnormStats(x, { mode: 'darknet', chunk });
    const stv = await st.toArray();
    const ref = bnStatsRef(s.xv, s.shape);
    close(stv.subarray(0, C), ref.mean, { atol: 0, rtol: 1e-7 }, 'offset mean');
    close(stv.subarray(2 * C, 3 * C), ref.varUnbiased, { atol: 0, rtol: 1e-4 }, 'offset var unbiased');
    // the naive float32 one-pass formula fails this tolerance (shows the test discriminates)
    const f = Math.fround;
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < 4800; i++) {
      const v = s.xv[Math.floor(i / 2400) * 3 * 2400 + (i % 2400)];
      s1 = f(s1 + v);
      s2 = f(s2 + f(v * v));
    }
    const naive = f(f(s2 / 4800) - f(f(s1 / 4800) ** 2)) * (4800 / 4799);
    assert.ok(Math.abs(naive - ref.varUnbiased[0]) > 1e-4 * ref.varUnbiased[0], `naive variance ${naive} vs ${ref.varUnbiased[0]}`);
    st.dispose();
    x.dispose();
    // Forward and backward through the whole op. x - mean is limited by the float32 mean itself (one ulp of
    // 1000 is 6.1e-5; PyTorch's float32 Welford has the same limit): y and dx carry gamma*r*delta <= 1.5*6.1e-5,
    // so atol 2e-4; dgamma = sum dy*(x - mean)*r carries delta*r*|sum dy| per channel (sum dy ~ 40 here), so
    // its tolerance is that bound for two ulps.
    const ulp = 6.103515625e-5;
    let maxSumDy = 0;
    for (let c = 0; c < C; c++) {
      let sdy = 0;
      for (let b = 0; b < 2; b++) for (let k = 0; k < 2400; k++) sdy += s.dyv[(b * C + c) * 2400 + k];
      maxSumDy = Math.max(maxSumDy, Math.abs(sdy));
    }
    await trainCase('darknet', s, chunk, false, { atol: 2e-4, rtol: 1e-5 }, { atol: 2 * ulp * 1.1 * maxSumDy, rtol: 1e-5 });
  });
}

for (const mode of ['darknet', 'torch'] as const) {
  test(`batchnorm ${mode} inference: running statistics, gradients with constant statistics`, async () => {
    const gpu = await getGpu();
    const s = setup([2, 3, 4, 5], 51);
    const C = 3;
    const x = Tensor.param(gpu, s.shape, s.xv);
    const gamma = Tensor.param(gpu, [C], s.gv);
    const beta = Tensor.param(gpu, [C], s.bv);
    const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], s.rmv), runningVar: Tensor.from(gpu, [C], s.rvv) };
    const dy = Tensor.from(gpu, s.shape, s.dyv);
    const tape = newTape();
    const y = tape.record(() => batchnorm(x, gamma, beta, state, { training: false, mode }));
    const fwd = (xx: ArrayLike<number>, gg: ArrayLike<number>, bb: ArrayLike<number>) => bnApplyRef(xx, s.shape, gg, bb, s.rmv, s.rvv, mode);
    close(await y.toArray(), fwd(s.xv, s.gv, s.bv), TOL, `${mode} inference forward`);
    assertClose(await state.runningMean.toArray(), s.rmv, { atol: 0, rtol: 0 }, 'running mean unchanged');
    assertClose(await state.runningVar.toArray(), s.rvv, { atol: 0, rtol: 0 }, 'running var unchanged');
    tape.backward(y, dy);
    const dx = await x.grad!.toArray();
    const dg = await gamma.grad!.toArray();
    const db = await beta.grad!.toArray();
    const r = bnInferBackwardRef(s.xv, s.shape, s.gv, s.dyv, s.rmv, s.rvv, mode);
    close(dx, r.dx, TOL, 'inference dx');
    close(dg, r.dgamma, TOL, 'inference dgamma');
    close(db, r.dbeta, TOL, 'inference dbeta');
    const x64 = f64(s.xv);
    const g64 = f64(s.gv);
    const loss = () => dot(fwd(x64, g64, s.bv), s.dyv);
    const ix = spread(x64.length, 30);
    close(ix.map((i) => dx[i]), finiteDiff(loss, x64, ix, 1e-4), FD_TOL, 'inference dx vs finite differences');
    close(dg, finiteDiff(loss, g64, undefined, 1e-4), FD_TOL, 'inference dgamma vs finite differences');
    for (const t of [y, dy, x.grad!, gamma.grad!, beta.grad!, x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
    tape.dispose();
  });
}

test('batchnorm: updateRunning false keeps the running statistics; frozen x gets no gradient; no leaks outside a tape', async () => {
  const gpu = await getGpu();
  const s = setup([2, 3, 3, 3], 61);
  const C = 3;
  const x = Tensor.from(gpu, s.shape, s.xv); // no grad
  const gamma = Tensor.param(gpu, [C], s.gv);
  const beta = Tensor.from(gpu, [C], s.bv); // no grad
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], s.rmv), runningVar: Tensor.from(gpu, [C], s.rvv) };
  const dy = Tensor.from(gpu, s.shape, s.dyv);
  const tape = newTape();
  const y = tape.record(() => batchnorm(x, gamma, beta, state, { training: true, updateRunning: false }));
  assertClose(await state.runningMean.toArray(), s.rmv, { atol: 0, rtol: 0 }, 'running mean unchanged');
  assertClose(await state.runningVar.toArray(), s.rvv, { atol: 0, rtol: 0 }, 'running var unchanged');
  tape.backward(y, dy);
  close(await gamma.grad!.toArray(), bnTrainBackwardRef(s.xv, s.shape, s.gv, s.dyv, 'darknet').dgamma, TOL, 'dgamma only');
  assert.is(x.grad, null);
  assert.is(beta.grad, null);
  y.dispose();
  gamma.grad!.dispose();
  tape.dispose();
  // not recorded: the statistics buffer is released
  const before = gpu.pool.inUse;
  const y2 = batchnorm(x, gamma, beta, state, { training: true });
  const y3 = batchnorm(x, gamma, beta, state, { training: false });
  y2.dispose();
  y3.dispose();
  assert.is(gpu.pool.inUse, before);
  assert.throws(() => batchnorm(Tensor.from(gpu, [1, 3, 1, 1], [1, 2, 3]), gamma, beta, state, { training: true }), /more than one value/);
  for (const t of [x, gamma, beta, dy, state.runningMean, state.runningVar]) t.dispose();
});

// The partial reductions run their 64 threads on 8, 16, 32 or 64 invocations (8 on CPU adapters, 64 on GPUs):
// every entry (scalar, vec4, pooled) gives the same bits at each width. Channel lengths that are not a
// multiple of 64 (threads with one sum fewer), several chunks per channel, HW odd for the scalar kernels.
test('batchnorm partial reductions: the same bits with 8, 16, 32 and 64 invocations per workgroup', async () => {
  const cases: [number[], string, number][] = [[[3, 5, 6, 12], 'vec4', 100], [[2, 3, 5, 7], 'scalar', 30], [[3, 4, 6, 8], 'pooled', 16384], [[2, 2, 6, 8], 'pooled', 40]];
  try {
    for (const [shape, kind, chunk] of cases) {
      const rng = new Rng(shape.reduce((a, b) => a * 7 + b, 3));
      const n = size(shape);
      const C = shape[1];
      const pooled = kind === 'pooled';
      const out = pooled ? [shape[0], C, shape[2] / 2, shape[3] / 2] : shape;
      const d = { xv: randomArray(rng, n, -2, 3), gv: randomArray(rng, C, 0.5, 1.5), bv: randomArray(rng, C, -0.5, 0.5), dzv: randomArray(rng, size(out), -1, 1) };
      const opts = { training: true, mode: 'darknet' as const, act: 'leaky' as const, chunk };
      const runs = await sameAtTreeWidths([64, 32, 16, 8], `${kind} [${shape.join(',')}] chunk ${chunk}`, () =>
        runBn(shape, out, d, (x, g, b, st) => (pooled ? batchnormMaxpool(x, g, b, st, opts, { size: 2, stride: 2 }) : batchnorm(x, g, b, st, opts))));
      // and right: dgamma against float64 (the statistics enter every output)
      if (!pooled) {
        const y64 = bnTrainRef(d.xv, shape, d.gv, d.bv, 'darknet');
        const dy64 = f64(d.dzv).map((v, i) => (y64[i] > 0 ? v : 0.1 * v));
        close(runs[3].dg, bnTrainBackwardRef(d.xv, shape, d.gv, dy64, 'darknet').dgamma, TOL, `${kind}: dgamma vs float64`);
      }
    }
    treeTuning.width = 128;
    const gpu = await getGpu();
    const x = Tensor.from(gpu, [2, 1, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.throws(() => batchnormStats(x).dispose(), /width must be a power of two from 8 to 64, got 128/);
    x.dispose();
  } finally {
    treeTuning.width = 0;
  }
});

test('batchnorm2d_train (torch mode) vs PyTorch golden: y, grads, batch and running statistics', async () => {
  const gpu = await getGpu();
  const c = gradCase('batchnorm2d_train');
  const T = c.tensors;
  const C = T.gamma.shape[0];
  const x = Tensor.param(gpu, T.x.shape, f32In(T.x));
  const gamma = Tensor.param(gpu, [C], f32In(T.gamma));
  const beta = Tensor.param(gpu, [C], f32In(T.beta));
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], f32In(T.running_mean_before)), runningVar: Tensor.from(gpu, [C], f32In(T.running_var_before)) };
  const dy = Tensor.from(gpu, T.dy.shape, f32In(T.dy));
  const st = batchnormStats(x, { mode: 'torch' });
  const stv = await st.toArray();
  close(stv.subarray(0, C), T.batch_mean.data, GOLDEN_TOL, 'golden batch_mean');
  close(stv.subarray(C, 2 * C), T.batch_var_biased.data, GOLDEN_TOL, 'golden batch_var_biased');
  close(stv.subarray(2 * C, 3 * C), T.batch_var_unbiased.data, GOLDEN_TOL, 'golden batch_var_unbiased');
  st.dispose();
  const tape = newTape();
  const y = tape.record(() => batchnorm(x, gamma, beta, state, { training: true, mode: 'torch' }));
  close(await y.toArray(), T.y.data, GOLDEN_TOL, 'golden y');
  close(await state.runningMean.toArray(), T.running_mean_after.data, GOLDEN_TOL, 'golden running_mean_after');
  close(await state.runningVar.toArray(), T.running_var_after.data, GOLDEN_TOL, 'golden running_var_after');
  tape.backward(y, dy);
  close(await x.grad!.toArray(), T.dx.data, GOLDEN_TOL, 'golden dx');
  close(await gamma.grad!.toArray(), T.dgamma.data, GOLDEN_TOL, 'golden dgamma');
  close(await beta.grad!.toArray(), T.dbeta.data, GOLDEN_TOL, 'golden dbeta');
  for (const t of [y, dy, x.grad!, gamma.grad!, beta.grad!, x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
  tape.dispose();
});

test('batchnorm2d_train_darknet vs PyTorch autograd golden of the Darknet formula', async () => {
  const gpu = await getGpu();
  const c = gradCase('batchnorm2d_train_darknet');
  const T = c.tensors;
  const C = T.gamma.shape[0];
  const x = Tensor.param(gpu, T.x.shape, f32In(T.x));
  const gamma = Tensor.param(gpu, [C], f32In(T.gamma));
  const beta = Tensor.param(gpu, [C], f32In(T.beta));
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], new Float32Array(C)), runningVar: Tensor.from(gpu, [C], new Float32Array(C).fill(1)) };
  const dy = Tensor.from(gpu, T.dy.shape, f32In(T.dy));
  const tape = newTape();
  const y = tape.record(() => batchnorm(x, gamma, beta, state, { training: true, mode: 'darknet' }));
  close(await y.toArray(), T.y.data, GOLDEN_TOL, 'golden y');
  tape.backward(y, dy);
  close(await x.grad!.toArray(), T.dx.data, GOLDEN_TOL, 'golden dx');
  close(await gamma.grad!.toArray(), T.dgamma.data, GOLDEN_TOL, 'golden dgamma');
  close(await beta.grad!.toArray(), T.dbeta.data, GOLDEN_TOL, 'golden dbeta');
  // and the float64 reference agrees with the golden (validates the reference's Darknet formula)
  close(bnTrainRef(f32In(T.x), T.x.shape, f32In(T.gamma), f32In(T.beta), 'darknet'), T.y.data, { atol: 1e-9, rtol: 1e-9 }, 'reference y vs golden');
  close(bnTrainBackwardRef(f32In(T.x), T.x.shape, f32In(T.gamma), f32In(T.dy), 'darknet').dx, T.dx.data, { atol: 1e-9, rtol: 1e-9 }, 'reference dx vs golden');
  for (const t of [y, dy, x.grad!, gamma.grad!, beta.grad!, x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
  tape.dispose();
});

test.run();
