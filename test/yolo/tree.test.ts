/**
 * Hierarchical softmax (YOLO9000 tree=) and the [region] loss against AlexeyAB Darknet's own numbers
 * (fixtures/golden/darknet_tree.json; its "meta" says how they were made) on a small tree of our own
 * (fixtures/tree/small.tree, map small.map): read_tree's tables; [softmax] tree= forward and the classifier
 * cost; [region] forward, the tree walk of detection, and the training deltas and cost with and without a
 * tree; plus the float64 references (test/reference/tree.ts, region_loss.ts) and finite differences of the
 * loss value.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, finiteDiff, maxAbs, sampleIndices } from '../helpers/check.js';
import { regionTreeDetectRef } from '../reference/tree.js';
import { regionLossRef, type RegionRefConfig } from '../reference/region_loss.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { hierarchyTarget, parseTree } from '../../src/darknet/tree.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { softmaxCrossEntropy } from '../../src/tensor/ops/softmax.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { HeadDecoder } from '../../src/yolo/decode.js';
import { headFromLayer } from '../../src/yolo/heads.js';
import { RegionLoss, regionHeadConfig } from '../../src/yolo/loss_region.js';
import type { Truth } from '../../src/yolo/targets.js';
import { packageRoot } from '../../src/util/paths.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { runTrainer } from '../../src/train/trainer.js';
import { yoloTrainLoss } from '../../src/train/yolo_loss.js';
import { SyntheticLoader } from '../train/helpers.js';
import { layerRef, type Val } from '../layers/reference.js';
import { perturb } from '../helpers/perturb.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const root = packageRoot();
const treeDir = path.join(root, 'fixtures/tree');

interface SoftmaxCase { cfg: string; inputs: number; batch: number; temperature: number; input: number[]; labels: number[]; output: number[]; truth: number[]; delta: number[]; loss: number[]; cost: number }
interface RegionCase {
  cfg: string; w: number; h: number; n: number; classes: number; batch: number; max_boxes: number; seen: number; biases: number[];
  input: number[]; truths: number[][][]; output: number[]; delta: number[]; cost: number; thresh: number; hier_thresh: number; detections: number[][];
}
const golden = JSON.parse(fs.readFileSync(path.join(root, 'fixtures/golden/darknet_tree.json'), 'utf8')) as {
  tree: Record<string, number[] | number | string>;
  softmax: Record<string, SoftmaxCase>;
  region: Record<string, RegionCase>;
};
const small = parseTree(fs.readFileSync(path.join(treeDir, 'small.tree'), 'utf8'), 'small.tree');

/** The golden's cfg built as if it were a file beside the tree (tree=small.tree resolves to fixtures/tree). */
function build(cfg: string, name: string): Network {
  return Network.build(parseCfg(cfg, path.join(treeDir, `${name}.cfg`)));
}

const truthsOf = (c: RegionCase): Truth[][] => c.truths.map((ts) => ts.map(([x, y, w, h, cls]) => ({ x, y, w, h, cls })));

const NETS: Record<string, string> = {
  // go.cfg's end: conv, [reorg] extra=1, [softmax]
  go: '[net]\nwidth=5\nheight=5\nchannels=1\n\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=relu\n\n[convolutional]\nfilters=1\nsize=1\nstride=1\npad=1\nactivation=linear\n\n[reorg]\nextra=1\nstride=1\n\n[softmax]\n',
  // yolo9000.cfg's end: conv, [region] tree=
  yolo9000: '[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[maxpool]\nsize=2\nstride=2\n\n[convolutional]\nfilters=36\nsize=1\nstride=1\npad=1\nactivation=linear\n\n[region]\nanchors=1,1,2,2\nclasses=13\ncoords=4\nnum=2\nsoftmax=1\ntree=small.tree\n',
  // darknet9000.cfg's end: conv, [avgpool], [softmax] tree=, [cost]
  darknet9000: '[net]\nwidth=4\nheight=4\nchannels=3\n\n[convolutional]\nfilters=13\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[avgpool]\n\n[softmax]\ntree=small.tree\ntemperature=2\n\n[cost]\ntype=masked\n',
};

for (const [name, cfg] of Object.entries(NETS)) {
  test(`every layer of a ${name}-like network vs its float64 reference (test/layers/reference.ts)`, async () => {
    const gpu = await getGpu();
    const net = build(cfg, name);
    net.initWeights(5);
    perturb(net, 6);
    net.prepare(gpu, 'infer');
    const I = net.input;
    const xv = randomArray(new Rng(7), 2 * I.c * I.h * I.w, 0, 1);
    const x = Tensor.from(gpu, [2, I.c, I.h, I.w], xv);
    const outs = net.forward(x, { keep: net.layers.map((l) => l.index) });
    const vals: Val[] = [];
    for (const l of net.layers) {
      const t = outs.get(l.index)!;
      assert.equal([...t.shape], [2, l.output.c, l.output.h, l.output.w], `layer ${l.index} shape`);
      vals.push({ data: await t.toArray(), shape: [...t.shape] });
    }
    for (const l of net.layers) {
      const ins = l.sources.map((j) => (j < 0 ? { data: xv, shape: [2, I.c, I.h, I.w] } : vals[j]));
      const ref = layerRef(l, ins);
      const got = vals[l.index].data;
      let err = 0;
      for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
      assert.ok(err <= 2e-5 * Math.max(maxAbs(ref), 1e-30), `${name} layer ${l.index} [${l.kind}]: max|err| ${err}`);
    }
    for (const t of new Set(outs.values())) if (t !== x) t.dispose();
    x.dispose();
    net.dispose();
  });
}

test("tree file: the engine's tables equal Darknet's read_tree (child as pjreddie sets it)", () => {
  const g = golden.tree;
  assert.is(small.n, g.n);
  assert.is(small.groups, g.groups);
  assert.equal([...small.parent], g.parent);
  assert.equal([...small.child], g.child);
  assert.equal([...small.group], g.group);
  assert.equal([...small.leaf], g.leaf);
  assert.equal([...small.groupOffset], g.group_offset);
  assert.equal([...small.groupSize], g.group_size);
});

for (const [name, c] of Object.entries(golden.softmax)) {
  test(`[softmax] tree= '${name}': forward, target (fill_hierarchy) and classifier cost vs Darknet`, async () => {
    const gpu = await getGpu();
    const net = build(`[net]\nwidth=1\nheight=1\nchannels=13\n\n[softmax]\ntree=small.tree\n${c.temperature !== 1 ? `temperature=${c.temperature}\n` : ''}\n[cost]\ntype=masked\n`, `softmax-${name}`);
    net.prepare(gpu, 'train');
    const x = Tensor.param(gpu, [c.batch, 13, 1, 1], c.input);
    const target = new Float32Array(c.batch * 13);
    c.labels.forEach((k, b) => target.set(hierarchyTarget(small, k), b * 13));
    // fill_hierarchy's SECRET_NUM (-1234) is NaN here
    assert.equal([...target].map((v) => (Number.isNaN(v) ? -1234 : v)), c.truth);
    const t = Tensor.from(gpu, [c.batch, 13, 1, 1], target);
    const tape = newTape();
    const { y, loss } = tape.record(() => {
      const y = net.forward(x, { mode: 'train', keep: [0] }).get(0)!;
      return { y, loss: sum(softmaxCrossEntropy(y, t)) };
    });
    const e = assertClose(await y.toArray(), c.output, { atol: 1e-7, rtol: 1e-5 }, 'softmax tree output');
    assertClose(await loss.toArray(), [c.cost], { atol: 1e-6, rtol: 1e-5 }, 'cost');
    tape.backward(loss);
    // Darknet's delta (t - y) is the negated gradient w.r.t. the softmax input, without the softmax's 1/temperature
    const g = await x.grad!.toArray();
    const d = assertClose(g.map((v) => -v * c.temperature), c.delta, { atol: 1e-6, rtol: 1e-5 }, 'delta');
    console.log(`  [softmax] tree ${name}: output max|err| ${e.toExponential(1)}, delta ${d.toExponential(1)}`);
    for (const v of [x, t, y, loss, x.grad!]) v.dispose();
    tape.dispose();
    net.dispose();
  });
}

for (const [name, c] of Object.entries(golden.region)) {
  const E = 5 + c.classes;
  const hw = c.w * c.h;
  const shape = [c.batch, c.n * E, c.h, c.w];

  test(`[region] '${name}': forward vs Darknet`, async () => {
    const gpu = await getGpu();
    const net = build(c.cfg, `region-${name}`);
    net.prepare(gpu, 'infer');
    const x = Tensor.from(gpu, shape, c.input);
    const y = net.forward(x, { keep: [0] }).get(0)!;
    // AlexeyAB leaves x, y raw in l.output (get_region_box applies logistic): the engine's forward applies it
    const want = c.output.map((v, i) => (Math.floor(i / hw) % E < 2 ? 1 / (1 + Math.exp(-v)) : v));
    const e = assertClose(await y.toArray(), want, { atol: 2e-7, rtol: 2e-6 }, 'region output');
    console.log(`  [region] ${name} forward: max|err| ${e.toExponential(1)}`);
    x.dispose();
    y.dispose();
    net.dispose();
  });

  if (c.detections.length) {
    test(`[region] '${name}': detections (tree walk, hier_thresh ${c.hier_thresh}) vs Darknet`, async () => {
      const gpu = await getGpu();
      const net = build(c.cfg, `region-${name}`);
      const { spec } = headFromLayer(net.layers[0] as Parameters<typeof headFromLayer>[0]);
      assert.ok(spec.tree, 'the spec carries the tree');
      spec.hierThresh = c.hier_thresh;
      const x = Tensor.from(gpu, shape, c.input);
      const dec = new HeadDecoder(gpu, [spec], { width: c.w * 32, height: c.h * 32 });
      const dets = await dec.detect([x], { thresh: c.thresh, withScores: true });
      assert.is(dets.length, c.detections.length, 'detection count');
      const ref = regionTreeDetectRef(c.input, shape, spec.anchors, small, c.thresh, c.hier_thresh);
      assert.is(ref.length, c.detections.length, 'float64 reference count');
      let err = 0;
      dets.forEach((d, k) => {
        const [b, row, j, obj, , bx, by, bw, bh] = c.detections[k];
        assert.equal([d.batch, d.index, d.classId], [b, row, j], `detection ${k}`);
        assert.equal([ref[k].batch, ref[k].row, ref[k].classId], [b, row, j], `reference detection ${k}`);
        err = Math.max(err, assertClose([d.objectness, d.score, d.box.x, d.box.y, d.box.w, d.box.h], [obj, obj, bx, by, bw, bh], { atol: 1e-6, rtol: 1e-5 }, `detection ${k}`));
        assert.is(d.scores!.filter((v) => v !== 0).length, 1);
        assert.is(d.scores![j], d.score);
      });
      console.log(`  [region] ${name}: ${dets.length} detections, classes ${[...new Set(dets.map((d) => d.classId))].sort((a, b) => a - b).join(',')}, max|err| ${err.toExponential(1)}`);
      dec.dispose();
      x.dispose();
      net.dispose();
    });
  }

  test(`[region] '${name}': loss deltas and cost vs Darknet and the float64 reference`, async () => {
    const gpu = await getGpu();
    const net = build(c.cfg, `region-${name}`);
    const loss = RegionLoss.fromNetwork(net);
    assert.equal(loss.headSources, [-1]);
    const cfg = loss.heads[0];
    const z = Tensor.from(gpu, shape, c.input);
    const truths = truthsOf(c);
    const out = loss.compute([z], truths, { seen: c.seen, keepGrads: true });
    const delta = await out.grads![0].toArray();
    const scale = maxAbs(c.delta);
    const e = assertClose(delta, c.delta, { atol: 2e-6 * scale, rtol: 1e-4 }, 'delta vs Darknet');
    const r = await out.read();
    assertClose([r.heads[0].aux0], [c.cost], { atol: 1e-5, rtol: 1e-5 }, 'cost vs Darknet');
    const ref = regionLossRef(c.input, shape, truths, { ...cfg, anchors: c.biases } as RegionRefConfig, c.seen);
    assertClose(delta, ref.delta, { atol: 1e-6 * scale, rtol: 1e-4 }, 'delta vs float64');
    assertClose([r.items.box, r.items.obj, r.items.cls, r.heads[0].aux1], [ref.box, ref.obj, ref.cls, ref.ignored], { atol: 1e-5, rtol: 1e-5 }, 'loss items vs float64');
    assertClose([r.loss], [ref.box + ref.obj + ref.cls], { atol: 1e-5, rtol: 1e-5 }, 'loss vs float64');
    console.log(`  [region] ${name} loss: delta max|err| ${e.toExponential(1)} (max|delta| ${scale.toFixed(3)}), cost ${r.heads[0].aux0.toFixed(5)} (Darknet ${c.cost}), ignored ${r.heads[0].aux1}, loss ${r.loss.toFixed(4)}`);
    out.dispose();
    z.dispose();
    net.dispose();
  });
}

test('[region] loss: the implied loss value has gradient -delta (finite differences), flat and tree classes', async () => {
  const gpu = await getGpu();
  for (const tree of [null, small]) {
    const C = tree ? 13 : 4;
    const A = 2;
    const H = 3;
    const W = 4;
    const shape = [2, A * (5 + C), H, W];
    const zv = randomArray(new Rng(tree ? 3 : 4), shape.reduce((a, b) => a * b, 1), -2, 2);
    // one truth per cell, rescore off (the objectness target would depend on z), no prior
    const truths: Truth[][] = [[{ x: 0.3, y: 0.2, w: 0.3, h: 0.4, cls: tree ? 9 : 1 }, { x: 0.8, y: 0.7, w: 0.5, h: 0.3, cls: tree ? 6 : 3 }], [{ x: 0.55, y: 0.5, w: 0.2, h: 0.6, cls: 2 }]];
    const cfg: RegionRefConfig = {
      classes: C, anchors: [0.9, 1.2, 2.0, 1.5], maxBoxes: 30, noobjectScale: 1, objectScale: 5, coordScale: 1, classScale: 1,
      thresh: 0.6, rescore: false, biasMatch: true, focal: false, tree, map: null,
    };
    const loss = new RegionLoss([{ ...cfg, num: A, anchors: [...cfg.anchors], tree, map: null }]);
    const z = Tensor.from(gpu, shape, zv);
    const out = loss.compute([z], truths, { seen: 20000, keepGrads: true });
    const delta = await out.grads![0].toArray();
    const ref = regionLossRef(zv, shape, truths, cfg, 20000);
    assertClose(delta, ref.delta, { atol: 1e-6, rtol: 1e-4 }, 'delta vs float64');
    const zs = Float64Array.from(zv);
    const idx = sampleIndices(zv.length, 60, 11);
    const f = () => {
      const r = regionLossRef(zs, shape, truths, cfg, 20000);
      return r.box + r.obj + r.cls;
    };
    const fd = finiteDiff(f, zs, idx, 1e-5);
    assertClose(idx.map((i) => -ref.delta[i]), fd, { atol: 1e-5, rtol: 1e-4 }, `${tree ? 'tree' : 'flat'}: -delta vs d loss / dz`);
    const r = await out.read();
    assertClose([r.loss], [ref.box + ref.obj + ref.cls], { atol: 1e-5, rtol: 1e-5 }, 'loss value');
    out.dispose();
    z.dispose();
  }
});

test('[region] loss: training refusals name the layer', () => {
  const base = '[net]\nwidth=2\nheight=2\nchannels=18\n\n[region]\nanchors=1,1\nclasses=13\ncoords=4\nnum=1\n';
  assert.throws(() => regionHeadConfig(build(`${base}softmax=0\n`, 'r0').layers[0] as never), /softmax=0 is not supported by the loss/);
  assert.throws(() => regionHeadConfig(build(`${base}softmax=1\nclassfix=1\n`, 'r1').layers[0] as never), /classfix=1/);
  const missing = build(`${base}softmax=1\ntree=nowhere/9k.tree\n`, 'r2');
  assert.match(missing.warnings.map((w) => w.message).join('\n'), /tree file 'nowhere\/9k.tree' was not found/);
  assert.throws(() => RegionLoss.fromNetwork(missing), /r2.cfg:\d+: \[region\] key 'tree': the tree file 'nowhere\/9k.tree' was not found .*; training needs it/);
  const loss = RegionLoss.fromNetwork(build(`${base}softmax=1\ntree=small.tree\nmap=small.map\n`, 'r3'));
  assert.throws(() => loss.compute([{ shape: [1, 18, 2, 2], gpu: null } as unknown as Tensor], [[{ x: 0.5, y: 0.5, w: 0.2, h: 0.2, cls: 7 }]]), /class 7 has no entry in the class map \(4 entries\)/);
});

test('a tiny YOLO9000-style network (conv, maxpool, conv, [region] tree=) trains through the trainer; the loss falls', async () => {
  const gpu = await getGpu();
  const cfg = `[net]\nbatch=4\nsubdivisions=1\nwidth=32\nheight=32\nchannels=3\nmomentum=0.9\ndecay=0.0005\nlearning_rate=0.02\nburn_in=3\npower=2\nmax_batches=100\npolicy=constant\n
[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n
[maxpool]\nsize=4\nstride=4\n
[convolutional]\nfilters=36\nsize=1\nstride=1\npad=1\nactivation=linear\n
[region]\nanchors=1,1, 2,2\nbias_match=1\nclasses=13\ncoords=4\nnum=2\nsoftmax=1\nrescore=1\nobject_scale=5\nnoobject_scale=1\nclass_scale=1\ncoord_scale=1\nthresh=.6\ntree=small.tree\nmap=small.map\n`;
  const net = build(cfg, 'tiny-9000');
  net.initWeights(1);
  const yl = lossFromNetwork(net, { kind: 'darknet' });
  assert.instance(yl, RegionLoss);
  const r = await runTrainer({ gpu, network: net, loader: new SyntheticLoader(8, 4), loss: yoloTrainLoss(yl), subdivisions: 1, epochs: 10 });
  const first = r.history[0].loss;
  const last = r.history.at(-1)!.loss;
  console.log(`  tiny [region] tree= network: loss ${first.toFixed(3)} -> ${last.toFixed(3)} over ${r.history.length} epochs`);
  assert.ok(last < first / 2, `loss ${first} -> ${last}`);
  assert.throws(() => lossFromNetwork(net, { kind: 'yolov5' }), /the yolov5 loss has no \[region\] form/);
  net.dispose();
});

test.run();
