/**
 * Float64 reference of Darknet's forward_local_layer (local_layer.c): im2col_cpu with the raw pad, then one
 * [filters x K] . [K x 1] product per location, plus the per-output bias.
 */
export function localRef(x: ArrayLike<number>, shape: readonly number[], w: ArrayLike<number>, bias: ArrayLike<number>, o: { filters: number; size: number; stride: number; pad: number; outH: number; outW: number }): Float64Array {
  const [B, C, H, W] = shape;
  const { filters: N, size: K, stride: S, pad: P, outH, outW } = o;
  const L = outH * outW;
  const KC = C * K * K;
  const y = new Float64Array(B * N * L);
  for (let b = 0; b < B; b++) {
    // im2col
    const col = new Float64Array(KC * L);
    for (let c = 0; c < KC; c++) {
      const wOff = c % K;
      const hOff = Math.floor(c / K) % K;
      const cIm = Math.floor(c / K / K);
      for (let hh = 0; hh < outH; hh++) {
        for (let ww = 0; ww < outW; ww++) {
          const row = hOff + hh * S - P;
          const cl = wOff + ww * S - P;
          const v = row < 0 || cl < 0 || row >= H || cl >= W ? 0 : x[((b * C + cIm) * H + row) * W + cl];
          col[(c * outH + hh) * outW + ww] = v;
        }
      }
    }
    for (let j = 0; j < L; j++) {
      for (let n = 0; n < N; n++) {
        let acc = bias[n * L + j];
        for (let k = 0; k < KC; k++) acc += w[j * N * KC + n * KC + k] * col[k * L + j];
        y[b * N * L + n * L + j] = acc;
      }
    }
  }
  return y;
}
