/**
 * Darknet's [Gaussian_yolo] training loss on the GPU (kernels/gaussian_yolo_loss.wgsl): AlexeyAB
 * gaussian_yolo_layer.c forward_gaussian_yolo_layer with state.train (59596d78), Gaussian YOLOv3 (Choi et al.
 * ICCV 2019), with Darknet's gradient convention: dL/dz = -delta · delta_normalizer for the head input z (the
 * head convolution's output), delta taken w.r.t. the layer's outputs and NOT multiplied by the logistic
 * derivative, as Darknet's backward passes it (backward_gaussian_yolo_layer_gpu: axpy with delta_normalizer).
 *
 * Per head and step the truth -> cell assignment runs on the CPU (assignDarknet, AlexeyAB rules, src/yolo/targets.ts);
 * the ignore search and every delta on the GPU. What Darknet does, and so this loss:
 * - every prediction: objectness delta obj_normalizer·(0 − out); if its best IoU over the image's truths (only
 *   when some class output > 0.25) is > ignore_thresh: 0, or with objectness_smooth=1 obj_normalizer·(IoU² − out)
 *   plus the class deltas of that truth's class (a full class write);
 * - every truth, at its best anchor (over all `num`, when in the mask) and each other mask anchor whose shape
 *   IoU (iou_thresh_kind) > iou_thresh: the box deltas ACCUMULATE over the truths of a cell
 *   (delta_gaussian_yolo_box): per coordinate c of x, y, w, h with target t_c (x, y: the truth's offset in its
 *   cell; w, h: log(truth·net / anchor)), mean output μ_c (x, y after scale_x_y; raw w, h) and sigma output σ_c,
 *   N = exp(−((t−μ)/σ)²/2) / (√(2π)(σ + 0.3)), temp = ½·N/(N + 1e-9)·(2 − w·h):
 *   mean delta temp·(t − μ)/σ² · iou_normalizer·cm (or, for iou_loss iou/giou/diou/ciou, dx_box_iou times
 *   exp(t) on w, h · iou_normalizer·cm), sigma delta temp·((t−μ)²/σ³ − 1/(σ + 0.3)) · uc_normalizer, each NaN/inf
 *   zeroed then clipped at max_delta; the objectness delta cm·obj_normalizer·(1 − out) (the last truth's);
 *   the class deltas as delta_gaussian_yolo_class (label_smooth_eps; counters_per_class multipliers, with
 *   cls_normalizer on the first write only; a cell taken already — class 0's delta non-zero — gets its class's
 *   delta only);
 * - then every cell's 8 box deltas are divided by its number of positive class deltas (always, unlike [yolo]).
 * The cost (HeadReadout.aux0) is Darknet's l.cost = Σ delta². Refused: truth_thresh < 1 (that branch), as for [yolo].
 *
 * The loss value: objectness and classes m·BCE on the logit (the implied loss of their deltas, as [yolo]);
 * box: per truth and coordinate the Gaussian NLL −log(N + 1e-9) times ½·(2 − w·h)·iou_normalizer·cm (mse:
 * its derivative w.r.t. the mean outputs is the mean delta) or, with an IoU loss, iou_normalizer·cm·(1 − IoU
 * kind) plus the NLL times ½·(2 − w·h)·uc_normalizer, divided like the deltas by the positive class count.
 * The deltas are not the gradient of this value (Darknet's are w.r.t. the activated outputs); training
 * follows the deltas, as Darknet does.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Network } from '../darknet/network.js';
import type { GaussianYoloLayer, GaussianYoloOptions } from '../layers/gaussian_yolo.js';
import type { IouKind } from './box.js';
import { assignDarknet, type DarknetAssignment, type Truth } from './targets.js';
import { classMultipliers, DARKNET_IOU_LOSSES, type DarknetIouLoss } from './loss_darknet.js';
import { finishLoss, type ComputeOptions, type HeadPart, type HeadStats, type LossOutput, type YoloLoss, keptInputs } from './loss_common.js';

/** Everything the loss needs from one [Gaussian_yolo] head (Darknet parse_gaussian_yolo's keys and defaults). */
export interface GaussianHeadConfig {
  classes: number;
  /** anchor indices of this head */
  mask: number[];
  /** all anchors (w, h) pairs, network-input pixels */
  anchors: number[];
  /** anchors searched for the best one (num) */
  total: number;
  scaleXY: number;
  ignoreThresh: number;
  /** must be >= 1 (Darknet's truth_thresh branch is not implemented) */
  truthThresh: number;
  iouThresh: number;
  iouThreshKind: IouKind;
  iouLoss: DarknetIouLoss;
  /** iou_normalizer (default 0.75) */
  iouNormalizer: number;
  /** uc_normalizer (default 1): the sigma deltas */
  ucNormalizer: number;
  clsNormalizer: number;
  objNormalizer: number;
  /** multiplies the gradient only (Darknet's GPU backward) */
  deltaNormalizer: number;
  /** clip of the box and sigma deltas (FLT_MAX: none) */
  maxDelta: number;
  labelSmoothEps: number;
  /** counters_per_class -> multipliers (null: none) */
  classMultipliers: number[] | null;
  /** truths per image (max=, default 200) */
  maxBoxes: number;
  objectnessSmooth: boolean;
}

const FLT_MAX = 3.4028234663852886e38;
const IOU_CODE: Record<DarknetIouLoss, number> = { mse: 0, iou: 1, giou: 2, diou: 3, ciou: 4 };
const WG = 64;

/** The loss configuration of a parsed [Gaussian_yolo] layer. */
export function gaussianHeadConfig(o: GaussianYoloOptions): GaussianHeadConfig {
  return {
    classes: o.classes, mask: [...o.mask], anchors: [...o.anchors], total: o.total, scaleXY: o.scaleXY,
    ignoreThresh: o.ignoreThresh, truthThresh: o.truthThresh, iouThresh: o.iouThresh, iouThreshKind: o.iouThreshKind as IouKind,
    iouLoss: o.iouLoss, iouNormalizer: o.iouNormalizer, ucNormalizer: o.ucNormalizer, clsNormalizer: o.clsNormalizer,
    objNormalizer: o.objNormalizer, deltaNormalizer: o.deltaNormalizer, maxDelta: o.maxDelta, labelSmoothEps: o.labelSmoothEps,
    classMultipliers: o.countersPerClass ? classMultipliers(o.countersPerClass, o.maxDelta) : null,
    maxBoxes: o.maxBoxes, objectnessSmooth: o.objectnessSmooth,
  };
}

function validate(c: GaussianHeadConfig, what: string): void {
  if (c.truthThresh < 1) throw new Error(`${what}: truth_thresh=${c.truthThresh} < 1 is not supported (Darknet's truth_thresh branch)`);
  if (!(c.iouLoss in IOU_CODE)) throw new Error(`${what}: unknown iou_loss '${c.iouLoss}' (${DARKNET_IOU_LOSSES.join(', ')})`);
  c.mask.forEach((m) => {
    if (!(m >= 0 && 2 * m + 1 < c.anchors.length)) throw new Error(`${what}: mask entry ${m} has no anchor`);
  });
}

/** The upload of one head (layout in kernels/gaussian_yolo_loss.wgsl). */
export function gaussianTable(c: GaussianHeadConfig, asg: DarknetAssignment, B: number): { table: Float32Array; off: { anch: number; img: number; truth: number; cm: number; slot: number; box: number } } {
  const A = c.mask.length;
  const C = c.classes;
  const SR = 4 + 3 * C;
  const nT = asg.truths.reduce((s, l) => s + l.length, 0);
  const nBox = asg.slots.reduce((s, sl) => s + sl.boxes.length, 0);
  const off = { anch: 0, img: 2 * A, truth: 2 * A + B + 1, cm: 0, slot: 0, box: 0 };
  off.cm = off.truth + 5 * nT;
  off.slot = off.cm + C;
  off.box = off.slot + SR * asg.slots.length;
  const table = new Float32Array(Math.max(1, off.box + 5 * nBox));
  const u32 = new Uint32Array(table.buffer);
  c.mask.forEach((m, a) => {
    table[2 * a] = c.anchors[2 * m];
    table[2 * a + 1] = c.anchors[2 * m + 1];
  });
  let t = 0;
  for (let b = 0; b < B; b++) {
    u32[off.img + b] = t;
    for (const tr of asg.truths[b] ?? []) {
      table.set([tr.x, tr.y, tr.w, tr.h, tr.cls], off.truth + 5 * t);
      t++;
    }
  }
  u32[off.img + B] = t;
  for (let k = 0; k < C; k++) table[off.cm + k] = c.classMultipliers ? c.classMultipliers[k] : 1;
  let box = 0;
  asg.slots.forEach((s, k) => {
    const r = off.slot + SR * k;
    u32[r] = s.cell;
    u32[r + 1] = box;
    u32[r + 2] = s.boxes.length;
    table[r + 3] = s.objMult;
    table.set(s.clsTarget, r + 4);
    table.set(s.clsMult, r + 4 + C);
    for (const bc of s.boxes) {
      const cls = asg.truths[s.b][bc.t].cls;
      table[r + 4 + 2 * C + cls] = c.classMultipliers ? c.classMultipliers[cls] : 1;
      table.set([bc.truth.x, bc.truth.y, bc.truth.w, bc.truth.h, bc.norm], off.box + 5 * box);
      box++;
    }
  });
  return { table, off };
}

export class GaussianYoloLoss implements YoloLoss {
  readonly kind = 'darknet' as const;

  /**
   * heads: one config per [Gaussian_yolo] head in cfg order; net: the network input size (pixels);
   * headSources: layer indices feeding the heads (empty when not from a network).
   */
  constructor(readonly heads: GaussianHeadConfig[], readonly net: { w: number; h: number }, readonly headSources: number[] = []) {
    if (!heads.length) throw new Error('gaussian yolo loss: no [Gaussian_yolo] heads');
    heads.forEach((h, k) => validate(h, `[Gaussian_yolo] head ${k}`));
  }

  static fromNetwork(net: Network, override: Partial<GaussianHeadConfig> = {}): GaussianYoloLoss {
    const layers = net.heads().filter((l): l is GaussianYoloLayer => l.kind === 'Gaussian_yolo');
    if (!layers.length) throw new Error(`${net.file}: no [Gaussian_yolo] layers`);
    const heads = layers.map((l) => ({ ...gaussianHeadConfig(l.options), ...override }));
    heads.forEach((h, k) => validate(h, `layer ${layers[k].index} [Gaussian_yolo] (${layers[k].where})`));
    return new GaussianYoloLoss(heads, { w: net.input.w, h: net.input.h }, layers.map((l) => l.sources[0]));
  }

  headInputs(outs: Map<number, Tensor>): Tensor[] {
    return keptInputs(outs, this.headSources, 'gaussian yolo loss');
  }

  /** Darknet steps w += lr/batch · Σ_images updates: SGD gradScale = 1/batch on this summed loss. */
  gradScale(batch: number): number {
    return 1 / batch;
  }

  /** The CPU assignment of head k (AlexeyAB's rules; the objectness multiplier is the last truth's). */
  assign(k: number, H: number, W: number, truths: readonly (readonly Truth[])[], net: { w: number; h: number } = this.net): DarknetAssignment {
    const c = this.heads[k];
    return assignDarknet(
      { w: W, h: H, classes: c.classes, mask: c.mask, anchors: c.anchors, total: c.total, netW: net.w, netH: net.h },
      truths,
      {
        flavor: 'alexeyab', iouThresh: c.iouThresh, iouThreshKind: c.iouThreshKind, labelSmoothEps: c.labelSmoothEps, focal: false,
        objNormalizer: c.objNormalizer, iouNormalizer: c.iouNormalizer, clsNormalizer: c.clsNormalizer, classMultipliers: c.classMultipliers,
        maxBoxes: c.maxBoxes, objectnessSmooth: false,
      },
    );
  }

  compute(zs: Tensor[], truths: readonly (readonly Truth[])[], opts: ComputeOptions = {}): LossOutput {
    if (zs.length !== this.heads.length) throw new Error(`gaussian yolo loss: ${zs.length} head inputs for ${this.heads.length} [Gaussian_yolo] heads`);
    const gpu = zs[0].gpu;
    const net = opts.netSize ?? this.net;
    const parts: HeadPart[] = [];
    const stats: HeadStats[] = [];
    zs.forEach((z, k) => {
      const c = this.heads[k];
      const A = c.mask.length;
      const E = 9 + c.classes;
      if (z.shape.length !== 4 || z.shape[1] !== A * E) throw new Error(`gaussian yolo loss head ${k}: head input ${z.describe()} is not [B, ${A}*(9+${c.classes}), H, W]`);
      const [B, , H, W] = z.shape;
      if (truths.length !== B) throw new Error(`gaussian yolo loss: ${truths.length} truth lists for a batch of ${B}`);
      const asg = this.assign(k, H, W, truths, net);
      stats.push({ assigned: asg.stats.assigned, assignedCells: asg.stats.assignedCells, notInMask: asg.stats.notInMask, badClass: asg.stats.badClass });
      const { table, off } = gaussianTable(c, asg, B);
      const cells = B * A * H * W;
      const delta = new Tensor(gpu, z.shape, `gaussian${k}.delta`);
      const { tab, partials } = Tape.untracked(() => ({
        tab: Tensor.from(gpu, [table.length], table, `gaussian${k}.table`),
        partials: new Tensor(gpu, [5, cells], `gaussian${k}.partials`),
      }));
      // kernels/gaussian_yolo_loss.wgsl struct Params
      const params = (n: number) => ({
        n, A, H, W, C: c.classes, netW: net.w, netH: net.h, iouLoss: IOU_CODE[c.iouLoss], scaleXY: c.scaleXY, ignoreThresh: c.ignoreThresh,
        objNorm: c.objNormalizer, ucNorm: c.ucNormalizer, clsNorm: c.clsNormalizer, hasCm: c.classMultipliers ? 1 : 0, labelEps: c.labelSmoothEps,
        maxDelta: Math.min(c.maxDelta, FLT_MAX), objSmooth: c.objectnessSmooth ? 1 : 0,
        offAnch: off.anch, offImg: off.img, offTruth: off.truth, offCm: off.cm, offSlot: off.slot, offBox: off.box, zero: 0, cells,
      });
      const bind = { 1: z, 2: tab, 3: delta, 4: partials };
      gpu.dispatch({ file: 'gaussian_yolo_loss', entry: 'gy_neg', constants: { WG } }, params(cells), bind, gpu.grid(cells, WG));
      const nS = asg.slots.length;
      if (nS) gpu.dispatch({ file: 'gaussian_yolo_loss', entry: 'gy_pos', constants: { WG } }, params(nS), bind, gpu.grid(nS, WG));
      tab.dispose();
      parts.push({ z, grad: delta, gradFactor: -c.deltaNormalizer, partials, cells });
    });
    return finishLoss(gpu, parts, 1, 1, { heads: stats, assigned: stats.reduce((s, h) => s + h.assigned, 0) }, opts);
  }
}
