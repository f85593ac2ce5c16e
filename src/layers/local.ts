/**
 * [local] (Darknet parse_local / make_local_layer / forward_local_layer): a locally connected layer
 * (YOLOv1): like a convolution but with separate weights at each output location.
 * Keys: filters (1), size (1), stride (1), pad (0), activation (logistic).
 * out = (in - size) / stride + 1, or (in - 1) / stride + 1 when pad != 0 (local_out_height); the input is
 * zero-padded by `pad` (Darknet passes the raw pad value to im2col), which must give the same output size.
 * .weights order: biases[filters*out_h*out_w], weights[out_h*out_w][filters][c*size*size].
 * Darknet computes no BFLOPs for it. Trainable: in 'train' mode the weights and biases are Tensor.param
 * (role weights / bias, so weight decay applies to the weights as in Darknet's update_local_layer) and the
 * op records dx, dweights and dbiases on the tape (kernels/local.wgsl). Inference may split the weights by
 * filters when they exceed the binding limit (YOLOv1's 462 MB); training needs them in one tensor.
 */
import { Layer, type BuildContext, type ForwardContext, type LayerTensor, type Mode, param, readActivation, idiv } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { activation } from '../tensor/ops/activation.js';
import { local, type LocalGeometry } from '../tensor/ops/local.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { bindLimit, chunkRows, constTensor, filled, hostParam, pullInto, uniformInit } from './common.js';

export class LocalLayer extends Layer {
  readonly kind = 'local';
  readonly filters: number;
  readonly size: number;
  readonly stride: number;
  readonly pad: number;
  readonly activation: Activation;
  /** Weights split by filters when one tensor would exceed the device's binding limit (YOLOv1's is 462 MB). */
  private chunks: { start: number; count: number; w: Tensor; b: Tensor }[] = [];
  /** 'train': the parameters as Tensor.param, by ParamSpec name. */
  private t: { weights: Tensor; biases: Tensor } | null = null;
  private gpu: Gpu | null = null;
  private mode: Mode | null = null;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    ctx.requireImage();
    this.filters = s.intMin('filters', 1, 1);
    this.size = s.intMin('size', 1, 1);
    this.stride = s.intMin('stride', 1, 1);
    this.pad = s.intMin('pad', 0, 0);
    this.activation = readActivation(ctx, 'logistic');
    const { h, w } = ctx.input;
    const outH = idiv(this.pad ? h - 1 : h - this.size, this.stride) + 1;
    const outW = idiv(this.pad ? w - 1 : w - this.size, this.stride) + 1;
    const colH = idiv(h + 2 * this.pad - this.size, this.stride) + 1;
    const colW = idiv(w + 2 * this.pad - this.size, this.stride) + 1;
    if (outH < 1 || outW < 1 || (!this.pad && (h < this.size || w < this.size))) throw s.error('size', `a ${this.size}x${this.size} window does not fit the ${w} x ${h} input`);
    if (colH !== outH || colW !== outW) {
      throw s.error('pad', `size ${this.size} with pad ${this.pad}: Darknet's output ${outW} x ${outH} and its im2col size ${colW} x ${colH} differ; not supported`);
    }
    this.output = { c: this.filters, h: outH, w: outW };
    const L = outH * outW;
    this.params = [param('biases', [this.filters * L]), param('weights', [L, this.filters, ctx.input.c * this.size * this.size])];
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'local', filters: `${this.filters}`, size: `${this.size} x ${this.size}/${this.stride}` };
  }

  override init(rng: Rng): void {
    const [b, wt] = this.params;
    this.data = { biases: filled(b.count, 0), weights: uniformInit(rng, wt.count, Math.sqrt(2 / (this.size * this.size * this.input.c))) };
  }

  override prepare(gpu: Gpu, mode: Mode): void {
    if (this.gpu === gpu && this.mode === mode) return;
    this.release();
    const [, wt] = this.params;
    const [L, N, K] = wt.shape;
    const w = hostParam(this, 'weights');
    const b = hostParam(this, 'biases');
    if (mode === 'train') {
      const limit = Math.min(gpu.limits.maxStorageBufferBindingSize ?? Infinity, gpu.limits.maxBufferSize ?? Infinity);
      if (w.length * 4 > limit) {
        throw new Error(`layer ${this.index} [local] (${this.where}): its weights (${w.length * 4} bytes) exceed the adapter's binding limit (${limit} bytes); training needs them in one tensor (inference splits them by filters)`);
      }
      const name = `local${this.index}`;
      this.t = { weights: Tensor.param(gpu, wt.shape, w, `${name}.weights`), biases: Tensor.param(gpu, [N * L], b, `${name}.biases`) };
    } else {
      const ranges = chunkRows(N, L * K, bindLimit(gpu));
      this.chunks = ranges.map(([s, c]) => {
        let wc = w;
        if (ranges.length > 1) {
          wc = new Float32Array(L * c * K);
          for (let l = 0; l < L; l++) wc.set(w.subarray((l * N + s) * K, (l * N + s + c) * K), l * c * K);
        }
        return { start: s, count: c, w: constTensor(gpu, [L, c, K], wc, `local${this.index}.w${s}`), b: constTensor(gpu, [c * L], b.subarray(s * L, (s + c) * L), `local${this.index}.b${s}`) };
      });
    }
    this.gpu = gpu;
    this.mode = mode;
  }

  override release(): void {
    for (const c of this.chunks) {
      c.w.dispose();
      c.b.dispose();
    }
    this.chunks = [];
    if (this.t) {
      this.t.weights.dispose();
      this.t.biases.dispose();
      this.t = null;
    }
    this.gpu = null;
    this.mode = null;
  }

  /** Copies the trained weights and biases back into `data` (train mode; no-op otherwise). */
  override async pull(): Promise<void> {
    if (this.mode === 'train' && this.t && this.data) await pullInto(this.data, this.t);
  }

  /**
   * 'train': biases (role bias) and weights (role weights) as Tensor.param, in .weights order; 'infer': the
   * constant biases and weights (in parts by filters when split).
   */
  override parameters(mode: Mode): LayerTensor[] {
    if (!this.gpu || this.mode !== mode) throw new Error(`layer ${this.index} [local]: parameters are not prepared for '${mode}' (call Network.prepare)`);
    if (mode === 'train') return [{ name: 'biases', tensor: this.t!.biases, role: 'bias' }, { name: 'weights', tensor: this.t!.weights, role: 'weights' }];
    const split = this.chunks.length > 1;
    return this.chunks.flatMap((c) => [
      { name: 'biases', tensor: c.b, role: 'bias' as const, ...(split ? { part: c.start } : {}) },
      { name: 'weights', tensor: c.w, role: 'weights' as const, ...(split ? { part: c.start } : {}) },
    ]);
  }

  private geometry(filters: number): LocalGeometry {
    return { size: this.size, stride: this.stride, pad: this.pad, filters, outH: this.output.h, outW: this.output.w };
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    if (!this.gpu || this.mode !== ctx.mode) throw new Error(`layer ${this.index} [local]: parameters are not prepared for '${ctx.mode}' (call Network.prepare)`);
    let y: Tensor;
    if (this.t) y = local(x, this.t.weights, this.t.biases, this.geometry(this.filters));
    else {
      const o = this.output;
      y = new Tensor(x.gpu, [x.shape[0], o.c, o.h, o.w]);
      for (const c of this.chunks) local(x, c.w, c.b, this.geometry(c.count), { dst: y, channelOffset: c.start });
    }
    const z = activation(y, this.activation);
    if (z !== y && !Tape.current) y.dispose();
    return z;
  }
}

export const build = (ctx: BuildContext): LocalLayer => new LocalLayer(ctx);
