/**
 * [sam] (AlexeyAB sam_layer.c, spatial attention module): output = act(previous * from) elementwise; the
 * two layers must have the same shape (Darknet asserts it). Keys: from (one layer), activation (linear).
 */
import { Layer, type BuildContext, type ForwardContext, readActivation, sameShape, shapeText } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { activation } from '../tensor/ops/activation.js';
import { mul } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';

export class SamLayer extends Layer {
  readonly kind = 'sam';
  readonly from: number;
  readonly activation: Activation;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const froms = s.intList('from');
    if (froms.length !== 1) throw s.error('from', `expects one layer, got ${froms.length}`);
    this.from = ctx.ref('from', froms[0]);
    this.activation = readActivation(ctx, 'linear');
    const f = ctx.layers[this.from].output;
    if (!sameShape(f, ctx.input)) throw s.error('from', `layer ${this.from} outputs ${shapeText(f)}, the previous layer ${shapeText(ctx.input)}: shapes must be equal`);
    this.sources = [ctx.index - 1, this.from];
    this.output = { ...f };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'sam', filters: `${this.from}`, size: '' };
  }

  forward([a, b]: Tensor[], _ctx: ForwardContext): Tensor {
    const y = mul(a, b);
    const z = activation(y, this.activation);
    if (z !== y && !Tape.current) y.dispose();
    return z;
  }
}

export const build = (ctx: BuildContext): SamLayer => new SamLayer(ctx);
