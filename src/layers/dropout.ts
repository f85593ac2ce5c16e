/**
 * [dropout] (Darknet parse_dropout / forward_dropout_layer): identity at inference (Darknet's output
 * pointer is the previous layer's). Keys kept for training: probability (.2), dropblock,
 * dropblock_size_rel, dropblock_size_abs. The training forward (random mask, scale 1/(1-p)) is not
 * implemented yet.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';

export class DropoutLayer extends Layer {
  readonly kind = 'dropout';
  readonly probability: number;
  readonly dropblock: { enabled: boolean; sizeRel: number; sizeAbs: number };

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.probability = s.float('probability', 0.2);
    if (this.probability < 0 || this.probability >= 1) throw s.error('probability', `must be in [0, 1), got ${this.probability}`);
    this.dropblock = { enabled: s.flag('dropblock'), sizeRel: s.float('dropblock_size_rel', 0), sizeAbs: s.float('dropblock_size_abs', 0) };
    this.outputIsImage = ctx.inputIsImage;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: this.dropblock.enabled ? 'dropblock' : 'dropout', filters: `p=${this.probability}`, size: '' };
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    if (ctx.mode === 'train' && this.probability > 0) throw new Error(`layer ${this.index} [dropout] (${this.where}): the training forward is not implemented yet`);
    return x;
  }
}

export const build = (ctx: BuildContext): Layer => new DropoutLayer(ctx);
