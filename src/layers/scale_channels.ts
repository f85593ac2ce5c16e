/**
 * [scale_channels] (AlexeyAB scale_channels_layer.c): output = act(previous (broadcast) * from), shaped
 * like `from`. The previous layer is c x 1 x 1 with c = from's channels (squeeze-excitation), or with
 * scale_wh=1 it is 1 x h x w with from's width and height (spatial scale). Keys: from, scale_wh (0),
 * activation (linear).
 */
import { Layer, type BuildContext, type ForwardContext, readActivation, shapeText } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { activation } from '../tensor/ops/activation.js';
import { scaleChannels } from '../tensor/ops/scale_channels.js';
import type { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';

export class ScaleChannelsLayer extends Layer {
  readonly kind = 'scale_channels';
  readonly from: number;
  readonly scaleWh: boolean;
  readonly activation: Activation;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const froms = s.intList('from');
    if (froms.length !== 1) throw s.error('from', `expects one layer, got ${froms.length}`);
    this.from = ctx.ref('from', froms[0]);
    this.scaleWh = s.flag('scale_wh');
    this.activation = readActivation(ctx, 'linear');
    const f = ctx.layers[this.from].output;
    const p = ctx.input;
    const ok = this.scaleWh ? p.c === 1 && p.w === f.w && p.h === f.h : p.w === 1 && p.h === 1 && p.c === f.c;
    if (!ok) {
      const want = this.scaleWh ? `1 channel of ${f.w} x ${f.h}` : `${f.c} channels of 1 x 1`;
      throw s.error('from', `the previous layer outputs ${shapeText(p)}, expected ${want} to scale layer ${this.from} (${shapeText(f)})`);
    }
    this.sources = [ctx.index - 1, this.from];
    this.output = { ...f };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'scale_channels', filters: `${this.from}`, size: this.scaleWh ? 'wh' : '' };
  }

  forward([sc, f]: Tensor[], _ctx: ForwardContext): Tensor {
    const y = scaleChannels(sc, f, this.scaleWh);
    const z = activation(y, this.activation);
    if (z !== y && !Tape.current) y.dispose();
    return z;
  }
}

export const build = (ctx: BuildContext): ScaleChannelsLayer => new ScaleChannelsLayer(ctx);
