/**
 * [reorg] (AlexeyAB reorg_old_layer.c = pjreddie reorg_layer.c): YOLOv2's passthrough. Output shape
 * w/s x h/s x c*s^2 (reverse=1: w*s x h*s x c/s^2), computed as reorg_cpu(input, w, h, c, batch, s,
 * reverse) exactly like Darknet: the input memory is read as [c/s^2][h*s][w*s], which is NOT a plain
 * space-to-depth; weights trained with Darknet (and OpenCV's importer) expect this order.
 * Keys: stride (1), reverse (0), extra (0; pjreddie's reorg_layer.c, go.cfg: with extra = k > 0 the layer
 * outputs every image's values flattened followed by k zeros, a flat output of w*h*c + k values, and
 * ignores stride; see reorgExtra). Refused: flatten (pjreddie's NCHW -> NHWC transpose mode: no cfg of the
 * corpus uses it), extra with reverse (pjreddie's backward then runs the reverse reorg on a padded delta).
 *
 * [reorg3d] (AlexeyAB reorg_layer.c) is the plain space-to-depth: reorg_cpu(input, w/s, h/s, c*s^2, ...),
 * see reorg3d.ts (same class, `kind` 'reorg3d'; reverse is refused there: Darknet's reverse indexing of
 * [reorg3d] is inconsistent).
 */
import { Layer, type BuildContext, type ForwardContext, refuseNonzero, idiv } from '../darknet/layer.js';
import { reorg, reorgExtra, type ReorgCall } from '../tensor/ops/reorg.js';
import type { Tensor } from '../tensor/tensor.js';

/** One class for both kinds; `K` keeps the kind literal so the registry's AnyLayer union narrows on it. */
export class ReorgLayer<K extends 'reorg' | 'reorg3d' = 'reorg' | 'reorg3d'> extends Layer {
  readonly kind: K;
  readonly stride: number;
  readonly reverse: boolean;
  /** pjreddie's extra= (0: none): values appended to every image's flattened input. */
  readonly extra: number;

  constructor(ctx: BuildContext, kind: K) {
    super(ctx);
    this.kind = kind;
    const s = ctx.section;
    ctx.requireImage();
    refuseNonzero(ctx, kind === 'reorg' ? { flatten: "pjreddie's reorg flatten mode (flatten)" } : { extra: "pjreddie's reorg with extra values (extra, a [reorg] key)", flatten: "pjreddie's reorg flatten mode (flatten)" });
    this.stride = s.intMin('stride', 1, 1);
    this.reverse = s.flag('reverse');
    this.extra = kind === 'reorg' ? s.intRange('extra', 0, 1 << 24, 0) : 0;
    if (this.extra > 0) {
      if (this.reverse) throw s.error('extra', "extra with reverse=1 is not supported (pjreddie's forward pads, its backward runs the reverse reorg)");
      const { c, h, w } = ctx.input;
      this.output = { c: c * h * w + this.extra, h: 1, w: 1 };
      this.outputIsImage = false;
      return;
    }
    if (kind === 'reorg3d' && this.reverse) throw s.error('reverse', "reverse [reorg3d] is not supported (Darknet's reverse indexing is inconsistent for it)");
    const { c, h, w } = ctx.input;
    const k = this.stride;
    if (this.reverse) {
      if (c % (k * k) !== 0) throw s.error('stride', `${c} channels are not divisible by stride^2=${k * k}`);
      this.output = { c: c / (k * k), h: h * k, w: w * k };
    } else {
      if (h % k !== 0 || w % k !== 0) throw s.error('stride', `the ${w} x ${h} input is not divisible by stride ${k}`);
      if (kind === 'reorg' && c % (k * k) !== 0) throw s.error('stride', `${c} channels are not divisible by stride^2=${k * k} (Darknet's reorg reads the input as [c/s^2][h*s][w*s])`);
      this.output = { c: c * k * k, h: idiv(h, k), w: idiv(w, k) };
    }
  }

  call(): ReorgCall {
    const { c, h, w } = this.input;
    if (this.kind === 'reorg') return { W: w, H: h, C: c, stride: this.stride, forward: this.reverse ? 1 : 0 };
    const o = this.output;
    return { W: o.w, H: o.h, C: o.c, stride: this.stride, forward: 0 };
  }

  override describe(): { type: string; filters: string; size: string } {
    if (this.extra) return { type: this.kind, filters: `+${this.extra}`, size: '' };
    return { type: this.kind, filters: '', size: `/${this.stride}` };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    if (this.extra) return reorgExtra(x, this.extra);
    const o = this.output;
    return reorg(x, [x.shape[0], o.c, o.h, o.w], this.call());
  }
}

export const build = (ctx: BuildContext): ReorgLayer<'reorg'> => new ReorgLayer(ctx, 'reorg');
