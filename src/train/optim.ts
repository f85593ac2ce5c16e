/**
 * Optimizers over Tensor parameters with `.grad` (filled by Tape.backward): SGD (momentum, dampening,
 * nesterov, L2 decay: PyTorch's SGD, which is Darknet's update), Adam (L2 decay) and AdamW (decoupled
 * decay), bias-corrected like PyTorch. Each step is one kernel per parameter tensor (kernels/optim.wgsl);
 * the formulas and the Darknet mapping are documented in src/tensor/ops/optim.ts.
 *
 * Per parameter: `decay: false` turns weight decay off (Darknet decays only conv/connected weights, not
 * biases or batchnorm scales), `lrScale` multiplies the learning rate (Darknet's learning_rate_scale).
 * The state (momentum buffer; Adam's m and v; per-parameter step counts) lives in GPU tensors exposed by
 * `state`, `stateTensors()`, and `exportState()` / `importState()` for checkpoints.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { zeros } from '../tensor/ops/elementwise.js';
import { adamUpdate, scaleGrads, sgdUpdate, zeroGrads } from '../tensor/ops/optim.js';

/** A parameter tensor as the optimizer sees it: the tensor, its weight decay switch, its rate multiplier. */
export interface OptimParam {
  param: Tensor;
  /** apply weight decay to this tensor (default true) */
  decay?: boolean;
  /** learning-rate multiplier (default 1) */
  lrScale?: number;
}
export type ParamLike = Tensor | OptimParam;

export interface StepOptions {
  /** multiplies every gradient inside the update kernel (1/batch, 1/subdivisions); default 1 */
  gradScale?: number;
}

/** Per-parameter optimizer state: GPU slots (named as below) and the number of updates applied. */
export interface ParamState {
  step: number;
  slots: Record<string, Tensor>;
}

/** Host copy of an optimizer's state, parameters in registration order (for checkpoints). */
export interface OptimizerState {
  kind: string;
  /** hyperparameters at export time (informational; importState does not change them) */
  hyper: Record<string, number | boolean>;
  params: { name: string; size: number; step: number; slots: Record<string, Float32Array> }[];
}

export interface OptimizerOptions {
  lr: number;
  /** weight decay (L2 for SGD/Adam, decoupled for AdamW) */
  decay?: number;
}

function toOptimParam(p: ParamLike): OptimParam {
  return p instanceof Tensor ? { param: p } : p;
}

export abstract class Optimizer {
  lr: number;
  decay: number;
  readonly params: OptimParam[];
  /** State per parameter tensor (created lazily on its first update). */
  readonly state = new Map<Tensor, ParamState>();
  /** Names of the state slots each parameter gets (e.g. ['momentum'] or ['m', 'v']). */
  abstract readonly slotNames: readonly string[];
  abstract readonly kind: string;

  constructor(params: ParamLike[], opts: OptimizerOptions) {
    if (!(opts.lr >= 0)) throw new Error(`optimizer: learning rate ${opts.lr} must be >= 0`);
    this.lr = opts.lr;
    this.decay = opts.decay ?? 0;
    this.params = params.map(toOptimParam);
    const seen = new Set<Tensor>();
    for (const s of this.params) {
      if (seen.has(s.param)) throw new Error(`optimizer: parameter ${s.param.describe()} listed twice`);
      seen.add(s.param);
    }
  }

  /**
   * One update of every parameter that has a gradient (parameters without .grad are skipped, their state
   * untouched, as in PyTorch). `params` (optional) updates those instead of the registered ones.
   */
  step(opts?: StepOptions): void;
  step(params: ParamLike[], opts?: StepOptions): void;
  step(a?: ParamLike[] | StepOptions, b?: StepOptions): void {
    const specs = Array.isArray(a) ? a.map(toOptimParam) : this.params;
    const opts = (Array.isArray(a) ? b : a) ?? {};
    const gradScale = opts.gradScale ?? 1;
    Tape.untracked(() => {
      for (const spec of specs) {
        const p = spec.param;
        if (!p.grad) continue;
        if (p.grad.size !== p.size) throw new Error(`${this.kind}: gradient ${p.grad.describe()} does not match ${p.describe()}`);
        const st = this.stateOf(p);
        st.step++;
        const lr = this.lr * (spec.lrScale ?? 1);
        const decay = spec.decay === false ? 0 : this.decay;
        this.update(p, p.grad, st, lr, decay, gradScale);
      }
    });
  }

  protected abstract update(p: Tensor, g: Tensor, st: ParamState, lr: number, decay: number, gradScale: number): void;

  /** The state of p, created (zeroed slots, step 0) if absent. */
  stateOf(p: Tensor): ParamState {
    let st = this.state.get(p);
    if (!st) {
      const slots: Record<string, Tensor> = {};
      Tape.untracked(() => {
        for (const n of this.slotNames) slots[n] = zeros(p.gpu, p.shape, `${p.name || `#${p.id}`}.${n}`);
      });
      st = { step: 0, slots };
      this.state.set(p, st);
    }
    return st;
  }

  /** Zeroes the registered parameters' gradients in place (`free`: dispose them instead). */
  zeroGrad(opts: { free?: boolean } = {}): void {
    zeroGrads(this.params.map((s) => s.param), opts.free ?? false);
  }

  /** Multiplies the registered parameters' gradients in place (prefer StepOptions.gradScale: no extra pass). */
  scaleGrad(alpha: number): void {
    scaleGrads(this.params.map((s) => s.param), alpha);
  }

  /** Every state tensor with a stable name `<param name or index>.<slot>`, registered parameters in order. */
  stateTensors(): { param: Tensor; name: string; slot: string; tensor: Tensor }[] {
    const out: { param: Tensor; name: string; slot: string; tensor: Tensor }[] = [];
    this.params.forEach((s, i) => {
      const st = this.state.get(s.param);
      if (!st) return;
      for (const slot of this.slotNames) out.push({ param: s.param, name: `${s.param.name || i}.${slot}`, slot, tensor: st.slots[slot] });
    });
    return out;
  }

  protected abstract hyper(): Record<string, number | boolean>;

  /** Reads the state of every registered parameter back (parameters never updated export step 0, zeros). */
  async exportState(): Promise<OptimizerState> {
    const params: OptimizerState['params'] = [];
    for (const [i, s] of this.params.entries()) {
      const st = this.state.get(s.param);
      const slots: Record<string, Float32Array> = {};
      for (const n of this.slotNames) slots[n] = st ? await st.slots[n].toArray() : new Float32Array(s.param.size);
      params.push({ name: s.param.name || String(i), size: s.param.size, step: st?.step ?? 0, slots });
    }
    return { kind: this.kind, hyper: this.hyper(), params };
  }

  /** Restores state exported by exportState() for the same parameter list (checked by count and size). */
  importState(s: OptimizerState): void {
    if (s.kind !== this.kind) throw new Error(`optimizer: state of a ${s.kind} cannot be loaded into ${this.kind}`);
    if (s.params.length !== this.params.length) throw new Error(`optimizer: state has ${s.params.length} parameters, this optimizer ${this.params.length}`);
    this.params.forEach((spec, i) => {
      const e = s.params[i];
      if (e.size !== spec.param.size) throw new Error(`optimizer: state entry ${i} ('${e.name}') has ${e.size} values, parameter ${spec.param.describe()} has ${spec.param.size}`);
      const st = this.stateOf(spec.param);
      st.step = e.step;
      for (const n of this.slotNames) {
        const data = e.slots[n];
        if (!data) throw new Error(`optimizer: state entry ${i} ('${e.name}') lacks slot '${n}'`);
        st.slots[n].write(data);
      }
    });
  }

  /** Frees every state tensor. */
  dispose(): void {
    for (const st of this.state.values()) for (const t of Object.values(st.slots)) t.dispose();
    this.state.clear();
  }
}

export interface SGDOptions extends OptimizerOptions {
  /** default 0 */
  momentum?: number;
  /** default 0 */
  dampening?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD (= Darknet's update with gradScale 1/(batch·subdivisions) on summed losses). Slot: 'momentum'. */
export class SGD extends Optimizer {
  readonly kind = 'sgd';
  momentum: number;
  dampening: number;
  nesterov: boolean;
  readonly slotNames: readonly string[];

  constructor(params: ParamLike[], opts: SGDOptions) {
    super(params, opts);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error('sgd: nesterov needs momentum > 0 and dampening 0');
    // with momentum 0 the update ignores the buffer (kept so momentum can be set later and for a fixed layout)
    this.slotNames = ['momentum'];
  }

  protected update(p: Tensor, g: Tensor, st: ParamState, lr: number, decay: number, gradScale: number): void {
    sgdUpdate(p, g, st.slots.momentum, { lr, momentum: this.momentum, dampening: this.dampening, decay, nesterov: this.nesterov, gradScale, first: st.step === 1 });
  }

  protected hyper(): Record<string, number | boolean> {
    return { lr: this.lr, decay: this.decay, momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov };
  }
}

export interface AdamOptions extends OptimizerOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** torch.optim.Adam (L2 decay added to the gradient), amsgrad off. Slots: 'm', 'v'. */
export class Adam extends Optimizer {
  readonly kind: string = 'adam';
  readonly slotNames: readonly string[] = ['m', 'v'];
  beta1: number;
  beta2: number;
  eps: number;
  protected readonly decoupled: boolean = false;

  constructor(params: ParamLike[], opts: AdamOptions) {
    super(params, opts);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
  }

  protected update(p: Tensor, g: Tensor, st: ParamState, lr: number, decay: number, gradScale: number): void {
    adamUpdate(p, g, st.slots.m, st.slots.v, { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, decay, decoupled: this.decoupled, step: st.step, gradScale });
  }

  protected hyper(): Record<string, number | boolean> {
    return { lr: this.lr, decay: this.decay, beta1: this.beta1, beta2: this.beta2, eps: this.eps };
  }
}

/** torch.optim.AdamW: decoupled decay w *= 1 − lr·decay (default decay 0.01, as PyTorch). Slots: 'm', 'v'. */
export class AdamW extends Adam {
  override readonly kind: string = 'adamw';
  protected override readonly decoupled: boolean = true;

  constructor(params: ParamLike[], opts: AdamOptions) {
    super(params, { ...opts, decay: opts.decay ?? 0.01 });
  }
}
