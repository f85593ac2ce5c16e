/**
 * [upsample] (Darknet parse_upsample / make_upsample_layer): nearest-neighbour by `stride` (default 2) times
 * `scale` (default 1); a negative stride downsamples (each output the scaled sum of its |stride|^2 block).
 * No BFLOPs in Darknet.
 */
import { Layer, type BuildContext, type ForwardContext, idiv } from '../darknet/layer.js';
import { upsample } from '../tensor/ops/upsample.js';
import type { DType, Tensor } from '../tensor/tensor.js';

export class UpsampleLayer extends Layer {
  readonly kind = 'upsample';
  readonly stride: number;
  readonly scale: number;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    ctx.requireImage();
    this.stride = s.int('stride', 2);
    if (this.stride === 0) throw s.error('stride', 'must not be 0');
    this.scale = s.float('scale', 1);
    const { c, h, w } = ctx.input;
    const k = Math.abs(this.stride);
    if (this.stride > 0) this.output = { c, h: h * k, w: w * k };
    else {
      if (h % k !== 0 || w % k !== 0) throw s.error('stride', `downsampling by ${k} needs the ${w} x ${h} input to be divisible by ${k}`);
      this.output = { c, h: idiv(h, k), w: idiv(w, k) };
    }
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: this.stride > 0 ? 'upsample' : 'downsample', filters: '', size: `${Math.abs(this.stride)}x` };
  }

  /** The upsample kernels have the f16 variant. */
  override inferStorage(precision: DType): DType {
    return precision;
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return upsample(x, this.stride, { scale: this.scale });
  }
}

export const build = (ctx: BuildContext): UpsampleLayer => new UpsampleLayer(ctx);
