/**
 * [batchnorm] (Darknet batchnorm_layer.c make_batchnorm_layer / forward_batchnorm_layer, parser.c
 * parse_batchnorm): a standalone per-channel batch normalization of the previous layer's output, same shape.
 * No keys of its own (dontloadscales is refused). .weights order (load_batchnorm_weights): biases[c], scales[c], rolling_mean[c], rolling_variance[c].
 *
 * Inference: y = scales*(x - rolling_mean)/(sqrt(rolling_variance) + 1e-6) + biases (normalize_cpu,
 * scale_bias, add_bias). Training: the same with the batch mean and unbiased variance, and the rolling
 * statistics updated 0.99/0.01 as the convolutional BN of this engine (Darknet's GPU path; its CPU
 * forward_batchnorm_layer uses 0.9/0.1). Both through src/tensor/ops/batchnorm.ts (forward and backward).
 * Initialization as Darknet: scales 1, biases 0, rolling_mean 0; rolling_variance 1 (Darknet: 0) so that an
 * untrained network stays finite, as [convolutional] does.
 */
import { Layer, type BuildContext, type ForwardContext, type LayerTensor, type Mode, type ParamRole, param, refuseNonzero } from '../darknet/layer.js';
import { batchnorm } from '../tensor/ops/batchnorm.js';
import { Tensor } from '../tensor/tensor.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { constTensor, disposeAll, filled, hostParam, pullInto } from './common.js';

const ROLES: Record<string, ParamRole> = { biases: 'bias', scales: 'bn', rolling_mean: 'buffer', rolling_variance: 'buffer' };

export class BatchnormLayer extends Layer {
  readonly kind = 'batchnorm';
  /** The layer holding the parameters (itself unless sharing another's, Network.resized). */
  owner: BatchnormLayer = this;
  /** GPU tensors by ParamSpec name (after prepare). */
  private t: Record<string, Tensor> = {};
  private mode: Mode | null = null;
  private gpu: Gpu | null = null;

  constructor(ctx: BuildContext) {
    super(ctx);
    ctx.requireImage();
    // the .weights reader would skip scales and statistics; Darknet's load_batchnorm_weights reads all four
    refuseNonzero(ctx, { dontloadscales: 'dontloadscales on a [batchnorm] layer (Darknet reads its four arrays regardless)' });
    const c = ctx.input.c;
    this.params = [param('biases', [c]), param('scales', [c]), param('rolling_mean', [c]), param('rolling_variance', [c])];
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'batchnorm', filters: '', size: '' };
  }

  override init(rng: Rng): void {
    void rng;
    const c = this.input.c;
    this.data = { biases: filled(c, 0), scales: filled(c, 1), rolling_mean: filled(c, 0), rolling_variance: filled(c, 1) };
  }

  /** The parameters depend on the channel count only (multi-scale training shares them). */
  override shareParamsOf(other: Layer): void {
    if (!(other instanceof BatchnormLayer) || other.input.c !== this.input.c) {
      throw new Error(`layer ${this.index} ${this.section.label}: cannot share the parameters of layer ${other.index} ${other.section.label}`);
    }
    this.release();
    this.data = null;
    this.owner = other.owner;
    this.params = [];
  }

  override prepare(gpu: Gpu, mode: Mode): void {
    if (this.owner !== this) return;
    if (this.mode === mode && this.gpu === gpu) return;
    this.release();
    const c = this.input.c;
    const name = `bn${this.index}`;
    for (const p of ['biases', 'scales', 'rolling_mean', 'rolling_variance']) {
      const v = hostParam(this, p);
      this.t[p] = mode === 'train' && (p === 'biases' || p === 'scales') ? Tensor.param(gpu, [c], v, `${name}.${p}`) : constTensor(gpu, [c], v, `${name}.${p}`);
    }
    this.mode = mode;
    this.gpu = gpu;
  }

  override release(): void {
    disposeAll(this.t);
    this.mode = null;
    this.gpu = null;
  }

  override async pull(): Promise<void> {
    if (this.owner === this && this.mode === 'train' && this.data) await pullInto(this.data, this.t);
  }

  override parameters(mode: Mode): LayerTensor[] {
    if (this.owner !== this) return [];
    if (this.mode !== mode) throw new Error(`layer ${this.index} [batchnorm]: parameters are not prepared for '${mode}' (call Network.prepare)`);
    return this.params.map((p) => ({ name: p.name, tensor: this.t[p.name], role: ROLES[p.name] }));
  }

  /** The prepared tensors (the owner's when shared): biases, scales, rolling_mean, rolling_variance. */
  tensors(mode: Mode): Record<string, Tensor> {
    const o = this.owner;
    if (o.mode !== mode) throw new Error(`layer ${this.index} [batchnorm]: parameters are not prepared for '${mode}' (call Network.prepare)`);
    return o.t;
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    const t = this.tensors(ctx.mode);
    return batchnorm(x, t.scales, t.biases, { runningMean: t.rolling_mean, runningVar: t.rolling_variance }, { training: ctx.mode === 'train' && !ctx.rollingStats, mode: 'darknet' });
  }
}

export const build = (ctx: BuildContext): BatchnormLayer => new BatchnormLayer(ctx);
