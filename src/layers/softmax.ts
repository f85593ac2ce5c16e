/**
 * [softmax] (Darknet parse_softmax / forward_softmax_layer): softmax over each of `groups` equal contiguous
 * parts of every image's flattened input, of x / temperature. Keys: groups (1), temperature (1), noloss
 * (kept for training), tree= (hierarchical softmax, darknet9000.cfg: a softmax over each group of sibling
 * classes of the tree file, softmax_tree; `groups` is then unused, as in Darknet; the tree must have one
 * class per input; see src/darknet/tree.ts for the file and hierarchyTarget for the classifier target).
 * Refused: spatial. Darknet leaves the output's w/h/c unset (no image for a following layer).
 */
import { Layer, type BuildContext, type ForwardContext, refuseNonzero, shapeCount } from '../darknet/layer.js';
import { softmaxRows, softmaxTree } from '../tensor/ops/softmax.js';
import { groupTable, parseTree, readLayerFile, requireLayerFile, type LayerFile, type Tree } from '../darknet/tree.js';
import type { Tensor } from '../tensor/tensor.js';

export class SoftmaxLayer extends Layer {
  readonly kind = 'softmax';
  readonly groups: number;
  readonly temperature: number;
  readonly noloss: boolean;
  /** tree=: the parsed tree file, or why it is absent (null: no tree key). */
  readonly tree: LayerFile<Tree> | null;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    refuseNonzero(ctx, { spatial: 'spatial softmax (spatial)' });
    this.groups = s.intMin('groups', 1, 1);
    this.temperature = s.float('temperature', 1);
    if (!(this.temperature > 0)) throw s.error('temperature', `must be > 0, got ${this.temperature}`);
    this.noloss = s.flag('noloss');
    const n = shapeCount(ctx.input);
    this.tree = s.has('tree') ? readLayerFile(ctx, 'tree', 'tree', parseTree, 'forward and training need it') : null;
    if (this.tree?.ok && this.tree.value.n !== n) throw s.error('tree', `the tree file ${this.tree.file} has ${this.tree.value.n} classes, the layer has ${n} inputs per image`);
    if (n % this.groups !== 0) throw s.error('groups', `${n} inputs are not divisible by groups=${this.groups}`);
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'softmax', filters: this.tree ? 'tree' : this.groups > 1 ? `g${this.groups}` : '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    const B = x.shape[0];
    const per = x.size / B;
    if (this.tree) {
      const t = requireLayerFile(this.tree, 'the forward');
      return softmaxTree(x, { rows: B, n: per, s2: per, temperature: this.temperature }, groupTable(t));
    }
    const n = per / this.groups;
    return softmaxRows(x, { rows: B * this.groups, n, c0: this.groups, s0: n, s2: per, temperature: this.temperature });
  }
}

export const build = (ctx: BuildContext): SoftmaxLayer => new SoftmaxLayer(ctx);
