/**
 * Whole-network gradients of real cfgs (yolov3-tiny, yolov4-tiny, yolov7-tiny from ../shared/darknet-cfg)
 * against an independent float64 reference: one training step's forward recorded on the tape in 'train'
 * mode and its backward on the GPU, against central finite differences of the float64 forward of the whole
 * network (test/reference/network.ts) for sampled entries of EVERY parameter tensor (conv weights, biases,
 * BN scales): the largest-|g| entry of each tensor, plus seeded random entries (NETGRAD_PER per tensor).
 *
 * Seeded weights with perturbed biases, BN scales and rolling statistics; input uniform [0, 1), batch 1.
 * Loss: Σ over heads of dot(head conv output, R) + dot([yolo] output, R') with fixed random R, R'
 * (smooth, reaches every layer: route with groups, stride-1 and SPP maxpools, upsample, leaky / logistic /
 * linear, BN, the [yolo] activation with scale_x_y and new_coords; the YOLO losses have their own tests).
 * These three cfgs have no [shortcut] and no mish: test/layers/layers.test.ts checks those in networks.
 * A finite difference recomputes only from the perturbed layer onward (earlier outputs cached).
 *
 * BN modes:
 *   batch   BN with batch statistics (what training runs). At 64 px the last grid is 2x2, so the deepest
 *           BNs normalize over M = 4 values: the loss is smooth but strongly curved there, and central
 *           differences use eps = 1e-7 (truncation error ~eps²; roundoff ~1e-16·Σ|terms|/eps stays
 *           ~1e-6). At 32 px M = 2 and such a BN is nearly a sign function (a weight's finite difference
 *           came out 6938 against a gradient of -0.047): not checkable there.
 *   frozen  the trainer's frozen-BN path (forward option frozenBn: BN on the rolling statistics, scales
 *           and biases still trained) against the float64 inference BN: well conditioned at 32 px;
 *           eps = 1e-5.
 * yolov7-tiny is checked frozen: in batch mode at 64 px (batch 1) its float32 forward drifts from float64 by
 * up to 2.5e-3 of max|value| at the heads although every layer alone agrees to <= 9e-6 (eleven M = 4 BNs
 * amplify the float32 rounding), and its gradients then differ from the finite differences by 1-3%: the
 * conditioning of that tiny-input network, not a kernel error (yolov3-tiny / yolov4-tiny drift <= 1e-4).
 * Runtime: 25-30 s for the file on the shared 2-core machine at load average 2-4 (float64 6.4-8.0 s yolov3-tiny,
 * 9.9-12.7 s yolov4-tiny, 6.5-7.5 s yolov7-tiny; the GPU step < 1 s each).
 *
 * Tolerance: |g_gpu - g_fd| <= 2e-3 * max|g_gpu| of that tensor + 2e-4 * |g_fd| (f32 on the GPU against
 * f64: relative to the gradient's scale). Measured worst |err| / max|g| (lavapipe): yolov3-tiny batch
 * 1.9e-5, yolov4-tiny batch 1.6e-4, yolov7-tiny frozen 3.2e-4 (yolov3-tiny / yolov4-tiny frozen 1e-6).
 * The forward loss agrees to <= 1e-5 of Σ|terms| (measured 1e-9 .. 2e-7).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { readCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { add, mul } from '../../src/tensor/ops/elementwise.js';
import { sum } from '../../src/tensor/ops/reduce.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { conv2dFast, hostParams64, networkRef } from '../reference/network.js';
import { conv2dRef } from '../reference/conv2d.js';
import type { Val } from '../layers/reference.js';
import { perturb } from '../helpers/perturb.js';

/** Sample counts and eps can be changed to explore (NETGRAD_PER, NETGRAD_EPS); NETGRAD_DEBUG=1 lists every mismatch instead of stopping. */
const num = (k: string, d: number) => Number(process.env[k] ?? d);
type BnMode = 'batch' | 'frozen';
const TOL_SCALE = 2e-3;
const TOL_REL = 2e-4;
/** Finite-difference step: batch mode needs a small one (see above); frozen mode is smooth, and there 1e-7 lets roundoff show (1.9e-3 on yolov7-tiny against 3.2e-4 at 1e-5). */
const EPS: Record<BnMode, number> = { batch: num('NETGRAD_EPS', 1e-7), frozen: num('NETGRAD_EPS', 1e-5) };


async function checkNetworkGrad(file: string, bn: BnMode, size: number, batch: number, perTensor: number, expectKinds: string[]): Promise<void> {
  const shared = sharedDir();
  if (!shared) return noteMissingShared(`${file} gradients`);
  const t0 = Date.now();
  const gpu = await getGpu();
  const net = Network.build(readCfg(path.join(shared, 'darknet-cfg', file)), { width: size, height: size });
  const kinds = [...new Set(net.layers.map((l) => l.kind))].sort();
  assert.equal(kinds, [...expectKinds].sort(), `${file} layer kinds`);
  net.initWeights(11);
  perturb(net, 12);
  const I = net.input;
  const xShape = [batch, I.c, I.h, I.w];
  const xv = randomArray(new Rng(13), batch * I.c * I.h * I.w, 0, 1);
  const heads = net.heads().map((l) => l.index);
  const headConvs = net.heads().map((l) => l.sources[0]);
  const rng = new Rng(14);
  const R = new Map<number, Float32Array>();
  for (const i of [...heads, ...headConvs]) {
    const o = net.layers[i].output;
    R.set(i, randomArray(rng, batch * o.c * o.h * o.w, -1, 1));
  }

  // GPU: training forward on the tape, loss on the GPU, backward
  net.prepare(gpu, 'train');
  const x = Tensor.from(gpu, xShape, xv);
  const rT = [...R].map(([i, r]) => [i, Tensor.from(gpu, [...xShape.slice(0, 1), net.layers[i].output.c, net.layers[i].output.h, net.layers[i].output.w], r)] as const);
  const tape = newTape();
  const loss = tape.record(() => {
    const outs = net.forward(x, { mode: 'train', keep: headConvs, frozenBn: bn === 'frozen' ? net.layers.length : 0 });
    let s: Tensor | null = null;
    for (const [i, r] of rT) {
      const term = sum(mul(outs.get(i)!, r));
      s = s ? add(s, term) : term;
    }
    return s!;
  });
  const gpuLoss = (await loss.toArray())[0];
  tape.backward(loss);
  const params = net.parameters('train').filter((p) => p.role !== 'buffer');
  const grads = new Map<string, Float32Array>();
  for (const p of params) {
    assert.ok(p.tensor.grad, `${file} ${p.key}: no gradient`);
    grads.set(p.key, await p.tensor.grad!.toArray());
  }
  const gpuMs = Date.now() - t0;

  // float64 reference: forward, then central differences per sampled entry, from the perturbed layer on
  const P = hostParams64(net);
  const xRef: Val = { data: xv, shape: xShape };
  // frozen: BN on the rolling statistics (the reference's inference BN), still recorded and differentiated
  const refMode = bn === 'batch' ? 'train' : 'infer';
  let lossAbs = 0;
  const lossOf = (outs: Val[]) => {
    let s = 0;
    lossAbs = 0;
    for (const [i, r] of R) {
      const d = outs[i].data;
      for (let k = 0; k < r.length; k++) {
        s += d[k] * r[k];
        lossAbs += Math.abs(d[k] * r[k]);
      }
    }
    return s;
  };
  const base = networkRef(net, xRef, P, refMode);
  const refLoss = lossOf(base);
  const lossErr = Math.abs(gpuLoss - refLoss) / lossAbs;
  assert.ok(lossErr <= 1e-5, `${file}: loss GPU ${gpuLoss} vs float64 ${refLoss} (|err| ${lossErr.toExponential(2)} of Σ|terms| ${lossAbs.toExponential(3)})`);
  let worst = 0;
  let worstKey = '';
  let checked = 0;
  for (const p of params) {
    const layer = p.layer.index;
    const w = P.get(layer)![p.name];
    const g = grads.get(p.key)!;
    assert.is(g.length, w.length, `${file} ${p.key}: gradient size`);
    const scale = maxAbs(g);
    assert.ok(scale > 0, `${file} ${p.key}: gradient is all zero`);
    // the largest-|g| entry and a deterministic spread of others
    let arg = 0;
    for (let k = 1; k < g.length; k++) if (Math.abs(g[k]) > Math.abs(g[arg])) arg = k;
    const pick = new Rng(1000 + layer);
    const idx = [arg];
    while (idx.length < Math.min(perTensor, g.length)) {
      const k = pick.int(g.length);
      if (!idx.includes(k)) idx.push(k);
    }
    for (const k of idx) {
      const keep = w[k];
      w[k] = keep + EPS[bn];
      const fp = lossOf(networkRef(net, xRef, P, refMode, layer, base));
      w[k] = keep - EPS[bn];
      const fm = lossOf(networkRef(net, xRef, P, refMode, layer, base));
      w[k] = keep;
      const fd = (fp - fm) / (2 * EPS[bn]);
      const err = Math.abs(g[k] - fd);
      const ratio = err / (TOL_SCALE * scale + TOL_REL * Math.abs(fd));
      const msg = `${file} ${p.key}[${k}] (${p.role}): GPU ${g[k]} vs float64 finite difference ${fd} (|err| ${err.toExponential(2)}, max|g| ${scale.toExponential(2)})`;
      if (!process.env.NETGRAD_DEBUG) assert.ok(ratio <= 1, msg);
      else if (ratio > 1) console.log(`    MISMATCH ${msg}`);
      const rel = err / scale;
      if (rel > worst) {
        worst = rel;
        worstKey = `${p.key}[${k}]`;
      }
      checked++;
    }
  }
  console.log(`  ${file} ${size}px batch ${batch}, BN ${bn === 'batch' ? 'batch statistics' : 'frozen (rolling statistics)'}: loss |err| ${lossErr.toExponential(1)} of Σ|terms|; ${net.layers.length} layers, ${params.length} parameter tensors, ${checked} entries; worst |err|/max|g| ${worst.toExponential(2)} (${worstKey}); loss ${refLoss.toFixed(4)}; GPU ${gpuMs} ms, float64 ${Date.now() - t0 - gpuMs} ms`);
  loss.dispose();
  tape.dispose();
  x.dispose();
  for (const [, t] of rT) t.dispose();
  net.dispose();
}

test('the float64 network reference: its conv loops agree with conv2dRef (stride, padding, dilation, groups)', () => {
  const rng = new Rng(21);
  for (const [xs, ws, stride, pad, dilation, groups] of [
    [[2, 4, 7, 6], [6, 4, 3, 3], [1, 1], 1, 1, 1],
    [[1, 4, 9, 8], [4, 2, 3, 3], [2, 2], 1, 1, 2],
    [[1, 3, 8, 9], [5, 3, 3, 3], [1, 2], 2, 2, 1],
    [[2, 3, 5, 5], [2, 3, 1, 1], [1, 1], 0, 1, 1],
  ] as [number[], number[], [number, number], number, number, number][]) {
    const x = randomArray(rng, xs.reduce((a, b) => a * b, 1), -1, 1);
    const w = randomArray(rng, ws.reduce((a, b) => a * b, 1), -1, 1);
    const fast = conv2dFast(x, xs, w, ws, { stride, pad, dilation, groups });
    const ref = conv2dRef(x, xs, w, ws, null, { stride, pad, dilation, groups });
    assert.equal(fast.shape, ref.shape);
    for (let i = 0; i < ref.y.length; i++) assert.ok(Math.abs(fast.y[i] - ref.y[i]) <= 1e-12, `conv ${xs} ${ws}: ${i}`);
  }
});

const KINDS = ['convolutional', 'maxpool', 'route', 'upsample', 'yolo'];
const PER = num('NETGRAD_PER', 1);

test('yolov3-tiny (64 px, BN with batch statistics): every parameter tensor vs float64 finite differences', async () => {
  await checkNetworkGrad('yolov3-tiny.cfg', 'batch', 64, 1, PER, KINDS);
});

test('yolov4-tiny (64 px, BN with batch statistics): route groups, scale_x_y, every parameter tensor vs float64 finite differences', async () => {
  await checkNetworkGrad('yolov4-tiny.cfg', 'batch', 64, 1, PER, KINDS);
});

test('yolov7-tiny (32 px, frozen BN): SPP maxpools, logistic, new_coords, every parameter tensor vs float64 finite differences', async () => {
  await checkNetworkGrad('yolov7-tiny.cfg', 'frozen', 32, 1, PER, KINDS);
});

test.run();
