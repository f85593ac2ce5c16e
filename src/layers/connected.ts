/**
 * [connected] (Darknet parse_connected / make_connected_layer / forward_connected_layer): a fully connected
 * layer over the flattened input (inputs = c*h*w of the previous layer) -> outputs x 1 x 1.
 * Keys: output (1), activation (logistic), batch_normalize (0).
 * .weights order: biases[outputs], weights[outputs][inputs], then [scales, rolling_mean, rolling_variance]
 * if batch_normalize (note: weights BEFORE the BN parameters, unlike [convolutional]); files with
 * major or minor > 1000 store weights transposed ([inputs][outputs]), see weights.ts.
 *
 * The GPU forward is the convolution whose kernel covers the whole input: weights [outputs][inputs] are
 * exactly OIHW [outputs, c, h, w] over an NCHW input, so y = act(x . W^T + b) runs as conv2d with the
 * fused bias + activation epilogue (BN folded at inference) and no reshape. When the weights exceed the
 * device's storage-binding limit, inference splits them by output rows, each part writing its channel slice
 * of the output (the conv epilogue's slice option). Darknet computes no BFLOPs for it.
 */
import { Layer, type BuildContext, type ForwardContext, type LayerTensor, type Mode, param, readActivation } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { conv2dForward } from '../tensor/ops/conv2d.js';
import { Tensor } from '../tensor/tensor.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { filled, LinearParams, linearForward, uniformInit } from './common.js';

export class ConnectedLayer extends Layer {
  readonly kind = 'connected';
  readonly outputsN: number;
  readonly activation: Activation;
  readonly batchNormalize: boolean;
  /** The GPU parameters (prepare / release / pull / parameters); inference weights split by rows when too large. */
  private readonly gpuParams = new LinearParams(this, 'fc');

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.outputsN = s.intMin('output', 1, 1);
    this.activation = readActivation(ctx, 'logistic');
    this.batchNormalize = s.flag('batch_normalize');
    const n = this.outputsN;
    const { c, h, w } = ctx.input;
    this.params = [param('biases', [n]), param('weights', [n, c, h, w])];
    if (this.batchNormalize) this.params.push(param('scales', [n]), param('rolling_mean', [n]), param('rolling_variance', [n]));
    this.output = { c: n, h: 1, w: 1 };
  }

  get inputsN(): number {
    return this.input.c * this.input.h * this.input.w;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'connected', filters: `${this.outputsN}`, size: '' };
  }

  override init(rng: Rng): void {
    const n = this.outputsN;
    this.data = { biases: filled(n, 0), weights: uniformInit(rng, n * this.inputsN, Math.sqrt(2 / this.inputsN)) };
    if (this.batchNormalize) Object.assign(this.data, { scales: filled(n, 1), rolling_mean: filled(n, 0), rolling_variance: filled(n, 1) });
  }

  override prepare(gpu: Gpu, mode: Mode): void {
    const wShape = [this.outputsN, this.input.c, this.input.h, this.input.w];
    this.gpuParams.prepare(gpu, mode, { n: this.outputsN, wShape, batchNormalize: this.batchNormalize, split: true });
  }

  override release(): void {
    this.gpuParams.release();
  }

  override async pull(): Promise<void> {
    await this.gpuParams.pull();
  }

  override parameters(mode: Mode): LayerTensor[] {
    return this.gpuParams.list(mode);
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    const g = this.gpuParams;
    if (g.mode !== ctx.mode) throw new Error(`layer ${this.index} [connected]: parameters are not prepared for '${ctx.mode}' (call Network.prepare)`);
    if (!g.chunks.length) return linearForward(x, g.t, ctx.mode, {}, this.activation, this.batchNormalize);
    const y = new Tensor(x.gpu, [x.shape[0], this.outputsN, 1, 1]);
    for (const c of g.chunks) conv2dForward(x, c.w, c.b, {}, 'auto', this.activation, { dst: y, channelOffset: c.start });
    return y;
  }
}

export const build = (ctx: BuildContext): ConnectedLayer => new ConnectedLayer(ctx);
