/** Float64 reference of Darknet's upsample_cpu (blas.c): nearest upsample / reverse block sum, with scale. */

/** Upsample forward (stride s > 0) of [N, C, h, w]: out [N, C, h*s, w*s] = scale * x[.., y/s, x/s]. */
export function upsampleRef(x: ArrayLike<number>, shape: readonly number[], s: number, scale = 1): Float64Array {
  const [N, C, h, w] = shape;
  const out = new Float64Array(N * C * h * s * w * s);
  for (let b = 0; b < N; b++)
    for (let k = 0; k < C; k++)
      for (let j = 0; j < h * s; j++)
        for (let i = 0; i < w * s; i++) {
          const inIndex = b * w * h * C + k * w * h + Math.floor(j / s) * w + Math.floor(i / s);
          const outIndex = b * w * h * C * s * s + k * w * h * s * s + j * w * s + i;
          out[outIndex] = scale * x[inIndex];
        }
  return out;
}

/** The transpose: small[.., y, x] = scale * sum of big's s x s block (small shape [N, C, h, w]). */
export function upsampleSumRef(big: ArrayLike<number>, smallShape: readonly number[], s: number, scale = 1): Float64Array {
  const [N, C, h, w] = smallShape;
  const out = new Float64Array(N * C * h * w);
  for (let b = 0; b < N; b++)
    for (let k = 0; k < C; k++)
      for (let j = 0; j < h * s; j++)
        for (let i = 0; i < w * s; i++) {
          const inIndex = b * w * h * C + k * w * h + Math.floor(j / s) * w + Math.floor(i / s);
          const outIndex = b * w * h * C * s * s + k * w * h * s * s + j * w * s + i;
          out[inIndex] += scale * big[outIndex];
        }
  return out;
}
