/**
 * [shortcut] (AlexeyAB parse_shortcut / make_shortcut_layer / shortcut_multilayer_cpu): output =
 * act(previous + from) where the two share positions, act(previous) elsewhere; shaped like the previous
 * layer. With equal width/height and different channel counts, only the shared (first min(c)) channels
 * get the sum. Different widths/heights (pjreddie's ResNet cfgs; AlexeyAB asserts equal sizes) follow
 * pjreddie's shortcut_cpu: every stride-th position of the larger / sample-th of the smaller, with a
 * warning.
 *
 * Keys: from (one layer; negative = relative), activation (linear). Refused: several `from` layers,
 * weights_type other than none (per_feature / per_channel weighted sums), weights_normalization.
 * BFLOPs (Darknet): out_w * out_h * out_c * n / 1e9 (n = number of `from` layers).
 */
import { Layer, type BuildContext, type ForwardContext, readActivation, shapeText } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { shortcut, shortcutGeometry } from '../tensor/ops/shortcut.js';
import type { DType, Tensor } from '../tensor/tensor.js';

export class ShortcutLayer extends Layer {
  readonly kind = 'shortcut';
  readonly from: number;
  readonly activation: Activation;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const froms = s.intList('from');
    if (froms.length !== 1) throw s.error('from', `shortcut of ${froms.length} layers is not supported (one layer only)`);
    this.from = ctx.ref('from', froms[0]);
    this.activation = readActivation(ctx, 'linear');
    const wt = s.str('weights_type', 'none');
    if (wt !== 'none') throw s.error('weights_type', `weighted shortcut '${wt}' is not supported (only none)`);
    const wn = s.str('weights_normalization', 'none');
    if (wn !== 'none') throw s.error('weights_normalization', `'${wn}' is not supported (only none)`);
    if (ctx.index === 0) throw s.error(undefined, 'cannot be the first layer (it adds to the previous layer)');
    const from = ctx.layers[this.from].output;
    const a = ctx.input;
    if (from.w !== a.w || from.h !== a.h) {
      // pjreddie's shortcut_cpu resamples (shortcutGeometry)
      const sg = shortcutGeometry(a, from);
      if (!sg) throw s.error('from', `layer ${this.from} outputs ${shapeText(from)}, the previous layer ${shapeText(a)}: the width and height ratios differ`);
      ctx.warn('from', `adds layer ${this.from} (${shapeText(from)}) to ${shapeText(a)} with ${sg.stride > 1 ? `stride ${sg.stride}` : `sample ${sg.sample}`} (pjreddie's shortcut semantics; AlexeyAB asserts equal sizes)`, 'resampled');
    }
    this.sources = [ctx.index - 1, this.from];
    this.output = { ...ctx.input };
  }

  override bflops(): number {
    return Math.fround((this.output.w * this.output.h * this.output.c * 1) / 1e9);
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'shortcut', filters: `${this.from}`, size: '' };
  }

  /** The shortcut kernel has the f16 variant. */
  override inferStorage(precision: DType): DType {
    return precision;
  }

  forward([a, b]: Tensor[], _ctx: ForwardContext): Tensor {
    return shortcut(a, b, { activation: this.activation });
  }
}

export const build = (ctx: BuildContext): ShortcutLayer => new ShortcutLayer(ctx);
