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
import type { Tensor } from '../tensor/tensor.js';

/** The window keys both layers read: size (default stride), stride, stride_x / stride_y, padding (size-1). */
function readWindow(ctx: BuildContext): { size: number; strideX: number; strideY: number; padding: number; output: { c: number; h: number; w: number } } {
  const s = ctx.section;
  const stride = s.intMin('stride', 1, 1);
  const strideX = s.intMin('stride_x', 1, stride);
  const strideY = s.intMin('stride_y', 1, stride);
  const size = s.intMin('size', 1, stride);
  const padding = s.intMin('padding', 0, size - 1);
  const { c, h, w } = ctx.input;
  if (w + padding - size < 0 || h + padding - size < 0) {
    throw s.error('size', `a ${size}x${size} window with padding ${padding} does not fit the ${w} x ${h} input`);
  }
  return { size, strideX, strideY, padding, output: { c, h: idiv(h + padding - size, strideY) + 1, w: idiv(w + padding - size, strideX) + 1 } };
}

export class MaxpoolLayer extends Layer {
  readonly kind = 'maxpool';
  readonly size: number;
  readonly strideX: number;
  readonly strideY: number;
  readonly padding: number;

  constructor(ctx: BuildContext) {
    super(ctx);
    ctx.requireImage();
    refuseNonzero(ctx, {
      maxpool_depth: 'channel-wise max pooling (maxpool_depth)',
      antialiasing: 'anti-aliased (blur) downsampling',
      maxpool_zero_nonmax: 'maxpool_zero_nonmax',
    });
    ({ size: this.size, strideX: this.strideX, strideY: this.strideY, padding: this.padding, output: this.output } = readWindow(ctx));
  }

  override bflops(): number {
    return Math.fround((this.size * this.size * this.input.c * this.output.h * this.output.w) / 1e9);
  }

  override describe(): { type: string; filters: string; size: string } {
    const k = this.size;
    const size = this.strideX === this.strideY ? `${k} x ${k}/${this.strideX}` : `${k}x${k}/${this.strideX}x${this.strideY}`;
    return { type: 'max', filters: '', size };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return maxpool(x, { size: this.size, strideX: this.strideX, strideY: this.strideY, padding: this.padding });
  }
}

export const build = (ctx: BuildContext): MaxpoolLayer => new MaxpoolLayer(ctx);

export class LocalAvgpoolLayer extends Layer {
  readonly kind = 'local_avgpool';
  readonly size: number;
  readonly strideX: number;
  readonly strideY: number;
  readonly padding: number;

  constructor(ctx: BuildContext) {
    super(ctx);
    ctx.requireImage();
    ({ size: this.size, strideX: this.strideX, strideY: this.strideY, padding: this.padding, output: this.output } = readWindow(ctx));
  }

  override bflops(): number {
    return Math.fround((this.size * this.size * this.input.c * this.output.h * this.output.w) / 1e9);
  }

  override describe(): { type: string; filters: string; size: string } {
    const k = this.size;
    const size = this.strideX === this.strideY ? `${k} x ${k}/${this.strideX}` : `${k}x${k}/${this.strideX}x${this.strideY}`;
    return { type: 'avg', filters: '', size };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return localAvgpool(x, { size: this.size, strideX: this.strideX, strideY: this.strideY, padding: this.padding });
  }
}

export const buildLocalAvgpool = (ctx: BuildContext): LocalAvgpoolLayer => new LocalAvgpoolLayer(ctx);
