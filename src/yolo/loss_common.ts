/**
 * What the YOLO losses share (src/yolo/loss.ts describes the interface and picks one): the YoloLoss interface
 * and its result types, and the plumbing both losses end with (finishLoss: per-head sums, the loss and items,
 * the tape node; checkHead). loss_darknet.ts and loss_v5.ts import it from here, loss.ts re-exports it, so
 * none of the three imports another's values in a cycle.
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { reduceRowsInto } from '../tensor/ops/reduce.js';
import type { Truth } from './targets.js';

/** Rows of the per-head sums (`heads` tensor [nHeads, 5]). */
export const HEAD_ROWS = ['box', 'obj', 'cls', 'aux0', 'aux1'] as const;

export interface LossItems {
  box: number;
  obj: number;
  cls: number;
}

/** Per head, after reading back. Darknet: aux0 = cost (Σ delta²), aux1 = ignored predictions. YOLOv5: aux0 = Σ CIoU of the targets. */
export interface HeadReadout extends LossItems {
  aux0: number;
  aux1: number;
}

export interface LossReadout {
  loss: number;
  items: LossItems;
  heads: HeadReadout[];
}

/** Assignment statistics per head (CPU side, available at once). */
export interface HeadStats {
  /** targets assigned (Darknet: truth -> cell assignments; YOLOv5: build_targets entries) */
  assigned: number;
  /** Darknet: distinct cells; YOLOv5: distinct (image, anchor, cell) targets */
  assignedCells: number;
  /** Darknet: truths whose best anchor belongs to another head */
  notInMask?: number;
  /** Darknet: truths skipped for a class out of range */
  badClass?: number;
}

export interface LossStats {
  heads: HeadStats[];
  assigned: number;
}

export interface ComputeOptions {
  /** Keep the per-head gradient buffers (Darknet: l.delta; YOLOv5: dL/dz) in `grads` (the caller disposes via dispose()). */
  keepGrads?: boolean;
  /** YOLOv5: keep the per-target CIoU values in `ciou` (one tensor per head, build_targets order). */
  keepIou?: boolean;
  /**
   * The network input size of this batch when it differs from the size the loss was built for
   * (multi-scale training): Darknet's [yolo] divides anchors by the current net w/h.
   */
  netSize?: { w: number; h: number };
  /** Images seen including this mini-batch (Darknet's *net.seen): the [region] loss's anchor prior applies below 12800 (default 0). */
  seen?: number;
}

export interface LossOutput {
  /** [1] on the tape: tape.backward(loss) propagates into the heads */
  loss: Tensor;
  /** [3]: box, obj, cls (not recorded) */
  items: Tensor;
  /** [nHeads, 5]: per-head sums, rows HEAD_ROWS (not recorded) */
  heads: Tensor;
  stats: LossStats;
  /** with keepGrads: Darknet's delta (= -dL/dz before delta_normalizer) or YOLOv5's dL/dz, per head */
  grads?: Tensor[];
  /** with keepIou (YOLOv5) */
  ciou?: Tensor[];
  /** Reads loss, items and per-head sums back (one readback). */
  read(): Promise<LossReadout>;
  /** Frees loss, items, heads and any kept buffers (safe twice). */
  dispose(): void;
}

export type LossKind = 'darknet' | 'yolov5';

export interface YoloLoss {
  readonly kind: LossKind;
  /** Layer indices whose outputs are the head inputs, in head order (pass as ForwardOptions.keep). */
  readonly headSources: number[];
  /** Head sources the loss takes as logits, before their activation (pass as ForwardOptions.logits). */
  readonly logitSources?: readonly number[];
  /** Head inputs in head order from Network.forward's map. */
  headInputs(outs: Map<number, Tensor>): Tensor[];
  compute(heads: Tensor[], truths: readonly (readonly Truth[])[], opts?: ComputeOptions): LossOutput;
  /** The SGD gradScale that reproduces the reference trainer's step for `batch` images per update. */
  gradScale(batch: number): number;
}

// ------------------------------------------------------------------------------------------- plumbing

/** YoloLoss.headInputs for a loss named `who`: the kept outputs of `sources`, in order; a missing one is an error. */
export function keptInputs(outs: Map<number, Tensor>, sources: readonly number[], who: string): Tensor[] {
  return sources.map((i) => {
    const t = outs.get(i);
    if (!t) throw new Error(`${who}: the forward did not keep layer ${i} (pass keep: loss.headSources)`);
    return t;
  });
}

const WG = 256;

/** One head's contribution, as the loss kernels left it. */
export interface HeadPart {
  /** the head input (a tape node input) */
  z: Tensor;
  /** gradient buffer, z's shape: dL/dz = gradFactor · buffer */
  grad: Tensor;
  gradFactor: number;
  /** [5, cells] per-prediction sums (freed here) */
  partials: Tensor;
  cells: number;
}

/**
 * Sums the partials per head (double-float reduce), forms the loss (lossScale · Σ box+obj+cls) and the
 * items (itemScale · Σ per row), and records the tape node whose backward is dz = gradFactor · g · grad per head.
 */
export function finishLoss(gpu: Gpu, parts: HeadPart[], lossScale: number, itemScale: number, stats: LossStats, opts: ComputeOptions, extra: { ciou?: Tensor[] } = {}): LossOutput {
  const nH = parts.length;
  const { heads, items, loss } = Tape.untracked(() => {
    const heads = new Tensor(gpu, [nH, 5], 'yolo-loss.heads');
    const tmp = new Tensor(gpu, [5], 'yolo-loss.tmp');
    parts.forEach((p, h) => {
      reduceRowsInto(p.partials, tmp, { rows: 5, count: p.cells, inner: Math.max(1, p.cells), outerStride: 0, rowStride: p.cells });
      gpu.copy(tmp, 0, heads, h * 20, 20);
      p.partials.dispose();
    });
    tmp.dispose();
    const items = new Tensor(gpu, [3], 'yolo-loss.items');
    const loss = new Tensor(gpu, [1], 'yolo-loss');
    gpu.dispatch({ file: 'yolo_loss', entry: 'finish' }, { n: nH, a: lossScale, b: itemScale }, { 1: heads, 3: loss, 4: items }, [1]);
    return { heads, items, loss };
  });
  const zs = parts.map((p) => p.z);
  const grads = parts.map((p) => p.grad);
  const tape = Tape.current;
  if (opts.keepGrads && tape) grads.forEach((g) => tape.keep(g));
  Tape.push({
    op: 'yoloLoss', inputs: zs, outputs: [loss], saved: grads,
    backward: ([g]) => parts.map((p) => {
      if (!p.z.requiresGrad) return null;
      const dz = new Tensor(gpu, p.z.shape);
      gpu.dispatch({ file: 'yolo_loss', entry: 'scale_by', constants: { WG } }, { n: p.z.size, a: p.gradFactor, b: 0 }, { 1: p.grad, 2: g!, 3: dz }, gpu.grid(p.z.size, WG));
      return dz;
    }),
  });
  // A recorded node's tape frees the gradient buffers after backward; otherwise (or when kept) the output does.
  const ownGrads = opts.keepGrads || loss.node === null;
  const out: LossOutput = {
    loss, items, heads, stats,
    grads: opts.keepGrads ? grads : undefined,
    ciou: extra.ciou,
    async read(): Promise<LossReadout> {
      // one readback: copy loss, items and heads into a staging tensor
      const stage = Tape.untracked(() => new Tensor(gpu, [4 + 5 * nH], 'yolo-loss.read'));
      gpu.copy(loss, 0, stage, 0, 4);
      gpu.copy(items, 0, stage, 4, 12);
      gpu.copy(heads, 0, stage, 16, 20 * nH);
      const v = await stage.toArray();
      stage.dispose();
      const hs: HeadReadout[] = [];
      for (let h = 0; h < nH; h++) {
        const o = 4 + 5 * h;
        hs.push({ box: v[o], obj: v[o + 1], cls: v[o + 2], aux0: v[o + 3], aux1: v[o + 4] });
      }
      return { loss: v[0], items: { box: v[1], obj: v[2], cls: v[3] }, heads: hs };
    },
    dispose(): void {
      loss.dispose();
      items.dispose();
      heads.dispose();
      if (ownGrads) grads.forEach((g) => g.dispose());
      extra.ciou?.forEach((t) => t.dispose());
    },
  };
  return out;
}

/** Checks a head input: NCHW [B, A*(5+C), H, W]. */
export function checkHead(z: Tensor, A: number, C: number, what: string): { B: number; H: number; W: number } {
  if (z.shape.length !== 4 || z.shape[1] !== A * (5 + C)) {
    throw new Error(`${what}: head input ${z.describe()} is not [B, ${A}*(5+${C}), H, W]`);
  }
  return { B: z.shape[0], H: z.shape[2], W: z.shape[3] };
}
