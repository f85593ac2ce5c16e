/**
 * Darknet's [region] training loss (YOLOv2, and YOLO9000 with tree=) on the GPU (kernels/region_loss.wgsl),
 * AlexeyAB's forward_region_layer with state.train: its l.delta is written for the head input z (the
 * [region] layer's input; Darknet's backward adds l.delta to it), so dL/dz = -delta. The kernel comment has
 * the rules; in short, per image:
 *   every prediction: objectness toward 0 (noobject_scale) unless its best IoU with a truth is > thresh;
 *     while Darknet's `seen` < 12800, the box toward the cell centre and the anchor (scale .01);
 *   every truth, in order (later truths overwrite): its cell, the best anchor by shape IoU (bias_match: the
 *     anchor shapes), box (coord_scale), objectness toward 1 (rescore: the IoU; object_scale), classes
 *     (class_scale): softmax cross-entropy deltas [c] - p, or with a tree the group of the class and of each
 *     ancestor (delta_region_class with hierarchy); the class goes through map= when the cfg gives one.
 * The value is the implied loss (see the kernel); items box / obj / cls; per head aux0 = Darknet's cost
 * (|delta|^2), aux1 = ignored predictions.
 *
 * Differences from Darknet, on inputs Darknet mishandles: a truth centre at x = 1 (or y = 1) takes the last
 * cell instead of a cell outside the grid; a truth whose class has no entry in the map is an error. Darknet's
 * classification-only truths (x, y > 100000, the ImageNet half of YOLO9000 training) are not supported: the
 * engine's truths are boxes in [0, 1]. Refused: softmax=0 without a tree (AlexeyAB leaves such classes raw,
 * pjreddie applies logistic), classfix != 0, coords != 4.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Network } from '../darknet/network.js';
import type { RegionLayer } from '../layers/region.js';
import { requireLayerFile, treeTable, type Tree } from '../darknet/tree.js';
import type { Truth } from './targets.js';
import { checkHead, finishLoss, type ComputeOptions, type HeadPart, type HeadStats, type LossOutput, type YoloLoss, keptInputs } from './loss_common.js';

/** Everything the loss needs from one [region] head. */
export interface RegionHeadConfig {
  classes: number;
  num: number;
  /** (w, h) pairs in grid cells, `num` of them */
  anchors: number[];
  /** truths per image Darknet reads (`max`, default 200) */
  maxBoxes: number;
  noobjectScale: number;
  objectScale: number;
  coordScale: number;
  classScale: number;
  /** ignore threshold of the objectness (Darknet `thresh`) */
  thresh: number;
  rescore: boolean;
  biasMatch: boolean;
  focal: boolean;
  /** tree= (hierarchical classes) or null */
  tree: Tree | null;
  /** map= (dataset class -> head class) or null */
  map: Int32Array | null;
}

/** Darknet applies the anchor prior to every prediction while *net.seen < 12800. */
export const REGION_PRIOR_SEEN = 12800;

/** The loss configuration of a parsed [region] layer; refuses what the loss does not implement, naming the layer. */
export function regionHeadConfig(l: Pick<RegionLayer, 'options' | 'where' | 'index'>): RegionHeadConfig {
  const o = l.options;
  const what = `${l.where}: layer ${l.index} [region]`;
  if (o.coords !== 4) throw new Error(`${what}: coords=${o.coords}: the loss needs coords=4`);
  if (o.classfix !== 0) throw new Error(`${what}: classfix=${o.classfix} is not supported by the loss`);
  const tree = o.tree ? requireLayerFile(o.tree, 'training') : null;
  const map = o.map ? requireLayerFile(o.map, 'training') : null;
  if (!o.softmax && !tree) throw new Error(`${what}: softmax=0 is not supported by the loss (AlexeyAB leaves the classes raw, pjreddie applies logistic)`);
  return {
    classes: o.classes, num: o.num, anchors: o.anchors.slice(0, 2 * o.num), maxBoxes: o.maxBoxes,
    noobjectScale: o.noobjectScale, objectScale: o.objectScale, coordScale: o.coordScale, classScale: o.classScale,
    thresh: o.thresh, rescore: o.rescore, biasMatch: o.biasMatch, focal: o.focalLoss && !tree, tree, map,
  };
}

const WG = 64;

/** The truths of a batch as the kernel reads them: [B, T, 6] (x, y, w, h, class, class through the map). */
export function regionTruthTable(c: RegionHeadConfig, truths: readonly (readonly Truth[])[], what: string): { table: Float32Array; T: number; used: number; badClass: number } {
  const lists = truths.map((l) => l.slice(0, c.maxBoxes));
  const T = Math.max(1, ...lists.map((l) => l.length));
  const table = new Float32Array(truths.length * T * 6);
  let used = 0;
  let badClass = 0;
  lists.forEach((l, b) => l.forEach((t, k) => {
    if (!Number.isInteger(t.cls) || t.cls < 0) throw new Error(`${what}: image ${b} truth ${k}: class ${t.cls} is not a class index`);
    let mapped = t.cls;
    if (t.cls >= c.classes) badClass++;
    else {
      used++;
      if (c.map) {
        if (t.cls >= c.map.length) throw new Error(`${what}: image ${b} truth ${k}: class ${t.cls} has no entry in the class map (${c.map.length} entries)`);
        mapped = c.map[t.cls];
      }
    }
    table.set([t.x, t.y, t.w, t.h, t.cls, mapped], (b * T + k) * 6);
  }));
  return { table, T, used, badClass };
}

export class RegionLoss implements YoloLoss {
  readonly kind = 'darknet' as const;

  /** heads: one config per [region] head in cfg order; headSources: the layers feeding them. */
  constructor(readonly heads: RegionHeadConfig[], readonly headSources: number[] = []) {
    if (!heads.length) throw new Error('region loss: no [region] heads');
  }

  static fromNetwork(net: Network): RegionLoss {
    const layers = net.heads().filter((l): l is RegionLayer => l.kind === 'region');
    if (!layers.length) throw new Error(`${net.file}: no [region] layers`);
    return new RegionLoss(layers.map(regionHeadConfig), layers.map((l) => l.sources[0]));
  }

  headInputs(outs: Map<number, Tensor>): Tensor[] {
    return keptInputs(outs, this.headSources, 'region loss');
  }

  /** Darknet steps w += lr/batch · Σ_images updates: SGD gradScale = 1/batch on this summed loss. */
  gradScale(batch: number): number {
    return 1 / batch;
  }

  compute(zs: Tensor[], truths: readonly (readonly Truth[])[], opts: ComputeOptions = {}): LossOutput {
    if (zs.length !== this.heads.length) throw new Error(`region loss: ${zs.length} head inputs for ${this.heads.length} [region] heads`);
    const gpu = zs[0].gpu;
    const seen = opts.seen ?? 0;
    const parts: HeadPart[] = [];
    const stats: HeadStats[] = [];
    zs.forEach((z, k) => {
      const c = this.heads[k];
      const A = c.num;
      const C = c.classes;
      const { B, H, W } = checkHead(z, A, C, `region loss head ${k}`);
      if (truths.length !== B) throw new Error(`region loss: ${truths.length} truth lists for a batch of ${B}`);
      const tt = regionTruthTable(c, truths, `region loss head ${k}`);
      stats.push({ assigned: tt.used, assignedCells: tt.used, badClass: tt.badClass });
      const cells = B * A * H * W;
      const delta = new Tensor(gpu, z.shape, `region${k}.delta`);
      const { tab, anchors, tree, partials } = Tape.untracked(() => ({
        tab: Tensor.from(gpu, [tt.table.length], tt.table, `region${k}.truths`),
        anchors: Tensor.from(gpu, [2 * A], c.anchors, `region${k}.anchors`),
        tree: c.tree ? Tensor.from(gpu, [3 * c.tree.n + 2 * c.tree.groups], treeTable(c.tree), `region${k}.tree`) : new Tensor(gpu, [1], `region${k}.notree`),
        partials: new Tensor(gpu, [5, cells], `region${k}.partials`),
      }));
      // kernels/region_loss.wgsl struct Params
      const params = (n: number) => ({
        n, B, A, C, H, W, T: tt.T, G: c.tree ? c.tree.groups : 0, tree: c.tree ? 1 : 0, prior: seen < REGION_PRIOR_SEEN ? 1 : 0,
        rescore: c.rescore ? 1 : 0, biasMatch: c.biasMatch ? 1 : 0, focal: c.focal ? 1 : 0, cells,
        noobjScale: c.noobjectScale, objScale: c.objectScale, coordScale: c.coordScale, classScale: c.classScale, thresh: c.thresh,
      });
      const bind = { 1: z, 2: tab, 3: delta, 4: partials, 5: anchors };
      gpu.dispatch({ file: 'region_loss', entry: 'neg', constants: { WG } }, params(cells), bind, gpu.grid(cells, WG));
      gpu.dispatch({ file: 'region_loss', entry: 'pos' }, params(B), { ...bind, 6: tree }, [B, 1]);
      gpu.dispatch({ file: 'region_loss', entry: 'cost', constants: { WG } }, params(cells), { 3: delta, 4: partials }, gpu.grid(cells, WG));
      for (const t of [tab, anchors, tree]) t.dispose(); // the queue runs in order: the pool hands the buffers out only to later work
      parts.push({ z, grad: delta, gradFactor: -1, partials, cells });
    });
    return finishLoss(gpu, parts, 1, 1, { heads: stats, assigned: stats.reduce((s, h) => s + h.assigned, 0) }, opts);
  }
}
