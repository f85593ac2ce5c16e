import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { GpuError } from '../../src/gpu/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { conv2dForward } from '../../src/tensor/ops/conv2d.js';
import { activation } from '../../src/tensor/ops/activation.js';
import { axpyInPlace } from '../../src/tensor/ops/elementwise.js';
import { assertClose } from '../helpers/check.js';
import { formatProfile, profileNetwork } from '../../src/perf/profile.js';

test('profile: device time per kernel from timestamp queries; results unchanged; refused without timestamps', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 4, 12, 12], Float32Array.from({ length: 576 }, (_, i) => Math.sin(i)));
  const w = Tensor.from(gpu, [6, 4, 3, 3], Float32Array.from({ length: 216 }, (_, i) => Math.cos(i)));
  const run = () => {
    const y = conv2dForward(x, w, null, { pad: 1 }, 'gemm_reg');
    const z = activation(y, 'leaky');
    y.dispose();
    return z;
  };
  const ref = await run().toArray();
  if (!gpu.hasFeature('timestamp-query')) {
    assert.throws(() => gpu.startProfile(), (e: unknown) => e instanceof GpuError && /timestamp-query/.test((e as Error).message));
    console.log('  [adapter without timestamp-query: startProfile refuses, as tested]');
    return;
  }
  const d0 = gpu.dispatches;
  gpu.startProfile();
  const outs = [run(), run(), run()];
  const totals = await gpu.stopProfile();
  assert.is(gpu.dispatches - d0, 6);
  const conv = totals.get('conv2d_reg.wgsl:fwd');
  // the activation's vec4 form runs here (6*12*12 values)
  const act = totals.get('activation.wgsl:fwd4') ?? totals.get('activation.wgsl:fwd');
  assert.ok(conv && act, [...totals.keys()].join(', '));
  assert.is(conv!.n, 3);
  assert.is(act!.n, 3);
  assert.ok(conv!.ms > 0 && act!.ms >= 0);
  for (const o of outs) {
    assertClose(await o.toArray(), ref, { atol: 0, rtol: 0 }, 'profiled result');
    o.dispose();
  }
  // after stopProfile dispatches are batched again and the profile is empty
  assert.is((await gpu.stopProfile()).size, 0);
  x.dispose();
  w.dispose();
});

test('profile: past the 1024 dispatches one query set holds, every dispatch still reads its own uniforms', async () => {
  // 2500 dispatches, each adding k * x with its own k (a uniform): the profile resolves and submits twice
  // midway. A dispatch whose uniform slot was taken before such a submit ran with a later dispatch's values
  // (and a conv or loss with garbage trip counts never finished: `bench profile --train` on enet-coco hung).
  const gpu = await getGpu();
  if (!gpu.hasFeature('timestamp-query')) {
    console.log('  [adapter without timestamp-query: nothing to profile]');
    return;
  }
  const n = 2500;
  const x = Tensor.from(gpu, [8], Float32Array.from({ length: 8 }, (_, i) => 1 + (i % 4)));
  const y = Tensor.from(gpu, [8], new Float32Array(8));
  gpu.startProfile();
  for (let k = 1; k <= n; k++) axpyInPlace(y, x, k);
  const totals = await gpu.stopProfile();
  assert.is([...totals.values()].reduce((a, v) => a + v.n, 0), n);
  const sum = (n * (n + 1)) / 2; // exact in f32: every partial sum is an integer below 4 * sum < 2^24
  assertClose(await y.toArray(), Float32Array.from({ length: 8 }, (_, i) => sum * (1 + (i % 4))), { atol: 0, rtol: 0 }, 'sum of k * x');
  x.dispose();
  y.dispose();
});

test('bench profile of a network: wall, host recording and device time per step, rows per kernel', async () => {
  const gpu = await getGpu();
  if (!gpu.hasFeature('timestamp-query')) {
    console.log('  [adapter without timestamp-query: nothing to profile]');
    return;
  }
  for (const train of [false, true]) {
    const r = await profileNetwork(gpu, { cfg: 'fixtures/cfg/yolo-mini.cfg', img: 64, batch: 1, train, steps: 2, warmup: 1 });
    assert.ok(r.hostMs > 0 && r.hostMs < r.wallMs, `host ${r.hostMs} ms within wall ${r.wallMs} ms`);
    assert.ok(r.deviceMs > 0 && r.dispatches > 0 && r.rows.length > 0);
    assert.ok(Math.abs(r.rows.reduce((a, x) => a + x.ms, 0) - r.deviceMs) < 1e-6 * r.deviceMs + 1e-9, 'the rows add up to the device time');
    assert.match(formatProfile(r), /wall [\d.]+ ms per step \(unprofiled; [\d.]+ of them recording it on the host\)/);
  }
});

test.run();
