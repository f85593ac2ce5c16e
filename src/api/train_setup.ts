/**
 * The training settings and recipe shared by every way of training (src/api/train.ts `train` / the CLI over
 * a dataset on disk, src/api/train_files.ts over files held in memory, e.g. in a browser): the settings
 * resolved from the cfg's [net] and the caller, and the loss, schedule and optimizer they select. No file
 * system (browser-safe).
 */
import type { Network } from '../darknet/network.js';
import { lossFromNetwork, type LossKind, type YoloLoss } from '../yolo/loss.js';
import { V5Loss, applyV5PriorBiases, scaleV5Hyp, v5HeadsFit, type V5Hyp } from '../yolo/loss_v5.js';
import { isProtocol, type Protocol } from '../eval/types.js';
import { freezePlan } from '../train/freeze.js';
import { TrainError, type OptimizerKind, type OptimizerSettings } from '../train/types.js';
import { DarknetSchedule, UltralyticsSchedule, darknetHyper, stretchDarknetSchedule, type LrSchedule } from '../train/schedule.js';
import { checkNumber, checkOptional, RULES } from '../util/validate.js';
import { augmentConfigFromNetwork, sizeScheduleFromNetwork, type AugmentConfig } from '../data/augment.js';

export const HYP_DEFAULTS = { lr0: 0.01, lrf: 0.01, momentum: 0.937, weight_decay: 0.0005, warmup_epochs: 3.0, warmup_momentum: 0.8, warmup_bias_lr: 0.1 };

/** `random` of the last [yolo]/[region] layer (0 when absent): Darknet's multi-scale switch/coefficient. */
export function cfgRandom(net: Network): number {
  // [detection] (YOLOv1) is left out, as before: YOLOv1 cfgs end in [local]/[connected] layers tied to the
  // input size, which cannot be rebuilt at other sizes (Network.resized refuses them)
  const heads = net.heads().filter((l) => l.kind !== 'detection');
  const l = heads[heads.length - 1];
  return l?.section.has('random') ? l.section.float('random') : 0;
}

/** Whether the cfg asks for multi-scale training. */
export function cfgMultiScale(net: Network): boolean {
  return cfgRandom(net) !== 0;
}

/** The resolved training settings (what the CLI stores in args.json besides cfg/data/weights/img). */
export interface TrainSettings {
  batch: number;
  subdivisions: number;
  epochs?: number;
  maxBatches?: number;
  loss: LossKind;
  schedule: 'darknet' | 'ultralytics';
  hyp: Record<string, number> | null;
  cosLr: boolean;
  optimizer: OptimizerKind;
  lr?: number;
  ema: boolean;
  augment: boolean;
  /**
   * Darknet multi-scale (`random` of the last [yolo]): the input size changes every 10 updates within
   * [1/1.4, 1.4] of the cfg size in resize_step (32) steps. Default: on when the cfg asks and augment is on.
   */
  multiScale: boolean;
  seed: number;
  workers?: number;
  saveEvery: number;
  valEvery: number;
  protocol: Protocol;
  /**
   * Layers 0..freeze-1 frozen (Ultralytics --freeze): no gradient, no update; their batchnorm statistics keep
   * updating. 0 (default): none (the cfg's stopbackward / train_only_bn still apply; src/train/freeze.ts).
   */
  freeze: number;
}

/**
 * Fills the settings not given from `prev` (a resumed run's args.json), then the cfg's [net] and the
 * defaults; checks batch / subdivisions / protocol / the stopping rule.
 */
export function resolveTrainSettings(net: Network, given: Partial<TrainSettings>, prev: Partial<TrainSettings> = {}): TrainSettings {
  const hyperNet = darknetHyper(net.net);
  const hyp = given.hyp ?? prev.hyp ?? null;
  const scheduleKind = given.schedule ?? prev.schedule ?? (hyp ? 'ultralytics' : 'darknet');
  const batch = given.batch ?? prev.batch ?? hyperNet.batch;
  let subdivisions = given.subdivisions ?? prev.subdivisions ?? hyperNet.subdivisions;
  if (scheduleKind === 'ultralytics' && given.subdivisions === undefined && prev.subdivisions === undefined) subdivisions = 1;
  if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(subdivisions) && subdivisions >= 1 && batch % subdivisions === 0)) {
    throw new Error(`train: batch ${batch} must be a positive multiple of subdivisions ${subdivisions}`);
  }
  const s: TrainSettings = {
    batch, subdivisions,
    epochs: given.epochs ?? prev.epochs,
    maxBatches: given.maxBatches ?? prev.maxBatches,
    // Ultralytics mode trains the yolov5 loss where the heads decode YOLOv5's boxes; Darknet heads keep their loss
    loss: given.loss ?? prev.loss ?? (scheduleKind === 'ultralytics' && v5HeadsFit(net) ? 'yolov5' : 'darknet'),
    schedule: scheduleKind,
    hyp,
    cosLr: given.cosLr ?? prev.cosLr ?? false,
    optimizer: given.optimizer ?? prev.optimizer ?? (hyperNet.adam ? 'adam' : 'sgd'),
    lr: given.lr ?? prev.lr,
    ema: given.ema ?? prev.ema ?? scheduleKind === 'ultralytics',
    augment: given.augment ?? prev.augment ?? true,
    multiScale: given.multiScale ?? prev.multiScale ?? ((given.augment ?? prev.augment ?? true) && cfgMultiScale(net)),
    seed: given.seed ?? prev.seed ?? 0,
    workers: given.workers ?? prev.workers,
    saveEvery: given.saveEvery ?? prev.saveEvery ?? 100,
    valEvery: given.valEvery ?? prev.valEvery ?? 1,
    protocol: given.protocol ?? prev.protocol ?? 'ultralytics',
    freeze: given.freeze ?? prev.freeze ?? 0,
  };
  for (const [k, rule] of [['epochs', RULES.positiveInt], ['maxBatches', RULES.positiveInt], ['lr', RULES.positive], ['seed', RULES.seed], ['workers', RULES.count], ['saveEvery', RULES.positiveInt], ['valEvery', RULES.count]] as const) {
    checkOptional(`train: ${k}`, s[k], rule);
  }
  checkNumber('train: freeze', s.freeze, { min: 0, max: net.layers.length, int: true });
  freezePlan(net, s.freeze); // a TrainError now, not after the data is loaded, when nothing is left to train
  if (!isProtocol(s.protocol)) throw new Error(`train: unknown protocol '${s.protocol}'`);
  if (scheduleKind === 'ultralytics' && !s.epochs) throw new Error('train: the Ultralytics schedule needs --epochs');
  if (!s.epochs && !s.maxBatches && !hyperNet.maxBatches) throw new Error('train: give --epochs or --max-batches (the cfg has no max_batches)');
  return s;
}

/** `s` shifted by k0 updates: update k of this run gets the values of update k0 + k (Darknet's continuation). */
export function continuedSchedule(s: LrSchedule, k0: number): LrSchedule {
  if (!k0) return s;
  return {
    kind: s.kind,
    at: (pos) => s.at({ ...pos, iteration: pos.iteration + k0 }),
    state: () => s.state(),
    restore: (st) => s.restore(st),
    describe: () => `${s.describe()}, continued from iteration ${k0}`,
  };
}

/** The loss, learning-rate schedule and optimizer settings of a run (what `trainNetwork` and `trainOnFiles` train with). */
export interface TrainingRecipe {
  loss: YoloLoss;
  schedule: LrSchedule;
  optimizer: OptimizerSettings;
}

/**
 * The loss (the yolov5 loss on [yolo] heads with the hyp scaled to them, or the darknet loss), the schedule
 * (Ultralytics warm-up + linear/cosine over epochs, or the cfg's Darknet policy stretched to the run and
 * continued from update k0) and the optimizer, from resolved settings. From a seeded initialization (not
 * resumed) the yolov5 loss starts from YOLOv5's head bias priors. Clears `net.freshInit`.
 */
export function trainingRecipe(net: Network, args: TrainSettings, o: { nc: number; batchesPerEpoch: number; k0: number; resumed: boolean; log: (line: string) => void }): TrainingRecipe {
  const { log, k0 } = o;
  const hyp = args.hyp;
  const miniBatch = args.batch / args.subdivisions;
  const loader = { batchesPerEpoch: o.batchesPerEpoch };
  // the yolov5 loss trains [yolo] heads only (its hyp scales with their number); the darknet loss [yolo] or [Gaussian_yolo]
  const heads = net.heads().filter((l) => l.kind === 'yolo');
  const yl = lossFromNetwork(net, args.loss === 'yolov5'
    ? { kind: 'yolov5', hyp: scaleV5Hyp((hyp ?? {}) as Partial<V5Hyp>, { nl: heads.length, nc: o.nc, imgsz: net.input.w }) }
    : { kind: 'darknet' });
  if (yl instanceof V5Loss && yl.decodeMismatch) throw new TrainError('config', `${net.file}: --loss yolov5: ${yl.decodeMismatch}`);
  // from a seeded initialization, the yolov5 loss starts from YOLOv5's head bias priors
  if (yl instanceof V5Loss && net.freshInit && !o.resumed) {
    const note = applyV5PriorBiases(net, yl);
    if (note) log(note);
  }
  net.freshInit = false;
  const hyperNet = darknetHyper(net.net);
  let schedule: LrSchedule;
  let optimizer: OptimizerSettings;
  if (args.schedule === 'ultralytics') {
    const h = hyp ?? HYP_DEFAULTS;
    const nbs = 64;
    schedule = new UltralyticsSchedule({
      lr0: args.lr ?? h.lr0, lrf: h.lrf, epochs: args.epochs!, batchesPerEpoch: loader.batchesPerEpoch, cosLr: args.cosLr,
      warmupEpochs: h.warmup_epochs, warmupMomentum: h.warmup_momentum, warmupBiasLr: h.warmup_bias_lr, momentum: h.momentum,
      nbs, batchSize: miniBatch, warmupMomentumEnabled: args.optimizer === 'sgd',
    });
    // train.py: weight_decay *= batch_size * accumulate / nbs; SGD with nesterov; Adam's beta1 = momentum
    const decay = h.weight_decay * (miniBatch * args.subdivisions) / nbs;
    optimizer = args.optimizer === 'sgd'
      ? { kind: 'sgd', lr: args.lr ?? h.lr0, momentum: h.momentum, nesterov: true, decay }
      : { kind: args.optimizer, lr: args.lr ?? h.lr0, beta1: h.momentum, beta2: 0.999, decay };
  } else {
    // --max-batches / --epochs override the cfg's max_batches: stretch its steps (and poly/cosine/sgdr length)
    // (continuing from k0: --epochs trains that many epochs after k0, so the schedule's length is k0 + theirs)
    const updates = args.maxBatches ?? (args.epochs ? k0 + Math.ceil((args.epochs * loader.batchesPerEpoch) / args.subdivisions) : hyperNet.maxBatches);
    const stretched = stretchDarknetSchedule(hyperNet.schedule, updates);
    if (stretched.note) log(stretched.note);
    schedule = continuedSchedule(new DarknetSchedule({ ...stretched.schedule, learningRate: args.lr ?? hyperNet.schedule.learningRate }), k0);
    optimizer = { kind: args.optimizer, lr: args.lr };
  }
  return { loss: yl, schedule, optimizer };
}

/** How a run's mini-batches are made, and how long it runs (see trainingInput). */
export interface TrainingInput {
  /** images per mini-batch (batch / subdivisions) */
  miniBatch: number;
  /** the cfg's augmentation, or false */
  augment: AugmentConfig | false;
  /** Darknet's continuation: the iteration the schedule starts from (0 in Ultralytics mode) */
  k0: number;
  /** the update count the run ends at (counted from 0 before k0), when bounded by updates */
  bound: number | undefined;
  /** multi-scale: the input size of mini-batch g */
  sizeFor: ((g: number) => { width: number; height: number }) | undefined;
}

/**
 * The augmentation (from the cfg unless settings.augment is false; contrastive needs 2 images per
 * mini-batch), Darknet's continuation from `startIteration` (refused when already at max_batches) and the
 * multi-scale size schedule (each size built once now, so that a layer that cannot be resized is refused
 * before training).
 */
export function trainingInput(net: Network, args: TrainSettings, o: { startIteration?: number; log: (line: string) => void }): TrainingInput {
  const log = o.log;
  const miniBatch = args.batch / args.subdivisions;
  const augment = args.augment ? augmentConfigFromNetwork(net) : false;
  if (augment && augment.contrastive && miniBatch < 2) {
    // Darknet parse_network_cfg: "mini_batch size (batch/subdivisions) should be higher than 1 for Contrastive loss!"
    throw new TrainError('config', `${net.file}: [net] contrastive=1 pairs the images of a mini-batch, which needs batch / subdivisions >= 2 (it is ${miniBatch})`);
  }
  // Darknet's continuation from the starting weights' seen (Darknet mode): the run ends at max_batches in all
  const k0 = args.schedule === 'darknet' ? (o.startIteration ?? 0) : 0;
  const bound = args.maxBatches ?? (args.epochs ? undefined : darknetHyper(net.net).maxBatches);
  if (k0 > 0 && bound !== undefined && k0 >= bound) {
    throw new TrainError('config', `${net.file}: the starting weights' seen / batch puts Darknet's iteration at ${k0}, already at or past max_batches ${bound}: nothing is left to train (Darknet stops at once). Give --clear (Darknet's -clear) to start from iteration 0, or a larger --max-batches`);
  }
  // multi-scale: the size of mini-batch g; Darknet counts 10 updates (of `subdivisions` mini-batches) per size
  const sizeMax = (args.maxBatches ?? darknetHyper(net.net).maxBatches) - k0;
  const sizeFor = args.multiScale
    ? sizeScheduleFromNetwork(net, args.seed, {
      width: net.input.w, height: net.input.h, period: 10 * args.subdivisions, random: cfgRandom(net) || 1,
      maxBatches: sizeMax > 0 ? sizeMax * args.subdivisions : undefined,
    })
    : undefined;
  if (sizeFor) {
    const sizes = new Set<number>();
    const total = args.maxBatches ? args.maxBatches * args.subdivisions : 2000;
    for (let g = 0; g < Math.min(total, 2000); g += 10 * args.subdivisions) sizes.add(sizeFor(g).width);
    log(`multi-scale: input ${[...sizes].sort((a, b) => a - b).join(', ')} px (every 10 updates; the network is rebuilt per size on the same parameters)`);
    for (const sz of sizes) net.resized(sz, sz); // refuses now, not mid-run, when a layer cannot be resized
  }
  return { miniBatch, augment, k0, bound, sizeFor };
}
