/**
 * XNOR / binary-weight [convolutional] (xnor=1, binary=1) and the standalone [batchnorm] layer:
 * - fixtures/cfg/xnor-mini.cfg with the weights of test/layers/xnor_mini.ts against AlexeyAB Darknet's layer
 *   outputs (fixtures/golden/darknet_xnor.json, see its meta for how the C driver ran Darknet's binarization);
 * - every layer against the float64 reference (test/layers/reference.ts: binarized weights and inputs, BN);
 * - training: [batchnorm] with batch statistics (forward, rolling update, parameters('train') in .weights
 *   order), and one SGD step of the trainer updating the xnor / binary weights and the [batchnorm] parameters;
 * - the corpus cfgs that use them building with Darknet's BFLOPs and labels (when ../shared is present);
 * - cfg handling: groups forced to 1 under xnor (as make_convolutional_layer), [batchnorm] needs an image.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { parseCfg, CfgError } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { networkInfo } from '../../src/darknet/info.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { Tensor, mse, sum, newTape } from '../../src/tensor/index.js';
import { runTrainer } from '../../src/train/trainer.js';
import type { BatchSource, TrainLoss } from '../../src/train/types.js';
import { layerRef, type Val } from './reference.js';
import { bnRunningRef, bnStatsRef, bnTrainBackwardRef, bnTrainRef } from '../reference/batchnorm.js';
import { xnorMiniInput, xnorMiniNetwork } from './xnor_mini.js';

interface GoldenLayer { index: number; kind: string; c: number; h: number; w: number; bflops: number; sum: number; sumsq: number; maxabs: number; output?: number[]; step?: number; sample?: number[] }
const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_xnor.json'), 'utf8')) as { layers: GoldenLayer[] };

/** The Darknet outputs agree to 2.6e-5 (lavapipe); values are O(1). */
const ATOL = 1e-4;

async function miniOutputs(precompile = false): Promise<{ net: Network; vals: Val[]; input: Val }> {
  const gpu = await getGpu();
  const net = xnorMiniNetwork();
  net.prepare(gpu, 'infer');
  const inp = xnorMiniInput();
  if (precompile) await net.precompile(gpu, { batch: inp.shape[0], keep: net.layers.map((l) => l.index) });
  const x = Tensor.from(gpu, inp.shape, inp.data);
  const outs = net.forward(x, { keep: net.layers.map((l) => l.index) });
  const vals: Val[] = [];
  for (const l of net.layers) {
    const t = outs.get(l.index)!;
    vals.push({ data: await t.toArray(), shape: [...t.shape] });
    t.dispose();
  }
  x.dispose();
  return { net, vals, input: { data: inp.data, shape: [...inp.shape] } };
}

test('xnor-mini: Network.precompile (a dry run) first, then the same outputs bit for bit (the binarized weights are made by the first real forward)', async () => {
  const a = await miniOutputs(false);
  const b = await miniOutputs(true);
  for (const [i, v] of a.vals.entries()) assert.ok((b.vals[i].data as Float32Array).every((e, k) => Object.is(e, v.data[k])), `layer ${i} after precompile`);
  a.net.dispose();
  b.net.dispose();
});

test('xnor-mini: every layer output matches AlexeyAB Darknet (fixtures/golden/darknet_xnor.json)', async () => {
  const { net, vals } = await miniOutputs();
  assert.equal(net.layers.map((l) => l.kind), golden.layers.map((g) => g.kind));
  const report: string[] = [];
  for (const g of golden.layers) {
    const l = net.layers[g.index];
    const v = vals[g.index].data as Float32Array;
    assert.equal([l.output.c, l.output.h, l.output.w], [g.c, g.h, g.w], `layer ${g.index} shape`);
    assert.is(l.bflops(), Math.fround(g.bflops), `layer ${g.index} bflops`);
    let err: number;
    if (g.output) err = assertClose(v, g.output, { atol: ATOL, rtol: 0 }, `layer ${g.index} [${g.kind}]`);
    else err = assertClose(Array.from({ length: g.sample!.length }, (_, k) => v[k * g.step!]), g.sample!, { atol: ATOL, rtol: 0 }, `layer ${g.index} [${g.kind}] sample`);
    let s = 0;
    let q = 0;
    for (const x of v) (s += x, q += x * x);
    assertClose([s, q, maxAbs(v)], [g.sum, g.sumsq, g.maxabs], { atol: 50 * ATOL, rtol: 1e-5 }, `layer ${g.index} sum, sumsq, max`);
    report.push(`${g.index}:${err.toExponential(1)}`);
  }
  // the binarized inputs are farther from 0 than the two implementations differ (<= 2.6e-5): no sign flips
  for (const l of net.layers) {
    if (l.kind !== 'convolutional' || !l.xnor) continue;
    const x = vals[l.index - 1].data;
    let m = Infinity;
    for (let i = 0; i < x.length; i++) m = Math.min(m, Math.abs(x[i]));
    assert.ok(m > 2 * ATOL, `layer ${l.index}: an input value ${m} is too close to 0`);
  }
  assert.equal(networkInfo(net).rows.map((r) => r.type), ['conv', 'batchnorm', 'convX', 'max', 'batchnorm', 'conv', 'convXB', 'convX']);
  console.log(`  xnor-mini vs Darknet, max |err| per layer: ${report.join(' ')}`);
  net.dispose();
});

test('xnor-mini: every layer against the float64 reference (binarized weights and inputs, [batchnorm])', async () => {
  const { net, vals, input } = await miniOutputs();
  for (const l of net.layers) {
    const ins = l.sources.map((j) => (j < 0 ? input : vals[j]));
    const ref = layerRef(l, ins);
    assertClose(vals[l.index].data, ref, { atol: 2e-5 * Math.max(maxAbs(ref), 1e-30), rtol: 0 }, `layer ${l.index} [${l.kind}]`);
  }
  net.dispose();
});

test("[batchnorm] training: batch statistics, rolling update 0.99/0.01, gradients; parameters('train') in .weights order", async () => {
  const gpu = await getGpu();
  const net = Network.build(parseCfg('[net]\nwidth=5\nheight=3\nchannels=4\n[batchnorm]\n', 'bn.cfg'));
  net.initWeights(1);
  const rng = new Rng(3);
  const d = net.layers[0].data!;
  d.biases = randomArray(rng, 4, -0.5, 0.5);
  d.scales = randomArray(rng, 4, 0.5, 1.5);
  d.rolling_mean = randomArray(rng, 4, -0.3, 0.3);
  d.rolling_variance = randomArray(rng, 4, 0.5, 1.5);
  const d0 = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Float32Array.from(v)]));
  net.prepare(gpu, 'train');
  const ps = net.parameters('train');
  assert.equal(ps.map((p) => `${p.key}:${p.role}:${p.tensor.requiresGrad}`), ['0.biases:bias:true', '0.scales:bn:true', '0.rolling_mean:buffer:false', '0.rolling_variance:buffer:false']);
  const shape = [2, 4, 3, 5];
  const xv = randomArray(rng, 120, -2, 3);
  const x = Tensor.from(gpu, shape, xv);
  const tape = newTape();
  const y = tape.record(() => net.forward(x, { mode: 'train' }).get(0)!);
  assertClose(await y.toArray(), bnTrainRef(xv, shape, d0.scales, d0.biases, 'darknet'), { atol: 2e-5, rtol: 0 }, 'train forward');
  const dyv = randomArray(rng, 120, -1, 1);
  tape.backward(y, Tensor.from(gpu, shape, dyv));
  const g = bnTrainBackwardRef(xv, shape, d0.scales, dyv, 'darknet');
  const byName = Object.fromEntries(ps.map((p) => [p.name, p.tensor]));
  assertClose(await byName.scales.grad!.toArray(), g.dgamma, { atol: 1e-4, rtol: 0 }, 'dscales');
  assertClose(await byName.biases.grad!.toArray(), g.dbeta, { atol: 1e-4, rtol: 0 }, 'dbiases');
  await net.pullParams();
  const st = bnStatsRef(xv, shape);
  assertClose(net.layers[0].data!.rolling_mean, bnRunningRef(d0.rolling_mean, st.mean, 0.99, 0.01), { atol: 1e-6, rtol: 0 }, 'rolling_mean');
  assertClose(net.layers[0].data!.rolling_variance, bnRunningRef(d0.rolling_variance, st.varUnbiased, 0.99, 0.01), { atol: 1e-6, rtol: 0 }, 'rolling_variance');
  tape.dispose();
  x.dispose();
  net.release();
});

test('xnor-mini trains: one SGD step updates the xnor / binary weights and the [batchnorm] parameters', async () => {
  const gpu = await getGpu();
  const net = xnorMiniNetwork();
  assert.ok(net.layers.every((l) => l.trainingUnsupported() === null));
  const before = net.layers.map((l) => (l.data ? Object.fromEntries(Object.entries(l.data).map(([k, v]) => [k, Float32Array.from(v)])) : null));
  net.prepare(gpu, 'train');
  const inp = xnorMiniInput();
  const images = new Float32Array(2 * inp.data.length);
  images.set(inp.data);
  images.set(inp.data.map((v) => 1 - v), inp.data.length);
  const loader: BatchSource = { state: () => null, restore: () => {}, async *[Symbol.asyncIterator]() { yield { images, shape: [2, 3, 12, 16], truths: [[], []] }; } };
  const target = Tensor.from(gpu, [2, 5, 3, 4], new Float32Array(120).fill(0.5));
  const loss: TrainLoss = { compute: ([h]) => ({ loss: sum(mse(h, target)) }) };
  try {
    await runTrainer({ gpu, network: net, loader, loss, maxBatches: 1, optimizer: { kind: 'sgd', lr: 0.1 } });
    await net.pullParams();
    const changed = (i: number, k: string) => net.layers[i].data![k].some((v, j) => v !== before[i]![k][j]);
    for (const [i, k] of [[7, 'weights'], [6, 'weights'], [6, 'scales'], [5, 'weights'], [4, 'scales'], [4, 'biases'], [4, 'rolling_mean'], [2, 'weights'], [1, 'scales'], [0, 'weights']] as const) {
      assert.ok(changed(i, k), `layer ${i} ${k} were updated`);
      assert.ok(net.layers[i].data![k].every(Number.isFinite), `layer ${i} ${k} are finite`);
    }
  } finally {
    target.dispose();
    net.release();
  }
});

test('cfg: xnor forces groups=1 (make_convolutional_layer); [batchnorm] needs an image input, refuses dontloadscales', () => {
  const n = Network.build(parseCfg('[net]\nwidth=8\nheight=8\nchannels=4\n[convolutional]\nxnor=1\ngroups=2\nfilters=4\nsize=3\npad=1\nactivation=leaky\n', 'g.cfg'));
  const c = n.layers[0];
  assert.ok(c.kind === 'convolutional' && c.groups === 1 && c.xnor);
  assert.equal(n.layers[0].params.find((p) => p.name === 'weights')!.shape, [4, 4, 3, 3]);
  assert.throws(() => Network.build(parseCfg('[net]\nwidth=4\nheight=4\nchannels=2\n[softmax]\n[batchnorm]\n', 'b.cfg')), (e: unknown) => e instanceof CfgError && /b\.cfg:6: \[batchnorm\] needs an image input/.test((e as Error).message));
  assert.throws(() => Network.build(parseCfg('[net]\nwidth=4\nheight=4\nchannels=2\n[batchnorm]\ndontloadscales=1\n', 'd.cfg')), (e: unknown) => e instanceof CfgError && (e as CfgError).line === 6 && /dontloadscales/.test((e as Error).message));
});

test('corpus: the xnor and [batchnorm] cfgs build with Darknet BFLOPs and labels', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the cfg corpus');
  // Total BFLOPS printed by AlexeyAB Darknet (parse_network_cfg_custom) for each
  const darknet: Record<string, [number, string]> = {
    'yolov1_xyolo.test.cfg': [0.274, 'convX'],
    'yolov3-tiny_xnor.cfg': [0.839, 'convXB'],
    'tiny-yolo_xnor.cfg': [0.514, 'convXB'],
    'darknet53_448_xnor.cfg': [2.336, 'convX'],
  };
  for (const [f, [bf, label]] of Object.entries(darknet)) {
    const net = Network.fromFile(path.join(shared, 'darknet-cfg', f));
    assert.is(net.totalBflops.toFixed(3), bf.toFixed(3), `${f} Total BFLOPs`);
    assert.ok(networkInfo(net).rows.some((r) => r.type === label), `${f} has a ${label} row`);
  }
  assert.ok(Network.fromFile(path.join(shared, 'darknet-cfg', 'yolov1_xyolo.test.cfg')).layers.filter((l) => l.kind === 'batchnorm').length === 7);
});

test('frozen prefix (stopbackward: ForwardOptions.frozenBn) with xnor / binary convs and [batchnorm]: the train-mode forward equals inference', async () => {
  // ForwardContext.rollingStats: the frozen layers run on their rolling statistics, and must binarize as
  // their own forward does (a frozen xnor conv on full-precision weights was the bug this guards against)
  const gpu = await getGpu();
  const { shape, data } = xnorMiniInput();
  const a = xnorMiniNetwork();
  const b = xnorMiniNetwork();
  a.prepare(gpu, 'train');
  b.prepare(gpu, 'infer');
  const x = Tensor.from(gpu, shape, data, 'x');
  const all = a.layers.map((l) => l.index);
  const ya = a.forward(x, { mode: 'train', keep: all, frozenBn: a.layers.length });
  const yb = b.forward(x, { keep: all });
  for (const l of a.layers) {
    const [ta, tb] = [await ya.get(l.index)!.toArray(), await yb.get(l.index)!.toArray()];
    assertClose(ta, tb, { atol: 1e-4, rtol: 1e-4 }, `layer ${l.index} [${l.kind}] frozen train-mode vs inference`);
  }
  for (const m of [ya, yb]) for (const t of new Set(m.values())) if (t !== x) t.dispose();
  x.dispose();
  a.dispose();
  b.dispose();
});

test.run();
