/**
 * Float64 reference of the XNOR / binary-weight transforms (Darknet convolutional_layer.c binarize_weights
 * with the per-filter size of its GPU path and binary_align_weights; binarize_cpu; the backward of
 * convolutional_kernels.cu: straight-through weights, hardtan' on the input).
 */

/** wb[f, k] = w > 0 ? mean_f : -mean_f with mean_f = mean |w[f, :]|; `filters` rows. */
export function binarizeWeightsRef(w: ArrayLike<number>, filters: number): Float64Array {
  const K = w.length / filters;
  const out = new Float64Array(w.length);
  for (let f = 0; f < filters; f++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.abs(w[f * K + k]);
    const mean = s / K;
    for (let k = 0; k < K; k++) out[f * K + k] = w[f * K + k] > 0 ? mean : -mean;
  }
  return out;
}

/** x > 0 ? 1 : -1. */
export function binarizeInputRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => (v > 0 ? 1 : -1));
}

/** The input gradient of binarizeInput: dy where -1 < x < 1, else 0. */
export function binarizeInputGradRef(x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] > -1 && x[i] < 1 ? dy[i] : 0;
  return out;
}
