/**
 * A small conv-BN-leaky-maxpool-upsample-concat-shortcut network built with the tape: every parameter's
 * gradient (and the input's) must match central finite differences of the whole network's loss, computed
 * through the float64 references of each op.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import { Tensor, newTape, activation } from '../../src/tensor/index.js';
import { conv2d } from '../../src/tensor/ops/conv2d.js';
import { batchnorm } from '../../src/tensor/ops/batchnorm.js';
import { maxpool } from '../../src/tensor/ops/pool.js';
import { upsample } from '../../src/tensor/ops/upsample.js';
import { concat } from '../../src/tensor/ops/concat.js';
import { shortcut } from '../../src/tensor/ops/shortcut.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { conv2dRef } from '../reference/conv2d.js';
import { bnTrainRef } from '../reference/batchnorm.js';
import { activationRef } from '../reference/activation.js';
import { maxpoolRef } from '../reference/pool.js';
import { upsampleRef } from '../reference/upsample.js';
import { concatRef } from '../reference/concat.js';
import { shortcutRef } from '../reference/shortcut.js';

const X_SHAPE = [2, 3, 8, 10];
const SHAPES: Record<string, number[]> = {
  w1: [6, 3, 3, 3], g1: [6], b1: [6], // conv1 (no bias) + BN
  w2: [8, 6, 3, 3], c2: [8], // conv2 + bias, leaky
  w3: [6, 7, 1, 1], c3: [6], // 1x1 conv over the route (8 upsampled + 6/2 groups... see below)
};

type Params = Record<string, Float64Array>;

/**
 * The network, in float64:
 *   h1 = leaky(BN_darknet(conv3x3(x, w1)))                     [2,6,8,10]
 *   p  = maxpool(h1, size 2, stride 2)                          [2,6,4,5]
 *   h2 = leaky(conv3x3(p, w2) + c2)                             [2,8,4,5]
 *   u  = upsample(h2, 2)                                        [2,8,8,10]
 *   r  = route(u, h1) with groups 2, group_id 1                 [2,4+3,8,10]
 *   h3 = conv1x1(r, w3) + c3                                    [2,6,8,10]
 *   y  = shortcut(h3, h1, leaky)                                [2,6,8,10]
 */
function forwardRef(x: Float64Array, P: Params): Float64Array {
  const c1 = conv2dRef(x, X_SHAPE, P.w1, SHAPES.w1, null, { pad: 1 });
  const h1 = activationRef(bnTrainRef(c1.y, c1.shape, P.g1, P.b1, 'darknet'), 'leaky');
  const p = maxpoolRef(h1, c1.shape, { size: 2, strideX: 2, strideY: 2, padding: 1 });
  const c2 = conv2dRef(p.y, p.shape, P.w2, SHAPES.w2, P.c2, { pad: 1 });
  const h2 = activationRef(c2.y, 'leaky');
  const uShape = [c2.shape[0], c2.shape[1], c2.shape[2] * 2, c2.shape[3] * 2];
  const u = upsampleRef(h2, c2.shape, 2);
  const r = concatRef([{ data: u, shape: uShape }, { data: h1, shape: c1.shape }], 2, 1);
  const rShape = [2, 7, 8, 10];
  const c3 = conv2dRef(r, rShape, P.w3, SHAPES.w3, P.c3, {});
  return shortcutRef(c3.y, c3.shape, h1, c1.shape, 'leaky');
}

test('composed network: tape gradients match finite differences of the whole loss', async () => {
  const gpu = await getGpu();
  const rng = new Rng(2024);
  const xv = randomArray(rng, 2 * 3 * 8 * 10, -1, 1);
  const init: Record<string, Float32Array> = {};
  for (const [k, s] of Object.entries(SHAPES)) {
    const n = s.reduce((a, b) => a * b, 1);
    init[k] = k.startsWith('g') ? randomArray(rng, n, 0.5, 1.5) : randomArray(rng, n, -0.5, 0.5);
  }
  const x = Tensor.param(gpu, X_SHAPE, xv);
  const P: Record<string, Tensor> = {};
  for (const [k, s] of Object.entries(SHAPES)) P[k] = Tensor.param(gpu, s, init[k]);
  const state = { runningMean: Tensor.from(gpu, [6], new Float32Array(6)), runningVar: Tensor.from(gpu, [6], new Float32Array(6).fill(1)) };

  const tape = newTape();
  const y = tape.record(() => {
    const h1 = activation(batchnorm(conv2d(x, P.w1, null, { pad: 1 }), P.g1, P.b1, state, { training: true, mode: 'darknet' }), 'leaky');
    const p = maxpool(h1, { size: 2, stride: 2 });
    const h2 = conv2d(p, P.w2, P.c2, { pad: 1 }, { act: 'leaky' });
    const u = upsample(h2, 2);
    const r = concat([u, h1], { groups: 2, groupId: 1 });
    const h3 = conv2d(r, P.w3, P.c3);
    return shortcut(h3, h1, { activation: 'leaky' });
  });
  assert.equal([...y.shape], [2, 6, 8, 10]);
  const dyv = randomArray(rng, y.size, -1, 1);
  const dy = Tensor.from(gpu, y.shape, dyv);

  // forward vs the float64 composition
  const xs = f64(xv);
  const Ps: Params = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, f64(v)]));
  const yRef = forwardRef(xs, Ps);
  assertClose(await y.toArray(), yRef, { atol: 2e-5, rtol: 2e-4 }, 'network forward');

  const inUseBefore = gpu.pool.inUse;
  tape.backward(y, dy);
  assert.ok(gpu.pool.inUse < inUseBefore, 'backward released the intermediates');

  const loss = () => dot(forwardRef(xs, Ps), dyv);
  // float64 finite differences (eps 1e-4 stays clear of the leaky/maxpool kinks for these values)
  const tol = { atol: 2e-4, rtol: 2e-3 };
  const gx = await x.grad!.toArray();
  const ix = sampleIndices(xs.length, 40);
  assertClose(ix.map((i) => gx[i]), finiteDiff(loss, xs, ix, 1e-4), tol, 'd loss / d x');
  for (const k of Object.keys(SHAPES)) {
    const g = await P[k].grad!.toArray();
    const idx = sampleIndices(Ps[k].length, 30);
    assertClose(idx.map((i) => g[i]), finiteDiff(loss, Ps[k], idx, 1e-4), tol, `d loss / d ${k}`);
  }
  for (const t of [x, y, dy, ...Object.values(P), state.runningMean, state.runningVar]) {
    t.grad?.dispose();
    t.dispose();
  }
  tape.dispose();
});

test.run();
