/**
 * The contact sheet of every picture the package writes (docs/images/plots.png), rendered from the fixed
 * data of the plot tests (test/viz/fixtures.ts): results.png, chart.png, labels.jpg, PR_curve.png,
 * F1_curve.png, confusion_matrix.png, val_batch0_labels.jpg, val_batch0_pred.jpg and a `detect` overlay,
 * each scaled into a cell under its file name, with the render time of each printed.
 *
 * Usage: node --import tsx scripts/plots-sheet.ts [out.png]   (default docs/images/plots.png)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evalImages, evalSummary, labelBoxes, mosaicTiles, NAMES, picture, trainingRun } from '../test/viz/fixtures.js';
import { confusionPlot, f1CurvePlot, prCurvePlot } from '../src/eval/plots.js';
import { darknetChart, resultsPlot } from '../src/train/plots.js';
import { batchMosaic, labelsPlot } from '../src/viz/labels.js';
import { drawDetections, type RgbaImage } from '../src/viz/draw.js';
import { Painter } from '../src/viz/painter.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'docs/images/plots.png'));

function timed(name: string, f: () => RgbaImage): { name: string; img: RgbaImage } {
  const t0 = performance.now();
  const img = f();
  console.log(`${name.padEnd(24)} ${img.width}x${img.height}  ${(performance.now() - t0).toFixed(0)} ms`);
  return { name, img };
}

const { history, iterations } = trainingRun();
const { summary, confusion } = evalSummary('ultralytics');
const tiles = mosaicTiles();
const items = [
  timed('results.png', () => resultsPlot(history)),
  timed('chart.png', () => darknetChart(iterations, history)),
  timed('labels.jpg', () => labelsPlot(labelBoxes(), NAMES)),
  timed('PR_curve.png', () => prCurvePlot(summary)),
  timed('F1_curve.png', () => f1CurvePlot(summary)),
  timed('confusion_matrix.png', () => confusionPlot(confusion, NAMES)),
  timed('val_batch0_labels.jpg', () => batchMosaic(tiles.labels, { names: NAMES })),
  timed('val_batch0_pred.jpg', () => batchMosaic(tiles.preds, { names: NAMES })),
  timed('detect (640x480)', () => {
    const im = evalImages()[3];
    const k = 2;
    const big = { ...im, width: 320 * k, height: 240 * k, gts: im.gts.map((g) => ({ ...g, x1: g.x1 * k, y1: g.y1 * k, x2: g.x2 * k, y2: g.y2 * k })) };
    const img = picture(big);
    drawDetections(img, im.dets.filter((d) => d.score >= 0.25).map((d) => ({ ...d, x1: d.x1 * k, y1: d.y1 * k, x2: d.x2 * k, y2: d.y2 * k })), { names: NAMES });
    return img;
  }),
];

const cols = 3;
const cw = 600;
const gap = 16;
const cap = 28;
const rows: { name: string; img: RgbaImage }[][] = [];
for (let i = 0; i < items.length; i += cols) rows.push(items.slice(i, i + cols));
const rowH = rows.map((r) => Math.max(...r.map((q) => Math.round((q.img.height * cw) / q.img.width))) + cap + gap);
const p = new Painter(cols * cw + (cols + 1) * gap, rowH.reduce((a, b) => a + b, 0) + gap, [245, 245, 245]);
let y = gap;
rows.forEach((r, ri) => {
  r.forEach((q, ci) => {
    const x = gap + ci * (cw + gap);
    const h = Math.round((q.img.height * cw) / q.img.width);
    p.text(q.name, x, y + cap / 2, { px: 17, bold: true, baseline: 'middle', color: [40, 40, 40] });
    p.rect(x - 1, y + cap - 1, cw + 2, h + 2, { fill: [200, 200, 200] });
    p.image(q.img, x, y + cap, cw, h);
  });
  y += rowH[ri];
});
fs.mkdirSync(path.dirname(out), { recursive: true });
const bytes = p.canvas.encodeSync('png', { compressionLevel: 9 });
fs.writeFileSync(out, bytes);
console.log(`${path.relative(process.cwd(), out)}: ${p.width}x${p.height}, ${(bytes.length / 1024).toFixed(0)} KiB`);
