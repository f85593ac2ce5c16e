/**
 * In-place optimizer updates (kernels/optim.wgsl), one dispatch per parameter tensor or one for all the
 * parameters packed in an arena (the flat forms), never recorded on a tape; plus gradient zeroing and scaling. The optimizer classes in src/train/optim.ts hold the state.
 *
 * SGD (PyTorch's torch.optim.SGD, which is also Darknet's update):
 *   g' = gradScale·g + decay·w;   b = momentum·b + (1 − dampening)·g'  (b = g' on the first step);
 *   w −= lr·b   (nesterov: w −= lr·(g' + momentum·b))
 *
 * Darknet (update_convolutional_layer, B = batch·subdivisions images per update):
 *   updates += −decay·B·w;  w += (lr/B)·updates;  updates *= momentum
 * where `updates` accumulated −Σ_images dL/dw during backward (Darknet's losses are sums over images).
 * With b := −updates/B this is exactly b = momentum·b + ḡ + decay·w; w −= lr·b, ḡ the per-image mean
 * gradient: use gradScale = 1/B when the loss is summed over images (and over the subdivisions'
 * backward passes, which accumulate into .grad), dampening 0, no nesterov, lr·learning_rate_scale as lr.
 * Biases and batchnorm scales are updated the same way without decay (decay = 0 for those tensors).
 * The "velocity" form v = momentum·v − lr·(g + decay·w); w += v is the same update while lr is constant
 * (v = −lr·b); when lr changes (burn-in, steps policy) Darknet and PyTorch keep b, as this kernel does.
 *
 * Adam / AdamW (PyTorch's torch.optim.Adam / AdamW, amsgrad off), t = this tensor's step count from 1:
 *   g' = gradScale·g (+ decay·w for Adam: L2);  AdamW: w *= 1 − lr·decay (decoupled)
 *   m = β1·m + (1−β1)·g';  v = β2·v + (1−β2)·g'²;  w −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
 * (Darknet's adam: the same with g' = −updates = Σ_images g + decay·B·w, i.e. gradScale 1 on a summed
 * loss and decay·B as the L2 factor.)
 */
import { Tensor } from '../tensor.js';
import { fill } from './elementwise.js';

const WG = 256;

export interface SgdHyper {
  lr: number;
  /** default 0 (no buffer needed; `buf` may be null) */
  momentum?: number;
  /** PyTorch dampening τ (default 0, Darknet has none) */
  dampening?: number;
  /** L2 weight decay folded into the gradient (0 for biases / BN) */
  decay?: number;
  nesterov?: boolean;
  /** gradient multiplier (default 1) */
  gradScale?: number;
  /** first step of this tensor: the buffer is set to g' (PyTorch), not blended */
  first?: boolean;
}

export interface AdamHyper {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** L2 decay (Adam) or decoupled decay (AdamW, with `decoupled`) */
  decay?: number;
  decoupled?: boolean;
  /** this tensor's step number, 1 on the first update (bias correction) */
  step: number;
  gradScale?: number;
}

function sameSize(op: string, a: Tensor, b: Tensor | null | undefined, what: string): void {
  if (b && b.size !== a.size) throw new Error(`${op}: ${what} ${b.describe()} does not match parameter ${a.describe()}`);
}

/** The uniform Params of kernels/optim.wgsl (field names as in the struct); what an update leaves out is 0 (gscale 1). */
function params(n: number, o: { lr?: number; momentum?: number; dampening?: number; decay?: number; gscale?: number; beta1?: number; beta2?: number; eps?: number; step_size?: number; inv_sqrt_bc2?: number; flags?: number }) {
  return {
    n, lr: o.lr ?? 0, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, decay: o.decay ?? 0, gscale: o.gscale ?? 1,
    beta1: o.beta1 ?? 0, beta2: o.beta2 ?? 0, eps: o.eps ?? 0, step_size: o.step_size ?? 0, inv_sqrt_bc2: o.inv_sqrt_bc2 ?? 0, flags: o.flags ?? 0,
  };
}

/** One SGD step on w (in place) from gradient g; `buf` is the momentum buffer (required when momentum != 0). */
export function sgdUpdate(w: Tensor, g: Tensor, buf: Tensor | null, h: SgdHyper): void {
  sameSize('sgd', w, g, 'gradient');
  sameSize('sgd', w, buf, 'momentum buffer');
  const momentum = h.momentum ?? 0;
  const gpu = w.gpu;
  const common = { lr: h.lr, decay: h.decay ?? 0, gscale: h.gradScale ?? 1 };
  if (momentum === 0) {
    gpu.dispatch({ file: 'optim', entry: 'sgd_plain', constants: { WG } }, params(w.size, common), { 1: w, 2: g }, gpu.grid(w.size, WG));
    return;
  }
  if (!buf) throw new Error(`sgd: momentum ${momentum} needs a buffer for ${w.describe()}`);
  const flags = (h.nesterov ? 1 : 0) | (h.first ? 2 : 0);
  gpu.dispatch({ file: 'optim', entry: 'sgd', constants: { WG } }, params(w.size, { ...common, momentum, dampening: h.dampening ?? 0, flags }), { 1: w, 2: g, 3: buf }, gpu.grid(w.size, WG));
}

/** One Adam (or AdamW with `decoupled`) step on w in place; m, v are the moment buffers. */
export function adamUpdate(w: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamHyper): void {
  sameSize('adam', w, g, 'gradient');
  sameSize('adam', w, m, 'first moment');
  sameSize('adam', w, v, 'second moment');
  if (!(h.step >= 1)) throw new Error(`adam: step ${h.step} must be >= 1`);
  const beta1 = h.beta1 ?? 0.9;
  const beta2 = h.beta2 ?? 0.999;
  const [stepSize, invSqrtBc2] = adamCorrections(h.lr, beta1, beta2, h.step);
  const gpu = w.gpu;
  gpu.dispatch(
    { file: 'optim', entry: 'adam', constants: { WG } },
    params(w.size, { lr: h.lr, decay: h.decay ?? 0, gscale: h.gradScale ?? 1, beta1, beta2, eps: h.eps ?? 1e-8, step_size: stepSize, inv_sqrt_bc2: invSqrtBc2, flags: h.decoupled ? 4 : 0 }),
    { 1: w, 2: g, 3: m, 4: v },
    gpu.grid(w.size, WG),
  );
}

/**
 * The flat forms (kernels/optim.wgsl sgd_flat / adam_flat): one dispatch over packed parameters. `w`, `g`,
 * `m`, `v`: whole arenas of one layout (src/tensor/arena.ts; SGD binds its momentum arena as both m and v
 * slots' first), `chunks`: the arena's chunk table (n rows), `hyp`: per-parameter vec4 constants.
 */
export interface FlatBindings {
  w: Tensor;
  g: Tensor;
  m: Tensor;
  v?: Tensor;
  chunks: Tensor;
  n: number;
  hyp: Tensor;
}

/** SGD over packed parameters: hyp = (lr, decay, first step ? 1 : 0, 0) per parameter. */
export function sgdFlatUpdate(b: FlatBindings, h: { momentum: number; dampening: number; nesterov: boolean; gradScale: number }): void {
  const gpu = b.w.gpu;
  const flags = (h.nesterov ? 1 : 0) | (h.momentum === 0 ? 8 : 0);
  gpu.dispatch({ file: 'optim', entry: 'sgd_flat' }, params(b.n, { momentum: h.momentum, dampening: h.dampening, gscale: h.gradScale, flags }), { 1: b.w, 2: b.g, 3: b.m, 5: b.chunks, 6: b.hyp }, gpu.grid(b.n, 1));
}

/** Adam / AdamW over packed parameters: hyp = (lr, decay, step_size, inv_sqrt_bc2) per parameter. */
export function adamFlatUpdate(b: FlatBindings, h: { beta1: number; beta2: number; eps: number; decoupled: boolean; gradScale: number }): void {
  if (!b.v) throw new Error('adam: the flat update needs the second-moment arena');
  const gpu = b.w.gpu;
  gpu.dispatch({ file: 'optim', entry: 'adam_flat' }, params(b.n, { gscale: h.gradScale, beta1: h.beta1, beta2: h.beta2, eps: h.eps, flags: h.decoupled ? 4 : 0 }), { 1: b.w, 2: b.g, 3: b.m, 4: b.v, 5: b.chunks, 6: b.hyp }, gpu.grid(b.n, 1));
}

/** Adam's per-parameter constants at this tensor's step t: (step_size, inv_sqrt_bc2) as adamUpdate computes them. */
export function adamCorrections(lr: number, beta1: number, beta2: number, step: number): [number, number] {
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  return [lr / bc1, 1 / Math.sqrt(bc2)];
}

/** t *= alpha in place (not recorded). */
export function scaleInPlace(t: Tensor, alpha: number): void {
  t.gpu.dispatch({ file: 'optim', entry: 'scale', constants: { WG } }, params(t.size, { gscale: alpha }), { 1: t }, t.gpu.grid(t.size, WG));
}

/** Sets every parameter's .grad to zero in place (keeps the buffers); with `free`, disposes them instead. */
export function zeroGrads(params: Iterable<Tensor>, free = false): void {
  for (const p of params) {
    if (!p.grad) continue;
    if (free) {
      p.grad.dispose();
      p.grad = null;
    } else fill(p.grad, 0);
  }
}

/** Multiplies every parameter's .grad by alpha in place (e.g. 1/subdivisions after accumulating). */
export function scaleGrads(params: Iterable<Tensor>, alpha: number): void {
  if (alpha === 1) return;
  for (const p of params) if (p.grad) scaleInPlace(p.grad, alpha);
}
