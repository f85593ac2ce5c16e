import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { runForward } from '../../src/cli/forward.js';
import { detect } from '../../src/cli/detect.js';
import { readNpyF32, writeNpy } from '../../src/util/npy.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const root = packageRoot();
const MINI = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'yw-cli-'));

test('forward: .npy input is used as given; one layer_<i>_input.npy per head, --layers all writes every layer', async () => {
  const gpu = await getGpu();
  const dir = tmp();
  const input = path.join(dir, 'x.npy');
  writeNpy(input, [2, 3, 64, 96], randomArray(new Rng(5), 2 * 3 * 64 * 96, 0, 1));
  const r = await runForward({ cfg: MINI, input, out: path.join(dir, 'out'), layers: 'all', gpu, log: () => {} });
  assert.equal(r.inputShape, [2, 3, 64, 96]);
  const h13 = readNpyF32(path.join(dir, 'out/layer_13_input.npy'));
  const h20 = readNpyF32(path.join(dir, 'out/layer_20_input.npy'));
  assert.equal(h13.shape, [2, 24, 4, 6], 'the input size comes from the .npy, not the cfg');
  assert.equal(h20.shape, [2, 24, 8, 12]);
  // the head input is the output of the conv feeding it
  assert.equal([...readNpyF32(path.join(dir, 'out/layer_12.npy')).data], [...h13.data]);
  assert.is(fs.readdirSync(path.join(dir, 'out')).filter((f) => /^layer_\d+\.npy$/.test(f)).length, 21);
});

test('forward: yolov3-tiny head inputs match OpenCV DNN (../shared golden)', async () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('yolov3-tiny vs OpenCV');
  const gpu = await getGpu();
  const g = path.join(shared, 'golden/networks');
  const dir = tmp();
  await runForward({ cfg: path.join(shared, 'darknet-cfg/yolov3-tiny.cfg'), weights: path.join(g, 'yolov3-tiny.weights'), input: path.join(g, 'out_v3t/input.npy'), out: dir, gpu, log: () => {} });
  for (const [mine, cv] of [['layer_16_input', 'conv_15'], ['layer_23_input', 'conv_22']]) {
    const a = readNpyF32(path.join(dir, `${mine}.npy`));
    const b = readNpyF32(path.join(g, `out_v3t/${cv}.npy`));
    assert.equal(a.shape, b.shape);
    const scale = maxAbs(b.data);
    let err = 0;
    for (let i = 0; i < a.data.length; i++) err = Math.max(err, Math.abs(a.data[i] - b.data[i]));
    assert.ok(err <= 1e-4 * scale, `${mine}: max error ${err} > 1e-4 x ${scale}`);
  }
});

test('detect: annotated PNG and JSON per image, YOLO txt on request (bundled cfg, seeded weights)', async () => {
  const gpu = await getGpu();
  const out = tmp();
  const logs: string[] = [];
  const res = await detect({
    cfg: MINI, names: path.join(root, 'fixtures/cfg/yolo-mini.names'), source: path.join(root, 'fixtures/images'),
    conf: 0.05, out, saveTxt: true, gpu, log: (l) => logs.push(l),
  });
  assert.ok(logs.some((l) => /seeded random weights/.test(l)), 'says the weights are random');
  const images = fs.readdirSync(path.join(root, 'fixtures/images')).filter((f) => /\.(png|jpe?g)$/i.test(f));
  assert.is(res.length, images.length);
  for (const r of res) {
    const base = path.basename(r.file).replace(/\.[^.]+$/, '');
    assert.ok(fs.existsSync(path.join(out, `${base}.png`)));
    const j = JSON.parse(fs.readFileSync(path.join(out, `${base}.json`), 'utf8'));
    assert.is(j.width, r.width);
    assert.is(j.detections.length, r.objects.length);
    for (const d of j.detections) {
      assert.ok(d.score >= 0.05 && d.score <= 1);
      assert.ok(['circle', 'square', 'triangle'].includes(d.name));
      const [x1, y1, x2, y2] = d.bbox_xyxy;
      assert.ok(x1 >= 0 && y1 >= 0 && x2 <= r.width && y2 <= r.height && x1 <= x2 && y1 <= y2, 'boxes in image pixels, clipped');
    }
    const txt = fs.readFileSync(path.join(out, 'labels', `${base}.txt`), 'utf8').trim();
    assert.is(txt ? txt.split('\n').length : 0, r.objects.length);
  }
});

test.run();
