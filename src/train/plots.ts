/**
 * Training charts (src/viz, PNG):
 *
 * - results.png: Ultralytics' grid (yolov5 utils/plots.py plot_results): one panel per loss item
 *   (train/box_loss, train/obj_loss, train/cls_loss), the total loss, the learning rate, the epoch time and,
 *   once validation ran, metrics/precision, metrics/recall, metrics/mAP_0.5, metrics/mAP_0.5:0.95; each
 *   the values per epoch with markers and their Gaussian smoothing (sigma 3, dotted), as Ultralytics does.
 * - chart.png: Darknet's chart (draw_train_chart / draw_train_loss): loss per iteration with its moving
 *   average, and mAP@0.5 in % on a right axis in red at each validation, labelled.
 * - metrics.png (P, R, mAP per epoch), loss.png (loss per iteration and its average), lr.png.
 * - labels.jpg: the training labels (src/viz/labels.ts labelsPlot), written when training starts.
 */
import path from 'node:path';
import { Axes, dataRange, gaussianSmooth, gridCells, linePlot, MEAN_COLOR, niceTicks, seriesColor, TAB10, withMargin, type Series } from '../viz/plot.js';
import { Painter, type Figure } from '../viz/painter.js';
import { writeImage } from '../viz/draw.js';
import type { EpochSummary } from './types.js';
import type { LabeledImage } from '../data/dataset.js';
import { labelsPlot } from '../viz/labels.js';

export interface IterationPoint {
  iteration: number;
  loss: number;
  lr: number;
}

/** At most `max` points, evenly spaced (keeps the last). */
export function downsample<T>(a: readonly T[], max: number): T[] {
  if (a.length <= max) return [...a];
  const out: T[] = [];
  const step = a.length / max;
  for (let i = 0; i < max - 1; i++) out.push(a[Math.floor(i * step)]);
  out.push(a[a.length - 1]);
  return out;
}

/** Exponential moving average (Darknet's avg_loss = avg_loss·.9 + loss·.1). */
export function movingAverage(v: readonly number[], keep = 0.9): number[] {
  const out: number[] = [];
  let avg = NaN;
  for (const x of v) {
    avg = Number.isNaN(avg) ? x : keep * avg + (1 - keep) * x;
    out.push(avg);
  }
  return out;
}

/** The panel title of a loss item (Ultralytics' results.csv column names). */
function itemTitle(k: string): string {
  return /^(box|obj|cls|dfl)$/.test(k) ? `train/${k}_loss` : `train/${k}`;
}

const METRIC_TITLES: Record<string, string> = { precision: 'metrics/precision', recall: 'metrics/recall', map50: 'metrics/mAP_0.5', map50_95: 'metrics/mAP_0.5:0.95' };

/**
 * results.png: a grid of 5 columns (2 rows once validation has run; 12 x 6 in at 150 dpi, as Ultralytics'
 * 12 x 6 at 200), each panel the values per epoch ('results', markers) and their smoothing ('smooth',
 * dotted), the legend in the second panel as Ultralytics places it.
 */
export function resultsPlot(history: readonly EpochSummary[]): Figure {
  const ep = history.map((h) => h.epoch);
  const items = history.length ? Object.keys(history[0].lossItems) : [];
  const train = [
    ...items.map((k) => ({ title: itemTitle(k), x: ep, y: history.map((h) => h.lossItems[k] ?? NaN) })),
    { title: 'train/loss', x: ep, y: history.map((h) => h.loss) },
    { title: 'x/lr', x: ep, y: history.map((h) => h.lr) },
  ];
  const evaluated = history.filter((h) => h.metrics);
  const keys = evaluated.length ? Object.keys(evaluated[0].metrics!).filter((k) => evaluated.every((h) => Number.isFinite(h.metrics![k]))) : [];
  const metrics = keys.map((k) => ({ title: METRIC_TITLES[k] ?? `metrics/${k}`, x: evaluated.map((h) => h.epoch), y: evaluated.map((h) => h.metrics![k]) }));
  // row 1: training; row 2 (once validated): the metrics, then the epoch time where a cell is left
  if (metrics.length && metrics.length < train.length) metrics.push({ title: 'time/epoch (s)', x: ep, y: history.map((h) => h.seconds) });
  const cols = Math.max(train.length, metrics.length);
  const rows = metrics.length ? 2 : 1;
  const all = [...train, ...Array.from({ length: cols - train.length }, () => null), ...metrics];
  const dpi = 150;
  const p = new Painter(Math.round(12 * dpi), Math.round(3 * rows * dpi));
  const cells = gridCells(p.width, p.height, rows, cols);
  all.forEach((q, i) => {
    if (!q) return;
    const ax = new Axes(p, cells[i], { dpi, title: q.title, xlim: withMargin(dataRange(q.x)), ylim: withMargin(dataRange(q.y)), fontPt: 9 });
    const r: Series = { label: 'results', x: q.x, y: q.y, color: TAB10[0], width: 2, marker: 2 };
    const sm: Series = { label: 'smooth', x: q.x, y: gaussianSmooth(q.y.map((v) => (Number.isFinite(v) ? v : 0)), 3), color: TAB10[1], width: 2, dash: [1, 1.65] };
    ax.plot(r);
    if (q.y.length > 1) ax.plot(sm);
    ax.finish(i === Math.min(1, train.length - 1) ? [{ label: 'results', color: TAB10[0], width: 2, marker: 2 }, { label: 'smooth', color: TAB10[1], width: 2, dash: [1, 1.65] }] : undefined);
  });
  return p.toRgba();
}

/**
 * chart.png as Darknet draws it: loss per iteration (grey) and its moving average (blue, Darknet's
 * avg_loss), mAP@0.5 in % (red, right axis) at the iteration of each validation, labelled where the labels
 * do not collide; the title gives the current average loss and iteration.
 */
export function darknetChart(iterations: readonly IterationPoint[], history: readonly EpochSummary[]): Figure {
  const pts = downsample(iterations, 4000);
  const x = pts.map((q) => q.iteration);
  const y = pts.map((q) => q.loss);
  const avg = movingAverage(y);
  const maps = history.filter((h) => h.metrics && Number.isFinite(h.metrics.map50)).map((h) => ({ it: h.iteration, v: 100 * h.metrics!.map50 }));
  const dpi = 100;
  const p = new Painter(1000, 800);
  const red: [number, number, number] = [214, 39, 40];
  const [, yhi] = dataRange(avg, y.length > 20 ? y.slice(Math.floor(y.length * 0.05)) : y);
  const xmax = Math.max(1, ...x, ...maps.map((m) => m.it));
  const last = pts.at(-1);
  const ax = new Axes(p, { x: 0, y: 0, w: p.width, h: p.height }, {
    dpi, xlabel: 'Iteration number', ylabel: 'Loss', grid: true, xlim: [0, xmax], ylim: [0, niceTicks(0, yhi * 1.05, 6).at(-1) ?? 1],
    title: last ? `current avg loss = ${(avg.at(-1) ?? NaN).toFixed(4)}    iteration = ${last.iteration}` : 'no iterations yet',
    right: maps.length ? { lim: [0, 100], label: 'mAP@0.5 %', color: red } : undefined,
  });
  ax.plot({ label: 'loss', x, y, color: [170, 170, 170], width: 0.8 });
  ax.plot({ label: 'avg loss', x, y: avg, color: MEAN_COLOR, width: 1.5 });
  if (maps.length) {
    ax.plot({ label: 'mAP%', x: maps.map((m) => m.it), y: maps.map((m) => m.v), color: red, width: 1.5, marker: 2.5 }, true);
    // labels right to left, skipping those that would touch the previous one (the last is always shown)
    let leftEdge = Infinity;
    for (let i = maps.length - 1; i >= 0; i--) {
      const text = `${maps[i].v.toFixed(0)}%`;
      const lpx = 9 * (dpi / 72);
      const cx = ax.x(maps[i].it);
      const half = p.measure(text, lpx).width / 2;
      // centred over the point, shifted to stay inside the frame
      const x = Math.min(ax.inner.x + ax.inner.w - half - 2, Math.max(ax.inner.x + half + 2, cx));
      const box = p.textBox(text, x, ax.yRight(maps[i].v) - 0.6 * lpx, { px: lpx, align: 'center', baseline: 'bottom' });
      if (box.x + box.w + 4 > leftEdge || box.y < ax.inner.y) continue;
      p.text(text, x, ax.yRight(maps[i].v) - 0.6 * lpx, { px: lpx, align: 'center', baseline: 'bottom', color: red, role: 'map-label' });
      leftEdge = box.x;
    }
  }
  const legend = [{ label: 'loss', color: [170, 170, 170] as const, width: 0.8 }, { label: 'avg loss', color: MEAN_COLOR, width: 1.5 }];
  ax.finish(maps.length ? [...legend, { label: 'mAP@0.5 %', color: red, width: 1.5, marker: 2.5 }] : legend);
  return p.toRgba();
}

/** Writes the charts into `dir`; returns the files written. */
export function writeTrainingPlots(dir: string, history: readonly EpochSummary[], iterations: readonly IterationPoint[]): string[] {
  const files: string[] = [];
  const w = (name: string, img: Figure) => {
    const f = path.join(dir, name);
    writeImage(f, img);
    files.push(f);
  };
  if (history.length) {
    w('results.png', resultsPlot(history));
    const evaluated = history.filter((h) => h.metrics);
    const keys = evaluated.length ? Object.keys(evaluated[0].metrics!).filter((k) => evaluated.every((h) => Number.isFinite(h.metrics![k]))) : [];
    if (keys.length) {
      const ms: Series[] = keys.map((k, i) => ({ label: METRIC_TITLES[k] ?? k, x: evaluated.map((h) => h.epoch), y: evaluated.map((h) => h.metrics![k]), color: seriesColor(i, keys.length), width: 2, marker: evaluated.length < 50 ? 2 : undefined }));
      w('metrics.png', linePlot(ms, { figsize: [8, 5], dpi: 100, title: 'Validation per epoch', xlabel: 'epoch', ylabel: 'value', ylim: [0, 1] }));
    }
  }
  if (iterations.length) {
    w('chart.png', darknetChart(iterations, history));
    const pts = downsample(iterations, 4000);
    const x = pts.map((q) => q.iteration);
    const y = pts.map((q) => q.loss);
    w('loss.png', linePlot([
      { label: 'loss', x, y, color: [170, 170, 170], width: 0.8 },
      { label: 'avg loss', x, y: movingAverage(y), color: MEAN_COLOR, width: 1.5 },
    ], { figsize: [8, 5], dpi: 100, title: 'Loss per iteration', xlabel: 'iteration', ylabel: 'loss' }));
    w('lr.png', linePlot([{ label: '', x, y: pts.map((q) => q.lr), color: MEAN_COLOR, width: 1.5 }], { figsize: [8, 5], dpi: 100, title: 'Learning rate', xlabel: 'iteration', ylabel: 'lr', legend: false }));
  }
  return files;
}

/** labels.jpg of the training split's labels into `dir`; returns its path. */
export function writeLabelsPlot(dir: string, images: readonly LabeledImage[], names: readonly string[]): string {
  const f = path.join(dir, 'labels.jpg');
  writeImage(f, labelsPlot(images.flatMap((im) => im.boxes), names));
  return f;
}
