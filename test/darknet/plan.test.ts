/**
 * Inference planning in Network.forward: a [convolutional] whose only reader is the 2x2/2 [maxpool] after
 * it pools in its own epilogue (ForwardContext.fusedMaxpool, conv2dMaxpoolForward). The fused forward gives
 * the same head outputs bit for bit as the unfused one (every layer kept: nothing is fused), one dispatch
 * less per fused pair, and leaves alone a conv that another layer also reads and a stride-1 maxpool.
 */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { packageRoot } from '../../src/util/paths.js';
import { perturb } from '../helpers/perturb.js';

test('yolo-mini: conv + maxpool 2/2 fused in inference, heads bit-identical to the unfused forward', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'));
  net.initWeights(3);
  perturb(net, 4);
  net.prepare(gpu, 'infer');
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
  assert.is(nAll - nFused, 3, `three conv + maxpool pairs fused (${nAll} -> ${nFused} dispatches)`);
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

test.run();
