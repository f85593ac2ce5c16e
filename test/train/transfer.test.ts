/**
 * Starting weights for fine-tuning: transfer by shape (weights of a cfg with another class count, read with
 * their own cfg, every layer whose kind and shapes match copied), and Darknet's continuation from the
 * weights' `seen` (detector.c: iteration = seen / batch unless -clear) through `train`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { encodeWeights, transferWeights, WeightsError } from '../../src/darknet/weights.js';
import { loadNetwork, loadStartWeights } from '../../src/api/model.js';
import { generateSynth } from '../../src/data/synth.js';
import { runTrain } from '../../src/cli/train.js';
import { getGpu } from '../helpers/gpu.js';
import { MINI_CFG, runCli } from '../robustness/corpus.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-transfer-'));
const miniText = fs.readFileSync(MINI_CFG, 'utf8');
/** yolo-mini with 5 classes: both head convolutions 24 -> 30 filters. */
const mini5Text = miniText.replace(/classes=3/g, 'classes=5').replace(/filters=24/g, 'filters=30');
const mini5 = path.join(root, 'mini5.cfg');
fs.writeFileSync(mini5, mini5Text);

/** Seeded yolo-mini (3 classes) weights with this `seen`. */
function miniWeights(seen: bigint, name = 'mini.weights'): { file: string; net: Network } {
  const net = Network.fromFile(MINI_CFG);
  net.initWeights(3);
  const file = path.join(root, name);
  fs.writeFileSync(file, encodeWeights(net, { seen }));
  return { file, net };
}

function equalLayer(a: Network, b: Network, i: number, label: string): void {
  for (const p of a.layers[i].params) assert.ok(Buffer.from(b.layers[i].data![p.name].buffer).equals(Buffer.from(a.layers[i].data![p.name].buffer)), `${label}: layer ${i} ${p.name}`);
}

test('transfer by shape, 3 -> 5 classes: matched layers equal the source, the heads re-initialised and reported', async () => {
  const { file, net: src } = miniWeights(1234n);
  const lines: string[] = [];
  const dst = await loadNetwork({ cfg: mini5, weights: file, weightsCfg: MINI_CFG, seed: 4, log: (l) => lines.push(l) });
  const init = Network.fromFile(mini5);
  init.initWeights(4);
  const withParams = dst.layers.filter((l) => l.params.length).map((l) => l.index);
  assert.equal(withParams, [0, 2, 4, 6, 8, 10, 11, 12, 15, 18, 19]);
  for (const i of withParams) {
    if (i === 12 || i === 19) equalLayer(init, dst, i, 'a head: the seeded initialization');
    else equalLayer(src, dst, i, 'transferred');
  }
  assert.equal(dst.weightsHeader, { major: 0, minor: 2, revision: 5, seen: 1234n });
  assert.is(dst.freshInit, false);
  const values = withParams.filter((i) => i !== 12 && i !== 19).reduce((n, i) => n + dst.layers[i].paramCount, 0);
  const all = src.layers.reduce((n, l) => n + l.paramCount, 0);
  assert.equal(lines.filter((l) => !l.startsWith('warning')), [
    `source yolo-mini.cfg: loaded all 21 layers from ${file} (${all} values, header 0.2.5, seen 1234); transferred 9/11 layers with parameters to mini5.cfg (${values} values); re-initialised 12, 19 (filters 24 → 30), seed 4`,
  ]);

  // a cut source file: only the layers it holds transfer
  const cut = path.join(root, 'mini.conv.12');
  fs.writeFileSync(cut, encodeWeights(src, {}, { upto: 12 }));
  const d2 = Network.fromFile(mini5);
  const r = loadStartWeights(d2, { weights: cut, weightsCfg: MINI_CFG, seed: 4 });
  assert.match(r.line!, 'loaded layers 0–11 from');
  assert.match(r.line!, 'transferred 7/11 layers with parameters to mini5.cfg');
  assert.match(r.line!, 're-initialised 12, 15, 18, 19 (not in the weights file), seed 4');
  assert.not.match(r.line!, 'layers 12–20 initialised', 'the source network\'s own tail is not reported');

  // without the source cfg the file does not fit (read in order, as Darknet does, it runs out in the last
  // layer), and the message says it may be the wrong cfg
  const d3 = Network.fromFile(mini5);
  assert.throws(() => loadStartWeights(d3, { weights: file, partial: true }), (e: Error) => e instanceof WeightsError && e.message.includes('file too short: layer 19 [convolutional]') && e.message.includes('the wrong cfg for these weights'));
  // a source cfg that is not the weights' cfg: its load fails, naming the file
  const other = Network.fromFile(mini5);
  assert.throws(() => loadStartWeights(other, { weights: file, weightsCfg: mini5 }), (e: Error) => e instanceof WeightsError && e.message.startsWith(`${file}: file too short: layer 19 [convolutional]`));
  // nothing matches: refused
  const lone = Network.build(parseCfg('[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=5\nsize=1\nactivation=linear\n', 'lone.cfg'));
  assert.throws(() => transferWeights(lone, src, { name: 'mini.weights' }), (e: Error) => e instanceof WeightsError && /no layer matches \(layer 0: batch_normalize 1 → 0\): is .*yolo-mini\.cfg the cfg these weights were trained with\?/.test(e.message));
});

test('train: a cut file, transfer through the CLI, and Darknet continuation from seen vs --clear', async () => {
  const synth = generateSynth({ out: path.join(root, 'synth'), trainCount: 4, valCount: 2, size: 64, seed: 3 });
  const common = ['--img', '64', '--batch', '2', '--subdivisions', '1', '--workers', '0', '--val-every', '0', '--no-augment', '--progress', 'lines', '--log-every', '1', '--out', path.join(root, 'runs')];

  // transfer 3 -> 5 classes through the command line (Darknet would read misaligned bytes)
  const { file } = miniWeights(0n);
  const t = await runCli(['train', '--cfg', mini5, '--data', synth.data, '--weights', file, '--weights-cfg', MINI_CFG, '--max-batches', '1', '--name', 'transfer', ...common]);
  assert.is(t.code, 0, t.out);
  assert.match(t.out, /weights: source yolo-mini\.cfg: loaded all 21 layers from .*; transferred 9\/11 layers with parameters to mini5\.cfg \(\d+ values\); re-initialised 12, 19 \(filters 24 → 30\), seed 1/);
  const args = JSON.parse(fs.readFileSync(path.join(root, 'runs', 'transfer', 'args.json'), 'utf8')) as Record<string, unknown>;
  assert.is(args.weightsCfg, MINI_CFG);
  // the same weights without --weights-cfg: refused, saying how to transfer
  const no = await runCli(['train', '--cfg', mini5, '--data', synth.data, '--weights', file, '--max-batches', '1', '--name', 'refused', ...common]);
  assert.is(no.code, 1, no.out);
  assert.match(no.out, 'WeightsError');
  assert.match(no.out, 'file too short: layer 19 [convolutional]');
  assert.match(no.out, 'Give that cfg with --weights-cfg to transfer every layer whose shapes match');
  assert.not.ok(fs.existsSync(path.join(root, 'runs', 'refused')), 'no run folder for a refused start');

  // Darknet's continuation: seen 100 images at batch 2 = iteration 50; yolo-mini burns in over 100 updates
  // (lr 0.001 (k/100)^4), so update k of the run has the rate of k = 51, 52 (Darknet's get_current_batch)
  const gpu = await getGpu();
  const { file: w50 } = miniWeights(100n, 'seen100.weights');
  const run = async (o: { clear?: boolean; maxBatches: number; name: string }) => {
    const lines: string[] = [];
    const lrs: number[] = [];
    const r = await runTrain({
      cfg: MINI_CFG, data: synth.data, weights: w50, img: 64, batch: 2, subdivisions: 1, workers: 0, valEvery: 0, augment: false,
      out: path.join(root, 'runs'), progress: 'lines', logEvery: 1, gpu, log: (l) => lines.push(l), ...o,
      // the rate of each update, from the progress events (the schedule's values)
    });
    for (const l of lines) {
      const m = / lr (\S+) /.exec(l);
      if (m && l.startsWith('epoch')) lrs.push(Number(m[1]));
    }
    return { r, lines, lrs };
  };
  const burn = (k: number) => Number((0.001 * (k / 100) ** 4).toExponential(2));
  const cont = await run({ maxBatches: 52, name: 'continue' });
  assert.is(cont.r.iteration, 2, 'max_batches 52 from iteration 50: 2 updates');
  assert.equal(cont.lrs, [burn(51), burn(52)]);
  assert.ok(cont.lines.some((l) => l.includes("the weights have seen 100 images: Darknet's iteration 50 (seen / batch 2)") && l.includes('run ends at max_batches 52 (2 updates')), cont.lines.join('\n'));
  assert.ok(cont.lines.some((l) => l.includes('continued from iteration 50')), 'the schedule says it continues');
  assert.is((JSON.parse(fs.readFileSync(path.join(cont.r.runDir, 'args.json'), 'utf8')) as { startIteration: number }).startIteration, 50);
  // the saved weights carry the total seen (Darknet's), so a second continuation starts where this one ended
  const seenOf = (f: string) => Number(fs.readFileSync(f).readBigUInt64LE(12));
  assert.is(seenOf(path.join(cont.r.runDir, 'weights', 'last.weights')), 100 + 2 * 2, 'seen 100 + 2 updates of 2 images');

  const clear = await run({ clear: true, maxBatches: 2, name: 'clear' });
  assert.is(clear.r.iteration, 2);
  assert.equal(clear.lrs, [burn(1), burn(2)]);
  assert.ok(clear.lines.some((l) => l.startsWith("--clear: the weights' seen (100 images) is ignored")), clear.lines.join('\n'));
  assert.is(seenOf(path.join(clear.r.runDir, 'weights', 'last.weights')), 2 * 2, '--clear: this run only');

  // nothing left to train: refused before the run folder, naming --clear
  const done = await runCli(['train', '--cfg', MINI_CFG, '--data', synth.data, '--weights', w50, '--max-batches', '50', '--name', 'nothing', ...common]);
  assert.is(done.code, 1, done.out);
  assert.match(done.out, `TrainError: train: ${w50} has seen 100 images: Darknet's iteration 50 (seen / batch 2), already at or past max_batches 50`);
  assert.match(done.out, "Give --clear (Darknet's -clear)");
  assert.not.ok(fs.existsSync(path.join(root, 'runs', 'nothing')));
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
