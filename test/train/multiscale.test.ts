/**
 * Multi-scale training (Darknet `random`): Network.resized shares the parameters of the network it comes
 * from, and `train` with multi-scale runs mini-batches of several sizes on one set of parameters.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { loadWeights } from '../../src/darknet/weights.js';
import { generateSynth } from '../../src/data/synth.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { runTrain } from '../../src/cli/train.js';
import { packageRoot } from '../../src/util/paths.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-multiscale-'));
const cfg = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');

async function headValues(net: Network, x: Tensor): Promise<Float32Array[]> {
  const outs = net.forward(x);
  const vals = await Promise.all([...outs.values()].map((t) => t.toArray()));
  for (const t of outs.values()) t.dispose();
  return vals;
}

test('Network.resized: cached per size, no parameters of its own, computes what a network built at that size with the same weights computes', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(cfg, { width: 64, height: 64 });
  net.initWeights(3);
  assert.is(net.resized(64, 64), net);
  const v = net.resized(96, 96);
  assert.is(net.resized(96, 96), v, 'cached');
  assert.is(v.resized(64, 64), net, 'a variant resizes through its owner');
  assert.equal([v.input.w, v.input.h], [96, 96]);
  assert.is(v.paramCount, 0);
  const fresh = Network.fromFile(cfg, { width: 96, height: 96 });
  fresh.initWeights(3);
  net.prepare(gpu, 'infer');
  fresh.prepare(gpu, 'infer');
  const x = Tensor.from(gpu, [1, 3, 96, 96], Float32Array.from({ length: 3 * 96 * 96 }, (_, i) => ((i * 31) % 97) / 97));
  try {
    const a = await headValues(v, x);
    const b = await headValues(fresh, x);
    a.forEach((t, i) => assertClose(t, b[i], { atol: 0, rtol: 0 }, `head ${i}`));
    // disposing a variant frees nothing of the owner
    v.dispose();
    const again = await headValues(net.resized(96, 96), x);
    again.forEach((t, i) => assertClose(t, b[i], { atol: 0, rtol: 0 }, `head ${i} after variant dispose`));
  } finally {
    x.dispose();
    net.dispose();
    fresh.dispose();
  }
});

test('Network.resized refuses layers whose parameters depend on the input size', () => {
  const text = '[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n\n[connected]\noutput=10\nactivation=linear\n';
  const net = Network.build(parseCfg(text, 'fc.cfg'));
  assert.throws(() => net.resized(64, 64), /layer 1 \[connected\].*tied to the input size/);
});

test('train --multi-scale: sizes change every 10 updates on one set of parameters; the run is exact on resume', async () => {
  const gpu = await getGpu();
  const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 4, valCount: 2, size: 64, seed: 3 });
  // yolo-mini with random=1 and a long max_batches (Darknet uses the largest size for the last 100 batches)
  const msCfg = path.join(root, 'ms.cfg');
  fs.writeFileSync(msCfg, fs.readFileSync(cfg, 'utf8').replace(/^random=0$/gm, 'random=1').replace(/^max_batches=\d+$/m, 'max_batches=1000'));
  const lines: string[] = [];
  const base = { cfg: msCfg, data: synth.data, img: 64, batch: 2, subdivisions: 1, workers: 0, valEvery: 0, out: path.join(root, 'runs'), progress: 'lines' as const, logEvery: 1, gpu };
  // 4 images / batch 2: 2 updates per epoch; 6 epochs = 12 updates (the size changes at update 10)
  const r = await runTrain({ ...base, epochs: 6, name: 'ms', log: (l) => lines.push(l) });
  assert.is(r.iteration, 12);
  const sizesLine = lines.find((l) => l.startsWith('multi-scale: input '));
  assert.ok(sizesLine, lines.slice(0, 8).join('\n'));
  const sizes = sizesLine!.replace('multi-scale: input ', '').split(' px')[0].split(', ').map(Number);
  assert.ok(sizes.length >= 2 && sizes.every((s) => s % 32 === 0), sizesLine);
  assert.is(Math.max(...sizes), 128, 'Darknet: round(1.4 * 64 / 32 + 1) * 32');
  const losses = lines.filter((l) => /^epoch .* iter \d+ {2}loss/.test(l)).map((l) => Number(/loss ([\d.e+-]+)/.exec(l)![1]));
  assert.is(losses.length, 12);
  assert.ok(losses.every(Number.isFinite));
  // the weights file is the one network's parameters, loadable at the cfg size
  const w = Network.fromFile(msCfg, { width: 64, height: 64 });
  loadWeights(w, path.join(r.runDir, 'weights', 'final.weights'));
  assert.ok(w.hasWeights);

  // 3 epochs + resume to 6 gives the same weights (sizes are a function of the update index)
  const a = await runTrain({ ...base, epochs: 3, name: 'ms-a', log: () => {} });
  const b = await runTrain({ ...base, resume: a.runDir, epochs: 6, cfg: undefined, log: () => {} });
  assert.is(b.iteration, 12);
  const straight = fs.readFileSync(path.join(r.runDir, 'weights', 'final.weights'));
  const resumed = fs.readFileSync(path.join(b.runDir, 'weights', 'final.weights'));
  assert.ok(straight.equals(resumed), 'bitwise identical weights');
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
