/**
 * [yolo] (AlexeyAB parse_yolo / make_yolo_layer / forward_yolo_layer): the YOLOv3/v4/v7 head. Its input is
 * the head convolution's output [B, n*(5+classes), H, W] (n = anchors in `mask`); the forward produces
 * Darknet's l.output: logistic on x, y, objectness and classes (nothing when new_coords=1: that head's
 * conv already ends in logistic), w and h raw, then x, y scaled by scale_x_y with bias -0.5*(scale_x_y-1).
 * Channel a*(5+classes)+k = anchor mask[a], entry k (0 x, 1 y, 2 w, 3 h, 4 obj, 5.. classes).
 * Box decoding, thresholds, NMS and the loss live elsewhere (src/yolo); every training / NMS key is parsed
 * into `options` for them.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { headActivation } from '../tensor/ops/yolo_act.js';
import type { DType, Tensor } from '../tensor/tensor.js';
import { MAX_ANCHORS, MAX_CLASSES } from '../util/validate.js';

export const IOU_LOSSES = ['mse', 'iou', 'giou', 'diou', 'ciou'] as const;
export const NMS_KINDS = ['default', 'greedynms', 'diounms', 'cornersnms'] as const;

/** The keys [yolo] and [Gaussian_yolo] share (Darknet parse_yolo / parse_gaussian_yolo): readHeadOptions. */
export interface HeadOptions {
  classes: number;
  /** Total anchors (num). */
  total: number;
  mask: number[];
  /** All anchors as (w, h) pairs in network-input pixels (2*num values, more if mask reaches past num). */
  anchors: number[];
  scaleXY: number;
  jitter: number;
  resize: number;
  ignoreThresh: number;
  truthThresh: number;
  iouThresh: number;
  iouThreshKind: string;
  iouLoss: (typeof IOU_LOSSES)[number];
  iouNormalizer: number;
  clsNormalizer: number;
  objNormalizer: number;
  deltaNormalizer: number;
  nmsKind: (typeof NMS_KINDS)[number];
  betaNms: number;
  maxBoxes: number;
  maxDelta: number;
  labelSmoothEps: number;
  objectnessSmooth: boolean;
  random: number;
  countersPerClass: number[] | null;
}

export interface YoloOptions extends HeadOptions {
  newCoords: boolean;
  focalLoss: boolean;
  /** embedding_layer (absolute index): its output [B, n*E, H, W] at this head's grid gives each detection an embedding */
  embeddingLayer: number | null;
  /** E: the embedding layer's channels / the anchors (Darknet le.n / l.n); 0 without embedding_layer */
  embeddingSize: number;
  track: { historySize: number; simThresh: number; detsForTrack: number; detsForShow: number; ciouNorm: number };
}

/** Reads the keys every YOLO head shares, with Darknet's defaults (refuses map=). */
export function readHeadOptions(ctx: BuildContext): HeadOptions {
  const s = ctx.section;
  const classes = s.intRange('classes', 0, MAX_CLASSES, 20);
  const total = s.intRange('num', 1, MAX_ANCHORS, 1);
  const mask = s.has('mask') ? s.intList('mask') : [...Array(total).keys()];
  const anchors = readAnchors(ctx, s.floatList('anchors', []), total, mask);
  if (s.has('map')) throw s.error('map', 'class maps (map=) are not supported');
  const cpc = s.has('counters_per_class') ? s.intList('counters_per_class') : null;
  if (cpc && cpc.length !== classes) throw s.error('counters_per_class', `has ${cpc.length} values, classes=${classes}`);
  return {
    classes, total, mask, anchors,
    scaleXY: s.float('scale_x_y', 1),
    jitter: s.float('jitter', 0.2),
    resize: s.float('resize', 1),
    ignoreThresh: s.float('ignore_thresh', 0.5),
    truthThresh: s.float('truth_thresh', 1),
    iouThresh: s.float('iou_thresh', 1),
    iouThreshKind: s.choice('iou_thresh_kind', ['iou', 'giou', 'diou', 'ciou'], 'iou'),
    iouLoss: s.choice('iou_loss', IOU_LOSSES, 'mse'),
    iouNormalizer: s.float('iou_normalizer', 0.75),
    clsNormalizer: s.float('cls_normalizer', 1),
    objNormalizer: s.float('obj_normalizer', 1),
    deltaNormalizer: s.float('delta_normalizer', 1),
    nmsKind: s.choice('nms_kind', NMS_KINDS, 'default'),
    betaNms: s.float('beta_nms', 0.6),
    maxBoxes: s.intMin('max', 1, 200),
    maxDelta: s.float('max_delta', 3.4028234663852886e38),
    labelSmoothEps: s.float('label_smooth_eps', 0),
    objectnessSmooth: s.flag('objectness_smooth'),
    random: s.float('random', 0),
    countersPerClass: cpc,
  };
}

/**
 * The anchors a head uses. Darknet reads at most 2*num values and keeps its initial 0.5 for missing ones
 * (warning). A mask index >= num makes Darknet read past its anchor array (undefined behaviour): if the
 * cfg lists that many pairs they are used, with a warning; otherwise it is an error.
 */
export function readAnchors(ctx: BuildContext, listed: number[], total: number, mask: number[]): number[] {
  const s = ctx.section;
  const key = s.has('anchors') ? 'anchors' : undefined;
  const maxMask = Math.max(...mask, total - 1);
  mask.forEach((m) => {
    if (m < 0) throw s.error('mask', `anchor index ${m} is negative`);
    if (m >= total && 2 * m + 1 >= listed.length) throw s.error('mask', `anchor index ${m} is outside 0..${total - 1} (num=${total}) and the anchors list has only ${Math.floor(listed.length / 2)} pairs`);
  });
  if (maxMask >= total) {
    ctx.warn('mask', `uses anchor ${maxMask} but num=${total}: Darknet reads past its ${total} anchors here (undefined behaviour); using the listed pair(s)`, 'mask-past-num');
  }
  const n = 2 * (maxMask + 1);
  const anchors = listed.slice(0, n);
  if (anchors.length < 2 * total) {
    ctx.warn(key, `has ${listed.length} anchor values for num=${total}; the missing ones are 0.5 (Darknet's initial value)`, 'few-anchors');
    while (anchors.length < 2 * total) anchors.push(0.5);
  } else if (listed.length > n) {
    ctx.warn(key, `has ${listed.length} anchor values for num=${total}; Darknet uses the first ${2 * total}`, 'extra-anchors');
  }
  return anchors;
}

export class YoloLayer extends Layer {
  readonly kind = 'yolo';
  /** A detection head (Network.heads()). */
  override readonly head = true;
  readonly options: YoloOptions;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const shared = readHeadOptions(ctx);
    const emb = s.has('embedding_layer') ? ctx.ref('embedding_layer', s.int('embedding_layer')) : null;
    this.options = {
      ...shared,
      newCoords: s.flag('new_coords'),
      focalLoss: s.flag('focal_loss'),
      embeddingLayer: emb,
      embeddingSize: 0,
      track: {
        historySize: s.int('track_history_size', 5),
        simThresh: s.float('sim_thresh', 0.8),
        detsForTrack: s.int('dets_for_track', 1),
        detsForShow: s.int('dets_for_show', 1),
        ciouNorm: s.float('track_ciou_norm', 0.01),
      },
    };
    const { mask, classes } = shared;
    const want = mask.length * (classes + 5);
    if (ctx.input.c !== want) {
      throw s.error(undefined, `expects ${mask.length} anchors x (5 + ${classes} classes) = ${want} input channels, the previous layer outputs ${ctx.input.c} (set filters=${want} in the [convolutional] before it)`);
    }
    if (emb !== null) {
      // Darknet get_embedding reads embedding_layer's output at this head's w, h with n*E channels, unchecked
      const eo = ctx.layers[emb].output;
      if (eo.h !== ctx.input.h || eo.w !== ctx.input.w) {
        throw s.error('embedding_layer', `layer ${emb} outputs ${eo.w} x ${eo.h} x ${eo.c}, not this head's grid ${ctx.input.w} x ${ctx.input.h} (Darknet would read its embeddings out of place)`);
      }
      this.options.embeddingSize = Math.floor(eo.c / mask.length);
      if (this.options.embeddingSize < 1) throw s.error('embedding_layer', `layer ${emb} has ${eo.c} channels, fewer than the ${mask.length} anchors (embedding size 0)`);
      if (eo.c % mask.length !== 0) ctx.warn('embedding_layer', `layer ${emb}'s ${eo.c} channels are not divisible by the ${mask.length} anchors (Darknet warns too); embedding size ${this.options.embeddingSize}`, 'emb-divisible');
    }
  }

  /** Anchors of this head (mask order), (w, h) pairs. */
  get maskAnchors(): [number, number][] {
    return this.options.mask.map((m) => [this.options.anchors[2 * m], this.options.anchors[2 * m + 1]]);
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'yolo', filters: '', size: '' };
  }

  /** The head activation kernel has the f16 variant (the detector decodes the head conv's output, cast to f32). */
  override inferStorage(precision: DType): DType {
    return precision;
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    const o = this.options;
    const E = o.classes + 5;
    return headActivation(x, {
      entries: E,
      xyLogistic: !o.newCoords,
      xyScale: o.scaleXY,
      xyBias: -0.5 * (o.scaleXY - 1),
      actFrom: o.newCoords ? E : 4,
      actTo: E,
    });
  }
}

export const build = (ctx: BuildContext): YoloLayer => new YoloLayer(ctx);
