/**
 * The bench suite on a tiny network: benchNetwork's result structure and sanity (positive times, peak memory
 * at least the weights), and, when the peer packages are installed, that the peer models built from a cfg
 * (bench/peers/tfjs.ts on TF.js's cpu backend, bench/peers/onnx.ts in onnxruntime-node) compute what our
 * forward computes, and that the TF.js training graph's loss equals our 'sumsq' training step's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs } from '../helpers/check.js';
import { packageRoot } from '../../src/util/paths.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { TrainStep, benchNetwork, formatNetworkBench, timeCalls } from '../../src/perf/network.js';
import { buildTfModel, nchwToNhwc, nhwcToNchw } from '../../bench/peers/tfjs.js';
import { buildOnnxModel } from '../../bench/peers/onnx.js';

const CFG = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
const S = 64;

test('benchNetwork: structure and sanity on yolo-mini at 64 px, 1 iteration', async () => {
  const gpu = await getGpu();
  const r = await benchNetwork({
    cfg: CFG, gpu, sizes: [S], inferBatches: [1, 2], trainSizes: [S], trainBatches: [1], sweepBatches: [1, 2], sweepSizes: [S, 96],
    iters: 1, minIters: 1, budgetSeconds: 0,
  });
  assert.equal(r.errors, []);
  assert.is(r.device, gpu.info.summary);
  assert.is(r.infer.length, 2);
  for (const c of r.infer) {
    assert.ok(c.ms > 0 && c.first_ms > 0 && c.ms_per_image > 0 && c.gflops > 0, `infer ${c.size} b${c.batch}: times ${c.ms} / ${c.first_ms}`);
    assert.is(c.samples, 1);
    assert.ok(c.weights_bytes > 0);
    assert.ok(c.peak_bytes >= c.weights_bytes, `peak ${c.peak_bytes} < weights ${c.weights_bytes}`);
    assert.ok(c.peak_held_bytes >= c.peak_bytes);
    assert.ok(c.peak_ratio > 0 && Number.isFinite(c.peak_ratio));
  }
  // inference weights are BN-folded: 244200 parameters less 3 per BN channel
  assert.ok(r.infer[0].weights_bytes < r.params * 4);
  assert.is(r.train.length, 1);
  const t = r.train[0];
  assert.ok(t.ms > 0 && t.first_ms > 0, `train times ${t.ms} / ${t.first_ms}`);
  assert.ok(Number.isFinite(t.loss_value) && t.loss_value > 0, `loss ${t.loss_value}`);
  assert.is(t.weights_bytes, r.params * 4);
  assert.ok(t.peak_bytes >= t.weights_bytes, `train peak ${t.peak_bytes} < weights ${t.weights_bytes}`);
  assert.ok(r.first_run && r.first_run.first_ms > 0 && r.first_run.size === S && r.first_run.batch === 1);
  assert.equal(r.sweep.batch.map((p) => p.batch), [1, 2]);
  assert.equal(r.sweep.pixels.map((p) => p.size), [S, 96]);
  assert.ok(r.bflops[S] > 0);
  const md = formatNetworkBench(r);
  for (const s of ['Inference', 'Training step', 'Time vs batch', 'Time vs pixels', 'First inference']) assert.ok(md.includes(s), `report lacks '${s}'`);
});

type TF = typeof import('@tensorflow/tfjs-core');

async function loadTfCpu(): Promise<TF | null> {
  try {
    const m = (await import('@tensorflow/tfjs')) as unknown as TF & { default?: TF };
    const tf = (m.default && typeof m.default.tensor === 'function' ? m.default : m) as TF;
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    return tf;
  } catch (e) {
    console.log(`[skipped: @tensorflow/tfjs is not installed (${(e as Error).message.split('\n')[0]})]`);
    return null;
  }
}

function relDiff(ours: Float32Array, peer: Float32Array): number {
  assert.is(peer.length, ours.length);
  let d = 0;
  for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - peer[i]));
  return d / maxAbs(ours);
}

test('timeCalls: iters samples, more for a fast call until they add up to minSeconds (at most 5x iters), fewer past the budget', async () => {
  const sleep = (ms: number) => () => new Promise<void>((r) => setTimeout(r, ms));
  const plain = await timeCalls(sleep(2), { iters: 3, minIters: 2, budget: 20 });
  assert.is(plain.samples, 3);
  assert.is(plain.all.length, 3);
  // 2 ms calls, 0.05 s: about 20 samples wanted, 5 x 3 = 15 at most
  const capped = await timeCalls(sleep(2), { iters: 3, minIters: 2, budget: 20, minSeconds: 0.05 });
  assert.is(capped.samples, 15);
  // 2 ms calls, 0.02 s: stops as soon as the samples add up to 20 ms (about 7-10 samples: timers run late;
  // 3 on a machine so loaded that 3 already do)
  const some = await timeCalls(sleep(2), { iters: 3, minIters: 2, budget: 20, minSeconds: 0.02 });
  const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
  assert.ok(some.samples >= 3 && some.samples < 15, `${some.samples} samples`);
  assert.ok(sum(some.all) >= 20, 'they add up to minSeconds');
  if (some.samples > 3) assert.ok(sum(some.all.slice(0, -1)) < 20, 'and no more than that took');
  // past the budget: minIters, minSeconds or not
  const budget = await timeCalls(sleep(15), { iters: 5, minIters: 2, budget: 0.001, minSeconds: 10 });
  assert.is(budget.samples, 2);
  assert.ok(budget.ms >= 14 && budget.min <= budget.ms && budget.first >= 14);
});

test('peer models: TF.js (cpu) and ONNX Runtime match our forward on yolo-mini at 64 px; TF.js training loss = ours', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(CFG, { width: S, height: S });
  net.initWeights(3);
  const B = 2;
  const x = randomArray(new Rng(5), B * 3 * S * S, 0, 1);
  net.prepare(gpu, 'infer');
  const xt = Tensor.from(gpu, [B, 3, S, S], x);
  const outs = net.forward(xt);
  const ours = new Map<number, Float32Array>();
  for (const [k, t] of outs) ours.set(k, await t.toArray());
  for (const t of new Set(outs.values())) t.dispose();
  xt.dispose();
  net.release();
  assert.equal([...ours.keys()], [13, 20]);

  const tf = await loadTfCpu();
  if (tf) {
    const m = buildTfModel(tf, net, { train: true });
    assert.equal(m.heads, [13, 20]);
    assert.equal(m.headInputs, [12, 19]);
    const xin = tf.tensor4d(nchwToNhwc(x, B, 3, S, S), [B, S, S, 3]);
    const ys = m.predict(xin);
    for (let i = 0; i < m.heads.length; i++) {
      const o = net.layers[m.heads[i]].output;
      const rel = relDiff(ours.get(m.heads[i])!, nhwcToNchw((await ys[i].data()) as Float32Array, B, o.c, o.h, o.w));
      assert.ok(rel <= 1e-3, `TF.js head ${m.heads[i]}: relative difference ${rel}`);
    }
    tf.dispose(ys);
    const lossT = m.trainLoss(xin);
    const tfLoss = (await lossT.data())[0];
    lossT.dispose();
    xin.dispose();
    m.dispose();
    // our training step with the same simple loss, learning rate 0 (the loss is computed before the update)
    const step = new TrainStep(gpu, net, 'sumsq', { lr: 0, momentum: 0, decay: 0 });
    const xt2 = Tensor.from(gpu, [B, 3, S, S], x);
    step.run(xt2, [[], []]);
    const ourLoss = (await step.lastLoss.toArray())[0];
    step.dispose();
    xt2.dispose();
    net.release();
    assert.ok(Math.abs(tfLoss - ourLoss) <= 1e-3 * Math.abs(ourLoss), `training loss: TF.js ${tfLoss}, ours ${ourLoss}`);
  }

  let ort: typeof import('onnxruntime-node') | null = null;
  try {
    const m = (await import('onnxruntime-node')) as unknown as typeof import('onnxruntime-node') & { default?: typeof import('onnxruntime-node') };
    ort = m.default && typeof m.default.InferenceSession === 'function' ? m.default : m;
  } catch (e) {
    console.log(`[skipped: onnxruntime-node is not installed (${(e as Error).message.split('\n')[0]})]`);
  }
  if (ort) {
    const om = buildOnnxModel(net);
    const sess = await ort.InferenceSession.create(om.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    const res = await sess.run({ [om.input]: new ort.Tensor('float32', x, [B, 3, S, S]) });
    for (const o of om.outputs) {
      const rel = relDiff(ours.get(o.layer)!, res[o.name].data as Float32Array);
      assert.ok(rel <= 1e-3, `ONNX Runtime head ${o.layer}: relative difference ${rel}`);
    }
    await sess.release();
  }
  net.dispose();
});

test.run();
