/**
 * The [Gaussian_yolo] training loss (src/yolo/loss_gaussian.ts, kernels/gaussian_yolo_loss.wgsl) against:
 * - real AlexeyAB Darknet (fixtures/golden/darknet_gaussian_yolo_loss.json, see its meta): l.delta and l.cost of
 *   forward_gaussian_yolo_layer in training for five cases (several truths, two in one cell, ignore_thresh,
 *   iou_thresh extra anchors, iou_loss mse / iou / giou / diou / ciou, the normalizers, counters_per_class,
 *   label smoothing, max_delta, scale_x_y, objectness_smooth, max boxes, tiny sigmas), each head built from
 *   the case's cfg text by the engine's parser;
 * - the float64 transcription of the C loops (test/reference/yolo_loss_gaussian.ts): delta, cost, ignored
 *   and the reported loss, on those cases and on random heads;
 * - the gradient on the tape (−delta · delta_normalizer), lossFromNetwork's choices and refusals, and a tiny
 *   Gaussian YOLO network whose loss falls under the trainer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs } from '../helpers/check.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { GaussianYoloLoss, gaussianHeadConfig, type GaussianHeadConfig } from '../../src/yolo/loss_gaussian.js';
import { classMultipliers } from '../../src/yolo/loss_darknet.js';
import type { GaussianYoloLayer } from '../../src/layers/gaussian_yolo.js';
import type { Truth } from '../../src/yolo/targets.js';
import { TrainError } from '../../src/train/types.js';
import { runTrainer } from '../../src/train/trainer.js';
import { yoloTrainLoss } from '../../src/train/yolo_loss.js';
import { gaussianCoordRef, gaussianYoloRef } from '../reference/yolo_loss_gaussian.js';
import { SyntheticLoader } from '../train/helpers.js';
import { gaussianMiniNetwork } from './gaussian_mini.js';

interface GoldenCase {
  name: string;
  what: string;
  cfg: string;
  net: { w: number; h: number };
  shape: number[];
  truths: number[][][];
  z: number[];
  delta: number[];
  cost: number;
}
const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_gaussian_yolo_loss.json'), 'utf8')) as { cases: GoldenCase[] };

const truthsOf = (c: GoldenCase): Truth[][] => c.truths.map((l) => l.map(([x, y, w, h, cls]) => ({ x, y, w, h, cls })));

/** The head config of the case's [Gaussian_yolo] section, read by the engine's parser. */
function caseHead(c: GoldenCase): GaussianHeadConfig {
  const net = Network.build(parseCfg(c.cfg, `${c.name}.cfg`));
  return gaussianHeadConfig((net.layers[0] as GaussianYoloLayer).options);
}

/** What each case must exercise (checked on the engine's assignment, so a regenerated golden keeps its point). */
const COVERS: Record<string, (s: { assigned: number; truths: number; ignored: number; notInMask: number; zeroSigma: number }) => boolean> = {
  mse_defaults: (s) => s.notInMask === 1 && s.ignored >= 1 && s.zeroSigma >= 1,
  giou_bdd: (s) => s.assigned > s.truths && s.ignored >= 1 && s.zeroSigma >= 1,
  ciou_options: (s) => s.assigned > s.truths && s.ignored >= 1,
  diou_objectness_smooth: (s) => s.assigned > s.truths && s.ignored >= 3,
  iou_max_boxes: (s) => s.truths === 4 && s.assigned + s.notInMask === 3,
};

test('golden: Darknet\'s l.delta and l.cost (forward_gaussian_yolo_layer, AlexeyAB 59596d78) for five cases; the float64 reference agrees', async () => {
  const gpu = await getGpu();
  assert.equal(golden.cases.map((c) => c.name), Object.keys(COVERS));
  for (const c of golden.cases) {
    const head = caseHead(c);
    const truths = truthsOf(c);
    const zv = Float32Array.from(c.z);
    const z = Tensor.from(gpu, c.shape, zv);
    const loss = new GaussianYoloLoss([head], c.net);
    const out = loss.compute([z], truths, { keepGrads: true });
    const delta = await out.grads![0].toArray();
    const r = await out.read();
    const scale = maxAbs(c.delta);
    const err = assertClose(delta, c.delta, { atol: 2e-6 * scale, rtol: 1e-4 }, `${c.name}: delta vs Darknet`);
    assert.ok(Math.abs(r.heads[0].aux0 - c.cost) <= 1e-5 * c.cost, `${c.name}: cost ${r.heads[0].aux0} vs Darknet ${c.cost}`);
    // the float64 transcription: Darknet's numbers, and the engine's ignored count and loss value
    const ref = gaussianYoloRef(zv, c.shape, head, c.net, truths);
    const refErr = assertClose(ref.delta, c.delta, { atol: 2e-6 * scale, rtol: 1e-4 }, `${c.name}: float64 reference vs Darknet`);
    assert.ok(Math.abs(ref.cost - c.cost) <= 1e-5 * c.cost, `${c.name}: reference cost ${ref.cost} vs ${c.cost}`);
    assert.is(r.heads[0].aux1, ref.ignored, `${c.name}: ignored`);
    assertClose([r.items.box, r.items.obj, r.items.cls], ref.loss, { atol: 1e-4, rtol: 1e-5 }, `${c.name}: loss items vs the reference`);
    assert.ok(Math.abs(r.loss - (r.items.box + r.items.obj + r.items.cls)) < 1e-3, `${c.name}: loss = box + obj + cls`);
    const st = out.stats.heads[0];
    // assigned cells whose sigma delta Darknet left at 0 (N underflowed)
    const [, , H, W] = c.shape;
    const E = 9 + head.classes;
    const slots = loss.assign(0, H, W, truths).slots;
    const zeroSigma = slots.filter((s) => [1, 3, 5, 7].some((k) => c.delta[((s.b * head.mask.length + s.a) * E + k) * H * W + s.j * W + s.i] === 0)).length;
    const cover = { assigned: st.assigned, truths: truths.flat().length, ignored: ref.ignored, notInMask: st.notInMask ?? 0, zeroSigma };
    assert.ok(COVERS[c.name](cover), `${c.name}: the case no longer covers what it names: ${JSON.stringify(cover)}`);
    console.log(`  ${c.name}: max |delta| ${scale.toPrecision(4)}, max error vs Darknet ${err.toExponential(2)} (float64 reference ${refErr.toExponential(2)}), cost ${r.heads[0].aux0.toPrecision(7)} vs ${c.cost}, ${st.assigned} assignments of ${cover.truths} truths, ${ref.ignored} ignored`);
    out.dispose();
    z.dispose();
  }
});

/** A random head input: x, y, w, h logits, sigmas from tiny to wide, some predictions on the truths. */
function randomCase(seed: number, c: GaussianHeadConfig, B: number, H: number, W: number, net: { w: number; h: number }, truths: Truth[][]): Float32Array {
  const A = c.mask.length;
  const E = 9 + c.classes;
  const rng = new Rng(seed);
  const z = randomArray(rng, B * A * E * H * W, -2.5, 1.5);
  const at = (b: number, a: number, k: number, j: number, i: number) => ((b * A + a) * E + k) * H * W + j * W + i;
  truths.forEach((list, b) => list.forEach((t, n) => {
    const i = Math.floor(t.x * W), j = Math.floor(t.y * H), a = n % A;
    const an = c.mask[a];
    z[at(b, a, 4, j, i)] = Math.log((t.w * net.w) / c.anchors[2 * an]) + rng.uniform(-0.1, 0.1);
    z[at(b, a, 6, j, i)] = Math.log((t.h * net.h) / c.anchors[2 * an + 1]) + rng.uniform(-0.1, 0.1);
    z[at(b, a, 0, j, i)] = rng.uniform(-0.3, 0.3);
    z[at(b, a, 2, j, i)] = rng.uniform(-0.3, 0.3);
    z[at(b, a, 9 + t.cls, j, i)] = 1;
  }));
  return z;
}

const BASE: GaussianHeadConfig = {
  classes: 3, mask: [0, 1, 2], anchors: [20, 20, 24, 28, 30, 22, 60, 60], total: 4, scaleXY: 1, ignoreThresh: 0.5, truthThresh: 1,
  iouThresh: 1, iouThreshKind: 'iou', iouLoss: 'mse', iouNormalizer: 0.75, ucNormalizer: 1, clsNormalizer: 1, objNormalizer: 1,
  deltaNormalizer: 1, maxDelta: 3.4028234663852886e38, labelSmoothEps: 0, classMultipliers: null, maxBoxes: 200, objectnessSmooth: false,
};
const VARIANTS: { name: string; cfg: Partial<GaussianHeadConfig> }[] = [
  { name: 'mse, scale_x_y 1.2, objectness_smooth, ignore .3', cfg: { scaleXY: 1.2, objectnessSmooth: true, ignoreThresh: 0.3 } },
  { name: 'mse, iou_thresh .2, label smoothing, counters_per_class, max_delta 3', cfg: { iouThresh: 0.2, labelSmoothEps: 0.2, classMultipliers: classMultipliers([10, 50, 20], 3), clsNormalizer: 3, maxDelta: 3 } },
  { name: 'giou, objectness_smooth, iou_thresh .25 (giou kind), counters_per_class', cfg: { iouLoss: 'giou', iouThresh: 0.25, iouThreshKind: 'giou', objectnessSmooth: true, ignoreThresh: 0.2, classMultipliers: classMultipliers([5, 20, 40], 1e9) } },
  { name: 'ciou, uc_normalizer .3, obj_normalizer 3', cfg: { iouLoss: 'ciou', ucNormalizer: 0.3, objNormalizer: 3, iouNormalizer: 0.1 } },
];

for (const v of VARIANTS) {
  test(`random heads, ${v.name}: delta, cost, ignored, loss vs the float64 reference`, async () => {
    const gpu = await getGpu();
    const c: GaussianHeadConfig = { ...BASE, ...v.cfg };
    const [B, H, W] = [3, 5, 6];
    const net = { w: 96, h: 80 };
    const rng = new Rng(11);
    const truths: Truth[][] = [0, 1, 2].map((b) => Array.from({ length: 1 + b * 2 }, () => ({
      x: Math.fround(rng.uniform(0.05, 0.95)), y: Math.fround(rng.uniform(0.05, 0.95)), w: Math.fround(rng.uniform(0.1, 0.6)), h: Math.fround(rng.uniform(0.1, 0.6)), cls: rng.int(3),
    })));
    // two truths in one cell
    truths[2].push({ ...truths[2][0], x: Math.fround(truths[2][0].x + 0.01), cls: (truths[2][0].cls + 1) % 3 });
    const zv = randomCase(5, c, B, H, W, net, truths);
    const shape = [B, 3 * 12, H, W];
    const z = Tensor.from(gpu, shape, zv);
    const out = new GaussianYoloLoss([c], net).compute([z], truths, { keepGrads: true });
    const d = await out.grads![0].toArray();
    const r = await out.read();
    const ref = gaussianYoloRef(zv, shape, c, net, truths);
    assertClose(d, ref.delta, { atol: 2e-6 * maxAbs(ref.delta), rtol: 1e-4 }, 'delta');
    assert.ok(Math.abs(r.heads[0].aux0 - ref.cost) <= 1e-5 * ref.cost, `cost ${r.heads[0].aux0} vs ${ref.cost}`);
    assert.is(r.heads[0].aux1, ref.ignored, 'ignored');
    assertClose([r.items.box, r.items.obj, r.items.cls], ref.loss, { atol: 1e-4, rtol: 1e-5 }, 'loss items');
    out.dispose();
    z.dispose();
  });
}

test('the Gaussian deltas are -d/d(output) of ½·scale·(−log(N + 1e-9)) (float64, finite differences); zero for a vanishing N', () => {
  for (const [t, mu, s, scale] of [[0.3, 0.5, 0.2, 1.8], [-0.4, 0.1, 0.6, 1.2], [1.1, 0.2, 0.15, 1.95], [0.5, 0.45, 0.05, 1.5]]) {
    const g = gaussianCoordRef(t, mu, s, scale);
    const f = (m: number, sg: number) => 0.5 * scale * gaussianCoordRef(t, m, sg, scale).nll;
    const e = 1e-6;
    const dMu = (f(mu + e, s) - f(mu - e, s)) / (2 * e);
    const dS = (f(mu, s + e) - f(mu, s - e)) / (2 * e);
    assert.ok(Math.abs(g.m + dMu) < 1e-5 * Math.max(1, Math.abs(g.m)), `mean delta ${g.m} vs -dNLL/dmu ${-dMu}`);
    assert.ok(Math.abs(g.u + dS) < 1e-5 * Math.max(1, Math.abs(g.u)), `sigma delta ${g.u} vs -dNLL/dsigma ${-dS}`);
  }
  const far = gaussianCoordRef(0.9, 0.1, 0.01, 1.5);
  assert.equal([far.m, far.u], [0, 0]);
  assert.ok(Math.abs(far.nll + Math.log(Math.fround(1e-9))) < 1e-9);
});

test('the gradient on the tape is -delta · delta_normalizer; gradScale 1/batch', async () => {
  const gpu = await getGpu();
  const c = { ...BASE, deltaNormalizer: 2.5, iouLoss: 'giou' as const };
  const truths: Truth[][] = [[{ x: 0.3, y: 0.4, w: 0.3, h: 0.3, cls: 1 }], [{ x: 0.7, y: 0.6, w: 0.2, h: 0.4, cls: 2 }]];
  const shape = [2, 36, 4, 5];
  const zv = randomCase(9, c, 2, 4, 5, { w: 80, h: 64 }, truths);
  const z = Tensor.param(gpu, shape, zv);
  const loss = new GaussianYoloLoss([c], { w: 80, h: 64 });
  const tape = newTape();
  const out = tape.record(() => loss.compute([z], truths, { keepGrads: true }));
  tape.backward(out.loss);
  const g = await z.grad!.toArray();
  const d = await out.grads![0].toArray();
  assertClose(g, Array.from(d, (v) => -2.5 * v), { atol: 1e-6, rtol: 1e-6 }, 'dL/dz');
  assert.is(loss.gradScale(64), 1 / 64);
  out.dispose();
  tape.dispose();
  z.dispose();
});

test('lossFromNetwork: [Gaussian_yolo] heads train with the darknet loss (the cfg\'s keys); yolov5 and mixed heads are refused naming the head', () => {
  const net = gaussianMiniNetwork();
  const yl = lossFromNetwork(net, { kind: 'darknet' });
  assert.instance(yl, GaussianYoloLoss);
  const g = yl as GaussianYoloLoss;
  assert.equal(g.headSources, [7, 10]);
  assert.equal(g.heads.map((h) => [h.iouLoss, h.iouNormalizer, h.ucNormalizer, h.iouThresh, h.scaleXY, h.mask]), [['giou', 0.5, 1, 0.213, 1.1, [3, 4, 5]], ['giou', 0.5, 1, 0.213, 1, [0, 1, 2]]]);
  assert.equal((lossFromNetwork(net, { kind: 'darknet', gaussian: { ucNormalizer: 0.25 } }) as GaussianYoloLoss).heads.map((h) => h.ucNormalizer), [0.25, 0.25]);
  assert.throws(() => lossFromNetwork(net, { kind: 'yolov5' }), (e: Error) => e instanceof TrainError && /gaussian-mini\.cfg:\d+: layer 8 \[Gaussian_yolo\] cannot be trained: the yolov5 loss has no Gaussian YOLOv3 form/.test(e.message));
  const mixed = `[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=7\nsize=1\nactivation=linear\n[yolo]\nmask=0\nanchors=8,8\nnum=1\nclasses=2\n[route]\nlayers=-2\n[convolutional]\nfilters=11\nsize=1\nactivation=linear\n[Gaussian_yolo]\nmask=0\nanchors=8,8\nnum=1\nclasses=2\n`;
  assert.throws(() => lossFromNetwork(Network.build(parseCfg(mixed, 'mixed.cfg')), { kind: 'darknet' }), /mixed\.cfg:20: layer 4 \[Gaussian_yolo\] cannot be trained: its network mixes \[Gaussian_yolo\] and \[yolo\] heads \(layer 1, mixed\.cfg:9\)/);
  const tt = gaussianMiniNetwork();
  assert.throws(() => GaussianYoloLoss.fromNetwork(tt, { truthThresh: 0.9 }), /layer 8 \[Gaussian_yolo\] \(.*gaussian-mini\.cfg:\d+\): truth_thresh=0.9 < 1 is not supported/);
});

const TINY = `[net]
batch=4
subdivisions=1
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.001
burn_in=3
power=2
max_batches=100
policy=steps
steps=40
scales=.5

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=20
size=1
stride=1
pad=1
activation=linear

[Gaussian_yolo]
mask=0,1
anchors=8,8, 16,16
classes=1
num=2
iou_normalizer=0.5
iou_loss=giou
`;

test('a tiny Gaussian YOLO network trains: the loss and its box part (Gaussian NLL + GIoU) fall under the trainer', async () => {
  // learning_rate 0.001 (Gaussian_yolov3_BDD.cfg trains at 0.0001): the mean deltas grow as 1/sigma^2, and at
  // 0.02 (where the [yolo] tiny network trains) this one diverges, as Darknet would
  const gpu = await getGpu();
  const net = Network.build(parseCfg(TINY, 'tiny-gaussian.cfg'));
  net.initWeights(1);
  const yl = lossFromNetwork(net, { kind: 'darknet' });
  const boxes: number[] = [];
  const r = await runTrainer({
    gpu, network: net, loader: new SyntheticLoader(8, 4), loss: yoloTrainLoss(yl), subdivisions: 1, epochs: 20,
    onProgress: (p) => boxes.push(p.lossItems.box),
  });
  const first = r.history[0].loss;
  const last = r.history.at(-1)!.loss;
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const box0 = mean(boxes.slice(0, 4));
  const box1 = mean(boxes.slice(-4));
  console.log(`  tiny Gaussian YOLO: loss ${first.toFixed(2)} -> ${last.toFixed(2)} over ${r.history.length} epochs; box (mean of 4 updates) ${box0.toFixed(2)} -> ${box1.toFixed(2)}`);
  assert.ok(r.history.every((h) => Number.isFinite(h.loss)));
  assert.ok(last < first / 10, `loss ${first} -> ${last}`);
  assert.ok(box1 < 0.75 * box0, `box ${box0} -> ${box1}`);
  net.dispose();
});

test.run();
