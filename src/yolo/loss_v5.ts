/**
 * YOLOv5's loss (ultralytics/yolov5 v7.0 utils/loss.py ComputeLoss) on the GPU (kernels/yolo_loss_v5.wgsl):
 *
 *   loss = (lbox + lobj + lcls) · bs,  items = [lbox, lobj, lcls] (after the gains, before · bs)
 *   lbox = box · Σ_heads mean over build_targets entries of (1 − CIoU(pbox, tbox))
 *   lobj = obj · Σ_heads balance_i · mean over every prediction of BCE(p_obj, tobj)
 *   lcls = cls · Σ_heads mean over entries × classes of BCE(p_cls, one-hot smoothed)   (only when nc > 1)
 *
 * with pbox = (2σ(txy) − 0.5, (2σ(twh))² · anchor) in grid units relative to the cell, tobj = the clamped
 * CIoU of the last build_targets entry of a cell (detached), CIoU's alpha detached (both treated as
 * constants in the gradient, as yolov5 trains). build_targets runs on the CPU (src/yolo/targets.ts), exactly;
 * entries sharing a cell (a centre on a grid line gives up to 3) are summed by one GPU thread per cell.
 *
 * Head inputs are NCHW [B, na·(5+nc), ny, nx] with p[b, a, y, x, k] = z[b, a·(5+nc) + k, y, x] (the Detect
 * conv's output before yolov5's view/permute).
 *
 * fl_gamma > 0 wraps both BCEs (objectness and classes) in yolov5's FocalLoss (alpha 0.25, as ComputeLoss
 * builds it): each element's BCE (with its pos_weight) is multiplied by af · (1 − p_t)^fl_gamma with
 * af = t·0.25 + (1 − t)·0.75, p_t = t·σ(z) + (1 − t)(1 − σ(z)), t the (detached) target; the modulating factor
 * is differentiated, as torch does. fl_gamma <= 0 leaves the plain BCE. Not implemented: autobalance.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Network } from '../darknet/network.js';
import type { YoloLayer } from '../layers/yolo.js';
import { buildTargetsV5, v5Rows, type Truth, type V5Targets } from './targets.js';
import { checkHead, finishLoss, type ComputeOptions, type HeadPart, type HeadStats, type LossOutput, type YoloLoss, keptInputs } from './loss_common.js';

/** The hyperparameters ComputeLoss reads (hyp.scratch-low.yaml names). */
export interface V5Hyp {
  box: number;
  obj: number;
  cls: number;
  cls_pw: number;
  obj_pw: number;
  anchor_t: number;
  fl_gamma: number;
  label_smoothing: number;
}

/** hyp.scratch-low.yaml's loss gains, unscaled (yolov5 train.py multiplies box by 3/nl, cls by nc/80 · 3/nl, obj by (img/640)² · 3/nl). */
export const V5_DEFAULT_HYP: V5Hyp = { box: 0.05, obj: 1.0, cls: 0.5, cls_pw: 1.0, obj_pw: 1.0, anchor_t: 4.0, fl_gamma: 0, label_smoothing: 0 };

/**
 * The gains as yolov5 train.py rescales them before building ComputeLoss: box · 3/nl, cls · nc/80 · 3/nl,
 * obj · (imgsz/640)² · 3/nl (nl = detection layers, imgsz = the square training size).
 */
export function scaleV5Hyp(hyp: Partial<V5Hyp>, o: { nl: number; nc: number; imgsz: number }): V5Hyp {
  const h = { ...V5_DEFAULT_HYP, ...hyp };
  const k = 3 / o.nl;
  return { ...h, box: h.box * k, cls: h.cls * (o.nc / 80) * k, obj: h.obj * (o.imgsz / 640) ** 2 * k };
}

/** yolov5's objectness balance per head, smallest stride first (P3-P5; P3-P7 for other counts). */
export function v5Balance(nl: number): number[] {
  if (nl === 3) return [4.0, 1.0, 0.4];
  if (nl > 5) throw new Error(`yolov5 loss: ${nl} heads (balance is defined for up to 5: P3-P7)`);
  return [4.0, 1.0, 0.25, 0.06, 0.02].slice(0, nl);
}

export interface V5HeadConfig {
  /** anchors in grid units (w, h) pairs (anchor pixels / stride) */
  anchors: number[];
  /** objectness balance of this head */
  balance: number;
}

const WG = 64;

/** Entries grouped by prediction cell (first appearance order), each group in build_targets order. */
export function groupTargets(bt: V5Targets, A: number, H: number, W: number): { cells: number[]; groups: number[][] } {
  const byCell = new Map<number, number[]>();
  for (let e = 0; e < bt.n; e++) {
    const cell = ((bt.b[e] * A + bt.a[e]) * H + bt.gj[e]) * W + bt.gi[e];
    let g = byCell.get(cell);
    if (!g) byCell.set(cell, (g = []));
    g.push(e);
  }
  return { cells: [...byCell.keys()], groups: [...byCell.values()] };
}

export class V5Loss implements YoloLoss {
  readonly kind = 'yolov5' as const;
  readonly hyp: V5Hyp;
  /** objectness target mix (ComputeLoss.gr) */
  gr = 1.0;

  /**
   * Head sources whose output the loss takes before their activation (ForwardOptions.logits): the head convs
   * of YOLOv5-form heads (activation=logistic + new_coords=1 + scale_x_y=2, see fromNetwork).
   */
  logitSources: number[] = [];
  /**
   * Set by fromNetwork when a [yolo] head decodes boxes differently from what this loss trains (the trained
   * weights would be read wrongly by Darknet, OpenCV and the detector); training refuses such a network.
   */
  decodeMismatch: string | null = null;

  constructor(readonly heads: V5HeadConfig[], readonly classes: number, hyp: Partial<V5Hyp> = {}, readonly headSources: number[] = []) {
    this.hyp = { ...V5_DEFAULT_HYP, ...hyp };
    if (!heads.length) throw new Error('yolov5 loss: no heads');
    if (!Number.isFinite(this.hyp.fl_gamma)) throw new Error(`yolov5 loss: fl_gamma=${this.hyp.fl_gamma} is not a number`);
    const na = heads[0].anchors.length / 2;
    if (!heads.every((h) => h.anchors.length === 2 * na)) throw new Error('yolov5 loss: every head needs the same number of anchors');
  }

  /**
   * From a network's [yolo] heads: anchors (pixels, mask order) / stride, stride = net width / grid width;
   * balance by stride (smallest first gets 4.0). The [yolo] layers' classes must agree.
   */
  static fromNetwork(net: Network, hyp: Partial<V5Hyp> = {}): V5Loss {
    const layers = net.heads().filter((l) => l.kind === 'yolo');
    if (!layers.length) throw new Error(`${net.file}: no [yolo] layers (the yolov5 loss needs them)`);
    const nc = layers[0].options.classes;
    const strides = layers.map((l) => {
      if (l.options.classes !== nc) throw new Error(`${net.file}: [yolo] layers disagree on classes (${nc} vs ${l.options.classes} at ${l.where})`);
      const sx = net.input.w / l.input.w;
      const sy = net.input.h / l.input.h;
      if (sx !== sy) throw new Error(`${l.where}: [yolo] stride ${sx}x${sy} is not square (the yolov5 loss uses one stride per head)`);
      return sx;
    });
    const order = strides.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
    const bal = v5Balance(layers.length);
    const balance = new Array<number>(layers.length);
    order.forEach((i, rank) => (balance[i] = bal[rank]));
    const heads = layers.map((l, i) => ({ anchors: l.maskAnchors.flat().map((v) => v / strides[i]), balance: balance[i] }));
    const loss = new V5Loss(heads, nc, hyp, layers.map((l) => l.sources[0]));
    const problems: string[] = [];
    for (const l of layers) {
      const form = v5HeadForm(net, l);
      if (form === null) loss.logitSources.push(l.sources[0]);
      else problems.push(`${l.where}: ${form}`);
    }
    if (problems.length) {
      loss.logitSources = [];
      loss.decodeMismatch = `${problems.join('; ')}. The yolov5 loss trains YOLOv5's boxes (x = 2σ(t) − 0.5, w = (2σ(t))²·anchor, on the head conv's logits), so Darknet, OpenCV and the detector would decode the trained weights wrongly. Write each head as Scaled-YOLOv4's cfgs do: activation=logistic in the [convolutional] before it, new_coords=1 and scale_x_y=2.0 in [yolo] (or train with the Darknet loss)`;
    }
    return loss;
  }

  headInputs(outs: Map<number, Tensor>): Tensor[] {
    return keptInputs(outs, this.headSources, 'yolov5 loss');
  }

  /** yolov5 steps on the gradient of this loss as is (it already carries · bs). */
  gradScale(batch: number): number {
    void batch;
    return 1;
  }

  /** build_targets for head k (grid ny x nx). */
  targets(k: number, ny: number, nx: number, truths: readonly (readonly Truth[])[]): V5Targets {
    return buildTargetsV5(v5Rows(truths), { ny, nx, anchors: this.heads[k].anchors }, this.hyp.anchor_t);
  }

  compute(zs: Tensor[], truths: readonly (readonly Truth[])[], opts: ComputeOptions = {}): LossOutput {
    if (zs.length !== this.heads.length) throw new Error(`yolov5 loss: ${zs.length} head inputs for ${this.heads.length} heads`);
    const gpu = zs[0].gpu;
    const nc = this.classes;
    const h = this.hyp;
    const cp = 1 - 0.5 * h.label_smoothing;
    const cn = 0.5 * h.label_smoothing;
    const parts: HeadPart[] = [];
    const stats: HeadStats[] = [];
    const cious: Tensor[] = [];
    let bs = 0;
    zs.forEach((z, k) => {
      const A = this.heads[k].anchors.length / 2;
      const { B, H, W } = checkHead(z, A, nc, `yolov5 loss head ${k}`);
      if (truths.length !== B) throw new Error(`yolov5 loss: ${truths.length} truth lists for a batch of ${B}`);
      bs = B;
      const bt = this.targets(k, H, W, truths);
      const { cells: gCells, groups } = groupTargets(bt, A, H, W);
      stats.push({ assigned: bt.n, assignedCells: gCells.length });
      const offGroup = 0;
      const offEntry = 4 * groups.length;
      const table = new Float32Array(Math.max(1, offEntry + 8 * bt.n));
      const u32 = new Uint32Array(table.buffer);
      let at = 0;
      groups.forEach((g, gi) => {
        u32[offGroup + 4 * gi] = gCells[gi];
        u32[offGroup + 4 * gi + 1] = at;
        u32[offGroup + 4 * gi + 2] = g.length;
        for (const e of g) {
          const o = offEntry + 8 * at;
          table.set([bt.tbox[4 * e], bt.tbox[4 * e + 1], bt.tbox[4 * e + 2], bt.tbox[4 * e + 3], bt.anch[2 * e], bt.anch[2 * e + 1]], o);
          u32[o + 6] = bt.tcls[e];
          u32[o + 7] = e;
          at++;
        }
      });
      const cells = B * A * H * W;
      const grad = new Tensor(gpu, z.shape, `v5head${k}.grad`);
      const { tab, partials, ciou } = Tape.untracked(() => ({
        tab: Tensor.from(gpu, [table.length], table, `v5head${k}.table`),
        partials: new Tensor(gpu, [5, cells], `v5head${k}.partials`),
        ciou: new Tensor(gpu, [Math.max(1, bt.n)], `v5head${k}.ciou`),
      }));
      const n = bt.n;
      // kernels/yolo_loss_v5.wgsl struct Params
      const params = (threads: number) => ({
        n: threads, A, H, W, C: nc, wBox: n ? h.box / n : 0, wObj: (h.obj * this.heads[k].balance) / cells, wCls: nc > 1 && n ? h.cls / (n * nc) : 0,
        gradMul: B, cp, cn, clsPw: h.cls_pw, objPw: h.obj_pw, gr: this.gr, offGroup, offEntry, zero: 0, cells, gamma: h.fl_gamma > 0 ? h.fl_gamma : 0,
      });
      const bind = { 1: z, 2: tab, 3: grad, 4: partials, 5: ciou };
      gpu.dispatch({ file: 'yolo_loss_v5', entry: 'v5_neg', constants: { WG } }, params(cells), { 1: z, 3: grad, 4: partials }, gpu.grid(cells, WG));
      if (groups.length) gpu.dispatch({ file: 'yolo_loss_v5', entry: 'v5_pos', constants: { WG } }, params(groups.length), bind, gpu.grid(groups.length, WG));
      tab.dispose();
      if (opts.keepIou) cious.push(ciou);
      else ciou.dispose();
      parts.push({ z, grad, gradFactor: 1, partials, cells });
    });
    return finishLoss(gpu, parts, bs, 1, { heads: stats, assigned: stats.reduce((s, x) => s + x.assigned, 0) }, opts, { ciou: opts.keepIou ? cious : undefined });
  }
}

/**
 * null when a [yolo] head decodes exactly what the yolov5 loss trains: its source is a [convolutional] with
 * activation=logistic and the head has new_coords=1 and scale_x_y=2 (Darknet/OpenCV then compute x = 2σ(t) −
 * 0.5, w = (2σ(t))²·anchor, which is YOLOv5's Detect); else why not.
 */
export function v5HeadForm(net: Network, l: YoloLayer): string | null {
  const src = l.sources[0] >= 0 ? net.layers[l.sources[0]] : undefined;
  const act = src?.kind === 'convolutional' ? src.activation : undefined;
  const o = l.options;
  if (act === 'logistic' && o.newCoords && o.scaleXY === 2) return null;
  const decode = o.newCoords
    ? `new_coords=1, scale_x_y=${o.scaleXY}, after ${src?.kind === 'convolutional' ? `activation=${act}` : `a [${src?.kind ?? '?'}] layer`}`
    : `Darknet's x = σ(t)${o.scaleXY !== 1 ? `·${o.scaleXY}` : ''}, w = e^t·anchor`;
  return `this [yolo] head decodes ${decode}`;
}

/**
 * YOLOv5's initial head biases (models/yolo.py Detect._initialize_biases) for a network trained from a seeded
 * initialization: objectness += log(8 / cells) with cells the head's grid (8 objects per image) and each class
 * += log(0.6 / (nc - 0.99999)), so the first iterations do not spend themselves pushing every cell's 0.5 down.
 * YOLOv5 counts the cells of a 640-pixel image, (640/stride)²; this uses the network's own grid. Adds to the
 * host biases of each head's [convolutional] (filters = anchors·(5 + nc), a bias per anchor and entry) and
 * returns a log line, or null when a head source is not a bias-carrying conv.
 */
export function applyV5PriorBiases(net: Network, loss: V5Loss): string | null {
  const nc = loss.classes;
  const na = loss.heads[0].anchors.length / 2;
  const parts: string[] = [];
  for (const src of loss.headSources) {
    const l = net.layers[src];
    if (l.kind !== 'convolutional') return null;
    const b = l.data?.biases;
    if (l.batchNormalize || !b || b.length !== na * (5 + nc)) return null;
    const obj = Math.log(8 / (l.output.w * l.output.h));
    const cls = Math.log(0.6 / (nc - 0.99999));
    for (let a = 0; a < na; a++) {
      b[a * (5 + nc) + 4] += obj;
      for (let c = 0; c < nc; c++) b[a * (5 + nc) + 5 + c] += cls;
    }
    parts.push(`layer ${src} obj ${obj.toFixed(2)}`);
  }
  net.release();
  return `yolov5 initial head biases (Detect._initialize_biases, on this network's grids): ${parts.join(', ')}, classes ${Math.log(0.6 / (nc - 0.99999)).toFixed(2)}`;
}

/** Whether every [yolo] head of the network decodes YOLOv5's boxes (v5HeadForm), so the yolov5 loss may train it. */
export function v5HeadsFit(net: Network): boolean {
  const heads = net.heads().filter((l) => l.kind === 'yolo');
  return heads.length > 0 && heads.every((l) => v5HeadForm(net, l) === null);
}
