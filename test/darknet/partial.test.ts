/**
 * `yolo-wgsl partial` (Darknet's `partial`): byte for byte what AlexeyAB's darknet writes for the same input
 * (fixtures/golden/darknet_partial.json: sizes and SHA-256 of Darknet's outputs on seeded inputs that this
 * test rebuilds), and the round trip: a cut file loads into a cfg with more layers for training, while
 * inference refuses it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { Network } from '../../src/darknet/network.js';
import { decodeWeights, decodeWeightsPartial, encodeWeights } from '../../src/darknet/weights.js';
import { runPartial } from '../../src/cli/partial.js';
import { loadNetwork } from '../../src/api/model.js';
import { packageRoot } from '../../src/util/paths.js';
import { GOOD_PNG, MINI_CFG, runCli } from '../robustness/corpus.js';

interface GoldenCase {
  cfg: string;
  layers: number;
  input: { seed?: number; header?: { major: number; minor: number; revision: number; seen: number }; from?: string; bytes: number; sha256: string };
  output: { name: string; bytes: number; sha256: string };
}
const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/darknet_partial.json'), 'utf8')) as { cases: GoldenCase[] };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-partial-'));
const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** Every parameter of layers [from, to) of `a` and `b` bitwise equal. */
function sameLayers(a: Network, b: Network, from: number, to: number, label: string): number {
  let n = 0;
  for (const l of a.layers.slice(from, to)) {
    for (const p of l.params) {
      assert.ok(Buffer.from(b.layers[l.index].data![p.name].buffer).equals(Buffer.from(l.data![p.name].buffer)), `${label}: layer ${l.index} ${p.name}`);
      n++;
    }
  }
  return n;
}

test('partial == Darknet partial, byte for byte (golden sizes and SHA-256 from AlexeyAB darknet)', async () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the Darknet partial goldens (the yolov3-tiny / yolov4-tiny cfgs)');
  const outputs = new Map<string, string>();
  for (const [k, c] of golden.cases.entries()) {
    const cfg = path.join(shared, 'darknet-cfg', c.cfg);
    let input: string;
    if (c.input.from) {
      input = outputs.get(c.input.from)!;
      assert.ok(input, `case ${k}: ${c.input.from} comes earlier`);
    } else {
      const net = Network.fromFile(cfg);
      net.initWeights(c.input.seed);
      const h = c.input.header!;
      const bytes = encodeWeights(net, { ...h, seen: BigInt(h.seen) });
      assert.is(bytes.length, c.input.bytes, `case ${k}: input size`);
      assert.is(sha256(bytes), c.input.sha256, `case ${k}: the seeded input is the one Darknet was given`);
      input = path.join(tmp, `in-${k}.weights`);
      fs.writeFileSync(input, bytes);
    }
    const out = path.join(tmp, c.output.name);
    const args = ['partial', '--cfg', cfg, '--weights', input, '--out', out, '--layers', String(c.layers)];
    if (k === 0) {
      // once through the command line
      const r = await runCli(args);
      assert.is(r.code, 0, r.out);
      assert.match(r.out, `partial: layers 0–${c.layers - 1} of ${c.cfg}`);
      assert.match(r.out, `${c.output.bytes} bytes`);
    } else {
      runPartial({ cfg, weights: input, out, layers: c.layers, log: () => {} });
    }
    const written = fs.readFileSync(out);
    assert.is(written.length, c.output.bytes, `${c.output.name}: size`);
    assert.is(sha256(written), c.output.sha256, `${c.output.name}: bytes equal Darknet's`);
    outputs.set(c.output.name, out);
  }

  // round trip: the cut of yolov4-tiny (layers 0-28) into yolov4-tiny-custom.cfg (38 layers, same backbone)
  const c0 = golden.cases[0];
  const full = Network.fromFile(path.join(shared, 'darknet-cfg', c0.cfg));
  full.initWeights(c0.input.seed);
  const custom = Network.fromFile(path.join(shared, 'darknet-cfg', 'yolov4-tiny-custom.cfg'));
  const cutFile = outputs.get(c0.output.name)!;
  const r = decodeWeightsPartial(custom, fs.readFileSync(cutFile), cutFile, { seed: 5 });
  assert.equal([r.layers, r.total, r.header.seen], [29, 38, 0n]);
  assert.equal(r.initialised, [29, 32, 35, 36]);
  assert.is(sameLayers(full, custom, 0, 29, 'layers 0-28 from the cut file'), 17 * 5, '17 convolutions with batchnorm');
  const init = Network.fromFile(path.join(shared, 'darknet-cfg', 'yolov4-tiny-custom.cfg'));
  init.initWeights(5);
  sameLayers(init, custom, 29, 38, 'layers 29-37: the seeded initialization');
  // inference refuses the cut file
  assert.throws(() => decodeWeights(Network.fromFile(path.join(shared, 'darknet-cfg', 'yolov4-tiny.cfg')), fs.readFileSync(cutFile), cutFile),
    (e: Error) => e.message.includes('exactly where layer 29 [convolutional]') && e.message.includes('`train` accepts one'));
  for (const f of fs.readdirSync(tmp)) fs.rmSync(path.join(tmp, f));
});

test('partial on the bundled yolo-mini through the CLI; forward refuses the cut file, naming train; bad --layers are usage errors', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'mini-'));
  const net = Network.fromFile(MINI_CFG);
  net.initWeights(3);
  const w = path.join(dir, 'mini.weights');
  fs.writeFileSync(w, encodeWeights(net, { seen: 4096n }));
  const cut = path.join(dir, 'mini.conv.12');
  const r = await runCli(['partial', '--cfg', MINI_CFG, '--weights', w, '--out', cut, '--layers', '12']);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, 'partial: layers 0–11 of yolo-mini.cfg (7 with parameters)');
  assert.match(r.out, 'seen 4096');
  const bytes = fs.readFileSync(cut);
  assert.equal([...new Uint32Array(bytes.buffer, bytes.byteOffset, 5)], [0, 2, 5, 0, 0], 'header 0.2.5, seen 0 (64-bit)');
  // training loads it: layers 0-11 as in the full file, the heads' layers initialised
  const b = Network.fromFile(MINI_CFG);
  const load = decodeWeightsPartial(b, bytes, cut, { seed: 2 });
  assert.equal([load.layers, load.initialised], [12, [12, 15, 18, 19]]);
  sameLayers(net, b, 0, 12, 'cut');
  // the library: loadNetwork / loadDarknet take it with partial: true only
  const lines: string[] = [];
  const lib = await loadNetwork({ cfg: MINI_CFG, weights: new Uint8Array(bytes), partial: true, seed: 2, log: (l) => lines.push(l) });
  assert.equal(lines, [`loaded layers 0–11 from <weights> (${(bytes.length - 20) / 4} values, header 0.2.5, seen 0); layers 12–20 initialised (seed 2)`]);
  sameLayers(b, lib, 0, 21, 'library == decodeWeightsPartial');
  try {
    await loadNetwork({ cfg: MINI_CFG, weights: cut });
    assert.unreachable('a cut file without partial: true');
  } catch (e) {
    assert.match((e as Error).message, `${cut}: file too short: it ends at byte ${bytes.length}, exactly where layer 12 [convolutional]`);
  }
  // inference refuses it, saying train takes it
  const f = await runCli(['forward', '--cfg', MINI_CFG, '--weights', cut, '--input', GOOD_PNG, '--out', path.join(dir, 'fwd')]);
  assert.is(f.code, 1, f.out);
  for (const s of ['WeightsError', cut, 'exactly where layer 12 [convolutional]', 'a cut (partial) file holding layers 0–11', '`train` accepts one']) assert.match(f.out, s);
  assert.not.ok(fs.existsSync(path.join(dir, 'fwd')), 'nothing written');
  // usage errors name the option
  for (const [v, says] of [['2.5', '--layers: expected an integer >= 0'], ['30', '--layers 30: ']] as const) {
    const u = await runCli(['partial', '--cfg', MINI_CFG, '--weights', w, '--out', path.join(dir, 'x'), '--layers', v]);
    assert.is(u.code, 2, u.out);
    assert.match(u.out, says);
  }
  // forward keeps its text --layers
  const fa = await runCli(['forward', '--cfg', MINI_CFG, '--weights', w, '--input', GOOD_PNG, '--out', path.join(dir, 'all'), '--layers', 'all']);
  assert.is(fa.code, 0, fa.out);
  // a weights file that does not hold the layers asked for names the layer
  const short = await runCli(['partial', '--cfg', MINI_CFG, '--weights', cut, '--out', path.join(dir, 'y'), '--layers', '20']);
  assert.is(short.code, 1, short.out);
  assert.match(short.out, 'layer 12 [convolutional]');
  assert.not.ok(fs.existsSync(path.join(dir, 'y')));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test.run();
