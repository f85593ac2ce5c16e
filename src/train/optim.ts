/**
 * Optimizers over Tensor parameters with `.grad` (filled by Tape.backward): SGD (momentum, dampening,
 * nesterov, L2 decay: PyTorch's SGD, which is Darknet's update), Adam (L2 decay) and AdamW (decoupled
 * decay), bias-corrected like PyTorch. The formulas and the Darknet mapping are documented in
 * src/tensor/ops/optim.ts. Parameters packed into an arena (src/tensor/arena.ts packTensors: the trainer
 * packs the network's) are updated all at once: their gradients are copied into a mirror of the arena's
 * layout and one dispatch of the flat kernel (kernels/optim.wgsl sgd_flat / adam_flat) updates every one of
 * them, with its state in mirrors too; the same f32 arithmetic as the per-tensor kernel (one dispatch per
 * tensor), which updates the others.
 *
 * Per parameter: `decay: false` turns weight decay off (Darknet decays only conv/connected weights, not
 * biases or batchnorm scales), `lrScale` multiplies the learning rate (Darknet's learning_rate_scale).
 * The state (momentum buffer; Adam's m and v; per-parameter step counts) lives in GPU tensors exposed by
 * `state`, `stateTensors()`, and `exportState()` / `importState()` for checkpoints.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { TensorArena } from '../tensor/arena.js';
import { zeros } from '../tensor/ops/elementwise.js';
import { adamCorrections, adamFlatUpdate, adamUpdate, scaleGrads, sgdFlatUpdate, sgdUpdate, zeroGrads } from '../tensor/ops/optim.js';

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
  /** update packed parameters with the flat kernel (default true; false: one dispatch per tensor) */
  flat?: boolean;
}

/** One packed parameter of a flat update: its tensor and its four per-parameter constants (kernels/optim.wgsl hyp). */
export interface FlatItem {
  param: Tensor;
  hyp: [number, number, number, number];
}

/** What the flat update keeps per arena: the gradient mirror, the state mirrors, the last chunk table. */
export interface FlatArena {
  grads: TensorArena;
  slots: Record<string, TensorArena>;
  table: { key: string; chunks: Tensor; n: number } | null;
  hyp: Tensor | null;
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
  /** Packed parameters are updated with the flat kernel. */
  readonly flat: boolean;
  private readonly arenas = new Map<TensorArena, FlatArena>();

  constructor(params: ParamLike[], opts: OptimizerOptions) {
    if (!(opts.lr >= 0)) throw new Error(`optimizer: learning rate ${opts.lr} must be >= 0`);
    this.lr = opts.lr;
    this.decay = opts.decay ?? 0;
    this.flat = opts.flat ?? true;
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
      const flat = new Map<TensorArena, FlatItem[]>();
      for (const spec of specs) {
        const p = spec.param;
        if (!p.grad) continue;
        if (p.grad.size !== p.size) throw new Error(`${this.kind}: gradient ${p.grad.describe()} does not match ${p.describe()}`);
        const st = this.stateOf(p);
        st.step++;
        const lr = this.lr * (spec.lrScale ?? 1);
        const decay = spec.decay === false ? 0 : this.decay;
        const arena = this.flat ? TensorArena.of(p) : null;
        if (!arena) {
          this.update(p, p.grad, st, lr, decay, gradScale);
          continue;
        }
        let items = flat.get(arena);
        if (!items) flat.set(arena, (items = []));
        items.push({ param: p, hyp: this.flatHyper(st, lr, decay) });
      }
      for (const [arena, items] of flat) this.updateFlat(arena, items, gradScale);
    });
  }

  protected abstract update(p: Tensor, g: Tensor, st: ParamState, lr: number, decay: number, gradScale: number): void;

  /** The per-parameter constants of the flat kernel (rounded to f32 as the per-tensor kernel's uniforms are). */
  protected abstract flatHyper(st: ParamState, lr: number, decay: number): [number, number, number, number];

  /** One dispatch of the flat kernel over `chunks` (bindings 1-6 of kernels/optim.wgsl's flat entries). */
  protected abstract flatDispatch(f: FlatArena, weights: TensorArena, chunks: Tensor, n: number, hyp: Tensor, gradScale: number): void;

  /** The flat update of `items`, all packed in `arena`: gradients into the mirror, tables, one dispatch. */
  private updateFlat(arena: TensorArena, items: FlatItem[], gradScale: number): void {
    const f = this.flatArena(arena);
    const gpu = arena.gpu;
    for (const { param } of items) gpu.copy(param.grad!, 0, f.grads.all, f.grads.slots.get(param)!.offset * 4, param.bytes);
    const key = items.map((i) => i.param.id).join(',');
    if (f.table?.key !== key) {
      f.table?.chunks.dispose();
      const rows = arena.chunkTable(items.map((i) => i.param));
      const chunks = new Tensor(gpu, [rows.length], `${this.kind}.chunks`);
      gpu.upload(chunks, rows);
      f.table = { key, chunks, n: rows.length / 4 };
    }
    const hyp = new Float32Array(4 * items.length);
    items.forEach((it, k) => hyp.set(it.hyp, 4 * k));
    if (!f.hyp || f.hyp.size < hyp.length) {
      f.hyp?.dispose();
      f.hyp = new Tensor(gpu, [Math.max(hyp.length, 4 * this.params.length)], `${this.kind}.hyp`);
    }
    gpu.upload(f.hyp, hyp);
    this.flatDispatch(f, arena, f.table.chunks, f.table.n, f.hyp, gradScale);
  }

  private flatArena(arena: TensorArena): FlatArena {
    let f = this.arenas.get(arena);
    if (!f) {
      const grads = arena.mirror(`${arena.name}.grad`);
      grads.ref();
      f = { grads, slots: {}, table: null, hyp: null };
      for (const n of this.slotNames) {
        f.slots[n] = arena.mirror(`${arena.name}.${n}`);
        f.slots[n].ref();
      }
      this.arenas.set(arena, f);
    }
    return f;
  }

  /** The state of p, created (zeroed slots, step 0) if absent: views of the state mirrors for a packed p. */
  stateOf(p: Tensor): ParamState {
    let st = this.state.get(p);
    if (!st) {
      const slots: Record<string, Tensor> = {};
      const arena = this.flat ? TensorArena.of(p) : null;
      Tape.untracked(() => {
        for (const n of this.slotNames) {
          const name = `${p.name || `#${p.id}`}.${n}`;
          slots[n] = arena ? this.flatArena(arena).slots[n].viewOf(p, name) : zeros(p.gpu, p.shape, name);
        }
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
    for (const f of this.arenas.values()) {
      f.table?.chunks.dispose();
      f.hyp?.dispose();
      f.grads.unref();
      for (const m of Object.values(f.slots)) m.unref();
    }
    this.arenas.clear();
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

  protected flatHyper(st: ParamState, lr: number, decay: number): [number, number, number, number] {
    return [lr, decay, st.step === 1 ? 1 : 0, 0];
  }

  protected flatDispatch(f: FlatArena, w: TensorArena, chunks: Tensor, n: number, hyp: Tensor, gradScale: number): void {
    sgdFlatUpdate({ w: w.all, g: f.grads.all, m: f.slots.momentum.all, chunks, n, hyp }, { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, gradScale });
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

  protected flatHyper(st: ParamState, lr: number, decay: number): [number, number, number, number] {
    if (!(st.step >= 1)) throw new Error(`adam: step ${st.step} must be >= 1`);
    return [lr, decay, ...adamCorrections(lr, this.beta1, this.beta2, st.step)];
  }

  protected flatDispatch(f: FlatArena, w: TensorArena, chunks: Tensor, n: number, hyp: Tensor, gradScale: number): void {
    adamFlatUpdate({ w: w.all, g: f.grads.all, m: f.slots.m.all, v: f.slots.v.all, chunks, n, hyp }, { beta1: this.beta1, beta2: this.beta2, eps: this.eps, decoupled: this.decoupled, gradScale });
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
