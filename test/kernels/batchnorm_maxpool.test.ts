// batchnormMaxpool: maxpool(act(batchnorm(x)), 2x2/2) in one pass (kernels/batchnorm.wgsl normalize_pool4),
// training's conv -> BN -> activation -> [maxpool] without the activated map, and a backward that reads the
// pooled gradient and argmax instead of a full-size gradient (grad_partial_pool4, grad_input_pool4). Checked against the two ops it
// replaces on the same device (the same f32 expressions and comparisons: the same values, argmax and
// gradients), against float64 (pool of act ∘ BN, the gradient sent to the window's first maximum, then BN's),
// with central differences for a smooth activation, and on shapes it leaves to the two ops.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff } from '../helpers/check.js';
import { bnApplyRef, bnInferBackwardRef, bnTrainBackwardRef, bnTrainRef } from '../reference/batchnorm.js';
import { act, actGrad } from '../reference/activation.js';
import { Tensor } from '../../src/tensor/index.js';
import { batchnorm, batchnormMaxpool, type BatchnormState } from '../../src/tensor/ops/batchnorm.js';
import { runBn, type BnRun } from '../helpers/bn.js';
import { maxpool } from '../../src/tensor/ops/pool.js';
import type { Activation } from '../../src/tensor/ops/activation.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const TOL = { atol: 2e-5, rtol: 1e-5 };
const FD_TOL = { atol: 2e-4, rtol: 2e-4 };
const EXACT = { atol: 0, rtol: 0 };
const POOL = { size: 2, stride: 2 };
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** One forward + backward, fused (batchnormMaxpool) or as maxpool(batchnorm(x, { act })). */
function run(shape: number[], xv: Float32Array, gv: Float32Array, bv: Float32Array, dzv: Float32Array, a: Activation, training: boolean, fused: boolean): Promise<BnRun> {
  // Darknet's output size with the default padding 1: (in + 1 - 2)/2 + 1 = ceil(in/2)
  const pooled = [shape[0], shape[1], Math.ceil(shape[2] / 2), Math.ceil(shape[3] / 2)];
  const opts = { training, mode: 'darknet' as const, act: a };
  return runBn(shape, pooled, { xv, gv, bv, dzv }, (x, gamma, beta, state) =>
    fused ? batchnormMaxpool(x, gamma, beta, state, opts, POOL) : maxpool(batchnorm(x, gamma, beta, state, opts), POOL));
}

/** Darknet's 2x2/2 maxpool of one NCHW map in float64 (H, W even): values and argmax (first maximum, row-major). */
function pool64(v: ArrayLike<number>, shape: number[]): { y: Float64Array; arg: Int32Array } {
  const [N, C, H, W] = shape;
  const oh = H / 2;
  const ow = W / 2;
  const y = new Float64Array(N * C * oh * ow);
  const arg = new Int32Array(y.length);
  for (let p = 0; p < N * C; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let best = -Infinity;
        let at = -1;
        for (let dy = 0; dy < 2; dy++) {
          for (let dx = 0; dx < 2; dx++) {
            const i = p * H * W + (2 * oy + dy) * W + 2 * ox + dx;
            if (v[i] > best) [best, at] = [v[i], i];
          }
        }
        y[(p * oh + oy) * ow + ox] = best;
        arg[(p * oh + oy) * ow + ox] = at;
      }
    }
  }
  return { y, arg };
}

interface Data {
  xv: Float32Array;
  gv: Float32Array;
  bv: Float32Array;
  dzv: Float32Array;
}

async function poolCase(shape: number[], a: Activation, training: boolean, seed: number, fd: boolean, data?: Data): Promise<void> {
  const rng = new Rng(seed);
  const n = size(shape);
  const C = shape[1];
  const HW = size(shape.slice(2));
  const off = Array.from({ length: C }, () => rng.uniform(-1, 1));
  const { xv, gv, bv, dzv } = data ?? {
    xv: Float32Array.from({ length: n }, (_, i) => off[Math.floor(i / HW) % C] + rng.normal()),
    gv: randomArray(rng, C, 0.5, 1.5),
    bv: randomArray(rng, C, -0.5, 0.5),
    dzv: randomArray(rng, n / 4, -1, 1),
  };
  const label = `${a} ${training ? 'train' : 'frozen'} [${shape.join(',')}]`;

  const f = await run(shape, xv, gv, bv, dzv, a, training, true);
  const u = await run(shape, xv, gv, bv, dzv, a, training, false);
  assertClose(f.z, u.z, EXACT, `${label}: fused forward vs maxpool(batchnorm)`);
  assertClose(f.dx, u.dx, EXACT, `${label}: fused dx vs unfused`);
  assertClose(f.dg, u.dg, EXACT, `${label}: fused dgamma vs unfused`);
  assertClose(f.db, u.db, EXACT, `${label}: fused dbeta vs unfused`);
  assertClose(f.rm, u.rm, EXACT, `${label}: running mean`);
  assertClose(f.rv, u.rv, EXACT, `${label}: running var`);
  assert.is(f.forward, u.forward - 1, `${label}: one pass fewer forward (${u.forward} -> ${f.forward})`);
  assert.is(f.backward, u.backward - 1, `${label}: one pass fewer backward (${u.backward} -> ${f.backward})`);

  // float64: z = pool(act(BN(x))); the pooled gradient goes to each window's argmax, times act'(y), then BN's
  const rmv = new Float32Array(C).fill(0.25);
  const rvv = new Float32Array(C).fill(1.5);
  const bn = (xx: ArrayLike<number>, gg: ArrayLike<number>, bb: ArrayLike<number>) => (training ? bnTrainRef(xx, shape, gg, bb, 'darknet') : bnApplyRef(xx, shape, gg, bb, rmv, rvv, 'darknet'));
  const y64 = bn(xv, gv, bv);
  const p64 = pool64(y64.map((v) => act(v, a)), shape);
  assertClose(f.z, p64.y, TOL, `${label}: forward vs float64`);
  const dy64 = new Float64Array(n);
  p64.arg.forEach((i, k) => { dy64[i] = dzv[k] * actGrad(y64[i], a); });
  const ref = training ? bnTrainBackwardRef(xv, shape, gv, dy64, 'darknet') : bnInferBackwardRef(xv, shape, gv, dy64, rmv, rvv, 'darknet');
  assertClose(f.dx, ref.dx, TOL, `${label}: dx vs float64`);
  assertClose(f.dg, ref.dgamma, TOL, `${label}: dgamma vs float64`);
  assertClose(f.db, ref.dbeta, TOL, `${label}: dbeta vs float64`);
  if (fd) {
    const x64 = f64(xv);
    const g64 = f64(gv);
    const b64 = f64(bv);
    const loss = () => dot(pool64(bn(x64, g64, b64).map((v) => act(v, a)), shape).y, dzv);
    const ix = [...Array(24).keys()].map((k) => Math.round((k * (n - 1)) / 23));
    assertClose(ix.map((i) => f.dx[i]), finiteDiff(loss, x64, ix, 1e-4), FD_TOL, `${label}: dx vs finite differences`);
    assertClose(f.dg, finiteDiff(loss, g64, undefined, 1e-4), FD_TOL, `${label}: dgamma vs finite differences`);
    assertClose(f.db, finiteDiff(loss, b64, undefined, 1e-4), FD_TOL, `${label}: dbeta vs finite differences`);
  }
}

// Planes of 4x8 (one pair per pooled row), 6x12 (pairs crossing pooled rows within an invocation: w4 = 3)
// and 2x4 with 5 channels (a plane is one pair; invocations span planes of different channels).
test('batchnormMaxpool, training: the same values, argmax and gradients as maxpool(batchnorm), and float64', async () => {
  await poolCase([2, 3, 4, 8], 'leaky', true, 11, false);
  await poolCase([2, 3, 6, 12], 'leaky', true, 12, false);
  await poolCase([3, 5, 2, 4], 'linear', true, 13, true);
  await poolCase([2, 2, 4, 8], 'mish', true, 14, true);
});

test('batchnormMaxpool with running statistics (frozen layers: training = false)', async () => {
  await poolCase([2, 3, 4, 8], 'leaky', false, 21, false);
  await poolCase([1, 2, 4, 4], 'logistic', false, 22, true);
});

test('batchnormMaxpool ties: the first maximum of a window in row-major order gets the gradient', async () => {
  // windows whose maximum is there 2, 3 or 4 times (equal x are equal after BN and a linear activation), at
  // every pair of positions: maxpool_layer.c's strict > keeps the first, and so must the pass (float64's
  // reference does the same; a >= anywhere in the window sends the gradient elsewhere)
  const shape = [2, 2, 4, 8];
  const [N, C, H, W] = shape;
  const masks = [0b1111, 0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100, 0b0111, 0b1110, 0b1011];
  const xv = new Float32Array(size(shape));
  for (let p = 0; p < N * C; p++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const win = (p * H) / 2 * (W / 2) + (y >> 1) * (W / 2) + (x >> 1);
        const at = (y & 1) * 2 + (x & 1);
        xv[p * H * W + y * W + x] = (win % 5) - ((masks[win % masks.length] >> at) & 1 ? 0 : 0.5);
      }
    }
  }
  const data = { xv, gv: new Float32Array([1, 0.5]), bv: new Float32Array([0, 0.25]), dzv: Float32Array.from({ length: xv.length / 4 }, (_, i) => 1 + i) };
  await poolCase(shape, 'linear', true, 0, false, data);
});

test('batchnormMaxpool on shapes the pass does not take (H odd, W % 4 != 0) runs maxpool(batchnorm): same results', async () => {
  for (const [k, shape] of [[2, 3, 5, 8], [2, 3, 6, 6], [1, 2, 3, 3]].entries()) {
    const rng = new Rng(30 + k);
    const n = size(shape);
    const C = shape[1];
    const xv = randomArray(rng, n, -2, 2);
    const gv = randomArray(rng, C, 0.5, 1.5);
    const bv = randomArray(rng, C, -0.5, 0.5);
    const dzv = randomArray(rng, shape[0] * C * Math.ceil(shape[2] / 2) * Math.ceil(shape[3] / 2), -1, 1);
    const f = await run(shape, xv, gv, bv, dzv, 'leaky', true, true);
    const u = await run(shape, xv, gv, bv, dzv, 'leaky', true, false);
    assertClose(f.z, u.z, EXACT, `[${shape}] forward`);
    assertClose(f.dx, u.dx, EXACT, `[${shape}] dx`);
    assertClose(f.dg, u.dg, EXACT, `[${shape}] dgamma`);
    assert.is(f.forward, u.forward, `[${shape}] the same passes`);
    assert.is(f.backward, u.backward, `[${shape}] the same passes backward`);
  }
});

test('batchnormMaxpool: no leaks outside a tape; a pool other than 2x2/2 is refused', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [2, 3, 4, 8], randomArray(new Rng(40), 192, -1, 1));
  const gamma = Tensor.from(gpu, [3], new Float32Array([1, 1, 1]));
  const beta = Tensor.from(gpu, [3], new Float32Array(3));
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [3], new Float32Array(3)), runningVar: Tensor.from(gpu, [3], new Float32Array(3).fill(1)) };
  const before = gpu.pool.inUse;
  batchnormMaxpool(x, gamma, beta, state, { training: true, act: 'leaky' }, POOL).dispose();
  assert.is(gpu.pool.inUse, before);
  assert.throws(() => batchnormMaxpool(x, gamma, beta, state, { training: true }, { size: 2, stride: 1 }), /size 2 stride 2/);
  assert.throws(() => batchnormMaxpool(x, gamma, beta, state, { training: true }, { size: 3, stride: 2 }), /size 2 stride 2/);
  for (const t of [x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
});

test.run();
