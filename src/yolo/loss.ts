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
}

/**
 * The loss of a network with [yolo] heads. A network with a head no loss here trains ([Gaussian_yolo]) is
 * refused with a TrainError naming the head's file:line (Layer.trainingUnsupported).
 */
export function lossFromNetwork(net: Network, opts: LossFromNetworkOptions): YoloLoss {
  for (const l of net.heads()) {
    const why = l.kind === 'Gaussian_yolo' ? l.trainingUnsupported() : null;
    if (why) throw new TrainError('config', `${l.where}: layer ${l.index} ${l.section.label} cannot be trained: ${why}`);
  }
  if (opts.kind === 'darknet') return DarknetLoss.fromNetwork(net, opts.darknet);
  if (opts.kind === 'yolov5') return V5Loss.fromNetwork(net, opts.hyp);
  throw new Error(`unknown loss kind '${(opts as { kind: string }).kind}' (darknet, yolov5)`);
}
