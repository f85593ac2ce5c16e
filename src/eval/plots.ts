/**
 * Evaluation charts as Ultralytics draws them (yolov5 utils/metrics.py plot_pr_curve, plot_mc_curve,
 * ConfusionMatrix.plot) on src/viz: the precision-recall curve at IoU .5 and the F1-confidence curve (and,
 * with the ultralytics protocol, the precision- and recall-confidence curves), one thin tab10 line per
 * class with its AP in an outside legend up to 20 classes (grey and unlabelled beyond), the mean in thick
 * blue; and the column-normalised confusion matrix heat map.
 */
import path from 'node:path';
import { loadImage } from '../data/image.js';
import { imageToRgba, writeImage } from '../viz/draw.js';
import { batchMosaic, type MosaicTile } from '../viz/labels.js';
import type { Figure } from '../viz/painter.js';
import { GREY, heatmap, linePlot, MEAN_COLOR, seriesColor, type Series } from '../viz/plot.js';
import type { ConfusionMatrix } from './confusion.js';
import type { EvalSummary } from './metrics.js';
import type { GroundTruth, Prediction } from './types.js';
import { smooth } from './ultralytics.js';

/** Curve figures: 9 x 6 in at 150 dpi (Ultralytics: 9 x 6 at 250). */
const CURVE = { figsize: [9, 6] as [number, number], dpi: 150 };

function meanOf(curves: readonly ArrayLike<number>[], n: number): number[] {
  const out = new Array<number>(n).fill(0);
  if (curves.length === 0) return out;
  for (const c of curves) for (let i = 0; i < n; i++) out[i] += c[i];
  return out.map((v) => v / curves.length);
}

function classSeries(s: EvalSummary, x: ArrayLike<number>, ys: readonly ArrayLike<number>[], label: (i: number) => string): Series[] {
  const many = s.perClass.length > 20;
  return s.perClass.map((c, i) => ({ label: many ? '' : label(i), x, y: ys[i], color: many ? GREY : seriesColor(i, s.perClass.length), width: 1 }));
}

export function prCurvePlot(s: EvalSummary): Figure {
  const x = s.prCurve.recall;
  const series = classSeries(s, x, s.prCurve.precision, (i) => `${s.perClass[i].name} ${s.perClass[i].ap50.toFixed(3)}`);
  series.push({ label: `all classes ${s.map50.toFixed(3)} mAP@0.5`, x, y: meanOf(s.prCurve.precision, x.length), color: MEAN_COLOR, width: 3 });
  return linePlot(series, { ...CURVE, title: `Precision-Recall Curve (${s.protocol})`, xlabel: 'Recall', ylabel: 'Precision', xlim: [0, 1], ylim: [0, 1], legend: 'outside' });
}

/** A metric-confidence curve (plot_mc_curve): per class, and the mean smoothed (box filter 5%) with its best value. */
function mcCurvePlot(s: EvalSummary, conf: ArrayLike<number>, ys: readonly ArrayLike<number>[], ylabel: string): Figure {
  const series = classSeries(s, conf, ys, (i) => s.perClass[i].name);
  const mean = Array.from(smooth(meanOf(ys, conf.length), 0.05));
  let best = 0;
  for (let i = 1; i < mean.length; i++) if (mean[i] > mean[best]) best = i;
  series.push({ label: `all classes ${(mean[best] ?? 0).toFixed(2)} at ${(conf[best] ?? 0).toFixed(3)}`, x: conf, y: mean, color: MEAN_COLOR, width: 3 });
  return linePlot(series, { ...CURVE, title: `${ylabel}-Confidence Curve (${s.protocol})`, xlabel: 'Confidence', ylabel, xlim: [0, 1], ylim: [0, 1], legend: 'outside' });
}

export function f1CurvePlot(s: EvalSummary): Figure {
  return mcCurvePlot(s, s.f1Curve.conf, s.f1Curve.f1, 'F1');
}

/** Precision and recall over confidence: the ultralytics protocol only (the others do not keep them). */
export function pCurvePlot(s: EvalSummary): Figure | null {
  const raw = s.ultralytics?.raw;
  return raw ? mcCurvePlot(s, raw.px, raw.pCurve, 'Precision') : null;
}

export function rCurvePlot(s: EvalSummary): Figure | null {
  const raw = s.ultralytics?.raw;
  return raw ? mcCurvePlot(s, raw.px, raw.rCurve, 'Recall') : null;
}

export function confusionPlot(cm: ConfusionMatrix, names: readonly string[]): Figure {
  const labels = [...Array.from({ length: cm.nc }, (_, i) => names[i] ?? String(i)), 'background'];
  return heatmap(cm.normalized(), {
    rowLabels: labels,
    colLabels: labels,
    title: `Confusion Matrix Normalized (conf ${cm.conf}, IoU ${cm.iouThres})`,
    xlabel: 'True',
    ylabel: 'Predicted',
    vmax: 1,
    figsize: [12, 9],
    dpi: 125,
  });
}

/**
 * Writes PR_curve.png, F1_curve.png, with the ultralytics protocol P_curve.png and R_curve.png, and (with
 * a matrix) confusion_matrix.png into `dir`; returns the paths.
 */
export function writeEvalPlots(dir: string, s: EvalSummary, cm?: ConfusionMatrix): string[] {
  const out: string[] = [];
  const w = (name: string, img: Figure | null) => {
    if (!img) return;
    const f = path.join(dir, name);
    writeImage(f, img);
    out.push(f);
  };
  w('PR_curve.png', prCurvePlot(s));
  w('F1_curve.png', f1CurvePlot(s));
  w('P_curve.png', pCurvePlot(s));
  w('R_curve.png', rCurvePlot(s));
  if (cm) w('confusion_matrix.png', confusionPlot(cm, s.names));
  return out;
}

/**
 * Ultralytics' val batch mosaics of the first 16 images: val_batch0_labels.jpg (the labels) and
 * val_batch0_pred.jpg (the detections scoring at least `conf`, default 0.25, with their scores), in the
 * same tiles. An image that cannot be read shows why in its tile. Returns the paths.
 */
export function writeValMosaics(dir: string, images: readonly { file: string; gts: readonly GroundTruth[] }[], dets: readonly (readonly Prediction[])[], names: readonly string[], conf = 0.25): string[] {
  const first = images.slice(0, 16);
  if (!first.length) return [];
  const tiles = first.map((im) => {
    try {
      return { file: im.file, image: imageToRgba(loadImage(im.file)) };
    } catch (e) {
      return { file: im.file, image: null, error: (e as Error).message.slice(0, 60) };
    }
  });
  const out: string[] = [];
  const w = (name: string, t: MosaicTile[]) => {
    const f = path.join(dir, name);
    writeImage(f, batchMosaic(t, { names, conf }));
    out.push(f);
  };
  w('val_batch0_labels.jpg', tiles.map((t, i) => ({ ...t, boxes: first[i].gts })));
  w('val_batch0_pred.jpg', tiles.map((t, i) => ({ ...t, boxes: dets[i] ?? [] })));
  return out;
}
