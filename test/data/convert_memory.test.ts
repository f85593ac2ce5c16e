/**
 * `convert` on files held in memory (src/data/convert/memory.ts: what the browser page does with a picked
 * COCO / VOC / labelme folder): for each fixture of test/data/convert.test.ts, the label files, images and
 * class list are byte for byte what `convertToYolo` (the CLI's `convert`) writes to disk for the same
 * folder, and the messages are the command's, with the folder's names instead of absolute paths. The
 * format is told from the files; a COCO export of the synthetic set (Roboflow's layout) trains in memory
 * exactly as its YOLO twin does; the in-memory path and base64 helpers agree with node:path and Buffer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet } from '../../src/index.js';
import { trainOnFiles } from '../../src/api/train_files.js';
import { memoryDataset } from '../../src/data/memory.js';
import { generateSynth } from '../../src/data/synth.js';
import { convertToYolo, formatIssue, yoloToCoco, type ConvertToYoloOptions } from '../../src/data/convert/convert.js';
import { convertFiles, decodeBase64, detectFormat, memoryPath } from '../../src/data/convert/memory.js';
import { NothingToWriteError } from '../../src/data/convert/plan.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng } from '../../src/util/rng.js';
import { readTree } from '../helpers/files.js';

const ROOT = packageRoot();
const FIX = path.join(ROOT, 'fixtures/convert');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-convert-mem-'));

const cases: { name: string; cli: Omit<ConvertToYoloOptions, 'out'>; format: string; what: string }[] = [
  { name: 'coco', cli: { from: 'coco', coco: [{ json: path.join(FIX, 'coco/instances_val.json'), images: path.join(FIX, 'coco/images') }] }, format: 'coco', what: 'COCO instances JSON coco/instances_val.json (images in coco/images/, val)' },
  { name: 'voc', cli: { from: 'voc', voc: [path.join(FIX, 'voc')] }, format: 'voc', what: 'Pascal VOC voc/ (Annotations/, JPEGImages/, ImageSets/Main/)' },
  { name: 'labelme', cli: { from: 'labelme', labelme: [path.join(FIX, 'labelme')] }, format: 'labelme', what: 'labelme JSON (4 files under labelme/)' },
];

for (const c of cases) {
  test(`${c.name} in memory = convert on disk: labels, images and obj.names byte for byte, the same messages`, () => {
    const files = readTree(path.join(FIX, c.name), c.name);
    const found = detectFormat(files);
    assert.is(found.format, c.format);
    assert.is(found.what, c.what);
    for (const opts of [{}, { keepCrowd: true, dropDifficult: true, valFraction: 0.5 }]) {
      const out = fs.mkdtempSync(path.join(tmp, `${c.name}-`));
      fs.rmSync(out, { recursive: true });
      const disk = convertToYolo({ ...c.cli, keepCrowd: opts.keepCrowd, dropDifficult: opts.dropDifficult, valFraction: opts.valFraction, out });
      const mem = convertFiles(files, opts)!;
      assert.ok(mem, 'converted');
      const written = readTree(out);
      // what the command writes besides the images and labels: the descriptions and image lists (paths on disk)
      const described = new Set(['data.yaml', 'obj.data', 'train.txt', 'val.txt', 'test.txt']);
      assert.equal([...mem.files.keys()].sort(), [...written.keys()].filter((k) => !described.has(k)).sort(), 'the same files');
      for (const [k, v] of mem.files) assert.equal(Buffer.from(v), Buffer.from(written.get(k) ?? []), `${k}: byte for byte`);
      assert.equal(mem.names, disk.names);
      assert.equal(mem.counts, disk.images);
      assert.is(mem.boxes, disk.boxes);
      assert.is(mem.skipped, disk.skipped);
      // the command's lines, with the folder's names for the absolute paths
      const rel = (s: string) => s.split(`${FIX}/`).join('');
      assert.equal(mem.issues.map(formatIssue), disk.issues.map((i) => rel(formatIssue(i))));
      assert.ok(mem.issues.length > 3, `${c.name}: the fixture's odd cases are reported`);
    }
  });
}

test('in memory: every image skipped is a NothingToWriteError with the reasons; YOLO files and plain images are not converted', () => {
  const files = new Map([['x/instances_train.json', new TextEncoder().encode(JSON.stringify({ images: [{ id: 1, file_name: 'gone.png' }], annotations: [], categories: [{ id: 1, name: 'a' }] }))]]);
  try {
    convertFiles(files);
    assert.unreachable('nothing to write');
  } catch (e) {
    assert.instance(e, NothingToWriteError);
    assert.equal((e as NothingToWriteError).issues.map(formatIssue), ['warning: x/instances_train.json: images[0] (id 1): image x/gone.png not found; skipped with 0 annotations']);
  }
  const synth = generateSynth({ out: path.join(tmp, 'yolo'), trainCount: 2, valCount: 1, size: 32, seed: 1 });
  const yolo = readTree(synth.out, path.basename(synth.out));
  assert.equal(detectFormat(yolo).format, 'yolo');
  assert.is(convertFiles(yolo), null);
  const bare = new Map([...yolo].filter(([k]) => k.endsWith('.png')));
  assert.equal(detectFormat(bare), { format: 'yolo', what: 'no labels (3 images, no label .txt, COCO, VOC or labelme annotation)' });
});

test('a COCO export of the synthetic set (Roboflow layout: train/_annotations.coco.json, valid/…) trains in memory exactly as its YOLO twin', async () => {
  const synth = generateSynth({ out: path.join(tmp, 'shapes'), trainCount: 8, valCount: 3, size: 64, seed: 3 });
  const coco = yoloToCoco({ data: synth.yaml, out: path.join(tmp, 'shapes-coco') });
  // as Roboflow exports COCO: each split's folder holds its images and _annotations.coco.json
  const files = new Map<string, Uint8Array>();
  for (const f of coco.files) {
    const dir = f.split === 'val' ? 'valid' : f.split;
    files.set(`export/${dir}/_annotations.coco.json`, new Uint8Array(fs.readFileSync(f.file)));
    for (const [k, v] of readTree(f.imagesDir, `export/${dir}`)) files.set(k, v);
  }
  const found = detectFormat(files);
  assert.equal(found.coco, [{ json: 'export/train/_annotations.coco.json', images: 'export/train', split: 'train' }, { json: 'export/valid/_annotations.coco.json', images: 'export/valid', split: 'val' }]);
  const ds = memoryDataset(files, { nc: 3 });
  assert.is(ds.format, 'coco');
  assert.is(ds.split, 'converted');
  assert.equal(ds.names, ['circle', 'square', 'triangle'], 'class names from the categories');
  assert.equal(ds.conversion!.issues, []);
  assert.equal([ds.train.images.length, ds.val!.images.length], [8, 3]);
  // the labels: the synthetic set's own, byte for byte (6 decimals round trip)
  for (const split of ['train', 'val']) {
    for (const f of fs.readdirSync(path.join(synth.out, 'labels', split))) {
      assert.is(new TextDecoder().decode(ds.files.get(`labels/${split}/${f}`)), fs.readFileSync(path.join(synth.out, 'labels', split, f), 'utf8'), f);
    }
  }
  // trained: the same losses as the YOLO files (same images, order, labels, seed)
  const engine = new Engine(await getGpu());
  const cfg = fs.readFileSync(path.join(ROOT, 'fixtures/cfg/yolo-mini.cfg'), 'utf8');
  const losses = async (f: Map<string, Uint8Array>) => {
    const model = await loadDarknet({ engine, cfg, width: 64, height: 64, seed: 2 });
    const out: number[] = [];
    await trainOnFiles({ model, files: f, maxBatches: 2, batch: 4, subdivisions: 1, seed: 1, valEvery: 0, onProgress: (p) => out.push(p.loss) }).done;
    model.dispose();
    return out;
  };
  const [a, b] = [await losses(files), await losses(readTree(synth.out, path.basename(synth.out)))];
  assert.is(a.length, 2);
  assert.equal(a, b, `COCO ${a} = YOLO ${b}`);
});

test('memoryPath = node:path posix on relative names; decodeBase64 = Buffer.from(text, "base64")', () => {
  const P = path.posix;
  const names = ['a/b/c.png', 'a/./b/../c.json', 'x', 'a/b/', 'a/.hidden', 'a/b.tar.gz', 'a/b.', '../up/x.txt', 'a//b'];
  for (const n of names) {
    assert.is(memoryPath.dirname(n), P.dirname(P.normalize(n)) === '.' ? '' : P.dirname(P.normalize(n)).replace(/\/$/, ''), `dirname ${n}`);
    assert.is(memoryPath.basename(n), P.basename(n), `basename ${n}`);
    assert.is(memoryPath.extname(n), P.extname(n), `extname ${n}`);
    for (const m of names) {
      assert.is(memoryPath.join(n, m), P.join(n, m).replace(/\/$/, '').replace(/^\.$/, ''), `join ${n} ${m}`);
      if (!n.startsWith('..') && !m.startsWith('..')) assert.is(memoryPath.relative(n, m), P.relative(P.join('/r', n), P.join('/r', m)), `relative ${n} ${m}`);
    }
  }
  const rng = new Rng(7);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \n$%.';
  for (let k = 0; k < 500; k++) {
    const s = Array.from({ length: Math.floor(rng.next() * 40) }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join('');
    assert.equal(Buffer.from(decodeBase64(s)), Buffer.from(s, 'base64'), JSON.stringify(s));
  }
  const bytes = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 37) & 255));
  assert.equal(decodeBase64(Buffer.from(bytes).toString('base64')), bytes);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
