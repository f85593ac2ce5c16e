/**
 * Float64 references of the detection-head activations, written after Darknet's forward_yolo_layer
 * (activate_array LOGISTIC on x, y and on obj..classes per anchor, then scal_add_cpu on x, y) and
 * pjreddie's forward_region_layer (logistic on x, y and obj).
 */
export interface HeadRef {
  entries: number;
  xyLogistic: boolean;
  xyScale?: number;
  xyBias?: number;
  actFrom: number;
  actTo: number;
}

const logistic = (v: number) => 1 / (1 + Math.exp(-v));

export function headActivationRef(x: ArrayLike<number>, shape: readonly number[], a: HeadRef): Float64Array {
  const [B, C, H, W] = shape;
  const hw = H * W;
  const y = Float64Array.from(x as ArrayLike<number>);
  const A = C / a.entries;
  for (let b = 0; b < B; b++) {
    for (let n = 0; n < A; n++) {
      const base = (b * C + n * a.entries) * hw;
      for (let k = 0; k < a.entries; k++) {
        for (let p = 0; p < hw; p++) {
          const i = base + k * hw + p;
          if (k < 2) y[i] = (a.xyLogistic ? logistic(x[i]) : x[i]) * (a.xyScale ?? 1) + (a.xyBias ?? 0);
          else if (k >= a.actFrom && k < a.actTo) y[i] = logistic(x[i]);
        }
      }
    }
  }
  return y;
}
