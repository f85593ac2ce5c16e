// Batchnorm with the activation fused (batchnorm(x, ..., { act })): the forward writes act(y) without storing
// y, the backward recomputes y and folds act'(y) into its two passes. Checked against the unfused composition
// activation(batchnorm(x)) on the same device (same values: the fused kernels evaluate the same f32
// expressions) and against float64 (act ∘ BN and its gradient), with central differences for the smooth
// activations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff } from '../helpers/check.js';
import { bnApplyRef, bnInferBackwardRef, bnTrainBackwardRef, bnTrainRef } from '../reference/batchnorm.js';
import { act, actGrad } from '../reference/activation.js';
import { Tensor } from '../../src/tensor/index.js';
import { batchnorm, type BatchnormState } from '../../src/tensor/ops/batchnorm.js';
import { runBn, type BnRun } from '../helpers/bn.js';
import { activation, type Activation } from '../../src/tensor/ops/activation.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const TOL = { atol: 2e-5, rtol: 1e-5 };
const FD_TOL = { atol: 2e-4, rtol: 2e-4 };
/** fused vs unfused on one device: the same f32 expressions (bitwise on lavapipe; contraction may differ elsewhere) */
const SAME = { atol: 1e-6, rtol: 1e-6 };
const VERBOSE = !!process.env.YOLO_WGSL_TEST_VERBOSE;
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const spread = (len: number, n: number) => (len <= n ? [...Array(len).keys()] : [...Array(n).keys()].map((k) => Math.round((k * (len - 1)) / (n - 1))));

function close(a: ArrayLike<number>, e: ArrayLike<number>, tol: { atol: number; rtol: number }, label: string): void {
  const err = assertClose(a, e, tol, label);
  if (VERBOSE) console.log(`  ${label}: max |err| ${err.toExponential(2)}`);
}

/** One forward + backward, fused (batchnorm with act) or as the composition activation(batchnorm(x)). */
function run(shape: number[], xv: Float32Array, gv: Float32Array, bv: Float32Array, dzv: Float32Array, a: Activation, training: boolean, fused: boolean): Promise<BnRun> {
  return runBn(shape, shape, { xv, gv, bv, dzv }, (x, gamma, beta, state) =>
    fused ? batchnorm(x, gamma, beta, state, { training, mode: 'darknet', act: a }) : activation(batchnorm(x, gamma, beta, state, { training, mode: 'darknet' }), a));
}

async function fusedCase(shape: number[], a: Activation, training: boolean, seed: number, fd: boolean): Promise<void> {
  const rng = new Rng(seed);
  const n = size(shape);
  const C = shape[1];
  const HW = size(shape.slice(2));
  const off = Array.from({ length: C }, () => rng.uniform(-1, 1));
  const xv = Float32Array.from({ length: n }, (_, i) => off[Math.floor(i / HW) % C] + rng.normal());
  const gv = randomArray(rng, C, 0.5, 1.5);
  const bv = randomArray(rng, C, -0.5, 0.5);
  const dzv = randomArray(rng, n, -1, 1);
  const label = `${a} ${training ? 'train' : 'frozen'} [${shape.join(',')}]`;

  const f = await run(shape, xv, gv, bv, dzv, a, training, true);
  const u = await run(shape, xv, gv, bv, dzv, a, training, false);
  close(f.z, u.z, SAME, `${label}: fused forward vs activation(batchnorm)`);
  close(f.dx, u.dx, SAME, `${label}: fused dx vs unfused`);
  close(f.dg, u.dg, SAME, `${label}: fused dgamma vs unfused`);
  close(f.db, u.db, SAME, `${label}: fused dbeta vs unfused`);
  assertClose(f.rm, u.rm, { atol: 0, rtol: 0 }, `${label}: running mean`);
  assertClose(f.rv, u.rv, { atol: 0, rtol: 0 }, `${label}: running var`);

  // float64: z = act(BN(x)), dz -> dy = dz·act'(y) -> the BN gradient
  const rmv = new Float32Array(C).fill(0.25);
  const rvv = new Float32Array(C).fill(1.5);
  const bn = (xx: ArrayLike<number>, gg: ArrayLike<number>, bb: ArrayLike<number>) => (training ? bnTrainRef(xx, shape, gg, bb, 'darknet') : bnApplyRef(xx, shape, gg, bb, rmv, rvv, 'darknet'));
  const y64 = bn(xv, gv, bv);
  close(f.z, y64.map((v) => act(v, a)), TOL, `${label}: forward vs float64`);
  const dy64 = Float64Array.from(dzv, (g, i) => g * actGrad(y64[i], a));
  const ref = training ? bnTrainBackwardRef(xv, shape, gv, dy64, 'darknet') : bnInferBackwardRef(xv, shape, gv, dy64, rmv, rvv, 'darknet');
  close(f.dx, ref.dx, TOL, `${label}: dx vs float64`);
  close(f.dg, ref.dgamma, TOL, `${label}: dgamma vs float64`);
  close(f.db, ref.dbeta, TOL, `${label}: dbeta vs float64`);
  if (fd) {
    const x64 = f64(xv);
    const g64 = f64(gv);
    const b64 = f64(bv);
    const loss = () => dot(bn(x64, g64, b64).map((v) => act(v, a)), dzv);
    const ix = spread(n, 24);
    close(ix.map((i) => f.dx[i]), finiteDiff(loss, x64, ix, 1e-4), FD_TOL, `${label}: dx vs finite differences`);
    close(f.dg, finiteDiff(loss, g64, undefined, 1e-4), FD_TOL, `${label}: dgamma vs finite differences`);
    close(f.db, finiteDiff(loss, b64, undefined, 1e-4), FD_TOL, `${label}: dbeta vs finite differences`);
  }
}

const SMOOTH = new Set<Activation>(['logistic', 'mish', 'swish', 'tanh', 'linear']);
const ALL: Activation[] = ['leaky', 'logistic', 'relu', 'mish', 'swish', 'relu6', 'ramp', 'tanh', 'linear'];

// vec4 kernels (HW % 4 == 0): every activation, training (batch statistics)
test('batchnorm + activation fused, vec4 kernels, training: every activation vs the composition and float64', async () => {
  for (const [k, a] of ALL.entries()) await fusedCase([2, 3, 4, 4], a, true, 100 + k, SMOOTH.has(a));
});

// scalar kernels (HW % 4 != 0) and the frozen path (running statistics, training = false)
test('batchnorm + activation fused, scalar kernels (HW 15) and frozen statistics', async () => {
  for (const [k, a] of (['leaky', 'mish', 'logistic'] as Activation[]).entries()) {
    await fusedCase([2, 3, 3, 5], a, true, 200 + k, a !== 'leaky');
    await fusedCase([2, 3, 3, 5], a, false, 210 + k, a !== 'leaky');
    await fusedCase([2, 3, 4, 4], a, false, 220 + k, a !== 'leaky');
  }
});

test('batchnorm + activation fused: no leaks outside a tape, unknown activation refused', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [2, 2, 2, 2], randomArray(new Rng(3), 16, -1, 1));
  const g = Tensor.from(gpu, [2], [1, 1]);
  const b = Tensor.from(gpu, [2], [0, 0]);
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [2], [0, 0]), runningVar: Tensor.from(gpu, [2], [1, 1]) };
  const before = gpu.pool.inUse;
  batchnorm(x, g, b, state, { training: true, act: 'leaky' }).dispose();
  assert.is(gpu.pool.inUse, before);
  assert.throws(() => batchnorm(x, g, b, state, { training: true, act: 'nope' as Activation }), /unknown activation 'nope'/);
  for (const t of [x, g, b, state.runningMean, state.runningVar]) t.dispose();
});

test.run();
