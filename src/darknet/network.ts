/**
 * The Darknet network builder: [net] options, one layer per section (src/layers/<kind>.ts via the
 * registry), shape inference with file:line errors, Darknet BFLOPs, seeded initialization, and the GPU
 * forward (inference with folded BN and fused epilogues, or 'train' mode recording on the current tape).
 *
 * Building needs no GPU: `Network.build(readCfg(path))` only parses and infers shapes (and allocates no
 * parameter memory; `initWeights` / `loadWeights` fill the host copies, `prepare` uploads them).
 */
import { CfgError, readCfg, type CfgSection, type CfgWarning, type ParsedCfg } from './cfg.js';
import { type BuildContext, type CommonOptions, type ForwardContext, type LayerTensor, type Mode, type NetConfig, type Shape, type TrainPosition, shapeCount } from './layer.js';
import { COMMON_KEYS, HARMLESS_KEYS, REFUSED_SECTIONS, layerFactory, type AnyLayer, type HeadLayer } from './registry.js';
import type { Gpu } from '../gpu/device.js';
import { Tensor, shapeStr, type DType } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { cast } from '../tensor/ops/cast.js';
import { Rng } from '../util/rng.js';
import { resolvePrecision, type Precision } from './precision.js';
import { ForwardReplay } from './replay.js';

export interface BuildOptions {
  /** Override [net] width / height / channels (e.g. the CLI's --width/--height). */
  width?: number;
  height?: number;
  channels?: number;
  /** Inference batch (default 1; only informational: forward takes the batch of its input). */
  batch?: number;
}

type NetKeyType = 'int' | 'float' | 'str' | 'intList' | 'floatList';

/** Every key Darknet's parse_net_options reads. */
const NET_KEYS: Record<string, NetKeyType> = {
  max_batches: 'int', batch: 'int', learning_rate: 'float', learning_rate_min: 'float', sgdr_cycle: 'int', sgdr_mult: 'int',
  momentum: 'float', decay: 'float', subdivisions: 'int', time_steps: 'int', track: 'int', augment_speed: 'int',
  sequential_subdivisions: 'int', try_fix_nan: 'int', weights_reject_freq: 'int', equidistant_point: 'int',
  badlabels_rejection_percentage: 'float', num_sigmas_reject_badlabels: 'float', ema_alpha: 'float', use_cuda_graph: 'int',
  loss_scale: 'float', dynamic_minibatch: 'int', optimized_memory: 'int', workspace_size_limit_MB: 'float', adam: 'int',
  B1: 'float', B2: 'float', eps: 'float', height: 'int', width: 'int', channels: 'int', inputs: 'int', max_crop: 'int',
  min_crop: 'int', flip: 'int', blur: 'int', gaussian_noise: 'int', mixup: 'int', cutmix: 'int', mosaic: 'int',
  letter_box: 'int', mosaic_bound: 'int', contrastive: 'int', contrastive_jit_flip: 'int', contrastive_color: 'int',
  unsupervised: 'int', label_smooth_eps: 'float', resize_step: 'float', attention: 'int', adversarial_lr: 'float',
  max_chart_loss: 'float', angle: 'float', aspect: 'float', saturation: 'float', exposure: 'float', hue: 'float',
  power: 'float', policy: 'str', burn_in: 'int', step: 'int', scale: 'float', steps: 'intList', scales: 'floatList',
  seq_scales: 'floatList', gamma: 'float', show_receptive_field: 'float',
};

/** Darknet's learning-rate policies (get_policy; an unknown one falls back to constant with a message). */
const POLICIES = ['random', 'poly', 'constant', 'step', 'exp', 'sigmoid', 'steps', 'sgdr'];

class WarningSink {
  private groups = new Map<string, CfgWarning & { count: number }>();

  add(w: CfgWarning, code: string): void {
    const k = `${w.section ?? ''}|${w.key ?? ''}|${code}`;
    const g = this.groups.get(k);
    if (g) g.count++;
    else this.groups.set(k, { ...w, count: 1 });
  }

  list(): CfgWarning[] {
    return [...this.groups.values()].map(({ count, ...w }) => (count > 1 ? { ...w, message: `${w.message} (${count} times; first here)` } : w));
  }
}

/**
 * Upper bounds of [net] sizes: far above any real cfg (the corpus tops out at 1536 pixels, batch 128), low
 * enough that a typo (width=100000) is a cfg error at its line rather than an allocation failure later.
 */
export const NET_LIMITS: Readonly<Record<string, number>> = { width: 16384, height: 16384, channels: 4096, batch: 65536, subdivisions: 65536, time_steps: 65536 };
/** Most input values of one image (width × height × channels): 2^28 floats, 1 GiB. */
const MAX_INPUT_VALUES = 2 ** 28;

function parseNet(s: CfgSection, sink: WarningSink): NetConfig {
  const train: Record<string, number | number[] | string> = {};
  for (const key of s.keys()) {
    const t = NET_KEYS[key];
    if (!t) {
      sink.add({ file: s.file, line: s.entry(key)!.line, section: 'net', key, message: `[net] key '${key}' is unknown (Darknet ignores it too)` }, 'unknown');
      continue;
    }
    train[key] = t === 'int' ? s.int(key) : t === 'float' ? s.float(key) : t === 'intList' ? s.intList(key) : t === 'floatList' ? s.floatList(key) : s.str(key);
  }
  if (typeof train.policy === 'string' && !POLICIES.includes(train.policy)) {
    throw s.error('policy', `unknown learning-rate policy '${train.policy}' (one of ${POLICIES.join(', ')})`);
  }
  const num = (k: string, d: number) => (typeof train[k] === 'number' ? (train[k] as number) : d);
  for (const k of ['width', 'height', 'channels', 'inputs', 'batch', 'subdivisions', 'time_steps']) {
    if (k in train && num(k, 0) < 0) throw s.error(k, `must be >= 0, got ${train[k]}`);
  }
  for (const [k, max] of Object.entries(NET_LIMITS)) {
    if (num(k, 0) > max) throw s.error(k, `${train[k]} is too large (at most ${max}${k === 'width' || k === 'height' ? ' pixels' : ''}; the input is allocated on the GPU)`);
  }
  const batch = Math.max(1, num('batch', 1));
  const subdivisions = Math.max(1, num('subdivisions', 1));
  const width = num('width', 0);
  const height = num('height', 0);
  const channels = num('channels', 0);
  return {
    width, height, channels,
    inputs: num('inputs', width * height * channels),
    batch, subdivisions, miniBatch: Math.max(1, Math.trunc(batch / subdivisions)),
    timeSteps: Math.max(1, num('time_steps', 1)),
    letterBox: num('letter_box', 0) !== 0,
    train,
  };
}

function readCommon(s: CfgSection): CommonOptions {
  return {
    clip: s.float('clip', 0),
    onlyforward: s.flag('onlyforward'),
    dontUpdate: s.flag('dont_update'),
    burninUpdate: s.flag('burnin_update'),
    stopbackward: s.int('stopbackward', 0),
    trainOnlyBn: s.flag('train_only_bn'),
    dontload: s.flag('dontload'),
    dontloadscales: s.flag('dontloadscales'),
    learningRateScale: s.float('learning_rate', 1),
  };
}

export interface ForwardOptions {
  mode?: Mode;
  /** Layer indices whose outputs to return besides the output layers. */
  keep?: number[];
  /**
   * Seed of the random layers ([dropout] masks in training; each layer mixes in its index). The trainer
   * passes one per mini-batch, so a resumed run draws the same masks. Default 0.
   */
  seed?: number;
  /**
   * 'train' mode: updates done and the run's length (the trainer passes them), for DropBlock's schedule
   * ([dropout] dropblock=1 grows its probability and block size until 85% of the run, as AlexeyAB does).
   * Absent: full strength.
   */
  progress?: TrainPosition;
  /**
   * [convolutional] layers whose output is returned before their activation: the logits of a loss that applies
   * the activation itself (YOLOv5's Detect sigmoid lives in its loss, Darknet's cfg puts it on the head conv as
   * activation=logistic with new_coords=1). Every consumer of such a layer sees the logits, so name only layers
   * that feed heads.
   */
  logits?: readonly number[];
  /**
   * 'train' mode: the [convolutional] layers below this index normalize with their rolling statistics and
   * leave them unchanged, as Darknet runs the layers in front of the last `stopbackward=1` (l.train = 0:
   * forward_convolutional_layer_gpu sets state.train = l.train). The trainer passes it for a frozen prefix
   * (src/train/freeze.ts); default 0 (every batchnorm on batch statistics).
   */
  frozenBn?: number;
  /**
   * Darknet's time_steps for the recurrent layers ([crnn], [rnn], [gru], [lstm]): x holds this many
   * consecutive steps of B / timeSteps images each (step t in rows [t*b, (t+1)*b), Darknet's layout), run one
   * after the other with the hidden state carried from step to step. Default 1, as Darknet's detector, demo
   * and `rnn generate` parse the cfg (parse_network_cfg_custom(cfg, 1, 1)); the cfg's [net] time_steps is
   * in `net.timeSteps`. See docs/darknet.md "Recurrent layers".
   */
  timeSteps?: number;
}

/** A layer's GPU tensor (Layer.parameters) with its layer and a unique key `<layer index>.<name>`. */
export interface NetworkTensor extends LayerTensor {
  readonly key: string;
  readonly layer: AnyLayer;
}

export class Network {
  readonly file: string;
  readonly net: NetConfig;
  /** One layer per cfg section after [net]; `layer.kind` narrows to the layer's class (AnyLayer). */
  readonly layers: AnyLayer[];
  /** Per-image input shape. */
  readonly input: Shape;
  readonly inputIsImage: boolean;
  readonly batch: number;
  readonly warnings: CfgWarning[];
  /** winograd: inference prepared at precision 'auto' (ForwardContext.winograd). */
  private prepared: { gpu: Gpu; mode: Mode; dtype: DType; winograd: boolean } | null = null;
  /**
   * The inference precision prepare() uses when not told (src/darknet/precision.ts): 'auto' (f16 only where
   * the tune measured it faster on the adapter), 'f32' or 'f16'. Training ignores it (always f32).
   */
  precision: Precision = 'auto';
  /** The parsed cfg this was built from (Network.resized rebuilds it). */
  private cfg: ParsedCfg | null = null;
  /** The network whose parameters this one uses (Network.resized), or null when it owns its own. */
  private paramsOf: Network | null = null;
  private variants = new Map<string, Network>();

  private constructor(file: string, net: NetConfig, layers: AnyLayer[], input: Shape, inputIsImage: boolean, batch: number, warnings: CfgWarning[]) {
    this.file = file;
    this.net = net;
    this.layers = layers;
    this.input = input;
    this.inputIsImage = inputIsImage;
    this.batch = batch;
    this.warnings = warnings;
  }

  /** Reads, parses and builds a cfg file. */
  static fromFile(path: string, opts: BuildOptions = {}): Network {
    return Network.build(readCfg(path), opts);
  }

  /** Builds the layers of a parsed cfg (shape inference only; no GPU). Throws CfgError at the first problem. */
  static build(cfg: ParsedCfg, opts: BuildOptions = {}): Network {
    const sink = new WarningSink();
    for (const w of cfg.warnings) sink.add(w, w.code ?? `parse:${w.line}`);
    const [first, ...rest] = cfg.sections;
    if (first.type !== 'net') throw new CfgError(first.file, first.line, undefined, `the first section must be [net] or [network], got ${first.header}`);
    const net = parseNet(first, sink);
    for (const [k, v] of Object.entries({ width: opts.width, height: opts.height, channels: opts.channels, batch: opts.batch })) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`${k} must be a positive integer, got ${v}`);
      if (v !== undefined && v > NET_LIMITS[k]) throw new Error(`${k} ${v} is too large for ${first.file} (at most ${NET_LIMITS[k]})`);
    }
    const w = opts.width ?? net.width;
    const h = opts.height ?? net.height;
    const c = opts.channels ?? net.channels;
    if (w * h * c > MAX_INPUT_VALUES) {
      throw new CfgError(first.file, first.line, undefined, `[net] input ${w}x${h}x${c} has ${w * h * c} values per image, more than ${MAX_INPUT_VALUES} (1 GiB): lower width/height`);
    }
    let input: Shape;
    let image = true;
    if (w && h && c) input = { c, h, w };
    else if (net.inputs > 0) {
      input = { c: net.inputs, h: 1, w: 1 };
      image = false;
    } else {
      throw new CfgError(first.file, first.line, undefined, '[net] needs width, height and channels (or inputs)');
    }

    const layers: AnyLayer[] = [];
    let prev = input;
    let prevImage = image;
    for (const s of rest) {
      const index = layers.length;
      if (s.type === 'net') throw new CfgError(s.file, s.line, undefined, `a second ${s.header} section (layer ${index})`);
      const factory = layerFactory(s.type);
      if (!factory) {
        const why = REFUSED_SECTIONS[s.type];
        throw new CfgError(s.file, s.line, undefined, why
          ? `${s.header} (layer ${index}) is not supported: ${why}`
          : `${s.header} (layer ${index}) is not a Darknet layer type (Darknet: "Type not recognized")`);
      }
      const ctx: BuildContext = {
        index,
        section: s,
        input: prev,
        inputIsImage: prevImage,
        layers,
        net,
        warn: (key, message, code = 'warn') => sink.add({ file: s.file, line: key && s.has(key) ? s.entry(key)!.line : s.line, section: s.type, key, message: `${s.label} ${message}` }, code),
        ref: (key, value) => {
          const i = value < 0 ? index + value : value;
          if (i < 0 || i >= index) {
            throw s.error(key, `layer ${value}${value < 0 ? ` (= ${i})` : ''} is out of range: this is layer ${index}, it can refer to layers 0..${index - 1}`);
          }
          return i;
        },
        requireImage: () => {
          if (!prevImage) {
            const p = index > 0 ? `layer ${index - 1} ${layers[index - 1].section.label}` : 'the [net] input';
            throw new CfgError(s.file, s.line, undefined, `${s.label} needs an image input, but ${p} outputs a flat vector of ${shapeCount(prev)} values`);
          }
        },
      };
      const layer = factory(ctx);
      layer.common = readCommon(s);
      for (const key of s.unread()) {
        const line = s.entry(key)!.line;
        const harmless = HARMLESS_KEYS[s.type]?.[key];
        const message = harmless
          ? `${s.label} key '${key}' has no effect here (${harmless}); ignored`
          : `${s.label} key '${key}' is unknown (Darknet ignores it too)`;
        sink.add({ file: s.file, line, section: s.type, key, message }, harmless ? 'harmless' : 'unknown');
      }
      for (const d of ['h', 'w', 'c'] as const) {
        if (!(layer.output[d] >= 1)) throw new CfgError(s.file, s.line, undefined, `${s.label} (layer ${index}) would output an empty ${shapeStr([layer.output.w, layer.output.h, layer.output.c])}`);
      }
      const paramCount = layer.params.reduce((a, p) => a + p.count, 0);
      if (paramCount > MAX_INPUT_VALUES) {
        throw new CfgError(s.file, s.line, undefined, `${s.label} (layer ${index}) would have ${paramCount} parameters, more than ${MAX_INPUT_VALUES} (1 GiB) in one layer: check its filters/size/output`);
      }
      if (shapeCount(layer.output) > MAX_INPUT_VALUES) {
        throw new CfgError(s.file, s.line, undefined, `${s.label} (layer ${index}) would output ${shapeStr([layer.output.w, layer.output.h, layer.output.c])} = ${shapeCount(layer.output)} values per image, more than ${MAX_INPUT_VALUES} (1 GiB): lower [net] width/height (${w}x${h})`);
      }
      layers.push(layer);
      prev = layer.output;
      prevImage = layer.outputIsImage;
    }
    if (layers.length === 0) throw new CfgError(first.file, first.line, undefined, 'no layers after [net]');
    const built = new Network(cfg.file, net, layers, input, image, opts.batch ?? 1, sink.list());
    built.cfg = cfg;
    return built;
  }

  /**
   * This network at another input size (multi-scale training, Darknet's resize_network), using this one's
   * parameters: host data and, once this one is prepared, its GPU tensors (updates through either are the
   * same). Built once per size and cached; prepare/release/pullParams on it act on this network. Throws
   * when a layer's parameters depend on the input size ([connected] after a spatial layer, [local]).
   */
  resized(width: number, height: number): Network {
    if (this.paramsOf) return this.paramsOf.resized(width, height);
    if (width === this.input.w && height === this.input.h) return this;
    if (!this.inputIsImage) throw new Error(`${this.file}: a network with a flat input cannot be resized`);
    const key = `${width}x${height}`;
    let v = this.variants.get(key);
    if (!v) {
      if (!this.cfg) throw new Error(`${this.file}: built without its cfg; cannot resize`);
      v = Network.build(this.cfg, { width, height, channels: this.input.c, batch: this.batch });
      for (const l of v.layers) l.shareParamsOf(this.layers[l.index]);
      v.paramsOf = this;
      this.variants.set(key, v);
    }
    return v;
  }

  /** Darknet's total BFLOPs: the float32 sum of the positive per-layer BFLOPs. */
  get totalBflops(): number {
    let t = 0;
    for (const l of this.layers) {
      const b = l.bflops();
      if (b > 0) t = Math.fround(t + b);
    }
    return t;
  }

  get paramCount(): number {
    return this.layers.reduce((s, l) => s + l.paramCount, 0);
  }

  /**
   * The detection heads in layer order: [yolo], [region], [detection] (the layer classes with `head = true`).
   * The one answer to "which layers are heads"; a caller that handles only some kinds filters this list
   * (e.g. the box decoder: [yolo] and [region], src/yolo/heads.ts isHeadLayer).
   */
  heads(): HeadLayer[] {
    return this.layers.filter((l): l is HeadLayer => l.head);
  }

  /** The detection heads (heads()); else the last layer that is not [cost]. */
  outputLayers(): number[] {
    const heads = this.heads().map((l) => l.index);
    if (heads.length) return heads;
    for (let i = this.layers.length - 1; i >= 0; i--) if (this.layers[i].kind !== 'cost') return [i];
    return [this.layers.length - 1];
  }

  /** Seeded initialization of every parameter (Darknet conventions, see each layer's init). */
  /**
   * True after initWeights until weights are loaded or training has started from them: the parameters are a
   * seeded initialization (training then applies the loss's initial head biases, e.g. YOLOv5's priors).
   */
  freshInit = false;

  initWeights(seed = 1): void {
    this.freshInit = true;
    const rng = new Rng(seed);
    for (const l of this.layers) if (l.params.length) l.init(rng);
    this.release();
  }

  get hasWeights(): boolean {
    return this.layers.every((l) => !l.params.length || l.data !== null);
  }

  /**
   * Uploads parameters for a mode ('infer': BN folded into conv weights) and, for inference, a precision
   * (default this.precision, which a precision given here replaces; see src/darknet/precision.ts): at 'f16'
   * the layers whose kernels have the f16 variant get f16 weights (Layer.inferStorage). Training is float32:
   * 'f16' with mode 'train' is refused.
   */
  prepare(gpu: Gpu, mode: Mode = 'infer', opts: { precision?: Precision } = {}): void {
    if (this.paramsOf) return this.paramsOf.prepare(gpu, mode, opts);
    if (mode === 'train' && opts.precision === 'f16') {
      throw new Error(`${this.file}: precision f16 is for inference only; training runs in f32 (prepare(gpu, 'train') without a precision, or 'f32')`);
    }
    if (!this.hasWeights) {
      const l = this.layers.find((x) => x.params.length && !x.data)!;
      throw new Error(`${this.file}: layer ${l.index} ${l.section.label} has no parameters yet: load .weights or call initWeights() before prepare()`);
    }
    const dtype: DType = mode === 'infer' ? resolvePrecision(gpu, this, opts.precision ?? this.precision) : 'f32';
    if (mode === 'infer' && opts.precision) this.precision = opts.precision;
    const winograd = mode === 'infer' && this.precision === 'auto';
    if (this.prepared && this.prepared.gpu === gpu && this.prepared.mode === mode && this.prepared.dtype === dtype) {
      // a new object when the Winograd choice changes: a recorded forward made with the other one is stale
      if (this.prepared.winograd !== winograd) this.prepared = { ...this.prepared, winograd };
      return;
    }
    if (this.prepared && this.prepared.mode === 'train' && mode === 'infer') {
      throw new Error('switching from train to infer needs the trained parameters on the host: await pullParams() first, then release() and prepare()');
    }
    try {
      for (const l of this.layers) l.prepare(gpu, mode, dtype);
    } catch (e) {
      this.release();
      throw e;
    }
    this.prepared = { gpu, mode, dtype, winograd };
  }

  /** The storage the prepared inference runs at ('f16' or 'f32'; null when not prepared for inference). */
  get inferPrecision(): DType | null {
    const p = (this.paramsOf ?? this).prepared;
    return p && p.mode === 'infer' ? p.dtype : null;
  }

  /**
   * Compiles every kernel an inference forward at this batch size dispatches, up front and concurrently
   * (a dry run collects them: Gpu.collectKernels / precompile), so the first forward does not stall on
   * shader compilation. Needs prepare(gpu, 'infer') first. `extra` runs inside the dry run too (e.g. the
   * head decoders of detection).
   */
  async precompile(gpu: Gpu, opts: { batch?: number; keep?: number[]; extra?: (outs: Map<number, Tensor>) => void } = {}): Promise<{ kernels: number; ms: number }> {
    const I = this.input;
    const x = Tensor.empty(gpu, [opts.batch ?? 1, I.c, I.h, I.w]);
    try {
      const specs = gpu.collectKernels(() => {
        const outs = this.forward(x, { keep: opts.keep });
        try {
          opts.extra?.(outs);
        } finally {
          for (const t of new Set(outs.values())) if (t !== x) t.dispose();
        }
      });
      return await gpu.precompile(specs);
    } finally {
      x.dispose();
    }
  }

  /**
   * Every layer's GPU tensors for `mode` (Layer.parameters) in .weights order (layer order, then each layer's
   * ParamSpec order): in 'train' mode the trainable parameters and the BN buffers, what the optimizer, the
   * EMA and checkpoints work on. Needs prepare(gpu, mode); a resized network lists its owner's.
   */
  parameters(mode: Mode): NetworkTensor[] {
    if (this.paramsOf) return this.paramsOf.parameters(mode);
    return this.layers.flatMap((l) => l.parameters(mode).map((t) => ({ ...t, key: `${l.index}.${t.name}${t.part !== undefined ? `@${t.part}` : ''}`, layer: l })));
  }

  /** Copies trained parameters back to the host copies (after training in 'train' mode). */
  async pullParams(): Promise<void> {
    if (this.paramsOf) return this.paramsOf.pullParams();
    for (const l of this.layers) await l.pull();
  }

  /** Frees the GPU parameters. */
  release(): void {
    if (this.paramsOf) return this.paramsOf.release();
    for (const l of this.layers) l.release();
    this.prepared = null;
  }

  /** Frees the GPU parameters (a resized variant owns none: disposing it frees nothing). */
  dispose(): void {
    if (this.paramsOf) return;
    this.release();
  }

  /**
   * Zeroes the hidden state the recurrent layers carry from one forward call to the next (a new sequence:
   * Darknet's reset_rnn_state / a fresh network); nothing for a network without recurrent layers.
   */
  resetState(): void {
    for (const l of this.layers) l.resetState();
  }

  /**
   * What the parameters are prepared as now: a new value after each prepare() that changed something (other
   * buffers, precision, the Winograd choice), null once released. A recorded forward is valid while it stays
   * the same (ReplayedForwards keys what it has seen by it).
   */
  get preparation(): object | null {
    return (this.paramsOf ?? this).prepared;
  }

  /**
   * Records an inference forward of x for replay (ForwardReplay, src/darknet/replay.ts): run() then issues
   * the same commands on the same buffers without the layers' JavaScript. A forward runs first, unrecorded
   * (it compiles the pipelines and makes what layers keep, such as Winograd's transformed weights); the
   * second is recorded. `warmUp: false` leaves out the first: only when a forward at this batch size already
   * ran under the same preparation (what a layer made inside the recording would be the recording's buffers,
   * handed back on its dispose while the layer still kept them). Write the next image into `x` before each
   * run(). Inference only, not under a recording tape, and not for a network whose layers carry state from
   * one forward to the next (the recurrent layers).
   */
  recordForward(x: Tensor, opts: Omit<ForwardOptions, 'mode'> & { warmUp?: boolean } = {}): ForwardReplay {
    if (Tape.current) throw new Error(`${this.file}: recordForward under a recording tape (inference only)`);
    const stateful = this.layers.find((l) => l.carriesState);
    if (stateful) throw new Error(`${this.file}: recordForward: layer ${stateful.index} [${stateful.kind}] carries its state from one forward to the next, which a replay cannot`);
    const { warmUp = true, ...fwd } = opts;
    if (warmUp) for (const t of new Set(this.forward(x, fwd).values())) if (t !== x) t.dispose();
    const { result, recording } = x.gpu.record(() => this.forward(x, fwd));
    // the recording binds the parameters prepared now: prepare() anew or release() makes other buffers
    const owner = this.paramsOf ?? this;
    const prepared = owner.prepared;
    return new ForwardReplay(x.gpu, recording, result, x, () => (owner.prepared === prepared ? null : `${this.file}: its parameters were ${owner.prepared ? 'prepared again' : 'released'} since the recording; record again`));
  }

  /**
   * Runs the network on x [B, c, h, w]. Returns the outputs of the output layers and of `keep` (the caller
   * disposes them; identity layers may return the same tensor under two indices, or x itself).
   * Intermediates are freed as soon as no later layer reads them, except while a tape is recording
   * ('train' mode inside tape.record): then every op is on the tape, which owns the intermediates.
   * Prepared at precision f16, each layer gets its inputs in the storage it runs on (Layer.inferStorage: a
   * cast where they differ) and the returned tensors are float32 (cast from f16 at the end).
   */
  forward(x: Tensor, opts: ForwardOptions = {}): Map<number, Tensor> {
    const mode = opts.mode ?? 'infer';
    const prepared = (this.paramsOf ?? this).prepared;
    if (!prepared || prepared.mode !== mode || prepared.gpu !== x.gpu) {
      throw new Error(`${this.file}: parameters are not prepared for '${mode}' on this device (call prepare(gpu, '${mode}'))`);
    }
    const I = this.input;
    if (x.shape.length !== 4 || x.shape[1] !== I.c || x.shape[2] !== I.h || x.shape[3] !== I.w) {
      throw new Error(`${this.file}: input ${x.describe()} does not match the network input [B, ${I.c}, ${I.h}, ${I.w}]`);
    }
    const n = this.layers.length;
    const keep = new Set<number>([...this.outputLayers(), ...(opts.keep ?? [])]);
    for (const k of keep) if (!Number.isInteger(k) || k < 0 || k >= n) throw new Error(`forward: keep index ${k} is not a layer (0..${n - 1})`);
    const lastUse = new Array<number>(n).fill(-1);
    this.layers.forEach((l, i) => l.sources.forEach((j) => {
      if (j >= 0) lastUse[j] = Math.max(lastUse[j], i);
    }));
    const outs: (Tensor | undefined)[] = new Array(n);
    const refs = new Map<Tensor, number>();
    // A recording tape owns what the ops create (and needs it for backward); otherwise free as we go.
    const free = mode === 'infer' || Tape.current === null;
    const drop = (j: number) => {
      const t = outs[j];
      if (!t || keep.has(j)) return;
      outs[j] = undefined;
      const r = (refs.get(t) ?? 1) - 1;
      if (r > 0) refs.set(t, r);
      else {
        refs.delete(t);
        if (t !== x) t.dispose();
      }
    };
    const timeSteps = opts.timeSteps ?? 1;
    if (!Number.isInteger(timeSteps) || timeSteps < 1) throw new Error(`forward: timeSteps must be a positive integer, got ${timeSteps}`);
    if (x.shape[0] % timeSteps !== 0) throw new Error(`${this.file}: input batch ${x.shape[0]} is not a multiple of timeSteps ${timeSteps} (the batch holds ${timeSteps} steps of equal size)`);
    // Winograd at inference prepared at precision 'auto', and not under a recording tape (it records nothing)
    const winograd = mode === 'infer' && prepared.winograd && !Tape.current;
    const ctx = { gpu: x.gpu, mode, seed: opts.seed ?? 0, timeSteps, progress: opts.progress, winograd };
    const logits = new Set(opts.logits ?? []);
    for (const k of logits) {
      if (this.layers[k]?.kind !== 'convolutional') throw new Error(`forward: logits index ${k} is not a [convolutional] layer`);
    }
    const logitCtx = { ...ctx, preActivation: true };
    const frozenBn = mode === 'train' ? Math.min(opts.frozenBn ?? 0, n) : 0;
    // the layers before the stopbackward cut: batchnorm on the rolling statistics (ForwardContext.rollingStats)
    const frozenCtx = { ...ctx, rollingStats: true };
    const frozenLogitCtx = { ...logitCtx, rollingStats: true };
    // Planning: a [convolutional] whose only reader is the 2x2/2 [maxpool] right after it applies the pool
    // itself (ForwardContext.fusedMaxpool): at inference in its conv epilogue, in training (with batchnorm) in
    // the batchnorm pass. Its output is never made and the pool layer is skipped.
    const fusePool = (i: number): ForwardContext['fusedMaxpool'] => {
      const l = this.layers[i];
      const p = this.layers[i + 1];
      // inference: not under a recording tape (the fused conv op records nothing)
      if ((mode === 'infer' && Tape.current) || l.kind !== 'convolutional' || p?.kind !== 'maxpool' || keep.has(i) || logits.has(i)) return undefined;
      if (p.sources.length !== 1 || p.sources[0] !== i || lastUse[i] !== i + 1) return undefined;
      const pool = { size: p.size, strideX: p.strideX, strideY: p.strideY, padding: p.padding };
      return l.fusesMaxpool(pool, mode) ? pool : undefined;
    };
    // f16 inference: each layer's inputs cast to the storage it runs on (temporaries, freed after it)
    const precision = prepared.dtype;
    try {
      for (let i = 0; i < n; i++) {
        const l = this.layers[i];
        const ins = l.sources.map((j) => {
          const t = j < 0 ? x : outs[j];
          if (!t) throw new Error(`forward: layer ${i} needs the output of layer ${j}, which is gone`);
          return t;
        });
        const want = mode === 'infer' ? l.inferStorage(precision) : 'f32';
        const casts = ins.filter((t) => t.dtype !== want);
        const args = casts.length ? ins.map((t) => cast(t, want)) : ins;
        const c = i < frozenBn ? (logits.has(i) ? frozenLogitCtx : frozenCtx) : logits.has(i) ? logitCtx : ctx;
        const pool = fusePool(i);
        let y: Tensor;
        try {
          y = l.forward(args, pool ? { ...c, fusedMaxpool: pool } : c);
        } finally {
          for (const t of new Set(args)) if (!ins.includes(t) && t !== y!) t.dispose();
        }
        const at = pool ? i + 1 : i; // with a fused pool, y is the pool layer's output
        outs[at] = y;
        refs.set(y, (refs.get(y) ?? 0) + 1);
        if (free) {
          for (const j of new Set(l.sources)) if (j >= 0 && lastUse[j] === i) drop(j);
          if (lastUse[at] < 0) drop(at);
        }
        if (pool) i++;
      }
    } catch (e) {
      if (free) for (let j = 0; j < n; j++) if (outs[j] && outs[j] !== x && !keep.has(j)) outs[j]!.dispose();
      throw e;
    }
    const result = new Map<number, Tensor>();
    // the caller gets float32 (f16 outputs cast once each; a tensor under two indices stays one tensor)
    const f32Of = new Map<Tensor, Tensor>();
    for (const k of [...keep].sort((a, b) => a - b)) {
      const t = outs[k]!;
      if (t.dtype === 'f32') result.set(k, t);
      else {
        if (!f32Of.has(t)) f32Of.set(t, cast(t, 'f32'));
        result.set(k, f32Of.get(t)!);
      }
    }
    for (const t of f32Of.keys()) t.dispose();
    return result;
  }
}
