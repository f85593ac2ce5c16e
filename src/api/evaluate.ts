/**
 * Evaluation through the library API: runs a model over a dataset split and scores its detections with
 * one protocol (COCO, Ultralytics, VOC; docs/evaluation.md) — the `val` command's code.
 */
import path from 'node:path';
import type { Protocol } from '../eval/types.js';
import type { EvalSummary } from '../eval/metrics.js';
import type { SplitName } from '../data/dataset.js';
import { networkDetector, runVal, type SkippedImage } from './val.js';
import type { Model } from './model.js';

export interface EvaluateOptions {
  model: Model;
  /** Dataset: a Darknet .data or Ultralytics .yaml file. */
  data: string;
  /** The split to score (default 'val'). */
  split?: SplitName;
  /** 'coco' (default, pycocotools), 'ultralytics', 'voc' (VOC2010+ all points) or 'voc07' (11 points). */
  protocol?: Protocol;
  /** Detections below this score are dropped (default 0.001). */
  conf?: number;
  /** NMS IoU threshold (default 0.6). */
  iou?: number;
  /** Images per forward (default 1). */
  batch?: number;
  /** Detections kept per image (default 300). */
  maxDet?: number;
  letterbox?: boolean;
  /** Also write metrics.json, plots (PR, F1, confusion matrix), val batch mosaics and predictions.json into this folder. */
  out?: string;
  /** The table and warnings, line by line (default: silent). */
  log?: (line: string) => void;
  cwd?: string;
}

export interface EvaluateResult {
  /** P, R, F1, mAP@0.5, mAP@0.5:0.95, per-class rows, curves, and the protocol's raw results. */
  metrics: EvalSummary;
  /** Confusion matrix rows = predicted class (last: background), columns = true class (last: background). */
  confusion: number[][];
  /** Images scored. */
  images: number;
  /** Images that could not be read or decoded: not scored, nor their labels (the mAP covers `images` only). */
  skipped: SkippedImage[];
  /** Dataset problems and ignored entries. */
  warnings: string[];
  /** Files written into `out`. */
  files: string[];
}

/** Scores `model` on a dataset split. Throws DatasetError for a bad dataset. */
export async function evaluate(opts: EvaluateOptions): Promise<EvaluateResult> {
  const { model } = opts;
  return model.exclusive(async () => {
    const cwd = opts.cwd ?? process.cwd();
    const detector = networkDetector(model.engine.gpu, model.detectNetwork(), { batch: opts.batch, maxDet: opts.maxDet, letterbox: opts.letterbox });
    const r = await runVal({
      data: path.resolve(cwd, opts.data), split: opts.split, protocol: opts.protocol, conf: opts.conf, iou: opts.iou,
      out: opts.out ? path.resolve(cwd, opts.out) : undefined, detector, log: opts.log ?? (() => {}), cwd,
    });
    return { metrics: r.summary, confusion: r.confusion.matrix.map((row) => Array.from(row)), images: r.images.length, skipped: r.skipped, warnings: r.warnings, files: r.files };
  });
}
