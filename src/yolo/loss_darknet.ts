/**
 * Darknet's [yolo] training loss on the GPU (kernels/yolo_loss.wgsl), pjreddie (61c9d02e, YOLOv3) or
 * AlexeyAB (YOLOv4 and later) semantics, with Darknet's gradient convention: dL/dz = -delta for the head
 * input z (pre-activation), delta NOT multiplied by the logistic derivative.
 *
 * Per head and step: the truth -> cell assignment runs on the CPU (src/yolo/targets.ts, small and
 * order-dependent) into one table uploaded to the GPU; the ignore search (best IoU of every prediction
 * vs the image's truths: one thread per prediction) and every delta and loss term run on the GPU.
 *
 * Flavors (docs/losses.md has the line-by-line differences):
 * - 'pjreddie': box deltas scale·(t − out) (scale = 2 − w·h) of the last truth in a cell, objectness
 *   1 − σ / −σ / 0 (ignored), class deltas [c = cls] − σ (a cell taken earlier: its class's delta only),
 *   90 truths per image.
 * - 'alexeyab': box deltas accumulate over the truths of a cell and carry iou_normalizer (MSE too), or
 *   come from dx_box_iou for iou_loss = iou/giou/diou/ciou (times exp(tw) for w, h, iou_normalizer,
 *   max_delta clip); obj_normalizer; ignore only for predictions with a class output > 0.25; iou_thresh
 *   extra anchors (then the box deltas of a cell are averaged over its positive class deltas); label
 *   smoothing; counters_per_class (with cls_normalizer); focal_loss; new_coords; scale_x_y;
 *   delta_normalizer in the gradient; `max` truths per image; objectness_smooth (below).
 * - 'alexeyab' objectness_smooth=1 (yolo_layer.c process_batch, AlexeyAB 59596d78): only the objectness
 *   delta changes (box and class deltas, the averaging rule and the cost formula are the same). Every
 *   prediction first gets d = obj_norm·(0 − out); if its best IoU over the truths (class output > 0.25 rule
 *   as for the ignore) is > ignore_thresh, d becomes obj_norm·(best_iou − out) when that is larger (instead
 *   of 0). An assigned cell (best anchor or iou_thresh extra) then writes cm·obj_norm·(1 − out) **only if d
 *   is still exactly 0**, so the first truth with a non-zero multiplier wins and a cell the ignore search
 *   already gave a delta keeps it (its objectness is pushed to 0, or to best_iou, not to 1). The iou_thresh
 *   averaging then divides the box deltas only of cells whose final objectness delta is non-zero. (Its
 *   truth_thresh branch, IoU² targets, stays unsupported with truth_thresh < 1.)
 * Default: 'alexeyab' when the [yolo] section sets any key only AlexeyAB reads, else 'pjreddie'.
 *
 * The loss value is the implied loss whose gradient is -delta where one exists: x, y
 * scale·norm·s·BCE-on-logits (s = scale_x_y; the target shifted by the scale), w, h scale·norm/2·(t − z)²,
 * objectness and classes m·BCE (½m(t − z)² with new_coords), 0 for ignored predictions (objectness_smooth:
 * obj_norm·BCE with target best_iou where that delta was kept); the IoU losses
 * report norm·(1 − IoU-kind) while their gradient is Darknet's dx_box_iou (not the exact derivative), and
 * focal class terms report the BCE times Darknet's focal factor. The value excludes delta_normalizer.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Network } from '../darknet/network.js';
import type { YoloLayer, YoloOptions } from '../layers/yolo.js';
import type { IouKind } from './box.js';
import { assignDarknet, type DarknetFlavor, type DarknetAssignment, type Truth } from './targets.js';
import { checkHead, finishLoss, type ComputeOptions, type HeadPart, type HeadStats, type LossOutput, type YoloLoss, keptInputs } from './loss_common.js';
import { contrastiveConfigs, contrastivePart, type ContrastiveConfig } from './loss_contrastive.js';

export type { DarknetFlavor } from './targets.js';

export const DARKNET_IOU_LOSSES = ['mse', 'iou', 'giou', 'diou', 'ciou'] as const;
export type DarknetIouLoss = (typeof DARKNET_IOU_LOSSES)[number];

/** Everything the loss needs from one [yolo] head. */
export interface DarknetHeadConfig {
  classes: number;
  /** anchor indices of this head */
  mask: number[];
  /** all anchors (w, h) pairs, network-input pixels */
  anchors: number[];
  /** number of anchors searched for the best one (num) */
  total: number;
  scaleXY: number;
  newCoords: boolean;
  ignoreThresh: number;
  /** must be >= 1 (Darknet's truth_thresh branch is not implemented) */
  truthThresh: number;
  iouThresh: number;
  iouThreshKind: IouKind;
  iouLoss: DarknetIouLoss;
  iouNormalizer: number;
  clsNormalizer: number;
  objNormalizer: number;
  deltaNormalizer: number;
  /** clip of the IoU-loss deltas (FLT_MAX: none) */
  maxDelta: number;
  labelSmoothEps: number;
  focal: boolean;
  /** counters_per_class -> multipliers (null: none) */
  classMultipliers: number[] | null;
  /** truths per image Darknet reads (pjreddie 90, AlexeyAB max=, default 200) */
  maxBoxes: number;
  /** AlexeyAB objectness_smooth=1 (see the module comment); absent: off */
  objectnessSmooth?: boolean;
  flavor: DarknetFlavor;
}

export interface DarknetLossOptions {
  /** force a flavor (default: per head, detectFlavor) */
  flavor?: DarknetFlavor;
  /** override head options (all heads) */
  override?: Partial<DarknetHeadConfig>;
}

const FLT_MAX = 3.4028234663852886e38;

/** [yolo] keys that only AlexeyAB's darknet reads: a cfg that sets one is meant for AlexeyAB's loss. */
export const ALEXEYAB_KEYS = [
  'iou_loss', 'iou_normalizer', 'cls_normalizer', 'obj_normalizer', 'delta_normalizer', 'scale_x_y', 'new_coords', 'iou_thresh',
  'iou_thresh_kind', 'label_smooth_eps', 'counters_per_class', 'max', 'max_delta', 'objectness_smooth', 'focal_loss', 'nms_kind',
  'beta_nms', 'resize',
] as const;

export function detectFlavor(layer: Pick<YoloLayer, 'section'>): DarknetFlavor {
  return ALEXEYAB_KEYS.some((k) => layer.section.has(k)) ? 'alexeyab' : 'pjreddie';
}

/** AlexeyAB get_classes_multipliers: max(count) / count (counts below 1 read as 1), clipped at max_delta. */
export function classMultipliers(counters: readonly number[], maxDelta: number): number[] {
  const c = counters.map((v) => Math.max(1, v));
  const mx = Math.max(...c);
  return c.map((v) => Math.min(Math.fround(mx / v), maxDelta));
}

/** The loss configuration of a parsed [yolo] layer. */
export function darknetHeadConfig(o: YoloOptions, flavor: DarknetFlavor): DarknetHeadConfig {
  const ab = flavor === 'alexeyab';
  return {
    classes: o.classes, mask: [...o.mask], anchors: [...o.anchors], total: o.total,
    scaleXY: ab ? o.scaleXY : 1, newCoords: ab && o.newCoords,
    ignoreThresh: o.ignoreThresh, truthThresh: o.truthThresh,
    iouThresh: ab ? o.iouThresh : 1, iouThreshKind: o.iouThreshKind as IouKind,
    iouLoss: ab ? o.iouLoss : 'mse',
    iouNormalizer: ab ? o.iouNormalizer : 1, clsNormalizer: ab ? o.clsNormalizer : 1, objNormalizer: ab ? o.objNormalizer : 1,
    deltaNormalizer: ab ? o.deltaNormalizer : 1, maxDelta: ab ? o.maxDelta : FLT_MAX,
    labelSmoothEps: ab ? o.labelSmoothEps : 0, focal: ab && o.focalLoss,
    classMultipliers: ab && o.countersPerClass ? classMultipliers(o.countersPerClass, o.maxDelta) : null,
    maxBoxes: ab ? o.maxBoxes : 90,
    objectnessSmooth: ab && o.objectnessSmooth,
    flavor,
  };
}

/** Refuses what the loss does not implement, naming the head. */
function validate(c: DarknetHeadConfig, what: string): void {
  if (c.truthThresh < 1) throw new Error(`${what}: truth_thresh=${c.truthThresh} < 1 is not supported (Darknet's truth_thresh branch)`);
  if (c.flavor === 'pjreddie') {
    const ab: string[] = [];
    if (c.iouLoss !== 'mse') ab.push(`iou_loss=${c.iouLoss}`);
    if (c.scaleXY !== 1) ab.push('scale_x_y');
    if (c.newCoords) ab.push('new_coords');
    if (c.iouThresh < 1) ab.push('iou_thresh');
    if (c.labelSmoothEps) ab.push('label_smooth_eps');
    if (c.focal) ab.push('focal_loss');
    if (c.classMultipliers) ab.push('counters_per_class');
    if (c.objectnessSmooth) ab.push('objectness_smooth');
    if (c.iouNormalizer !== 1 || c.objNormalizer !== 1 || c.clsNormalizer !== 1 || c.deltaNormalizer !== 1) ab.push('*_normalizer');
    if (ab.length) throw new Error(`${what}: ${ab.join(', ')} need the 'alexeyab' flavor (pjreddie's darknet has no such option)`);
  }
  if (!(c.iouLoss in IOU_CODE)) throw new Error(`${what}: unknown iou_loss '${c.iouLoss}' (${DARKNET_IOU_LOSSES.join(', ')})`);
  c.mask.forEach((m) => {
    if (!(m >= 0 && 2 * m + 1 < c.anchors.length)) throw new Error(`${what}: mask entry ${m} has no anchor`);
  });
}

const WG = 64;
const IOU_CODE: Record<DarknetIouLoss, number> = { mse: 0, iou: 1, giou: 2, diou: 3, ciou: 4 };

/** The upload of one head: anchors, image truth offsets, truths, slots, box contributions (see the kernel). */
export function darknetTable(c: DarknetHeadConfig, asg: DarknetAssignment, B: number): { table: Float32Array; off: { anch: number; img: number; truth: number; slot: number; box: number } } {
  const A = c.mask.length;
  const C = c.classes;
  const SR = 8 + 2 * C;
  const nT = asg.truths.reduce((s, l) => s + l.length, 0);
  const nBox = asg.slots.reduce((s, sl) => s + sl.boxes.length, 0);
  const off = { anch: 0, img: 2 * A, truth: 2 * A + B + 1, slot: 0, box: 0 };
  off.slot = off.truth + 4 * nT;
  off.box = off.slot + SR * asg.slots.length;
  const size = Math.max(1, off.box + 8 * nBox);
  const table = new Float32Array(size);
  const u32 = new Uint32Array(table.buffer);
  const i32 = new Int32Array(table.buffer);
  c.mask.forEach((m, a) => {
    table[2 * a] = c.anchors[2 * m];
    table[2 * a + 1] = c.anchors[2 * m + 1];
  });
  let t = 0;
  for (let b = 0; b < B; b++) {
    u32[off.img + b] = t;
    for (const tr of asg.truths[b] ?? []) {
      table.set([tr.x, tr.y, tr.w, tr.h], off.truth + 4 * t);
      t++;
    }
  }
  u32[off.img + B] = t;
  let box = 0;
  asg.slots.forEach((s, k) => {
    const r = off.slot + SR * k;
    u32[r] = s.cell;
    u32[r + 1] = box;
    u32[r + 2] = s.boxes.length;
    table[r + 3] = s.objMult;
    i32[r + 4] = s.focalClass;
    u32[r + 5] = s.average ? 1 : 0;
    table[r + 6] = s.anchor[0];
    table[r + 7] = s.anchor[1];
    for (let cc = 0; cc < C; cc++) {
      table[r + 8 + cc] = s.clsTarget[cc];
      table[r + 8 + C + cc] = s.clsFocal[cc] ? -s.clsMult[cc] : s.clsMult[cc];
    }
    for (const bc of s.boxes) {
      table.set([bc.truth.x, bc.truth.y, bc.truth.w, bc.truth.h, bc.norm], off.box + 8 * box);
      box++;
    }
  });
  return { table, off };
}

export class DarknetLoss implements YoloLoss {
  readonly kind = 'darknet' as const;

  /**
   * heads: one config per [yolo] head in cfg order; net: the network input size (pixels);
   * headSources: layer indices feeding the heads (for Network.forward's keep; empty when not from a network),
   * then the inputs of the [contrastive] layers; contrastive: their configs (src/yolo/loss_contrastive.ts),
   * whose deltas join the heads' (compute takes their inputs after the head inputs; the readout and the
   * stats have one more entry per [contrastive] after the heads').
   */
  constructor(readonly heads: DarknetHeadConfig[], readonly net: { w: number; h: number }, readonly headSources: number[] = [], readonly contrastive: readonly ContrastiveConfig[] = []) {
    if (!heads.length) throw new Error('darknet loss: no [yolo] heads');
    heads.forEach((h, k) => validate(h, `[yolo] head ${k}`));
  }

  static fromNetwork(net: Network, opts: DarknetLossOptions = {}): DarknetLoss {
    const layers = net.heads().filter((l) => l.kind === 'yolo');
    if (!layers.length) throw new Error(`${net.file}: no [yolo] layers (the darknet loss needs them)`);
    const heads = layers.map((l) => ({ ...darknetHeadConfig(l.options, opts.flavor ?? detectFlavor(l)), ...opts.override }));
    heads.forEach((h, k) => validate(h, `layer ${layers[k].index} [yolo] (${layers[k].where})`));
    const contrastive = contrastiveConfigs(net, layers);
    return new DarknetLoss(heads, { w: net.input.w, h: net.input.h }, [...layers.map((l) => l.sources[0]), ...contrastive.map((c) => c.source)], contrastive);
  }

  headInputs(outs: Map<number, Tensor>): Tensor[] {
    return keptInputs(outs, this.headSources, 'darknet loss');
  }

  /** Darknet steps w += lr/batch · Σ_images updates: SGD gradScale = 1/batch on this summed loss. */
  gradScale(batch: number): number {
    return 1 / batch;
  }

  /** The CPU assignment of head k (exposed for tests and statistics). */
  assign(k: number, H: number, W: number, truths: readonly (readonly Truth[])[], net: { w: number; h: number } = this.net): DarknetAssignment {
    const c = this.heads[k];
    return assignDarknet(
      { w: W, h: H, classes: c.classes, mask: c.mask, anchors: c.anchors, total: c.total, netW: net.w, netH: net.h },
      truths,
      {
        flavor: c.flavor, iouThresh: c.iouThresh, iouThreshKind: c.iouThreshKind, labelSmoothEps: c.labelSmoothEps, focal: c.focal,
        objNormalizer: c.objNormalizer, iouNormalizer: c.iouNormalizer, clsNormalizer: c.clsNormalizer, classMultipliers: c.classMultipliers,
        maxBoxes: c.maxBoxes, objectnessSmooth: c.flavor === 'alexeyab' && !!c.objectnessSmooth,
      },
    );
  }

  compute(zs: Tensor[], truths: readonly (readonly Truth[])[], opts: ComputeOptions = {}): LossOutput {
    const nC = this.contrastive.length;
    if (zs.length !== this.heads.length + nC) throw new Error(`darknet loss: ${zs.length} head inputs for ${this.heads.length} [yolo] heads${nC ? ` and ${nC} [contrastive] layers` : ''}`);
    const gpu = zs[0].gpu;
    const net = opts.netSize ?? this.net;
    const parts: HeadPart[] = [];
    const stats: HeadStats[] = [];
    zs.slice(0, this.heads.length).forEach((z, k) => {
      const c = this.heads[k];
      const A = c.mask.length;
      const { B, H, W } = checkHead(z, A, c.classes, `darknet loss head ${k}`);
      if (truths.length !== B) throw new Error(`darknet loss: ${truths.length} truth lists for a batch of ${B}`);
      const asg = this.assign(k, H, W, truths, net);
      stats.push({ assigned: asg.stats.assigned, assignedCells: asg.stats.assignedCells, notInMask: asg.stats.notInMask, badClass: asg.stats.badClass });
      const { table, off } = darknetTable(c, asg, B);
      const cells = B * A * H * W;
      const delta = new Tensor(gpu, z.shape, `yolo${k}.delta`);
      const { tab, partials } = Tape.untracked(() => ({
        tab: Tensor.from(gpu, [table.length], table, `yolo${k}.table`),
        partials: new Tensor(gpu, [5, cells], `yolo${k}.partials`),
      }));
      // kernels/yolo_loss.wgsl struct Params
      const params = (n: number) => ({
        n, A, H, W, C: c.classes, netW: net.w, netH: net.h, flavor: c.flavor === 'alexeyab' ? 1 : 0, iouLoss: IOU_CODE[c.iouLoss], newCoords: c.newCoords ? 1 : 0,
        scaleXY: c.scaleXY, ignoreThresh: c.ignoreThresh, objNorm: c.flavor === 'alexeyab' ? c.objNormalizer : 1, maxDelta: Math.min(c.maxDelta, FLT_MAX),
        offAnch: off.anch, offImg: off.img, offTruth: off.truth, offSlot: off.slot, offBox: off.box, zero: 0, cells, objSmooth: c.flavor === 'alexeyab' && c.objectnessSmooth ? 1 : 0,
      });
      const bind = { 1: z, 2: tab, 3: delta, 4: partials };
      gpu.dispatch({ file: 'yolo_loss', entry: 'dn_neg', constants: { WG } }, params(cells), bind, gpu.grid(cells, WG));
      const nS = asg.slots.length;
      if (nS) gpu.dispatch({ file: 'yolo_loss', entry: 'dn_pos', constants: { WG } }, params(nS), bind, gpu.grid(nS, WG));
      tab.dispose();
      parts.push({ z, grad: delta, gradFactor: -c.deltaNormalizer, partials, cells });
    });
    this.contrastive.forEach((c, k) => {
      const emb = zs[this.heads.length + k];
      if (emb.shape[0] !== truths.length) throw new Error(`darknet loss: ${truths.length} truth lists for a batch of ${emb.shape[0]}`);
      const { part, stats: st } = contrastivePart(c, emb, truths, net);
      parts.push(part);
      stats.push(st);
    });
    return finishLoss(gpu, parts, 1, 1, { heads: stats, assigned: stats.slice(0, this.heads.length).reduce((s, h) => s + h.assigned, 0) }, opts);
  }
}
