/**
 * [detection] (Darknet parse_detection / forward_detection_layer): the YOLOv1 head over a flat input of
 * side*side*((1+coords)*num + classes) values laid out as [class probabilities of every cell]
 * [confidences][boxes]. The forward applies softmax to each cell's classes when softmax=1 and leaves the
 * rest raw (sqrt and the other keys are for decoding / training, kept in `options`).
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { softmaxRows } from '../tensor/ops/softmax.js';
import type { Tensor } from '../tensor/tensor.js';
import { MAX_ANCHORS } from '../util/validate.js';

export interface DetectionOptions {
  classes: number;
  coords: number;
  num: number;
  side: number;
  rescore: boolean;
  softmax: boolean;
  sqrt: boolean;
  maxBoxes: number;
  forced: number;
  reorg: boolean;
  jitter: number;
  resize: number;
  random: number;
  coordScale: number;
  objectScale: number;
  noobjectScale: number;
  classScale: number;
}

export class DetectionLayer extends Layer {
  readonly kind = 'detection';
  /** A detection head (Network.heads()). */
  override readonly head = true;
  readonly options: DetectionOptions;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.options = {
      coords: s.intMin('coords', 0, 1),
      classes: s.intMin('classes', 0, 1),
      rescore: s.flag('rescore'),
      num: s.intRange('num', 1, MAX_ANCHORS, 1),
      side: s.intMin('side', 1, 7),
      softmax: s.flag('softmax'),
      sqrt: s.flag('sqrt'),
      maxBoxes: s.intMin('max', 1, 200),
      coordScale: s.float('coord_scale', 1),
      forced: s.int('forced', 0),
      objectScale: s.float('object_scale', 1),
      noobjectScale: s.float('noobject_scale', 1),
      classScale: s.float('class_scale', 1),
      jitter: s.float('jitter', 0.2),
      resize: s.float('resize', 1),
      random: s.float('random', 0),
      reorg: s.flag('reorg'),
    };
    const o = this.options;
    const want = o.side * o.side * ((1 + o.coords) * o.num + o.classes);
    const got = ctx.input.c * ctx.input.h * ctx.input.w;
    if (want !== got) {
      throw s.error(undefined, `expects side^2 x ((1 + coords) x num + classes) = ${o.side}^2 x ((1 + ${o.coords}) x ${o.num} + ${o.classes}) = ${want} inputs, the previous layer outputs ${got}`);
    }
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'detection', filters: '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    const o = this.options;
    if (!o.softmax || o.classes === 0) return x;
    const B = x.shape[0];
    const per = x.size / B;
    return softmaxRows(x, { rows: B * o.side * o.side, n: o.classes, c0: o.side * o.side, s0: o.classes, s2: per });
  }
}

export const build = (ctx: BuildContext): DetectionLayer => new DetectionLayer(ctx);
