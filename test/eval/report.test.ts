import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { ConfusionMatrix } from '../../src/eval/confusion.js';
import { fromCocoDetections, imageIdForFile, imageKey, toCocoDetections } from '../../src/eval/cocojson.js';
import { scoreDetections } from '../../src/eval/metrics.js';
import { writeEvalPlots } from '../../src/eval/plots.js';
import { heatmap, linePlot, niceTicks } from '../../src/viz/plot.js';
import type { EvalImage, GroundTruth, Prediction } from '../../src/eval/types.js';

const gt = (x1: number, y1: number, x2: number, y2: number, classId = 0): GroundTruth => ({ x1, y1, x2, y2, classId });
const det = (x1: number, y1: number, x2: number, y2: number, score: number, classId = 0): Prediction => ({ x1, y1, x2, y2, score, classId });

// ---------------------------------------------------------------- confusion matrix

test('confusion matrix: correct, confused, missed, background FP, below conf, one det per GT', () => {
  const cm = new ConfusionMatrix(2);
  cm.processImage(
    [
      det(0, 0, 10, 10, 0.9, 0), // correct on GT a
      det(0, 0, 10, 9, 0.8, 0), // second det on GT a: unmatched -> background FP
      det(100, 100, 120, 120, 0.7, 0), // class confusion on GT b (class 1)
      det(300, 300, 310, 310, 0.6, 1), // nothing there: background FP
      det(200, 200, 210, 210, 0.2, 1), // below conf 0.25: ignored (GT c is missed)
    ],
    [gt(0, 0, 10, 10, 0), gt(100, 100, 120, 120, 1), gt(200, 200, 210, 210, 1)],
  );
  // matrix[predicted][true]; index 2 = background
  assert.equal(cm.matrix.map((r) => Array.from(r)), [
    [1, 1, 1],
    [0, 0, 1],
    [0, 1, 0],
  ]);
  assert.equal(cm.tpFp(), { tp: [1, 0], fp: [2, 1] });
  // an image without labels: its detections are background FPs (yolov5 v7.0 skipped them; legacyV7 does too)
  cm.processImage([det(0, 0, 5, 5, 0.5, 1)], []);
  assert.is(cm.matrix[1][2], 2);
  const legacy = new ConfusionMatrix(2, { legacyV7: true });
  legacy.processImage([det(0, 0, 5, 5, 0.5, 1)], []);
  legacy.processImage([det(50, 50, 60, 60, 0.5, 1)], [gt(0, 0, 10, 10, 0)]);
  assert.is(legacy.matrix[1][2], 0, 'v7.0: no match in the image -> FPs not counted');
  assert.is(legacy.matrix[2][0], 1);
  const txt = cm.toText(['cat', 'dog']);
  assert.match(txt, /predicted \\ true\s+cat\s+dog\s+background/);
  assert.match(txt.split('\n')[3], /^background\s+0\s+1\s+0$/);
  const norm = cm.normalized();
  assert.ok(Math.abs(norm[0][0] + norm[1][0] + norm[2][0] - 1) < 1e-6);
  assert.throws(() => cm.processImage([], [gt(0, 0, 1, 1, 5)]), /class 5/);
});

// ---------------------------------------------------------------- COCO json

test('COCO json: export bbox x,y,w,h + score, import back; image ids from stems; category offset; unknown ids', () => {
  assert.is(imageIdForFile('/a/b/000000000139.jpg'), 139);
  assert.is(imageIdForFile('dir/cat_01.png'), 'cat_01');
  assert.is(imageKey(139), imageKey('000000000139'));
  assert.not.equal(imageKey('a1'), imageKey(1));
  const items = [
    { id: 139, dets: [det(10.25, 20.5, 30.75, 60, 0.912345678, 2)] },
    { id: 'cat_01', dets: [det(0, 0, 5, 5, 0.5, 0)] },
  ];
  const out = toCocoDetections(items, { categoryOffset: 1 });
  assert.equal(out[0], { image_id: 139, category_id: 3, bbox: [10.25, 20.5, 20.5, 39.5], score: 0.91235 });
  const back = fromCocoDetections(JSON.stringify([...out, { image_id: 'nope', category_id: 1, bbox: [0, 0, 1, 1], score: 0.3 }, { image_id: 1, bbox: [0, 0, 1] }]), {
    categoryOffset: 1,
    knownKeys: new Set([imageKey(139), imageKey('cat_01')]),
    numClasses: 3,
  });
  assert.equal(back.byImage.get(imageKey(139)), [{ x1: 10.25, y1: 20.5, x2: 30.75, y2: 60, classId: 2, score: 0.91235 }]);
  assert.equal(back.unknownImages, ['nope']);
  assert.is(back.problems.length, 1);
  assert.match(back.problems[0], /\[3\]: category_id missing/);
  assert.throws(() => fromCocoDetections('{"a":1}'), /JSON list/);
  const full = toCocoDetections(items, { round: false, categoryIds: [1, 5, 9] });
  assert.is(full[0].score, 0.912345678);
  assert.is(full[0].category_id, 9);
  assert.is(fromCocoDetections(full, { categoryIds: [1, 5, 9] }).byImage.get(imageKey('cat_01'))![0].classId, 0);
});

// ---------------------------------------------------------------- plots

function decode(file: string): PNG {
  return PNG.sync.read(fs.readFileSync(file));
}

function countColor(png: PNG, rgb: [number, number, number]): number {
  let n = 0;
  for (let i = 0; i < png.width * png.height; i++) if (png.data[4 * i] === rgb[0] && png.data[4 * i + 1] === rgb[1] && png.data[4 * i + 2] === rgb[2]) n++;
  return n;
}

test('line plot: axes, the series in its colour inside the box, ticks', () => {
  assert.equal(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const img = linePlot([{ label: 'diag', x: [0, 1], y: [0, 1], color: [255, 0, 0], width: 2 }], { figsize: [4, 3], dpi: 100, title: 'T', xlabel: 'Recall', ylabel: 'Precision', xlim: [0, 1], ylim: [0, 1] });
  assert.is(img.width, 400);
  let red = 0;
  for (let i = 0; i < img.width * img.height; i++) if (img.data[4 * i] === 255 && img.data[4 * i + 1] === 0 && img.data[4 * i + 2] === 0) red++;
  assert.ok(red > 300, `the diagonal is drawn (${red} red pixels)`);
  const hm = heatmap([[1, 0], [0.5, 0.25]], { rowLabels: ['a', 'b'], colLabels: ['a', 'b'], title: 'CM' });
  assert.ok(hm.width > 100 && hm.height > 100);
});

test('writeEvalPlots: PR curve, F1 curve (P and R curves with ultralytics) and confusion matrix PNGs', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-plots-'));
  try {
    const images: EvalImage[] = [
      { id: 1, gts: [gt(10, 10, 50, 50), gt(60, 60, 90, 90, 1)], dets: [det(10, 10, 50, 50, 0.9), det(60, 60, 90, 88, 0.6, 1), det(0, 100, 20, 120, 0.4, 1)] },
      { id: 2, gts: [gt(10, 10, 50, 50)], dets: [det(12, 10, 50, 52, 0.3)] },
    ];
    for (const protocol of ['coco', 'ultralytics', 'voc'] as const) {
      const s = scoreDetections(images, { protocol, names: ['cat', 'dog'] });
      const cm = new ConfusionMatrix(2).processImages(images);
      const files = writeEvalPlots(path.join(dir, protocol), s, cm);
      const pr_ = protocol === 'ultralytics' ? ['P_curve.png', 'R_curve.png'] : [];
      assert.equal(files.map((f) => path.basename(f)), ['PR_curve.png', 'F1_curve.png', ...pr_, 'confusion_matrix.png']);
      const pr = decode(files[0]);
      assert.is(pr.width, 1350);
      assert.ok(countColor(pr, [0, 0, 255]) > 500, `${protocol}: the mean curve in blue`);
      assert.ok(decode(files.at(-1)!).width > 100);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
