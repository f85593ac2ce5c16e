/**
 * Freezing (src/train/freeze.ts): `--freeze N` (Ultralytics: layers 0..N-1 get no gradient and no update,
 * their batchnorm statistics keep updating), the cfg's `stopbackward=1` (Darknet: no gradient into layers
 * 0..S; layers 0..S-1 never updated and their batchnorm on the rolling statistics, which stay as loaded),
 * `stopbackward=K>1` (no gradient below until iteration K) and `train_only_bn`. Checked on what training
 * leaves: the frozen parameters byte-identical (raw and EMA), the rest changed; the tape records nothing of
 * the frozen prefix; the plan, the validation of `freeze` and exact resume.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { MseLoss, SyntheticLoader } from './helpers.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { decodeWeights } from '../../src/darknet/weights.js';
import { Tensor, Tape, newTape } from '../../src/tensor/index.js';
import { runTrainer } from '../../src/train/trainer.js';
import { freezePlan, gradientCut } from '../../src/train/freeze.js';
import { networkParams, optimParams } from '../../src/train/params.js';
import { readCheckpoint } from '../../src/train/checkpoint.js';
import { TrainError, type TrainerOptions, type TrainState } from '../../src/train/types.js';
import type { Truth } from '../../src/yolo/targets.js';
import { resolveTrainSettings } from '../../src/api/train.js';
import { checkNumericOptions } from '../../src/cli/options.js';
import { SettingError } from '../../src/util/validate.js';
import { generateSynth } from '../../src/data/synth.js';
import { runTrain } from '../../src/cli/train.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const tmpdir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `yw-freeze-${tag}-`));

/** conv(BN) - conv(BN) - maxpool - conv - [yolo] at 32x32; `keys[i]` go into layer i's section. */
function cfgText(keys: Record<number, string> = {}): string {
  const k = (i: number) => keys[i] ?? '';
  return `[net]
batch=4
subdivisions=1
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.02
burn_in=0
max_batches=100
policy=constant

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
${k(0)}

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
${k(1)}

[maxpool]
size=2
stride=2
${k(2)}

[convolutional]
filters=12
size=1
stride=1
pad=1
activation=linear
${k(3)}

[yolo]
mask=0,1
anchors=8,8, 16,16
classes=1
num=2
`;
}

function net5(keys: Record<number, string> = {}, init = true): Network {
  const net = Network.build(parseCfg(cfgText(keys), 'freeze5.cfg'));
  if (init) {
    net.initWeights(3);
    // rolling statistics away from (0, 1) so that "normalized with them" is visible
    const r = new Rng(4);
    for (const l of net.layers) {
      if (l.data?.rolling_mean) {
        l.data.rolling_mean = randomArray(r, l.data.rolling_mean.length, -0.2, 0.2);
        l.data.rolling_variance = randomArray(r, l.data.rolling_variance.length, 0.5, 2);
      }
    }
  }
  return net;
}

/** Every host parameter array by `<layer>.<name>` (copies). */
function snapshot(net: Network): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const l of net.layers) for (const p of l.params) m.set(`${l.index}.${p.name}`, Float32Array.from(l.data![p.name]));
  return m;
}

const bytesEqual = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Compares `after` with `before` per parameter: `same(key)` says which must be byte-identical; every
 * other one must have changed.
 */
function expectFrozen(before: Map<string, Float32Array>, after: Map<string, Float32Array>, same: (layer: number, name: string) => boolean, tag: string): void {
  for (const [key, b] of before) {
    const a = after.get(key)!;
    const [layer, name] = [Number(key.split('.')[0]), key.split('.')[1]];
    if (same(layer, name)) assert.ok(bytesEqual(a, b), `${tag}: ${key} must be byte-identical`);
    else assert.not.ok(bytesEqual(a, b), `${tag}: ${key} must have changed`);
  }
}

function weightsOf(bytes: Uint8Array, fresh: Network): Map<string, Float32Array> {
  decodeWeights(fresh, bytes);
  return snapshot(fresh);
}

async function train(net: Network, opts: Partial<TrainerOptions<Truth>> = {}) {
  const gpu = await getGpu();
  const loss = new MseLoss(gpu);
  const lines: string[] = [];
  try {
    const r = await runTrainer({ gpu, network: net, loader: new SyntheticLoader(8, 2), loss, subdivisions: 2, maxBatches: 3, saveEvery: 0, log: (l) => lines.push(l), ...opts });
    return { r, lines };
  } finally {
    loss.dispose();
  }
}

// ------------------------------------------------------------------------------------------ the plan

test('freeze plan: --freeze, stopbackward=1, train_only_bn, stopbackward=K; gradientCut follows get_current_iteration', () => {
  assert.equal(freezePlan(net5({}, false)), { frozen: 0, rollingBn: 0, delayed: [], reasons: [] });
  assert.is(freezePlan(net5({}, false), 2).frozen, 2);
  assert.is(freezePlan(net5({}, false), 2).rollingBn, 0);
  const sb = freezePlan(net5({ 1: 'stopbackward=1' }, false));
  assert.is(sb.frozen, 2);
  assert.is(sb.rollingBn, 1);
  assert.match(sb.reasons.join(), /stopbackward=1 at layer 1: layers 0\.\.1, batchnorm of \[convolutional\] 0\.\.0 on the rolling statistics/);
  // --freeze beyond the stopbackward layer: more frozen, the rolling-statistics prefix stays Darknet's
  const both = freezePlan(net5({ 1: 'stopbackward=1' }, false), 3);
  assert.is(both.frozen, 3);
  assert.is(both.rollingBn, 1);
  const ob = freezePlan(net5({ 1: 'train_only_bn=1' }, false));
  assert.is(ob.frozen, 2);
  assert.is(ob.rollingBn, 0);
  const dl = freezePlan(net5({ 1: 'stopbackward=3' }, false));
  assert.is(dl.frozen, 0);
  assert.equal(dl.delayed, [{ layer: 1, until: 3 }]);
  // subdivisions 1: updates 1 and 2 (iteration 0, 1 done) are cut, update 3 is not
  assert.equal([0, 1, 2, 3].map((it) => gradientCut(dl, it, 0, 1)), [2, 2, 0, 0]);
  // subdivisions 2: in update 3 Darknet's iteration is 2 for the first mini-batch, 3 for the second
  assert.equal([[1, 0], [1, 1], [2, 0], [2, 1], [3, 0]].map(([it, sub]) => gradientCut(dl, it, sub, 2)), [2, 2, 2, 0, 0]);
  // a delayed stop below the frozen prefix is moot
  assert.equal(freezePlan(net5({ 0: 'stopbackward=3' }, false), 2).delayed, []);
});

test('freeze: range and nothing-to-train errors (trainer, API settings, CLI option table)', () => {
  const net = net5({}, false);
  for (const bad of [-1, 1.5, 6, NaN]) assert.throws(() => freezePlan(net, bad), (e: Error) => e instanceof TrainError && /expected an integer in \[0, 5\]/.test(e.message), `freeze ${bad}`);
  // layer 3 is the last with parameters: freezing 0..3 (or all 5 layers) leaves nothing
  for (const n of [4, 5]) assert.throws(() => freezePlan(net, n), (e: Error) => e instanceof TrainError && e.kind === 'config' && /nothing left to train: freeze \d: layers 0\.\.\d freezes every layer with parameters \(the last one is layer 3 \[convolutional\]/.test(e.message), `freeze ${n}`);
  assert.throws(() => freezePlan(net5({ 3: 'stopbackward=1' }, false)), /nothing left to train: stopbackward=1 at layer 3/);
  assert.throws(() => freezePlan(net5({ 3: 'train_only_bn=1' }, false)), /nothing left to train: train_only_bn at layer 3/);
  assert.throws(() => resolveTrainSettings(net, { freeze: 9, maxBatches: 1 }), (e: Error) => e instanceof SettingError && e.message === 'train: freeze: expected an integer in [0, 5], got 9');
  assert.throws(() => resolveTrainSettings(net, { freeze: 4, maxBatches: 1 }), (e: Error) => e instanceof TrainError && /nothing left to train/.test(e.message));
  assert.is(resolveTrainSettings(net, { maxBatches: 1 }).freeze, 0);
  assert.is(resolveTrainSettings(net, { maxBatches: 1 }, { freeze: 2 }).freeze, 2, 'from a resumed run\'s args.json');
  assert.throws(() => checkNumericOptions({ freeze: -1 }, ['--freeze', '-1']), (e: Error) => e instanceof SettingError && e.message === "--freeze: expected an integer >= 0, got '-1'");
  assert.throws(() => checkNumericOptions({ freeze: NaN }, ['--freeze', 'all']), /--freeze: expected an integer >= 0, got 'all'/);
});

// ------------------------------------------------------------------------------------------ the tape

test('the tape records nothing of the frozen prefix: no node reads a frozen tensor, no gradient below, the first trained conv skips its input gradient', async () => {
  const gpu = await getGpu();
  const net = net5();
  net.prepare(gpu, 'train');
  const params = networkParams(net);
  optimParams(params, net.file, 2);
  const frozen = new Set(params.filter((p) => p.layer.index < 2).map((p) => p.tensor));
  const trained = params.filter((p) => p.layer.index >= 2 && p.group !== 'buffer');
  assert.ok(trained.length > 0 && [...frozen].every((t) => !t.requiresGrad));
  const loss = new MseLoss(gpu);
  const x = Tape.untracked(() => Tensor.from(gpu, [2, 3, 32, 32], randomArray(new Rng(1), 2 * 3 * 32 * 32, 0, 1), 'x'));
  const tape = newTape();
  try {
    const l = tape.record(() => {
      const outs = net.forward(x, { mode: 'train' });
      return loss.compute([outs.get(4)!], [[{ cls: 0, x: 0.5, y: 0.5, w: 0.2, h: 0.2 }], [{ cls: 0, x: 0.25, y: 0.5, w: 0.2, h: 0.2 }]], { network: net, headLayers: [net.layers[4]], iteration: 1, epoch: 0 }).loss;
    });
    const ops = tape.nodes.map((n) => n.op);
    assert.is(ops.filter((o) => o === 'conv2d').length, 1, `one conv recorded (layer 3), got ${ops.join(', ')}`);
    assert.not.ok(ops.some((o) => o.startsWith('batchnorm')), 'no batchnorm recorded');
    assert.ok(tape.nodes.every((n) => !n.inputs.some((t) => frozen.has(t))), 'no node reads a frozen parameter');
    const conv = tape.nodes.find((n) => n.op === 'conv2d')!;
    assert.not.ok(conv.inputs[0].requiresGrad, 'the first trained conv reads an input without gradient (no input gradient computed)');
    tape.backward(l);
    l.dispose();
    for (const t of frozen) assert.is(t.grad, null, `${t.name}: no gradient`);
    for (const p of trained) assert.ok(p.tensor.grad, `${p.key}: gradient`);
  } finally {
    tape.dispose();
    x.dispose();
    loss.dispose();
    for (const p of params) p.tensor.grad?.dispose();
    net.dispose();
  }
});

// ------------------------------------------------------------------------------------------ training

test('--freeze 2 (Ultralytics): layers 0..1 weights, biases, BN scales byte-identical (raw and EMA .weights), their BN statistics updated; layer 3 trained', async () => {
  const dir = tmpdir('u');
  const net = net5();
  const before = snapshot(net);
  const { lines } = await train(net, { freeze: 2, ema: { tau: 2 }, checkpointDir: dir });
  assert.ok(lines.includes('frozen (no gradient, no update): freeze 2: layers 0..1'), lines.join('\n'));
  assert.ok(lines.some((l) => /^optimizer sgd: 2 tensors /.test(l)), 'the optimizer holds layer 3 only');
  const frozenParam = (layer: number, name: string) => layer < 2 && !name.startsWith('rolling_');
  expectFrozen(before, snapshot(net), frozenParam, 'raw');
  // last.weights hold the EMA: a frozen parameter's average is the parameter
  expectFrozen(before, weightsOf(fs.readFileSync(path.join(dir, 'last.weights')), net5({}, false)), frozenParam, 'EMA');
  assert.is(readCheckpoint<TrainState>(dir, 'last')!.state.frozen, 2);
});

test('stopbackward=1 (Darknet): layers 0..S-1 all identical (batchnorm on the rolling statistics), layer S no update but its statistics move; forward of the prefix = inference', async () => {
  const gpu = await getGpu();
  // the prefix in train mode normalizes with the rolling statistics: its output is the inference output
  const a = net5({ 1: 'stopbackward=1' });
  const b = net5({ 1: 'stopbackward=1' });
  const x = Tape.untracked(() => Tensor.from(gpu, [2, 3, 32, 32], randomArray(new Rng(2), 2 * 3 * 32 * 32, 0, 1), 'x'));
  a.prepare(gpu, 'train');
  b.prepare(gpu, 'infer');
  const ya = a.forward(x, { mode: 'train', keep: [0], frozenBn: 1 });
  const yb = b.forward(x, { keep: [0] });
  const [ta, tb] = [await ya.get(0)!.toArray(), await yb.get(0)!.toArray()];
  let worst = 0;
  for (let i = 0; i < ta.length; i++) worst = Math.max(worst, Math.abs(ta[i] - tb[i]) / (1 + Math.abs(tb[i])));
  assert.ok(worst < 1e-5, `train-mode prefix vs inference: ${worst}`);
  for (const m of [ya, yb]) for (const t of new Set(m.values())) t.dispose();
  x.dispose();
  await a.pullParams();
  const rm = snapshot(net5({ 1: 'stopbackward=1' }));
  assert.ok(bytesEqual(a.layers[0].data!.rolling_mean, rm.get('0.rolling_mean')!), 'rolling statistics read, not updated');
  a.dispose();
  b.dispose();

  const dir = tmpdir('s');
  const net = net5({ 1: 'stopbackward=1' });
  const before = snapshot(net);
  const { lines } = await train(net, { ema: { tau: 2 }, checkpointDir: dir });
  assert.ok(lines.some((l) => l.startsWith('frozen (no gradient, no update): stopbackward=1 at layer 1: layers 0..1')), lines.join('\n'));
  const same = (layer: number, name: string) => layer === 0 || (layer === 1 && !name.startsWith('rolling_'));
  expectFrozen(before, snapshot(net), same, 'raw');
  expectFrozen(before, weightsOf(fs.readFileSync(path.join(dir, 'last.weights')), net5({}, false)), same, 'EMA');
});

test('stopbackward=3 (Darknet GPU path): no gradient into layers 0..1 in updates 1-2, trained from update 3; train_only_bn=1 = --freeze', async () => {
  const before = snapshot(net5({ 1: 'stopbackward=3' }));
  const n2 = net5({ 1: 'stopbackward=3' });
  await train(n2, { maxBatches: 2, subdivisions: 1 });
  expectFrozen(before, snapshot(n2), (layer, name) => layer < 2 && !name.startsWith('rolling_'), '2 updates');
  const n3 = net5({ 1: 'stopbackward=3' });
  await train(n3, { maxBatches: 3, subdivisions: 1 });
  expectFrozen(before, snapshot(n3), () => false, '3 updates');

  const nb = net5({ 1: 'train_only_bn=1' });
  await train(nb);
  const nf = net5();
  await train(nf, { freeze: 2 });
  const [sb, sf] = [snapshot(nb), snapshot(nf)];
  for (const [k, v] of sb) assert.ok(bytesEqual(v, sf.get(k)!), `train_only_bn=1 at layer 1 == --freeze 2: ${k}`);
  expectFrozen(before, sb, (layer, name) => layer < 2 && !name.startsWith('rolling_'), 'train_only_bn');
});

test('exact resume with --freeze (4 updates == 2 + resume + 2, bitwise); resuming with another freeze is refused', async () => {
  const a = tmpdir('ra');
  const b = tmpdir('rb');
  const o = { freeze: 2, ema: { tau: 3 }, maxBatches: 4 } as const;
  await train(net5(), { ...o, checkpointDir: a });
  await train(net5(), { ...o, maxBatches: 2, checkpointDir: b });
  await train(net5({}, false), { ...o, resume: b, checkpointDir: b });
  assert.ok(fs.readFileSync(path.join(a, 'last.weights')).equals(fs.readFileSync(path.join(b, 'last.weights'))), 'last.weights bitwise equal');
  try {
    await train(net5({}, false), { ...o, freeze: 1, maxBatches: 6, resume: b, checkpointDir: b });
    assert.unreachable('resumed with another freeze');
  } catch (e) {
    assert.instance(e, TrainError);
    assert.match((e as Error).message, /was trained with layers 0\.\.1 frozen, this run freezes layers 0\.\.0: resume with the same freeze/);
  }
});

// ------------------------------------------------------------------------------------------ the command

test('train --freeze 10 on yolo-mini (backbone frozen, EMA) and a stopbackward=1 yolo-mini: frozen layers byte-identical in final.weights, the rest trained', async () => {
  const gpu = await getGpu();
  const root = tmpdir('cli');
  // yolo-mini without its burn-in (3 updates at (k/100)^4 of the rate would move nothing in float32)
  const mini = fs.readFileSync(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), 'utf8');
  assert.match(mini, /^burn_in=100$/m);
  const cfg = path.join(root, 'yolo-mini.cfg');
  fs.writeFileSync(cfg, mini.replace(/^burn_in=100$/m, 'burn_in=0'));
  const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 8, valCount: 2, size: 64, seed: 3 });
  const run = async (o: { cfg: string; name: string; freeze?: number; ema?: boolean }) => {
    const lines: string[] = [];
    const r = await runTrain({ data: synth.data, img: 64, batch: 4, subdivisions: 1, maxBatches: 3, workers: 0, valEvery: 0, out: path.join(root, 'runs'), progress: 'none', gpu, log: (l) => lines.push(l), ...o });
    return { r, lines };
  };
  // the run's start: seeded initialization with seed 0 + 1
  const initial = (file: string) => {
    const n = Network.fromFile(file, { width: 64, height: 64 });
    n.initWeights(1);
    return snapshot(n);
  };
  const fresh = (file: string) => Network.fromFile(file, { width: 64, height: 64 });

  const { r, lines } = await run({ cfg, name: 'freeze', freeze: 10, ema: true });
  assert.ok(lines.includes('frozen (no gradient, no update): freeze 10: layers 0..9'), lines.join('\n'));
  assert.is(JSON.parse(fs.readFileSync(path.join(r.runDir, 'args.json'), 'utf8')).freeze, 10);
  const before = initial(cfg);
  const ultralytics = (layer: number, name: string) => layer < 10 && !name.startsWith('rolling_');
  expectFrozen(before, weightsOf(fs.readFileSync(path.join(r.runDir, 'weights/final.weights')), fresh(cfg)), ultralytics, 'final.weights (EMA)');
  const raw = new Map(readCheckpoint<TrainState>(path.join(r.runDir, 'weights'), 'last')!.state.rawParams!.map((p) => [p.key, p.data]));
  expectFrozen(before, raw, ultralytics, 'raw parameters');

  // stopbackward=1 on layer 8 (the 5th conv): layers 0..7 entirely as loaded, layer 8's statistics move
  const text = fs.readFileSync(cfg, 'utf8').split('\n');
  const convs = text.map((l, i) => (l.trim() === '[convolutional]' ? i : -1)).filter((i) => i >= 0);
  text.splice(convs[4] + 1, 0, 'stopbackward=1');
  const sbCfg = path.join(root, 'yolo-mini-sb.cfg');
  fs.writeFileSync(sbCfg, text.join('\n'));
  assert.is(Network.fromFile(sbCfg).layers[8].common.stopbackward, 1);
  const s = await run({ cfg: sbCfg, name: 'sb' });
  assert.ok(s.lines.some((l) => l.startsWith('frozen (no gradient, no update): stopbackward=1 at layer 8: layers 0..8')), s.lines.join('\n'));
  const darknet = (layer: number, name: string) => layer < 8 || (layer === 8 && !name.startsWith('rolling_'));
  expectFrozen(initial(sbCfg), weightsOf(fs.readFileSync(path.join(s.r.runDir, 'weights/final.weights')), fresh(sbCfg)), darknet, 'stopbackward final.weights');
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
