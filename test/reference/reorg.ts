/** Float64 reference of Darknet's reorg_cpu (blas.c), transcribed loop for loop. */
export function reorgRef(x: ArrayLike<number>, w: number, h: number, c: number, batch: number, stride: number, forward: 0 | 1): Float64Array {
  const out = new Float64Array(x.length);
  const outC = c / (stride * stride);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < c; k++) {
      for (let j = 0; j < h; j++) {
        for (let i = 0; i < w; i++) {
          const inIndex = i + w * (j + h * (k + c * b));
          const c2 = k % outC;
          const offset = Math.floor(k / outC);
          const w2 = i * stride + (offset % stride);
          const h2 = j * stride + Math.floor(offset / stride);
          const outIndex = w2 + w * stride * (h2 + h * stride * (c2 + outC * b));
          if (forward) out[outIndex] = x[inIndex];
          else out[inIndex] = x[outIndex];
        }
      }
    }
  }
  return out;
}

/** pjreddie's [reorg] extra (reorg_layer.c): per image, copy_cpu of the inN inputs into the first inN of inN + extra outputs (the rest 0). */
export function reorgExtraRef(x: ArrayLike<number>, batch: number, extra: number): Float64Array {
  const inN = x.length / batch;
  const out = new Float64Array(batch * (inN + extra));
  for (let b = 0; b < batch; b++) for (let j = 0; j < inN; j++) out[b * (inN + extra) + j] = x[b * inN + j];
  return out;
}
