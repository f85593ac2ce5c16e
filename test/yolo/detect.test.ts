import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { Tensor } from '../../src/tensor/index.js';
import { detect, detectWithNetwork, listSources, readNames } from '../../src/cli/detect.js';
import { fromDarknetNetwork, type DarknetNetworkLike, type DetectNetwork } from '../../src/api/detector.js';
import { boxToImage, placement } from '../../src/data/image.js';
import { classColor } from '../../src/viz/draw.js';
import { headFromLayer } from '../../src/yolo/heads.js';
import { makeRgba, writePng } from '../../src/viz/draw.js';

/**
 * A stand-in network: one [yolo] head (1 anchor 16x16 px, 2 classes) on a 4x4 grid of a 64x64 input whose
 * output holds, per image, two overlapping class-1 boxes (IoU 0.463, DIoU(0.6) 0.30) and one class-0 box.
 */
function fakeNetwork(): DetectNetwork & { calls: number[][] } {
  const H = 4;
  const W = 4;
  const K = 7;
  const logit = (p: number) => Math.log(p / (1 - p));
  const calls: number[][] = [];
  return {
    width: 64, height: 64, channels: 3, letterBox: true,
    heads: [{ anchors: [16, 16], classes: 2 }],
    nms: { kind: 'iou' },
    calls,
    forwardHeads(input: Tensor) {
      calls.push([...input.shape]);
      const out = new Float32Array(input.shape[0] * K * H * W).fill(-10);
      const put = (b: number, y: number, x: number, tx: number, ty: number, w: number, obj: number, cls: [number, number]) => {
        const at = (k: number) => ((b * K + k) * H + y) * W + x;
        out[at(0)] = logit(tx); out[at(1)] = logit(ty);
        out[at(2)] = Math.log(w / 16); out[at(3)] = Math.log(w / 16);
        out[at(4)] = logit(obj); out[at(5)] = logit(cls[0]); out[at(6)] = logit(cls[1]);
      };
      for (let b = 0; b < input.shape[0]; b++) {
        put(b, 1, 2, 0.5, 0.5, 24, 0.95, [0.01, 0.9]); // centre (0.625, 0.375), 24 px: score 0.855
        put(b, 1, 1, 0.95, 0.5, 24, 0.9, [0.01, 0.8]); // centre (0.4875, 0.375): score 0.72
        put(b, 3, 0, 0.5, 0.5, 8, 0.8, [0.7, 0.1]); // class 0 at (0.125, 0.875), 8 px: score 0.56
      }
      return [Tensor.from(input.gpu, [input.shape[0], K, H, W], out)];
    },
  };
}

test('detect pipeline: decode, NMS, letterbox inverse mapping, drawn PNG and label files', async () => {
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-detect-'));
  // two images of different aspect ratios
  writePng(path.join(dir, 'wide.png'), makeRgba(96, 48, [100, 100, 100]));
  writePng(path.join(dir, 'tall.png'), makeRgba(40, 80, [100, 100, 100]));
  fs.writeFileSync(path.join(dir, 'list.txt'), 'wide.png\n\ntall.png\n');
  fs.writeFileSync(path.join(dir, 'names.txt'), 'cat\ndog\n\n');
  const files = listSources(path.join(dir, 'list.txt'));
  assert.equal(files, [path.join(dir, 'wide.png'), path.join(dir, 'tall.png')]);
  assert.equal(listSources(dir), [path.join(dir, 'tall.png'), path.join(dir, 'wide.png')]);
  const names = readNames(path.join(dir, 'names.txt'));
  assert.equal(names, ['cat', 'dog']);
  const net = fakeNetwork();
  const out = path.join(dir, 'out');
  const logs: string[] = [];
  const res = await detectWithNetwork(gpu, net, files, { names, out, saveTxt: true, batch: 2, conf: 0.25, iou: 0.45, log: (l) => logs.push(l) });
  assert.equal(net.calls, [[2, 3, 64, 64]]);
  assert.is(res.length, 2);
  for (const r of res) {
    // the two class-1 boxes overlap with IoU > 0.45: one dog and one cat remain, best first
    assert.equal(r.objects.map((o) => o.name), ['dog', 'cat']);
    assertClose([r.objects[0].score, r.objects[1].score], [0.95 * 0.9, 0.8 * 0.7], { atol: 1e-5, rtol: 0 }, 'scores');
    const pl = placement(r.width, r.height, 64, 64, true);
    const want = boxToImage({ x: 0.625, y: 0.375, w: 24 / 64, h: 24 / 64 }, pl);
    const b = r.objects[0].box;
    assertClose([b.x, b.y, b.w, b.h], [want.x, want.y, want.w, want.h], { atol: 1e-5, rtol: 0 }, `${r.file} box`);
    // drawn image: the box's top-left corner pixel has the dog colour
    const png = PNG.sync.read(fs.readFileSync(r.outImage!));
    assert.equal([png.width, png.height], [r.width, r.height]);
    const p = r.objects[0].pixels;
    const o = (Math.floor(p.y1) * png.width + Math.floor(p.x1)) * 4;
    assert.equal(Array.from(png.data.subarray(o, o + 3)), [...classColor(1, 2)], `${r.file} corner colour`);
    const lines = fs.readFileSync(r.outTxt!, 'utf8').trim().split('\n');
    assert.is(lines.length, 2);
    assert.ok(lines[0].startsWith('1 '), lines[0]);
  }
  // the wide image letterboxes to 64x32 in the middle: the box's vertical position doubles around the centre
  assertClose([res[0].objects[0].box.y], [(0.375 - 0.25) / 0.5], { atol: 1e-5, rtol: 0 }, 'wide y');
  assert.ok(logs.some((l) => l.includes('dog: 85%')), logs.join('\n'));
  // stretched instead of letterboxed: normalised boxes are the network's; DIoU-NMS keeps both dogs
  const res2 = await detectWithNetwork(gpu, fakeNetwork(), [files[0]], { conf: 0.25, letterbox: false, agnostic: true, nmsKind: 'diounms' });
  assertClose([res2[0].objects[0].box.x, res2[0].objects[0].box.y], [0.625, 0.375], { atol: 1e-5, rtol: 0 }, 'stretched box');
  assert.equal(res2[0].objects.map((o) => o.name), ['1', '1', '0']);
  // detect() with a loader
  const res3 = await detect({ cfg: 'unused.cfg', source: files[1], conf: 0.6, gpu, loader: async () => fakeNetwork() });
  assert.equal(res3[0].objects.map((o) => o.name), ['1']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('headFromLayer: [yolo] mask/anchors/nms_kind and [region] to decode specs', () => {
  const y = headFromLayer({ kind: 'yolo', options: { classes: 80, mask: [3, 4, 5], anchors: [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319], scaleXY: 1.05, newCoords: false, nmsKind: 'greedynms', betaNms: 0.6 } });
  assert.equal(y.spec, { kind: 'yolo', anchors: [81, 82, 135, 169, 344, 319], classes: 80, scaleXY: 1.05, newCoords: false });
  assert.equal(y.nms, { kind: 'diou', beta: 0.6 });
  const r = headFromLayer({ kind: 'region', options: { classes: 20, coords: 4, num: 2, anchors: [1, 2, 3, 4], softmax: true } });
  assert.equal(r.spec, { kind: 'region', anchors: [1, 2, 3, 4], classes: 20, softmax: true });
  assert.throws(() => headFromLayer({ kind: 'region', options: { classes: 20, coords: 5, num: 2, anchors: [1, 2, 3, 4], softmax: true } }), /coords=5/);
});

test('fromDarknetNetwork: heads from the layers, forwardHeads keeps the head convolutions and frees the rest', async () => {
  const gpu = await getGpu();
  const yoloOpts = { classes: 2, mask: [1], anchors: [5, 6, 16, 16], scaleXY: 1, newCoords: false, nmsKind: 'diounms', betaNms: 0.3 };
  let prepared = '';
  const made: Tensor[] = [];
  const layers: { kind: string; index: number; sources: number[]; carriesState: boolean; options?: unknown }[] = [
    { kind: 'convolutional', index: 0, sources: [-1], carriesState: false },
    { kind: 'yolo', index: 1, sources: [0], carriesState: false, options: yoloOpts },
  ];
  const fake: DarknetNetworkLike = {
    input: { c: 3, h: 64, w: 64 },
    net: { letterBox: false },
    layers,
    prepare: (_g, mode) => { prepared = mode; },
    preparation: null, // never prepared for real: every forward plain (no recording)
    recordForward: () => { throw new Error('not recorded'); },
    forward: (x, opts) => {
      assert.equal(opts.keep, [0]);
      const conv = Tensor.from(x.gpu, [x.shape[0], 7, 4, 4], new Float32Array(x.shape[0] * 112).fill(-10));
      const act = Tensor.from(x.gpu, [x.shape[0], 7, 4, 4], new Float32Array(x.shape[0] * 112));
      made.push(conv, act);
      return new Map([[0, conv], [1, act]]);
    },
    dispose: () => undefined,
  };
  const dn = fromDarknetNetwork(fake, gpu);
  assert.is(prepared, 'infer');
  assert.equal([dn.width, dn.height, dn.channels, dn.letterBox], [64, 64, 3, false]);
  assert.equal(dn.heads, [{ kind: 'yolo', anchors: [16, 16], classes: 2, scaleXY: 1, newCoords: false }]);
  assert.equal(dn.nms, { kind: 'diou', beta: 0.3 });
  const x = Tensor.from(gpu, [1, 3, 64, 64], new Float32Array(3 * 64 * 64));
  const heads = await dn.forwardHeads(x);
  assert.is(heads[0], made[0]);
  assert.ok(made[1].disposed, 'the [yolo] activation output is freed');
  heads[0].dispose(); x.dispose();
  assert.throws(() => fromDarknetNetwork({ ...fake, layers: [layers[0]] }, gpu), /no \[yolo\] or \[region\]/);
});

test.run();
