/**
 * [convolutional] (Darknet parse_convolutional / make_convolutional_layer / convolutional_out_height).
 *
 * Keys: filters (1), size (1), stride (1) | stride_x + stride_y, pad (0: if non-zero, padding = size/2),
 * padding (0, per side), groups (1), dilation (1; forced to 1 for size 1; applied as padding*dilation like
 * Darknet's cuDNN/im2col path), batch_normalize (0), activation (logistic), share_index (reuse an earlier
 * layer's parameters, which then are not in the .weights file).
 * binary=1: binary weights, sign(w) * mean|w| per filter (src/tensor/ops/binarize.ts; Darknet's GPU path
 * binarize_weights_gpu: its CPU forward ignores `binary`). xnor=1: binary weights and binary inputs
 * (x > 0 ? 1 : -1, binarize_cpu), zero padding; groups forced to 1 as make_convolutional_layer does; BFLOPs / 32.
 * Backward as Darknet's GPU path: straight-through to the real weights, the input gradient through the
 * binary weights times hardtan'(x) for xnor. bin_output (Darknet's bit-packed inference then skips this
 * layer's activation) only sets the info label convXB: the activation is kept, as in Darknet's training.
 * Refused when non-zero: cbn, antialiasing, sway/rotate/stretch/stretch_sway, deform-style keys, flipped,
 * coordconv, assisted_excitation, dot, reverse.
 *
 * out = (in + 2*padding - size) / stride + 1 (C integer division).
 * .weights order: biases[n], [scales[n], rolling_mean[n], rolling_variance[n] if batch_normalize],
 * weights[n][c/groups][size][size].
 * BFLOPs (Darknet): 2 * nweights * out_h * out_w / 1e9 with nweights = (c/groups) * n * size * size.
 */
import { Layer, type BuildContext, type ForwardContext, type LayerTensor, type Mode, param, readActivation, refuseNonzero, idiv } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { conv2d, conv2dMaxpoolForward, convGeom, type Conv2dParams } from '../tensor/ops/conv2d.js';
import { conv2dWinograd, winogradPlan, winogradWeights, type WinogradTile } from '../tensor/ops/conv2d_winograd.js';
import { fusableMaxpool, type MaxpoolOptions } from '../tensor/ops/pool.js';
import type { DType, Tensor } from '../tensor/tensor.js';
import type { Gpu } from '../gpu/device.js';
import type { Rng } from '../util/rng.js';
import { filled, LinearParams, linearForward, uniformInit } from './common.js';
import { binarizeInput, binarizeWeights } from '../tensor/ops/binarize.js';
import { Tape } from '../tensor/tape.js';

export class ConvolutionalLayer extends Layer {
  readonly kind = 'convolutional';
  readonly filters: number;
  readonly size: number;
  readonly strideX: number;
  readonly strideY: number;
  /** Padding per side (Darknet l.pad). */
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  readonly batchNormalize: boolean;
  readonly activation: Activation;
  /** xnor=1: binary weights and binary inputs (Darknet l.xnor). */
  readonly xnor: boolean;
  /** binary=1: binary weights only (Darknet l.binary). */
  readonly binary: boolean;
  /** bin_output=1 (the info label convXB only). */
  readonly binOutput: boolean;
  /** The binarized inference weights (constants while prepared), keyed by the folded weights tensor (on the owner). */
  private binW: { src: Tensor; wb: Tensor } | null = null;
  /**
   * Inference through Winograd: the transformed weights of the folded `w` they were made from, by output tile
   * (a resized network may take F(4x4) at one size and F(2x2) at another; on the owner).
   */
  private winoW: { src: Tensor; u: Partial<Record<WinogradTile, Tensor>> } | null = null;
  /** The layer whose parameters this one shares (share_index), or null. */
  share: ConvolutionalLayer | null;
  /** Training-only options kept for the trainer. */
  readonly trainOptions: { gradCentr: boolean };

  /** The GPU parameters (prepare / release / pull / parameters); unused when sharing another layer's. */
  private readonly gpuParams = new LinearParams(this, 'conv');

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    ctx.requireImage();
    refuseNonzero(ctx, {
      cbn: 'cross-batch normalization (cbn)',
      antialiasing: 'anti-aliased (blur) downsampling',
      sway: 'deformable sway convolution',
      rotate: 'deformable rotate convolution',
      stretch: 'deformable stretch convolution',
      stretch_sway: 'deformable stretch_sway convolution',
      flipped: 'transposed weights (flipped)',
      coordconv: 'coordconv',
      assisted_excitation: 'assisted excitation',
      dot: 'contrastive dot loss (dot)',
      reverse: 'reverse',
    });
    this.filters = s.intMin('filters', 1, 1);
    this.binary = s.flag('binary');
    this.xnor = s.flag('xnor');
    this.binOutput = s.flag('bin_output');
    const groups = s.intMin('groups', 1, 1);
    // make_convolutional_layer: `if (xnor) groups = 1;   // disable groups for XNOR-net`
    this.groups = this.xnor ? 1 : groups;
    this.size = s.intMin('size', 1, 1);
    let sx = s.has('stride_x') ? s.int('stride_x') : -1;
    let sy = s.has('stride_y') ? s.int('stride_y') : -1;
    if (sx < 1 || sy < 1) {
      const st = s.intMin('stride', 1, 1);
      if (sx < 1) sx = st;
      if (sy < 1) sy = st;
    } else if (s.has('stride')) s.int('stride');
    this.strideX = sx;
    this.strideY = sy;
    let dil = s.intMin('dilation', 1, 1);
    if (this.size === 1) dil = 1;
    this.dilation = dil;
    const pad = s.int('pad', 0);
    let padding = s.intMin('padding', 0, 0);
    if (pad) padding = idiv(this.size, 2);
    this.padding = padding;
    this.activation = readActivation(ctx, 'logistic');
    this.batchNormalize = s.int('batch_normalize', 0) !== 0;
    this.trainOptions = { gradCentr: s.flag('grad_centr') };

    const { c, h, w } = ctx.input;
    if (c % this.groups !== 0) throw s.error('groups', `${c} input channels are not divisible by groups=${this.groups}`);
    if (this.filters % this.groups !== 0) throw s.error('groups', `filters=${this.filters} is not divisible by groups=${this.groups}`);
    const outH = idiv(h + 2 * padding - this.size, sy) + 1;
    const outW = idiv(w + 2 * padding - this.size, sx) + 1;
    if (h + 2 * padding - this.size < 0 || w + 2 * padding - this.size < 0 || outH < 1 || outW < 1) {
      throw s.error('size', `a ${this.size}x${this.size} kernel with padding ${padding} does not fit the ${w} x ${h} input`);
    }
    if (dil > 1) {
      const g = convGeom([1, c, h, w], [this.filters, c / this.groups, this.size, this.size], this.geom());
      if (g.OH !== outH || g.OW !== outW) {
        throw s.error('dilation', `dilation ${dil} with size ${this.size} and padding ${padding}: the dilated output ${g.OW} x ${g.OH} differs from Darknet's ${outW} x ${outH} (Darknet's size formula ignores dilation); not supported`);
      }
    }
    this.output = { c: this.filters, h: outH, w: outW };

    let share: ConvolutionalLayer | null = null;
    if (s.has('share_index')) {
      const ref = ctx.ref('share_index', s.int('share_index'));
      const other = ctx.layers[ref];
      if (!(other instanceof ConvolutionalLayer)) throw s.error('share_index', `layer ${ref} is a [${other.kind}], not a [convolutional]`);
      if (other.size !== this.size || other.nweights !== this.nweights || other.input.c !== c || other.filters !== this.filters || other.batchNormalize !== this.batchNormalize) {
        throw s.error('share_index', `layer ${ref} has a different size, filters, channels or batch_normalize (Darknet: "Layer size, nweights, channels or filters don't match for the share_layer")`);
      }
      share = other.share ?? other;
    }
    this.share = share;
    if (!share) {
      const n = this.filters;
      this.params = [param('biases', [n])];
      if (this.batchNormalize) this.params.push(param('scales', [n]), param('rolling_mean', [n]), param('rolling_variance', [n]));
      this.params.push(param('weights', [n, c / this.groups, this.size, this.size]));
    }
  }

  get nweights(): number {
    return (this.input.c / this.groups) * this.filters * this.size * this.size;
  }

  geom(): Conv2dParams {
    const p = this.padding * this.dilation;
    return { stride: [this.strideY, this.strideX], pad: [p, p], dilation: this.dilation, groups: this.groups };
  }

  override bflops(): number {
    const b = Math.fround((2.0 * this.nweights * this.output.h * this.output.w) / 1e9);
    return this.xnor ? Math.fround(b / 32) : b;
  }

  override describe(): { type: string; filters: string; size: string } {
    const k = this.size;
    const f = this.groups > 1 ? `${this.filters}/${this.groups}` : `${this.filters}`;
    let size: string;
    if (this.strideX !== this.strideY) size = `${k}x${k}/${this.strideX}x${this.strideY}`;
    else if (this.dilation > 1) size = `${k} x ${k}/${this.strideX}(${this.dilation})`;
    else size = `${k} x ${k}/${this.strideX}`;
    const type = this.xnor ? (this.binOutput ? 'convXB' : 'convX') : this.share ? 'convS' : 'conv';
    return { type, filters: f, size };
  }

  override init(rng: Rng): void {
    if (this.share) return;
    const n = this.filters;
    const scale = Math.sqrt(2 / ((this.size * this.size * this.input.c) / this.groups));
    this.data = { biases: filled(n, 0), weights: uniformInit(rng, this.nweights, scale) };
    if (this.batchNormalize) {
      // Darknet leaves rolling_variance at 0 (only meaningful after training); 1 keeps an untrained net finite.
      Object.assign(this.data, { scales: filled(n, 1), rolling_mean: filled(n, 0), rolling_variance: filled(n, 1) });
    }
  }

  /** Uses the parameters of `other` (this layer in the network at another input size; see Layer). */
  override shareParamsOf(other: Layer): void {
    if (!(other instanceof ConvolutionalLayer) || other.nweights !== this.nweights || other.filters !== this.filters || other.batchNormalize !== this.batchNormalize) {
      throw new Error(`layer ${this.index} ${this.section.label}: cannot share the parameters of layer ${other.index} ${other.section.label}`);
    }
    this.release();
    this.share = other.owner;
    this.params = [];
    this.data = null;
  }

  /** The layer that owns the parameters (itself unless share_index). */
  get owner(): ConvolutionalLayer {
    return this.share ?? this;
  }

  override prepare(gpu: Gpu, mode: Mode, precision: DType = 'f32'): void {
    if (this.share) return;
    const wShape = this.params.find((p) => p.name === 'weights')!.shape;
    // f16 weights for the f16 conv kernels (LinearParams keeps f32 where a folded weight exceeds the half range)
    const dtype = precision === 'f16' && !this.xnor && !this.binary ? 'f16' : 'f32';
    this.gpuParams.prepare(gpu, mode, { n: this.filters, wShape, batchNormalize: this.batchNormalize, dtype });
  }

  /**
   * f16 unless xnor / binary (their binarize kernels are f32 only); once prepared, what the weights were
   * uploaded as (f32 where a folded weight exceeds the half range).
   */
  override inferStorage(precision: DType): DType {
    if (precision !== 'f16' || this.xnor || this.binary) return 'f32';
    const p = this.owner.gpuParams;
    return p.mode === 'infer' ? p.dtype : 'f16';
  }

  override release(): void {
    this.binW?.wb.dispose();
    this.binW = null;
    for (const u of Object.values(this.winoW?.u ?? {})) u.dispose();
    this.winoW = null;
    this.gpuParams.release();
  }

  override async pull(): Promise<void> {
    if (this.share) return;
    await this.gpuParams.pull();
  }

  /** The owner lists the parameters: a layer sharing another's (share_index, Network.resized) has none. */
  override parameters(mode: Mode): LayerTensor[] {
    return this.share ? [] : this.gpuParams.list(mode);
  }

  /** GPU tensors of the owner (after prepare): infer `w`, `b` (BN folded); train by ParamSpec name. */
  tensors(mode: Mode): Record<string, Tensor> {
    const o = this.owner.gpuParams;
    if (o.mode !== mode) throw new Error(`layer ${this.index} [convolutional]: parameters are not prepared for '${mode}' (call Network.prepare)`);
    return o.t;
  }

  /**
   * Whether a forward in `mode` can apply the [maxpool] `pool` that follows (Network planning,
   * ForwardContext.fusedMaxpool): a plain conv (not xnor / binary) and a 2x2/2 pool; inference pools in the
   * conv's epilogue, training (with batch_normalize) in the batchnorm pass (batchnormMaxpool).
   */
  fusesMaxpool(pool: MaxpoolOptions, mode: Mode = 'infer'): boolean {
    return !this.xnor && !this.binary && (mode === 'infer' || this.batchNormalize) && fusableMaxpool(pool);
  }

  /**
   * The forward through Winograd with n x n output tiles (winogradPlan). The transformed weights are kept by the
   * owner of the weights, per tile (a resized network's layer uses them: they depend on the size only through
   * the tile); a dry run (Gpu.collectKernels, Network.precompile) computes nothing, so its transform is a
   * temporary.
   */
  private winogradForward(x: Tensor, w: Tensor, b: Tensor | null, n: WinogradTile, act: Activation, pool: MaxpoolOptions | undefined, dry: boolean): Tensor {
    const o = this.owner;
    if (!dry && o.winoW?.src !== w) {
      for (const u of Object.values(o.winoW?.u ?? {})) u.dispose();
      o.winoW = { src: w, u: {} };
    }
    const u = dry ? winogradWeights(w, undefined, n) : (o.winoW!.u[n] ??= winogradWeights(w, undefined, n));
    try {
      return conv2dWinograd(x, u, b, this.geom(), act, { pool });
    } finally {
      if (dry) u.dispose();
    }
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    const act: Activation = ctx.preActivation ? 'linear' : this.activation;
    const t = this.tensors(ctx.mode);
    const pool = ctx.fusedMaxpool && this.fusesMaxpool(ctx.fusedMaxpool, ctx.mode) ? ctx.fusedMaxpool : undefined;
    // inference at precision 'auto': Winograd F(4x4, 3x3) or F(2x2, 3x3) where winogradPlan picks it, the pool in
    // its epilogue
    if (ctx.winograd && !this.xnor && !this.binary && t.w && x.dtype === 'f32' && t.w.dtype === 'f32') {
      const n = winogradPlan(ctx.gpu, convGeom(x.shape, t.w.shape, this.geom()));
      if (n) return this.winogradForward(x, t.w, t.b, n, act, pool, ctx.gpu.collectingKernels);
    }
    // maxpool(act(conv)) in one pass where the forward runs the tile kernel (conv2dMaxpoolForward)
    if (pool && ctx.mode === 'infer') return conv2dMaxpoolForward(x, t.w, t.b, this.geom(), pool, 'auto', act);
    if (!this.xnor && !this.binary) return linearForward(x, t, ctx.mode, this.geom(), act, this.batchNormalize, ctx.rollingStats, pool);
    return this.binaryForward(x, t, ctx.mode, act, ctx.rollingStats);
  }

  /**
   * xnor / binary: the conv on binarized weights (and, xnor, binarized inputs). Inference binarizes the
   * BN-folded weights once (binarize(s*w) = s*binarize(w) per filter, the order of Darknet's
   * fuse_conv_batchnorm + binary_align_weights); training binarizes the weights each forward.
   */
  private binaryForward(x: Tensor, t: Record<string, Tensor>, mode: Mode, act: Activation, rollingStats?: boolean): Tensor {
    const xin = this.xnor ? binarizeInput(x) : x;
    let y: Tensor;
    if (mode === 'infer') {
      // a dry run (Gpu.collectKernels, Network.precompile) computes nothing: its binarized weights are not kept
      // kept by the owner of the weights, as the Winograd weights
      const o = this.owner;
      const dry = x.gpu.collectingKernels;
      if (!dry && o.binW?.src !== t.w) {
        o.binW?.wb.dispose();
        o.binW = { src: t.w, wb: Tape.untracked(() => binarizeWeights(t.w)) };
      }
      const wb = dry ? Tape.untracked(() => binarizeWeights(t.w)) : o.binW!.wb;
      y = conv2d(xin, wb, t.b, this.geom(), { act });
      if (dry) wb.dispose();
    } else {
      const wb = binarizeWeights(t.weights);
      y = linearForward(xin, { ...t, weights: wb }, mode, this.geom(), act, this.batchNormalize, rollingStats);
      if (!Tape.current) wb.dispose();
    }
    if (xin !== x && !Tape.current) xin.dispose();
    return y;
  }
}

export const build = (ctx: BuildContext): ConvolutionalLayer => new ConvolutionalLayer(ctx);
