/**
 * [Gaussian_yolo] inference (src/layers/gaussian_yolo.ts, kernels/gaussian_yolo.wgsl, the MODE 4 decode of
 * kernels/yolo_decode.wgsl) against:
 * - real AlexeyAB Darknet (fixtures/golden/darknet_gaussian_yolo.json, see its meta): the head inputs and
 *   l.output of fixtures/cfg/gaussian-mini.cfg with the weights test/yolo/gaussian_mini.ts makes, every
 *   detection of get_network_boxes at thresh 0.25 (box, objectness, the class probabilities scaled by
 *   1 − the mean uncertainty) and the entries do_nms_sort leaves;
 * - the float64 transcription of the C loops (test/reference/gaussian_yolo.ts) on random heads: decodeRows,
 *   the fused HeadDecoder (thresholds, record order, score vectors), two heads in one decoder;
 * - headFromLayer / the detect pipeline on the mini cfg, and Gaussian_yolov3_BDD.cfg building with its
 *   three heads and Darknet's BFLOPs (when ../shared is present);
 * - what training accepts (the Gaussian loss, test/yolo/loss_gaussian.test.ts) and refuses (the yolov5 loss: a
 *   TrainError naming the head's file:line); cfg errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { bflopsText, networkInfo } from '../../src/darknet/info.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { HeadDecoder, decodeRows, type Detection, type HeadSpec } from '../../src/yolo/decode.js';
import { headFromLayer, isHeadLayer } from '../../src/yolo/heads.js';
import { nms } from '../../src/yolo/nms.js';
import { fromDarknetNetwork } from '../../src/api/detector.js';
import { GaussianYoloLayer, gaussianHeadActivation } from '../../src/layers/gaussian_yolo.js';
import { gaussianActivationRef, gaussianDetectionsRef } from '../reference/gaussian_yolo.js';
import { GAUSSIAN_MINI_CFG, gaussianMiniInput, gaussianMiniNetwork } from './gaussian_mini.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { refuseUntrainable } from '../../src/train/params.js';
import { TrainError } from '../../src/train/types.js';

interface Stats { count: number; sum: number; sumsq: number; maxabs: number; step: number; sample: number[] }
interface GoldenHead { index: number; w: number; h: number; n: number; classes: number; mask: number[]; scale_x_y: number; input: Stats; output: Stats }
interface Golden {
  heads: GoldenHead[];
  thresh: number;
  boxes: number;
  detection_columns: string[];
  detections: number[][];
  nms: number;
  after_nms: number[][];
}

const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_gaussian_yolo.json'), 'utf8')) as Golden;

/** Checks a tensor's values against a golden's stats and sample; returns the max |err| of the sample. */
function checkStats(v: Float32Array, s: Stats, label: string, atol: number): number {
  assert.is(v.length, s.count, `${label} count`);
  const sample = Array.from({ length: s.sample.length }, (_, k) => v[k * s.step]);
  const err = assertClose(sample, s.sample, { atol, rtol: 0 }, `${label} sample`);
  let sum = 0;
  let sumsq = 0;
  for (const x of v) (sum += x, sumsq += x * x);
  assertClose([sum, sumsq, maxAbs(v)], [s.sum, s.sumsq, s.maxabs], { atol: 50 * atol, rtol: 1e-6 }, `${label} sum, sumsq, max|v|`);
  return err;
}

test('golden (AlexeyAB Darknet): head inputs, l.output, detections with the uncertainty-scaled scores, NMS survivors', async () => {
  const gpu = await getGpu();
  const net = gaussianMiniNetwork();
  net.prepare(gpu, 'infer');
  const I = gaussianMiniInput();
  const x = Tensor.from(gpu, I.shape, I.data);
  const heads = net.heads().filter(isHeadLayer);
  assert.equal(heads.map((l) => `${l.index}:${l.kind}`), golden.heads.map((h) => `${h.index}:Gaussian_yolo`));
  const keep = heads.flatMap((l) => [l.index, l.sources[0]]);
  const outs = net.forward(x, { keep });
  const report: string[] = [];
  const inputs: Tensor[] = [];
  for (const [k, g] of golden.heads.entries()) {
    const l = heads[k] as GaussianYoloLayer;
    assert.instance(l, GaussianYoloLayer);
    assert.equal([l.output.w, l.output.h, l.options.mask.length, l.options.classes, l.options.mask], [g.w, g.h, g.n, g.classes, g.mask]);
    assertClose([l.options.scaleXY], [g.scale_x_y], { atol: 1e-7, rtol: 0 }, 'scale_x_y');
    const zin = outs.get(l.sources[0])!;
    inputs.push(zin);
    // the head convolution (seeded weights read back by Darknet from our .weights): float32 rounding only
    // (measured: 5e-7 of values up to 3.7)
    const ei = checkStats(await zin.toArray(), g.input, `layer ${l.index} input`, 2e-6);
    const eo = checkStats(await outs.get(l.index)!.toArray(), g.output, `layer ${l.index} l.output`, 2e-6);
    report.push(`layer ${l.index}: input ${ei.toExponential(1)}, output ${eo.toExponential(1)} (max|v| ${g.input.maxabs.toFixed(2)})`);
  }
  // detections: the fused decode at Darknet's threshold, with every class score
  const specs = heads.map((l) => headFromLayer(l).spec);
  assert.equal(specs.map((s) => s.kind), ['Gaussian_yolo', 'Gaussian_yolo']);
  const dec = new HeadDecoder(gpu, specs, { width: net.input.w, height: net.input.h });
  const dets = await dec.detect(inputs, { thresh: golden.thresh, withScores: true });
  const col = Object.fromEntries(golden.detection_columns.map((c, i) => [c, i]));
  const C = golden.heads[0].classes;
  // one golden row per box with a class over the threshold; ours: one entry per (box, class)
  const byBox = new Map<string, Detection[]>();
  for (const d of dets) {
    const key = `${golden.heads[d.head].index}/${d.index}`;
    byBox.set(key, [...(byBox.get(key) ?? []), d]);
  }
  assert.is(byBox.size, golden.detections.length, 'boxes with a class score over the threshold');
  let boxErr = 0;
  let scoreErr = 0;
  golden.detections.forEach((r, i) => {
    const key = `${r[col.layer]}/${r[col.row]}`;
    const got = byBox.get(key);
    assert.ok(got, `golden detection ${i} (layer ${r[col.layer]} row ${r[col.row]}) is missing`);
    const probs = Array.from({ length: C }, (_, j) => r[col[`prob_${j}`]]);
    assert.equal(got!.map((d) => d.classId), probs.flatMap((p, j) => (p > 0 ? [j] : [])), `${key} classes over the threshold`);
    for (const d of got!) {
      boxErr = Math.max(boxErr, assertClose([d.box.x, d.box.y, d.box.w, d.box.h, d.objectness], [r[col.x], r[col.y], r[col.w], r[col.h], r[col.objectness]], { atol: 2e-6, rtol: 2e-6 }, `${key} box, objectness`));
      scoreErr = Math.max(scoreErr, assertClose([d.score, ...d.scores!], [probs[d.classId], ...probs], { atol: 2e-6, rtol: 0 }, `${key} scores`));
    }
  });
  // Darknet's order: layer, cell, anchor, class (the decoder sorts its records so)
  const order = dets.map((d) => `${golden.heads[d.head].index}/${d.index}`);
  const goldenOrder = golden.detections.flatMap((r) => Array.from({ length: C }, () => `${r[col.layer]}/${r[col.row]}`).filter((_, j) => r[col[`prob_${j}`]] > 0));
  assert.equal(order, goldenOrder, 'entry order');
  // NMS: the entries do_nms_sort leaves (compared as sets: its qsort reorders the array)
  const kept = nms(dets, { iouThreshold: golden.nms, kind: 'iou' });
  const byClassScore = (a: number[], b: number[]) => a[0] - b[0] || b[1] - a[1];
  const mine = kept.map((d) => [d.classId, d.score, d.box.x, d.box.y, d.box.w, d.box.h]).sort(byClassScore);
  const theirs = golden.after_nms.map((r) => [...r]).sort(byClassScore);
  assert.is(mine.length, theirs.length, 'NMS survivors');
  mine.forEach((r, i) => assertClose(r, theirs[i], { atol: 2e-6, rtol: 2e-6 }, `NMS survivor ${i} (class, score, box)`));
  console.log(`  Gaussian golden: ${report.join('; ')}; ${dets.length} entries of ${byBox.size} boxes, box/obj max|err| ${boxErr.toExponential(1)}, score max|err| ${scoreErr.toExponential(1)}, ${kept.length} after NMS`);
  // the boxes over the objectness threshold (Darknet's nboxes), and no score or objectness within 1e-5 of the
  // threshold (10x the errors above: the comparison cannot flip between float32 implementations)
  let boxes = 0;
  let margin = Infinity;
  for (const [k, z] of inputs.entries()) {
    const all = gaussianDetectionsRef(await z.toArray(), [...z.shape], specs[k], { width: net.input.w, height: net.input.h }, -Infinity);
    for (const d of all) {
      if (d.objectness > golden.thresh) boxes++;
      margin = Math.min(margin, Math.abs(d.objectness - golden.thresh), ...Array.from(d.prob, (p) => Math.abs(p - golden.thresh)));
    }
  }
  assert.is(boxes, golden.boxes, 'boxes with objectness over the threshold');
  assert.ok(margin > 1e-5, `a score ${margin} from the threshold`);
  dec.dispose();
  for (const t of new Set(outs.values())) t.dispose();
  x.dispose();
  net.dispose();
});

const NET = { width: 96, height: 64 };

function randomHead(rng: Rng, B: number, A: number, C: number, H: number, W: number): { shape: number[]; data: Float32Array } {
  const shape = [B, A * (9 + C), H, W];
  return { shape, data: randomArray(rng, shape.reduce((a, b) => a * b, 1), -4, 4) };
}

test('decodeRows and the fused decode vs the float64 reference (random heads, scale_x_y, two heads in one decoder)', async () => {
  const gpu = await getGpu();
  const rng = new Rng(23);
  const cases: { head: HeadSpec; B: number; H: number; W: number }[] = [
    { head: { kind: 'Gaussian_yolo', anchors: [10, 13, 16, 30, 33, 23], classes: 4, scaleXY: 1 }, B: 2, H: 4, W: 6 },
    // the decoder's score vectors need one class count for all its heads (records of 10 + classes words)
    { head: { kind: 'Gaussian_yolo', anchors: [30, 61, 62, 45], classes: 4, scaleXY: 1.2 }, B: 2, H: 2, W: 3 },
  ];
  const inputs = cases.map((c) => randomHead(rng, c.B, c.head.anchors.length / 2, c.head.classes, c.H, c.W));
  const xs = inputs.map((v) => Tensor.from(gpu, v.shape, v.data));
  for (const [k, c] of cases.entries()) {
    const { shape, data } = inputs[k];
    const A = c.head.anchors.length / 2;
    const ref = gaussianDetectionsRef(data, shape, c.head, NET, -Infinity);
    // rows: (y*W + x)*A + a per image: [cx, cy, w, h, obj, scores]
    const rows = await decodeRows(xs[k], c.head, NET).toArray();
    const K = 5 + c.head.classes;
    const want = new Float64Array(rows.length);
    for (const d of ref) {
      const o = (d.batch * c.H * c.W * A + d.index) * K;
      want.set([d.box.x, d.box.y, d.box.w, d.box.h, d.objectness, ...d.prob], o);
    }
    assertClose(rows, want, { atol: 1e-6, rtol: 2e-6 }, `case ${k} rows`);
  }
  // the fused decode at a threshold, both heads in one decoder
  const thresh = 0.3;
  const dec = new HeadDecoder(gpu, cases.map((c) => c.head), NET, { capacity: 16 });
  const got = await dec.detect(xs, { thresh, withScores: true });
  const want: { batch: number; head: number; index: number; classId: number; score: number; obj: number; box: number[]; scores: Float64Array }[] = [];
  const perHead = cases.map((c, k) => gaussianDetectionsRef(inputs[k].data, inputs[k].shape, c.head, NET, thresh));
  for (let b = 0; b < 2; b++) {
    perHead.forEach((list, h) => {
      for (const d of list) {
        if (d.batch !== b) continue;
        d.prob.forEach((p, j) => {
          if (p > 0) want.push({ batch: b, head: h, index: d.index, classId: j, score: p, obj: d.objectness, box: [d.box.x, d.box.y, d.box.w, d.box.h], scores: d.prob });
        });
      }
    });
  }
  assert.ok(dec.regrowths >= 1, 'more survivors than the initial capacity');
  assert.ok(want.length > 10 && want.length < 200, `${want.length} survivors`);
  assert.equal(got.map((d) => `${d.batch}/${d.head}/${d.index}/${d.classId}`), want.map((d) => `${d.batch}/${d.head}/${d.index}/${d.classId}`));
  got.forEach((d, i) => {
    const w = want[i];
    assertClose([d.score, d.objectness, d.box.x, d.box.y, d.box.w, d.box.h], [w.score, w.obj, ...w.box], { atol: 1e-6, rtol: 2e-6 }, `entry ${i}`);
    assertClose(d.scores!, w.scores, { atol: 1e-6, rtol: 2e-6 }, `entry ${i} scores`);
  });
  dec.dispose();
  xs.forEach((t) => t.dispose());
});

test('the score is objectness · class · (1 − mean σ): one cell worked by hand; shape errors name 9 + classes', async () => {
  const gpu = await getGpu();
  const logit = (p: number) => Math.log(p / (1 - p));
  // one anchor, 2 classes, 1x1 grid: x .5, σx .1, y .25, σy .3, w e^0, σw .2, h e^1, σh .4, obj .8, classes .5 / .9
  const v = [logit(0.5), logit(0.1), logit(0.25), logit(0.3), 0, logit(0.2), 1, logit(0.4), logit(0.8), logit(0.5), logit(0.9)];
  const x = Tensor.from(gpu, [1, 11, 1, 1], Float32Array.from(v));
  const head: HeadSpec = { kind: 'Gaussian_yolo', anchors: [16, 8], classes: 2 };
  const rows = await decodeRows(x, head, { width: 32, height: 16 }).toArray();
  const certainty = 1 - (0.1 + 0.3 + 0.2 + 0.4) / 4;
  assertClose(rows, [0.5, 0.25, 0.5, Math.E * 0.5, 0.8, 0.8 * 0.5 * certainty, 0.8 * 0.9 * certainty], { atol: 1e-6, rtol: 1e-6 }, 'hand-worked row');
  assert.throws(() => decodeRows(x, { ...head, classes: 6 }, { width: 32, height: 16 }), /not \[B, 1\*\(9\+6\) = 15, H, W\]/);
  assert.throws(() => new HeadDecoder(gpu, [{ ...head, newCoords: true }], { width: 32, height: 16 }), /Gaussian_yolo\] heads have no new_coords/);
  x.dispose();
});

test('headFromLayer: [Gaussian_yolo] mask, anchors, scale_x_y, nms_kind; the detect pipeline on the mini cfg', async () => {
  const g = headFromLayer({ kind: 'Gaussian_yolo', options: { classes: 10, mask: [6, 7, 8], anchors: [7, 10, 14, 24, 27, 43, 32, 97, 57, 64, 92, 109, 73, 175, 141, 178, 144, 291], scaleXY: 1, nmsKind: 'diounms', betaNms: 0.4 } });
  assert.equal(g.spec, { kind: 'Gaussian_yolo', anchors: [73, 175, 141, 178, 144, 291], classes: 10, scaleXY: 1 });
  assert.equal(g.nms, { kind: 'diou', beta: 0.4 });
  const gpu = await getGpu();
  const net = gaussianMiniNetwork();
  const dn = fromDarknetNetwork(net, gpu);
  assert.equal(dn.heads.map((h) => [h.kind, h.anchors, h.classes, h.scaleXY]), [['Gaussian_yolo', [20, 26, 33, 24, 44, 40], 3, 1.1], ['Gaussian_yolo', [5, 7, 9, 12, 14, 10], 3, 1]]);
  const I = gaussianMiniInput();
  const x = Tensor.from(gpu, I.shape, I.data);
  const zs = await dn.forwardHeads(x);
  assert.equal(zs.map((t) => [...t.shape]), [[1, 36, 6, 8], [1, 36, 12, 16]]);
  // the decoder on the kept head convolutions gives the float64 reference's entries
  const dec = new HeadDecoder(gpu, dn.heads, { width: dn.width, height: dn.height });
  const dets = await dec.detect(zs, { thresh: 0.3 });
  let n = 0;
  for (const [k, z] of zs.entries()) {
    for (const d of gaussianDetectionsRef(await z.toArray(), [...z.shape], dn.heads[k], { width: 64, height: 48 }, 0.3)) n += d.prob.filter((p) => p > 0).length;
  }
  assert.is(dets.length, n);
  assert.ok(n > 0);
  dec.dispose();
  zs.forEach((t) => t.dispose());
  x.dispose();
  dn.dispose?.();
});

test('the head activation: forward vs float64 (scale_x_y on x, y only; w, h raw), backward vs the analytic derivative', async () => {
  const gpu = await getGpu();
  const cfg = `[net]
width=4
height=3
channels=22
[Gaussian_yolo]
mask=0,1
anchors=1,2, 3,4
num=2
classes=2
scale_x_y=1.2
`;
  const net = Network.build(parseCfg(cfg, 'g.cfg'));
  const l = net.layers[0] as GaussianYoloLayer;
  net.prepare(gpu, 'infer');
  const rng = new Rng(3);
  const shape = [2, 22, 3, 4];
  const xv = randomArray(rng, 2 * 22 * 12, -3, 3);
  const x = Tensor.from(gpu, shape, xv);
  const y = await net.forward(x, { keep: [0] }).get(0)!.toArray();
  const ref = gaussianActivationRef(xv, shape, 2, 1.2);
  assertClose(y, ref, { atol: 1e-6, rtol: 1e-6 }, 'forward');
  // entries: logistic everywhere but w (4), h (6); x (0), y (2) scaled: 1.2·σ − 0.1
  const at = (k: number) => ref[k * 12 + 5];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  assertClose([at(0), at(1), at(4), at(6), at(8)], [1.2 * sig(xv[5]) - 0.1, sig(xv[12 + 5]), xv[4 * 12 + 5], xv[6 * 12 + 5], sig(xv[8 * 12 + 5])], { atol: 1e-12, rtol: 0 }, 'reference entries');
  // backward: dx = dy · dy/dx
  const xp = Tensor.param(gpu, shape, xv);
  const gv = randomArray(rng, xv.length, -1, 1);
  const tape = newTape();
  const out = tape.record(() => gaussianHeadActivation(xp, l.options.classes + 9, l.options.scaleXY));
  tape.backward(out, Tensor.from(gpu, shape, gv));
  const dx = await xp.grad!.toArray();
  const want = new Float64Array(xv.length);
  for (let i = 0; i < xv.length; i++) {
    const k = Math.floor(i / 12) % 11;
    const s = sig(xv[i]);
    want[i] = gv[i] * (k === 4 || k === 6 ? 1 : s * (1 - s) * (k === 0 || k === 2 ? 1.2 : 1));
  }
  assertClose(dx, want, { atol: 1e-6, rtol: 1e-5 }, 'backward');
  tape.dispose();
  x.dispose();
  net.dispose();
});

test('Gaussian_yolov3_BDD.cfg builds: three [Gaussian_yolo] heads of 3 anchors x (9 + 10 classes), Darknet\'s BFLOPs', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('Gaussian_yolov3_BDD.cfg');
  const file = path.join(shared, 'darknet-cfg', 'Gaussian_yolov3_BDD.cfg');
  // at the cfg's 512x512 AlexeyAB Darknet (59596d78) prints "Total BFLOPS 99.066"
  const info = networkInfo(Network.fromFile(file));
  assert.is(bflopsText(info.totalBflops), '99.066');
  assert.equal(info.rows.filter((r) => r.type === 'Gaussian_yolo').map((r) => `${r.index} ${r.input} -> ${r.output}`), ['82 16 x 16 x 57 -> 16 x 16 x 57', '94 32 x 32 x 57 -> 32 x 32 x 57', '106 64 x 64 x 57 -> 64 x 64 x 57']);
  const net = Network.fromFile(file, { width: 416, height: 416 });
  const heads = net.heads();
  assert.equal(heads.map((l) => `${l.index}:${l.kind}:${l.input.w}x${l.input.h}x${l.input.c}`), ['82:Gaussian_yolo:13x13x57', '94:Gaussian_yolo:26x26x57', '106:Gaussian_yolo:52x52x57']);
  const l = heads[0] as GaussianYoloLayer;
  assert.equal(l.options.mask, [6, 7, 8]);
  assert.equal([l.options.iouLoss, l.options.iouNormalizer, l.options.ucNormalizer, l.options.iouThresh, l.options.ignoreThresh], ['giou', 0.5, 1, 0.213, 0.5]);
  assert.equal(net.warnings.filter((w) => w.section === 'Gaussian_yolo'), []);
});

test('training [Gaussian_yolo] heads: the darknet loss is the Gaussian one; the yolov5 loss is refused with a TrainError naming the head\'s file:line', () => {
  const net = gaussianMiniNetwork();
  refuseUntrainable(net);
  assert.is(lossFromNetwork(net, { kind: 'darknet' }).constructor.name, 'GaussianYoloLoss');
  try {
    lossFromNetwork(net, { kind: 'yolov5' });
    assert.unreachable('the yolov5 loss accepted a [Gaussian_yolo] head');
  } catch (e) {
    assert.instance(e, TrainError);
    assert.is((e as TrainError).kind, 'config');
    assert.match((e as Error).message, /gaussian-mini\.cfg:\d+: layer 8 \[Gaussian_yolo\] cannot be trained: the yolov5 loss has no Gaussian YOLOv3 form/);
    const line = Number(/\.cfg:(\d+):/.exec((e as Error).message)![1]);
    assert.is(fs.readFileSync(GAUSSIAN_MINI_CFG, 'utf8').split('\n')[line - 1].trim(), '[Gaussian_yolo]');
  }
});

test('cfg errors: filters, yolo_point, map, counters_per_class', () => {
  const head = (keys: string, filters = 24) => `[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=${filters}\nsize=1\nactivation=linear\n[Gaussian_yolo]\nmask=0,1\nanchors=1,2, 3,4\nnum=2\nclasses=3\n${keys}`;
  assert.throws(() => Network.build(parseCfg(head('', 16), 'g.cfg')), /g\.cfg:9: \[Gaussian_yolo\] expects 2 anchors x \(9 \+ 3 classes\) = 24 input channels.*filters=24/);
  assert.throws(() => Network.build(parseCfg(head('yolo_point=left_top\n'), 'g.cfg')), /g\.cfg:14: \[Gaussian_yolo\] key 'yolo_point': 'left_top'/);
  assert.throws(() => Network.build(parseCfg(head('map=m.txt\n'), 'g.cfg')), /g\.cfg:14: \[Gaussian_yolo\] key 'map'/);
  assert.throws(() => Network.build(parseCfg(head('counters_per_class=1,2\n'), 'g.cfg')), /key 'counters_per_class': has 2 values, classes=3/);
  // yolo_point=center (Darknet's default) and keys Darknet does not read in this section
  const net = Network.build(parseCfg(head('yolo_point=center\nnew_coords=1\n'), 'g.cfg'));
  assert.equal(net.warnings.map((w) => w.key), ['new_coords']);
});

test.run();
