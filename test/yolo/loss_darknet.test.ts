/**
 * Darknet [yolo] loss (src/yolo/loss_darknet.ts) against:
 * - fixtures/golden/darknet_yolo_loss.json (real pjreddie darknet): output, delta, cost, stats, net_cost from
 *   the golden head inputs, and through the whole network built from the case's cfg in 'train' mode on the
 *   tape: head inputs, and weight/bias updates = -dL/dW after tape.backward;
 * - the float64 transcription of forward_yolo_layer (test/reference/yolo_loss_darknet.ts) for the AlexeyAB
 *   options (normalizers, scale_x_y, new_coords, iou_loss kinds, max_delta, iou_thresh + averaging, label
 *   smoothing, counters_per_class, focal) on small synthetic heads;
 * - central finite differences of the implied loss (the MSE / logistic parts, where -delta is a gradient);
 * - edge cases: no truths, a truth whose best anchor is in another head, two truths in one cell, the truth
 *   list rules (x == 0 ends it, max boxes, class out of range);
 * - AlexeyAB objectness_smooth=1: hand-derived objectness deltas on a 2x2 head, and random heads vs the
 *   float64 transcription extended with it (test/yolo/reference.ts darknetYoloRefSmooth).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, f64, finiteDiff, maxAbs, noteMissingShared, sampleIndices, sharedDir } from '../helpers/check.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { headActivation } from '../../src/tensor/ops/yolo_act.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import type { ConvolutionalLayer } from '../../src/layers/convolutional.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { DarknetLoss, classMultipliers, detectFlavor, type DarknetHeadConfig } from '../../src/yolo/loss_darknet.js';
import type { Truth } from '../../src/yolo/targets.js';
import { darknetYoloRef, impliedLoss, type DarknetRefResult } from '../reference/yolo_loss_darknet.js';
import { darknetYoloRefSmooth } from './reference.js';

interface GT { shape: number[]; data: number[] }
interface GoldenYolo {
  index: number; w: number; h: number; n: number; total: number; classes: number; mask: number[]; anchors: number[];
  ignore_thresh: number; truth_thresh: number; max_boxes: number; input: GT; output: GT; delta: GT; cost: number;
  stats: { ignored: number; assigned: number; not_in_mask: number; assigned_cells: number };
}
interface GoldenConv { index: number; biases: GT; weights: GT; bias_updates: GT; weight_updates: GT }
interface GoldenCase {
  name: string; cfg: string; batch: number; net_w: number; net_h: number; input: GT; truth: GT; net_cost: number;
  yolo_layers: GoldenYolo[]; conv_layers: GoldenConv[];
}

const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_yolo_loss.json'), 'utf8')) as { cases: GoldenCase[] };
const F = (t: GT) => Float32Array.from(t.data);

/** (batch, 90, 5) -> per image lists of all 90 rows (the loss applies Darknet's x == 0 terminator). */
function truthsOf(c: GoldenCase): Truth[][] {
  const T = F(c.truth);
  const out: Truth[][] = [];
  for (let b = 0; b < c.batch; b++) {
    const l: Truth[] = [];
    for (let t = 0; t < 90; t++) {
      const o = (b * 90 + t) * 5;
      l.push({ x: T[o], y: T[o + 1], w: T[o + 2], h: T[o + 3], cls: T[o + 4] });
    }
    out.push(l);
  }
  return out;
}

const relErr = (a: number, e: number) => Math.abs(a - e) / Math.abs(e);

for (const c of golden.cases) {
  test(`golden ${c.name}: delta, cost, stats, net_cost, output from the golden head inputs`, async () => {
    const gpu = await getGpu();
    const net = Network.build(parseCfg(c.cfg, c.name));
    const yl = lossFromNetwork(net, { kind: 'darknet' }) as DarknetLoss;
    assert.equal(yl.heads.map((h) => h.flavor), c.yolo_layers.map(() => 'pjreddie'));
    assert.equal(yl.headSources, c.yolo_layers.map((y) => y.index - 1));
    const truths = truthsOf(c);
    const zs = c.yolo_layers.map((y) => Tensor.from(gpu, y.input.shape, F(y.input)));
    const out = yl.compute(zs, truths, { keepGrads: true });
    const r = await out.read();
    let costSum = 0;
    for (const [k, y] of c.yolo_layers.entries()) {
      const delta = await out.grads![k].toArray();
      const err = assertClose(delta, y.delta.data, { atol: 1e-5, rtol: 0 }, `${c.name} head ${k} delta`);
      assert.ok(relErr(r.heads[k].aux0, y.cost) <= 1e-5, `cost ${r.heads[k].aux0} vs ${y.cost}`);
      assert.equal(
        { ignored: r.heads[k].aux1, assigned: out.stats.heads[k].assigned, not_in_mask: out.stats.heads[k].notInMask, assigned_cells: out.stats.heads[k].assignedCells },
        y.stats,
      );
      costSum += r.heads[k].aux0;
      // the [yolo] forward (l.output) of the same input
      const act = net.layers[y.index].forward([zs[k]], { gpu, mode: 'infer' });
      const outErr = assertClose(await act.toArray(), y.output.data, { atol: 1e-6, rtol: 0 }, `${c.name} head ${k} output`);
      act.dispose();
      // the float64 transcription agrees with darknet too
      const ref = darknetYoloRef(F(y.input), y.input.shape, yl.heads[k], yl.net, truths);
      assertClose(ref.delta, y.delta.data, { atol: 1e-5, rtol: 0 }, `${c.name} head ${k} reference delta`);
      assert.ok(relErr(ref.cost, y.cost) <= 1e-5);
      assert.is(ref.ignored, y.stats.ignored);
      // the loss value is the implied loss
      const il = impliedLoss(F(y.input), ref);
      assertClose([r.heads[k].box, r.heads[k].obj, r.heads[k].cls], il, { atol: 1e-4, rtol: 1e-5 }, `${c.name} head ${k} implied loss`);
      console.log(`  ${c.name} head ${k}: max |delta err| ${err.toExponential(2)}, cost rel err ${relErr(r.heads[k].aux0, y.cost).toExponential(2)}, max |output err| ${outErr.toExponential(2)}`);
    }
    assert.ok(relErr(costSum / c.yolo_layers.length, c.net_cost) <= 1e-5, `net_cost ${costSum / c.yolo_layers.length} vs ${c.net_cost}`);
    assert.ok(relErr(r.loss, r.items.box + r.items.obj + r.items.cls) <= 1e-6);
    out.dispose();
    zs.forEach((z) => z.dispose());
  });

  test(`golden ${c.name}: network in train mode on the tape -> head inputs, weight/bias updates (-dL/dW)`, async () => {
    const gpu = await getGpu();
    const net = Network.build(parseCfg(c.cfg, c.name));
    for (const cl of c.conv_layers) net.layers[cl.index].data = { biases: F(cl.biases), weights: F(cl.weights) };
    net.prepare(gpu, 'train');
    const yl = lossFromNetwork(net, { kind: 'darknet' });
    const x = Tensor.from(gpu, c.input.shape, F(c.input));
    const tape = newTape();
    let heads: Tensor[] = [];
    const out = tape.record(() => {
      const outs = net.forward(x, { mode: 'train', keep: yl.headSources });
      heads = yl.headInputs(outs).map((h) => tape.keep(h));
      return yl.compute(heads, truthsOf(c));
    });
    for (const [k, y] of c.yolo_layers.entries()) {
      assertClose(await heads[k].toArray(), y.input.data, { atol: 1e-4 * maxAbs(y.input.data), rtol: 0 }, `${c.name} head ${k} input`);
    }
    tape.backward(out.loss);
    const r = await out.read();
    assert.ok(relErr(r.heads.reduce((s, h) => s + h.aux0, 0) / c.yolo_layers.length, c.net_cost) <= 1e-5, 'net_cost through the network');
    let worst = 0;
    for (const cl of c.conv_layers) {
      const t = (net.layers[cl.index] as ConvolutionalLayer).tensors('train');
      for (const [name, gold] of [['weights', cl.weight_updates], ['biases', cl.bias_updates]] as const) {
        const g = await t[name].grad!.toArray();
        const upd = g.map((v) => -v);
        const m = maxAbs(gold.data);
        const e = assertClose(upd, gold.data, { atol: 1e-4 * m, rtol: 0 }, `${c.name} conv ${cl.index} ${name}_updates`);
        worst = Math.max(worst, e / m);
      }
    }
    console.log(`  ${c.name}: worst |update err| / max|update| = ${worst.toExponential(2)}`);
    out.dispose();
    tape.dispose();
    heads.forEach((h) => h.dispose());
    x.dispose();
    net.release();
  });
}

// ---------------------------------------------------------------- synthetic heads vs the float64 transcription

const NET = { w: 96, h: 64 };
const ANCHORS = [6, 8, 12, 14, 14, 12, 26, 28, 30, 26, 50, 56];

function head(o: Partial<DarknetHeadConfig> = {}): DarknetHeadConfig {
  return {
    classes: 3, mask: [0, 1, 2], anchors: ANCHORS, total: 6, scaleXY: 1, newCoords: false, ignoreThresh: 0.3, truthThresh: 1,
    iouThresh: 1, iouThreshKind: 'iou', iouLoss: 'mse', iouNormalizer: 1, clsNormalizer: 1, objNormalizer: 1, deltaNormalizer: 1,
    maxDelta: 3.4028234663852886e38, labelSmoothEps: 0, focal: false, classMultipliers: null, maxBoxes: 90, flavor: 'pjreddie', ...o,
  };
}

/** Truths for a 2-image batch: image 0 has 5 boxes (two in one cell with different classes), image 1 three. */
function synthTruths(rng: Rng): Truth[][] {
  const r = (lo: number, hi: number) => Math.fround(rng.uniform(lo, hi));
  return [
    [
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.05, 0.2), h: r(0.05, 0.2), cls: 0 },
      { x: 0.3, y: 0.4, w: 0.1, h: 0.15, cls: 1 },
      { x: Math.fround(0.31), y: Math.fround(0.41), w: Math.fround(0.12), h: Math.fround(0.14), cls: 2 },
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.3, 0.7), h: r(0.3, 0.7), cls: 1 },
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.08, 0.3), h: r(0.08, 0.3), cls: 2 },
    ],
    [
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.05, 0.3), h: r(0.05, 0.3), cls: 2 },
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.1, 0.3), h: r(0.1, 0.3), cls: 0 },
      { x: r(0.1, 0.9), y: r(0.1, 0.9), w: r(0.05, 0.2), h: r(0.05, 0.2), cls: 1 },
    ],
  ];
}

const SHAPE = [2, 3 * 8, 8, 12]; // 3 anchors x (5 + 3 classes), 8x12 grid of a 64x96 input

/** Head input values; new_coords heads follow a logistic conv, so their inputs lie in (0, 1). */
function synthZ(seed: number, newCoords: boolean): Float32Array {
  return newCoords ? randomArray(new Rng(seed), 2 * 24 * 96, 0.02, 0.98) : randomArray(new Rng(seed), 2 * 24 * 96, -2, 2);
}

const ab = (o: Partial<DarknetHeadConfig>) => head({ flavor: 'alexeyab', maxBoxes: 200, iouNormalizer: 0.75, ...o });
const VARIANTS: { name: string; cfg: DarknetHeadConfig; fd: boolean }[] = [
  { name: 'pjreddie', cfg: head(), fd: true },
  { name: 'alexeyab mse, normalizers 0.75/0.4/2, ignore .3', cfg: ab({ objNormalizer: 0.4, clsNormalizer: 2, ignoreThresh: 0.3 }), fd: true },
  { name: 'alexeyab scale_x_y 1.2, label_smooth_eps 0.1', cfg: ab({ scaleXY: 1.2, labelSmoothEps: 0.1 }), fd: true },
  { name: 'alexeyab new_coords, scale_x_y 2', cfg: ab({ newCoords: true, scaleXY: 2 }), fd: true },
  { name: 'alexeyab iou_thresh 0.2 (extra anchors, averaged box deltas)', cfg: ab({ iouThresh: 0.2 }), fd: true },
  { name: 'alexeyab counters_per_class + cls_normalizer 2', cfg: ab({ classMultipliers: classMultipliers([100, 10, 0], 5), clsNormalizer: 2 }), fd: true },
  { name: 'alexeyab focal_loss', cfg: ab({ focal: true }), fd: false },
  { name: 'alexeyab iou_loss giou', cfg: ab({ iouLoss: 'giou', iouNormalizer: 0.07 }), fd: false },
  { name: 'alexeyab iou_loss diou', cfg: ab({ iouLoss: 'diou', iouNormalizer: 0.07 }), fd: false },
  { name: 'alexeyab iou_loss ciou, max_delta 0.05', cfg: ab({ iouLoss: 'ciou', iouNormalizer: 0.07, maxDelta: 0.05 }), fd: false },
  { name: 'alexeyab iou_loss iou, iou_thresh 0.213 ciou kind', cfg: ab({ iouLoss: 'iou', iouThresh: 0.213, iouThreshKind: 'ciou' }), fd: false },
  { name: 'alexeyab new_coords + ciou', cfg: ab({ newCoords: true, scaleXY: 2, iouLoss: 'ciou', iouNormalizer: 0.05 }), fd: false },
];

type RefFn = (z: ArrayLike<number>, shape: readonly number[], c: DarknetHeadConfig, net: { w: number; h: number }, truths: readonly (readonly Truth[])[]) => DarknetRefResult;

/** GPU loss vs a float64 reference on one synthetic head: delta, cost, ignored, dL/dz, implied loss and its gradient. */
async function checkSynthetic(v: { name: string; cfg: DarknetHeadConfig; fd: boolean }, refFn: RefFn, edit?: (zv: Float32Array, loss: DarknetLoss, truths: Truth[][]) => void): Promise<void> {
  const gpu = await getGpu();
  const zv = synthZ(11, v.cfg.newCoords);
  const truths = synthTruths(new Rng(5));
  const loss = new DarknetLoss([v.cfg], NET);
  edit?.(zv, loss, truths);
  const z = Tensor.param(gpu, SHAPE, zv);
  const tape = newTape();
  const out = tape.record(() => loss.compute([z], truths, { keepGrads: true }));
  const ref = refFn(zv, SHAPE, v.cfg, NET, truths);
  const delta = await out.grads![0].toArray();
  const scale = Math.max(1, maxAbs(ref.delta));
  assertClose(delta, ref.delta, { atol: 2e-6 * scale, rtol: 1e-5 }, `${v.name} delta`);
  const r = await out.read();
  assert.ok(relErr(r.heads[0].aux0, ref.cost) <= 1e-5, `cost ${r.heads[0].aux0} vs ${ref.cost}`);
  assert.is(r.heads[0].aux1, ref.ignored, 'ignored');
  assert.ok(ref.ignored > 0, 'some predictions are ignored');
  tape.backward(out.loss);
  const g = await z.grad!.toArray();
  assertClose(g, Float64Array.from(ref.delta, (d) => -d * v.cfg.deltaNormalizer), { atol: 2e-6 * scale, rtol: 1e-5 }, `${v.name} dL/dz = -delta`);
  if (v.fd) {
    const il = impliedLoss(zv, ref);
    assertClose([r.items.box, r.items.obj, r.items.cls], il, { atol: 1e-4, rtol: 2e-5 }, `${v.name} loss items = implied loss`);
    // d(implied loss)/dz by central differences (assignment and ignore decisions frozen in the terms)
    const zs = f64(zv);
    const f = () => impliedLoss(zs, ref).reduce((a, b) => a + b, 0);
    const nonzero = [...ref.delta.keys()].filter((i) => ref.delta[i] !== 0);
    const idx = [...new Set([...sampleIndices(zs.length, 40), ...nonzero.filter((_, k) => k % 3 === 0).slice(0, 80)])];
    const fd = finiteDiff(f, zs, idx, 1e-4);
    assertClose(idx.map((i) => g[i]), fd, { atol: 2e-5, rtol: 2e-4 }, `${v.name} gradient vs finite differences`);
  }
  out.dispose();
  tape.dispose();
  z.grad?.dispose();
  z.dispose();
}

for (const v of VARIANTS) {
  test(`synthetic ${v.name}: delta, cost, ignored, loss vs the float64 transcription${v.fd ? '; gradient vs finite differences' : ''}`, () => checkSynthetic(v, darknetYoloRef));
}

// ---------------------------------------------------------------- edge cases

test('edge: an image without truths gets only objectness deltas -σ(obj); no ignores, no box / class deltas', async () => {
  const gpu = await getGpu();
  const zv = synthZ(3, false);
  const truths: Truth[][] = [[], [{ x: 0.5, y: 0.5, w: 0.2, h: 0.25, cls: 1 }]];
  const loss = new DarknetLoss([head()], NET);
  const z = Tensor.from(gpu, SHAPE, zv);
  const out = loss.compute([z], truths, { keepGrads: true });
  const d = await out.grads![0].toArray();
  const half = d.length / 2;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  for (let i = 0; i < half; i++) {
    const k = Math.floor(i / 96) % 8;
    const want = k === 4 ? -sig(zv[i]) : 0;
    if (Math.abs(d[i] - want) > 1e-6) assert.unreachable(`element ${i} (entry ${k}): ${d[i]} vs ${want}`);
  }
  const ref = darknetYoloRef(zv, SHAPE, head(), NET, truths);
  assertClose(d, ref.delta, { atol: 1e-6, rtol: 1e-5 }, 'delta');
  assert.is(out.stats.heads[0].assigned, 1);
  // a batch with no truths at all
  const out2 = loss.compute([z], [[], []]);
  const r2 = await out2.read();
  assert.is(out2.stats.assigned, 0);
  assert.is(r2.items.box, 0);
  assert.is(r2.items.cls, 0);
  assert.ok(r2.items.obj > 0);
  out.dispose();
  out2.dispose();
  z.dispose();
});

test("edge: a truth whose best anchor is in the other head is only that head's (not_in_mask)", async () => {
  const gpu = await getGpu();
  // head 0: mask 3,4,5 on a 4x6 grid; head 1: mask 0,1,2 on 8x12 (the golden two_heads layout)
  const h0 = head({ mask: [3, 4, 5] });
  const h1 = head({ mask: [0, 1, 2] });
  const loss = new DarknetLoss([h0, h1], NET);
  const z0v = randomArray(new Rng(1), 2 * 24 * 24, -2, 2);
  const z1v = synthZ(2, false);
  const z0 = Tensor.from(gpu, [2, 24, 4, 6], z0v);
  const z1 = Tensor.from(gpu, SHAPE, z1v);
  // 40x50 px truth: best anchor 5 (50x56) -> head 0; 10x10 px: best anchor 1 (12x14) -> head 1
  const truths: Truth[][] = [[{ x: 0.4, y: 0.5, w: Math.fround(40 / 96), h: Math.fround(50 / 64), cls: 2 }], [{ x: 0.6, y: 0.3, w: Math.fround(10 / 96), h: Math.fround(10 / 64), cls: 0 }]];
  const out = loss.compute([z0, z1], truths, { keepGrads: true });
  assert.equal(out.stats.heads.map((s) => [s.assigned, s.notInMask]), [[1, 1], [1, 1]]);
  const d0 = await out.grads![0].toArray();
  const d1 = await out.grads![1].toArray();
  assertClose(d0, darknetYoloRef(z0v, [2, 24, 4, 6], h0, NET, truths).delta, { atol: 1e-6, rtol: 1e-5 }, 'head 0');
  assertClose(d1, darknetYoloRef(z1v, SHAPE, h1, NET, truths).delta, { atol: 1e-6, rtol: 1e-5 }, 'head 1');
  // the big truth (image 0) left no box delta in head 1's image 0
  let boxDeltas = 0;
  for (let a = 0; a < 3; a++) for (let k = 0; k < 4; k++) for (let p = 0; p < 96; p++) if (d1[(a * 8 + k) * 96 + p] !== 0) boxDeltas++;
  assert.is(boxDeltas, 0);
  out.dispose();
  z0.dispose();
  z1.dispose();
});

test('edge: two truths in one cell+anchor: pjreddie keeps the last box, multi-hot classes; AlexeyAB accumulates', async () => {
  const gpu = await getGpu();
  const zv = synthZ(4, false);
  const z = Tensor.from(gpu, SHAPE, zv);
  const a = { x: Math.fround(0.30), y: Math.fround(0.40), w: Math.fround(0.125), h: Math.fround(0.2), cls: 0 };
  const b = { x: Math.fround(0.32), y: Math.fround(0.42), w: Math.fround(0.13), h: Math.fround(0.21), cls: 2 };
  const truths: Truth[][] = [[a, b], []];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  for (const cfg of [head(), ab({})]) {
    const loss = new DarknetLoss([cfg], NET);
    const out = loss.compute([z], truths, { keepGrads: true });
    assert.is(out.stats.heads[0].assigned, 2);
    assert.is(out.stats.heads[0].assignedCells, 1);
    const d = await out.grads![0].toArray();
    assertClose(d, darknetYoloRef(zv, SHAPE, cfg, NET, truths).delta, { atol: 1e-6, rtol: 1e-5 }, `${cfg.flavor} delta`);
    // the cell: i = 3, j = 3; anchor: the best of a and b is anchor 2 (14x12 px)? find it from the slot
    const slot = loss.assign(0, 8, 12, truths).slots[0];
    const at = (k: number) => ((slot.a * 8 + k) * 8 + slot.j) * 12 + slot.i;
    // classes 0 and 2 both targeted 1, class 1 targeted 0
    assertClose([d[at(5)], d[at(6)], d[at(7)]], [1 - sig(zv[at(5)]), 0 - sig(zv[at(6)]), 1 - sig(zv[at(7)])], { atol: 1e-6, rtol: 0 }, `${cfg.flavor} classes`);
    const sx = (t: Truth) => (2 - t.w * t.h) * (t.x * 12 - slot.i - sig(zv[at(0)]));
    const want = cfg.flavor === 'pjreddie' ? sx(b) : 0.75 * (sx(a) + sx(b));
    assert.ok(Math.abs(d[at(0)] - want) < 1e-5, `${cfg.flavor} x delta ${d[at(0)]} vs ${want}`);
    out.dispose();
  }
  z.dispose();
});

test('edge: the truth list ends at x == 0 and at max boxes; out-of-range classes are skipped', async () => {
  const gpu = await getGpu();
  const zv = synthZ(6, false);
  const z = Tensor.from(gpu, SHAPE, zv);
  const t = (x: number, cls = 0): Truth => ({ x: Math.fround(x), y: 0.5, w: 0.1, h: 0.15, cls });
  const cfg = head({ maxBoxes: 3 });
  const loss = new DarknetLoss([cfg], NET);
  const truths = [[t(0.1), t(0.3, 7), t(0.5), t(0.7)], [t(0.2), { x: 0, y: 0.5, w: 0.1, h: 0.1, cls: 0 }, t(0.6)]];
  const out = loss.compute([z], truths, { keepGrads: true });
  // image 0: boxes 0..2 read (max 3), box 1 skipped (class 7); image 1: ends at the x == 0 box
  assert.is(out.stats.heads[0].assigned, 3);
  assert.is(out.stats.heads[0].badClass, 1);
  assertClose(await out.grads![0].toArray(), darknetYoloRef(zv, SHAPE, cfg, NET, truths).delta, { atol: 1e-6, rtol: 1e-5 }, 'delta');
  out.dispose();
  z.dispose();
});

test('cfg: flavor detection, refusals, counters_per_class multipliers, gradScale', () => {
  const cfg = (extra: string) => `[net]\nwidth=64\nheight=64\nchannels=3\n[convolutional]\nfilters=21\nsize=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=6,8, 12,14, 14,12\nnum=3\nclasses=2\n${extra}`;
  const pj = Network.build(parseCfg(cfg(''), 'pj.cfg'));
  assert.is(detectFlavor(pj.layers[1] as never), 'pjreddie');
  const abNet = Network.build(parseCfg(cfg('iou_loss=ciou\niou_normalizer=0.07\nscale_x_y=1.05'), 'ab.cfg'));
  const l = DarknetLoss.fromNetwork(abNet);
  assert.is(l.heads[0].flavor, 'alexeyab');
  assert.is(l.heads[0].iouLoss, 'ciou');
  assert.is(l.heads[0].maxBoxes, 200);
  assert.throws(() => DarknetLoss.fromNetwork(abNet, { flavor: 'pjreddie', override: { iouLoss: 'ciou' } }), /alexeyab/);
  assert.throws(() => DarknetLoss.fromNetwork(pj, { override: { truthThresh: 0.9 } }), /truth_thresh/);
  assert.equal(classMultipliers([100, 10, 0], 5), [1, 5, 5]);
  assert.equal(classMultipliers([100, 50, 25], 1e30), [1, 2, 4]);
  assert.is(l.gradScale(64), 1 / 64);
});

// ---------------------------------------------------------------- AlexeyAB objectness_smooth=1

/*
 * What AlexeyAB's src/yolo_layer.c (process_batch, 59596d78) does with objectness_smooth=1, in order:
 *   (1) every prediction: delta[obj] = obj_normalizer * (0 - out[obj]);
 *       if best_match_iou > ignore_thresh (best IoU over the image's truths, only if some class output > 0.25):
 *         delta_obj = obj_normalizer * (best_match_iou - out[obj]); if (delta_obj > delta[obj]) delta[obj] = delta_obj
 *       (without it: delta[obj] = 0);
 *   (2) every truth, its best anchor and each iou_thresh extra anchor:
 *         delta_obj = class_multiplier * obj_normalizer * (1 - out[obj]); if (delta[obj] == 0) delta[obj] = delta_obj
 *       (without it: always written, the last truth of a cell wins);
 *   box and class deltas are untouched; the cost is still sum(delta^2).
 *
 * The hand case: net 64x64, 2x2 grid (32 px cells), one anchor 32x32 (mask 0, num 1), 2 classes, new_coords=1
 * (out = z for x, y, obj, classes; box w = z_w^2 * 4 * 32 / 64), scale_x_y 1, ignore_thresh .5, obj_normalizer 2,
 * counters_per_class 400,100 -> class multipliers [1, 4]. Every prediction: z_x = z_y = z_w = z_h = 0.5 (a 0.5 x 0.5
 * box centred in its cell), obj 0.25, classes 0.1, 0.1, except as listed. Cell (i, j).
 *
 * image 0, truth T1 = (0.375, 0.25, 0.5, 0.5) class 0 -> cell (0, 0), anchor 0.
 *   (1, 0): z_x = 0, class 0 = 0.75 -> box (0.5, 0.25, .5, .5); IoU with T1: x overlap [0.25, 0.75] & [0.125, 0.625]
 *           = 0.375, y 0.5 -> 0.1875 / (0.25 + 0.25 - 0.1875) = 0.6 > 0.5 and a class > 0.25: over ignore_thresh,
 *           not assigned. (1): -2 * 0.25 = -0.5, then 2 * (0.6 - 0.25) = 0.7 > -0.5 -> 0.7.   [off: 0]
 *   (0, 0): class 0 = 0.75 -> box (0.25, 0.25, .5, .5), IoU with T1 also 0.6: (1) gives 0.7; assigned to T1:
 *           (2) delta is 0.7, not 0 -> kept: 0.7.                                               [off: 1 * 2 * (1 - 0.25) = 1.5]
 *   (0, 1), (1, 1): IoU 0 (no y overlap) -> -0.5.                                                 [off: -0.5]
 * image 1, T2 = (0.25, 0.75, 0.5, 0.5) class 0 then T3 = (0.3, 0.8, 0.4, 0.4) class 1, both -> cell (0, 1), anchor 0.
 *   (0, 1): obj z = 0. Its box equals T2 (IoU 1) but no class > 0.25: best_match_iou = 0, no ignore.
 *           (1): 2 * (0 - 0) = 0. (2) T2: delta == 0 -> 1 * 2 * (1 - 0) = 2; T3: delta is 2 -> kept: 2.  [off: T3 last: 4 * 2 * 1 = 8]
 *           classes (unchanged by the option): T2 sets 1 - 0.1 = 0.9 and 0 - 0.1 = -0.1; T3 finds its class's delta
 *           non-zero (taken cell) -> (1 - 0.1) * 4 = 3.6.
 *   the other cells: IoU 0 with both -> -0.5.
 * image 2, T4 = T1's box, class 1 -> cell (0, 0).
 *   (0, 0): IoU 0.6 but classes 0.1: no ignore -> (1) -0.5; (2) delta is -0.5 -> kept: -0.5, an assigned cell
 *           pushed to objectness 0.                                                              [off: 4 * 2 * 0.75 = 6]
 *   the other cells: -0.5.
 * ignored (the smoothed delta is final): image 0 (0, 0) and (1, 0) = 2 [off: (1, 0) = 1].
 * Objectness loss (new_coords: m/2 (t - z)^2 per prediction, t the delta's target): 0.1225 * 2 (t = 0.6, m 2) +
 * 0.0625 * 10 (t = 0, m 2) + 1 (image 1 (0, 1): t = 1, m 2, z = 0) = 1.8075.
 */
const SM_SHAPE = [3, 7, 2, 2];
const SM_NET = { w: 64, h: 64 };
const smHead = (smooth: boolean) => head({
  flavor: 'alexeyab', classes: 2, mask: [0], anchors: [32, 32], total: 1, newCoords: true, ignoreThresh: 0.5, objNormalizer: 2,
  iouNormalizer: 1, maxBoxes: 200, classMultipliers: classMultipliers([400, 100], 1e30), objectnessSmooth: smooth,
});
/** flat index of entry k of cell (i, j) of image b (one anchor) */
const smAt = (b: number, k: number, j: number, i: number) => ((b * 7 + k) * 2 + j) * 2 + i;
function smInput(): Float32Array {
  const z = new Float32Array(3 * 7 * 4);
  for (let b = 0; b < 3; b++) for (let j = 0; j < 2; j++) for (let i = 0; i < 2; i++) {
    [0.5, 0.5, 0.5, 0.5, 0.25, 0.1, 0.1].forEach((v, k) => (z[smAt(b, k, j, i)] = v));
  }
  z[smAt(0, 0, 0, 1)] = 0;
  z[smAt(0, 5, 0, 1)] = 0.75;
  z[smAt(0, 5, 0, 0)] = 0.75;
  z[smAt(1, 4, 1, 0)] = 0;
  return z;
}
const fr = Math.fround;
const SM_TRUTHS: Truth[][] = [
  [{ x: 0.375, y: 0.25, w: 0.5, h: 0.5, cls: 0 }],
  [{ x: 0.25, y: 0.75, w: 0.5, h: 0.5, cls: 0 }, { x: fr(0.3), y: fr(0.8), w: fr(0.4), h: fr(0.4), cls: 1 }],
  [{ x: 0.375, y: 0.25, w: 0.5, h: 0.5, cls: 1 }],
];

test('objectness_smooth: hand-derived objectness deltas (ignore over the threshold, assigned cells, the "only if 0" order rule), loss, ignored', async () => {
  const gpu = await getGpu();
  const zv = smInput();
  const z = Tensor.from(gpu, SM_SHAPE, zv);
  const run = async (smooth: boolean) => {
    const out = new DarknetLoss([smHead(smooth)], SM_NET).compute([z], SM_TRUTHS, { keepGrads: true });
    const d = await out.grads![0].toArray();
    const r = await out.read();
    out.dispose();
    return { d, r };
  };
  const on = await run(true);
  const off = await run(false);
  const objOf = (d: ArrayLike<number>) => [0, 1, 2].map((b) => [d[smAt(b, 4, 0, 0)], d[smAt(b, 4, 0, 1)], d[smAt(b, 4, 1, 0)], d[smAt(b, 4, 1, 1)]]);
  // per image: cells (0,0), (1,0), (0,1), (1,1)
  assertClose(objOf(on.d).flat(), [0.7, 0.7, -0.5, -0.5, -0.5, -0.5, 2, -0.5, -0.5, -0.5, -0.5, -0.5], { atol: 1e-6, rtol: 0 }, 'objectness deltas, objectness_smooth=1');
  assertClose(objOf(off.d).flat(), [1.5, 0, -0.5, -0.5, -0.5, -0.5, 8, -0.5, 6, -0.5, -0.5, -0.5], { atol: 1e-6, rtol: 0 }, 'objectness deltas, objectness_smooth=0');
  // the class deltas of image 1's cell (0, 1), the same with and without
  for (const d of [on.d, off.d]) assertClose([d[smAt(1, 5, 1, 0)], d[smAt(1, 6, 1, 0)]], [0.9, 3.6], { atol: 1e-6, rtol: 0 }, 'class deltas');
  // nothing but objectness differs
  for (let e = 0; e < zv.length; e++) {
    if (Math.floor(e / 4) % 7 !== 4 && on.d[e] !== off.d[e]) assert.unreachable(`element ${e}: ${on.d[e]} vs ${off.d[e]}`);
  }
  assert.ok(Math.abs(on.r.items.obj - 1.8075) < 1e-5, `obj loss ${on.r.items.obj}`);
  assert.is(on.r.heads[0].aux1, 2, 'ignored with objectness_smooth');
  assert.is(off.r.heads[0].aux1, 1, 'ignored without');
  let sq = 0;
  for (const v of on.d) sq += v * v;
  assert.ok(relErr(on.r.heads[0].aux0, sq) < 1e-6, 'cost = sum delta^2');
  // the float64 transcriptions agree (box and class deltas included)
  const ref = darknetYoloRefSmooth(zv, SM_SHAPE, smHead(true), SM_NET, SM_TRUTHS);
  assertClose(on.d, ref.delta, { atol: 1e-6, rtol: 1e-6 }, 'vs darknetYoloRefSmooth');
  assert.is(ref.ignored, 2);
  assertClose(impliedLoss(zv, ref), [on.r.items.box, on.r.items.obj, on.r.items.cls], { atol: 1e-5, rtol: 1e-6 }, 'implied loss');
  assertClose(off.d, darknetYoloRef(zv, SM_SHAPE, smHead(false), SM_NET, SM_TRUTHS).delta, { atol: 1e-6, rtol: 1e-6 }, 'off vs darknetYoloRef');
  z.dispose();
});

const SMOOTH_VARIANTS: { name: string; cfg: DarknetHeadConfig; fd: boolean }[] = [
  { name: 'alexeyab mse, objectness_smooth, obj_normalizer 2, ignore .3', cfg: ab({ objectnessSmooth: true, objNormalizer: 2, ignoreThresh: 0.3 }), fd: true },
  { name: 'alexeyab mse, objectness_smooth, iou_thresh 0.2, counters_per_class', cfg: ab({ objectnessSmooth: true, iouThresh: 0.2, classMultipliers: classMultipliers([100, 10, 0], 5), clsNormalizer: 2 }), fd: true },
  {
    name: 'alexeyab objectness_smooth, the yolov4-csp head (new_coords, scale_x_y 2, ciou, iou_thresh 0.213 ciou kind, normalizers 0.05/0.5/4, max_delta 5)',
    cfg: ab({ objectnessSmooth: true, newCoords: true, scaleXY: 2, iouLoss: 'ciou', iouThresh: 0.213, iouThreshKind: 'ciou', iouNormalizer: 0.05, clsNormalizer: 0.5, objNormalizer: 4, maxDelta: 5 }),
    fd: false,
  },
];

for (const v of SMOOTH_VARIANTS) {
  test(`synthetic ${v.name}: delta, cost, ignored, loss vs the float64 transcription${v.fd ? '; gradient vs finite differences' : ''}`, () =>
    checkSynthetic(v, darknetYoloRefSmooth, (zv, loss, truths) => {
      if (!v.cfg.newCoords) return;
      // new_coords: obj output 1 exactly in a cell two truths of different classes took: without the option its
      // delta would be 0 (no iou_thresh averaging there), with it the cell keeps -obj_norm (or the ignore value),
      // so its box deltas are halved (2 positive class deltas)
      const s = loss.assign(0, 8, 12, truths).slots.find((sl) => [...sl.clsTarget].filter((t) => t === 1).length === 2);
      assert.ok(s, 'a cell with two classes');
      zv[((s.b * 3 + s.a) * 8 + 4) * 96 + s.j * 12 + s.i] = 1;
    }));
}

test('objectness_smooth: the key reaches the AlexeyAB loss; pjreddie refuses it; real cfgs', () => {
  const cfg = (extra: string) => `[net]\nwidth=64\nheight=64\nchannels=3\n[convolutional]\nfilters=21\nsize=1\nactivation=linear\n[yolo]\nmask=0,1,2\nanchors=6,8, 12,14, 14,12\nnum=3\nclasses=2\n${extra}`;
  assert.is(DarknetLoss.fromNetwork(Network.build(parseCfg(cfg('objectness_smooth=1'), 's.cfg'))).heads[0].objectnessSmooth, true);
  assert.is(DarknetLoss.fromNetwork(Network.build(parseCfg(cfg('objectness_smooth=0\niou_loss=ciou'), 's0.cfg'))).heads[0].objectnessSmooth, false);
  const pj = Network.build(parseCfg(cfg(''), 'pj.cfg'));
  assert.is(DarknetLoss.fromNetwork(pj).heads[0].objectnessSmooth, false);
  assert.throws(() => DarknetLoss.fromNetwork(pj, { flavor: 'pjreddie', override: { objectnessSmooth: true } }), /objectness_smooth/);
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the yolov4-csp.cfg check');
  // yolov4-csp.cfg: objectness_smooth=0 in its first [yolo], 1 in the other two
  const csp = Network.build(parseCfg(fs.readFileSync(path.join(shared, 'darknet-cfg/yolov4-csp.cfg'), 'utf8'), 'yolov4-csp.cfg'));
  assert.equal(DarknetLoss.fromNetwork(csp).heads.map((h) => [h.flavor, h.objectnessSmooth]), [['alexeyab', false], ['alexeyab', true], ['alexeyab', true]]);
});

test.run();
