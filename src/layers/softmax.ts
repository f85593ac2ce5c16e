/**
 * [softmax] (Darknet parse_softmax / forward_softmax_layer): softmax over each of `groups` equal contiguous
 * parts of every image's flattened input, of x / temperature. Keys: groups (1), temperature (1), noloss
 * (kept for training). Refused: tree= (hierarchical softmax), spatial.
 * Darknet leaves the output's w/h/c unset (no image for a following layer).
 */
import { Layer, type BuildContext, type ForwardContext, refuseNonzero, shapeCount } from '../darknet/layer.js';
import { softmaxRows } from '../tensor/ops/softmax.js';
import type { Tensor } from '../tensor/tensor.js';

export class SoftmaxLayer extends Layer {
  readonly kind = 'softmax';
  readonly groups: number;
  readonly temperature: number;
  readonly noloss: boolean;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    if (s.has('tree')) throw s.error('tree', 'hierarchical softmax (tree=) is not supported');
    refuseNonzero(ctx, { spatial: 'spatial softmax (spatial)' });
    this.groups = s.intMin('groups', 1, 1);
    this.temperature = s.float('temperature', 1);
    if (!(this.temperature > 0)) throw s.error('temperature', `must be > 0, got ${this.temperature}`);
    this.noloss = s.flag('noloss');
    const n = shapeCount(ctx.input);
    if (n % this.groups !== 0) throw s.error('groups', `${n} inputs are not divisible by groups=${this.groups}`);
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'softmax', filters: this.groups > 1 ? `g${this.groups}` : '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    const B = x.shape[0];
    const per = x.size / B;
    const n = per / this.groups;
    return softmaxRows(x, { rows: B * this.groups, n, c0: this.groups, s0: n, s2: per, temperature: this.temperature });
  }
}

export const build = (ctx: BuildContext): SoftmaxLayer => new SoftmaxLayer(ctx);
