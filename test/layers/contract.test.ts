/**
 * The Layer contract as the rest of the engine sees it: Network.heads() (the one list of detection heads),
 * Layer.parameters(mode) / Network.parameters(mode) (what the trainer, the optimizer, the EMA, checkpoints
 * and the bench use instead of layer internals), `kind` narrowing of Network.layers (AnyLayer), and a cfg
 * with [local] (locally connected, unshared weights) training: its parameters listed, the trainer updating them.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import type { LayerOf } from '../../src/darknet/registry.js';
import { paramChunking } from '../../src/layers/common.js';
import { runTrainer } from '../../src/train/trainer.js';
import { networkParams } from '../../src/train/params.js';
import type { BatchSource, TrainLoss } from '../../src/train/types.js';
import { Tensor, mse, sum } from '../../src/tensor/index.js';

const net = (text: string, file = 'c.cfg') => Network.build(parseCfg(text, file));

/** conv(BN), conv sharing its parameters (share_index), conv -> [yolo], route, conv -> [region]. */
const HEADS = `[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=3
size=3
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=3
size=3
pad=1
activation=leaky
share_index=0
[convolutional]
filters=12
size=1
activation=linear
[yolo]
mask=0,1
anchors=2,3, 4,5
classes=1
num=2
[route]
layers=-3
[convolutional]
filters=14
size=1
activation=linear
[region]
anchors=1,1, 2,2
classes=2
coords=4
num=2
`;

/** [connected](BN) -> [connected] -> [detection] (YOLOv1's tail). */
const FC = `[net]
width=2
height=2
channels=3
[connected]
batch_normalize=1
output=52
activation=leaky
[connected]
output=13
activation=linear
[detection]
classes=3
coords=4
side=1
num=2
softmax=1
`;

test('heads(): [yolo], [region], [detection] in layer order; outputLayers() follows it', () => {
  const a = net(HEADS);
  assert.equal(a.heads().map((l) => `${l.index}:${l.kind}`), ['3:yolo', '6:region']);
  assert.equal(a.outputLayers(), [3, 6]);
  assert.ok(a.layers.every((l) => l.head === a.heads().some((h) => h === l)));
  const b = net(FC);
  assert.equal(b.heads().map((l) => l.kind), ['detection']);
  const c = net(`[net]\nwidth=4\nheight=4\nchannels=1\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n[cost]\n`);
  assert.equal(c.heads(), []);
  assert.equal(c.outputLayers(), [0], 'no head: the last layer that is not [cost]');
});

test('layer.kind narrows Network.layers to the layer class (no casts)', () => {
  const b = net(FC);
  const l = b.layers[0];
  if (l.kind !== 'connected') throw new Error('expected [connected]');
  assert.is(l.outputsN, 52); // ConnectedLayer's own field, reachable after the narrowing
  assert.is(l.batchNormalize, true);
  const heads: LayerOf<'detection'>[] = b.heads().filter((h): h is LayerOf<'detection'> => h.kind === 'detection');
  assert.is(heads[0].options.side, 1);
});

test("parameters('train'): Tensor.param weights/biases/scales, BN buffers, .weights order; shared layers list none", async () => {
  const gpu = await getGpu();
  const a = net(HEADS);
  a.initWeights(2);
  assert.throws(() => a.parameters('train'), /not prepared for 'train'/);
  a.prepare(gpu, 'train');
  try {
    const ps = a.parameters('train');
    assert.equal(ps.map((p) => `${p.key}:${p.role}`), [
      '0.biases:bias', '0.scales:bn', '0.rolling_mean:buffer', '0.rolling_variance:buffer', '0.weights:weights',
      '2.biases:bias', '2.weights:weights',
      '5.biases:bias', '5.weights:weights',
    ]);
    for (const p of ps) {
      assert.is(p.tensor.requiresGrad, p.role !== 'buffer', p.key);
      assert.is(p.layer, a.layers[p.layer.index]);
      assert.is(p.tensor.size, p.layer.params.find((s) => s.name === p.name)!.count, p.key);
    }
    assert.equal(a.layers[1].parameters('train'), [], 'share_index: the owner (layer 0) lists them');
    assert.equal(ps.map((p) => p.key), a.layers.flatMap((l) => l.params.map((s) => `${l.index}.${s.name}`)), 'the .weights order');
    // the trainer's view: groups and decay from the roles
    assert.equal(networkParams(a).filter((p) => p.layer.index === 0).map((p) => `${p.group}:${p.decay}:${p.trainable}`), ['bias:false:true', 'bn:false:true', 'buffer:false:false', 'buffer:false:false', 'weights:true:true']);
    // a network rebuilt at another size (multi-scale) lists its owner's tensors
    assert.equal(a.resized(16, 16).parameters('train').map((p) => p.tensor), ps.map((p) => p.tensor));
  } finally {
    a.release();
  }
});

test("parameters('infer'): the folded constants; [connected] split by output rows lists each part", async () => {
  const gpu = await getGpu();
  const b = net(FC);
  b.initWeights(3);
  b.prepare(gpu, 'infer');
  try {
    assert.equal(b.parameters('infer').map((p) => `${p.key}:${p.role}:${p.tensor.shape.join('x')}`), ['0.biases:bias:52', '0.weights:weights:52x3x2x2', '1.biases:bias:13', '1.weights:weights:13x52x1x1']);
    assert.ok(b.parameters('infer').every((p) => !p.tensor.requiresGrad));
    assert.throws(() => b.parameters('train'), /not prepared for 'train'/);
  } finally {
    b.release();
  }
  paramChunking.maxBytes = 1000; // 52 rows of 12 floats: 20 rows per part
  try {
    b.prepare(gpu, 'infer');
    const parts = b.layers[0].parameters('infer');
    assert.equal(parts.map((p) => `${p.name}@${p.part}:${p.tensor.shape[0]}`), ['biases@0:20', 'weights@0:20', 'biases@20:20', 'weights@20:20', 'biases@40:12', 'weights@40:12']);
    assert.equal(b.parameters('infer').slice(0, 2).map((p) => p.key), ['0.biases@0', '0.weights@0']);
  } finally {
    paramChunking.maxBytes = Infinity;
    b.release();
  }
});

test("[local] trains: parameters('train') lists its biases and weights, the trainer updates them (through [crop] too)", async () => {
  const gpu = await getGpu();
  const n = net(`[net]
width=5
height=6
channels=1
[convolutional]
filters=2
size=1
activation=linear
[crop]
crop_width=4
crop_height=4
noadjust=1
[local]
filters=2
size=3
stride=1
pad=1
activation=linear
[connected]
output=4
activation=linear
`, 'v1-like.cfg');
  n.initWeights(1);
  assert.ok(n.layers.every((l) => l.trainingUnsupported() === null));
  n.prepare(gpu, 'train');
  const ps = n.parameters('train');
  assert.equal(ps.map((p) => `${p.key}:${p.role}:${p.tensor.shape.join('x')}`), [
    '0.biases:bias:2', '0.weights:weights:2x1x1x1',
    '2.biases:bias:32', '2.weights:weights:16x2x18',
    '3.biases:bias:4', '3.weights:weights:4x2x4x4',
  ]);
  assert.ok(ps.every((p) => p.tensor.requiresGrad));
  assert.equal(networkParams(n).filter((p) => p.layer.index === 2).map((p) => `${p.group}:${p.decay}:${p.trainable}`), ['bias:false:true', 'weights:true:true']);
  const copy = (i: number) => Object.fromEntries(Object.entries(n.layers[i].data!).map(([k, v]) => [k, Float32Array.from(v)]));
  const before = copy(2);
  const below = copy(0);
  // one SGD update from an MSE of the [connected] output against 0.5
  const images = Float32Array.from({ length: 2 * 30 }, (_, i) => (i % 7) / 7);
  const loader: BatchSource = { state: () => null, restore: () => {}, async *[Symbol.asyncIterator]() { yield { images, shape: [2, 1, 6, 5], truths: [[], []] }; } };
  const target = Tensor.from(gpu, [2, 4], new Float32Array(8).fill(0.5));
  const loss: TrainLoss = { compute: ([h]) => ({ loss: sum(mse(h, target)) }) };
  try {
    await runTrainer({ gpu, network: n, loader, loss, maxBatches: 1, optimizer: { kind: 'sgd', lr: 0.1 } });
    await n.pullParams();
    for (const k of ['biases', 'weights']) {
      const a = before[k];
      const b = n.layers[2].data![k];
      assert.ok(b.some((v, i) => v !== a[i]), `[local] ${k} were updated`);
      assert.ok(b.every(Number.isFinite), `[local] ${k} are finite`);
    }
    assert.ok(n.layers[0].data!.weights.some((v, i) => v !== below.weights[i]), 'the layer below [crop] and [local] was updated (their dx flows)');
  } finally {
    target.dispose();
    n.release();
  }
});

test.run();
