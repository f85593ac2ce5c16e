/** .weights read/write: bit-exact round trip, header variants, size mismatches with clear messages. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { decodeWeights, decodeWeightsPartial, DEFAULT_HEADER, describeWeightsLoad, encodeWeights, loadWeights, saveWeights, weightsFileSize, WeightsError } from '../../src/darknet/weights.js';

const CFG = `[net]
width=16
height=12
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[convolutional]
filters=4
size=1
activation=linear
[convolutional]
share_index=-1
filters=4
size=1
activation=linear
[maxpool]
size=2
stride=2
[connected]
output=5
batch_normalize=1
activation=relu
[connected]
output=3
activation=linear
`;

const mk = () => Network.build(parseCfg(CFG, 'w.cfg'));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-w-'));

function throwsMsg(fn: () => unknown, msg: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, WeightsError);
    assert.is((e as Error).message, msg);
    // the file is a field too when the message names one (decode: the name given; load: the path)
    const file = (e as WeightsError).file;
    if (file !== undefined) assert.ok(msg.includes(file), `${file} in ${msg}`);
    else assert.ok(msg.startsWith('cannot save'), `file field missing for: ${msg}`);
    return;
  }
  assert.unreachable(`expected: ${msg}`);
}

test('params in Darknet order; file size', () => {
  const net = mk();
  assert.equal(net.layers[0].params.map((p) => `${p.name}:${p.count}`), ['biases:4', 'scales:4', 'rolling_mean:4', 'rolling_variance:4', 'weights:108']);
  assert.equal(net.layers[2].params, [], 'share_index layer has no own parameters');
  assert.equal(net.layers[4].params.map((p) => `${p.name}:${p.count}`), ['biases:5', 'weights:' + 5 * 4 * 6 * 8, 'scales:5', 'rolling_mean:5', 'rolling_variance:5']);
  assert.is(weightsFileSize(net), 20 + 4 * (16 + 108 + 4 + 16 + 5 + 960 + 15 + 3 + 15));
});

test('write -> read is bit-exact (seeded init), atomic file write', () => {
  const a = mk();
  a.initWeights(7);
  // make the values non-trivial everywhere (-0 and subnormals included; NaN is refused at load, below)
  a.layers[0].data!.rolling_mean[1] = -0;
  a.layers[0].data!.biases[2] = 1e-40;
  const dir = tmp();
  const file = path.join(dir, 'w.weights');
  saveWeights(a, file, { seen: 123456789012n });
  assert.equal(fs.readdirSync(dir), ['w.weights'], 'no temporary file left behind');
  const b = mk();
  const h = loadWeights(b, file);
  assert.equal(h, { major: 0, minor: 2, revision: 5, seen: 123456789012n });
  for (const l of a.layers) {
    for (const p of l.params) {
      const x = new Uint32Array(l.data![p.name].buffer);
      const y = new Uint32Array(b.layers[l.index].data![p.name].buffer);
      assert.equal([...y], [...x], `layer ${l.index} ${p.name}`);
    }
  }
  const again = encodeWeights(b, h);
  assert.equal(Buffer.compare(Buffer.from(again), fs.readFileSync(file)), 0, 'save(load(file)) == file');
  fs.rmSync(dir, { recursive: true });
});

test('NaN or infinite values are refused at load, naming the layer, the parameter and the first index', () => {
  const a = mk();
  a.initWeights(7);
  for (const [v, label] of [[Number.NaN, 'NaN'], [Number.POSITIVE_INFINITY, 'Infinity'], [Number.NEGATIVE_INFINITY, '-Infinity']] as const) {
    a.layers[4].data!.weights[17] = v;
    a.layers[4].data!.weights[300] = v;
    const bytes = encodeWeights(a);
    const b = mk();
    assert.throws(() => decodeWeights(b, bytes, 'x.weights'), (e: unknown) => e instanceof WeightsError && e.message.startsWith(`x.weights: layer 4 [connected]`) && e.message.includes(`'weights' has 2 of 960 values that are NaN or infinite (the first, ${label}, at index 17`), label);
    assert.not.ok(b.layers[0].data, 'nothing was loaded');
  }
});

test('old header: 32-bit seen; transposed connected weights (major > 1000)', () => {
  const a = mk();
  a.initWeights(3);
  const old = encodeWeights(a, { major: 0, minor: 1, revision: 0, seen: 77n });
  assert.is(old.length, weightsFileSize(a) - 4);
  const b = mk();
  assert.equal(decodeWeights(b, old), { major: 0, minor: 1, revision: 0, seen: 77n });
  assert.equal([...b.layers[5].data!.weights], [...a.layers[5].data!.weights]);
  const tr = encodeWeights(a, { major: 1001, minor: 0, revision: 0, seen: 5n });
  assert.is(tr.length, weightsFileSize(a) - 4, 'major > 1000: 32-bit seen');
  // the stored connected matrix is [in][out]: stored[0][1] = W[1][0]
  const fc = a.layers[5];
  const stored = new Float32Array(tr.slice(tr.length - 4 * 15).buffer);
  assert.is(stored[1], fc.data!.weights[5]);
  assert.is(stored[3], fc.data!.weights[1]);
  const c = mk();
  decodeWeights(c, tr);
  assert.equal([...c.layers[5].data!.weights], [...fc.data!.weights]);
});

test('size mismatches name the layer and the expected vs found sizes', () => {
  const a = mk();
  a.initWeights(1);
  const bytes = encodeWeights(a);
  const n = bytes.length;
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, n - 8), 't.weights'),
    `t.weights: file too short: layer 5 [connected] (w.cfg:27) needs 15 floats of 'weights' at byte ${n - 60}, only 52 bytes are left (the file has ${n - 8} bytes, this cfg needs ${n}; wrong cfg for these weights?)`);
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, 30), 't.weights'),
    `t.weights: file too short: layer 0 [convolutional] (w.cfg:5) needs 4 floats of 'biases' at byte 20, only 10 bytes are left (the file has 30 bytes, this cfg needs ${n}; wrong cfg for these weights?)`);
  const long = new Uint8Array(n + 12);
  long.set(bytes);
  throwsMsg(() => decodeWeights(mk(), long, 't.weights'),
    `t.weights: file too long: 12 bytes (3 floats) are left after the last layer with parameters (5); this cfg needs exactly ${n} bytes, the file has ${n + 12} (wrong cfg for these weights?)`);
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, 8), 't.weights'), 't.weights: file too short for a .weights header (8 bytes, need at least 16)');
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, 18), 't.weights'), 't.weights: file too short for a .weights header (18 bytes, need 20 for version 0.2.5)');
  // a failed load leaves the network untouched
  const b = mk();
  try {
    decodeWeights(b, bytes.slice(0, n - 4));
  } catch { /* expected */ }
  assert.ok(b.layers.every((l) => l.data === null));
});

test('the golden yolov3-tiny / yolov4-tiny weights load exactly', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('golden weights');
  for (const [cfg, w] of [['yolov3-tiny', 'yolov3-tiny'], ['yolov4-tiny', 'yolov4-tiny']]) {
    const net = Network.fromFile(path.join(shared, 'darknet-cfg', `${cfg}.cfg`), { width: 160, height: 160 });
    const h = loadWeights(net, path.join(shared, 'golden/networks', `${w}.weights`));
    assert.equal([h.major, h.minor, h.revision], [0, 2, 0]);
    assert.is(h.seen, 0n);
  }
  const odd = Network.fromFile(path.join(shared, 'golden/networks/odd.cfg'));
  loadWeights(odd, path.join(shared, 'golden/networks/odd.weights'));
});

/** Every parameter of layer `i` of `a` and `b` bitwise equal. */
function sameLayer(a: Network, b: Network, i: number, label: string): void {
  for (const p of a.layers[i].params) {
    assert.equal([...new Uint32Array(b.layers[i].data![p.name].buffer)], [...new Uint32Array(a.layers[i].data![p.name].buffer)], `${label}: layer ${i} ${p.name}`);
  }
}

test('a cut file (Darknet partial): training loads the layers it holds, the rest get the seeded init; inference refuses it, saying train accepts it', () => {
  const a = mk();
  a.initWeights(7);
  const bytes = encodeWeights(a, { seen: 640n });
  const n = bytes.length;
  // layers 0-3 (0, 1 with parameters; 2 share_index, 3 maxpool have none): the file ends where layer 4 begins
  const cut = weightsFileSize(a, DEFAULT_HEADER, 4);
  assert.is(cut, 20 + 4 * (124 + 20));
  const b = mk();
  const r = decodeWeightsPartial(b, bytes.slice(0, cut), 't.conv.4', { seed: 9 });
  assert.equal(r.header, { major: 0, minor: 2, revision: 5, seen: 640n });
  assert.equal({ layers: r.layers, total: r.total, values: r.values, initialised: r.initialised }, { layers: 4, total: 6, values: 144, initialised: [4, 5] });
  const init = mk();
  init.initWeights(9);
  for (const i of [0, 1]) sameLayer(a, b, i, 'loaded from the file');
  for (const i of [4, 5]) sameLayer(init, b, i, 'seeded initialization');
  assert.is(b.freshInit, false);
  assert.is(describeWeightsLoad(r, 't.conv.4', b, { seed: 9 }), 'loaded layers 0–3 from t.conv.4 (144 values, header 0.2.5, seen 640); layers 4–5 initialised (seed 9)');
  // the whole file through the same path: every layer
  const whole = decodeWeightsPartial(mk(), bytes, 't.weights');
  assert.equal([whole.layers, whole.initialised], [6, []]);
  assert.is(describeWeightsLoad(whole, 't.weights', b), `loaded all 6 layers from t.weights (${(n - 20) / 4} values, header 0.2.5, seen 640)`);
  // layers after the cut that already hold values keep them
  const c = mk();
  c.initWeights(11);
  const keep = mk();
  keep.initWeights(11);
  decodeWeightsPartial(c, bytes.slice(0, cut), 't.conv.4', { seed: 9 });
  sameLayer(a, c, 0, 'loaded');
  sameLayer(keep, c, 5, 'kept');

  // inference: refused, naming where it ends and that `train` accepts a cut file
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, cut), 't.conv.4'),
    `t.conv.4: file too short: it ends at byte ${cut}, exactly where layer 4 [connected] (w.cfg:23) begins (this cfg needs ${n} bytes): a cut (partial) file holding layers 0–3, as Darknet's \`partial\` writes (e.g. yolov4-tiny.conv.29)? \`train\` accepts one (the layers after the cut start from their initialization); inference needs the whole network (else: the wrong cfg for these weights, or a truncated download)`);
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, 20), 't.conv.0'),
    `t.conv.0: file too short: it ends at byte 20, exactly where layer 0 [convolutional] (w.cfg:5) begins (this cfg needs ${n} bytes): a cut (partial) file holding no layer, as Darknet's \`partial\` writes (e.g. yolov4-tiny.conv.29)? \`train\` accepts one (the layers after the cut start from their initialization); inference needs the whole network (else: the wrong cfg for these weights, or a truncated download)`);
  // a header alone: no layer loaded, every layer initialised
  const h = decodeWeightsPartial(mk(), bytes.slice(0, 20), 't.conv.0', { seed: 9 });
  assert.equal([h.layers, h.values, h.initialised], [0, 0, [0, 1, 4, 5]]);
});

test('a cut inside a layer is an error naming the layer, in training too; a failed load leaves the network untouched', () => {
  const a = mk();
  a.initWeights(7);
  const bytes = encodeWeights(a);
  const n = bytes.length;
  const start4 = weightsFileSize(a, DEFAULT_HEADER, 4);
  const end4 = weightsFileSize(a, DEFAULT_HEADER, 5);
  const b = mk();
  throwsMsg(() => decodeWeightsPartial(b, bytes.slice(0, start4 + 8), 't.weights'),
    `t.weights: file too short: layer 4 [connected] (w.cfg:23) needs 5 floats of 'biases' at byte ${start4}, only 8 bytes are left (the file has ${start4 + 8} bytes, this cfg needs ${n}; it ends inside this layer, so it is no cut (partial) file either, whose end is a layer's end (here byte ${start4} or ${end4}): a truncated file, or the wrong cfg for these weights)`);
  assert.ok(b.layers.every((l) => l.data === null), 'nothing loaded, nothing initialised');
  // the existing message for inference is unchanged (inside layer 5)
  throwsMsg(() => decodeWeights(mk(), bytes.slice(0, n - 8), 't.weights'),
    `t.weights: file too short: layer 5 [connected] (w.cfg:27) needs 15 floats of 'weights' at byte ${n - 60}, only 52 bytes are left (the file has ${n - 8} bytes, this cfg needs ${n}; wrong cfg for these weights?)`);
  // a file too long is still refused in training (the wrong cfg)
  const long = new Uint8Array(n + 8);
  long.set(bytes);
  assert.throws(() => decodeWeightsPartial(mk(), long, 't.weights'), /file too long: 8 bytes \(2 floats\)/);
});

test('upto (Darknet load_weights_upto / save_weights_upto): reads layers [0, N), ignores the rest; writes them', () => {
  const a = mk();
  a.initWeights(5);
  const bytes = encodeWeights(a, { seen: 99n });
  const b = mk();
  decodeWeights(b, bytes, 'x.weights', { upto: 4 });
  assert.ok(b.layers[0].data && b.layers[1].data && !b.layers[4].data, 'layers 0-3 only');
  const out = encodeWeights(b, { seen: 99n }, { upto: 4 });
  assert.is(out.length, weightsFileSize(a, DEFAULT_HEADER, 4));
  assert.ok(Buffer.from(out).equals(Buffer.from(bytes.subarray(0, out.length))), 'the first layers byte for byte');
  // the cut needs layers [0, upto) whole
  assert.throws(() => decodeWeights(mk(), bytes.slice(0, 100), 'x.weights', { upto: 4 }), /x\.weights: file too short: layer 0 \[convolutional\]/);
  assert.throws(() => encodeWeights(b, {}, { upto: 5 }), /cannot save: layer 4 \[connected\] .* has no values/);
});

test.run();
