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
import { Layer, type BuildContext, type ForwardContext, type Mode, param, readActivation } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { activation } from '../tensor/ops/activation.js';
import { conv2d, conv2dForward } from '../tensor/ops/conv2d.js';
import { batchnorm } from '../tensor/ops/batchnorm.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { bindLimit, chunkRows, constTensor, disposeAll, filled, foldBn, hostParam, pullInto, uniformInit } from './common.js';

export class ConnectedLayer extends Layer {
  readonly kind = 'connected';
  readonly outputsN: number;
  readonly activation: Activation;
  readonly batchNormalize: boolean;
  private gpuT: Record<string, Tensor> = {};
  /** Inference weights split by output rows when one tensor would exceed the device's binding limit. */
  private chunks: { start: number; w: Tensor; b: Tensor }[] = [];
  private mode: Mode | null = null;
  private gpu: Gpu | null = null;

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
    if (this.mode === mode && this.gpu === gpu) return;
    this.release();
    const n = this.outputsN;
    const wShape = [n, this.input.c, this.input.h, this.input.w];
    const wts = hostParam(this, 'weights');
    const biases = hostParam(this, 'biases');
    if (mode === 'infer') {
      let w = wts;
      let b = biases;
      if (this.batchNormalize) ({ w, b } = foldBn(wts, n, biases, hostParam(this, 'scales'), hostParam(this, 'rolling_mean'), hostParam(this, 'rolling_variance')));
      const K = this.inputsN;
      const ranges = chunkRows(n, K, bindLimit(gpu));
      if (ranges.length === 1) this.gpuT = { w: constTensor(gpu, wShape, w, `fc${this.index}.w`), b: constTensor(gpu, [n], b, `fc${this.index}.b`) };
      else {
        // e.g. AlexNet's 9216 -> 4096 layer (151 MB) on an adapter that binds at most 128 MB
        this.chunks = ranges.map(([s, c]) => ({
          start: s,
          w: constTensor(gpu, [c, ...wShape.slice(1)], w.subarray(s * K, (s + c) * K), `fc${this.index}.w${s}`),
          b: constTensor(gpu, [c], b.subarray(s, s + c), `fc${this.index}.b${s}`),
        }));
      }
    } else {
      this.gpuT = { weights: Tensor.param(gpu, wShape, wts, `fc${this.index}.weights`), biases: Tensor.param(gpu, [n], biases, `fc${this.index}.biases`) };
      if (this.batchNormalize) {
        this.gpuT.scales = Tensor.param(gpu, [n], hostParam(this, 'scales'), `fc${this.index}.scales`);
        this.gpuT.rolling_mean = constTensor(gpu, [n], hostParam(this, 'rolling_mean'), `fc${this.index}.rolling_mean`);
        this.gpuT.rolling_variance = constTensor(gpu, [n], hostParam(this, 'rolling_variance'), `fc${this.index}.rolling_variance`);
      }
    }
    this.mode = mode;
    this.gpu = gpu;
  }

  override release(): void {
    disposeAll(this.gpuT);
    for (const c of this.chunks) {
      c.w.dispose();
      c.b.dispose();
    }
    this.chunks = [];
    this.mode = null;
    this.gpu = null;
  }

  override async pull(): Promise<void> {
    if (this.mode === 'train' && this.data) await pullInto(this.data, this.gpuT);
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    if (this.mode !== ctx.mode) throw new Error(`layer ${this.index} [connected]: parameters are not prepared for '${ctx.mode}' (call Network.prepare)`);
    const t = this.gpuT;
    if (ctx.mode === 'infer') {
      if (!this.chunks.length) return conv2d(x, t.w, t.b, {}, { act: this.activation });
      const y = new Tensor(x.gpu, [x.shape[0], this.outputsN, 1, 1]);
      for (const c of this.chunks) conv2dForward(x, c.w, c.b, {}, 'auto', this.activation, { dst: y, channelOffset: c.start });
      return y;
    }
    if (!this.batchNormalize) return conv2d(x, t.weights, t.biases, {}, { act: this.activation });
    const y = conv2d(x, t.weights, null, {});
    const z = batchnorm(y, t.scales, t.biases, { runningMean: t.rolling_mean, runningVar: t.rolling_variance }, { training: true, mode: 'darknet' });
    if (!Tape.current) y.dispose();
    const a = activation(z, this.activation);
    if (a !== z && !Tape.current) z.dispose();
    return a;
  }
}

export const build = (ctx: BuildContext): Layer => new ConnectedLayer(ctx);
