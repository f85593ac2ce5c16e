/**
 * Every layer kind inside a built network: seeded weights, inference forward on the GPU with every layer's
 * output kept, and each layer checked against a float64 reference computed from its own (read back)
 * inputs and host parameters (BN unfolded in the reference, folded on the GPU). Also the 'train' mode
 * (BN with batch statistics, recorded on a tape) and network-level errors.
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
import { conv2dRef } from '../reference/conv2d.js';
import { bnTrainRef } from '../reference/batchnorm.js';
import { bnStatsRef } from '../reference/batchnorm.js';
import { act } from '../reference/activation.js';
import { paramChunking } from '../../src/layers/common.js';
import { perturb } from '../helpers/perturb.js';


async function checkEveryLayer(name: string, cfg: string, batch: number, expectKinds: string[]): Promise<void> {
  const gpu = await getGpu();
  const net = Network.build(parseCfg(cfg, `${name}.cfg`));
  assert.equal(net.layers.map((l) => l.kind), expectKinds);
  net.initWeights(5);
  perturb(net, 6);
  net.prepare(gpu, 'infer');
  const I = net.input;
  const xv = randomArray(new Rng(7), batch * I.c * I.h * I.w, 0, 1);
  const x = Tensor.from(gpu, [batch, I.c, I.h, I.w], xv);
  const all = net.layers.map((l) => l.index);
  const outs = net.forward(x, { keep: all });
  const vals: Val[] = [];
  for (const l of net.layers) {
    const t = outs.get(l.index)!;
    const o = l.output;
    assert.equal([...t.shape], [batch, o.c, o.h, o.w], `${name} layer ${l.index} ${l.kind} shape`);
    vals.push({ data: await t.toArray(), shape: [...t.shape] });
  }
  const report: string[] = [];
  for (const l of net.layers) {
    const ins = l.sources.map((j) => (j < 0 ? { data: xv, shape: [batch, I.c, I.h, I.w] } : vals[j]));
    const ref = layerRef(l, ins);
    const got = vals[l.index].data;
    let err = 0;
    for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
    const rel = err / Math.max(maxAbs(ref), 1e-30);
    report.push(`${l.kind}:${rel.toExponential(0)}`);
    assert.ok(rel <= 2e-5, `${name} layer ${l.index} [${l.kind}]: max|err| ${err.toExponential(3)} = ${rel.toExponential(3)} of max|ref|`);
  }
  console.log(`  ${name}: ${report.join(' ')}`);
  for (const t of new Set(outs.values())) if (t !== x) t.dispose();
  x.dispose();
  net.dispose();
}

test('YOLOv2-style: BN conv (leaky, mish), maxpool, route, [reorg] passthrough, [region] softmax', async () => {
  await checkEveryLayer('v2', `[net]
width=12
height=12
channels=3
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
batch_normalize=1
filters=4
size=3
stride=2
pad=1
activation=mish
[route]
layers=-2
[reorg]
stride=2
[route]
layers=-1,-3
[convolutional]
filters=16
size=1
activation=linear
[region]
anchors=1,1.5, 2,2.5
classes=3
coords=4
num=2
softmax=1
`, 2, ['convolutional', 'maxpool', 'convolutional', 'route', 'reorg', 'route', 'convolutional', 'region']);
});

const V1 = `[net]
width=9
height=8
channels=3
[crop]
crop_width=7
crop_height=6
flip=0
[convolutional]
filters=4
size=3
stride=1
pad=1
activation=relu
[local]
size=3
stride=1
pad=1
filters=3
activation=leaky
[dropout]
probability=.5
[connected]
output=12
batch_normalize=1
activation=leaky
[connected]
output=52
activation=linear
[detection]
classes=3
coords=4
rescore=1
side=2
num=2
softmax=1
sqrt=1
`;
const V1_KINDS = ['crop', 'convolutional', 'local', 'dropout', 'connected', 'connected', 'detection'];

test('YOLOv1-style: [crop], [local], [dropout], BN [connected], [connected], [detection] softmax', async () => {
  await checkEveryLayer('v1', V1, 2, V1_KINDS);
});

test('weights above the binding limit run in chunks ([local] by filters, [connected] by outputs)', async () => {
  paramChunking.maxBytes = 1000; // local: 3 filters of 42 locations x 36 -> 1 filter per chunk; connected 52 x 12 -> 20 rows
  try {
    await checkEveryLayer('v1-chunked', V1, 2, V1_KINDS);
  } finally {
    paramChunking.maxBytes = Infinity;
  }
});

test('attention and classifier: scale_channels (both), sam, swish/logistic, groups, dilation, share_index, stride_x, shortcuts, upsample, softmax, cost', async () => {
  await checkEveryLayer('att', `[net]
width=10
height=9
channels=3
[convolutional]
batch_normalize=1
filters=6
size=3
stride=1
pad=1
activation=swish
[avgpool]
[convolutional]
filters=6
size=1
activation=logistic
[scale_channels]
from=-3
[convolutional]
batch_normalize=1
filters=6
size=3
pad=1
groups=3
activation=logistic
[sam]
from=-2
[convolutional]
filters=1
size=1
activation=logistic
[scale_channels]
from=-3
scale_wh=1
[convolutional]
batch_normalize=1
filters=6
size=3
pad=1
dilation=2
activation=leaky
[convolutional]
share_index=-1
batch_normalize=1
filters=6
size=3
pad=1
dilation=2
activation=leaky
[upsample]
stride=2
[maxpool]
size=3
stride=2
[shortcut]
from=-3
activation=leaky
[shortcut]
from=-3
activation=linear
[convolutional]
filters=4
size=3
stride_x=2
stride_y=1
pad=1
activation=relu
[avgpool]
[softmax]
groups=2
temperature=2
[cost]
`, 2, ['convolutional', 'avgpool', 'convolutional', 'scale_channels', 'convolutional', 'sam', 'convolutional', 'scale_channels', 'convolutional', 'convolutional', 'upsample', 'maxpool', 'shortcut', 'shortcut', 'convolutional', 'avgpool', 'softmax', 'cost']);
});

test('[local_avgpool] (3x3/1 with padding, 1x1/1) and the relu6 / ramp activations (conv epilogue, BN, shortcut)', async () => {
  await checkEveryLayer('localavg', `[net]
width=9
height=7
channels=3
[convolutional]
batch_normalize=1
filters=5
size=3
pad=1
activation=relu6
[local_avgpool]
size=3
stride=1
[convolutional]
filters=5
size=1
activation=ramp
[local_avgpool]
size=1
stride=1
[shortcut]
from=-3
activation=relu6
[local_avgpool]
size=2
stride=2
`, 2, ['convolutional', 'local_avgpool', 'convolutional', 'local_avgpool', 'shortcut', 'local_avgpool']);
});

test('YOLOv4/v7-style heads: [yolo] scale_x_y, new_coords, route groups, [reorg3d], downsample', async () => {
  await checkEveryLayer('heads', `[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=mish
[route]
layers=-1
groups=2
group_id=1
[reorg3d]
stride=2
[convolutional]
filters=14
size=1
activation=logistic
[yolo]
mask=0,1
anchors=1,2, 3,4, 5,6
num=3
classes=2
new_coords=1
scale_x_y=2.0
[route]
layers=0
[upsample]
stride=-2
scale=0.5
[convolutional]
filters=14
size=1
activation=linear
[yolo]
mask=1,2
anchors=1,2, 3,4, 5,6
num=3
classes=2
scale_x_y=1.1
`, 1, ['convolutional', 'route', 'reorg3d', 'convolutional', 'yolo', 'route', 'upsample', 'convolutional', 'yolo']);
});

test('contrastive: [yolo] embedding_layer, [route] to the embeddings, [contrastive] (identity at inference)', async () => {
  await checkEveryLayer('contrastive', `[net]
width=8
height=6
channels=3
[convolutional]
filters=6
size=3
pad=1
activation=leaky
[convolutional]
filters=8
size=1
activation=linear
[route]
layers=-2
[convolutional]
filters=14
size=1
activation=linear
[yolo]
mask=0,1
anchors=1,2, 3,4
num=2
classes=2
embedding_layer=-4
[route]
layers=-5
[contrastive]
yolo_layer=-2
temperature=0.5
`, 2, ['convolutional', 'convolutional', 'route', 'convolutional', 'yolo', 'route', 'contrastive']);
});

test("train mode: BN with batch statistics on the tape, gradients reach every parameter, running statistics updated", async () => {
  const gpu = await getGpu();
  const cfg = `[net]
width=6
height=5
channels=2
[convolutional]
batch_normalize=1
filters=3
size=3
pad=1
activation=leaky
[convolutional]
filters=2
size=1
activation=linear
`;
  const net = Network.build(parseCfg(cfg, 't.cfg'));
  net.initWeights(3);
  perturb(net, 4);
  const c0 = net.layers[0];
  const d = c0.data!;
  const before = { mean: Float64Array.from(d.rolling_mean), variance: Float64Array.from(d.rolling_variance) };
  const wCopy = Float32Array.from(d.weights);
  net.prepare(gpu, 'train');
  const xv = randomArray(new Rng(8), 2 * 2 * 5 * 6, -1, 1);
  const x = Tensor.from(gpu, [2, 2, 5, 6], xv);
  const tape = newTape();
  const y = tape.record(() => net.forward(x, { mode: 'train', keep: [0] }).get(0)!);
  // reference: conv (no bias), Darknet training BN (unbiased variance), leaky
  const conv = conv2dRef(xv, [2, 2, 5, 6], wCopy, [3, 2, 3, 3], null, { pad: 1 });
  const bn = bnTrainRef(conv.y, conv.shape, d.scales, d.biases, 'darknet');
  const ref = bn.map((v) => act(v, 'leaky'));
  const got = await y.toArray();
  let err = 0;
  for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
  assert.ok(err <= 1e-5 * maxAbs(ref), `train-mode conv+BN: ${err}`);
  tape.backward(y);
  await net.pullParams();
  const stats = bnStatsRef(conv.y, conv.shape);
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(d.rolling_mean[c] - (0.99 * before.mean[c] + 0.01 * stats.mean[c])) < 1e-6, 'rolling mean');
    assert.ok(Math.abs(d.rolling_variance[c] - (0.99 * before.variance[c] + 0.01 * stats.varUnbiased[c])) < 1e-6, 'rolling variance');
  }
  assert.equal([...d.weights], [...wCopy], 'forward/backward alone do not change the weights');
  y.dispose();
  tape.dispose();
  x.dispose();
  net.release();
  assert.throws(() => net.forward(Tensor.from(gpu, [1, 2, 5, 6], new Float32Array(60))), /not prepared for 'infer'/);
});

test('network errors: unprepared, wrong input shape, no weights', async () => {
  const gpu = await getGpu();
  const net = Network.build(parseCfg('[net]\nwidth=4\nheight=4\nchannels=1\n[convolutional]\nfilters=2\nactivation=linear\n', 'e.cfg'));
  assert.throws(() => net.prepare(gpu), /e\.cfg: layer 0 \[convolutional\] has no parameters yet: load \.weights or call initWeights\(\) before prepare\(\)/);
  net.initWeights();
  net.prepare(gpu);
  const x = Tensor.from(gpu, [1, 1, 4, 5], new Float32Array(20));
  assert.throws(() => net.forward(x), /input #\d+ \[1, 1, 4, 5\] does not match the network input \[B, 1, 4, 4\]/);
  x.dispose();
  net.dispose();
});

test.run();
