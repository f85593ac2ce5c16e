/**
 * Training charts on src/viz/plot.ts (PNG through pngjs): results.png (loss items per epoch),
 * metrics.png (P, R, mAP per epoch, when evaluated), loss.png (loss per iteration with its moving average,
 * as Darknet's chart.png) and lr.png (the learning rate per iteration).
 */
import path from 'node:path';
import { linePlot, MEAN_COLOR, seriesColor, type Series } from '../viz/plot.js';
import { writePng } from '../viz/draw.js';
import type { EpochSummary } from './types.js';

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

/** Writes the charts into `dir`; returns the files written. */
export function writeTrainingPlots(dir: string, history: readonly EpochSummary[], iterations: readonly IterationPoint[]): string[] {
  const files: string[] = [];
  const W = 640;
  const H = 400;
  if (history.length) {
    const ep = history.map((h) => h.epoch);
    const names = Object.keys(history[0].lossItems);
    const series: Series[] = [{ label: 'loss', x: ep, y: history.map((h) => h.loss), color: MEAN_COLOR, width: 2 }];
    names.forEach((n, k) => series.push({ label: n, x: ep, y: history.map((h) => h.lossItems[n] ?? NaN), color: seriesColor(k, Math.max(3, names.length)) }));
    const f = path.join(dir, 'results.png');
    writePng(f, linePlot(series, { width: W, height: H, title: 'Training loss per epoch', xlabel: 'epoch', ylabel: 'loss' }));
    files.push(f);
    const evaluated = history.filter((h) => h.metrics);
    const keys = evaluated.length ? Object.keys(evaluated[0].metrics!).filter((k) => evaluated.every((h) => Number.isFinite(h.metrics![k]))) : [];
    if (keys.length) {
      const ms: Series[] = keys.map((k, i) => ({ label: k, x: evaluated.map((h) => h.epoch), y: evaluated.map((h) => h.metrics![k]), color: seriesColor(i, Math.max(3, keys.length)), width: 2 }));
      const g = path.join(dir, 'metrics.png');
      writePng(g, linePlot(ms, { width: W, height: H, title: 'Validation per epoch', xlabel: 'epoch', ylabel: 'value' }));
      files.push(g);
    }
  }
  if (iterations.length) {
    const pts = downsample(iterations, 4000);
    const x = pts.map((p) => p.iteration);
    const y = pts.map((p) => p.loss);
    const f = path.join(dir, 'loss.png');
    writePng(f, linePlot([
      { label: 'loss', x, y, color: [160, 160, 160] },
      { label: 'avg loss', x, y: movingAverage(y), color: MEAN_COLOR, width: 2 },
    ], { width: W, height: H, title: 'Loss per iteration', xlabel: 'iteration', ylabel: 'loss' }));
    files.push(f);
    const g = path.join(dir, 'lr.png');
    writePng(g, linePlot([{ label: 'lr', x, y: pts.map((p) => p.lr), color: MEAN_COLOR, width: 2 }], { width: W, height: H, title: 'Learning rate', xlabel: 'iteration', ylabel: 'lr', legend: false }));
    files.push(g);
  }
  return files;
}
