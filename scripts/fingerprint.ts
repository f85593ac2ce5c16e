/**
 * Behaviour fingerprint: hashes of what the engine computes, to prove a refactor changes nothing
 * (issue 13: "bit-identical outputs before and after"). Runs through the public API only:
 *   - detections of the bundled images (yolo-mini, seeded weights, conf 0.01, full precision);
 *   - every layer output of one forward (yolo-mini at 128);
 *   - .weights after a fixed short training run: demo.cfg with the yolov5 loss (augmentation on) and
 *     yolo-mini with the Darknet loss (plain), on a generated synthetic set;
 *   - the val metrics of the trained demo network (every protocol number, the confusion matrix).
 *
 *   node --import tsx scripts/fingerprint.ts [--out fp.json] [--check fp.json]
 *
 * --check compares with a saved fingerprint and exits 1 naming each part that differs. Deterministic on
 * one adapter (docs/demo.md: the demo gives the same mAP run after run); compare on the same machine.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine, evaluate, generateSynth, loadDarknet, Tensor, train } from '../src/index.js';
import { loadImage, prepareImage } from '../src/data/image.js';
import { packageRoot } from '../src/util/paths.js';

const { values: a } = parseArgs({ options: { out: { type: 'string' }, check: { type: 'string' } } });
const root = packageRoot();
const sha = (b: Uint8Array | string) => crypto.createHash('sha256').update(b).digest('hex').slice(0, 16);
const f32bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

const fp: Record<string, string> = {};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-fingerprint-'));
const engine = await createEngine();
try {
  const mini = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
  const demo = path.join(root, 'fixtures/cfg/demo.cfg');
  const imgDir = path.join(root, 'fixtures/images');
  const images = fs.readdirSync(imgDir).filter((f) => /\.(png|jpe?g)$/.test(f)).sort().map((f) => path.join(imgDir, f));

  // detections
  const m = await loadDarknet({ engine, cfg: mini, seed: 9 });
  const dets = await m.detectBatch(images, { conf: 0.01, batch: 2 });
  fp['detect yolo-mini seed 9'] = sha(JSON.stringify(dets));
  fp['detect count'] = String(dets.reduce((s, d) => s + d.length, 0));

  // every layer of one forward
  const im = prepareImage(loadImage(images[0]), m.input.width, m.input.height, false).image;
  const x = Tensor.from(engine.gpu, [1, 3, m.input.height, m.input.width], im.data, 'fp-input');
  const outs = m.forward(x, { keep: [...Array(m.info().layers).keys()] });
  const h = crypto.createHash('sha256');
  for (const [i, t] of [...outs.entries()].sort((p, q) => p[0] - q[0])) h.update(`${i}:`).update(f32bytes(await t.toArray()));
  fp['forward yolo-mini all layers'] = h.digest('hex').slice(0, 16);
  x.dispose();
  m.dispose();

  // short training runs
  const synth = generateSynth({ out: path.join(tmp, 'synth'), trainCount: 24, valCount: 8, size: 96, seed: 5 });
  const d = await loadDarknet({ engine, cfg: demo, seed: 1 });
  await train({ model: d, data: synth.data, maxBatches: 12, batch: 8, subdivisions: 1, loss: 'yolov5', seed: 3, workers: 0 });
  fp['train demo.cfg yolov5 12 it'] = sha(d.toWeights());
  const ev = await evaluate({ model: d, data: synth.data, protocol: 'coco', conf: 0.001 });
  fp['val demo.cfg coco'] = sha(JSON.stringify({ m: ev.metrics, c: ev.confusion }));
  fp['val map50'] = ev.metrics.map50.toFixed(6);
  d.dispose();

  const y = await loadDarknet({ engine, cfg: mini, seed: 2 });
  await train({ model: y, data: synth.data, maxBatches: 6, batch: 4, subdivisions: 2, loss: 'darknet', seed: 4, workers: 0, augment: false });
  fp['train yolo-mini darknet 6 it'] = sha(y.toWeights());
  y.dispose();
} finally {
  engine.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
}

for (const [k, v] of Object.entries(fp)) console.log(`${k.padEnd(34)} ${v}`);
if (a.out) fs.writeFileSync(a.out, `${JSON.stringify(fp, null, 1)}\n`);
if (a.check) {
  const want = JSON.parse(fs.readFileSync(a.check, 'utf8')) as Record<string, string>;
  const diff = Object.keys({ ...want, ...fp }).filter((k) => want[k] !== fp[k]);
  for (const k of diff) console.log(`DIFFERS: ${k}: ${want[k]} -> ${fp[k]}`);
  console.log(diff.length ? `fingerprint: ${diff.length} part(s) differ from ${a.check}` : `fingerprint: identical to ${a.check}`);
  process.exitCode = diff.length ? 1 : 0;
}
