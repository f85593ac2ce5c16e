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

/**
 * Float64 gradients of localRef for an upstream gradient dy [B, N, OH, OW], written as Darknet's
 * backward_local_layer computes them (with the gradient's sign; Darknet's delta is minus the gradient):
 * db = sum over the batch of dy; dw[loc] += dy[:, loc] . im2col(x)[:, loc]^T; dx = col2im(w[loc]^T . dy[:, loc]).
 */
export function localBackwardRef(x: ArrayLike<number>, shape: readonly number[], w: ArrayLike<number>, dy: ArrayLike<number>, o: { filters: number; size: number; stride: number; pad: number; outH: number; outW: number }): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [B, C, H, W] = shape;
  const { filters: N, size: K, stride: S, pad: P, outH, outW } = o;
  const L = outH * outW;
  const KC = C * K * K;
  const dx = new Float64Array(B * C * H * W);
  const dw = new Float64Array(L * N * KC);
  const db = new Float64Array(N * L);
  // the input pixel of im2col row c, location (hh, ww), or -1 in the padding
  const tap = (b: number, c: number, hh: number, ww: number): number => {
    const row = Math.floor(c / K) % K + hh * S - P;
    const cl = (c % K) + ww * S - P;
    const cIm = Math.floor(c / K / K);
    return row < 0 || cl < 0 || row >= H || cl >= W ? -1 : ((b * C + cIm) * H + row) * W + cl;
  };
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N * L; i++) db[i] += dy[b * N * L + i];
    for (let j = 0; j < L; j++) {
      const hh = Math.floor(j / outW);
      const ww = j % outW;
      for (let k = 0; k < KC; k++) {
        const t = tap(b, k, hh, ww);
        if (t < 0) continue;
        let col = 0; // (w[loc]^T . dy[:, loc])[k], scattered back to its pixel (col2im)
        for (let n = 0; n < N; n++) {
          const d = dy[b * N * L + n * L + j];
          dw[j * N * KC + n * KC + k] += d * x[t];
          col += w[j * N * KC + n * KC + k] * d;
        }
        dx[t] += col;
      }
    }
  }
  return { dx, dw, db };
}
