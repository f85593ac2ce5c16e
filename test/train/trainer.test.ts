/**
 * The trainer on a tiny conv-maxpool-conv-[yolo] network with a synthetic loader and an MSE loss:
 * exact resume (2N updates == N + save + a fresh Network/optimizer/loader resumed + N, bitwise, with EMA,
 * burn-in and a step of the schedule crossed, subdivisions, an epoch boundary, and an interrupted run),
 * the non-finite stop, a falling loss, and subdivisions = one big batch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { MseLoss, SyntheticLoader, tinyNetwork } from './helpers.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { runTrainer } from '../../src/train/trainer.js';
import { TrainError, type Progress, type TrainerOptions, type TrainState } from '../../src/train/types.js';
import { networkParams } from '../../src/train/params.js';
import { yoloTrainLoss } from '../../src/train/yolo_loss.js';
import type { Truth } from '../../src/yolo/targets.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { decodeWeights, DEFAULT_HEADER } from '../../src/darknet/weights.js';
import type { Network } from '../../src/darknet/network.js';

const tmpdir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `yw-train-${tag}-`));

function floatsOf(net: Network): Float32Array[] {
  return net.layers.flatMap((l) => l.params.map((p) => l.data![p.name]));
}

async function runWith(dir: string, opts: Partial<TrainerOptions<Truth>> & { loader?: SyntheticLoader; net?: Network }) {
  const gpu = await getGpu();
  const net = opts.net ?? tinyNetwork();
  const loss = new MseLoss(gpu);
  try {
    const r = await runTrainer({ gpu, network: net, loader: opts.loader ?? new SyntheticLoader(8, 2), loss, subdivisions: 2, ema: { tau: 3 }, checkpointDir: dir, saveEvery: 0, ...opts });
    return { r, net };
  } finally {
    loss.dispose();
  }
}

for (const [endless, kind] of [[false, 'sgd'], [true, 'sgd'], [false, 'adamw']] as const) test(`exact resume (${kind}): 6 updates == 3 + resume + 3 == interrupted + resume (bitwise .weights and state)${endless ? ', one endless iterator' : ''}`, async () => {
  const loader = () => new SyntheticLoader(8, 2, 5, endless);
  const run = (dir: string, o: Parameters<typeof runWith>[1]) => runWith(dir, { optimizer: kind === 'sgd' ? undefined : { kind, lr: 0.01 }, ...o });
  const a = tmpdir('a');
  const b = tmpdir('b');
  const c = tmpdir('c');
  // A: straight through (3 epochs of 2 updates: burn-in to 3, the step at 5)
  const lrs: number[] = [];
  const { r: ra } = await run(a, { maxBatches: 6, loader: loader(), onProgress: (p) => lrs.push(p.lr) });
  assert.is(ra.iteration, 6);
  assert.is(ra.epoch, 3);
  assert.is(ra.seen, 24);
  const base = kind === 'sgd' ? 0.02 : 0.01;
  assert.equal(lrs.map((x) => +x.toPrecision(6)), [base / 9, base * 4 / 9, base, base, base / 2, base / 2].map((x) => +x.toPrecision(6)));
  // B: 3 updates (mid-epoch), then a fresh network (no init), optimizer, EMA and loader from the checkpoint
  const { r: rb1 } = await run(b, { maxBatches: 3, loader: loader() });
  assert.is(rb1.iteration, 3);
  const ckb = readCheckpoint<TrainState>(b, 'last')!;
  assert.is(ckb.state.iteration, 3);
  assert.is(ckb.state.batchInEpoch, 2);
  assert.equal(ckb.state.loader, { epoch: 1, index: 2 });
  const { r: rb2 } = await run(b, { maxBatches: 6, net: tinyNetwork({}, false), resume: b, loader: loader() });
  assert.is(rb2.resumedFrom?.iteration, 3);
  assert.is(rb2.iteration, 6);
  // C: interrupted (AbortSignal, as Ctrl-C) after the progress of update 2, then resumed
  const ac = new AbortController();
  const { r: rc1 } = await run(c, { maxBatches: 6, loader: loader(), signal: ac.signal, onProgress: (p) => { if (p.iteration >= 2) ac.abort(); } });
  assert.is(rc1.stopped, 'aborted');
  assert.ok(rc1.iteration >= 2 && rc1.iteration < 6, `stopped at ${rc1.iteration}`);
  assert.is(readCheckpoint<TrainState>(c, 'last')!.state.iteration, rc1.iteration);
  const { r: rc2 } = await run(c, { maxBatches: 6, net: tinyNetwork({}, false), resume: c, loader: loader() });
  assert.is(rc2.iteration, 6);

  const wa = fs.readFileSync(path.join(a, 'last.weights'));
  for (const [dir, tag] of [[b, 'resumed'], [c, 'interrupted + resumed']] as const) {
    assert.ok(wa.equals(fs.readFileSync(path.join(dir, 'last.weights'))), `${tag}: last.weights (EMA) bitwise equal`);
    assert.ok(wa.equals(fs.readFileSync(path.join(dir, 'final.weights'))), `${tag}: final.weights`);
    const sa = readCheckpoint<TrainState>(a, 'last')!.state;
    const sx = readCheckpoint<TrainState>(dir, 'last')!.state;
    assert.equal(sx.rawParams!.map((p) => p.key), sa.rawParams!.map((p) => p.key));
    sa.rawParams!.forEach((p, i) => assert.ok(Buffer.from(p.data.buffer).equals(Buffer.from(sx.rawParams![i].data.buffer)), `${tag}: raw ${p.key}`));
    sa.optimizer.params.forEach((p, i) => {
      assert.is(sx.optimizer.params[i].step, p.step);
      for (const slot of Object.keys(p.slots)) assert.ok(Buffer.from(p.slots[slot].buffer).equals(Buffer.from(sx.optimizer.params[i].slots[slot].buffer)), `${tag}: ${slot} of ${p.name}`);
    });
    assert.is(sx.optimizer.kind, kind);
    assert.is(sx.ema!.updates, 6);
    assert.is(sx.seen, 24);
  }
  // the .weights are Darknet's: header seen = images, loadable into a fresh network
  const dv = new DataView(wa.buffer, wa.byteOffset);
  assert.is(dv.getInt32(4, true), DEFAULT_HEADER.minor);
  assert.is(dv.getBigUint64(12, true), 24n);
  const fresh = tinyNetwork({}, false);
  assert.is(decodeWeights(fresh, wa).seen, 24n);
  for (const d of [a, b, c]) fs.rmSync(d, { recursive: true, force: true });
});

test('a non-finite loss stops with the iteration named; the last good checkpoint stays', async () => {
  const gpu = await getGpu();
  const dir = tmpdir('nan');
  const net = tinyNetwork();
  const loss = new MseLoss(gpu);
  loss.nanAt.add(7);
  const err = await runTrainer({ gpu, network: net, loader: new SyntheticLoader(8, 2), loss, subdivisions: 1, checkpointDir: dir, saveEvery: 5, saveEpochs: false, maxBatches: 20 }).then(() => null, (e: unknown) => e);
  loss.dispose();
  assert.ok(err instanceof TrainError, `throws a TrainError (${String(err)})`);
  assert.is((err as TrainError).kind, 'non-finite');
  assert.is((err as TrainError).iteration, 7);
  assert.match((err as Error).message, /loss is NaN at iteration 7/);
  assert.match((err as Error).message, /last good checkpoint is .*last\.weights \(iteration 5\)/);
  const ck = readCheckpoint<TrainState>(dir, 'last')!;
  assert.is(ck.state.iteration, 5);
  assert.ok(!ck.fellBack);
  const check = tinyNetwork({}, false);
  decodeWeights(check, ck.weights);
  for (const a of floatsOf(check)) assert.ok(a.every(Number.isFinite), 'checkpoint weights are finite');
  assert.ok(!fs.existsSync(path.join(dir, 'final.weights')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the loss falls; progress events carry items, lr, images/s and ETA; epoch summaries and best', async () => {
  const gpu = await getGpu();
  const dir = tmpdir('fall');
  const net = tinyNetwork();
  const loss = new MseLoss(gpu);
  const progress: Progress[] = [];
  let evals = 0;
  const r = await runTrainer({
    gpu, network: net, loader: new SyntheticLoader(8, 4), loss, subdivisions: 1, epochs: 10, checkpointDir: dir,
    schedule: undefined, optimizer: { kind: 'adam', lr: 0.01 }, saveEvery: 0, keepEvery: 10,
    onProgress: (p) => progress.push(p),
    buildEvalNetwork: () => tinyNetwork({}, false),
    evaluate: async ({ network, epoch }) => {
      evals++;
      assert.ok(network.layers.every((l) => !l.params.length || l.data), 'eval network has weights');
      return { fitness: epoch === 3 ? 100 : epoch, metrics: { epoch } };
    },
  });
  loss.dispose();
  assert.is(r.iteration, 20);
  assert.is(r.history.length, 10);
  assert.is(evals, 10);
  const first = r.history[0].loss;
  const last = r.history[9].loss;
  assert.ok(last < first / 3, `loss ${first} -> ${last}`);
  assert.equal(Object.keys(progress[0].lossItems), ['mse', 'mean']);
  assert.is(progress[0].lossItems.mse, progress[0].loss);
  assert.is(progress.length, 20);
  assert.ok(progress.at(-1)!.imagesPerSec > 0);
  assert.ok(progress[5].eta > 0 && Number.isFinite(progress[5].eta));
  assert.is(progress.at(-1)!.eta, 0);
  // best: the epoch-3 evaluation (fitness 100) saved best; history has the metrics
  assert.equal(r.best, { fitness: 100, iteration: 8, epoch: 3 });
  assert.is(readCheckpoint<TrainState>(dir, 'best')!.state.iteration, 8);
  assert.equal(r.history[3].metrics, { epoch: 3 });
  // numbered copies (Darknet's backups) are the .weights of that iteration
  assert.ok(fs.existsSync(path.join(dir, 'iter_10.weights')) && fs.existsSync(path.join(dir, 'iter_20.weights')));
  assert.ok(fs.readFileSync(path.join(dir, 'iter_20.weights')).equals(fs.readFileSync(path.join(dir, 'last.weights'))));
  // the history went into the state
  assert.is(readCheckpoint<TrainState>(dir, 'last')!.state.history.length, 10);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('subdivisions=2 of 2 images == one batch of 4 (no BN), and weight decay skips biases', async () => {
  const gpu = await getGpu();
  const results: Float32Array[][] = [];
  for (const [batch, subs] of [[2, 2], [4, 1]]) {
    const net = tinyNetwork({ bn: false });
    const loss = new MseLoss(gpu);
    await runTrainer({ gpu, network: net, loader: new SyntheticLoader(4, batch), loss, subdivisions: subs, maxBatches: 1, optimizer: { kind: 'sgd', lr: 0.05, decay: 0.01, momentum: 0.9 } });
    loss.dispose();
    const specs = networkParams(net);
    assert.equal(specs.map((p) => `${p.key}:${p.group}:${p.decay}`), ['0.biases:bias:false', '0.weights:weights:true', '2.biases:bias:false', '2.weights:weights:true']);
    await net.pullParams();
    results.push(floatsOf(net).map((a) => Float32Array.from(a)));
    net.dispose();
  }
  const init = floatsOf(tinyNetwork({ bn: false }));
  let moved = 0;
  results[0].forEach((a, i) => {
    const b = results[1][i];
    for (let j = 0; j < a.length; j++) {
      const step = Math.abs(b[j] - init[i][j]);
      moved = Math.max(moved, step);
      assert.ok(Math.abs(a[j] - b[j]) <= 1e-6 + 1e-4 * step, `param ${i}[${j}]: ${a[j]} vs ${b[j]} (step ${step})`);
    }
  });
  assert.ok(moved > 1e-4, 'the update moved the weights');
});

test('the YOLO losses (src/yolo/loss.ts, Darknet and YOLOv5 kinds) train through yoloTrainLoss; the loss falls', async () => {
  const gpu = await getGpu();
  for (const kind of ['darknet', 'yolov5'] as const) {
    const net = tinyNetwork();
    const yl = lossFromNetwork(net, { kind });
    const items: string[][] = [];
    const r = await runTrainer({
      gpu, network: net, loader: new SyntheticLoader(8, 4), loss: yoloTrainLoss(yl), subdivisions: 1, epochs: 10,
      optimizer: kind === 'yolov5' ? { kind: 'sgd', lr: 0.01, momentum: 0.9 } : undefined,
      onProgress: (p) => items.push(Object.keys(p.lossItems)),
    });
    assert.equal(items[0], ['box', 'obj', 'cls']);
    const first = r.history[0].loss;
    const last = r.history.at(-1)!.loss;
    assert.ok(last < first / 4, `${kind}: loss ${first} -> ${last}`);
    net.dispose();
  }
});

test.run();
