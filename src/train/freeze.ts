/**
 * Freezing: which layers get no gradient and no update, from `train --freeze N` and the cfg's Darknet keys.
 *
 *   --freeze N         Ultralytics (yolov5 train.py `--freeze`): layers 0..N-1 get requires_grad = False. Their
 *                      batchnorm still runs in train mode (model.train(): batch statistics, running statistics
 *                      updated), so their rolling_mean / rolling_variance change; every other parameter stays.
 *   train_only_bn=1    Darknet (parser.c set_train_only_bn) at layer T marks layers 0..T: no update at all
 *                      (network_kernels.cu update_network_gpu skips them), forward in train mode, so only the
 *                      BN statistics move: the same as --freeze T+1. (Darknet still back-propagates deltas
 *                      through them, to no effect; here nothing below is recorded.)
 *   stopbackward=1     Darknet (AlexeyAB, since 24bb6a8, 2021-06) at layer S (the last such layer counts): the
 *                      backward stops at S (backward_network_gpu breaks before S's backward), so layers 0..S
 *                      get no gradient. Layers 0..S-1 are built with l.train = 0 (parse_network_cfg_custom,
 *                      last_stop_backward): never updated, and their [convolutional] forward runs with
 *                      state.train = l.train = 0, i.e. batchnorm on the rolling statistics, which stay as
 *                      loaded (`rollingBn`). Layer S itself runs in train mode (its rolling statistics update);
 *                      Darknet still calls its update with a zero gradient (weight decay alone shrinks its
 *                      weights); here a parameter without a gradient is not stepped, so it stays as loaded.
 *   stopbackward=K>1   Darknet's GPU path: the backward stops at that layer while get_current_iteration < K
 *                      (the layers below train normally afterwards): `delayed`, applied per mini-batch by
 *                      `gradientCut`.
 *
 * What freezing does (src/train/trainer.ts, params.ts): the frozen parameters are not Tensor.param any more
 * (requiresGrad off), so the tape records no op of the frozen prefix and computes no gradient into it (the
 * first trained convolution skips its input gradient too); they are left out of the optimizer (no update,
 * no weight decay) and their EMA stays equal to them.
 */
import type { Network } from '../darknet/network.js';
import { TrainError } from './types.js';

export interface FreezePlan {
  /** Layers 0..frozen-1 never get a gradient or an update (0: nothing frozen). */
  readonly frozen: number;
  /**
   * Layers 0..rollingBn-1 are Darknet's frozen layers (in front of the last stopbackward=1): their
   * [convolutional] batchnorm normalizes with the rolling statistics and leaves them unchanged
   * (Network ForwardOptions.frozenBn). rollingBn <= frozen.
   */
  readonly rollingBn: number;
  /** stopbackward=K>1 layers at or above `frozen`: no gradient into layers 0..layer while the iteration < K. */
  readonly delayed: readonly { readonly layer: number; readonly until: number }[];
  /** What froze what, for the log (empty when nothing is frozen). */
  readonly reasons: readonly string[];
}

/** Layers holding parameters an optimizer would train (not shared, not dont_update). */
function trainableLayers(net: Network): number[] {
  return net.layers.filter((l) => l.params.length > 0 && !l.common?.dontUpdate && !l.trainingUnsupported()).map((l) => l.index);
}

/**
 * The freeze plan of a network for `freeze` (train --freeze N: layers 0..N-1) and its cfg's stopbackward /
 * train_only_bn keys. Throws a TrainError when `freeze` is not an integer in [0, layers] or when nothing
 * would be left to train. Needs no GPU (the cfg's layers only).
 */
export function freezePlan(net: Network, freeze = 0): FreezePlan {
  const n = net.layers.length;
  if (!(Number.isInteger(freeze) && freeze >= 0 && freeze <= n)) {
    throw new TrainError('config', `freeze ${freeze}: expected an integer in [0, ${n}] (the number of layers to freeze, from layer 0; ${net.file} has ${n} layers)`);
  }
  const reasons: string[] = [];
  let frozen = 0;
  let rollingBn = 0;
  if (freeze > 0) {
    frozen = freeze;
    reasons.push(`freeze ${freeze}: layers 0..${freeze - 1}`);
  }
  let lastStop = -1;
  let lastOnlyBn = -1;
  const delayed: { layer: number; until: number }[] = [];
  for (const l of net.layers) {
    const c = l.common;
    if (!c) continue;
    if (c.stopbackward === 1) lastStop = l.index;
    else if (c.stopbackward > 1) delayed.push({ layer: l.index, until: c.stopbackward });
    else if (c.stopbackward < 0) throw new TrainError('config', `${l.where}: stopbackward=${c.stopbackward} must be >= 0`);
    if (c.trainOnlyBn) lastOnlyBn = l.index;
  }
  if (lastOnlyBn >= 0) {
    frozen = Math.max(frozen, lastOnlyBn + 1);
    reasons.push(`train_only_bn at layer ${lastOnlyBn}: layers 0..${lastOnlyBn}`);
  }
  if (lastStop >= 0) {
    frozen = Math.max(frozen, lastStop + 1);
    rollingBn = lastStop;
    reasons.push(`stopbackward=1 at layer ${lastStop}: layers 0..${lastStop}${lastStop > 0 ? `, batchnorm of [convolutional] 0..${lastStop - 1} on the rolling statistics` : ''}`);
  }
  const live = delayed.filter((d) => d.layer >= frozen).sort((a, b) => a.layer - b.layer);
  for (const d of live) reasons.push(`stopbackward=${d.until} at layer ${d.layer}: layers 0..${d.layer} until iteration ${d.until}`);
  const trainable = trainableLayers(net);
  if (trainable.length && !trainable.some((i) => i >= frozen)) {
    const last = net.layers[trainable[trainable.length - 1]];
    throw new TrainError('config', `${net.file}: nothing left to train: ${reasons.join('; ')} freezes every layer with parameters (the last one is layer ${last.index} ${last.section.label}, ${last.where})`);
  }
  return { frozen, rollingBn, delayed: live, reasons };
}

/**
 * Layers 0..cut-1 get no gradient in this mini-batch: `frozen`, or above it a stopbackward=K>1 layer
 * while Darknet's get_current_iteration (seen / (batch·subdivisions), `seen` already counting this
 * mini-batch) is below K. `iteration` = updates done, `sub` = this mini-batch's index in the update.
 */
export function gradientCut(plan: FreezePlan, iteration: number, sub: number, subdivisions: number): number {
  let cut = plan.frozen;
  if (!plan.delayed.length) return cut;
  const current = Math.floor((iteration * subdivisions + sub + 1) / subdivisions);
  for (const d of plan.delayed) if (d.until > current) cut = Math.max(cut, d.layer + 1);
  return cut;
}

/** One line for the log: what is frozen and why (null when nothing is). */
export function describeFreeze(plan: FreezePlan): string | null {
  if (!plan.reasons.length) return null;
  return `frozen (no gradient, no update): ${plan.reasons.join('; ')}`;
}
