/** .weights read/write: bit-exact round trip, header variants, size mismatches with clear messages. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { decodeWeights, encodeWeights, loadWeights, saveWeights, weightsFileSize, WeightsError } from '../../src/darknet/weights.js';

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

test.run();
