/**
 * The YOLO losses behind one interface, for the trainer:
 *
 * ```ts
 * const yl = lossFromNetwork(net, { kind: 'darknet' });            // or { kind: 'yolov5', hyp }
 * const tape = newTape();
 * const out = tape.record(() => {
 *   const outs = net.forward(x, { mode: 'train', keep: yl.headSources });
 *   return yl.compute(yl.headInputs(outs), truths);               // truths: Truth[][] per image
 * });
 * tape.backward(out.loss);                                          // gradients into every parameter
 * opt.step({ gradScale: yl.gradScale(batch) });                      // the reference trainer's step
 * const v = await out.read();                                       // later / asynchronously: loss, items, stats
 * out.dispose(); tape.dispose();
 * ```
 *
 * `compute` takes the head *inputs* (the head convolutions' outputs, pre-activation) in cfg order, records
 * one tape node whose backward writes the gradient the loss kernels computed in the forward (scaled by the
 * upstream gradient), and returns the loss [1] (recorded), the items [box, obj, cls] and per-head sums as
 * GPU tensors (never read back unless asked), and the CPU-side assignment statistics.
 *
 * Loss scale and the optimizer (see docs/losses.md):
 * - 'darknet': loss = Σ over the batch of the implied loss, dL/dz = -delta (Darknet's l.delta, summed over
 *   images, times AlexeyAB's delta_normalizer). Darknet accumulates weight_updates = -dL/dW over the
 *   `batch` images of an update (batch = [net] batch = mini-batch × subdivisions) and steps
 *   w += lr/batch · updates: SGD with gradScale = 1/batch, momentum, decay on weights only, reproduces it.
 * - 'yolov5': loss = (lbox + lobj + lcls) · bs exactly as ComputeLoss returns it; yolov5 train.py steps
 *   SGD on that gradient (gradScale 1), accumulating ceil(64 / bs) batches between steps.
 */
import type { Network } from '../darknet/network.js';
import type { LossKind, YoloLoss } from './loss_common.js';
import { DarknetLoss, type DarknetLossOptions } from './loss_darknet.js';
import { V5Loss, type V5Hyp } from './loss_v5.js';
import { RegionLoss } from './loss_region.js';
import { GaussianYoloLoss, type GaussianHeadConfig } from './loss_gaussian.js';
import { TrainError } from '../train/types.js';

export type { Truth } from './targets.js';
// The interface and result types (the losses' plumbing, finishLoss / checkHead, is theirs: loss_common.ts).
export {
  HEAD_ROWS,
  type LossItems, type HeadReadout, type LossReadout, type HeadStats, type LossStats, type ComputeOptions, type LossOutput,
  type LossKind, type YoloLoss, type HeadPart,
} from './loss_common.js';

export interface LossFromNetworkOptions {
  kind: LossKind;
  /** yolov5 hyperparameters (defaults: hyp.scratch-low gains, see V5_DEFAULT_HYP) */
  hyp?: Partial<V5Hyp>;
  /** darknet: flavor and overrides (see DarknetLossOptions) */
  darknet?: DarknetLossOptions;
  /** darknet, a network of [Gaussian_yolo] heads: overrides of their options (all heads) */
  gaussian?: Partial<GaussianHeadConfig>;
}

/**
 * The loss of a network with [yolo] heads, or with [Gaussian_yolo] heads (kind 'darknet': Darknet's Gaussian
 * YOLOv3 loss, src/yolo/loss_gaussian.ts). What no loss here trains is refused with a TrainError naming the
 * head's file:line: [Gaussian_yolo] with the yolov5 loss, [Gaussian_yolo] beside other heads.
 */
export function lossFromNetwork(net: Network, opts: LossFromNetworkOptions): YoloLoss {
  const gaussian = net.heads().filter((l) => l.kind === 'Gaussian_yolo');
  if (gaussian.length) {
    const g = gaussian[0];
    const other = net.heads().find((l) => l.kind !== 'Gaussian_yolo');
    const why = opts.kind !== 'darknet'
      ? `the ${opts.kind} loss has no Gaussian YOLOv3 form; train [Gaussian_yolo] heads with the darknet loss (AlexeyAB gaussian_yolo_layer.c)`
      : other ? `its network mixes [Gaussian_yolo] and ${other.section.label} heads (layer ${other.index}, ${other.where}); one loss trains one head kind` : null;
    if (why) throw new TrainError('config', `${g.where}: layer ${g.index} ${g.section.label} cannot be trained: ${why}`);
    return GaussianYoloLoss.fromNetwork(net, opts.gaussian);
  }
  const region = net.heads().filter((l) => l.kind === 'region');
  if (region.length) {
    // [region] (YOLOv2, YOLO9000 tree=): AlexeyAB's forward_region_layer loss (loss_region.ts)
    const g = region[0];
    const other = net.heads().find((l) => l.kind !== 'region');
    const why = opts.kind !== 'darknet'
      ? `the ${opts.kind} loss has no [region] form; train [region] heads with the darknet loss (AlexeyAB region_layer.c)`
      : other ? `its network mixes [region] and ${other.section.label} heads (layer ${other.index}, ${other.where}); one loss trains one head kind` : null;
    if (why) throw new TrainError('config', `${g.where}: layer ${g.index} ${g.section.label} cannot be trained: ${why}`);
    try {
      return RegionLoss.fromNetwork(net);
    } catch (e) {
      throw new TrainError('config', (e as Error).message);
    }
  }
  // [contrastive]: AlexeyAB's loss on the [yolo]'s embeddings, a part of the Darknet loss (loss_contrastive.ts)
  const c = net.layers.find((l) => l.kind === 'contrastive');
  if (c && opts.kind !== 'darknet') {
    throw new TrainError('config', `${c.where}: layer ${c.index} ${c.section.label} cannot be trained: the ${opts.kind} loss has no contrastive term; train it with the darknet loss (AlexeyAB softmax_layer.c forward_contrastive_layer)`);
  }
  if (opts.kind === 'darknet') return DarknetLoss.fromNetwork(net, opts.darknet);
  if (opts.kind === 'yolov5') return V5Loss.fromNetwork(net, opts.hyp);
  throw new Error(`unknown loss kind '${(opts as { kind: string }).kind}' (darknet, yolov5)`);
}
