/**
 * Detection confusion matrix with Ultralytics semantics (yolov5 utils/metrics.py ConfusionMatrix; read for
 * semantics only): a (nc+1) x (nc+1) count matrix indexed [predicted][true], the last row/column being
 * background.
 *
 * Per image: detections with score > conf (0.25) are kept; every (ground truth, detection) pair with
 * IoU > iouThres (0.45), of any classes, is a candidate; each detection keeps its highest-IoU ground truth,
 * then each ground truth its highest-IoU detection. A ground truth with a match adds 1 at
 * [detected class][true class] (the diagonal when right, off-diagonal for a class confusion), without one
 * 1 at [background][true class] (missed). A kept detection matched to nothing adds 1 at
 * [its class][background] (a false positive on background).
 *
 * One deliberate difference from yolov5 v7.0, which counted background false positives only in images
 * that have labels and at least one match (its `if n:` guard and val.py calling it only when nl > 0):
 * here every unmatched detection counts, including those on images without labels (as later Ultralytics
 * releases do). `legacyV7: true` restores v7.0's counting.
 */
import { ultralyticsIou } from './ultralytics.js';
import type { EvalImage, GroundTruth, Prediction } from './types.js';

export interface ConfusionOptions {
  /** Detections need score > conf (default 0.25). */
  conf?: number;
  /** Matches need IoU > iouThres (default 0.45). */
  iouThres?: number;
  /** yolov5 v7.0 background-FP counting (see the file comment). */
  legacyV7?: boolean;
}

export class ConfusionMatrix {
  readonly nc: number;
  readonly conf: number;
  readonly iouThres: number;
  readonly legacyV7: boolean;
  /** matrix[predicted][true], (nc+1) x (nc+1). */
  readonly matrix: Float64Array[];

  constructor(nc: number, opts: ConfusionOptions = {}) {
    this.nc = nc;
    this.conf = opts.conf ?? 0.25;
    this.iouThres = opts.iouThres ?? 0.45;
    this.legacyV7 = opts.legacyV7 ?? false;
    this.matrix = Array.from({ length: nc + 1 }, () => new Float64Array(nc + 1));
  }

  /** Adds one image. Class ids outside [0, nc) are an error. */
  processImage(dets: readonly Prediction[], gts: readonly GroundTruth[]): void {
    const nc = this.nc;
    const check = (c: number) => {
      if (!(Number.isInteger(c) && c >= 0 && c < nc)) throw new Error(`confusion matrix: class ${c} outside 0..${nc - 1}`);
    };
    for (const g of gts) check(g.classId);
    if (this.legacyV7 && gts.length === 0) return;
    const kept = [...dets].filter((d) => d.score > this.conf).sort((a, b) => b.score - a.score);
    for (const d of kept) check(d.classId);
    // candidates: each detection keeps its best gt, then each gt its best detection
    const detBest = new Int32Array(kept.length).fill(-1);
    const detIou = new Float64Array(kept.length);
    for (let gi = 0; gi < gts.length; gi++) {
      for (let di = 0; di < kept.length; di++) {
        const v = ultralyticsIou(gts[gi], kept[di]);
        if (!(v > this.iouThres)) continue;
        if (detBest[di] < 0 || v >= detIou[di]) {
          detBest[di] = gi;
          detIou[di] = v;
        }
      }
    }
    const gtDet = new Int32Array(gts.length).fill(-1);
    const gtIou = new Float64Array(gts.length);
    for (let di = 0; di < kept.length; di++) {
      const gi = detBest[di];
      if (gi < 0) continue;
      if (gtDet[gi] < 0 || detIou[di] >= gtIou[gi]) {
        gtDet[gi] = di;
        gtIou[gi] = detIou[di];
      }
    }
    let anyMatch = false;
    gts.forEach((g, gi) => {
      const di = gtDet[gi];
      if (di >= 0) {
        anyMatch = true;
        this.matrix[kept[di].classId][g.classId] += 1;
      } else this.matrix[nc][g.classId] += 1;
    });
    if (this.legacyV7 && !anyMatch) return;
    const matchedDet = new Uint8Array(kept.length);
    for (const di of gtDet) if (di >= 0) matchedDet[di] = 1;
    kept.forEach((d, di) => {
      if (!matchedDet[di]) this.matrix[d.classId][nc] += 1;
    });
  }

  processImages(images: readonly EvalImage[]): this {
    for (const im of images) this.processImage(im.dets, im.gts);
    return this;
  }

  /** True positives and false positives per class (diagonal; row sum minus diagonal), background excluded. */
  tpFp(): { tp: number[]; fp: number[] } {
    const tp: number[] = [];
    const fp: number[] = [];
    for (let i = 0; i < this.nc; i++) {
      const row = this.matrix[i];
      let s = 0;
      for (const v of row) s += v;
      tp.push(row[i]);
      fp.push(s - row[i]);
    }
    return { tp, fp };
  }

  /** Column-normalised copy (each true class sums to 1), as Ultralytics plots it. */
  normalized(): Float64Array[] {
    const n = this.nc + 1;
    const col = new Float64Array(n);
    for (const row of this.matrix) row.forEach((v, j) => (col[j] += v));
    return this.matrix.map((row) => row.map((v, j) => v / (col[j] + 1e-9)));
  }

  /** A text table: rows predicted, columns true, counts. */
  toText(names?: readonly string[]): string {
    const n = this.nc + 1;
    const label = (i: number) => (i === this.nc ? 'background' : (names?.[i] ?? String(i)));
    const labels = Array.from({ length: n }, (_, i) => label(i));
    const w0 = Math.max('predicted \\ true'.length, ...labels.map((l) => l.length));
    const cells = this.matrix.map((row) => Array.from(row, (v) => String(v)));
    const wc = labels.map((l, j) => Math.max(l.length, ...cells.map((r) => r[j].length)));
    const lines = [`${'predicted \\ true'.padEnd(w0)}  ${labels.map((l, j) => l.padStart(wc[j])).join('  ')}`];
    cells.forEach((r, i) => lines.push(`${labels[i].padEnd(w0)}  ${r.map((c, j) => c.padStart(wc[j])).join('  ')}`));
    return lines.join('\n');
  }
}
