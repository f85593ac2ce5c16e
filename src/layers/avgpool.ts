/**
 * [avgpool] (Darknet make_avgpool_layer): global average over each channel plane -> c x 1 x 1. No keys.
 * Darknet computes no BFLOPs for it.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { avgpool } from '../tensor/ops/pool.js';
import type { Tensor } from '../tensor/tensor.js';

export class AvgpoolLayer extends Layer {
  readonly kind = 'avgpool';

  constructor(ctx: BuildContext) {
    super(ctx);
    ctx.requireImage();
    this.output = { c: ctx.input.c, h: 1, w: 1 };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'avg', filters: '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return avgpool(x);
  }
}

export const build = (ctx: BuildContext): AvgpoolLayer => new AvgpoolLayer(ctx);
