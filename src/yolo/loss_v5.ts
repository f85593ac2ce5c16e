import type { Network } from '../darknet/network.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Truth } from './targets.js';
import type { ComputeOptions, LossOutput, YoloLoss } from './loss.js';
export interface V5Hyp { box: number; obj: number; cls: number; cls_pw: number; obj_pw: number; anchor_t: number; fl_gamma: number; label_smoothing: number }
export class V5Loss implements YoloLoss {
  readonly kind = 'yolov5' as const;
  readonly headSources: number[] = [];
  static fromNetwork(net: Network, hyp?: Partial<V5Hyp>): V5Loss { void net; void hyp; throw new Error('todo'); }
  headInputs(outs: Map<number, Tensor>): Tensor[] { void outs; return []; }
  compute(heads: Tensor[], truths: readonly (readonly Truth[])[], opts?: ComputeOptions): LossOutput { void heads; void truths; void opts; throw new Error('todo'); }
  gradScale(): number { return 1; }
}
