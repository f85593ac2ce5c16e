import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { packageRoot } from '../../src/util/paths.js';
import { loadImage } from '../../src/data/image.js';
import {
  boxesInPixels,
  DatasetError,
  describeScan,
  formatProblem,
  labelCandidates,
  loadDataset,
  parseLabels,
  readImageSize,
  scanSplit,
} from '../../src/data/dataset.js';

function writePngFile(file: string, w: number, h: number): void {
  const png = new PNG({ width: w, height: h });
  png.data.fill(128);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
}

function writeJpegFile(file: string, w: number, h: number): void {
  const data = Buffer.alloc(w * h * 4, 200);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, jpeg.encode({ data, width: w, height: h }, 80).data);
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'yw-dataset-'));
}

test('image headers: PNG IHDR and JPEG SOF sizes without decoding, = the decoded sizes', () => {
  const fx = path.join(packageRoot(), 'fixtures/images');
  for (const f of ['rgb-13x9.png', 'gray-6x5.png', 'rgba-5x4.png', 'rgb16-4x3.png', 'smooth-40x24.jpg']) {
    const h = readImageSize(path.join(fx, f));
    const im = loadImage(path.join(fx, f));
    assert.equal([h.width, h.height], [im.width, im.height], f);
  }
  const dir = tmp();
  try {
    writeJpegFile(path.join(dir, 'a.jpg'), 37, 21);
    assert.equal(readImageSize(path.join(dir, 'a.jpg')), { format: 'jpeg', width: 37, height: 21 });
    write(path.join(dir, 'bad.png'), 'not an image');
    assert.throws(() => readImageSize(path.join(dir, 'bad.png')), /not a PNG or JPEG/);
    // a JPEG cut before its frame header
    const j = fs.readFileSync(path.join(dir, 'a.jpg'));
    fs.writeFileSync(path.join(dir, 'cut.jpg'), j.subarray(0, 20));
    assert.throws(() => readImageSize(path.join(dir, 'cut.jpg')), /frame header/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('label paths: images/ -> labels/ (last occurrence), JPEGImages/, else beside the image', () => {
  assert.equal(labelCandidates('/d/images/train/x.jpg'), ['/d/labels/train/x.txt', '/d/images/train/x.txt']);
  assert.equal(labelCandidates('/images/a/images/b/x.png'), ['/images/a/labels/b/x.txt', '/images/a/images/b/x.txt']);
  assert.equal(labelCandidates('voc/JPEGImages/0001.jpg'), ['voc/labels/0001.txt', 'voc/JPEGImages/0001.txt']);
  assert.equal(labelCandidates('pics/x.jpeg'), ['pics/x.txt']);
  assert.equal(labelCandidates('my_images/x.png'), ['my_images/x.txt'], 'only a whole folder name');
});

test('label lines: every corrupt kind named with file:line and why; valid lines and polygons kept', () => {
  const text = ['0 0.5 0.5 0.2 0.4', '', '3 0.5 0.5 0.1 0.1', '1 0.5 1.2 0.1 0.1', '1 0.5 0.5 0.1', 'a 0.5 0.5 0.1 0.1', '1 0.5 0.5 x 0.1', '1.5 0.5 0.5 0.1 0.1', '0 0.5 0.5 0 0.1', '0 0.5 0.5 0.2 0.4', '2 0.1 0.1 0.3 0.1 0.2 0.5', '1 0.5 0.5 0.1 0.1 0.9'].join('\n');
  const { boxes, problems } = parseLabels(text, 'l.txt', 3);
  assert.equal(boxes.map((b) => [b.classId, b.line]), [[0, 1], [2, 11]]);
  const pg = boxes[1];
  assert.ok(Math.abs(pg.cx - 0.2) < 1e-12 && Math.abs(pg.w - 0.2) < 1e-12 && Math.abs(pg.cy - 0.3) < 1e-12 && Math.abs(pg.h - 0.4) < 1e-12, 'polygon -> its bounding box');
  const msgs = problems.map(formatProblem);
  assert.match(msgs[0], /^l\.txt:3: class 3 out of range 0\.\.2/);
  assert.match(msgs[1], /^l\.txt:4: cy = 1\.2 outside \[0, 1\]/);
  assert.match(msgs[2], /^l\.txt:5: expected 5 fields/);
  assert.match(msgs[3], /^l\.txt:6: non-numeric field 1 "a"/);
  assert.match(msgs[4], /^l\.txt:7: non-numeric field 4 "x"/);
  assert.match(msgs[5], /^l\.txt:8: class "1\.5" is not an integer/);
  assert.match(msgs[6], /^l\.txt:9: zero-size box/);
  assert.match(msgs[7], /^l\.txt:10: duplicate of line 1/);
  assert.match(msgs[8], /^l\.txt:12: expected 5 fields .* got 6/);
  assert.is(problems.length, 9);
});

test('YAML dataset: path root, images/ + labels/ folders, names map, list split, counts and backgrounds', () => {
  const dir = tmp();
  try {
    const root = path.join(dir, 'ds');
    writePngFile(path.join(root, 'images/train/a.png'), 20, 10);
    writeJpegFile(path.join(root, 'images/train/sub/b.jpg'), 16, 8);
    writePngFile(path.join(root, 'images/train/c.png'), 8, 8); // no label file: background
    writePngFile(path.join(root, 'images/train/d.png'), 8, 8); // empty label file: background
    write(path.join(root, 'labels/train/a.txt'), '0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.2\n');
    write(path.join(root, 'labels/train/sub/b.txt'), '1 0.5 0.5 1 1\n');
    write(path.join(root, 'labels/train/d.txt'), '');
    write(path.join(root, 'val.txt'), './images/train/a.png\n./images/train/sub/b.jpg\n');
    write(path.join(dir, 'cfg/data.yaml'), 'path: ../ds  # root\ntrain: images/train\nval: val.txt\nnames:\n  0: cat\n  1: dog\n');
    const spec = loadDataset(path.join(dir, 'cfg/data.yaml'), '/');
    assert.is(spec.format, 'yaml');
    assert.is(spec.root, root);
    assert.equal(spec.names, ['cat', 'dog']);
    assert.is(spec.nc, 2);
    const tr = scanSplit(spec, 'train');
    assert.equal(tr.images.map((i) => path.relative(root, i.file)), ['images/train/a.png', 'images/train/c.png', 'images/train/d.png', 'images/train/sub/b.jpg']);
    const c = tr.counts;
    assert.equal([c.images, c.labeled, c.missingLabels, c.emptyLabels, c.backgrounds, c.boxes], [4, 3, 1, 1, 2, 3]);
    assert.equal(c.perClass, [1, 2]);
    assert.equal(c.imagesPerClass, [1, 2]);
    assert.equal([tr.images[3].width, tr.images[3].height, tr.images[3].format], [16, 8, 'jpeg']);
    assert.equal(boxesInPixels(tr.images[0]), [
      { x1: 5, y1: 2.5, x2: 15, y2: 7.5, classId: 0 },
      { x1: 4, y1: 1.5, x2: 6, y2: 3.5, classId: 1 },
    ]);
    const va = scanSplit(spec, 'val');
    assert.is(va.images.length, 2);
    assert.match(describeScan(tr, spec.names).join('\n'), /4 images .* 2 backgrounds .* 3 boxes[\s\S]*dog\s+2 boxes in\s+2 images/);
    // names as a list, nc given, train as a list of folders; nc/names mismatch is an error with its line
    write(path.join(dir, 'list.yaml'), `train: [${path.join(root, 'images/train/sub')}, ${path.join(root, 'images/train/a.png')}]\nnc: 2\nnames: [cat, dog]\n`);
    const s2 = loadDataset(path.join(dir, 'list.yaml'));
    assert.is(scanSplit(s2, 'train').images.length, 2);
    write(path.join(dir, 'bad.yaml'), 'train: x\nnc: 3\nnames: [a, b]\n');
    try {
      loadDataset(path.join(dir, 'bad.yaml'));
      assert.unreachable();
    } catch (e) {
      assert.instance(e, DatasetError);
      assert.is((e as DatasetError).line, 2);
      assert.match((e as Error).message, /bad\.yaml:2: nc: 3 but names lists 2/);
    }
    write(path.join(dir, 'syntax.yaml'), 'train: [a, b\nnames: [x]\n');
    assert.throws(() => loadDataset(path.join(dir, 'syntax.yaml')), (e: unknown) => e instanceof DatasetError && /YAML/.test((e as Error).message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Darknet .data: paths relative to the .data folder when not to the cwd, labels beside images, corrupt entries skipped with file:line', () => {
  const dir = tmp();
  try {
    writePngFile(path.join(dir, 'data/obj/1.png'), 10, 10);
    writeJpegFile(path.join(dir, 'data/obj/2.jpg'), 12, 6);
    write(path.join(dir, 'data/obj/1.txt'), '0 0.5 0.5 0.4 0.4\n5 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.4\n');
    write(path.join(dir, 'data/obj/2.txt'), '1 0.5 0.5 0.2 0.2\n1 -0.1 0.5 0.2 0.2\n');
    write(path.join(dir, 'data/obj/broken.png'), 'garbage');
    // list lines relative to the cwd as Darknet reads them (here: dir), plus a missing image and a broken one
    write(path.join(dir, 'data/valid.txt'), 'data/obj/1.png\ndata/obj/2.jpg\ndata/obj/missing.png\ndata/obj/broken.png\n');
    write(path.join(dir, 'data/obj.names'), 'person\ncar\n\n');
    write(path.join(dir, 'data/obj.data'), '# a comment\nclasses = 2\ntrain  = data/valid.txt\nvalid = data/valid.txt\nnames = data/obj.names\nbackup = backup/\neval=coco\n');
    const spec = loadDataset(path.join(dir, 'data/obj.data'), dir);
    assert.is(spec.format, 'darknet');
    assert.equal(spec.names, ['person', 'car']);
    assert.is(spec.backup, path.join(dir, 'backup'));
    assert.equal(spec.extra, { eval: 'coco' });
    const logs: string[] = [];
    const rep = scanSplit(spec, 'val', { cwd: dir, log: (l) => logs.push(l) });
    assert.is(rep.images.length, 2);
    assert.equal(rep.counts.perClass, [1, 1]);
    assert.is(rep.counts.corruptImages, 2);
    assert.is(rep.counts.corruptLines, 3);
    const msgs = rep.problems.map(formatProblem);
    assert.ok(msgs.some((m) => /obj\/1\.txt:2: class 5 out of range 0\.\.1/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /obj\/1\.txt:3: expected 5 fields/.test(m)));
    assert.ok(msgs.some((m) => /obj\/2\.txt:2: cx = -0\.1 outside \[0, 1\]/.test(m)));
    assert.ok(msgs.some((m) => /missing\.png: image not found \(listed at .*valid\.txt:3\)/.test(m)));
    assert.ok(msgs.some((m) => /broken\.png: unreadable image: not a PNG or JPEG file \(listed at .*valid\.txt:4\)/.test(m)));
    assert.is(logs.length, 5);
    assert.ok(logs.every((l) => l.startsWith('warning: ')));
    // from another cwd the same .data works through the .data folder (names= and list lines relative to it)
    write(path.join(dir, 'data/valid2.txt'), 'obj/1.png\n');
    write(path.join(dir, 'data/obj2.data'), 'classes=2\nvalid=valid2.txt\nnames=obj.names\n');
    const s2 = loadDataset(path.join(dir, 'data/obj2.data'), '/');
    assert.is(scanSplit(s2, 'val', { cwd: '/' }).images.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('empty or unusable splits are a DatasetError with the description file:line; a missing split too', () => {
  const dir = tmp();
  try {
    fs.mkdirSync(path.join(dir, 'images/val'), { recursive: true });
    write(path.join(dir, 'd.yaml'), 'names: [a]\ntrain: images/val\n');
    const spec = loadDataset(path.join(dir, 'd.yaml'));
    try {
      scanSplit(spec, 'train');
      assert.unreachable();
    } catch (e) {
      assert.instance(e, DatasetError);
      assert.is((e as DatasetError).file, path.join(dir, 'd.yaml'));
      assert.is((e as DatasetError).line, 2);
      assert.match((e as Error).message, /train names no images/);
    }
    assert.throws(() => scanSplit(spec, 'val'), /no val split/);
    write(path.join(dir, 'images/val/x.png'), 'junk');
    assert.throws(() => scanSplit(spec, 'train'), (e: unknown) => e instanceof DatasetError && /none of the 1 images of train is usable .*x\.png: unreadable image/.test((e as Error).message));
    write(path.join(dir, 'e.data'), 'classes=1\nvalid=nothing.txt\n');
    assert.throws(() => scanSplit(loadDataset(path.join(dir, 'e.data'), dir), 'val', { cwd: dir }), (e: unknown) => e instanceof DatasetError && /e\.data:2: valid names no images/.test((e as Error).message));
    assert.throws(() => loadDataset(path.join(dir, 'nope.data')), (e: unknown) => e instanceof DatasetError && /not found/.test((e as Error).message));
    write(path.join(dir, 'f.data'), 'classes=x\n');
    assert.throws(() => loadDataset(path.join(dir, 'f.data')), /f\.data:1: classes must be a positive integer/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
