/**
 * Float64 reference of batch normalization, Darknet (batchnorm_layer.c; blas.c mean_cpu, variance_cpu,
 * normalize_cpu) and PyTorch BatchNorm2d semantics, with the exact gradients of the forward formulas.
 */

export type Mode = 'darknet' | 'torch';

export interface BnStats {
  mean: Float64Array;
  varBiased: Float64Array;
  varUnbiased: Float64Array;
}

const at = (shape: readonly number[]) => {
  const [N, C] = shape;
  const HW = shape.slice(2).reduce((a, b) => a * b, 1);
  return { N, C, HW, M: N * HW, idx: (b: number, c: number, s: number) => (b * C + c) * HW + s };
};

/** Two-pass (mean, then centered sum of squares) per-channel statistics. */
export function bnStatsRef(x: ArrayLike<number>, shape: readonly number[]): BnStats {
  const { N, C, HW, M, idx } = at(shape);
  const mean = new Float64Array(C);
  const varBiased = new Float64Array(C);
  const varUnbiased = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let b = 0; b < N; b++) for (let i = 0; i < HW; i++) s += x[idx(b, c, i)];
    const mu = s / M;
    let q = 0;
    for (let b = 0; b < N; b++) for (let i = 0; i < HW; i++) q += (x[idx(b, c, i)] - mu) ** 2;
    mean[c] = mu;
    varBiased[c] = q / M;
    varUnbiased[c] = q / (M - 1);
  }
  return { mean, varBiased, varUnbiased };
}

/** 1/denominator: darknet 1/(sqrt(var) + eps) (var = unbiased batch or rolling), torch 1/sqrt(var + eps). */
function invDenom(mode: Mode, v: number, eps: number): number {
  return mode === 'darknet' ? 1 / (Math.sqrt(v) + eps) : 1 / Math.sqrt(v + eps);
}

export function defaultEps(mode: Mode): number {
  return mode === 'darknet' ? 1e-6 : 1e-5;
}

/** y = gamma*(x - mean)*r + beta with the given per-channel mean and variance (the one the mode divides by). */
export function bnApplyRef(x: ArrayLike<number>, shape: readonly number[], gamma: ArrayLike<number>, beta: ArrayLike<number>, mean: ArrayLike<number>, variance: ArrayLike<number>, mode: Mode, eps = defaultEps(mode)): Float64Array {
  const { C, HW } = at(shape);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / HW) % C;
    y[i] = gamma[c] * (x[i] - mean[c]) * invDenom(mode, variance[c], eps) + beta[c];
  }
  return y;
}

/** Training forward: batch statistics (darknet: unbiased variance; torch: biased). */
export function bnTrainRef(x: ArrayLike<number>, shape: readonly number[], gamma: ArrayLike<number>, beta: ArrayLike<number>, mode: Mode, eps = defaultEps(mode)): Float64Array {
  const s = bnStatsRef(x, shape);
  return bnApplyRef(x, shape, gamma, beta, s.mean, mode === 'darknet' ? s.varUnbiased : s.varBiased, mode, eps);
}

/** Running update: keep*running + mom*batch (mean, unbiased variance). */
export function bnRunningRef(running: ArrayLike<number>, batch: ArrayLike<number>, keep: number, mom: number): Float64Array {
  return Float64Array.from(running as ArrayLike<number>, (r, c) => keep * r + mom * batch[c]);
}

/**
 * Exact gradients of sum(y*dy) for the training forward, written out from the chain rule per element
 * (independent of the kernel's per-channel closed form): dL/dx_i = Σ_j dy_j dy_j/dx_i with
 * y_j = g (x_j - μ) r(v), ∂μ/∂x_i = 1/M, ∂v/∂x_i = 2 (x_i - μ)/D (D = M-1 darknet, M torch).
 */
export function bnTrainBackwardRef(x: ArrayLike<number>, shape: readonly number[], gamma: ArrayLike<number>, dy: ArrayLike<number>, mode: Mode, eps = defaultEps(mode)): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { N, C, HW, M, idx } = at(shape);
  const st = bnStatsRef(x, shape);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const mu = st.mean[c];
    const D = mode === 'darknet' ? M - 1 : M;
    const v = mode === 'darknet' ? st.varUnbiased[c] : st.varBiased[c];
    const r = invDenom(mode, v, eps);
    // dr/dv
    const drdv = mode === 'darknet' ? -(r * r) / (2 * Math.sqrt(v)) : -0.5 * r ** 3;
    let sdy = 0;
    let sdyxc = 0; // Σ dy_j (x_j - μ)
    for (let b = 0; b < N; b++)
      for (let s = 0; s < HW; s++) {
        const i = idx(b, c, s);
        sdy += dy[i];
        sdyxc += dy[i] * (x[i] - mu);
        dgamma[c] += dy[i] * (x[i] - mu) * r;
      }
    dbeta[c] = sdy;
    const g = gamma[c];
    for (let b = 0; b < N; b++)
      for (let s = 0; s < HW; s++) {
        const i = idx(b, c, s);
        // direct: g r dy_i; through μ: -g r Σ dy_j / M; through v: g Σ dy_j (x_j-μ) drdv 2 (x_i-μ)/D
        dx[i] = g * r * dy[i] - (g * r * sdy) / M + g * sdyxc * drdv * ((2 * (x[i] - mu)) / D);
      }
  }
  return { dx, dgamma, dbeta };
}

/** Gradients of the inference forward (running statistics constant). */
export function bnInferBackwardRef(x: ArrayLike<number>, shape: readonly number[], gamma: ArrayLike<number>, dy: ArrayLike<number>, mean: ArrayLike<number>, variance: ArrayLike<number>, mode: Mode, eps = defaultEps(mode)): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { C, HW } = at(shape);
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / HW) % C;
    const r = invDenom(mode, variance[c], eps);
    dx[i] = gamma[c] * r * dy[i];
    dgamma[c] += dy[i] * (x[i] - mean[c]) * r;
    dbeta[c] += dy[i];
  }
  return { dx, dgamma, dbeta };
}
