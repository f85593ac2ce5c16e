/**
 * What every Darknet layer kind provides (src/layers/<kind>.ts): options parsed from its cfg section, the
 * output shape, its parameters in Darknet's .weights order, Darknet's BFLOPs, seeded initialization, and a
 * GPU forward in two modes:
 *   infer  no tape; conv + BN folded into one conv with bias and activation in the conv epilogue
 *   train  ops recorded on the current Tape (if one is recording); BN unfolded with batch statistics,
 *          learnable parameters as Tensor.param.
 * Shapes are per image (Darknet's out_c/out_h/out_w); tensors are NCHW [B, c, h, w].
 */
import type { CfgSection } from './cfg.js';
import type { Gpu } from '../gpu/device.js';
import type { DType, Tensor } from '../tensor/tensor.js';
import type { Rng } from '../util/rng.js';
import { ACTIVATIONS, type Activation } from '../tensor/ops/activation.js';
import type { MaxpoolOptions } from '../tensor/ops/pool.js';

export interface Shape {
  c: number;
  h: number;
  w: number;
}

export const shapeCount = (s: Shape): number => s.c * s.h * s.w;
/** Darknet prints shapes as w x h x c. */
export const shapeText = (s: Shape): string => `${s.w} x ${s.h} x ${s.c}`;
export const sameShape = (a: Shape, b: Shape): boolean => a.c === b.c && a.h === b.h && a.w === b.w;

export type Mode = 'infer' | 'train';

/** One parameter array in .weights order; `shape` is how the engine uses it (OIHW for conv weights). */
export interface ParamSpec {
  name: string;
  shape: number[];
  count: number;
}

export function param(name: string, shape: number[]): ParamSpec {
  return { name, shape, count: shape.reduce((a, b) => a * b, 1) };
}

/**
 * What a parameter tensor is to the optimizer (the names are Ultralytics' parameter groups):
 *   weights  conv / connected weights: trained, weight decay applies
 *   bias     biases: trained, no decay
 *   bn       batchnorm scales: trained, no decay
 *   buffer   batchnorm rolling_mean / rolling_variance: updated by the forward, not the optimizer; averaged
 *            by the EMA and saved in checkpoints
 * In 'infer' mode every tensor is a constant (BN folded into weights and biases).
 */
export type ParamRole = 'weights' | 'bias' | 'bn' | 'buffer';

/** One GPU tensor a prepared layer holds (Layer.parameters). */
export interface LayerTensor {
  /** The ParamSpec name: 'weights', 'biases', 'scales', 'rolling_mean', 'rolling_variance'. */
  readonly name: string;
  readonly tensor: Tensor;
  readonly role: ParamRole;
  /**
   * 'infer' parameters split by output channel because one tensor would exceed the device's binding limit
   * (src/layers/common.ts chunkRows): the first output channel of this part. Absent when not split.
   */
  readonly part?: number;
}

/** The [net] section, typed. Training keys are kept in `train` for the trainer (src/train/schedule.ts darknetHyper). */
export interface NetConfig {
  width: number;
  height: number;
  channels: number;
  /** Flat input size when width/height/channels are absent (Darknet `inputs`). */
  inputs: number;
  /** cfg batch (training batch), subdivisions, and batch / subdivisions (Darknet's mini-batch). */
  batch: number;
  subdivisions: number;
  miniBatch: number;
  timeSteps: number;
  letterBox: boolean;
  /** Every other [net] key Darknet reads, parsed to numbers (or strings for policy). */
  train: Record<string, number | number[] | string>;
}

/** Keys Darknet reads for every layer (parse_network_cfg_custom), kept for training. */
export interface CommonOptions {
  stopbackward: number;
  onlyforward: boolean;
  dontUpdate: boolean;
  burninUpdate: boolean;
  trainOnlyBn: boolean;
  /** Darknet `dontload`: the layer's parameters are not in the .weights file. */
  dontload: boolean;
  /** Darknet `dontloadscales`: BN scales/rolling statistics are not in the .weights file. */
  dontloadscales: boolean;
  learningRateScale: number;
  clip: number;
}

export interface BuildContext {
  readonly index: number;
  readonly section: CfgSection;
  /** Output of the previous layer (or the network input for layer 0). */
  readonly input: Shape;
  readonly inputIsImage: boolean;
  readonly layers: readonly Layer[];
  readonly net: NetConfig;
  /** A warning for this section (deduplicated per section type + key + code by the builder). */
  warn(key: string | undefined, message: string, code?: string): void;
  /** A layer index read from `key` (negative: relative to this layer); CfgError unless 0 <= i < index. */
  ref(key: string, value: number): number;
  /** CfgError unless the previous layer outputs an image (Darknet: "Layer before X must output image"). */
  requireImage(): void;
}

/**
 * Darknet's training position for the layers that change over a run ([dropout] dropblock=1): updates done
 * (get_current_iteration) and the run's length in updates (max_batches).
 */
export interface TrainPosition {
  iteration: number;
  maxBatches: number;
}

export interface ForwardContext {
  gpu: Gpu;
  mode: Mode;
  /** Seed of this forward's random layers ([dropout] in training; Network ForwardOptions.seed, default 0). */
  seed?: number;
  /** Where training stands (Network ForwardOptions.progress): DropBlock's schedule; absent: at full strength. */
  progress?: TrainPosition;
  /** Return the output before the layer's activation ([convolutional]; Network ForwardOptions.logits). */
  preActivation?: boolean;
  /**
   * 'train' mode with batchnorm on the rolling statistics, read and not updated (Network ForwardOptions.frozenBn:
   * the layers before Darknet's stopbackward=1, which AlexeyAB runs with l.train = 0).
   */
  rollingStats?: boolean;
  /**
   * Darknet's time_steps for the recurrent layers ([crnn], [rnn], [gru], [lstm]): the batch is this many
   * consecutive steps of B / timeSteps rows each, step t in rows [t*b, (t+1)*b) (Network ForwardOptions.timeSteps;
   * default 1).
   */
  timeSteps?: number;
  /**
   * Planning (Network.forward): the options of the [maxpool] right after this layer, its only reader, for the
   * layer to apply itself ([convolutional]: in the conv kernel's epilogue at inference, in the batchnorm pass
   * in training; see ConvolutionalLayer.fusesMaxpool); the layer then returns the pooled output, which stands
   * for both.
   */
  fusedMaxpool?: MaxpoolOptions;
  /**
   * Inference prepared at precision 'auto' (src/darknet/precision.ts), no tape recording: [convolutional] may
   * run its 3x3 stride-1 convs through Winograd F(4x4, 3x3) or F(2x2, 3x3) where useWinograd picks it
   * (src/tensor/ops/conv2d_winograd.ts). At 'f32', and in training, the direct kernels.
   */
  winograd?: boolean;
}

export abstract class Layer {
  /** The cfg section type (the registry key, src/darknet/registry.ts); narrows AnyLayer to the class. */
  abstract readonly kind: string;
  /**
   * A detection head ([yolo], [region], [detection]: their classes set `head = true`): Network.heads(), the
   * default outputs (Network.outputLayers) and the layers whose inputs `forward` writes.
   */
  readonly head: boolean = false;
  readonly index: number;
  readonly section: CfgSection;
  readonly input: Shape;
  output: Shape;
  /** Darknet leaves out_w/out_h/out_c at 0 after softmax / cost / detection: no image for the next layer. */
  outputIsImage = true;
  /** Layer indices this layer reads, in forward() argument order; -1 is the network input. */
  sources: number[];
  params: ParamSpec[] = [];
  /** Host copies of the parameters (by ParamSpec name), after init or load; null before. */
  data: Record<string, Float32Array> | null = null;
  common!: CommonOptions;

  constructor(ctx: BuildContext) {
    this.index = ctx.index;
    this.section = ctx.section;
    this.input = { ...ctx.input };
    this.output = { ...ctx.input };
    this.sources = [ctx.index - 1];
  }

  get outputs(): number {
    return shapeCount(this.output);
  }

  get where(): string {
    return `${this.section.file}:${this.section.line}`;
  }

  /** Darknet's l.bflops (float32, per image), 0 where Darknet computes none. */
  bflops(): number {
    return 0;
  }

  /** The filters and size/stride columns of the info table. */
  describe(): { type: string; filters: string; size: string } {
    return { type: this.kind, filters: '', size: '' };
  }

  /** Number of parameter values (sum over params). */
  get paramCount(): number {
    return this.params.reduce((s, p) => s + p.count, 0);
  }

  /** Seeded initialization of `data` (Darknet's make_*_layer conventions). */
  init(rng: Rng): void {
    void rng;
    if (this.params.length) throw new Error(`${this.kind} layer ${this.index}: init() not implemented`);
  }

  /**
   * Uploads parameters for a mode (no-op for layers without parameters). Layers with parameters keep the GPU
   * side in src/layers/common.ts LinearParams (or their own, [local]) and implement prepare, release, pull
   * and parameters together. `precision`: the network's inference storage ('f16': Network.prepare with
   * precision f16); a layer whose inferStorage says f16 uploads its weights as f16, the others ignore it.
   */
  prepare(gpu: Gpu, mode: Mode, precision: DType = 'f32'): void {
    void gpu;
    void mode;
    void precision;
  }

  /**
   * The storage its inference forward takes and returns when the network runs at `precision` (after
   * prepare): `precision` itself for the layers whose kernels have the f16 variant (docs/kernels.md "f16
   * storage": [convolutional], [maxpool], [route], [shortcut], [upsample], [yolo]), 'f32' for the rest, whose
   * inputs Network.forward casts to float32 (and whose float32 output it casts back when an f16 layer reads it).
   */
  inferStorage(precision: DType): DType {
    void precision;
    return 'f32';
  }

  /** Frees GPU parameter tensors. */
  release(): void {}

  /**
   * The GPU tensors this layer holds after prepare(gpu, mode), in its ParamSpec (.weights) order: in 'train'
   * mode the trainable parameters (Tensor.param) and the buffers (BN running statistics), each with its
   * role; in 'infer' mode the constants the inference forward reads (BN folded; possibly split in parts).
   * What the trainer, the optimizer, the EMA, checkpoints and the bench use instead of layer internals.
   * Empty for layers without parameters and for layers using another layer's (share_index, Network.resized:
   * the owner lists them). Throws when the layer is not prepared for `mode`.
   */
  parameters(mode: Mode): LayerTensor[] {
    void mode;
    if (this.params.length) throw new Error(`${this.kind} layer ${this.index}: parameters() not implemented`);
    return [];
  }

  /**
   * Why this layer cannot be trained (the trainer refuses the cfg, naming the layer's file:line), or null.
   * A layer that has no backward says so here rather than leaving its parameters silently untrained.
   */
  trainingUnsupported(): string | null {
    return null;
  }

  /**
   * Makes this layer use `other`'s parameters (the same layer of the same cfg built at another input size:
   * Network.resized). Layers whose parameters do not depend on the input size override this; the default
   * refuses when there are parameters.
   */
  shareParamsOf(other: Layer): void {
    void other;
    if (this.params.length) {
      throw new Error(`layer ${this.index} ${this.section.label}: its parameters are tied to the input size; the network cannot be resized (multi-scale training)`);
    }
  }

  /** Copies trained GPU parameters back to `data` (train mode); no-op otherwise. */
  async pull(): Promise<void> {}

  /**
   * Forgets the hidden state a recurrent layer carries from one forward call to the next (the next forward
   * starts from zeros, as after Darknet's make_*_layer); no-op for the other layers (Network.resetState).
   */
  resetState(): void {}

  /**
   * Whether the layer carries state from one forward call to the next (the recurrent layers' hidden state):
   * such a network's forward cannot be recorded and replayed (Network.recordForward refuses).
   */
  get carriesState(): boolean {
    return false;
  }

  abstract forward(inputs: Tensor[], ctx: ForwardContext): Tensor;
}

export type LayerFactory = (ctx: BuildContext) => Layer;

// ------------------------------------------------------------------------------------ activations

/** Every activation name Darknet's get_activation knows. */
export const DARKNET_ACTIVATIONS = [
  'logistic', 'loggy', 'relu', 'elu', 'selu', 'gelu', 'relie', 'plse', 'hardtan', 'lhtan', 'linear', 'ramp', 'leaky',
  'tanh', 'stair', 'relu6', 'swish', 'mish', 'hard_mish', 'normalize_channels', 'normalize_channels_softmax',
  'normalize_channels_softmax_maxval',
] as const;

/**
 * Reads an activation key. Supported: the engine's fused activations. A Darknet activation the engine lacks,
 * or a name Darknet does not know (Darknet would silently fall back to relu), is a CfgError. A missing key
 * takes Darknet's default for the layer, with a warning when the default is logistic (OpenCV uses linear).
 */
export function readActivation(ctx: BuildContext, dflt: Activation, key = 'activation'): Activation {
  const s = ctx.section;
  if (!s.has(key)) {
    if (dflt === 'logistic') {
      ctx.warn(key, `no ${key}= given: Darknet's default is logistic (OpenCV DNN would use linear)`, 'default-logistic');
    }
    return dflt;
  }
  const v = s.str(key);
  if ((ACTIVATIONS as readonly string[]).includes(v)) return v as Activation;
  if ((DARKNET_ACTIVATIONS as readonly string[]).includes(v)) {
    throw s.error(key, `activation '${v}' is not supported (supported: ${ACTIVATIONS.join(', ')})`);
  }
  throw s.error(key, `unknown activation '${v}' (Darknet would silently use relu; supported: ${ACTIVATIONS.join(', ')})`);
}

/** CfgError when a behaviour-changing key the engine does not implement has a non-default value. */
export function refuseNonzero(ctx: BuildContext, keys: Record<string, string>): void {
  for (const [key, why] of Object.entries(keys)) {
    if (!ctx.section.has(key)) continue;
    const v = ctx.section.float(key);
    if (v !== 0) throw ctx.section.error(key, `${why} is not supported (${key}=${ctx.section.str(key)})`);
  }
}

/** Darknet's C integer division (truncates toward zero). */
export const idiv = (a: number, b: number): number => Math.trunc(a / b);
