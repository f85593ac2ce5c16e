/**
 * Evaluation charts as PNG (src/viz/plot.ts): the precision-recall curve at IoU .5 and the
 * F1-confidence curve, one colour per class plus the mean in thick blue (per-class lines only up to 20
 * classes, as Ultralytics does), and the confusion matrix heat map (column-normalised).
 */
import path from 'node:path';
import { writePng, type RgbaImage } from '../viz/draw.js';
import { heatmap, linePlot, MEAN_COLOR, seriesColor, type Series } from '../viz/plot.js';
import type { ConfusionMatrix } from './confusion.js';
import type { EvalSummary } from './metrics.js';
import { smooth } from './ultralytics.js';

const GREY = [160, 160, 160] as const;

function meanOf(curves: readonly number[][], n: number): number[] {
  const out = new Array<number>(n).fill(0);
  if (curves.length === 0) return out;
  for (const c of curves) for (let i = 0; i < n; i++) out[i] += c[i];
  return out.map((v) => v / curves.length);
}

export function prCurvePlot(s: EvalSummary): RgbaImage {
  const x = s.prCurve.recall;
  const many = s.perClass.length > 20;
  const series: Series[] = s.perClass.map((c, i) => ({
    label: `${c.name} ${c.ap50.toFixed(3)}`,
    x,
    y: s.prCurve.precision[i],
    color: many ? GREY : seriesColor(c.classId, s.numClasses),
  }));
  series.push({ label: `all classes ${s.map50.toFixed(3)} mAP@0.5`, x, y: meanOf(s.prCurve.precision, x.length), color: MEAN_COLOR, width: 3 });
  return linePlot(series, { title: `Precision-Recall Curve (${s.protocol})`, xlabel: 'Recall', ylabel: 'Precision', xlim: [0, 1], ylim: [0, 1], legend: !many });
}

export function f1CurvePlot(s: EvalSummary): RgbaImage {
  const x = s.f1Curve.conf;
  const many = s.perClass.length > 20;
  const series: Series[] = s.perClass.map((c, i) => ({ label: c.name, x, y: s.f1Curve.f1[i], color: many ? GREY : seriesColor(c.classId, s.numClasses) }));
  const mean = smooth(meanOf(s.f1Curve.f1, x.length), 0.05);
  let best = 0;
  for (let i = 1; i < mean.length; i++) if (mean[i] > mean[best]) best = i;
  series.push({ label: `all classes ${(mean[best] ?? 0).toFixed(2)} at ${(x[best] ?? 0).toFixed(3)}`, x, y: mean, color: MEAN_COLOR, width: 3 });
  return linePlot(series, { title: `F1-Confidence Curve (${s.protocol})`, xlabel: 'Confidence', ylabel: 'F1', xlim: [0, 1], ylim: [0, 1], legend: !many });
}

export function confusionPlot(cm: ConfusionMatrix, names: readonly string[]): RgbaImage {
  const labels = [...Array.from({ length: cm.nc }, (_, i) => names[i] ?? String(i)), 'background'];
  return heatmap(cm.normalized(), {
    rowLabels: labels,
    colLabels: labels,
    title: `Confusion Matrix (conf > ${cm.conf}, IoU > ${cm.iouThres})`,
    xlabel: 'True',
    ylabel: 'Predicted',
    vmax: 1,
  });
}

/** Writes PR_curve.png, F1_curve.png and (with a matrix) confusion_matrix.png into `dir`; returns the paths. */
export function writeEvalPlots(dir: string, s: EvalSummary, cm?: ConfusionMatrix): string[] {
  const out: string[] = [];
  const w = (name: string, img: RgbaImage) => {
    const f = path.join(dir, name);
    writePng(f, img);
    out.push(f);
  };
  w('PR_curve.png', prCurvePlot(s));
  w('F1_curve.png', f1CurvePlot(s));
  if (cm) w('confusion_matrix.png', confusionPlot(cm, s.names));
  return out;
}
