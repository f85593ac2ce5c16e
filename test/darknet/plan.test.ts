/**
 * Planning in Network.forward: a [convolutional] whose only reader is the 2x2/2 [maxpool] after it applies
 * the pool itself (ForwardContext.fusedMaxpool): at inference in its conv epilogue (conv2dMaxpoolForward), in
 * training in its batchnorm pass (batchnormMaxpool). The fused forward gives the same head outputs (and in
 * training the same loss and gradients) bit for bit as the unfused one (kept layers are not fused), one
 * dispatch less per fused pair, and leaves alone a conv that another layer also reads and a stride-1 maxpool.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Network } from '../../src/darknet/network.js';
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { packageRoot } from '../../src/util/paths.js';
import { perturb } from '../helpers/perturb.js';
import { sumSquaresLoss } from '../../src/perf/network.js';
import { networkParams } from '../../src/train/params.js';
import { chooseConvAlgo, convGeom } from '../../src/tensor/ops/conv2d.js';
import type { ConvolutionalLayer } from '../../src/layers/convolutional.js';

/** yolo-mini with seeded, perturbed weights, prepared for `mode`. */
function miniNet(gpu: Gpu, mode: 'infer' | 'train'): Network {
  const net = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'));
  net.initWeights(3);
  perturb(net, 4);
  net.prepare(gpu, mode);
  return net;
}

test('yolo-mini: conv + maxpool 2/2 fused in inference, heads bit-identical to the unfused forward', async () => {
  const gpu = await getGpu();
  const net = miniNet(gpu, 'infer');
  const kinds = net.layers.map((l) => l.kind);
  // layers 0, 2, 4 feed only their 2x2/2 maxpool; 6 also feeds route 17; 8 feeds a stride-1 maxpool
  assert.equal(kinds.slice(0, 10), ['convolutional', 'maxpool', 'convolutional', 'maxpool', 'convolutional', 'maxpool', 'convolutional', 'maxpool', 'convolutional', 'maxpool']);
  const I = net.input;
  const x = Tensor.from(gpu, [2, I.c, I.h, I.w], randomArray(new Rng(5), 2 * I.c * I.h * I.w, 0, 1));
  const heads = net.outputLayers();

  await gpu.sync();
  let d0 = gpu.dispatches;
  const fused = net.forward(x);
  const nFused = gpu.dispatches - d0;
  d0 = gpu.dispatches;
  const all = net.forward(x, { keep: net.layers.map((l) => l.index) });
  const nAll = gpu.dispatches - d0;
  // the epilogue pools where the forward runs the tile kernel: lavapipe and SwiftShader, not GL
  const tiled = [0, 2, 4].filter((i) => {
    const l = net.layers[i] as ConvolutionalLayer;
    return chooseConvAlgo(gpu.info.kind, convGeom([2, l.input.c, l.input.h, l.input.w], [l.filters, l.input.c, l.size, l.size], l.geom())) === 'tile';
  }).length;
  assert.is(tiled, gpu.info.kind === 'llvmpipe' ? 0 : 3);
  assert.is(nAll - nFused, tiled, `${tiled} conv + maxpool pairs fused (${nAll} -> ${nFused} dispatches)`);
  for (const h of heads) {
    const a = await fused.get(h)!.toArray();
    const b = await all.get(h)!.toArray();
    assert.equal(a, b, `head ${h}: fused and unfused forward bit-identical`);
  }
  // keeping a conv's output keeps it unfused: that conv's output and its pool both exist
  const kept = net.forward(x, { keep: [2, 3] });
  assert.equal(await kept.get(3)!.toArray(), await all.get(3)!.toArray(), 'the pool after a kept conv');
  assert.equal([...kept.get(2)!.shape], [...all.get(2)!.shape]);
  for (const m of [fused, all, kept]) for (const t of new Set(m.values())) if (t !== x) t.dispose();

  // not under a recording tape (the fused op records nothing): the same dispatches as unfused
  const tape = newTape();
  d0 = gpu.dispatches;
  const taped = tape.record(() => net.forward(x));
  assert.is(gpu.dispatches - d0, nAll, 'no fusion while a tape records');
  for (const t of new Set(taped.values())) t.dispose();
  tape.dispose();
  x.dispose();
  net.release();
});

test('yolo-mini training: conv + batchnorm + maxpool 2/2 in one batchnorm pass, loss and gradients bit-identical', async () => {
  const gpu = await getGpu();
  const net = miniNet(gpu, 'train');
  const loss = sumSquaresLoss(net);
  const heads = loss.headSources!;
  const params = networkParams(net).filter((p) => p.trainable);
  const I = net.input;
  const x = Tensor.from(gpu, [2, I.c, I.h, I.w], randomArray(new Rng(6), 2 * I.c * I.h * I.w, 0, 1));
  // one forward + backward; `keep` layers are not fused
  const step = async (keep: number[]) => {
    const tape = newTape();
    await gpu.sync();
    const d0 = gpu.dispatches;
    const l = tape.record(() => {
      const outs = net.forward(x, { mode: 'train', keep: [...heads, ...keep] });
      return loss.compute(heads.map((i) => outs.get(i)!), [], {} as never).loss;
    });
    const forward = gpu.dispatches - d0;
    tape.backward(l);
    const value = (await l.toArray())[0];
    const grads = await Promise.all(params.map((p) => p.tensor.grad!.toArray()));
    for (const p of params) {
      p.tensor.grad!.dispose();
      p.tensor.grad = null;
    }
    l.dispose();
    tape.dispose();
    return { value, grads, forward };
  };
  const fused = await step([]);
  const unfused = await step([0, 2, 4]);
  assert.is(unfused.forward - fused.forward, 3, `three conv + batchnorm + maxpool triples fused (${unfused.forward} -> ${fused.forward} forward dispatches)`);
  assert.is(fused.value, unfused.value, 'the same loss');
  params.forEach((p, k) => assert.equal(fused.grads[k], unfused.grads[k], `${p.key}: the same gradient`));
  x.dispose();
  net.release();
});

test('a conv before a [maxpool] the epilogue cannot take (AlexNet: size 3, stride 2, padding 0) runs unfused, infer and train', async () => {
  // fusableMaxpool probed the pool on a 2x2 map and threw for such a window ("input 2x2 is smaller than the
  // window"), so alexnet.cfg's forward failed at any size
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-'));
  const file = path.join(dir, 'pool3.cfg');
  fs.writeFileSync(file, '[net]\nwidth=17\nheight=17\nchannels=3\n\n[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nbatch_normalize=1\nactivation=leaky\n\n[maxpool]\nsize=3\nstride=2\npadding=0\n\n[convolutional]\nfilters=2\nsize=1\nstride=1\nactivation=linear\n');
  try {
    for (const mode of ['infer', 'train'] as const) {
      const net = Network.fromFile(file);
      net.initWeights(2);
      net.prepare(gpu, mode);
      const x = Tensor.from(gpu, [2, 3, 17, 17], randomArray(new Rng(6), 2 * 3 * 17 * 17, 0, 1));
      const tape = newTape();
      const run = (keep: number[]) => (mode === 'train' ? tape.record(() => net.forward(x, { mode, keep })) : net.forward(x, { mode, keep }));
      const plain = run([]);
      const kept = run([0, 1]);
      assert.equal([...plain.get(2)!.shape], [2, 2, 8, 8]);
      assert.equal(await plain.get(2)!.toArray(), await kept.get(2)!.toArray(), `${mode}: the same output as with every layer kept`);
      if (mode === 'infer') for (const t of new Set([...plain.values(), ...kept.values()])) t.dispose();
      tape.dispose();
      x.dispose();
      net.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
