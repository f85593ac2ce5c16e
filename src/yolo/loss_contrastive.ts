/**
 * AlexeyAB's [contrastive] loss in detector mode (softmax_layer.c forward_contrastive_layer with a [yolo]
 * layer), part of the Darknet loss (loss_darknet.ts): the deltas it adds to the gradient of the embedding
 * layer's output, the [contrastive] layer's input.
 *
 * The samples are the cells Darknet's forward_yolo_layer labels (l.labels / l.class_ids): per image, each
 * truth Darknet reads (darknetTruths: `max`, x == 0, class range) labels its best anchor's cell when that
 * anchor is in the mask (not the iou_thresh extras) with its track id and class, a later truth of the same
 * cell overwriting. Then (kernels/contrastive.wgsl) the cosine similarity of every pair of samples of one
 * class and time step (time step = b / (batch / time_steps)), P of each pair, the positive (same track) and
 * negative (another track of the positive's class, at most contrastive_neg_max) gradients, cls_normalizer,
 * the max_delta clip. Darknet's delta convention (l.delta = -dL/demb); the loss value has no term for it
 * (Darknet's cost Σ delta² is the head readout's aux0, the other rows 0).
 *
 * Track ids come from the truths (Truth.track; the loader pairs images and sets them for [net]
 * contrastive=1); a truth without one gets an id of its own (no positive pair: it adds nothing).
 */
import type { Network } from '../darknet/network.js';
import type { Tensor } from '../tensor/tensor.js';
import { ContrastiveLayer } from '../layers/contrastive.js';
import type { YoloLayer } from '../layers/yolo.js';
import { contrastiveDeltas, type EmbeddingSample } from '../tensor/ops/contrastive.js';
import { bestAnchor, darknetTruths, type Truth } from './targets.js';
import type { HeadPart, HeadStats } from './loss_common.js';

export interface ContrastiveConfig {
  /** the [contrastive] layer (for messages) and the layer whose output it reads */
  layer: number;
  source: number;
  /** the [yolo] it reads the labels of: its index among the loss's [yolo] heads, and its geometry */
  head: number;
  mask: readonly number[];
  anchors: readonly number[];
  total: number;
  classes: number;
  maxBoxes: number;
  /** embedding size */
  E: number;
  temperature: number;
  clsNormalizer: number;
  maxDelta: number;
  negMax: number;
  /** Darknet l.steps ([net] time_steps): pairs only form within one of `steps` equal parts of the batch */
  steps: number;
}

/** The [contrastive] layers of a network, each with its [yolo] among `yolos` (the loss's heads in order). */
export function contrastiveConfigs(net: Network, yolos: readonly YoloLayer[]): ContrastiveConfig[] {
  return net.layers.filter((l): l is ContrastiveLayer => l instanceof ContrastiveLayer).map((l) => {
    const o = l.options;
    const head = yolos.findIndex((y) => y.index === o.yoloLayer);
    if (head < 0) throw new Error(`${l.where}: layer ${l.index} [contrastive]: yolo_layer ${o.yoloLayer} is not one of the loss's [yolo] heads`);
    const y = yolos[head].options;
    return {
      layer: l.index, source: l.sources[0], head,
      mask: [...y.mask], anchors: [...y.anchors], total: y.total, classes: y.classes, maxBoxes: y.maxBoxes,
      E: o.embeddingSize, temperature: o.temperature, clsNormalizer: o.clsNormalizer, maxDelta: o.maxDelta, negMax: o.negMax,
      steps: Math.max(1, net.net.timeSteps),
    };
  });
}

/**
 * Darknet's labelled samples of one batch (l.labels >= 0), in its sample order (b*n + a)*H*W + cell, with
 * their track id, class and time step. `net` is the network input size of this batch.
 */
export function contrastiveSamples(c: ContrastiveConfig, B: number, H: number, W: number, truths: readonly (readonly Truth[])[], net: { w: number; h: number }): EmbeddingSample[] {
  const A = c.mask.length;
  const byZ = new Map<number, EmbeddingSample>();
  // truths without a track id: ids past every given one
  let next = 1 + Math.max(-1, ...truths.flat().map((t) => (Number.isInteger(t.track) && t.track! >= 0 ? t.track! : -1)));
  const miniBatch = Math.max(1, Math.trunc(B / c.steps));
  const geom = { anchors: c.anchors, total: c.total, netW: net.w, netH: net.h };
  for (let b = 0; b < B; b++) {
    for (const tr of darknetTruths(truths[b] ?? [], c.maxBoxes, c.classes).kept) {
      const label = Number.isInteger(tr.track) && tr.track! >= 0 ? tr.track! : next++;
      const a = c.mask.indexOf(bestAnchor(tr, geom));
      if (a < 0) continue;
      // the cell as assignDarknet computes it (Darknet: (int)(truth.x * l.w) in float32)
      const i = Math.min(W - 1, Math.max(0, Math.trunc(Math.fround(Math.fround(tr.x) * W))));
      const j = Math.min(H - 1, Math.max(0, Math.trunc(Math.fround(Math.fround(tr.y) * H))));
      const cell = j * W + i;
      byZ.set((b * A + a) * H * W + cell, { b, a, cell, label, cls: tr.cls, step: Math.trunc(b / miniBatch) });
    }
  }
  return [...byZ.entries()].sort((p, q) => p[0] - q[0]).map(([, s]) => s);
}

/** The loss part of one [contrastive] layer: its deltas on `emb` (the layer's input) for this batch. */
export function contrastivePart(c: ContrastiveConfig, emb: Tensor, truths: readonly (readonly Truth[])[], net: { w: number; h: number }): { part: HeadPart; stats: HeadStats } {
  const [B, C, H, W] = emb.shape;
  if (emb.shape.length !== 4 || C < c.mask.length * c.E) throw new Error(`contrastive loss (layer ${c.layer}): input ${emb.describe()} is not [B, ${c.mask.length}*${c.E}, H, W]`);
  const samples = contrastiveSamples(c, B, H, W, truths, net);
  const { delta, partials } = contrastiveDeltas(emb, c.E, samples, c);
  return {
    part: { z: emb, grad: delta, gradFactor: -1, partials, cells: Math.max(1, samples.length) },
    stats: { assigned: samples.length, assignedCells: samples.length },
  };
}
