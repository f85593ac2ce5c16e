/**
 * The tape end to end on the GPU: a small student network (conv3x3-BN-leaky-maxpool-conv3x3) learns to
 * imitate a fixed random teacher network on random images with SGD; the loss must fall 4x in 20 steps and
 * the asynchronous loss readback must log in step order. (It was the first bundled demo; it lives with the
 * tests now, the CLI's `demo` is the main job in src/cli/demo.ts.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Gpu } from '../../src/gpu/device.js';
import { Tensor, newTape, activation, sub } from '../../src/tensor/index.js';
import { conv2d } from '../../src/tensor/ops/conv2d.js';
import { batchnorm } from '../../src/tensor/ops/batchnorm.js';
import { maxpool } from '../../src/tensor/ops/pool.js';
import { sumSquares } from '../../src/tensor/ops/reduce.js';
import { SGD } from '../../src/train/optim.js';
import { Rng, randomArray } from '../../src/util/rng.js';

interface DemoResult {
  adapter: string;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  msPerStep: number;
}

function heInit(rng: Rng, shape: number[]): Float32Array {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const s = Math.sqrt(2 / fanIn);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * s);
}

async function tapeDemo(opts: { steps?: number; log?: (l: string) => void } = {}): Promise<DemoResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const steps = opts.steps ?? 60;
  const gpu = await Gpu.create({ log });
  try {
    const rng = new Rng(42);
    const [B, C, H, W] = [4, 3, 32, 32];
    const x = Tensor.from(gpu, [B, C, H, W], randomArray(rng, B * C * H * W, 0, 1), 'images');

    // the teacher: fixed random weights, no tape
    const t1 = Tensor.from(gpu, [8, 3, 3, 3], heInit(rng, [8, 3, 3, 3]));
    const t2 = Tensor.from(gpu, [4, 8, 3, 3], heInit(rng, [4, 8, 3, 3]));
    const target = conv2d(maxpool(conv2d(x, t1, null, { pad: 1 }, { act: 'leaky' }), { size: 2, stride: 2 }), t2, null, { pad: 1 });

    // the student
    const w1 = Tensor.param(gpu, [8, 3, 3, 3], heInit(rng, [8, 3, 3, 3]), 'conv1.weights');
    const g1 = Tensor.param(gpu, [8], new Float32Array(8).fill(1), 'bn1.scales');
    const b1 = Tensor.param(gpu, [8], new Float32Array(8), 'bn1.biases');
    const w2 = Tensor.param(gpu, [4, 8, 3, 3], heInit(rng, [4, 8, 3, 3]), 'conv2.weights');
    const c2 = Tensor.param(gpu, [4], new Float32Array(4), 'conv2.biases');
    const bn = { runningMean: Tensor.from(gpu, [8], new Float32Array(8)), runningVar: Tensor.from(gpu, [8], new Float32Array(8).fill(1)) };
    const params = [w1, g1, b1, w2, c2];
    const opt = new SGD(params, { lr: 0.02, momentum: 0.9, decay: 0 });
    const n = target.size;
    log(`demo: student conv3x3(3→8)-BN-leaky-maxpool-conv3x3(8→4) imitates a random teacher on ${B}×${C}×${H}×${W} random images, ${steps} SGD steps`);

    const losses: number[] = [];
    // losses are read back asynchronously while the loop keeps recording; the chain keeps the log in order
    let pending: Promise<void> = Promise.resolve();
    const t0 = performance.now();
    for (let step = 1; step <= steps; step++) {
      const tape = newTape();
      const loss = tape.record(() => {
        const h = activation(batchnorm(conv2d(x, w1, null, { pad: 1 }), g1, b1, bn, { training: true }), 'leaky');
        const y = conv2d(maxpool(h, { size: 2, stride: 2 }), w2, c2, { pad: 1 });
        return sumSquares(sub(y, target), { scale: 1 / n });
      });
      tape.backward(loss);
      opt.step();
      opt.zeroGrad();
      tape.dispose();
      if (step === 1 || step % 10 === 0 || step === steps) {
        const s = step;
        const read = loss.toArray();
        pending = pending.then(() => read).then((v) => {
          losses[s] = v[0];
          log(`  step ${String(s).padStart(3)}  loss ${v[0].toExponential(3)}`);
          loss.dispose();
        });
      } else loss.dispose();
    }
    await pending;
    await gpu.sync();
    const ms = (performance.now() - t0) / steps;
    const first = losses[1];
    const last = losses[steps];
    log(`demo: loss ${first.toExponential(3)} → ${last.toExponential(3)} (${(first / last).toFixed(1)}× lower) in ${steps} steps, ${ms.toFixed(1)} ms/step on ${gpu.info.kind}`);
    if (!(last < first / 4)) throw new Error(`demo: the loss did not fall enough (${first} → ${last})`);
    return { adapter: gpu.info.summary, steps, firstLoss: first, lastLoss: last, msPerStep: ms };
  } finally {
    gpu.dispose();
  }
}

test('tapeDemo: a short training run on the GPU lowers the loss', async () => {
  const lines: string[] = [];
  const r = await tapeDemo({ steps: 20, log: (l) => lines.push(l) });
  assert.ok(r.lastLoss < r.firstLoss / 4, `loss ${r.firstLoss} -> ${r.lastLoss}`);
  assert.ok(lines.some((l) => l.startsWith('demo: loss')));
  const order = lines.filter((l) => l.includes('  step')).map((l) => Number(/step\s+(\d+)/.exec(l)![1]));
  assert.equal(order, [...order].sort((a, b) => a - b), 'progress lines in step order');
});

test.run();
