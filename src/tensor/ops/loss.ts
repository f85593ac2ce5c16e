/**
 * Elementwise loss pieces (kernels/loss.wgsl): each returns the per-element loss (shape of the prediction;
 * reduce it with sum / mean from reduce.ts) and records its backward w.r.t. the prediction only: the
 * target and the optional per-element weight are constants (no gradient flows into them).
 *
 *   out = alpha * weight * l(x, t)
 *
 * Darknet's [yolo] deltas (delta = -dL/dz) are the gradients of these pieces: x, y, objectness and classes
 * use bceWithLogits on the raw logits (scale·BCE for x, y with scale = 2 - w·h), w and h use
 * mse with alpha 0.5·scale (delta = scale·(t - z)).
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export const LOSSES = ['bceWithLogits', 'mse', 'sigmoidMse', 'l1'] as const;
export type ElementLossKind = (typeof LOSSES)[number];
const LOSS_CODE: Record<ElementLossKind, number> = { bceWithLogits: 0, mse: 1, sigmoidMse: 2, l1: 3 };

export interface LossOptions {
  /** Per-element weight (same size as the prediction; a mask, balance or box scale). Not differentiated. */
  weight?: Tensor;
  /** Scalar multiplier (default 1). */
  alpha?: number;
}

function check(op: string, x: Tensor, t: Tensor, w?: Tensor): void {
  if (t.size !== x.size) throw new Error(`${op}: target ${t.describe()} does not match prediction ${x.describe()}`);
  if (w && w.size !== x.size) throw new Error(`${op}: weight ${w.describe()} does not match prediction ${x.describe()}`);
}

/** The per-element loss `kind` of prediction x against target t (recorded; gradient w.r.t. x only). */
function lossCode(kind: ElementLossKind): number {
  const code = LOSS_CODE[kind];
  if (code === undefined) throw new Error(`unknown loss '${kind}' (supported: ${LOSSES.join(', ')})`);
  return code;
}

export function elementLoss(kind: ElementLossKind, x: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  const code = lossCode(kind);
  const { weight, alpha = 1 } = opts;
  check(kind, x, target, weight);
  const gpu = x.gpu;
  const out = new Tensor(gpu, x.shape);
  const bind: Record<number, Tensor> = { 1: x, 2: target, 4: out };
  if (weight) bind[3] = weight;
  gpu.dispatch({ file: 'loss', entry: weight ? 'fwd_w' : 'fwd', constants: { WG } }, { n: x.size, alpha, zero: 0, kind: code }, bind, gpu.grid(x.size, WG));
  Tape.push({
    op: `loss:${kind}`, inputs: [x], outputs: [out], saved: weight ? [x, target, weight] : [x, target],
    backward: ([g]) => [elementLossBackward(kind, x, target, g!, opts)],
  });
  return out;
}

/** dx = g * alpha * weight * dl/dx (not recorded). */
export function elementLossBackward(kind: ElementLossKind, x: Tensor, target: Tensor, g: Tensor, opts: LossOptions = {}): Tensor {
  const { weight, alpha = 1 } = opts;
  check(kind, x, target, weight);
  if (g.size !== x.size) throw new Error(`${kind} backward: gradient ${g.describe()} does not match ${x.describe()}`);
  const gpu = x.gpu;
  const dx = new Tensor(gpu, x.shape);
  const bind: Record<number, Tensor> = { 1: x, 2: target, 4: dx, 5: g };
  if (weight) bind[3] = weight;
  gpu.dispatch({ file: 'loss', entry: weight ? 'bwd_w' : 'bwd', constants: { WG } }, { n: x.size, alpha, zero: 0, kind: lossCode(kind) }, bind, gpu.grid(x.size, WG));
  return dx;
}

/**
 * Binary cross-entropy on logits, numerically stable: max(x,0) - x·t + log(1 + exp(-|x|)).
 * Gradient: sigmoid(x) - t. Targets may be soft (label smoothing, IoU-valued objectness).
 */
export const bceWithLogits = (logits: Tensor, target: Tensor, opts?: LossOptions) => elementLoss('bceWithLogits', logits, target, opts);

/** Squared error (p - t)². Gradient: 2 (p - t). */
export const mse = (pred: Tensor, target: Tensor, opts?: LossOptions) => elementLoss('mse', pred, target, opts);

/** Squared error after a sigmoid: (σ(x) - t)². Gradient: 2 (σ - t) σ (1 - σ). */
export const sigmoidMse = (logits: Tensor, target: Tensor, opts?: LossOptions) => elementLoss('sigmoidMse', logits, target, opts);

/** Absolute error |p - t|. Gradient: sign(p - t), 0 where p == t. */
export const l1 = (pred: Tensor, target: Tensor, opts?: LossOptions) => elementLoss('l1', pred, target, opts);
