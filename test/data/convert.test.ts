/**
 * `convert`: COCO / VOC / labelme -> YOLO on hand-made fixtures with known answers (fixtures/convert/),
 * every odd case reported with its file and place; YOLO -> COCO -> YOLO round trips; `val` scoring the
 * same predictions identically on a dataset and on its converted copy; hostile input never crashes.
 *
 * The VOC answers are Darknet's `scripts/voc_label.py` `convert()` (x = (xmin + xmax)/2 - 1, w = xmax - xmin,
 * over the XML's <size>), checked against that script (AlexeyAB 59596d7) on these boxes; a box reaching
 * outside the image is clipped, which voc_label.py does not do.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { runVal } from '../../src/api/val.js';
import { loadDataset, readImageSize, scanSplit } from '../../src/data/dataset.js';
import { generateSynth } from '../../src/data/synth.js';
import { convertToYolo, yoloToCoco } from '../../src/data/convert/convert.js';
import { Rng } from '../../src/util/rng.js';
import { ROOT, filesUnder, runCli } from '../robustness/corpus.js';
import { writeDataset } from '../eval/synthetic.js';

const FIX = path.join(ROOT, 'fixtures/convert');
const NAMES = path.join(FIX, 'classes.names');

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'yw-convert-'));
}

const labels = (out: string, rel: string): string[] => fs.readFileSync(path.join(out, 'labels', rel), 'utf8').split('\n').filter(Boolean);

/** The output reads back through the dataset scanner with no problem, and has the boxes expected. */
function readBack(yamlOrData: string, split: 'train' | 'val'): { boxes: number; images: string[] } {
  const spec = loadDataset(yamlOrData);
  const rep = scanSplit(spec, split);
  assert.equal(rep.problems, [], `${yamlOrData} ${split} scans cleanly`);
  return { boxes: rep.counts.boxes, images: rep.images.map((i) => path.basename(i.file)) };
}

/** Each expected `FILE[:LINE]: text` appears in the output as one line. */
function says(out: string, ...lines: (string | RegExp)[]): void {
  for (const l of lines) {
    if (typeof l === 'string') assert.ok(out.includes(l), `output says ${JSON.stringify(l)}:\n${out}`);
    else assert.match(out, l);
  }
}

// ---------------------------------------------------------------- VOC

test('voc -> yolo: Darknet voc_label.py boxes, splits from ImageSets/Main, each odd object by its XML line', async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, 'voc');
    const r = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', path.join(FIX, 'voc'), '--out', out]);
    assert.is(r.code, 1, 'something was skipped');
    const a1 = path.join(FIX, 'voc/Annotations/000001.xml');
    says(
      r.out,
      `note: ${a1}:16: object 2 "cat" is difficult=1; kept`,
      `note: ${a1}:21: box [30, 10, 49, 23] reaches outside the 40x24 image: clipped to [30, 10, 40, 23]`,
      `warning: ${a1}:26: zero-size box [11, 3, 11, 9]`,
      `warning: ${a1}:36: object 6 "cat" has no <bndbox>`,
      `warning: ${path.join(FIX, 'voc/Annotations/000002.xml')}: image ${path.join(FIX, 'voc/JPEGImages/000002.jpg')} not found; skipped with 1 object`,
      `warning: ${path.join(FIX, 'voc/Annotations/000003.xml')}:6:2: not well-formed XML: Expected closing tag 'bndbox'`,
      `note: ${path.join(FIX, 'voc/ImageSets/Main')}: 1 annotation`,
      'convert: 2 images (train 1, val 1), 5 boxes written; 4 skipped (2 malformed, 1 missing image, 1 zero-size); notes: 1 clipped, 1 difficult, 1 in no split list',
    );
    // classes: the sorted names found
    assert.equal(fs.readFileSync(path.join(out, 'obj.names'), 'utf8'), 'cat\ndog\nperson\nunicorn\n');
    // 000001 (40x24): dog 5..25 x 3..21 -> x = 14/40, y = 11/24, w = 20/40, h = 18/24; cat (difficult) 1..11 x 1..9;
    // person 31..50 x 11..24 -> corners 30..49 x 10..23, clipped to x 30..40; unicorn 3..7 x 3..7
    assert.equal(labels(out, 'train/000001.txt'), [
      '1 0.350000 0.458333 0.500000 0.750000',
      '0 0.125000 0.166667 0.250000 0.333333',
      '2 0.875000 0.687500 0.250000 0.541667',
      '3 0.100000 0.166667 0.100000 0.166667',
    ]);
    // 000004: no <size>, no <filename>: JPEGImages/000004.png (13x9) from its header; person 2..13 x 2..9
    assert.equal(labels(out, 'val/000004.txt'), ['2 0.500000 0.500000 0.846154 0.777778']);
    assert.ok(fs.lstatSync(path.join(out, 'images/train/000001.jpg')).isSymbolicLink(), 'images are linked by default');
    assert.is(fs.readlinkSync(path.join(out, 'images/train/000001.jpg')), path.join(FIX, 'voc/JPEGImages/000001.jpg'));
    assert.equal(readBack(path.join(out, 'data.yaml'), 'train'), { boxes: 4, images: ['000001.jpg'] });
    assert.equal(readBack(path.join(out, 'obj.data'), 'val'), { boxes: 1, images: ['000004.png'] });

    // a names file fixes the classes (unicorn is skipped), --drop-difficult skips the cat, --copy-images copies
    const out2 = path.join(dir, 'voc2');
    const r2 = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', path.join(FIX, 'voc'), '--out', out2, '--names', NAMES, '--drop-difficult', '--copy-images']);
    assert.is(r2.code, 1);
    says(r2.out, `warning: ${a1}:16: object 2 "cat" is difficult=1; skipped (--drop-difficult)`, `warning: ${a1}:31: class "unicorn" is not in the class list (3 classes); skipped`);
    assert.equal(labels(out2, 'train/000001.txt'), ['1 0.350000 0.458333 0.500000 0.750000', '2 0.875000 0.687500 0.250000 0.541667']);
    const copied = path.join(out2, 'images/train/000001.jpg');
    assert.ok(fs.lstatSync(copied).isFile());
    assert.equal(fs.readFileSync(copied), fs.readFileSync(path.join(FIX, 'voc/JPEGImages/000001.jpg')));
    assert.equal(filesUnder(out2).filter((f) => f.includes('.tmp')), [], 'no temporary left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- labelme

test('labelme -> yolo: rectangles, polygons and circles as boxes, embedded images, splits from folders, shapes by JSON path', async () => {
  const dir = tmp();
  try {
    const out = path.join(dir, 'lm');
    const r = await runCli(['convert', '--from', 'labelme', '--to', 'yolo', '--labelme', path.join(FIX, 'labelme'), '--out', out, '--names', NAMES]);
    assert.is(r.code, 1);
    const a = path.join(FIX, 'labelme/train/a.json');
    says(
      r.out,
      `warning: ${path.join(FIX, 'labelme/other.json')}: not a labelme file`,
      `note: ${a}: shapes[1] (label "cat"): polygon of 4 points: written as its bounding box`,
      `note: ${a}: shapes[2] (label "person"): circle: written as its bounding box`,
      `warning: ${a}: shapes[3] (label "dog"): shape_type point has no region; skipped`,
      `note: ${a}: shapes[4] (label "dog"): box [60, 40, 70, 52] reaches outside the 64x48 image: clipped to [60, 40, 64, 48]`,
      `warning: ${a}: shapes[5] (label "dog"): zero-size box [30, 10, 30, 20]`,
      `warning: ${a}: shapes[6] (label "unicorn"): class "unicorn" is not in the class list`,
      `warning: ${a}: shapes[7] (label "cat"): box [70, 0, 80, 10] lies outside the 64x48 image; skipped`,
      `warning: ${path.join(FIX, 'labelme/val/broken.json')}:4:50: not valid JSON`,
      `warning: ${path.join(FIX, 'labelme/val/c.json')}: shapes[0] (label "dog"): a polygon needs at least 3 points`,
      `warning: ${path.join(FIX, 'labelme/val/d.json')}: image ${path.join(FIX, 'labelme/images/d.png')} not found; skipped with 1 shape`,
      'convert: 3 images (train 2, val 1), 6 boxes written; 8 skipped (3 malformed, 1 missing image, 1 unknown class, 1 zero-size, 1 outside the image, 1 not a box); notes: 1 clipped, 2 polygon as its bounding box',
    );
    // a.png 64x48: rectangle (40,30)-(10,6); polygon x 2..20, y 2..20; circle centre (50,20) radius 6; (60,40)-(70,52) clipped to 64x48
    assert.equal(labels(out, 'train/a.txt'), [
      '1 0.390625 0.375000 0.468750 0.500000',
      '0 0.171875 0.229167 0.281250 0.375000',
      '2 0.781250 0.416667 0.187500 0.250000',
      '1 0.968750 0.916667 0.062500 0.166667',
    ]);
    // b.json: the image exists only as imageData (16x16 PNG): written into the output
    assert.equal(labels(out, 'train/b.txt'), ['0 0.250000 0.250000 0.500000 0.500000']);
    const b = path.join(out, 'images/train/b.png');
    assert.ok(fs.lstatSync(b).isFile());
    const png = PNG.sync.read(fs.readFileSync(b));
    assert.equal([png.width, png.height], [16, 16]);
    assert.equal(labels(out, 'val/c.txt'), ['2 0.500000 0.500000 1.000000 1.000000']);
    assert.equal(readBack(path.join(out, 'data.yaml'), 'train'), { boxes: 5, images: ['a.png', 'b.png'] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- COCO

test('coco -> yolo: categories by id, crowd, zero-size, outside, unknown class and image, missing image, each by JSON path', async () => {
  const dir = tmp();
  try {
    const json = path.join(FIX, 'coco/instances_val.json');
    const out = path.join(dir, 'coco');
    const r = await runCli(['convert', '--from', 'coco', '--to', 'yolo', '--json', json, '--images', path.join(FIX, 'coco/images'), '--out', out]);
    assert.is(r.code, 1);
    says(
      r.out,
      `warning: ${json}: images[3] (id 4): file_name "../escape.png" leaves the images folder; skipped`,
      `warning: ${json}: images[4] (id 1): image id 1 repeated (first at images[0] (id 1)); skipped`,
      `note: ${json}: images[5] (id 6): the JSON says 80x48, the image is 40x24`,
      `warning: ${json}: images[2] (id 3): image ${path.join(FIX, 'coco/images/missing.png')} not found; skipped with 1 annotation`,
      `note: ${json}: annotations[1] (id 11): box [40, 20, 70, 30] reaches outside the 64x48 image: clipped to [40, 20, 64, 30]`,
      `warning: ${json}: annotations[2] (id 12): crowd box (iscrowd=1`,
      `warning: ${json}: annotations[3] (id 13): zero-size box [5, 5, 5, 15]`,
      `warning: ${json}: annotations[4] (id 14): category_id 7 is in no category; skipped`,
      `warning: ${json}: annotations[5] (id 15): image_id 99 is in no "images" entry; skipped`,
      `warning: ${json}: annotations[7] (id 17): bbox "oops" is not [x, y, w, h]; skipped`,
      `warning: ${json}: annotations[9] (id 19): same class and box as annotations[0] (id 10); skipped`,
      `warning: ${json}: annotations[11] (id 21): box [100, 100, 110, 110] lies outside the 64x48 image; skipped`,
      'note: no train images: train is val.txt in data.yaml and obj.data',
      'convert: 3 images (val 3), 4 boxes written; 10 skipped (1 malformed, 1 missing image, 1 unknown image id, 1 unknown class, 1 crowd, 1 zero-size, 1 outside the image, 2 duplicate, 1 unsafe file name); notes: 1 clipped, 1 size differs from the image',
    );
    // categories sorted by id: cat (1) = 0, dog (3) = 1
    assert.equal(fs.readFileSync(path.join(out, 'obj.names'), 'utf8'), 'cat\ndog\n');
    // p1 64x48: [8,6,16,12] -> centre (16,12); [40,20,30,10] clipped to x 40..64
    assert.equal(labels(out, 'val/p1.txt'), ['0 0.250000 0.250000 0.250000 0.250000', '1 0.812500 0.520833 0.375000 0.208333']);
    assert.equal(labels(out, 'val/sub/p2.txt'), ['1 0.230769 0.333333 0.307692 0.444444']);
    // p3: normalised by the JSON's 80x48, not the file's 40x24
    assert.equal(labels(out, 'val/p3.txt'), ['1 0.200000 0.333333 0.200000 0.333333']);
    assert.equal(readBack(path.join(out, 'data.yaml'), 'val'), { boxes: 4, images: ['p1.png', 'p3.jpg', 'p2.png'] });

    // --keep-crowd: the crowd box is an ordinary box
    const out2 = path.join(dir, 'coco2');
    const r2 = await runCli(['convert', '--from', 'coco', '--to', 'yolo', '--json', json, '--images', path.join(FIX, 'coco/images'), '--out', out2, '--keep-crowd']);
    assert.not.ok(r2.out.includes('crowd box'));
    assert.ok(labels(out2, 'val/p1.txt').includes('0 0.500000 0.500000 1.000000 1.000000'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- round trips and val

/** Label lines of every .txt under a labels folder, keyed by path relative to it. */
function labelTree(dir: string): Map<string, number[][]> {
  const m = new Map<string, number[][]>();
  for (const f of filesUnder(dir)) m.set(f, fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').map(Number)));
  return m;
}

function roundTrip(yaml: string, dir: string, tag: string): { coco: string; back: string } {
  const coco = path.join(dir, `${tag}-coco`);
  const c = yoloToCoco({ data: yaml, out: coco });
  assert.is(c.skipped, 0);
  const back = path.join(dir, `${tag}-back`);
  const r = convertToYolo({ from: 'coco', coco: c.files.map((f) => ({ json: f.file, images: f.imagesDir })), out: back });
  assert.is(r.skipped, 0, `${tag}: nothing skipped`);
  assert.equal(r.issues, [], `${tag}: no note either (label rounding is not "clipping")`);
  return { coco, back };
}

test('yolo -> coco -> yolo: the same labels (synthetic set: byte for byte), image sizes from the headers, splits kept', () => {
  const dir = tmp();
  try {
    const synth = generateSynth({ out: path.join(dir, 'synth'), trainCount: 6, valCount: 8, size: 64, seed: 5, difficulty: 'standard' });
    const { coco, back } = roundTrip(synth.yaml, dir, 'synth');
    // the COCO side: sizes from the PNG headers, pixel boxes, category = class, ids = the numeric stems
    const j = JSON.parse(fs.readFileSync(path.join(coco, 'instances_val.json'), 'utf8'));
    assert.equal(j.categories.map((c: { id: number; name: string }) => [c.id, c.name]), [[0, 'circle'], [1, 'square'], [2, 'triangle']]);
    assert.is(j.images.length, 8);
    assert.equal(j.images[3], { id: 3, file_name: '000003.png', width: 64, height: 64 });
    const src = fs.readFileSync(path.join(dir, 'synth/labels/val/000003.txt'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
    const anns = j.annotations.filter((a: { image_id: number }) => a.image_id === 3);
    assert.is(anns.length, src.length);
    anns.forEach((a: { category_id: number; bbox: number[] }, k: number) => {
      const [cls, cx, cy, w, h] = src[k];
      assert.is(a.category_id, cls);
      const want = [(cx - w / 2) * 64, (cy - h / 2) * 64, w * 64, h * 64];
      a.bbox.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-6, `bbox ${a.bbox} vs ${want}`));
    });
    // back: every label file identical, in the same split
    const before = fs.readdirSync(path.join(dir, 'synth/labels'), { recursive: true }).filter((f) => String(f).endsWith('.txt')).map(String).sort();
    assert.is(before.length, 14);
    for (const f of before) assert.is(fs.readFileSync(path.join(back, 'labels', f), 'utf8'), fs.readFileSync(path.join(dir, 'synth/labels', f), 'utf8'), f);
    assert.equal(fs.readFileSync(path.join(back, 'obj.names'), 'utf8'), fs.readFileSync(synth.names, 'utf8'));

    // a set with 8-decimal labels and non-numeric stems: ids 1..N, labels equal up to the rounding to 6 decimals
    const names = ['cat', 'dog'];
    const ims = (pre: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${pre}_${i}`, width: 50 + 7 * i, height: 40 + 3 * i, objects: [{ classId: i % 2, x1: 3.3 + i, y1: 2.7, x2: 30.1 + i, y2: 33.9 }] }));
    const { yaml } = writeDataset(path.join(dir, 'ds'), { train: ims('t', 3), val: ims('v', 4) }, names);
    const r2 = roundTrip(yaml, dir, 'ds');
    const j2 = JSON.parse(fs.readFileSync(path.join(r2.coco, 'instances_val.json'), 'utf8'));
    assert.equal(j2.images.map((i: { id: number; file_name: string }) => [i.id, i.file_name]), [[1, 'v_0.png'], [2, 'v_1.png'], [3, 'v_2.png'], [4, 'v_3.png']]);
    for (const im of j2.images) {
      const h = readImageSize(path.join(dir, 'ds/images/val', im.file_name));
      assert.equal([im.width, im.height], [h.width, h.height]);
    }
    const a = labelTree(path.join(dir, 'ds/labels')), b = labelTree(path.join(r2.back, 'labels'));
    assert.equal([...b.keys()], [...a.keys()]);
    for (const [f, rows] of a) rows.forEach((row, k) => row.forEach((v, i) => assert.ok(Math.abs(v - b.get(f)![k][i]) <= 5e-7 + 1e-12, `${f}:${k + 1}: ${v} vs ${b.get(f)![k][i]}`)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('val gives the same mAP on the converted dataset (yolo -> coco -> yolo) as on the original', async () => {
  const dir = tmp();
  try {
    const synth = generateSynth({ out: path.join(dir, 'synth'), trainCount: 2, valCount: 12, size: 64, seed: 11, difficulty: 'standard' });
    const { back } = roundTrip(synth.yaml, dir, 'synth');
    // predictions: every box jittered, a random class now and then, plus false positives, random scores
    const rng = new Rng(4);
    const preds: { image_id: string; category_id: number; bbox: number[]; score: number }[] = [];
    for (const f of fs.readdirSync(path.join(dir, 'synth/labels/val')).sort()) {
      const stem = f.replace(/\.txt$/, '');
      for (const l of fs.readFileSync(path.join(dir, 'synth/labels/val', f), 'utf8').split('\n').filter(Boolean)) {
        const [cls, cx, cy, w, h] = l.split(' ').map(Number);
        const j = () => 1 + 0.3 * (rng.next() - 0.5);
        const bw = w * 64 * j(), bh = h * 64 * j();
        preds.push({ image_id: stem, category_id: rng.next() < 0.15 ? rng.int(3) : cls, bbox: [cx * 64 * j() - bw / 2, cy * 64 * j() - bh / 2, bw, bh], score: rng.next() });
      }
      preds.push({ image_id: stem, category_id: rng.int(3), bbox: [rng.uniform(0, 40), rng.uniform(0, 40), 20, 20], score: rng.next() * 0.5 });
    }
    const file = path.join(dir, 'preds.json');
    fs.writeFileSync(file, JSON.stringify(preds));
    for (const protocol of ['coco', 'voc'] as const) {
      const orig = (await runVal({ predictions: file, data: synth.yaml, protocol, log: () => {} })).summary;
      assert.ok(orig.map50 > 0.1 && orig.map50 < 0.99, `a score with something to lose (${orig.map50})`);
      for (const desc of ['data.yaml', 'obj.data']) {
        const conv = (await runVal({ predictions: file, data: path.join(back, desc), protocol, log: () => {} })).summary;
        assert.is(conv.numImages, orig.numImages);
        assert.is(conv.instances, orig.instances);
        assert.is(conv.map50, orig.map50, `${protocol} ${desc} mAP@0.5`);
        assert.is(conv.map50_95, orig.map50_95, `${protocol} ${desc} mAP@0.5:0.95`);
        assert.equal(conv.perClass.map((c) => c.ap50), orig.perClass.map((c) => c.ap50));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- bad input

test('bad input: malformed files named with line and column, misused options, a non-empty output, hostile XML and JSON', async () => {
  const dir = tmp();
  const write = (rel: string, data: string | Uint8Array) => {
    const f = path.join(dir, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, data);
    return f;
  };
  try {
    const images = path.join(FIX, 'coco/images');
    const out = path.join(dir, 'out');
    const coco = (json: string, ...more: string[]) => runCli(['convert', '--from', 'coco', '--to', 'yolo', '--json', json, '--images', images, '--out', out, ...more]);
    // a COCO file that is not JSON: file:line:col, nothing written
    let r = await coco(write('bad.json', '{\n  "images": [\n    { "id": 1, }\n  ]\n}\n'));
    assert.is(r.code, 1);
    says(r.out, 'SourceError', `${path.join(dir, 'bad.json')}:3:`, 'not valid JSON');
    assert.not.ok(fs.existsSync(out));
    r = await coco(write('trunc.json', '{"images": [{"id": 1'));
    says(r.out, `${path.join(dir, 'trunc.json')}:1:`, 'not valid JSON');
    r = await coco(write('arr.json', '[]'));
    says(r.out, `${path.join(dir, 'arr.json')}: not a COCO instances file`);
    r = await coco(path.join(dir, 'nope.json'));
    says(r.out, `${path.join(dir, 'nope.json')}: cannot read`);
    assert.is(r.code, 1);
    // every image skipped: an error, not an empty dataset
    r = await coco(write('none.json', JSON.stringify({ images: [{ id: 1, file_name: 'x.png' }, { id: 2, file_name: 'p1\n.png' }], annotations: [], categories: [] })));
    assert.is(r.code, 1);
    says(r.out, 'x.png not found', 'images[1] (id 2): file_name "p1\\n.png" leaves the images folder', 'no image to write');
    assert.equal(filesUnder(out), []);
    // options: a pair that does not exist, an option of another format, a missing input (exit 2)
    r = await runCli(['convert', '--from', 'voc', '--to', 'coco', '--voc', dir, '--out', out]);
    assert.is(r.code, 2);
    says(r.out, '--from coco|voc|labelme --to yolo');
    r = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', dir, '--out', out, '--keep-crowd']);
    assert.is(r.code, 2);
    says(r.out, '--keep-crowd does not apply to convert --from voc');
    r = await runCli(['convert', '--from', 'coco', '--to', 'yolo', '--json', 'a.json', '--out', out]);
    assert.is(r.code, 2);
    says(r.out, 'needs --images');
    r = await runCli(['convert', '--from', 'labelme', '--to', 'yolo', '--labelme', dir, '--out', out, '--val-fraction', '1.5']);
    assert.is(r.code, 2);
    says(r.out, '--val-fraction');
    // a names file with a repeated class: its line
    r = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', path.join(FIX, 'voc'), '--out', out, '--names', write('n.names', 'cat\ndog\ncat\n')]);
    assert.is(r.code, 1);
    says(r.out, `${path.join(dir, 'n.names')}:3: class "cat" repeated`);
    // a non-empty output folder is refused, and left alone
    write('full/keep.txt', 'mine');
    r = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', path.join(FIX, 'voc'), '--out', path.join(dir, 'full')]);
    assert.is(r.code, 1);
    says(r.out, `${path.join(dir, 'full')}: output folder is not empty (keep.txt)`);
    assert.equal(filesUnder(path.join(dir, 'full')), ['keep.txt']);

    // hostile VOC: entity expansion, deep nesting, binary garbage, coordinates that are not numbers
    const jpg = fs.readFileSync(path.join(FIX, 'voc/JPEGImages/000001.jpg'));
    const lol = `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;"><!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;"><!ENTITY l4 "&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;">]>\n<annotation><object><name>&l4;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>`;
    write('hv/Annotations/a.xml', lol);
    write('hv/Annotations/b.xml', `<annotation>${'<x>'.repeat(5000)}${'</x>'.repeat(5000)}</annotation>`);
    write('hv/Annotations/c.xml', new Uint8Array(400).map((_, i) => (i * 131 + 7) & 255));
    write('hv/Annotations/d.xml', '<annotation>\n<object>\n<name>dog</name>\n<bndbox><xmin>NaN</xmin><ymin>1e999</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>\n</object>\n<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\n</annotation>');
    for (const id of ['a', 'b', 'c', 'd']) write(`hv/JPEGImages/${id}.jpg`, jpg);
    const hv = path.join(dir, 'hv-out');
    r = await runCli(['convert', '--from', 'voc', '--to', 'yolo', '--voc', path.join(dir, 'hv'), '--out', hv, '--split', 'val']);
    assert.is(r.code, 1);
    says(r.out, `${path.join(dir, 'hv/Annotations/b.xml')}: cannot parse: Maximum nested tags exceeded; skipped`, `${path.join(dir, 'hv/Annotations/c.xml')}:`, `${path.join(dir, 'hv/Annotations/d.xml')}:2: object 1 "dog" has no <bndbox> with numeric`, /convert: 2 images \(val 2\), 2 boxes written/);
    // the entities are not expanded: the class is the literal text "&l4;" (sorted before "dog")
    assert.equal(fs.readFileSync(path.join(hv, 'obj.names'), 'utf8'), '&l4;\ndog\n');
    assert.equal(labels(hv, 'val/a.txt'), ['0 0.050000 0.083333 0.100000 0.166667']);
    assert.equal(labels(hv, 'val/d.txt'), ['1 0.100000 0.166667 0.200000 0.333333']);

    // hostile labelme: a million-point polygon, non-numeric points, imageData that is not an image
    const big = Array.from({ length: 1_000_000 }, (_, i) => [i % 40, (i * 7) % 24]);
    write('hl/big.json', JSON.stringify({ shapes: [{ label: 'dog', shape_type: 'polygon', points: big }, { label: 'dog', shape_type: 'rectangle', points: [['a', 1], [2, 2]] }], imagePath: 'big.jpg' }));
    write('hl/big.jpg', jpg);
    write('hl/fake.json', JSON.stringify({ shapes: [], imagePath: 'none.png', imageData: Buffer.from('not an image').toString('base64') }));
    const hl = path.join(dir, 'hl-out');
    r = await runCli(['convert', '--from', 'labelme', '--to', 'yolo', '--labelme', path.join(dir, 'hl'), '--out', hl, '--split', 'train']);
    assert.is(r.code, 1);
    says(r.out, `${path.join(dir, 'hl/big.json')}: shapes[1] (label "dog"): a rectangle needs at least 2 points`, `${path.join(dir, 'hl/fake.json')}: image`, 'and imageData is not a PNG or JPEG');
    assert.equal(labels(hl, 'train/big.txt'), ['0 0.487500 0.479167 0.975000 0.958333']);
    assert.equal(filesUnder(dir).filter((f) => /\.tmp$/.test(f)), [], 'no temporary left anywhere');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('splits: a source without one is shared out by name hash (--val-fraction), or put in one split (--split)', () => {
  const dir = tmp();
  try {
    const ims = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, file_name: i % 2 ? 'p1.png' : 'sub/p2.png' }));
    // 20 entries over 2 files would collide: give each its own name through a folder of links
    const imgDir = path.join(dir, 'imgs');
    fs.mkdirSync(imgDir);
    ims.forEach((im, i) => {
      fs.copyFileSync(path.join(FIX, 'coco/images', im.file_name), path.join(imgDir, `im${i}.png`));
      im.file_name = `im${i}.png`;
    });
    const json = path.join(dir, 'annotations.json');
    fs.writeFileSync(json, JSON.stringify({ images: ims, annotations: [], categories: [{ id: 1, name: 'a' }] }));
    const r = convertToYolo({ from: 'coco', coco: [{ json, images: imgDir }], out: path.join(dir, 'a'), valFraction: 0.3 });
    assert.is(r.images.train + r.images.val, 20);
    assert.ok(r.images.val >= 2 && r.images.val <= 12, `about 30% to val (${r.images.val})`);
    // the same names give the same split
    const r2 = convertToYolo({ from: 'coco', coco: [{ json, images: imgDir }], out: path.join(dir, 'b'), valFraction: 0.3 });
    assert.equal(fs.readFileSync(path.join(r2.out, 'val.txt'), 'utf8').replaceAll('/b/', '/a/'), fs.readFileSync(path.join(r.out, 'val.txt'), 'utf8'));
    const r3 = convertToYolo({ from: 'coco', coco: [{ json, images: imgDir }], out: path.join(dir, 'c'), split: 'val' });
    assert.equal(r3.images, { train: 0, val: 20, test: 0 });
    assert.equal(r3.remarks, ['no train images: train is val.txt in data.yaml and obj.data']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
