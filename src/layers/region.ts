/**
 * [region] (Darknet parse_region / make_region_layer; forward as pjreddie's forward_region_layer): the
 * YOLOv2 head on [B, n*(coords+1+classes), H, W]. The forward keeps the NCHW layout and applies logistic to
 * x, y (entries 0, 1) and the objectness (entry coords), and softmax over the classes of each anchor and
 * cell (softmax=1) or logistic (softmax=0); w, h stay raw. (AlexeyAB's CPU path instead transposes to
 * [cells*n][entries] and leaves x, y to the decoder; the values are the same.)
 * tree= (YOLO9000, yolo9000.cfg): the classes are a class hierarchy (src/darknet/tree.ts) and get a softmax
 * per group of siblings (softmax_tree; `softmax` is then unused, as in Darknet); the tree must have
 * `classes` lines. map= (coco9k.map): the dataset class -> tree class map of the loss (Darknet's l.map).
 * Either file may be absent at build time (a warning): forward, detection and training then refuse.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { headActivation } from '../tensor/ops/yolo_act.js';
import { softmaxRows, softmaxTree } from '../tensor/ops/softmax.js';
import { groupTable, parseClassMap, parseTree, readLayerFile, requireLayerFile, type LayerFile, type Tree } from '../darknet/tree.js';
import { readAnchors } from './yolo.js';
import { MAX_ANCHORS, MAX_CLASSES } from '../util/validate.js';
import type { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';

export interface RegionOptions {
  classes: number;
  coords: number;
  num: number;
  anchors: number[];
  softmax: boolean;
  maxBoxes: number;
  log: boolean;
  sqrt: boolean;
  focalLoss: boolean;
  jitter: number;
  resize: number;
  rescore: boolean;
  thresh: number;
  classfix: number;
  absolute: boolean;
  random: number;
  coordScale: number;
  objectScale: number;
  noobjectScale: number;
  maskScale: number;
  classScale: number;
  biasMatch: boolean;
  /** tree=: the class hierarchy, or why its file is absent (null: no tree key). */
  tree: LayerFile<Tree> | null;
  /** map=: the dataset class -> tree class map of the loss, or why its file is absent (null: no map key). */
  map: LayerFile<Int32Array> | null;
}

export class RegionLayer extends Layer {
  readonly kind = 'region';
  /** A detection head (Network.heads()). */
  override readonly head = true;
  readonly options: RegionOptions;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const coords = s.intMin('coords', 0, 4);
    const classes = s.intRange('classes', 0, MAX_CLASSES, 20);
    const num = s.intRange('num', 1, MAX_ANCHORS, 1);
    const anchors = readAnchors(ctx, s.floatList('anchors', []), num, [...Array(num).keys()]);
    if (coords < 4) throw s.error('coords', `must be >= 4 (x, y, w, h), got ${coords}`);
    this.options = {
      classes, coords, num, anchors,
      softmax: s.flag('softmax'),
      maxBoxes: s.intMin('max', 1, 200),
      log: s.flag('log'),
      sqrt: s.flag('sqrt'),
      focalLoss: s.flag('focal_loss'),
      jitter: s.float('jitter', 0.2),
      resize: s.float('resize', 1),
      rescore: s.flag('rescore'),
      thresh: s.float('thresh', 0.5),
      classfix: s.int('classfix', 0),
      absolute: s.flag('absolute'),
      random: s.float('random', 0),
      coordScale: s.float('coord_scale', 1),
      objectScale: s.float('object_scale', 1),
      noobjectScale: s.float('noobject_scale', 1),
      maskScale: s.float('mask_scale', 1),
      classScale: s.float('class_scale', 1),
      biasMatch: s.flag('bias_match'),
      tree: s.has('tree') ? readLayerFile(ctx, 'tree', 'tree', parseTree) : null,
      map: s.has('map') ? readLayerFile(ctx, 'map', 'class map', (text, file) => parseClassMap(text, file, classes), 'training needs it') : null,
    };
    const t = this.options.tree;
    if (t?.ok && t.value.n !== classes) throw s.error('tree', `the tree file ${t.file} has ${t.value.n} classes, classes=${classes}`);
    const want = num * (coords + 1 + classes);
    if (ctx.input.c !== want) {
      throw s.error(undefined, `expects ${num} anchors x (${coords} coords + 1 + ${classes} classes) = ${want} input channels, the previous layer outputs ${ctx.input.c} (set filters=${want} in the [convolutional] before it)`);
    }
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'region', filters: '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    const o = this.options;
    const E = o.coords + 1 + o.classes;
    const tree = o.tree ? requireLayerFile(o.tree, 'the forward') : null;
    const softmax = o.softmax || tree !== null;
    const a = headActivation(x, { entries: E, xyLogistic: true, actFrom: o.coords, actTo: softmax ? o.coords + 1 : E });
    if (!softmax || o.classes === 0) return a;
    const [B, , H, W] = x.shape;
    const hw = H * W;
    const rows = { rows: B * o.num * hw, n: o.classes, stride: hw, offset: (o.coords + 1) * hw, c0: hw, s0: 1, c1: o.num, s1: E * hw, s2: o.num * E * hw };
    const y = tree ? softmaxTree(a, rows, groupTable(tree)) : softmaxRows(a, rows);
    if (!Tape.current) a.dispose();
    return y;
  }
}

export const build = (ctx: BuildContext): RegionLayer => new RegionLayer(ctx);
