/** Float64 CPU reference of the batched matmul: C[z] = alpha * op(A[z]) x op(B[z]) (+ beta * C0[z]). */

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** the prior C (for beta != 0) */
  c0?: ArrayLike<number>;
}

/** A is [batch, M, K] (or [batch, K, M] with transA), B is [batch, K, N] (or [batch, N, K]); returns [batch, M, N]. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, batch = 1, o: MatmulRefOptions = {}): Float64Array {
  const out = new Float64Array(batch * M * N);
  const alpha = o.alpha ?? 1;
  const beta = o.beta ?? 0;
  for (let z = 0; z < batch; z++) {
    const ab = z * M * K;
    const bb = z * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = o.transA ? a[ab + k * M + m] : a[ab + m * K + k];
          const bv = o.transB ? b[bb + n * K + k] : b[bb + k * N + n];
          s += av * bv;
        }
        const i = z * M * N + m * N + n;
        out[i] = alpha * s + (beta !== 0 ? beta * o.c0![i] : 0);
      }
    }
  }
  return out;
}
