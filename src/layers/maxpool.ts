/**
 * [maxpool] (Darknet parse_maxpool / make_maxpool_layer / forward_maxpool_layer) and [local_avgpool]
 * (parse_local_avgpool: the same layer with avgpool=1, forward_local_avgpool_layer), as Darknet keeps both
 * in maxpool_layer.c: the same window keys and output size, the mean of the window's valid taps instead of
 * the max (no maxpool_depth / antialiasing there).
 *
 * Keys: size (default: stride), stride (1), stride_x / stride_y (default: stride), padding (default size-1,
 * the total padding per axis; windows start at -padding/2, so an odd total puts the extra on the right /
 * bottom; padding taps are -FLT_MAX). Refused when non-zero: maxpool_depth (channel-wise max),
 * antialiasing, maxpool_zero_nonmax. `out_channels` only matters with maxpool_depth.
 *
 * out = (in + padding - size) / stride + 1. BFLOPs (Darknet): size*size*c*out_h*out_w / 1e9.
 */
import { Layer, type BuildContext, type ForwardContext, refuseNonzero, idiv } from '../darknet/layer.js';
import { localAvgpool, maxpool } from '../tensor/ops/pool.js';
import type { DType, Tensor } from '../tensor/tensor.js';

/**
 * What both layers share: the window keys (size, default stride; stride; stride_x / stride_y; padding,
 * default size-1), the output size, Darknet's BFLOPs and the layer-table line; `op` pools one input.
 */
abstract class WindowPoolLayer extends Layer {
  readonly size: number;
  readonly strideX: number;
  readonly strideY: number;
  readonly padding: number;

  protected constructor(ctx: BuildContext, private readonly label: 'max' | 'avg', private readonly op: typeof maxpool) {
    super(ctx);
    ctx.requireImage();
    const s = ctx.section;
    const stride = s.intMin('stride', 1, 1);
    this.strideX = s.intMin('stride_x', 1, stride);
    this.strideY = s.intMin('stride_y', 1, stride);
    this.size = s.intMin('size', 1, stride);
    this.padding = s.intMin('padding', 0, this.size - 1);
    const { c, h, w } = ctx.input;
    if (w + this.padding - this.size < 0 || h + this.padding - this.size < 0) {
      throw s.error('size', `a ${this.size}x${this.size} window with padding ${this.padding} does not fit the ${w} x ${h} input`);
    }
    this.output = { c, h: idiv(h + this.padding - this.size, this.strideY) + 1, w: idiv(w + this.padding - this.size, this.strideX) + 1 };
  }

  override bflops(): number {
    return Math.fround((this.size * this.size * this.input.c * this.output.h * this.output.w) / 1e9);
  }

  override describe(): { type: string; filters: string; size: string } {
    const k = this.size;
    const size = this.strideX === this.strideY ? `${k} x ${k}/${this.strideX}` : `${k}x${k}/${this.strideX}x${this.strideY}`;
    return { type: this.label, filters: '', size };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return this.op(x, { size: this.size, strideX: this.strideX, strideY: this.strideY, padding: this.padding });
  }
}

export class MaxpoolLayer extends WindowPoolLayer {
  readonly kind = 'maxpool';

  constructor(ctx: BuildContext) {
    super(ctx, 'max', maxpool);
    refuseNonzero(ctx, {
      maxpool_depth: 'channel-wise max pooling (maxpool_depth)',
      antialiasing: 'anti-aliased (blur) downsampling',
      maxpool_zero_nonmax: 'maxpool_zero_nonmax',
    });
  }

  /** The max pool kernels have the f16 variant. */
  override inferStorage(precision: DType): DType {
    return precision;
  }
}

export const build = (ctx: BuildContext): MaxpoolLayer => new MaxpoolLayer(ctx);

/** Darknet parse_local_avgpool: no maxpool_depth / antialiasing keys. */
export class LocalAvgpoolLayer extends WindowPoolLayer {
  readonly kind = 'local_avgpool';

  constructor(ctx: BuildContext) {
    super(ctx, 'avg', localAvgpool);
  }
}

export const buildLocalAvgpool = (ctx: BuildContext): LocalAvgpoolLayer => new LocalAvgpoolLayer(ctx);
