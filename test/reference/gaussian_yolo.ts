/**
 * Float64 references of the Darknet [Gaussian_yolo] head (AlexeyAB src/gaussian_yolo_layer.c), written
 * after its C loops:
 * - forward_gaussian_yolo_layer: per anchor, activate_array LOGISTIC on entries 0-1 (x, sigma_x) and 2-3
 *   (y, sigma_y), scal_add_cpu(scale_x_y, -0.5*(scale_x_y-1)) on entries 0 and 2, LOGISTIC on 5 (sigma_w),
 *   7 (sigma_h) and 8.. (objectness, classes); 4 (w) and 6 (h) raw;
 * - get_gaussian_yolo_box / get_gaussian_yolo_detections: box ((i + x)/lw, (j + y)/lh,
 *   e^w·anchor_w/net_w, e^h·anchor_h/net_h); a box only when objectness > thresh; class j's probability
 *   objectness·class_j·(1 − uc_aver), uc_aver the mean of the four sigmas, kept when > thresh else 0.
 */

export const GAUSSIAN_BOX_ENTRIES = 9;

const logistic = (v: number) => 1 / (1 + Math.exp(-v));

/** l.output from the head input NCHW [B, A*(9+C), H, W]. */
export function gaussianActivationRef(x: ArrayLike<number>, shape: readonly number[], classes: number, scaleXY = 1): Float64Array {
  const [B, C, H, W] = shape;
  const hw = H * W;
  const E = classes + GAUSSIAN_BOX_ENTRIES;
  const A = C / E;
  const y = Float64Array.from(x as ArrayLike<number>);
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < A; n++) {
      const base = (b * C + n * E) * hw;
      for (let k = 0; k < E; k++) {
        if (k === 4 || k === 6) continue;
        for (let p = 0; p < hw; p++) {
          const i = base + k * hw + p;
          y[i] = logistic(x[i]);
          if (k === 0 || k === 2) y[i] = y[i] * scaleXY - 0.5 * (scaleXY - 1);
        }
      }
    }
  }
  return y;
}

export interface GaussianHeadRef {
  /** This head's anchors after mask, (w, h) pairs in pixels. */
  anchors: readonly number[];
  classes: number;
  scaleXY?: number;
}

/** One box as get_gaussian_yolo_detections fills it (relative to the network input, before correct_*_boxes). */
export interface GaussianDetRef {
  batch: number;
  /** (y*W + x)*A + a, the decoder's row. */
  index: number;
  objectness: number;
  box: { x: number; y: number; w: number; h: number };
  /** The four sigmas (dets.uc). */
  uc: [number, number, number, number];
  /** dets.prob: objectness·class·(1 − uc_aver) when > thresh, else 0. */
  prob: Float64Array;
}

/** Every box of a head whose objectness > thresh, from the raw head input (the activation applied here). */
export function gaussianDetectionsRef(x: ArrayLike<number>, shape: readonly number[], h: GaussianHeadRef, net: { width: number; height: number }, thresh: number): GaussianDetRef[] {
  const [B, C, H, W] = shape;
  const hw = H * W;
  const E = h.classes + GAUSSIAN_BOX_ENTRIES;
  const A = C / E;
  const out = gaussianActivationRef(x, shape, h.classes, h.scaleXY ?? 1);
  const dets: GaussianDetRef[] = [];
  for (let b = 0; b < B; b++) {
    for (let cell = 0; cell < hw; cell++) {
      const row = Math.floor(cell / W);
      const col = cell % W;
      for (let a = 0; a < A; a++) {
        const at = (k: number) => out[(b * C + a * E + k) * hw + cell];
        const obj = at(8);
        if (!(obj > thresh)) continue;
        const uc: [number, number, number, number] = [at(1), at(3), at(5), at(7)];
        const ucAver = (uc[0] + uc[1] + uc[2] + uc[3]) / 4;
        const prob = new Float64Array(h.classes);
        for (let j = 0; j < h.classes; j++) {
          const p = obj * at(9 + j) * (1 - ucAver);
          prob[j] = p > thresh ? p : 0;
        }
        dets.push({
          batch: b,
          index: cell * A + a,
          objectness: obj,
          box: {
            x: (col + at(0)) / W,
            y: (row + at(2)) / H,
            w: (Math.exp(at(4)) * h.anchors[2 * a]) / net.width,
            h: (Math.exp(at(6)) * h.anchors[2 * a + 1]) / net.height,
          },
          uc,
          prob,
        });
      }
    }
  }
  return dets;
}
