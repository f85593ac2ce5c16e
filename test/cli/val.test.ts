import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { runVal, type ValImage } from '../../src/api/val.js';
import type { Prediction, Protocol } from '../../src/eval/types.js';
import { writeDataset, type SynthImage } from '../eval/synthetic.js';

const names = ['cat', 'dog', 'bird'];
const val: SynthImage[] = [
  { name: '000000000001', width: 120, height: 100, objects: [{ classId: 0, x1: 10, y1: 10, x2: 50, y2: 50 }, { classId: 1, x1: 60, y1: 20, x2: 100, y2: 80 }] },
  { name: 'cat_a', width: 64, height: 80, objects: [{ classId: 0, x1: 5, y1: 5, x2: 45, y2: 65 }] },
  { name: 'bg', width: 50, height: 50, objects: [] },
];
const train: SynthImage[] = [{ name: 't0', width: 40, height: 40, objects: [{ classId: 1, x1: 0, y1: 0, x2: 20, y2: 20 }] }];

const bbox = (o: { x1: number; y1: number; x2: number; y2: number }) => [o.x1, o.y1, o.x2 - o.x1, o.y2 - o.y1];
const predictions = [
  { image_id: 1, category_id: 0, bbox: bbox(val[0].objects[0]), score: 0.9 }, // all-digit stem matched as a number
  { image_id: '000000000001', category_id: 1, bbox: bbox(val[0].objects[1]), score: 0.8 },
  { image_id: 'cat_a', category_id: 0, bbox: bbox(val[1].objects[0]), score: 0.7 },
  { image_id: 'bg', category_id: 0, bbox: [1, 1, 20, 20], score: 0.95 }, // a FP ranked first for cat
  { image_id: 1, category_id: 2, bbox: [0, 0, 10, 10], score: 0.6 }, // bird: no ground truth anywhere (excluded)
  { image_id: 'bg', category_id: 1, bbox: [0, 0, 5, 5], score: 0.0005 }, // below conf 0.001: dropped
  { image_id: 'zzz', category_id: 0, bbox: [0, 0, 5, 5], score: 0.5 }, // not in the split
  { image_id: 'cat_a', category_id: 7, bbox: [0, 0, 5, 5], score: 0.5 }, // no such class
];

function setup(): { dir: string; yaml: string; data: string; preds: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-val-'));
  const { yaml, data } = writeDataset(path.join(dir, 'ds'), { train, val }, names);
  const preds = path.join(dir, 'preds.json');
  fs.writeFileSync(preds, JSON.stringify(predictions));
  return { dir, yaml, data, preds };
}

test('val scores a COCO json against the val labels: per protocol, table naming it, JSON and plots in out/', async () => {
  const { dir, yaml, data, preds } = setup();
  try {
    // cat: FP .95, TP .9, TP .7 -> envelope 2/3 at every recall (COCO, VOC all-point); dog: 1
    const expected: Record<Protocol, number> = { coco: (2 / 3 + 1) / 2, voc: (2 / 3 + 1) / 2, voc07: (2 / 3 + 1) / 2, ultralytics: 0 };
    for (const protocol of ['coco', 'voc', 'voc07', 'ultralytics'] as Protocol[]) {
      const lines: string[] = [];
      const out = path.join(dir, `out-${protocol}`);
      const r = await runVal({ predictions: preds, data: yaml, protocol, out, json: path.join(dir, `${protocol}.json`), log: (l) => lines.push(l) });
      const s = r.summary;
      assert.is(s.protocol, protocol);
      assert.is(s.numImages, 3);
      assert.is(s.instances, 3);
      assert.is(s.detections, 5, 'the sub-conf, unknown-image and unknown-class entries are not scored');
      assert.equal(s.excludedClasses, [2]);
      assert.equal(s.perClass.map((c) => [c.name, c.images, c.instances]), [['cat', 2, 2], ['dog', 1, 1]]);
      if (protocol !== 'ultralytics') {
        assert.ok(Math.abs(s.map50 - expected[protocol]) < 1e-6, `${protocol} map50 ${s.map50}`);
        assert.ok(Math.abs(s.map50_95 - expected[protocol]) < 1e-6, `${protocol} map50_95 ${s.map50_95}`);
      } else {
        // cat: mrec [0,0,.5,1,1] envelope 2/3 then the 0.01 end step; dog 0.995
        assert.ok(Math.abs(s.perClass[1].ap50 - 0.995) < 1e-9);
        assert.ok(Math.abs(s.perClass[0].ap50 - (2 / 3) * 0.995) < 1e-9, `cat ${s.perClass[0].ap50}`);
      }
      const text = lines.join('\n');
      assert.match(text, new RegExp(`protocol ${protocol}: mAP@0\\.5 `));
      assert.match(text, /Class\s+Images\s+Instances\s+P\s+R\s+mAP50\s+mAP50-95/);
      assert.match(text, /\s+all\s+3\s+3\s/);
      assert.match(text, /excluded\): bird/);
      assert.match(text, /warning: .*preds\.json: 1 image ids are not in the val split \(first: "zzz"\)/);
      assert.match(text, /warning: .*preds\.json\[7\]: category_id 7 maps to no class/);
      if (protocol === 'coco') assert.match(text, /Average Precision\s+\(AP\) @\[ IoU=0\.50:0\.95 \| area=   all \| maxDets=100 \] = 0\.833/);
      for (const f of ['metrics.json', 'confusion_matrix.txt', 'PR_curve.png', 'F1_curve.png', 'confusion_matrix.png']) assert.ok(fs.existsSync(path.join(out, f)), `${protocol}: ${f}`);
      PNG.sync.read(fs.readFileSync(path.join(out, 'PR_curve.png')));
      const j = JSON.parse(fs.readFileSync(path.join(dir, `${protocol}.json`), 'utf8'));
      assert.is(j.protocol, protocol);
      assert.is(j.map50, s.map50);
      assert.is(j.map50_95, s.map50_95);
      assert.is(typeof j.precision, 'number');
      assert.is(typeof j.recall, 'number');
      assert.equal(j.per_class.map((c: { name: string }) => c.name), ['cat', 'dog']);
      assert.equal(Object.keys(j.per_class[0]).filter((k) => ['map50', 'map50_95', 'precision', 'recall'].includes(k)).sort(), ['map50', 'map50_95', 'precision', 'recall']);
      assert.equal(j.confusion_matrix.matrix.length, 4);
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).map50, s.map50);
    }
    // confusion matrix: cat 2 correct + 1 FP on background (the .95 on bg); dog 1 correct; bird det on
    // image 1 is below IoU with anything -> background FP
    const r = await runVal({ predictions: preds, data, protocol: 'coco', log: () => {} });
    assert.equal(r.confusion.matrix.map((row) => Array.from(row)), [
      [2, 0, 0, 1],
      [0, 1, 0, 0],
      [0, 0, 0, 1],
      [0, 0, 0, 0],
    ]);
    assert.ok(Math.abs(r.summary.map50 - 5 / 6) < 1e-6, 'the Darknet .data form of the same dataset');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('val through a detector function (the network seam) writes predictions.json; errors are plain', async () => {
  const { dir, yaml } = setup();
  try {
    const seen: string[] = [];
    const detector = (images: readonly ValImage[], o: { conf: number; iou: number }): Prediction[][] => {
      assert.is(o.conf, 0.001);
      assert.is(o.iou, 0.6);
      return images.map((im) => {
        seen.push(String(im.id));
        return im.gts.map((g, i) => ({ ...g, score: 0.9 - 0.1 * i }));
      });
    };
    const out = path.join(dir, 'net');
    const r = await runVal({ data: yaml, protocol: 'coco', detector, out, log: () => {} });
    assert.equal(seen, ['1', 'bg', 'cat_a'], 'folder order (sorted file names)');
    assert.ok(Math.abs(r.summary.map50 - 1) < 1e-9);
    const p = JSON.parse(fs.readFileSync(path.join(out, 'predictions.json'), 'utf8'));
    assert.is(p.length, 3);
    assert.equal(p[0].image_id, 1);
    await runVal({ data: yaml, log: () => {} }).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /pass --predictions/),
    );
    await runVal({ data: yaml, predictions: path.join(dir, 'none.json'), log: () => {} }).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /none\.json/),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
