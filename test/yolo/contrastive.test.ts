/**
 * [contrastive] (src/layers/contrastive.ts) and the [yolo] embeddings, against real AlexeyAB Darknet
 * (fixtures/golden/darknet_contrastive.json, see its meta; fixtures/cfg/contrastive-mini.cfg with the
 * weights, inputs and truths of test/yolo/contrastive_mini.ts):
 * - inference: the embedding layer's output (the [contrastive] input; the layer itself is the identity, as
 *   Darknet's GPU forward), the head, and the detections of get_network_boxes with their embeddings, through
 *   the decoder and through detectImages (FoundObject.embedding, the detect JSON's `embedding`);
 * - training: the [yolo] labels (track ids, classes) and the [contrastive] deltas of three cases
 *   (temperature, cls_normalizer, the max_delta clip, contrastive_neg_max, time_steps 2), through the op and
 *   through the Darknet loss (its gradient into the embedding layer, the cost in the readout); the op against
 *   the float64 transcription of the C loops (test/reference/contrastive.ts) on random samples;
 * - the layer's keys and errors (file:line), yolov4-tiny_contrastive.cfg building (when ../shared is present).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Network } from '../../src/darknet/network.js';
import { CfgError, parseCfg } from '../../src/darknet/cfg.js';
import { packageRoot } from '../../src/util/paths.js';
import { HeadDecoder, type Detection } from '../../src/yolo/decode.js';
import { detectImages, fromDarknetNetwork, readEmbeddings } from '../../src/api/detector.js';
import { resultJson } from '../../src/cli/detect.js';
import { ContrastiveLayer } from '../../src/layers/contrastive.js';
import { YoloLayer } from '../../src/layers/yolo.js';
import { contrastiveConfigs, contrastiveSamples, type ContrastiveConfig } from '../../src/yolo/loss_contrastive.js';
import { contrastiveDeltas, gatherEmbeddings, type EmbeddingSample } from '../../src/tensor/ops/contrastive.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { DarknetLoss } from '../../src/yolo/loss_darknet.js';
import { TrainError } from '../../src/train/types.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { contrastiveDeltasRef } from '../reference/contrastive.js';
import { CONTRASTIVE_MINI_CFG, contrastiveMiniInput, contrastiveMiniNetwork, contrastiveMiniTruths } from './contrastive_mini.js';

interface Stats { count: number; sum: number; sumsq: number; maxabs: number; step: number; sample: number[] }
interface GoldenDet { row: number; box: number[]; objectness: number; prob: number[]; embedding: number[] }
interface GoldenInference {
  image: number;
  yolo: number;
  embedding_layer: number;
  embedding_size: number;
  contrastive: number;
  contrastive_output_maxabs_cpu: number;
  embeddings: number[];
  head_input: Stats;
  yolo_output: Stats;
  thresh: number;
  boxes: number;
  detections: GoldenDet[];
}
interface GoldenTraining {
  batch: number;
  time_steps: number;
  steps: number;
  temperature: number;
  cls_normalizer: number;
  max_delta: number;
  contrastive_neg_max: number;
  n: number;
  w: number;
  h: number;
  embedding_size: number;
  labels: [number, number, number][];
  nonzero: number;
  cost: number;
  accuracy: number;
  deltas: number[][];
}
interface Golden { inference: GoldenInference[]; training: GoldenTraining[] }

const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_contrastive.json'), 'utf8')) as Golden;

/** Checks values against a golden's stats and sample; returns the max |err| of the sample. */
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

/** Image b of the mini input as a [1, 3, 48, 64] tensor. */
function image(gpu: Awaited<ReturnType<typeof getGpu>>, b: number): Tensor {
  const I = contrastiveMiniInput();
  const per = I.data.length / I.shape[0];
  return Tensor.from(gpu, [1, 3, 48, 64], I.data.subarray(b * per, (b + 1) * per));
}

test('the layer: keys, shape, the [yolo] it reads; the identity forward', () => {
  const net = Network.fromFile(CONTRASTIVE_MINI_CFG);
  const c = net.layers[15];
  assert.instance(c, ContrastiveLayer);
  const l = c as ContrastiveLayer;
  assert.equal(l.options, { yoloLayer: 13, n: 3, embeddingSize: 4, classesKey: 1, temperature: 1, clsNormalizer: 1, maxDelta: 10, negMax: 3 });
  assert.equal(l.output, { c: 12, h: 12, w: 16 });
  assert.is(l.outputIsImage, false);
  const y = net.layers[13] as YoloLayer;
  assert.equal([y.options.embeddingLayer, y.options.embeddingSize], [9, 4]);
  const g = golden.inference[0];
  assert.equal([g.yolo, g.embedding_layer, g.embedding_size, g.contrastive], [13, 9, 4, 15]);
});

test('golden (AlexeyAB Darknet): embeddings, head, detections with their embeddings', async () => {
  const gpu = await getGpu();
  const net = contrastiveMiniNetwork();
  net.prepare(gpu, 'infer');
  const dn = fromDarknetNetwork(net, gpu);
  assert.equal(dn.embeddings, [4]);
  const report: string[] = [];
  for (const g of golden.inference) {
    const x = image(gpu, g.image);
    const outs = net.forward(x, { keep: [9, 12, 13, 15] });
    // the embedding layer (seeded weights read back by Darknet from our .weights): float32 rounding only
    const emb = await outs.get(9)!.toArray();
    const ee = assertClose(emb, g.embeddings, { atol: 2e-6, rtol: 0 }, `image ${g.image} embeddings`);
    // [contrastive] at inference: the identity (Darknet's GPU forward copies; its CPU forward leaves l.output 0)
    assert.equal(Array.from(await outs.get(15)!.toArray()), Array.from(emb), 'contrastive output = its input');
    assert.is(g.contrastive_output_maxabs_cpu, 0);
    const eh = checkStats(await outs.get(12)!.toArray(), g.head_input, 'head input', 2e-6);
    checkStats(await outs.get(13)!.toArray(), g.yolo_output, 'yolo output', 2e-6);
    for (const t of new Set(outs.values())) if (t !== x) t.dispose();
    // detections at Darknet's threshold, with the embeddings read for them
    const zs = await dn.forwardHeads(x);
    assert.equal(zs.map((t) => [...t.shape]), [[1, 21, 12, 16], [1, 12, 12, 16]]);
    const dec = new HeadDecoder(gpu, dn.heads, { width: 64, height: 48 });
    const dets = await dec.detect(zs.slice(0, 1), { thresh: g.thresh, withScores: true });
    await readEmbeddings(dets, dn.heads, dn.embeddings!, zs.slice(1));
    const byRow = new Map<number, Detection[]>();
    for (const d of dets) byRow.set(d.index, [...(byRow.get(d.index) ?? []), d]);
    assert.is(byRow.size, g.detections.length, 'boxes with a class over the threshold');
    let embErr = 0;
    for (const r of g.detections) {
      const got = byRow.get(r.row);
      assert.ok(got, `golden detection at row ${r.row} is missing`);
      assert.equal(got!.map((d) => d.classId), r.prob.flatMap((p, j) => (p > 0 ? [j] : [])), `row ${r.row} classes`);
      for (const d of got!) {
        assertClose([d.box.x, d.box.y, d.box.w, d.box.h, d.objectness, ...d.scores!], [...r.box, r.objectness, ...r.prob], { atol: 2e-6, rtol: 2e-6 }, `row ${r.row} box, objectness, scores`);
        assert.ok(d.embedding, `row ${r.row} has no embedding`);
        embErr = Math.max(embErr, assertClose(d.embedding!, r.embedding, { atol: 2e-6, rtol: 0 }, `row ${r.row} embedding`));
      }
    }
    report.push(`image ${g.image}: embeddings ${ee.toExponential(1)}, head ${eh.toExponential(1)}, ${g.detections.length} boxes, their embeddings ${embErr.toExponential(1)}`);
    dec.dispose();
    zs.forEach((t) => t.dispose());
    x.dispose();
  }
  console.log(`  contrastive golden (inference): ${report.join('; ')}`);
  dn.dispose?.();
});

test('detectImages: the kept objects carry their embedding; the detect JSON writes it (and nothing without it)', async () => {
  const gpu = await getGpu();
  const net = contrastiveMiniNetwork();
  const dn = fromDarknetNetwork(net, gpu);
  const g = golden.inference[0];
  const I = contrastiveMiniInput();
  const im = { width: 64, height: 48, channels: 3, data: I.data.slice(0, 3 * 48 * 64) };
  const r = await detectImages(gpu, dn, [im], { conf: g.thresh, iou: 0.45 });
  const objs = r.images[0].objects;
  assert.ok(objs.length > 0);
  for (const o of objs) {
    // the golden box of the same class and score: its embedding
    const match = g.detections.find((d) => Math.abs(d.prob[o.classId] - o.score) < 2e-6);
    assert.ok(match && o.embedding, `object ${o.classId} ${o.score}`);
    assertClose(o.embedding!, match!.embedding, { atol: 2e-6, rtol: 0 }, 'object embedding');
  }
  const off = await detectImages(gpu, dn, [im], { conf: g.thresh, embeddings: false });
  assert.ok(off.images[0].objects.every((o) => o.embedding === undefined));
  const json = resultJson({ file: 'a.png', width: 64, height: 48, objects: objs, placement: r.images[0].placement }) as { detections: Record<string, unknown>[] };
  assert.equal(json.detections[0].embedding, objs[0].embedding!.map((v) => Number(v.toPrecision(7))));
  const plain = resultJson({ file: 'a.png', width: 64, height: 48, objects: off.images[0].objects, placement: r.images[0].placement }) as { detections: Record<string, unknown>[] };
  assert.ok(!('embedding' in plain.detections[0]), 'no embedding key without embeddings');
  dn.dispose?.();
});

/** The case's [contrastive] settings on the mini network's config. */
function caseConfig(base: ContrastiveConfig, g: GoldenTraining): ContrastiveConfig {
  return { ...base, temperature: g.temperature, clsNormalizer: g.cls_normalizer, maxDelta: g.max_delta, negMax: g.contrastive_neg_max, steps: g.steps };
}

/** Compares a delta tensor [4, 12, 12, 16] with a golden case: the labelled samples' values, zero elsewhere. */
function checkDeltas(d: Float32Array, g: GoldenTraining, label: string): number {
  const wh = g.w * g.h;
  const E = g.embedding_size;
  let err = 0;
  const seen = new Set<number>();
  for (const [z, ...want] of g.deltas) {
    const b = Math.floor(z / (g.n * wh));
    const a = Math.floor(z / wh) % g.n;
    const cell = z % wh;
    const idx = want.map((_, m) => ((b * g.n + a) * E + m) * wh + cell);
    idx.forEach((i) => seen.add(i));
    // Darknet float32 vs the GPU's: rounding of the sums (the largest deltas are ~1)
    err = Math.max(err, assertClose(idx.map((i) => d[i]), want, { atol: 2e-6, rtol: 2e-5 }, `${label} sample ${z}`));
  }
  let nonzero = 0;
  d.forEach((v, i) => {
    if (v !== 0) nonzero++;
    if (!seen.has(i)) assert.is(v, 0, `${label} delta ${i} off the samples`);
  });
  assert.is(nonzero, g.nonzero, `${label} non-zero deltas`);
  return err;
}

test('golden (AlexeyAB Darknet): the [yolo] labels and the [contrastive] deltas of 3 cases, through the op', async () => {
  const gpu = await getGpu();
  const net = contrastiveMiniNetwork();
  net.prepare(gpu, 'infer');
  const I = contrastiveMiniInput();
  const x = Tensor.from(gpu, I.shape, I.data);
  const emb = net.forward(x, { keep: [9] }).get(9)!;
  const embV = await emb.toArray();
  const [base] = contrastiveConfigs(net, [net.layers[13] as YoloLayer]);
  assert.equal([base.layer, base.source, base.head, base.E, base.steps, base.negMax], [15, 14, 0, 4, 1, 3]);
  const truths = contrastiveMiniTruths();
  const report: string[] = [];
  for (const [k, g] of golden.training.entries()) {
    const c = caseConfig(base, g);
    const samples = contrastiveSamples(c, 4, g.h, g.w, truths, { w: 64, h: 48 });
    // Darknet's labels: z, track id, class (image 2's first box overwritten by its last one)
    assert.equal(samples.map((s) => [(s.b * g.n + s.a) * g.w * g.h + s.cell, s.label, s.cls]), g.labels, `case ${k} labels`);
    const { delta, partials } = contrastiveDeltas(emb, 4, samples, c);
    const d = await delta.toArray();
    const err = checkDeltas(d, g, `case ${k}`);
    const cost = (await partials.toArray()).slice(3 * samples.length, 4 * samples.length).reduce((a, v) => a + v, 0);
    assertClose([cost], [g.cost], { atol: 1e-6, rtol: 1e-5 }, `case ${k} cost`);
    // the float64 transcription of the C loops on the same embeddings
    const ref = contrastiveDeltasRef(samples.map((s) => ({ z: Array.from({ length: 4 }, (_, m) => embV[((s.b * 3 + s.a) * 4 + m) * 192 + s.cell]), label: s.label!, cls: s.cls!, step: s.step! })), c);
    const refErr = assertClose(ref.flatMap((r) => Array.from(r)), g.deltas.flatMap((r) => r.slice(1)), { atol: 2e-6, rtol: 2e-5 }, `case ${k} float64 reference`);
    report.push(`case ${k} (T ${g.temperature}, steps ${g.steps}, neg_max ${g.contrastive_neg_max}): ${err.toExponential(1)} (float64 ${refErr.toExponential(1)})`);
    delta.dispose();
    partials.dispose();
  }
  console.log(`  contrastive golden (deltas, max|err|): ${report.join('; ')}`);
  emb.dispose();
  x.dispose();
});

test('training through the Darknet loss: the embedding gradient is -delta, the cost is the readout aux0', async () => {
  const gpu = await getGpu();
  const net = contrastiveMiniNetwork();
  net.prepare(gpu, 'train');
  const yl = lossFromNetwork(net, { kind: 'darknet' }) as DarknetLoss;
  assert.equal(yl.headSources, [12, 14]);
  assert.is(yl.contrastive.length, 1);
  const I = contrastiveMiniInput();
  const x = Tensor.from(gpu, I.shape, I.data);
  const g = golden.training[0];
  const tape = newTape();
  const out = tape.record(() => {
    const outs = net.forward(x, { mode: 'train', keep: yl.headSources });
    return yl.compute(yl.headInputs(outs), contrastiveMiniTruths(), { keepGrads: true });
  });
  assert.equal(out.stats.heads.map((h) => h.assigned), [14, 13]);
  assert.is(out.stats.assigned, 14);
  const err = checkDeltas(await out.grads![1].toArray(), g, 'loss grads[1]');
  const r = await out.read();
  assert.is(r.heads.length, 2);
  assertClose([r.heads[1].aux0, r.heads[1].box, r.heads[1].obj, r.heads[1].cls], [g.cost, 0, 0, 0], { atol: 1e-6, rtol: 1e-5 }, 'contrastive readout');
  assertClose([r.loss], [r.heads[0].box + r.heads[0].obj + r.heads[0].cls], { atol: 1e-3, rtol: 1e-5 }, 'the loss is the [yolo] terms');
  tape.backward(out.loss);
  // layer 9 (linear, no batchnorm) feeds only the [contrastive]: dL/dbias = -(sum of the delta over images and cells)
  const bias = net.layers[9].parameters('train').find((p) => p.name === 'biases')!.tensor;
  const gb = await bias.grad!.toArray();
  const want = new Float64Array(12);
  for (const [z, ...v] of g.deltas) {
    const a = Math.floor(z / 192) % 3;
    v.forEach((dv, m) => (want[a * 4 + m] -= dv));
  }
  assertClose(gb, want, { atol: 5e-6, rtol: 1e-5 }, 'layer 9 bias gradient');
  console.log(`  contrastive through the loss: deltas ${err.toExponential(1)}, cost ${r.heads[1].aux0.toFixed(5)} (Darknet ${g.cost})`);
  out.dispose();
  tape.dispose();
  x.dispose();
});

test('the op vs the float64 transcription on random samples: 3 classes, shared tracks, 2 time steps, the clip, neg_max 2', async () => {
  const gpu = await getGpu();
  const rng = new Rng(5);
  const [B, A, E, H, W] = [4, 3, 5, 3, 4];
  const emb = Tensor.from(gpu, [B, A * E, H, W], randomArray(rng, B * A * E * H * W, -1, 1));
  const v = await emb.toArray();
  // 30 distinct (b, a, cell) in Darknet's order; tracks 0..9 (each seen up to 4 times), class = track % 3
  const zs = new Set<number>();
  while (zs.size < 30) zs.add(rng.int(B * A * H * W));
  const samples: EmbeddingSample[] = [...zs].sort((p, q) => p - q).map((z) => {
    const label = rng.int(10);
    const b = Math.floor(z / (A * H * W));
    return { b, a: Math.floor(z / (H * W)) % A, cell: z % (H * W), label, cls: label % 3, step: b >> 1 };
  });
  const p = { temperature: 0.6, clsNormalizer: 1.5, maxDelta: 0.4, negMax: 2 };
  const { delta, partials } = contrastiveDeltas(emb, E, samples, p);
  const d = await delta.toArray();
  const ref = contrastiveDeltasRef(samples.map((s) => ({ z: Array.from({ length: E }, (_, m) => v[((s.b * A + s.a) * E + m) * H * W + s.cell]), label: s.label!, cls: s.cls!, step: s.step! })), p);
  const got = samples.flatMap((s) => Array.from({ length: E }, (_, m) => d[((s.b * A + s.a) * E + m) * H * W + s.cell]));
  const want = ref.flatMap((r) => Array.from(r));
  const err = assertClose(got, want, { atol: 1e-6, rtol: 1e-5 }, 'deltas vs float64');
  assert.ok(want.some((w) => Math.abs(w) === 0.4) && want.some((w) => w !== 0 && Math.abs(w) < 0.4), 'some deltas clipped, some not');
  const cost = (await partials.toArray()).slice(90, 120).reduce((a, x) => a + x, 0);
  assertClose([cost], [want.reduce((a, x) => a + x * x, 0)], { atol: 1e-6, rtol: 1e-5 }, 'cost');
  // the gather the detections use
  const z = await gatherEmbeddings(emb, E, samples.slice(0, 3)).toArray();
  assert.equal(Array.from(z), samples.slice(0, 3).flatMap((s) => Array.from({ length: E }, (_, m) => v[((s.b * A + s.a) * E + m) * H * W + s.cell])));
  console.log(`  contrastive vs float64 (30 samples): max|err| ${err.toExponential(1)}`);
  [emb, delta, partials].forEach((t) => t.dispose());
});

test('the yolov5 loss refuses a cfg with [contrastive], naming its line', () => {
  const net = contrastiveMiniNetwork();
  try {
    lossFromNetwork(net, { kind: 'yolov5' });
    assert.unreachable('trained');
  } catch (e) {
    assert.instance(e, TrainError);
    assert.match((e as Error).message, /contrastive-mini\.cfg:\d+: layer 15 \[contrastive\] cannot be trained: .*darknet loss/);
  }
});

const HEAD = `[net]
width=16
height=8
channels=3
[convolutional]
filters=6
size=1
activation=linear
[convolutional]
filters=14
size=1
activation=linear
[yolo]
mask=0,1
anchors=2,3, 4,5
num=2
classes=2
`;

function build(text: string): Network {
  return Network.build(parseCfg(text, 'c.cfg'));
}

function refused(text: string, re: RegExp, line: number): void {
  try {
    build(text);
  } catch (e) {
    assert.instance(e, CfgError);
    assert.match((e as Error).message, re);
    assert.match((e as Error).message, new RegExp(`^c\\.cfg:${line}: `));
    return;
  }
  assert.unreachable(`built: expected ${re}`);
}

test('cfg errors name file:line: no yolo_layer, not a [yolo], no embedding_layer, sizes that disagree', () => {
  const ok = `${HEAD}embedding_layer=-2\n[route]\nlayers=-3\n[contrastive]\nyolo_layer=-2\n`;
  const net = build(ok);
  assert.equal((net.layers[4] as ContrastiveLayer).options.embeddingSize, 3);
  const lines = ok.split('\n');
  const at = (s: string) => lines.indexOf(s) + 1;
  refused(ok.replace('yolo_layer=-2\n', ''), /needs yolo_layer=/, at('[contrastive]'));
  refused(ok.replace('yolo_layer=-2\n', 'yolo_layer=-1\n'), /layer 3 is a \[route\], not a \[yolo\]/, at('yolo_layer=-2'));
  refused(ok.replace('embedding_layer=-2\n', ''), /has no embedding_layer=/, at('yolo_layer=-2') - 1);
  // 6 channels / 2 anchors = 3 in the [yolo]; a [contrastive] reading the 14-channel head conv: 7
  refused(ok.replace('layers=-3', 'layers=-2'), /embedding size 7 .* is not the \[yolo\] layer 2's 3/, at('yolo_layer=-2'));
  refused(ok.replace('yolo_layer=-2\n', 'yolo_layer=-2\ntemperature=0\n'), /temperature.*must be > 0/, at('yolo_layer=-2') + 1);
  // the [yolo]'s embedding layer must have its grid (Darknet would read it out of place)
  const pooled = HEAD.replace('[convolutional]\nfilters=14', '[maxpool]\nsize=2\nstride=2\n[convolutional]\nfilters=14') + 'embedding_layer=-3\n';
  refused(pooled, /layer 0 outputs 16 x 8 x 6, not this head's grid 8 x 4/, pooled.split('\n').indexOf('embedding_layer=-3') + 1);
});

test('yolov4-tiny_contrastive.cfg builds: the [contrastive] on the 1152-channel embeddings of its 9-anchor head', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('yolov4-tiny_contrastive.cfg');
  const net = Network.fromFile(path.join(shared, 'darknet-cfg/yolov4-tiny_contrastive.cfg'));
  const c = net.layers[54] as ContrastiveLayer;
  assert.instance(c, ContrastiveLayer);
  assert.equal([c.options.yoloLayer, c.options.n, c.options.embeddingSize, c.options.maxDelta, c.options.temperature], [52, 9, 128, 10, 1]);
  assert.equal(c.input, { c: 1152, h: 52, w: 52 });
  assert.equal((net.layers[52] as YoloLayer).options.embeddingLayer, 48);
});

test.run();
