/** The YOLO losses of src/yolo/loss.ts on the trainer's loss seam (TrainLoss, src/train/types.ts). */
import type { YoloLoss } from '../yolo/loss.js';
import type { Truth } from '../yolo/targets.js';
import type { TrainLoss } from './types.js';

/**
 * Adapts a src/yolo/loss.ts YoloLoss (Darknet's [yolo] loss or YOLOv5's ComputeLoss): the head inputs
 * (the head convolutions' outputs), its gradScale, items box/obj/cls.
 */
export function yoloTrainLoss(yl: YoloLoss): TrainLoss<Truth> {
  return {
    headSources: yl.headSources,
    logitSources: yl.logitSources,
    gradScale: (images: number) => yl.gradScale(images),
    compute(heads, truths, ctx) {
      const out = yl.compute(heads, truths, { netSize: { w: ctx.network.input.w, h: ctx.network.input.h }, seen: ctx.seen });
      return { loss: out.loss, items: out.items, itemNames: ['box', 'obj', 'cls'], dispose: () => out.dispose() };
    },
  };
}
