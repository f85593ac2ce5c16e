/**
 * Float64 references of the optimizer updates, transcribed from PyTorch's documented algorithms
 * (torch.optim.SGD / Adam / AdamW, amsgrad and maximize off) and from Darknet's update_convolutional_layer.
 * Each function applies one step in place to float64 arrays.
 */

export interface SgdRefState { w: Float64Array; b: Float64Array; t: number }

/** torch.optim.SGD: g += λθ; b = g (t = 1) or μb + (1−τ)g; g = nesterov ? g + μb : b; θ −= γg. */
export function sgdRef(s: SgdRefState, grad: ArrayLike<number>, h: { lr: number; momentum: number; dampening?: number; decay: number; nesterov?: boolean; gradScale?: number }): void {
  s.t++;
  const tau = h.dampening ?? 0;
  for (let i = 0; i < s.w.length; i++) {
    let g = (h.gradScale ?? 1) * grad[i] + h.decay * s.w[i];
    if (h.momentum !== 0) {
      s.b[i] = s.t > 1 ? h.momentum * s.b[i] + (1 - tau) * g : g;
      g = h.nesterov ? g + h.momentum * s.b[i] : s.b[i];
    }
    s.w[i] -= h.lr * g;
  }
}

export interface AdamRefState { w: Float64Array; m: Float64Array; v: Float64Array; t: number }

/** torch.optim.Adam (L2: g += λθ) or, with decoupled, torch.optim.AdamW (θ −= γλθ first). */
export function adamRef(s: AdamRefState, grad: ArrayLike<number>, h: { lr: number; beta1: number; beta2: number; eps: number; decay: number; decoupled: boolean; gradScale?: number }): void {
  s.t++;
  for (let i = 0; i < s.w.length; i++) {
    let g = (h.gradScale ?? 1) * grad[i];
    if (h.decoupled) s.w[i] -= h.lr * h.decay * s.w[i];
    else g += h.decay * s.w[i];
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    const mhat = s.m[i] / (1 - h.beta1 ** s.t);
    const vhat = s.v[i] / (1 - h.beta2 ** s.t);
    s.w[i] -= (h.lr * mhat) / (Math.sqrt(vhat) + h.eps);
  }
}

export interface DarknetRefState { w: Float64Array; updates: Float64Array }

/**
 * Darknet (pjreddie) update_convolutional_layer for one layer's weights, after backward accumulated
 * `updates += −Σ_images dL/dw` (pass `sumGrad` = Σ_images dL/dw): B = batch·subdivisions.
 *   axpy(−decay·B, w, updates); axpy(lr/B, updates, w); scal(momentum, updates)
 */
export function darknetUpdateRef(s: DarknetRefState, sumGrad: ArrayLike<number>, h: { lr: number; momentum: number; decay: number; batch: number }): void {
  for (let i = 0; i < s.w.length; i++) s.updates[i] += -sumGrad[i];
  for (let i = 0; i < s.w.length; i++) s.updates[i] += -h.decay * h.batch * s.w[i];
  for (let i = 0; i < s.w.length; i++) s.w[i] += (h.lr / h.batch) * s.updates[i];
  for (let i = 0; i < s.w.length; i++) s.updates[i] *= h.momentum;
}
