/**
 * What Darknet's recurrent layers share (crnn_layer.c, rnn_layer.c, gru_layer.c, lstm_layer.c): linear parts
 * (the [convolutional] / [connected] layers Darknet makes inside the layer: input_layer, self_layer, ...),
 * each with its own LinearParams under a name prefix ('input.weights'), in Darknet's .weights order; the
 * split of the batch into time steps; and the hidden state carried from step to step and from one forward
 * call to the next.
 *
 * Time steps (Darknet parse_net_options multiplies the batch by time_steps, make_*_layer divides it again
 * and the forward walks `steps` chunks): the input batch B holds `ForwardContext.timeSteps` steps of
 * b = B / steps rows each, step t in rows [t*b, (t+1)*b); the output is laid out the same way. Each part
 * runs once per step on b rows, so in 'train' mode its batchnorm uses the statistics of that step (Darknet's
 * sub-layers have l.batch = b) and updates the rolling statistics once per step.
 *
 * The hidden state: the first step starts from the state left by the previous forward of the same per-step
 * batch b ('infer' mode: Darknet's l.state, which inference never resets), else from zeros. A 'train'
 * forward of [crnn] / [rnn] starts from zeros and leaves zeros (forward_*_layer fill l.state with 0 when
 * state.train); [gru] / [lstm] carry theirs in training too (Darknet never resets them), as a constant: no
 * gradient flows into the previous call. Network.resetState() forgets it. A dry run (Gpu.collectKernels)
 * leaves it alone.
 *
 * Backward is the tape's: BPTT through the steps, the exact gradient of this forward.
 */
import { Layer, type BuildContext, type ForwardContext, type LayerTensor, type Mode, type ParamSpec, param } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import type { Conv2dParams } from '../tensor/ops/conv2d.js';
import { clone, zeros } from '../tensor/ops/elementwise.js';
import { batchConcat, batchSlice } from '../tensor/ops/steps.js';
import { Tape } from '../tensor/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { filled, LinearParams, linearForward, uniformInit } from './common.js';

/** One linear part of a recurrent layer (Darknet's sub-layer). */
export interface LinearPart {
  /** Its name, the prefix of its parameters ('input' -> 'input.weights'). */
  readonly name: string;
  /** Output channels (filters / outputs). */
  readonly n: number;
  /** Weights OIHW ([connected]: [outputs, c, h, w] over the whole input). */
  readonly wShape: number[];
  readonly geom: Conv2dParams;
  readonly act: Activation;
  /** Darknet's initialization scale is sqrt(2 / fanIn). */
  readonly fanIn: number;
  readonly gpu: LinearParams;
}

/** A step's input and state in, its output and state out. */
export interface StepResult {
  out: Tensor;
  state: Tensor[];
}

/** Applies a part (its linear map, batchnorm or bias, activation) to one step's rows. */
export type PartRunner = (part: string, x: Tensor) => Tensor;

export abstract class RecurrentLayer extends Layer {
  readonly batchNormalize: boolean;
  /** The linear parts in Darknet's .weights order. */
  protected readonly parts: LinearPart[] = [];
  /** The layer whose parameters this one uses (Network.resized: the same layer at another input size). */
  protected paramsOwner: RecurrentLayer = this;
  /** The state after the last forward (per step batch b), or null: zeros. */
  private state: Tensor[] | null = null;
  /** [gru] / [lstm]: the state survives a 'train' forward (Darknet never resets it). */
  protected abstract readonly carryInTraining: boolean;

  constructor(ctx: BuildContext) {
    super(ctx);
    this.batchNormalize = ctx.section.int('batch_normalize', 0) !== 0;
  }

  /** Adds a part with Darknet's [convolutional] parameters: biases, [scales, rolling_mean, rolling_variance], weights. */
  protected convPart(name: string, n: number, wShape: number[], geom: Conv2dParams, act: Activation): void {
    const specs: ParamSpec[] = [param(`${name}.biases`, [n])];
    if (this.batchNormalize) specs.push(param(`${name}.scales`, [n]), param(`${name}.rolling_mean`, [n]), param(`${name}.rolling_variance`, [n]));
    specs.push(param(`${name}.weights`, wShape));
    this.addPart(name, n, wShape, geom, act, specs);
  }

  /** Adds a part with Darknet's [connected] parameters: biases, weights, [scales, rolling_mean, rolling_variance]. */
  protected connectedPart(name: string, n: number, input: { c: number; h: number; w: number }, act: Activation): void {
    const wShape = [n, input.c, input.h, input.w];
    const specs: ParamSpec[] = [param(`${name}.biases`, [n]), param(`${name}.weights`, wShape)];
    if (this.batchNormalize) specs.push(param(`${name}.scales`, [n]), param(`${name}.rolling_mean`, [n]), param(`${name}.rolling_variance`, [n]));
    this.addPart(name, n, wShape, {}, act, specs);
  }

  private addPart(name: string, n: number, wShape: number[], geom: Conv2dParams, act: Activation, specs: ParamSpec[]): void {
    this.params.push(...specs);
    this.parts.push({ name, n, wShape, geom, act, fanIn: wShape.slice(1).reduce((a, b) => a * b, 1), gpu: new LinearParams(this, this.kind, `${name}.`) });
  }

  /** The state tensors' shapes per row ([c, h, w] each): the hidden state; [lstm] also the cell. */
  protected abstract stateShapes(): number[][];

  /**
   * One time step on b rows: `run(part, x)` applies a part; `tmp(t)` registers each other tensor the step
   * makes (freed after the forward when no tape owns them).
   */
  protected abstract step(x: Tensor, state: Tensor[], run: PartRunner, tmp: <T extends Tensor>(t: T) => T): StepResult;

  /** Darknet's initialization of each part ([connected] / [convolutional] conventions: scale sqrt(2 / fanIn)). */
  override init(rng: Rng): void {
    if (this.paramsOwner !== this) return;
    const d: Record<string, Float32Array> = {};
    for (const p of this.parts) {
      d[`${p.name}.biases`] = filled(p.n, 0);
      d[`${p.name}.weights`] = uniformInit(rng, p.n * p.fanIn, Math.sqrt(2 / p.fanIn));
      if (this.batchNormalize) {
        d[`${p.name}.scales`] = filled(p.n, 1);
        d[`${p.name}.rolling_mean`] = filled(p.n, 0);
        d[`${p.name}.rolling_variance`] = filled(p.n, 1);
      }
    }
    this.data = d;
  }

  override prepare(gpu: Gpu, mode: Mode): void {
    if (this.paramsOwner !== this) return;
    for (const p of this.parts) p.gpu.prepare(gpu, mode, { n: p.n, wShape: p.wShape, batchNormalize: this.batchNormalize });
  }

  override release(): void {
    for (const p of this.parts) p.gpu.release();
    this.resetState();
  }

  override async pull(): Promise<void> {
    if (this.paramsOwner !== this) return;
    for (const p of this.parts) await p.gpu.pull();
  }

  override parameters(mode: Mode): LayerTensor[] {
    return this.paramsOwner !== this ? [] : this.parts.flatMap((p) => p.gpu.list(mode));
  }

  override resetState(): void {
    for (const t of this.state ?? []) t.dispose();
    this.state = null;
  }

  override get carriesState(): boolean {
    return true;
  }

  /** Whether a state is carried into the next forward (tests; the shape of its first tensor, or null). */
  get stateShape(): readonly number[] | null {
    return this.state ? this.state[0].shape : null;
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    const owner = this.paramsOwner;
    const steps = ctx.timeSteps ?? 1;
    const B = x.shape[0];
    if (B % steps !== 0) throw new Error(`layer ${this.index} [${this.kind}] (${this.where}): batch ${B} is not a multiple of ${steps} time steps`);
    const b = B / steps;
    const gpu = x.gpu;
    const manual = Tape.current === null;
    const temps = new Set<Tensor>();
    const tmp = <T extends Tensor>(t: T): T => {
      temps.add(t);
      return t;
    };
    const parts = new Map(owner.parts.map((p) => [p.name, p]));
    const run: PartRunner = (name, input) => {
      const p = parts.get(name)!;
      if (p.gpu.mode !== ctx.mode) throw new Error(`layer ${this.index} [${this.kind}]: parameters are not prepared for '${ctx.mode}' (call Network.prepare)`);
      return tmp(linearForward(input, p.gpu.t, ctx.mode, p.geom, p.act, this.batchNormalize, ctx.rollingStats));
    };
    const carry = ctx.mode === 'infer' || this.carryInTraining;
    const prev = carry && this.state && this.state[0].shape[0] === b ? this.state : null;
    // under a tape the first step reads a copy the tape owns (the carried tensors are replaced below)
    let state = prev ? (manual ? prev : prev.map((t) => tmp(clone(t)))) : this.stateShapes().map((s) => tmp(zeros(gpu, [b, ...s])));
    const outs: Tensor[] = [];
    for (let t = 0; t < steps; t++) {
      const xt = batchSlice(x, t * b, b);
      if (xt !== x) tmp(xt);
      const r = this.step(xt, state, run, tmp);
      outs.push(r.out);
      state = r.state;
    }
    const y = batchConcat(outs);
    if (!gpu.collectingKernels) {
      const next = carry ? Tape.untracked(() => state.map((t) => clone(t))) : null;
      this.resetState();
      this.state = next;
    }
    if (manual) for (const t of temps) if (t !== y && t !== x) t.dispose();
    return y;
  }

  /** Uses the parameters of `other` (this layer in the network at another input size). */
  protected shareParts(other: Layer): void {
    if (!(other instanceof RecurrentLayer) || other.kind !== this.kind || other.params.length !== this.params.length || other.params.some((p, i) => p.count !== this.params[i].count)) {
      throw new Error(`layer ${this.index} ${this.section.label}: cannot share the parameters of layer ${other.index} ${other.section.label}`);
    }
    this.release();
    this.paramsOwner = other.paramsOwner;
    this.params = [];
    this.data = null;
  }
}
