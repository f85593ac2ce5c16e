/**
 * [route] (Darknet parse_route / make_route_layer / forward_route_layer): channel concatenation of the
 * outputs of `layers` (comma list; negative = relative to this layer, else absolute indices of earlier
 * layers), each contributing its group `group_id` of `groups` equal channel parts (AlexeyAB's CSP slicing).
 * All inputs must have the same width and height; each input's channels must be divisible by `groups`.
 * Output: w x h of the inputs, sum(c_i) / groups channels. No parameters, no BFLOPs.
 */
import { Layer, type BuildContext, type ForwardContext, shapeText } from '../darknet/layer.js';
import { concat } from '../tensor/ops/concat.js';
import type { DType, Tensor } from '../tensor/tensor.js';

export class RouteLayer extends Layer {
  readonly kind = 'route';
  readonly layers: number[];
  readonly groups: number;
  readonly groupId: number;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const refs = s.intList('layers');
    this.layers = refs.map((v) => ctx.ref('layers', v));
    this.groups = s.intMin('groups', 1, 1);
    this.groupId = s.intMin('group_id', 0, 0);
    if (this.groupId >= this.groups) throw s.error('group_id', `must be < groups=${this.groups}, got ${this.groupId}`);
    const shapes = this.layers.map((i) => ctx.layers[i].output);
    const first = shapes[0];
    let c = 0;
    this.layers.forEach((li, k) => {
      const sh = shapes[k];
      if (sh.w !== first.w || sh.h !== first.h) {
        throw s.error('layers', `inputs have different sizes: layer ${this.layers[0]} outputs ${shapeText(first)}, layer ${li} outputs ${shapeText(sh)}`);
      }
      if (sh.c % this.groups !== 0) throw s.error('groups', `layer ${li} has ${sh.c} channels, not divisible by groups=${this.groups}`);
      c += sh.c;
    });
    this.sources = this.layers;
    this.output = { c: c / this.groups, h: first.h, w: first.w };
  }

  override describe(): { type: string; filters: string; size: string } {
    const g = this.groups > 1 ? ` ${this.groupId}/${this.groups}` : '';
    return { type: 'route', filters: `${this.layers.join(', ')}${g}`, size: '' };
  }

  /** f16 slices are copied as they are (buffer copies, or the concat kernel's f16 variant). */
  override inferStorage(precision: DType): DType {
    return precision;
  }

  forward(inputs: Tensor[], _ctx: ForwardContext): Tensor {
    return concat(inputs, { groups: this.groups, groupId: this.groupId });
  }
}

export const build = (ctx: BuildContext): RouteLayer => new RouteLayer(ctx);
