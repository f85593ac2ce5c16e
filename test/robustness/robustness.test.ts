/**
 * The bad-input suite: every kind of broken or hostile input the CLI takes (cfg, weights, image, .npy,
 * labels, dataset, predictions, option values), each run through the real command line (in this process:
 * `main(argv)` and the exit code `reportError` gives the bin) and held to three things:
 *   1. the exit code (0 handled, 1 refused, 2 usage error);
 *   2. the message names the file, line or key (and, for a refusal, the error class);
 *   3. nothing is left under a final name in the case's output folder, and no temporary anywhere.
 * A new case is one row of CASES. The HTTP cases are in test/examples/server.test.ts; a full disk in
 * test/robustness/diskfull.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, ImageError, loadDarknet, type Model } from '../../src/index.js';
import { Network } from '../../src/darknet/network.js';
import { resolveTrainSettings } from '../../src/api/train.js';
import { SettingError } from '../../src/util/validate.js';
import { getGpu } from '../helpers/gpu.js';
import { CaseDir, MINI_CFG, GOOD_PNG, bombPng, filesUnder, layerOffset, npy, poison, runCli } from './corpus.js';

interface Case {
  name: string;
  /** The command line (after `yolo-wgsl`), built in the case's folder. */
  args: (c: CaseDir) => string[];
  /** Expected exit code. */
  code: 0 | 1 | 2;
  /** What the output must say (the file, line or key; the error class for refusals). */
  says: (c: CaseDir) => (string | RegExp)[];
  /** Files expected under out/ (relative; default none). */
  writes?: string[];
}

const forward = (c: CaseDir, cfg: string, weights: string | null, input: string) => ['forward', '--cfg', cfg, ...(weights ? ['--weights', weights] : []), '--input', input, '--out', c.out];
const detect = (c: CaseDir, cfg: string, weights: string | null, source: string, ...more: string[]) => ['detect', '--cfg', cfg, ...(weights ? ['--weights', weights] : []), '--source', source, '--out', c.out, ...more];
const cfgAt = (c: CaseDir) => path.join(c.dir, 'net.cfg');

const CASES: Case[] = [
  // ---- cfg
  { name: 'cfg: a UTF-8 BOM before [net] is accepted', args: (c) => ['info', '--cfg', c.cfg((t) => `\uFEFF${t}`)], code: 0, says: () => ['Total BFLOPs'] },
  { name: 'cfg: width=100000', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('width=128', 'width=100000'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:6`, "'width'", 'too large'] },
  { name: 'cfg: an input of 2^30 values', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('width=128', 'width=16384').replace('height=128', 'height=16384'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:3`, '[net] input 16384x16384x3'] },
  { name: 'cfg: [yolo] num=1000000000', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace(/^num\s*=.*$/m, 'num=1000000000'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:`, "[yolo] key 'num'", 'must be <= 1024'] },
  { name: 'cfg: a 30000x30000 kernel', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('size=3', 'size=30000'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:22`, 'parameters'] },
  { name: 'cfg: a non-numeric value', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('filters=8', 'filters=eight'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:`, "'filters'", "'eight'"] },
  { name: 'cfg: a key without a value', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('filters=8', 'filters='))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:`, "'filters' has no value"] },
  { name: 'cfg: an unknown section', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace('[maxpool]', '[maxpooling]'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:`, '[maxpooling]'] },
  { name: 'cfg: a route past the start', args: (c) => ['info', '--cfg', c.cfg((t) => t.replace(/layers\s*=\s*-?\d+/, 'layers=-99'))], code: 1, says: (c) => ['CfgError', `${cfgAt(c)}:`, "'layers'", 'out of range'] },
  { name: 'cfg: empty file', args: (c) => ['info', '--cfg', c.file('empty.cfg', '')], code: 1, says: (c) => ['CfgError', `${path.join(c.dir, 'empty.cfg')}:1`, 'no sections'] },
  { name: 'cfg: binary garbage', args: (c) => ['info', '--cfg', c.file('garbage.cfg', new Uint8Array(300).map((_, i) => (i * 97 + 13) & 255))], code: 1, says: (c) => ['CfgError', `${path.join(c.dir, 'garbage.cfg')}:`] },
  { name: 'cfg: a folder', args: (c) => ['info', '--cfg', c.dir], code: 1, says: (c) => [`cannot read cfg ${c.dir}`, 'EISDIR'] },
  { name: 'cfg: missing', args: (c) => ['info', '--cfg', path.join(c.dir, 'nope.cfg')], code: 1, says: (c) => [`cannot read cfg ${path.join(c.dir, 'nope.cfg')}`, 'ENOENT'] },
  // ---- weights
  { name: 'weights: NaN in a layer', args: (c) => forward(c, c.cfg(), c.weights((b, n) => poison(b, layerOffset(n, 2) + 8, NaN, 5)), GOOD_PNG), code: 1, says: (c) => ['WeightsError', path.join(c.dir, 'net.weights'), 'layer 2 [convolutional]', '5 of', 'NaN or infinite'] },
  { name: 'weights: Infinity in a layer', args: (c) => forward(c, c.cfg(), c.weights((b, n) => poison(b, layerOffset(n, 0), Infinity)), GOOD_PNG), code: 1, says: () => ['WeightsError', 'layer 0 [convolutional]', "'biases'", 'NaN or infinite'] },
  { name: 'weights: cut inside a layer', args: (c) => forward(c, c.cfg(), c.weights((b, n) => b.subarray(0, layerOffset(n, 4) + 10)), GOOD_PNG), code: 1, says: (c) => ['WeightsError', path.join(c.dir, 'net.weights'), 'too short', 'layer 4'] },
  { name: 'weights: too long', args: (c) => forward(c, c.cfg(), c.weights((b) => Buffer.concat([b, new Uint8Array(40)])), GOOD_PNG), code: 1, says: () => ['WeightsError', 'too long', '10 floats'] },
  { name: 'weights: a nonsense version header', args: (c) => forward(c, c.cfg(), c.weights((b) => poison(b, 0, 12345.678, 3)), GOOD_PNG), code: 1, says: (c) => ['WeightsError', path.join(c.dir, 'net.weights'), 'is not a Darknet .weights version'] },
  { name: 'weights: a cfg given as weights', args: (c) => forward(c, c.cfg(), c.cfg(undefined, 'other.cfg'), GOOD_PNG), code: 1, says: (c) => ['WeightsError', path.join(c.dir, 'other.cfg'), 'is a .cfg file, not a .weights file'] },
  { name: 'weights: an image given as weights', args: (c) => forward(c, c.cfg(), GOOD_PNG, GOOD_PNG), code: 1, says: () => ['WeightsError', GOOD_PNG, 'a PNG image, not a Darknet .weights file'] },
  { name: 'weights: empty file', args: (c) => forward(c, c.cfg(), c.file('empty.weights', ''), GOOD_PNG), code: 1, says: (c) => ['WeightsError', path.join(c.dir, 'empty.weights'), 'too short for a .weights header'] },
  { name: 'weights: missing', args: (c) => forward(c, c.cfg(), path.join(c.dir, 'nope.weights'), GOOD_PNG), code: 1, says: (c) => ['WeightsError', `cannot read weights ${path.join(c.dir, 'nope.weights')}`] },
  // ---- images and arrays
  { name: 'image: a 20000x20000 PNG bomb (196 bytes)', args: (c) => forward(c, c.cfg(), c.weights(), c.file('bomb.png', bombPng(20000, 20000))), code: 1, says: (c) => ['ImageError', path.join(c.dir, 'bomb.png'), '20000x20000', 'megapixels'] },
  { name: 'image: --max-pixels below a real image', args: (c) => [...forward(c, c.cfg(), c.weights(), GOOD_PNG), '--max-pixels', '100'], code: 1, says: () => ['ImageError', GOOD_PNG, '13x9', 'over the limit of 100 pixels', 'YOLO_WGSL_MAX_PIXELS'] },
  { name: 'image: garbage bytes', args: (c) => forward(c, c.cfg(), c.weights(), c.file('bad.png', 'not an image at all')), code: 1, says: (c) => [path.join(c.dir, 'bad.png'), 'not a PNG or JPEG'] },
  { name: 'image: a truncated PNG', args: (c) => forward(c, c.cfg(), c.weights(), c.file('cut.png', fs.readFileSync(GOOD_PNG).subarray(0, 60))), code: 1, says: (c) => [path.join(c.dir, 'cut.png')] },
  { name: 'image: a folder named x.png', args: (c) => (fs.mkdirSync(path.join(c.dir, 'x.png'), { recursive: true }), forward(c, c.cfg(), c.weights(), path.join(c.dir, 'x.png'))), code: 1, says: (c) => [path.join(c.dir, 'x.png'), 'directory'] },
  { name: 'npy: 2 channels for a 3-channel cfg', args: (c) => forward(c, c.cfg(), c.weights(), c.file('in.npy', npy([1, 2, 32, 32]))), code: 1, says: (c) => [path.join(c.dir, 'in.npy'), '2 channels', 'channels=3'] },
  { name: 'npy: not NCHW', args: (c) => forward(c, c.cfg(), c.weights(), c.file('in.npy', npy([3, 32, 32]))), code: 1, says: (c) => [path.join(c.dir, 'in.npy'), 'NCHW'] },
  { name: 'npy: truncated data', args: (c) => forward(c, c.cfg(), c.weights(), c.file('in.npy', npy([1, 3, 32, 32]).subarray(0, 500))), code: 1, says: (c) => [path.join(c.dir, 'in.npy')] },
  { name: 'detect: one bad image in a folder, the others run', args: (c) => (c.file('imgs/a.png', fs.readFileSync(GOOD_PNG)), c.file('imgs/b.png', 'garbage'), c.file('imgs/c.png', fs.readFileSync(GOOD_PNG)), detect(c, c.cfg(), c.weights(), path.join(c.dir, 'imgs'))), code: 1, says: (c) => [path.join(c.dir, 'imgs', 'b.png'), 'not a PNG or JPEG', '1 skipped'], writes: ['a.json', 'a.png', 'c.json', 'c.png'] },
  { name: 'detect: a list naming a missing image', args: (c) => detect(c, c.cfg(), c.weights(), c.file('list.txt', `${GOOD_PNG}\nmissing.png\n`)), code: 1, says: (c) => [`${path.join(c.dir, 'list.txt')}:2`, 'missing.png'], writes: ['rgb-13x9.json', 'rgb-13x9.png'] },
  // ---- datasets, labels, predictions (val)
  { name: 'data: .data naming a missing list', args: (c) => ['val', '--data', c.file('bad.data', 'classes=3\nvalid=nowhere.txt\n'), '--predictions', c.file('p.json', '[]'), '--out', c.out], code: 1, says: (c) => [path.join(c.dir, 'bad.data'), 'nowhere.txt'] },
  { name: 'data: classes=100000000000', args: (c) => ['val', '--data', c.file('bad.data', 'classes=100000000000\nvalid=x.txt\n'), '--predictions', c.file('p.json', '[]'), '--out', c.out], code: 1, says: (c) => ['DatasetError', `${path.join(c.dir, 'bad.data')}:1`, 'at most 100000'] },
  { name: 'data: yaml nc=10^12', args: (c) => ['val', '--data', c.file('bad.yaml', 'path: .\ntrain: a\nval: a\nnc: 1000000000000\n'), '--predictions', c.file('p.json', '[]'), '--out', c.out], code: 1, says: (c) => ['DatasetError', `${path.join(c.dir, 'bad.yaml')}:4`, 'at most 100000'] },
  { name: 'data: yaml that does not parse', args: (c) => ['val', '--data', c.file('bad.yaml', 'path: .\ntrain: [unclosed\n'), '--predictions', c.file('p.json', '[]'), '--out', c.out], code: 1, says: (c) => ['DatasetError', path.join(c.dir, 'bad.yaml'), 'YAML'] },
  {
    name: 'data: a decompression bomb in the val split is skipped by the scan',
    args: (c) => {
      const d = c.dataset();
      const bomb = path.join(d.root, 'images/val/c.png');
      fs.writeFileSync(bomb, bombPng(20000, 20000));
      fs.appendFileSync(path.join(d.root, 'val.txt'), `${bomb}\n`);
      return ['val', '--data', d.data, '--predictions', c.file('p.json', '[]'), '--out', c.out];
    },
    code: 1,
    says: (c) => [path.join(c.dir, 'ds/images/val/c.png'), 'image is 20000x20000', 'over the limit', '1 skipped'],
    writes: ['*'],
  },
  { name: 'data: .data line without =', args: (c) => ['val', '--data', c.file('bad.data', 'classes=3\nvalid\n'), '--predictions', c.file('p.json', '[]'), '--out', c.out], code: 1, says: (c) => ['DatasetError', `${path.join(c.dir, 'bad.data')}:2`] },
  { name: 'labels: bad lines are skipped by file:line', args: (c) => { const d = c.dataset(); fs.writeFileSync(path.join(d.root, 'labels/val/b.txt'), '0 0.5 0.5 0.2\n7 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n'); return ['val', '--data', d.data, '--predictions', c.file('p.json', '[]'), '--out', c.out]; }, code: 0, says: (c) => [`${path.join(c.dir, 'ds/labels/val/b.txt')}:1`, 'expected 5 fields', `${path.join(c.dir, 'ds/labels/val/b.txt')}:2`, 'class 7 out of range'], writes: ['*'] },
  { name: 'predictions: not JSON', args: (c) => ['val', '--data', c.dataset().data, '--predictions', c.file('p.json', '[{"image_id": 1,'), '--out', c.out], code: 1, says: (c) => [path.join(c.dir, 'p.json'), 'not valid JSON'] },
  { name: 'predictions: an object, not a list', args: (c) => ['val', '--data', c.dataset().data, '--predictions', c.file('p.json', '{"a": 1}'), '--out', c.out], code: 1, says: (c) => [path.join(c.dir, 'p.json'), 'expected a JSON list'] },
  {
    name: 'predictions: every skipped entry is warned',
    args: (c) => ['val', '--data', c.dataset().data, '--out', c.out, '--predictions', c.file('p.json', JSON.stringify([
      { image_id: 'b', category_id: 0, bbox: [8, 8, 32, 22], score: 0.9 },
      { image_id: 'b', category_id: 0, bbox: [8, 8, 32, 22], score: -0.5 },
      { image_id: 'b', category_id: 0, bbox: [8, 8, -32, 22], score: 0.8 },
      { image_id: 'b', category_id: 9, bbox: [8, 8, 32, 22], score: 0.8 },
      { image_id: 'b', category_id: 0, bbox: [8, 8], score: 0.8 },
      { image_id: 'b', category_id: 0, bbox: [8, 8, 32, 22] },
      { image_id: 'b', category_id: 1, bbox: [8, 8, 32, 22], score: 0.0005 },
    ]))],
    code: 0,
    says: (c) => [`${path.join(c.dir, 'p.json')}[1]: score -0.5 is negative`, '[2]: bbox [8, 8, -32, 22] has a negative width or height', '[3]: category_id 9', '[4]: bbox is not', '[5]: score missing', '1 of its detections score below the confidence threshold 0.001'],
    writes: ['*'],
  },
  // ---- option values (usage errors: exit 2, the option named)
  { name: 'option: --conf abc', args: (c) => detect(c, c.cfg(), null, GOOD_PNG, '--conf', 'abc'), code: 2, says: () => ["--conf: expected a number in [0, 1], got 'abc'"] },
  { name: 'option: --iou 1.5', args: (c) => detect(c, c.cfg(), null, GOOD_PNG, '--iou=1.5'), code: 2, says: () => ["--iou: expected a number in [0, 1], got '1.5'"] },
  { name: 'option: --max-det 0', args: (c) => detect(c, c.cfg(), null, GOOD_PNG, '--max-det', '0'), code: 2, says: () => ['--max-det: expected an integer in [1, 1000000]'] },
  { name: 'option: --batch 2.5', args: (c) => detect(c, c.cfg(), null, GOOD_PNG, '--batch', '2.5'), code: 2, says: () => ["--batch: expected an integer >= 1, got '2.5'"] },
  { name: 'option: --img 1e9', args: (c) => detect(c, c.cfg(), null, GOOD_PNG, '--img', '1e9'), code: 2, says: () => ['--img: expected an integer in [1, 16384]'] },
  { name: 'option: --max-batches -3', args: (c) => ['train', '--cfg', c.cfg(), '--data', c.dataset().data, '--max-batches', '-3', '--out', c.out], code: 2, says: () => ["--max-batches: expected an integer >= 1, got '-3'"] },
  { name: 'option: --lr -1', args: (c) => ['train', '--cfg', c.cfg(), '--data', c.dataset().data, '--lr', '-1', '--out', c.out], code: 2, says: () => ['--lr: expected a number > 0'] },
  { name: 'option: --epochs nan', args: (c) => ['train', '--cfg', c.cfg(), '--data', c.dataset().data, '--epochs', 'nan', '--out', c.out], code: 2, says: () => ["--epochs: expected an integer >= 1, got 'nan'"] },
  { name: 'option: --num 0 (anchors)', args: (c) => ['anchors', '--data', c.dataset().data, '--num', '0'], code: 2, says: () => ['--num: expected an integer in [1, 1000]'] },
  { name: 'option: an unknown option', args: (c) => ['info', '--cfg', c.cfg(), '--widht', '3'], code: 2, says: () => ['widht'] },
  { name: 'option: train without --data', args: (c) => ['train', '--cfg', c.cfg()], code: 2, says: () => ['train needs --cfg and --data'] },
];

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-robust-'));

CASES.forEach((k, i) => {
  test(`bad input: ${k.name}`, async () => {
    const c = new CaseDir(path.join(base, `case${String(i).padStart(2, '0')}`));
    const r = await runCli(k.args(c));
    const ctx = `\n--- output of yolo-wgsl ${k.name}:\n${r.out}`;
    assert.is(r.code, k.code, `exit code${ctx}`);
    for (const s of k.says(c)) {
      assert.ok(typeof s === 'string' ? r.out.includes(s) : s.test(r.out), `the output says ${s}${ctx}`);
    }
    if (k.code !== 0) assert.not.match(r.out, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace without --verbose${ctx}`);
    const written = filesUnder(c.out);
    if (!k.writes?.includes('*')) assert.equal(written, [...(k.writes ?? [])].sort(), `files under out/${ctx}`);
    const temps = filesUnder(c.dir).filter((f) => f.endsWith('.tmp'));
    assert.equal(temps, [], 'no temporary files left');
  });
});

// ---- the library API: the same rules as the CLI, as exceptions naming the setting
const API_CASES: { name: string; run: () => Promise<unknown>; error: new (...a: never[]) => Error; says: string }[] = [
  { name: 'detect conf NaN', run: async () => (await miniModel()).detect(GOOD_PNG, { conf: Number('abc') }), error: SettingError, says: 'conf: expected a number in [0, 1], got NaN' },
  { name: 'detect iou 2', run: async () => (await miniModel()).detect(GOOD_PNG, { iou: 2 }), error: SettingError, says: 'iou: expected a number in [0, 1], got 2' },
  { name: 'detect maxDet 0', run: async () => (await miniModel()).detect(GOOD_PNG, { maxDet: 0 }), error: SettingError, says: 'maxDet: expected an integer >= 1, got 0' },
  { name: 'train maxBatches -3', run: async () => resolveTrainSettings(Network.fromFile(MINI_CFG), { maxBatches: -3 }), error: SettingError, says: 'train: maxBatches: expected an integer >= 1, got -3' },
  { name: 'train lr NaN', run: async () => resolveTrainSettings(Network.fromFile(MINI_CFG), { lr: NaN }), error: SettingError, says: 'train: lr: expected a number > 0, got NaN' },
  { name: 'image over maxPixels', run: async () => (await miniModel()).detect(fs.readFileSync(GOOD_PNG), { maxPixels: 100 }), error: ImageError, says: 'over the limit of 100 pixels' },
];

let model: Model | undefined;
async function miniModel(): Promise<Model> {
  model ??= await loadDarknet({ cfg: MINI_CFG, engine: new Engine(await getGpu()), seed: 3 });
  return model;
}

for (const k of API_CASES) {
  test(`bad input (API): ${k.name}`, async () => {
    let err: unknown = null;
    try {
      await k.run();
    } catch (e) {
      err = e;
    }
    assert.instance(err, k.error, `${k.name}: ${String(err)}`);
    assert.ok((err as Error).message.includes(k.says), (err as Error).message);
  });
}

test.after(() => {
  model?.dispose();
  fs.rmSync(base, { recursive: true, force: true });
});

test.run();
