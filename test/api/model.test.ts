import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet, CfgError, WeightsError, Tensor, type Detection } from '../../src/index.js';
import { runForward } from '../../src/cli/forward.js';
import { readNpyF32, writeNpy } from '../../src/util/npy.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { detectWithNetwork, loadDetectNetwork } from '../../src/cli/detect.js';
import { detectImages, fromDarknetNetwork } from '../../src/api/detector.js';
import { loadNetwork } from '../../src/api/model.js';
import { loadImage } from '../../src/data/image.js';
import { PNG } from 'pngjs';
import { packageRoot } from '../../src/util/paths.js';

const root = packageRoot();
const MINI = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const NAMES = path.join(root, 'fixtures/cfg/yolo-mini.names');
const IMAGES = fs.readdirSync(path.join(root, 'fixtures/images')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(root, 'fixtures/images', f));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'yw-api-'));

/** Seeded weights with the head biases raised so that the untrained model reports boxes at conf 0.05. */
async function weightsFile(): Promise<string> {
  const dir = tmp();
  const m = await loadDarknet({ cfg: MINI, engine: new Engine(await getGpu()), seed: 7 });
  const file = path.join(dir, 'mini.weights');
  await m.save(file);
  m.dispose();
  return file;
}

const asCli = (d: Detection) => ({ classId: d.classId, name: d.name, score: d.score, objectness: d.objectness, pixels: d.box });

test('loadDarknet + detect: the same detections as the detect command core (paths, bytes, RGBA pixels)', async () => {
  const gpu = await getGpu();
  const engine = new Engine(gpu);
  const weights = await weightsFile();
  const model = await loadDarknet({ cfg: MINI, weights, names: NAMES, engine });
  const ref = await loadDetectNetwork(gpu, MINI, weights);
  const expected = await detectWithNetwork(gpu, ref, IMAGES, { conf: 0.05, iou: 0.45, names: ['circle', 'square', 'triangle'] });
  ref.dispose?.();
  let total = 0;
  for (let i = 0; i < IMAGES.length; i++) {
    const want = expected[i].objects.map((o) => ({ classId: o.classId, name: o.name, score: o.score, objectness: o.objectness, pixels: o.pixels }));
    total += want.length;
    const byPath = await model.detect(IMAGES[i], { conf: 0.05, iou: 0.45 });
    assert.equal(byPath.map(asCli), want, `${IMAGES[i]} by path`);
    const byBytes = await model.detect(new Uint8Array(fs.readFileSync(IMAGES[i])), { conf: 0.05, iou: 0.45 });
    assert.equal(byBytes.map(asCli), want, `${IMAGES[i]} by bytes`);
  }
  assert.ok(total > 0, 'some detections to compare');
  // RGBA pixels (what a browser ImageData holds) of a PNG: identical input, identical detections
  const png = PNG.sync.read(fs.readFileSync(IMAGES.find((f) => f.endsWith('rgb-13x9.png'))!));
  const fromPixels = await model.detect({ data: png.data, width: png.width, height: png.height }, { conf: 0.05 });
  const fromFile = await model.detect(IMAGES.find((f) => f.endsWith('rgb-13x9.png'))!, { conf: 0.05 });
  assert.equal(fromPixels, fromFile);
  // RGB pixels
  const im = loadImage(IMAGES[0]);
  const rgb = new Uint8Array(im.width * im.height * 3);
  const n = im.width * im.height;
  for (let k = 0; k < n; k++) for (let c = 0; c < 3; c++) rgb[3 * k + c] = Math.round(im.data[c * n + k] * 255);
  assert.equal(await model.detect({ data: rgb, width: im.width, height: im.height }, { conf: 0.05 }), await model.detect(IMAGES[0], { conf: 0.05 }));
  // batched = one by one
  const batched = await model.detectBatch(IMAGES, { conf: 0.05, batch: 3 });
  for (let i = 0; i < IMAGES.length; i++) {
    const one = await model.detect(IMAGES[i], { conf: 0.05 });
    assert.is(batched[i].length, one.length);
    batched[i].forEach((d, k) => {
      assert.is(d.classId, one[k].classId);
      assert.ok(Math.abs(d.score - one[k].score) < 1e-5, 'batched scores agree');
    });
  }
  // maxDet
  const few = await model.detect(IMAGES[0], { conf: 0.01, maxDet: 2 });
  assert.ok(few.length <= 2);
  model.dispose();
});

test('loadDarknet from strings and bytes; info(); save -> reload gives identical weights', async () => {
  const engine = new Engine(await getGpu());
  const text = fs.readFileSync(MINI, 'utf8');
  const a = await loadDarknet({ cfg: text, names: ['circle', 'square', 'triangle'], engine, seed: 3 });
  const info = a.info();
  assert.equal(info.input, { width: 128, height: 128, channels: 3 });
  assert.is(info.classes, 3);
  assert.is(info.heads.length, 2);
  assert.is(info.heads[0].anchors, 3);
  assert.ok(info.params > 10000 && info.bflops > 0);
  assert.is(info.table.length, info.layers);
  const bytes = a.toWeights();
  const b = await loadDarknet({ cfg: new TextEncoder().encode(text), weights: bytes, names: 'circle\nsquare\ntriangle\n', engine });
  assert.equal(b.names, ['circle', 'square', 'triangle']);
  assert.equal([...b.toWeights()], [...bytes]);
  const file = path.join(tmp(), 'w.weights');
  await b.save(file);
  assert.equal([...fs.readFileSync(file)], [...bytes]);
  a.dispose();
  b.dispose();
});

test('model.forward: the head inputs equal the forward command\'s on the same .npy input and weights', async () => {
  const engine = new Engine(await getGpu());
  const weights = await weightsFile();
  const model = await loadDarknet({ cfg: MINI, weights, engine });
  const dir = tmp();
  const data = randomArray(new Rng(8), 2 * 3 * 128 * 128, 0, 1);
  writeNpy(path.join(dir, 'x.npy'), [2, 3, 128, 128], data);
  await runForward({ cfg: MINI, weights, input: path.join(dir, 'x.npy'), out: path.join(dir, 'out'), gpu: engine.gpu, log: () => {} });
  const x = Tensor.from(engine.gpu, [2, 3, 128, 128], data);
  const outs = model.forward(x, { keep: [12, 19] });
  try {
    assert.equal([...outs.keys()], [12, 13, 19, 20]);
    for (const [layer, head] of [[12, 13], [19, 20]]) {
      const want = readNpyF32(path.join(dir, 'out', `layer_${head}_input.npy`));
      assert.equal(outs.get(layer)!.shape, want.shape);
      assert.equal([...(await outs.get(layer)!.toArray())], [...want.data], `layer ${layer}`);
    }
  } finally {
    for (const t of new Set(outs.values())) t.dispose();
    x.dispose();
    model.dispose();
  }
});

test('model.recordForward: run() gives model.forward\'s bits for each image written into the input; outputs are the replay\'s', async () => {
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ cfg: MINI, engine, width: 64, height: 64 });
  const imgs = [21, 22].map((s) => randomArray(new Rng(s), 3 * 64 * 64, 0, 1));
  const x = Tensor.from(engine.gpu, [1, 3, 64, 64], imgs[0]);
  const want: Map<number, Float32Array>[] = [];
  for (const img of imgs) {
    x.write(img);
    const o = model.forward(x, { keep: [12] });
    const m = new Map<number, Float32Array>();
    for (const [k, t] of o) m.set(k, await t.toArray());
    for (const t of new Set(o.values())) t.dispose();
    want.push(m);
  }
  const replay = model.recordForward(x, { keep: [12] });
  try {
    assert.equal([...replay.outputs.keys()].sort((a, b) => a - b), [...want[0].keys()].sort((a, b) => a - b));
    for (const i of [1, 0, 1]) {
      x.write(imgs[i]);
      const outs = replay.run();
      for (const [k, t] of outs) assert.equal([...(await t.toArray())], [...want[i].get(k)!], `image ${i}, layer ${k}`);
    }
  } finally {
    replay.dispose();
    x.dispose();
    model.dispose();
  }
});

test('model.detect replays its forward from the third call at one batch size: the detections of plain forwards, call after call; dispose hands the recordings back to a shared engine', async () => {
  const gpu = await getGpu();
  const engine = new Engine(gpu);
  const weights = await weightsFile();
  const reserved0 = gpu.pool.reserved;
  const model = await loadDarknet({ cfg: MINI, weights, names: NAMES, engine });
  // the reference: the same network, every forward plain
  const net = await loadNetwork({ cfg: MINI, weights });
  const plain = fromDarknetNetwork(net, gpu, { replay: false });
  try {
    const images = IMAGES.slice(0, 3).map((f) => loadImage(f));
    let total = 0;
    for (const round of [0, 1, 2]) {
      for (const [i, im] of images.entries()) {
        const want = (await detectImages(gpu, plain, [im], { conf: 0.05, names: ['circle', 'square', 'triangle'] })).images[0].objects;
        const got = await model.detect({ data: rgbOf(im), width: im.width, height: im.height }, { conf: 0.05 });
        assert.equal(got.map(asCli), want.map((o) => ({ classId: o.classId, name: o.name, score: o.score, objectness: o.objectness, pixels: o.pixels })), `round ${round}, image ${i}`);
        total += got.length;
      }
    }
    assert.ok(total > 0, 'some detections to compare');
    assert.ok(gpu.pool.reserved > reserved0, 'the model holds a recorded forward');
  } finally {
    model.dispose();
    plain.dispose?.();
  }
  assert.is(gpu.pool.reserved, reserved0, 'dispose handed the recording\'s buffers back');
});

/** A planar float image as interleaved RGB bytes (what it was decoded from). */
function rgbOf(im: { width: number; height: number; data: Float32Array }): Uint8Array {
  const n = im.width * im.height;
  const rgb = new Uint8Array(n * 3);
  for (let k = 0; k < n; k++) for (let c = 0; c < 3; c++) rgb[3 * k + c] = Math.round(im.data[c * n + k] * 255);
  return rgb;
}

test('typed errors: CfgError with file/line/key, WeightsError for a wrong file', async () => {
  const engine = new Engine(await getGpu());
  const bad = fs.readFileSync(MINI, 'utf8').replace('filters=8', 'filters=eight');
  try {
    await loadDarknet({ cfg: bad, engine });
    assert.unreachable('bad cfg loaded');
  } catch (e) {
    assert.instance(e, CfgError);
    const c = e as CfgError;
    assert.is(c.key, 'filters');
    assert.ok(c.line > 20, `line ${c.line}`);
    assert.is(c.file, '<cfg>');
  }
  // a cfg passed as text or bytes gets the name the caller gives it (a browser's picked file)
  const named = await loadDarknet({ cfg: new TextEncoder().encode(bad), cfgName: 'picked.cfg', engine }).then(() => undefined, (e: unknown) => e);
  assert.instance(named, CfgError);
  assert.match((named as CfgError).message, /^picked\.cfg:\d+: \[convolutional\] key 'filters'/);
  try {
    await loadDarknet({ cfg: MINI, weights: new Uint8Array(100), engine });
    assert.unreachable('short weights loaded');
  } catch (e) {
    assert.instance(e, WeightsError);
  }
});

test.run();
