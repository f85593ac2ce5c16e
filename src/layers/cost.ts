/**
 * [cost] (Darknet parse_cost): the classifier's training loss layer. Darknet's network output skips it
 * (get_network_output), so its forward is the identity; its options are kept for training:
 * type (sse | masked | smooth | L1 | seg | wgan), scale (1), ratio (0).
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';

export const COST_TYPES = ['sse', 'masked', 'smooth', 'L1', 'seg', 'wgan'] as const;

export class CostLayer extends Layer {
  readonly kind = 'cost';
  readonly options: { type: (typeof COST_TYPES)[number]; scale: number; ratio: number };

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.options = {
      type: s.choice('type', COST_TYPES, 'sse'),
      scale: s.float('scale', 1),
      ratio: s.float('ratio', 0),
    };
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'cost', filters: this.options.type, size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return x;
  }
}

export const build = (ctx: BuildContext): CostLayer => new CostLayer(ctx);
