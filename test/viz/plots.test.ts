/**
 * Every picture the package writes, rendered from fixed data (test/viz/fixtures.ts) and checked as a
 * person would look at it: the size; the axes (dark frame lines where the layout says) and drawn data
 * inside them; every text drawn where its measured box says (ink of its colour inside), inside the
 * picture (not clipped) and overlapping no other text; the texts that must be there (titles, legends
 * with the values of the data, class names, tick labels); and the files written under their names.
 * scripts/plots-sheet.ts puts the same pictures on docs/images/plots.png.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { evalSummary, labelBoxes, mosaicTiles, NAMES, picture, trainingRun, evalImages } from './fixtures.js';
import { confusionPlot, f1CurvePlot, pCurvePlot, prCurvePlot, rCurvePlot, writeEvalPlots, writeValMosaics } from '../../src/eval/plots.js';
import { darknetChart, movingAverage, resultsPlot, writeLabelsPlot, writeTrainingPlots } from '../../src/train/plots.js';
import { batchMosaic, labelsPlot, paletteColor } from '../../src/viz/labels.js';
import { classColor, drawDetections, labelFontPx, labelOf, makeRgba, type RgbaImage } from '../../src/viz/draw.js';
import { gaussianSmooth, MEAN_COLOR, TAB10, tickLabels, niceTicks } from '../../src/viz/plot.js';
import { measureText } from '../../src/viz/font.js';
import type { Figure, Rect } from '../../src/viz/painter.js';
import { ConfusionMatrix } from '../../src/eval/confusion.js';

type RGB = readonly [number, number, number];
const px = (img: RgbaImage, x: number, y: number): RGB => {
  const o = (Math.round(y) * img.width + Math.round(x)) * 4;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
};
const near = (a: RGB, b: RGB, tol: number) => Math.abs(a[0] - b[0]) <= tol && Math.abs(a[1] - b[1]) <= tol && Math.abs(a[2] - b[2]) <= tol;
const rgbOf = (cssColor: string): RGB => (cssColor.match(/\d+/g) ?? ['0', '0', '0']).slice(0, 3).map(Number) as unknown as RGB;

/** Pixels within `tol` of `c` in the rectangle (clipped to the image). */
function count(img: RgbaImage, r: Rect, c: RGB, tol = 40): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(r.y)); y < Math.min(img.height, Math.ceil(r.y + r.h)); y++) {
    for (let x = Math.max(0, Math.floor(r.x)); x < Math.min(img.width, Math.ceil(r.x + r.w)); x++) if (near(px(img, x, y), c, tol)) n++;
  }
  return n;
}

/** Texts: inside the picture, ink of their colour in their box, no two overlapping (except roles in `mayOverlap`). */
function checkTexts(name: string, f: Figure, mayOverlap: readonly string[] = []): void {
  assert.ok(f.texts.length > 0, `${name}: texts recorded`);
  for (const t of f.texts) {
    assert.ok(t.x >= -0.5 && t.y >= -0.5 && t.x + t.w <= f.width + 0.5 && t.y + t.h <= f.height + 0.5, `${name}: "${t.text}" (${t.role}) clipped: ${JSON.stringify([t.x, t.y, t.w, t.h])} in ${f.width}x${f.height}`);
    const m = measureText(t.text, t.px);
    assert.ok(Math.abs((t.vertical ? t.h : t.w) - m.width) < 0.01, `${name}: "${t.text}" box is its measured width`);
    const ink = count(f, t, rgbOf(t.color), t.px < 12 ? 110 : 70); // small text: thinner, greyer strokes
    assert.ok(ink >= Math.min(4, t.text.replace(/\s/g, '').length), `${name}: "${t.text}" (${t.role}) has ${ink} pixels of its colour ${t.color} in its box`);
  }
  for (let i = 0; i < f.texts.length; i++) {
    for (let j = i + 1; j < f.texts.length; j++) {
      const a = f.texts[i];
      const b = f.texts[j];
      if (mayOverlap.includes(a.role) && mayOverlap.includes(b.role)) continue;
      const ix = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const iy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      assert.ok(!(ix > 1 && iy > 1), `${name}: "${a.text}" (${a.role}) overlaps "${b.text}" (${b.role}) by ${ix.toFixed(1)} x ${iy.toFixed(1)} px`);
    }
  }
}

/** An axes frame: dark pixels along its four edges; data drawn inside (pixels of `data` colour). */
function checkAxes(name: string, f: Figure, r: Rect, data?: RGB, minData = 50): void {
  const dark = (x: number, y: number) => {
    for (let d = -1; d <= 1; d++) {
      const c = px(f, Math.min(f.width - 1, Math.max(0, x + (r.h ? 0 : d))), Math.min(f.height - 1, Math.max(0, y)));
      if (c[0] < 110 && c[1] < 110 && c[2] < 110) return true;
    }
    return false;
  };
  const edge = (pts: [number, number][]) => pts.filter(([x, y]) => dark(x, y) || dark(x + 1, y) || dark(x, y + 1) || dark(x - 1, y) || dark(x, y - 1)).length / pts.length;
  const n = 40;
  const along = (x0: number, y0: number, x1: number, y1: number) => Array.from({ length: n }, (_, k) => [x0 + ((x1 - x0) * (k + 0.5)) / n, y0 + ((y1 - y0) * (k + 0.5)) / n] as [number, number]);
  for (const [label, pts] of [
    ['left', along(r.x, r.y, r.x, r.y + r.h)], ['bottom', along(r.x, r.y + r.h, r.x + r.w, r.y + r.h)],
    ['right', along(r.x + r.w, r.y, r.x + r.w, r.y + r.h)], ['top', along(r.x, r.y, r.x + r.w, r.y)],
  ] as const) {
    // data lines may cross the frame; most of it is the frame's dark line
    assert.ok(edge(pts) >= 0.8, `${name}: the ${label} side of the axes at ${JSON.stringify(r)} is drawn (${(edge(pts) * 100).toFixed(0)}%)`);
  }
  if (data) {
    const got = count(f, { x: r.x + 2, y: r.y + 2, w: r.w - 4, h: r.h - 4 }, data, 30);
    assert.ok(got >= minData, `${name}: ${got} pixels of the data colour ${data} inside the axes`);
  }
}

const roles = (f: Figure, role: string) => f.texts.filter((t) => t.role === role).map((t) => t.text);

test('tick labels: shared decimals as matplotlib, U+2212 minus, exponents for tiny values', () => {
  assert.equal(tickLabels(niceTicks(0, 1, 5)), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  assert.equal(tickLabels([0, 2.5, 5, 7.5]), ['0.0', '2.5', '5.0', '7.5']);
  assert.equal(tickLabels([-10, 0, 10, 20]), ['\u221210', '0', '10', '20']);
  assert.equal(tickLabels([0, 5000, 10000]), ['0', '5000', '10000']);
  assert.equal(tickLabels([0, 0.0002, 0.0004]), ['0', '2e-4', '4e-4']);
  assert.equal(niceTicks(-1.45, 30.45, 3), [0, 20]);
  assert.equal(niceTicks(0, 30, 3), [0, 10, 20, 30]);
});

test('gaussianSmooth = scipy.ndimage.gaussian_filter1d(sigma, mode reflect, truncate 4)', () => {
  const sigma = 3;
  const w = Array.from({ length: 25 }, (_, k) => Math.exp(-0.5 * ((k - 12) / sigma) ** 2));
  const sum = w.reduce((a, b) => a + b, 0);
  // an impulse in the middle of 41 samples gives the normalised kernel
  const y = new Array(41).fill(0);
  y[20] = 1;
  const s = gaussianSmooth(y, sigma);
  for (let k = 0; k < 41; k++) assert.ok(Math.abs(s[k] - (Math.abs(k - 20) <= 12 ? w[k - 20 + 12] / sum : 0)) < 1e-12, `impulse ${k}`);
  // reflect: an impulse at sample 0 also counts its mirror at -1 (d c b a | a b c d)
  const e = new Array(41).fill(0);
  e[0] = 1;
  const se = gaussianSmooth(e, sigma);
  assert.ok(Math.abs(se[0] - (w[12] + w[11]) / sum) < 1e-12 && Math.abs(se[3] - (w[15] + w[8]) / sum) < 1e-12);
  // constants stay; 3 samples reflect many times over the radius 12
  assert.ok(gaussianSmooth([2, 2, 2], sigma).every((v) => Math.abs(v - 2) < 1e-12));
  const three = gaussianSmooth([0, 3, 0], sigma);
  assert.ok(Math.abs(three[0] - three[2]) < 1e-12 && three[1] > three[0]);
});

test('results.png: Ultralytics grid, 10 panels with their titles, data and smoothing, legend in panel 2', () => {
  const { history } = trainingRun();
  const t0 = performance.now();
  const f = resultsPlot(history);
  const ms = performance.now() - t0;
  assert.equal([f.width, f.height], [1800, 900]);
  assert.is(f.axes.length, 10);
  assert.equal(roles(f, 'title'), ['train/box_loss', 'train/obj_loss', 'train/cls_loss', 'train/loss', 'x/lr', 'metrics/precision', 'metrics/recall', 'metrics/mAP_0.5', 'metrics/mAP_0.5:0.95', 'time/epoch (s)']);
  assert.equal(roles(f, 'legend'), ['results', 'smooth']);
  for (const r of f.axes) checkAxes('results.png', f, r, TAB10[0], 100);
  // the smoothing (orange, dotted) is drawn in every panel
  for (const r of f.axes) assert.ok(count(f, r, TAB10[1], 30) > 30, 'smooth line');
  // the y ticks of the first panel cover the box loss range
  const box = history.map((h) => h.lossItems.box);
  const yt = f.texts.filter((t) => t.role === 'ytick' && t.x + t.w < f.axes[0].x).map((t) => Number(t.text));
  assert.ok(Math.min(...yt) <= Math.min(...box) + 0.02 && Math.max(...yt) >= Math.max(...box) - 0.02, `ticks ${yt} for ${Math.min(...box)}..${Math.max(...box)}`);
  checkTexts('results.png', f);
  // before any validation: one row
  const early = resultsPlot(history.slice(0, 2));
  assert.equal([early.width, early.height, early.axes.length], [1800, 450, 5]);
  checkTexts('results.png (no validation)', early);
  assert.ok(ms < 3000, `${ms.toFixed(0)} ms`);
});

test("chart.png: Darknet's loss per iteration with the average, mAP% on the right axis", () => {
  const { history, iterations } = trainingRun();
  const f = darknetChart(iterations, history);
  assert.equal([f.width, f.height], [1000, 800]);
  const avg = movingAverage(iterations.map((q) => q.loss));
  assert.equal(roles(f, 'title'), [`current avg loss = ${avg.at(-1)!.toFixed(4)}    iteration = 600`]);
  assert.equal(roles(f, 'xlabel'), ['Iteration number']);
  assert.equal(roles(f, 'ylabel-right'), ['mAP@0.5 %']);
  assert.equal(roles(f, 'ytick-right'), ['0', '20', '40', '60', '80', '100']);
  checkAxes('chart.png', f, f.axes[0], MEAN_COLOR, 300);
  assert.ok(count(f, f.axes[0], [214, 39, 40], 30) > 300, 'the mAP line in red');
  const last = history.at(-1)!.metrics!.map50;
  assert.ok(roles(f, 'map-label').includes(`${(100 * last).toFixed(0)}%`), 'the last mAP is labelled');
  checkTexts('chart.png', f);
  // no validation: no right axis
  const noVal = darknetChart(iterations, history.map((h) => ({ ...h, metrics: undefined })));
  assert.equal(roles(noVal, 'ytick-right'), []);
});

test('PR, F1, P, R curves: per class with AP in the outside legend, the mean in thick blue', () => {
  const { summary } = evalSummary('ultralytics');
  const pr = prCurvePlot(summary);
  assert.equal([pr.width, pr.height], [1350, 900]);
  assert.equal(roles(pr, 'legend'), [...summary.perClass.map((c) => `${c.name} ${c.ap50.toFixed(3)}`), `all classes ${summary.map50.toFixed(3)} mAP@0.5`]);
  assert.equal(roles(pr, 'xtick'), ['0.0', '0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '1.0']);
  checkAxes('PR', pr, pr.axes[0], MEAN_COLOR, 1500);
  for (let k = 0; k < 5; k++) assert.ok(count(pr, pr.axes[0], TAB10[k], 25) > 100, `class ${k} curve`);
  // the legend is right of the axes
  for (const t of pr.texts.filter((q) => q.role === 'legend')) assert.ok(t.x > pr.axes[0].x + pr.axes[0].w);
  checkTexts('PR', pr);
  for (const [name, f] of [['F1', f1CurvePlot(summary)], ['P', pCurvePlot(summary)!], ['R', rCurvePlot(summary)!]] as const) {
    assert.equal([f.width, f.height], [1350, 900]);
    assert.match(roles(f, 'legend').at(-1)!, /^all classes \d\.\d\d at \d\.\d{3}$/);
    checkAxes(name, f, f.axes[0], MEAN_COLOR, 1500);
    checkTexts(name, f);
  }
  assert.is(pCurvePlot(evalSummary('coco').summary), null, 'P curve: ultralytics protocol only');
  // more than 20 classes: grey, no per-class legend
  const many = { ...summary, perClass: Array.from({ length: 25 }, (_, i) => ({ ...summary.perClass[i % 5], name: `c${i}` })), prCurve: { ...summary.prCurve, precision: Array.from({ length: 25 }, (_, i) => summary.prCurve.precision[i % 5]) } };
  assert.equal(roles(prCurvePlot(many), 'legend'), [`all classes ${summary.map50.toFixed(3)} mAP@0.5`]);
});

test('confusion matrix: normalised Blues cells with their values, class labels, colour bar', () => {
  const { confusion } = evalSummary('ultralytics');
  const f = confusionPlot(confusion, NAMES);
  assert.equal([f.width, f.height], [1500, 1125]);
  const labels = [...NAMES, 'background'];
  assert.equal(roles(f, 'ytick'), labels);
  assert.equal(roles(f, 'xtick'), labels);
  assert.equal(roles(f, 'xlabel'), ['True']);
  assert.equal(roles(f, 'ylabel'), ['Predicted']);
  const norm = confusion.normalized();
  const shown = norm.flatMap((r) => Array.from(r)).filter((v) => v >= 0.005).map((v) => v.toFixed(2));
  assert.equal(roles(f, 'cell').sort(), shown.sort());
  // cell colours: a full 1.00 cell is 'Blues' darkest, an empty one white
  const g = f.axes[0];
  const n = labels.length;
  const cell = g.w / n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const c = px(f, g.x + (j + 0.1) * cell, g.y + (i + 0.1) * cell);
      if (norm[i][j] < 0.005) assert.equal(c, [255, 255, 255], `cell ${i},${j} blank`);
      else if (norm[i][j] > 0.99) assert.ok(near(c, [8, 48, 107], 3), `cell ${i},${j} darkest ${c}`);
    }
  }
  assert.equal(roles(f, 'cbar'), ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  checkTexts('confusion', f);
  // 80 classes: no annotations, labels still readable (turned, no overlap)
  const cm80 = new ConfusionMatrix(80);
  for (let i = 0; i < 80; i++) cm80.matrix[i][i] = 5;
  const big = confusionPlot(cm80, Array.from({ length: 80 }, (_, i) => `class_${i}`));
  assert.equal(roles(big, 'cell'), []);
  assert.is(roles(big, 'xtick').length, 81);
  assert.ok(big.texts.filter((t) => t.role === 'xtick').every((t) => t.vertical));
  checkTexts('confusion 80', big);
});

test('labels.jpg: class histogram in the class colours, box shapes, centre and size histograms', () => {
  const boxes = labelBoxes();
  const f = labelsPlot(boxes, NAMES);
  assert.equal([f.width, f.height], [1000, 1000]);
  assert.equal(roles(f, 'xtick').slice(0, 5), NAMES);
  assert.equal(roles(f, 'ylabel'), ['instances', 'y', 'height']);
  assert.equal(roles(f, 'xlabel'), ['x', 'width']);
  const [hist, shapes, xy, wh] = f.axes;
  // one bar per class, in Ultralytics' palette, heights in proportion to the counts
  const counts = NAMES.map((_, k) => boxes.filter((b) => b.classId === k).length);
  const heights = counts.map((_, k) => count(f, hist, paletteColor(k), 2));
  for (let k = 0; k < 5; k++) assert.ok(heights[k] > 0, `bar ${k}`);
  for (let k = 1; k < 5; k++) assert.ok(Math.abs(heights[k] / heights[0] - counts[k] / counts[0]) < 0.05, `bar ${k}: ${heights[k] / heights[0]} vs ${counts[k] / counts[0]}`);
  assert.ok(count(f, shapes, paletteColor(0), 60) > 500, 'box shapes drawn');
  checkAxes('labels xy', f, xy);
  checkAxes('labels wh', f, wh);
  let blue = 0;
  for (const r of [xy, wh]) for (let y = r.y + 2; y < r.y + r.h - 2; y++) for (let x = r.x + 2; x < r.x + r.w - 2; x++) if (px(f, x, y)[2] > px(f, x, y)[0] + 40) blue++;
  assert.ok(blue > 2000, `histogram cells ${blue}`);
  checkTexts('labels', f);
});

test('val batch mosaics: 4 x 4 tiles, file names, labels vs predictions above 0.25 in the same tiles', () => {
  const { labels, preds } = mosaicTiles();
  const a = batchMosaic(labels, { names: NAMES });
  const b = batchMosaic(preds, { names: NAMES });
  assert.equal([a.width, a.height, b.width, b.height], [1920, 1920, 1920, 1920]);
  assert.equal(roles(a, 'filename'), labels.map((t) => path.basename(t.file)));
  assert.equal(roles(a, 'label').sort(), labels.flatMap((t) => t.boxes.map((g) => NAMES[g.classId])).sort());
  const expected = preds.flatMap((t) => t.boxes.filter((d) => d.score! >= 0.25).map((d) => `${NAMES[d.classId]} ${d.score!.toFixed(2)}`));
  assert.equal(roles(b, 'label').sort(), expected.sort());
  // every label stays inside its own 480 px tile
  for (const f of [a, b]) {
    for (const t of f.texts.filter((q) => q.role === 'label')) {
      const tx = Math.floor((t.x + 1) / 480);
      const ty = Math.floor((t.y + 1) / 480);
      assert.ok(t.x >= tx * 480 - 0.5 && t.x + t.w <= (tx + 1) * 480 + 0.5 && t.y >= ty * 480 - 0.5 && t.y + t.h <= (ty + 1) * 480 + 0.5, `"${t.text}" inside its tile`);
    }
    checkTexts('mosaic', f, ['label', 'filename']);
  }
  // the image content is in the tile (a 320 x 240 picture fitted to 480 x 360, centred)
  const pic = picture(evalImages()[0]);
  let same = 0;
  const pts = 200;
  for (let k = 0; k < pts; k++) {
    const x = 20 + ((k * 37) % 440);
    const y = 80 + ((k * 53) % 320);
    if (near(px(a, x, y), px(pic, Math.min(319, x / 1.5), Math.min(239, (y - 60) / 1.5)), 25)) same++;
  }
  assert.ok(same > pts * 0.7, `tile 0 shows its picture (${same} of ${pts} points)`);
  assert.equal(px(a, 240, 40), [114, 114, 114], 'letterbox grey above the picture');
  // an unreadable image says so in its tile
  const bad = batchMosaic([{ file: 'x/broken.jpg', image: null, error: 'not a PNG or JPEG', boxes: [] }], { names: NAMES });
  assert.equal(roles(bad, 'tile-error'), ['not a PNG or JPEG']);
  assert.equal([bad.width, bad.height], [640, 640]);
});

test('detect overlay: label size follows the image, background box behind the text, kept in the image', () => {
  for (const [W, H] of [[64, 48], [640, 480], [3000, 2000]] as const) {
    const img = makeRgba(W, H, [90, 120, 90]);
    const s = W / 320;
    const items = [
      { x1: 40 * s, y1: 60 * s, x2: 200 * s, y2: 180 * s, classId: 2, score: 0.91 }, // label above the box
      { x1: 250 * s, y1: 0, x2: 320 * s, y2: 100 * s, classId: 7, score: 0.55 }, // top-right corner: inside, moved left
    ];
    const names = NAMES.concat(['a', 'b', 'traffic light']);
    drawDetections(img, items, { names });
    const fpx = labelFontPx(W, H);
    assert.is(fpx, Math.max(11, Math.round(((W + H) / 2) * 0.03)));
    const m = measureText(labelOf(items[0], NAMES), fpx);
    const pad = Math.max(1, Math.round(fpx / 5));
    const lw = Math.max(1, Math.round(Math.min(W, H) / 250));
    // first label: right above the box, in the class colour with text of the other shade
    const c2 = classColor(2, names.length);
    const lh = Math.ceil(m.ascent + m.descent) + 2 * pad;
    const y0 = Math.floor(60 * s) - lh;
    if (y0 >= 0) {
      const r = { x: Math.floor(40 * s), y: y0, w: Math.ceil(m.width) + 2 * pad, h: lh };
      const bg = count(img, r, c2, 2);
      assert.ok(bg > r.w * r.h * 0.5, `${W}x${H}: label background ${bg} of ${r.w * r.h}`);
      const ink = count(img, r, c2[0] * 0.299 + c2[1] * 0.587 + c2[2] * 0.114 > 140 ? [0, 0, 0] : [255, 255, 255], 90);
      assert.ok(ink > m.width * 0.3, `${W}x${H}: label text ${ink}`);
    }
    // second label: at the top edge and the right edge, so drawn inside the box, ending at the image's border
    const c7 = classColor(7, names.length);
    const w2 = Math.ceil(measureText(labelOf(items[1], names), fpx).width) + 2 * pad;
    const lx = Math.max(0, Math.min(Math.floor(250 * s), W - w2));
    const x2 = Math.min(W, lx + w2) - 1;
    assert.ok(near(px(img, lx + 1, lw + 1), c7, 2) && near(px(img, x2 - 1, lw + 1), c7, 2), `${W}x${H}: label background from ${lx} to ${x2}, inside the box's top`);
    if (w2 > W) assert.is(lx, 0, `${W}x${H}: a label wider than the image starts at 0 and is clipped`);
    else if (Math.floor(250 * s) + w2 > W) assert.is(x2, W - 1, `${W}x${H}: moved left to end at the border`);
  }
});

test('files: writeTrainingPlots, writeEvalPlots, writeValMosaics, labels.jpg under their names', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-viz-'));
  try {
    const { history, iterations } = trainingRun();
    const t = writeTrainingPlots(dir, history, iterations).map((f) => path.basename(f));
    assert.equal(t, ['results.png', 'metrics.png', 'chart.png', 'loss.png', 'lr.png']);
    const { summary, confusion, images } = evalSummary('ultralytics');
    const e = writeEvalPlots(dir, summary, confusion).map((f) => path.basename(f));
    assert.equal(e, ['PR_curve.png', 'F1_curve.png', 'P_curve.png', 'R_curve.png', 'confusion_matrix.png']);
    for (const f of [...t, ...e]) {
      const png = PNG.sync.read(fs.readFileSync(path.join(dir, f)));
      assert.ok(png.width >= 800 && png.height >= 450, `${f} ${png.width}x${png.height}`);
    }
    // mosaics from image files (one missing: its tile says why)
    const files = images.slice(0, 5).map((im, i) => {
      const file = path.join(dir, 'img', `${im.id}.png`);
      if (i !== 3) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        const pic = picture(im);
        const p = new PNG({ width: pic.width, height: pic.height });
        p.data.set(pic.data);
        fs.writeFileSync(file, PNG.sync.write(p));
      }
      return { file, gts: im.gts };
    });
    const mz = writeValMosaics(dir, files, images.slice(0, 5).map((im) => im.dets), NAMES).map((f) => path.basename(f));
    assert.equal(mz, ['val_batch0_labels.jpg', 'val_batch0_pred.jpg']);
    const jp = jpeg.decode(fs.readFileSync(path.join(dir, mz[0])));
    assert.equal([jp.width, jp.height], [1920, 1280], '3 x 2 tiles of 640');
    const lab = path.basename(writeLabelsPlot(dir, labelBoxes().map((b) => ({ file: 'x', labelFile: null, width: 1, height: 1, format: 'png' as const, boxes: [{ ...b, line: 1 }] })), NAMES));
    assert.is(lab, 'labels.jpg');
    assert.equal([jpeg.decode(fs.readFileSync(path.join(dir, lab))).width], [1000]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
