/**
 * Winograd in a network (src/tensor/ops/conv2d_winograd.ts, ConvolutionalLayer): inference at precision 'auto'
 * runs the 3x3 stride-1 convs useWinograd picks through it, with the 2x2/2 maxpool after them in its epilogue;
 * 'f32', training and a recording tape keep the direct kernels. Needs no ../shared (test/darknet/opencv.test.ts
 * checks whole Winograd networks against OpenCV when it is there).
 */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs } from '../helpers/check.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { newTape } from '../../src/tensor/index.js';
import { pickWinograd } from '../helpers/winograd.js';
import { tuneTable } from '../../src/gpu/tune.js';
import { packageRoot } from '../../src/util/paths.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { fixedSubgroupSize } from '../../src/tensor/ops/matmul.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const MINI = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');

/** The forward's outputs (heads' convs kept), whether it dispatches Winograd kernels (a dry run says) and its dispatch count. */
async function run(net: Network, x: Tensor, feeds: number[]): Promise<{ outs: Map<number, Float32Array>; winograd: boolean; dispatches: number }> {
  const gpu = x.gpu;
  const kernels = gpu.collectKernels(() => {
    for (const t of new Set(net.forward(x, { keep: feeds }).values())) t.dispose();
  });
  await gpu.sync();
  const d0 = gpu.dispatches;
  const o = net.forward(x, { keep: feeds });
  const dispatches = gpu.dispatches - d0;
  const outs = new Map<number, Float32Array>();
  for (const [k, t] of o) outs.set(k, await t.toArray());
  for (const t of new Set(o.values())) t.dispose();
  return { outs, winograd: kernels.some((k) => k.file === 'conv2d_winograd'), dispatches };
}

test('yolo-mini at 64x64, batch 2: precision auto runs the picked convs through Winograd (pool fused), within 1e-5 of f32; f32 and a tape do not; a dry run first changes nothing; a resized network shares the transformed weights of each tile', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(MINI, { width: 64, height: 64, batch: 2 });
  net.initWeights(5);
  const picked = pickWinograd(net, gpu);
  try {
    // layers 2 (8 -> 16), 4 (16 -> 32), 6 (32 -> 64), 8 (64 -> 128), 11 (64 -> 128) and 16 (96 -> 64 after the route)
    const list = (p: typeof picked) => p.map((e) => `${e.index} (F(${e.tile}x${e.tile}))`).join(', ');
    assert.ok(picked.length >= 4, `Winograd-able convs: ${list(picked)}`);
    // both tiles: the small maps (8x8 and below) F(2x2), the others F(4x4)
    assert.ok(picked.some((e) => e.tile === 2) && picked.some((e) => e.tile === 4), `tiles: ${list(picked)}`);
    const feeds = net.heads().map((l) => l.sources[0]);
    const x = Tensor.from(gpu, [2, 3, 64, 64], randomArray(new Rng(3), 2 * 3 * 64 * 64, 0, 1));
    net.prepare(gpu, 'infer', { precision: 'f32' });
    const f32 = await run(net, x, feeds);
    assert.not.ok(f32.winograd, 'precision f32: the direct kernels');
    net.prepare(gpu, 'infer', { precision: 'auto' });
    // Network.precompile's dry run first: nothing it made may be kept (the weight transform did not run)
    await net.precompile(gpu, { batch: 2, keep: feeds });
    const auto = await run(net, x, feeds);
    assert.ok(auto.winograd, 'precision auto: the picked convs through Winograd');
    for (const [k, v] of f32.outs) {
      const scale = maxAbs(v);
      assertClose(auto.outs.get(k)!, v, { atol: 1e-5 * scale, rtol: 0 }, `layer ${k} Winograd vs direct`);
    }
    const again = await run(net, x, feeds);
    assert.is(auto.dispatches - again.dispatches, picked.length, 'the transformed weights are made once per conv and kept');
    for (const [k, v] of auto.outs) assert.ok(again.outs.get(k)!.every((e, i) => Object.is(e, v[i])), `layer ${k}: the same bits again`);
    // a recording tape (gradients through an inference forward): the direct kernels, which it can record
    const tape = newTape();
    const kernels = gpu.collectKernels(() => {
      const taped = tape.record(() => net.forward(x, { keep: feeds }));
      for (const t of new Set(taped.values())) t.dispose();
    });
    assert.not.ok(kernels.some((k) => k.file === 'conv2d_winograd'), 'no Winograd under a tape');
    tape.dispose();
    x.dispose();
    // a resized network (the same weights at another size) uses the owner's transformed weights: made again only
    // for a conv whose tile differs at the new size (kept beside the other tile's), then kept
    const v = net.resized(96, 96);
    const vPicked = pickWinograd(v, gpu);
    assert.ok(vPicked.length >= picked.length, `resized: ${list(vPicked)}`);
    const made = vPicked.filter((e) => !picked.some((p) => p.index === e.index && p.tile === e.tile)).length;
    const xv = Tensor.from(gpu, [2, 3, 96, 96], randomArray(new Rng(4), 2 * 3 * 96 * 96, 0, 1));
    const vFeeds = v.heads().map((l) => l.sources[0]);
    const v1 = await run(v, xv, vFeeds);
    const v2 = await run(v, xv, vFeeds);
    assert.ok(v1.winograd);
    assert.ok(made > 0 && made < vPicked.length, `convs with another tile at 96x96: ${made} of ${vPicked.length}`);
    assert.is(v1.dispatches - v2.dispatches, made, 'the owner kept the other transforms, and keeps the new ones');
    // back at the first size: every transform is there
    const xb = Tensor.from(gpu, [2, 3, 64, 64], randomArray(new Rng(3), 2 * 3 * 64 * 64, 0, 1));
    const back = await run(net, xb, feeds);
    xb.dispose();
    assert.is(back.dispatches, again.dispatches, 'both tiles kept side by side');
    xv.dispose();
  } finally {
    net.dispose();
    tuneTable(gpu).clear();
  }
});


// The untuned rule looks at one image (winogradPlan): an image gets the same kernels, so the same bits, in a
// forward of any batch size. F(4x4): a conv of 64 -> 128 channels at 24x24 (42.5M multiply-adds per image)
// takes Winograd at batch 1 already; 128 -> 128 at 12x12 (21M per image) at no batch size (a rule counting the
// batch would take it at batch 3: 64M). F(2x2): a 256 -> 256 conv on an 8x8 map (37.7M per image; F(2x2) from
// 2.5e7), where a rule counting the batch would take F(4x4) at batch 3 (12 tiles).
const PER_IMAGE = [
  {
    what: 'F(4x4)', C: 64, S: 24, out: 32 * 12 * 12,
    layers: ['[convolutional]', 'batch_normalize=1', 'filters=128', 'size=3', 'stride=1', 'pad=1', 'activation=leaky', '',
      '[maxpool]', 'size=2', 'stride=2', '',
      '[convolutional]', 'batch_normalize=1', 'filters=128', 'size=3', 'stride=1', 'pad=1', 'activation=leaky', '',
      '[convolutional]', 'filters=32', 'size=3', 'stride=1', 'pad=1', 'activation=linear', ''],
  },
  {
    what: 'F(2x2) on an 8x8 map', C: 256, S: 8, out: 256 * 8 * 8,
    layers: ['[convolutional]', 'batch_normalize=1', 'filters=256', 'size=3', 'stride=1', 'pad=1', 'activation=leaky', ''],
  },
];
for (const c of PER_IMAGE) {
  test(`precision auto, untuned, ${c.what}: the Winograd rule is per image, so an image gets the same bits at batch 1 and batch 3`, async () => {
    const gpu = await getGpu();
    tuneTable(gpu).clear();
    const lavapipeLike = gpu.info.kind !== 'gpu' && fixedSubgroupSize(gpu) === 8;
    const cfg = ['[net]', `width=${c.S}`, `height=${c.S}`, `channels=${c.C}`, '', ...c.layers].join('\n');
    const outs: Float32Array[] = [];
    const img = randomArray(new Rng(8), c.C * c.S * c.S, -1, 1);
    for (const B of [1, 3]) {
      const net = Network.build(parseCfg(cfg, 'per-image.cfg'), { batch: B });
      net.initWeights(9);
      net.prepare(gpu, 'infer', { precision: 'auto' });
      // the image first, then other images
      const data = new Float32Array(B * img.length);
      data.set(img);
      data.set(randomArray(new Rng(10), (B - 1) * img.length, -1, 1), img.length);
      const x = Tensor.from(gpu, [B, c.C, c.S, c.S], data);
      const last = net.layers.length - 1;
      const r = await run(net, x, [last]);
      // the untuned rule takes Winograd on lavapipe only (the 8-lane subgroup matmul); elsewhere every conv is direct
      assert.is(r.winograd, lavapipeLike, `batch ${B}: the first conv through Winograd: ${lavapipeLike}`);
      outs.push(r.outs.get(last)!.subarray(0, c.out));
      x.dispose();
      net.dispose();
    }
    assert.ok(outs[1].every((v, i) => Object.is(v, outs[0][i])), 'the image\'s outputs: the same bits in a batch of 3 as alone');
  });
}

test.run();
