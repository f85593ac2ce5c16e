/**
 * [contrastive] (AlexeyAB parse_contrastive / make_contrastive_layer / forward_contrastive_layer,
 * softmax_layer.c): the training-only contrastive loss on the per-anchor embeddings of a [yolo] head
 * (yolov4-tiny_contrastive.cfg). Its input is the embedding layer's output [B, n*E, H, W] (the same layer
 * as the [yolo]'s embedding_layer; n = the [yolo]'s anchors, E = the embedding size, channel a*E + e =
 * anchor a, entry e). At inference it does nothing: Darknet's GPU forward copies its input to its output
 * (forward_contrastive_layer_gpu), the CPU forward returns before writing l.output (left at zero), and
 * nothing reads it. Here: the identity. No normalisation: the detections' embeddings are the raw values
 * of the embedding layer (yolo_layer.c get_yolo_detections_batch, get_embedding).
 *
 * Keys: yolo_layer (required: Darknet dereferences a null layer without it; must be a [yolo] with
 * embedding_layer, the same embedding size, the same grid), temperature (1), cls_normalizer (1), max_delta
 * (FLT_MAX), contrastive_neg_max (3); classes is read by Darknet and then replaced by the [yolo]'s.
 * The loss (the deltas it adds to its input's gradient in training) is src/yolo/loss_contrastive.ts.
 * Like [cost] and [softmax], Darknet leaves out_w/out_h/out_c at 0: no image for a next layer.
 * Input channels not divisible by n: Darknet warns and reads each image's embeddings with the real channel
 * count but writes its deltas with n*E channels per image (out of place past image 0); here both use the
 * real count.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';
import { YoloLayer } from './yolo.js';

const FLT_MAX = 3.4028234663852886e38;

export interface ContrastiveOptions {
  /** The [yolo] layer whose truth assignment labels the embeddings (absolute index). */
  yoloLayer: number;
  /** Anchors per cell (the [yolo]'s mask length) and the embedding size E = c / n. */
  n: number;
  embeddingSize: number;
  /** Darknet `classes` as written (no effect: Darknet replaces it by the [yolo]'s classes). */
  classesKey: number;
  temperature: number;
  clsNormalizer: number;
  maxDelta: number;
  negMax: number;
}

export class ContrastiveLayer extends Layer {
  readonly kind = 'contrastive';
  readonly options: ContrastiveOptions;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    // Darknet: yolo_layer absent, 0, or relative to layer 0 leaves a null layer (dereferenced: a crash)
    const yi = s.has('yolo_layer') ? ctx.ref('yolo_layer', s.int('yolo_layer')) : 0;
    if (yi === 0) {
      throw s.error(s.has('yolo_layer') ? 'yolo_layer' : undefined, 'needs yolo_layer= naming the [yolo] layer whose truths label the embeddings (Darknet dereferences a null layer without it)');
    }
    const y = ctx.layers[yi];
    if (!(y instanceof YoloLayer)) throw s.error('yolo_layer', `layer ${yi} is a [${y.kind}], not a [yolo] layer (Darknet: "[contrastive] layer should point to the [yolo] layer")`);
    const yo = y.options;
    const n = yo.mask.length;
    if (yo.embeddingLayer === null) {
      throw s.error('yolo_layer', `the [yolo] layer ${yi} (${y.where}) has no embedding_layer= (Darknet: its embedding_size 0 differs from this layer's)`);
    }
    const inp = ctx.input;
    if (inp.h !== y.input.h || inp.w !== y.input.w) {
      throw s.error('yolo_layer', `input ${inp.w} x ${inp.h} is not the [yolo] layer ${yi}'s grid ${y.input.w} x ${y.input.h} (Darknet indexes both with one cell index)`);
    }
    const E = Math.floor(inp.c / n);
    const yoloE = Math.floor(ctx.layers[yo.embeddingLayer].output.c / n);
    if (E !== yoloE || E < 1) {
      throw s.error('yolo_layer', `embedding size ${E} (${inp.c} input channels / ${n} anchors) is not the [yolo] layer ${yi}'s ${yoloE} (layer ${yo.embeddingLayer}): both should read the same [convolutional] layer`);
    }
    if (inp.c % n !== 0) ctx.warn(undefined, `${inp.c} input channels are not divisible by the ${n} anchors of the [yolo] layer ${yi}; the last ${inp.c % n} are not used`, 'emb-divisible');
    this.options = {
      yoloLayer: yi,
      n,
      embeddingSize: E,
      classesKey: s.int('classes', 1000),
      temperature: s.float('temperature', 1),
      clsNormalizer: s.float('cls_normalizer', 1),
      maxDelta: s.float('max_delta', FLT_MAX),
      negMax: s.int('contrastive_neg_max', 3),
    };
    if (!(this.options.temperature > 0)) throw s.error('temperature', `must be > 0 (got ${this.options.temperature}; Darknet stops with "temperature == 0")`);
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'contrastive', filters: `${this.options.n} x ${this.options.embeddingSize}`, size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return x;
  }
}

export const build = (ctx: BuildContext): ContrastiveLayer => new ContrastiveLayer(ctx);
