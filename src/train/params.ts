/**
 * What a network trains and the optimizer over it: every parameter and batchnorm statistic with its
 * optimizer view (weight decay on conv/connected weights only, Darknet's per-layer learning_rate scale,
 * dont_update layers and the frozen prefix left out), the bias group stepped separately when the schedule
 * gives it its own rate (yolov5's warm-up), and the optimizer from the [net] section or the caller's settings.
 */
import type { Network } from '../darknet/network.js';
import type { Layer, ParamRole } from '../darknet/layer.js';
import type { Tensor } from '../tensor/tensor.js';
import { Adam, AdamW, SGD, type OptimParam, type Optimizer } from './optim.js';
import { darknetHyper } from './schedule.js';
import { TrainError, type OptimizerKind, type OptimizerSettings } from './types.js';

export interface NetworkParam {
  /** `<layer index>.<param name>`, unique */
  key: string;
  layer: Layer;
  name: string;
  tensor: Tensor;
  trainable: boolean;
  /** weight decay applies (conv/connected weights) */
  decay: boolean;
  /** Darknet per-layer learning_rate scale */
  lrScale: number;
  /** Ultralytics parameter group: weights (decay), bn (scales, no decay), bias (no decay); buffer: statistics */
  group: ParamRole;
}

/**
 * Every parameter and batchnorm statistic of a network prepared for training, in .weights order (layer
 * order, then the layer's ParamSpec order): Network.parameters('train') with the optimizer's view of each.
 */
export function networkParams(net: Network): NetworkParam[] {
  return net.parameters('train').map(({ key, layer, name, tensor, role }) => {
    const trainable = role !== 'buffer' && tensor.requiresGrad;
    return { key, layer, name, tensor, trainable, decay: role === 'weights', lrScale: layer.common?.learningRateScale ?? 1, group: role };
  });
}

/** TrainError naming the file:line of the first layer that cannot be trained (Layer.trainingUnsupported). */
export function refuseUntrainable(net: Network): void {
  for (const l of net.layers) {
    const why = l.trainingUnsupported();
    if (why) throw new TrainError('config', `${l.where}: layer ${l.index} ${l.section.label} cannot be trained: ${why}`);
  }
}

/** The optimizer's parameters, in .weights order, and the same split into the bias group and the rest. */
export interface OptimParamGroups {
  all: OptimParam[];
  bias: OptimParam[];
  other: OptimParam[];
}

/**
 * The trainable parameters as the optimizer sees them. Parameters of `dont_update=1` layers and of the
 * layers below `frozen` (src/train/freeze.ts: --freeze, stopbackward=1, train_only_bn) are frozen here:
 * requiresGrad and trainable turned off, so the tape records nothing that reaches only them and they get
 * no gradient, no update and no weight decay. Throws when nothing is left to train.
 */
export function optimParams(params: readonly NetworkParam[], file: string, frozen = 0): OptimParamGroups {
  const g: OptimParamGroups = { all: [], bias: [], other: [] };
  for (const p of params) {
    if (!p.trainable) continue;
    if (p.layer.common?.dontUpdate || p.layer.index < frozen) {
      p.tensor.requiresGrad = false;
      p.trainable = false;
      continue;
    }
    const op: OptimParam = { param: p.tensor, decay: p.decay, lrScale: p.lrScale };
    g.all.push(op);
    (p.group === 'bias' ? g.bias : g.other).push(op);
  }
  if (!g.all.length) throw new TrainError('config', `${file}: nothing to train (no trainable parameters)`);
  return g;
}

/** SGD / Adam / AdamW with the settings given, the rest from [net] (momentum, decay, B1, B2, eps). */
export function buildOptimizer(kind: OptimizerKind, params: OptimParam[], s: OptimizerSettings, net: Network): Optimizer {
  const h = darknetHyper(net.net);
  const lr = s.lr ?? h.schedule.learningRate;
  const decay = s.decay ?? h.decay;
  if (kind === 'sgd') return new SGD(params, { lr, momentum: s.momentum ?? h.momentum, decay, nesterov: s.nesterov ?? false });
  const beta1 = s.beta1 ?? h.adam?.beta1 ?? 0.9;
  const beta2 = s.beta2 ?? h.adam?.beta2 ?? 0.999;
  const eps = s.eps ?? h.adam?.eps ?? 1e-8;
  if (kind === 'adam') return new Adam(params, { lr, decay, beta1, beta2, eps });
  if (kind === 'adamw') return new AdamW(params, { lr, decay, beta1, beta2, eps });
  throw new TrainError('config', `unknown optimizer '${String(kind)}' (sgd, adam, adamw)`);
}
