/**
 * [Gaussian_yolo] inside networks (as test/layers/layers.test.ts does for every kind): seeded weights, the
 * inference forward with every layer kept, each layer against its float64 reference (test/layers/reference.ts,
 * the Gaussian head's case: test/reference/gaussian_yolo.ts) from its own inputs; the layer's contract (a
 * head: Network.heads(), outputLayers, no parameters) and its train-mode forward on the tape.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs } from '../helpers/check.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { layerRef, type Val } from './reference.js';

const CFG = `[net]
width=16
height=12
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=26
size=1
activation=linear
[Gaussian_yolo]
mask=1,2
anchors=2,3, 4,5, 6,7
num=3
classes=4
scale_x_y=1.05
[route]
layers=0
[upsample]
stride=2
[convolutional]
filters=13
size=3
pad=1
activation=linear
[Gaussian_yolo]
mask=0
anchors=2,3, 4,5, 6,7
num=3
classes=4
`;

test('[Gaussian_yolo] heads in a network: every layer vs float64, heads(), outputLayers()', async () => {
  const gpu = await getGpu();
  const net = Network.build(parseCfg(CFG, 'gaussian.cfg'));
  assert.equal(net.layers.map((l) => l.kind), ['convolutional', 'convolutional', 'Gaussian_yolo', 'route', 'upsample', 'convolutional', 'Gaussian_yolo']);
  assert.equal(net.heads().map((l) => l.index), [2, 6]);
  assert.equal(net.outputLayers(), [2, 6]);
  assert.equal(net.layers[2].params, []);
  assert.is(net.layers[2].trainingUnsupported(), null);
  net.initWeights(5);
  const rng = new Rng(6);
  for (const l of net.layers) if (l.data?.biases) l.data.biases = randomArray(rng, l.data.biases.length, -2, 2);
  net.prepare(gpu, 'infer');
  const B = 2;
  const xv = randomArray(new Rng(7), B * 3 * 12 * 16, 0, 1);
  const x = Tensor.from(gpu, [B, 3, 12, 16], xv);
  const outs = net.forward(x, { keep: net.layers.map((l) => l.index) });
  const vals: Val[] = [];
  for (const l of net.layers) {
    const t = outs.get(l.index)!;
    assert.equal([...t.shape], [B, l.output.c, l.output.h, l.output.w], `layer ${l.index} shape`);
    vals.push({ data: await t.toArray(), shape: [...t.shape] });
  }
  for (const l of net.layers) {
    const ins = l.sources.map((j) => (j < 0 ? { data: xv, shape: [B, 3, 12, 16] } : vals[j]));
    const ref = layerRef(l, ins);
    let err = 0;
    for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(vals[l.index].data[i] - ref[i]));
    assert.ok(err <= 2e-5 * Math.max(maxAbs(ref), 1e-30), `layer ${l.index} [${l.kind}]: max|err| ${err}`);
  }
  for (const t of new Set(outs.values())) t.dispose();
  x.dispose();
  net.dispose();
});

test('[Gaussian_yolo] in train mode: the head output is recorded on the tape and its gradient reaches the convolutions', async () => {
  const gpu = await getGpu();
  const net = Network.build(parseCfg(CFG, 'gaussian.cfg'));
  net.initWeights(3);
  net.prepare(gpu, 'train');
  const x = Tensor.from(gpu, [1, 3, 12, 16], randomArray(new Rng(8), 3 * 12 * 16, 0, 1));
  const tape = newTape();
  const head = tape.record(() => {
    const outs = net.forward(x, { mode: 'train', keep: [2] });
    return outs.get(2)!;
  });
  tape.backward(head, Tensor.from(gpu, head.shape, new Float32Array(head.size).fill(1)));
  const w = net.parameters('train').find((p) => p.key === '1.weights');
  assert.ok(w, 'layer 1 weights');
  const g = await w!.tensor.grad!.toArray();
  assert.ok(maxAbs(g) > 0, 'a gradient through the head activation');
  tape.dispose();
  x.dispose();
  net.dispose();
});

test.run();
