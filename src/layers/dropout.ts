/**
 * [dropout] (Darknet parse_dropout / forward_dropout_layer): identity at inference (Darknet's output
 * pointer is the previous layer's); in training each value is dropped with `probability` (.2) and the kept
 * ones scaled by 1/(1-p) (src/tensor/ops/dropout.ts; the mask is a function of the forward's seed and the
 * layer index). DropBlock (dropblock=1, dropblock_size_rel/abs) is refused in training.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';
import { dropout } from '../tensor/ops/dropout.js';

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
    if (ctx.mode !== 'train' || this.probability === 0) return x;
    if (this.dropblock.enabled) throw new Error(`layer ${this.index} [dropout] (${this.where}): DropBlock (dropblock=1) training is not implemented; plain dropout is`);
    return dropout(x, this.probability, (Math.imul((ctx.seed ?? 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(this.index + 1, 0x27d4eb2d)) | 0);
  }
}

export const build = (ctx: BuildContext): DropoutLayer => new DropoutLayer(ctx);
