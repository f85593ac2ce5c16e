/**
 * Models: a Darknet cfg (+ .weights, + class names) built on an engine, ready to detect, run raw, train
 * and save. Platform-neutral: paths go through ./host.js (Node), which the browser bundle replaces; there
 * a cfg, weights and images are passed as strings / bytes / ImageBitmap / ImageData.
 */
import { parseCfg } from '../darknet/cfg.js';
import { Network } from '../darknet/network.js';
import type { ForwardReplay } from '../darknet/replay.js';
import { decodeWeights, decodeWeightsPartial, describeTransfer, describeWeightsLoad, encodeWeights, transferFromWeights, WeightsError, type WeightsHeader } from '../darknet/weights.js';
import { networkInfo, type InfoRow } from '../darknet/info.js';
import { checkPrecision, type Precision } from '../darknet/precision.js';
import { checkImageSize, fromInterleaved, resolveMaxPixels, type Image } from '../data/image.js';
import { HeadDecoder, type HeadSpec } from '../yolo/decode.js';
import { isHeadLayer } from '../yolo/heads.js';
import type { Tensor } from '../tensor/tensor.js';
import { createEngine, Engine } from './engine.js';
import { detectImages, fromDarknetNetwork, type DetectNetwork, type FoundObject } from './detector.js';
import * as host from './host.js';

/** Bytes as a browser or Node hands them over. */
export type Bytes = Uint8Array | ArrayBuffer;

/**
 * A cfg: a path (Node), the cfg text (any string with a line break, e.g. from fetch(...).text()), or the
 * file's bytes.
 */
export type CfgSource = string | Bytes;

export interface LoadDarknetOptions {
  /** The .cfg: a path (Node), its text (a string containing a newline), or its bytes. */
  cfg: CfgSource;
  /**
   * The name that errors (CfgError `name:line`) and info() give a cfg passed as text or bytes, e.g. a picked
   * file's name in a browser (default '<cfg>'; a path names itself).
   */
  cfgName?: string;
  /** Darknet .weights: a path (Node) or the bytes. Without it the model gets a seeded random initialization. */
  weights?: string | Bytes;
  /** Class names: an array, the text of a .names file (one per line; a string with a newline), a path (Node), or bytes. */
  names?: string | readonly string[] | Bytes;
  /** The engine to build on; default: a new one (createEngine()), disposed with the model. */
  engine?: Engine;
  /** Network input size (default: the cfg's [net] width / height). */
  width?: number;
  height?: number;
  /**
   * Seed of the random initialization when no weights are given, and of the layers that cut (`partial`) or
   * transferred (`weightsCfg`) weights do not give values (default 1).
   */
  seed?: number;
  /**
   * Accept cut weights (Darknet's `partial` output, e.g. yolov4-tiny.conv.29, for fine-tuning): a file that
   * ends where a layer ends loads the layers it holds, the rest get the seeded initialization. Default false:
   * a short file is refused (a truncated download must not detect with random layers).
   */
  partial?: boolean;
  /**
   * The cfg the weights were made with, when it differs from `cfg` (another class count): the weights are read
   * with it, then every layer whose kind and parameter shapes match is copied (transfer by shape); the others
   * get the seeded initialization. Darknet cannot do this (it reads the bytes in order, misaligned after the
   * first changed layer). A path (Node), the cfg text or its bytes.
   */
  weightsCfg?: CfgSource;
  /**
   * Compile the inference kernels now, all at once (Network.precompile), so the first detect does not stall
   * on shader compilation; default true.
   */
  precompile?: boolean;
  /**
   * Inference storage (docs/kernels.md "f16 storage"): 'f16' keeps weights and activations as float16 where
   * the layers' kernels have the f16 variant, summing in float32 (the adapter needs `shader-f16`, else a
   * GpuError naming it); 'f32'; 'auto' (default): f16 only where `yolo-wgsl tune` measured it faster on this
   * adapter for this network, else f32. `model.precision` says which one runs. Training is always f32.
   */
  precision?: Precision;
  /** Receives cfg warnings and informational lines (default: silent). */
  log?: (line: string) => void;
  /**
   * The largest image `detect` decodes, in pixels (width x height, read from the PNG / JPEG header before
   * decoding): the model's default for DetectOptions.maxPixels. Default: the environment variable
   * YOLO_WGSL_MAX_PIXELS, else DEFAULT_MAX_PIXELS (64 megapixels); `Infinity` turns the check off. A larger
   * image is refused with an ImageError of code 'IMAGE_TOO_LARGE' (a decompression-bomb guard).
   */
  maxPixels?: number;
}

/** One detection: box corners in pixels of the original image (clipped to it), class and score. */
export interface Detection {
  box: { x1: number; y1: number; x2: number; y2: number };
  classId: number;
  /** The class name (the class number as text when no names were given). */
  name: string;
  /** objectness x class probability: what `conf` thresholds. */
  score: number;
  objectness: number;
  /** The box's embedding when the cfg's [yolo] has embedding_layer= (yolov4-tiny_contrastive.cfg); absent otherwise. */
  embedding?: number[];
}

/**
 * An image to detect on:
 * - a path to a PNG or JPEG file (Node);
 * - encoded PNG / JPEG bytes;
 * - raw 8-bit pixels `{ data, width, height }`, interleaved RGB or RGBA (channels from data.length, or
 *   given), e.g. a browser ImageData or a decoded frame;
 * - in a browser, an ImageBitmap, HTMLImageElement or canvas.
 */
export type ImageInput = string | Bytes | RawImage | ImageBitmap;

export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA); default data.length / (width * height). */
  channels?: 3 | 4;
}

export interface DetectOptions {
  /** Score threshold (objectness x class probability; default 0.25). */
  conf?: number;
  /** NMS IoU threshold (default 0.45). */
  iou?: number;
  /** Detections kept per image after NMS (default 1000). */
  maxDet?: number;
  /** Class-agnostic NMS (default false). */
  agnostic?: boolean;
  /** Letterbox (keep the aspect ratio) instead of stretching; default: the cfg's letter_box. */
  letterbox?: boolean;
  /** Override the cfg's nms_kind: 'default' | 'greedynms' | 'diounms'. */
  nmsKind?: string;
  /**
   * The largest image decoded, in pixels (width x height); default: the model's (LoadDarknetOptions.maxPixels),
   * else YOLO_WGSL_MAX_PIXELS, else DEFAULT_MAX_PIXELS (64 megapixels). PNG / JPEG sizes are read from the
   * header before decoding; a larger image is refused with an ImageError of code 'IMAGE_TOO_LARGE'.
   */
  maxPixels?: number;
}

export interface DetectBatchOptions extends DetectOptions {
  /** Images per forward (default 8). */
  batch?: number;
}

export interface ModelInfo {
  /** The cfg's file name ('<cfg>' when given as text). */
  cfg: string;
  input: { width: number; height: number; channels: number };
  /** Classes of the detection heads. */
  classes: number;
  names: readonly string[];
  letterBox: boolean;
  heads: { layer: number; kind: string; classes: number; anchors: number }[];
  layers: number;
  params: number;
  /** Darknet's total BFLOPs of one forward. */
  bflops: number;
  /** The Darknet layer table (as `yolo-wgsl info` prints it). */
  table: InfoRow[];
  warnings: string[];
}

function toU8(b: Bytes): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

const utf8 = new TextDecoder();

function isBytes(x: unknown): x is Bytes {
  return x instanceof Uint8Array || x instanceof ArrayBuffer;
}

/** The cfg text and a name for messages. */
export function readCfgSource(cfg: CfgSource): { text: string; name: string } {
  if (isBytes(cfg)) return { text: utf8.decode(toU8(cfg)), name: '<cfg>' };
  if (typeof cfg !== 'string') throw new TypeError('cfg: expected a path, the cfg text or its bytes');
  if (/[\r\n]/.test(cfg)) return { text: cfg, name: '<cfg>' };
  try {
    return { text: host.readText(cfg), name: cfg };
  } catch (e) {
    throw new Error(`cannot read cfg ${cfg}: ${(e as Error).message}`);
  }
}

function namesFrom(names: LoadDarknetOptions['names']): string[] {
  if (names === undefined) return [];
  let text: string;
  if (Array.isArray(names)) return [...(names as readonly string[])];
  if (isBytes(names)) text = utf8.decode(toU8(names));
  else if (typeof names === 'string') text = /[\r\n]/.test(names) ? names : host.readText(names);
  else throw new TypeError('names: expected an array, the .names text, a path or bytes');
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export interface LoadNetworkOptions {
  cfg: CfgSource;
  /** The name messages give a cfg passed as text (default '<cfg>'). */
  cfgName?: string;
  weights?: string | Bytes;
  width?: number;
  height?: number;
  channels?: number;
  seed?: number;
  /** Accept cut weights (LoadDarknetOptions.partial). */
  partial?: boolean;
  /** The weights' own cfg: transfer by shape (LoadDarknetOptions.weightsCfg). */
  weightsCfg?: CfgSource;
  log?: (line: string) => void;
  /** Logged when no weights are given (default: a line saying the weights are random). */
  missingWeights?: string;
}

/** How `loadStartWeights` reads the weights into a network. */
export interface StartWeightsOptions {
  /** A path (Node) or the bytes. */
  weights: string | Bytes;
  /** Accept a cut file (decodeWeightsPartial). */
  partial?: boolean;
  /** The weights' own cfg: read them with it and transfer by shape (transferFromWeights). */
  weightsCfg?: CfgSource;
  /** Seed of the layers the weights give no values (default 1). */
  seed?: number;
}

/**
 * Reads starting weights into a built network: the whole file (decodeWeights), a file that may be cut
 * (`partial`), or weights of another cfg by shape (`weightsCfg`). Returns the file's header and, for the last
 * two, one line saying which layers were loaded or transferred and which were initialised.
 */
export function loadStartWeights(net: Network, o: StartWeightsOptions): { header: WeightsHeader; line: string | null } {
  let bytes: Uint8Array;
  let name: string;
  if (typeof o.weights === 'string') {
    name = o.weights;
    try {
      bytes = host.readBytes(o.weights);
    } catch (e) {
      throw new WeightsError(`cannot read weights ${o.weights}: ${(e as Error).message}`, o.weights);
    }
  } else {
    name = '<weights>';
    bytes = toU8(o.weights);
  }
  const seed = o.seed ?? 1;
  if (o.weightsCfg !== undefined) {
    const src = readCfgSource(o.weightsCfg);
    // at the source cfg's own size: the size the weights were made for ([connected] depends on it)
    const srcNet = Network.build(parseCfg(src.text, src.name));
    const { load, transfer } = transferFromWeights(net, srcNet, bytes, name, { seed });
    return { header: load.header, line: `source ${host.baseName(src.name)}: ${describeWeightsLoad(load, name, srcNet, { rest: false })}; ${describeTransfer(transfer, host.baseName(net.file), seed)}` };
  }
  if (o.partial) {
    const r = decodeWeightsPartial(net, bytes, name, { seed });
    return { header: r.header, line: describeWeightsLoad(r, name, net, { seed }) };
  }
  return { header: decodeWeights(net, bytes, name), line: null };
}

/**
 * Builds a Darknet network (no device needed): parses the cfg, logs its warnings, loads the .weights or
 * initializes seeded random weights. Throws CfgError / WeightsError.
 */
export async function loadNetwork(opts: LoadNetworkOptions): Promise<Network & { weightsHeader?: WeightsHeader }> {
  const log = opts.log ?? (() => {});
  const src = readCfgSource(opts.cfg);
  const text = src.text;
  const name = opts.cfgName ?? src.name;
  const net: Network & { weightsHeader?: WeightsHeader } = Network.build(parseCfg(text, name), { width: opts.width, height: opts.height, channels: opts.channels });
  for (const w of net.warnings) log(`warning: ${w.file}:${w.line}: ${w.message}`);
  if (opts.weights !== undefined) {
    const r = loadStartWeights(net, { weights: opts.weights, partial: opts.partial, weightsCfg: opts.weightsCfg, seed: opts.seed });
    net.weightsHeader = r.header;
    if (r.line) log(r.line);
  } else {
    log(opts.missingWeights ?? `warning: no weights: ${host.baseName(name)} runs with seeded random weights (detections are meaningless)`);
    net.initWeights(opts.seed ?? 1);
  }
  return net;
}

/** A loaded Darknet model on an engine. Create with `loadDarknet`. */
export class Model {
  /** The engine the model runs on. */
  readonly engine: Engine;
  /** The built Darknet network (layers, parameters), for expert use. */
  readonly network: Network;
  /** Class names (may be empty). */
  readonly names: readonly string[];
  /** The cfg text the model was built from (training rebuilds evaluation copies from it). */
  readonly cfgText: string;
  readonly cfgName: string;
  private detectNet: DetectNetwork | null = null;
  private decoder: HeadDecoder | null = null;
  private readonly ownsEngine: boolean;
  private busy: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** The default pixel limit of detect (LoadDarknetOptions.maxPixels). */
  private readonly maxPixels?: number;

  /** @internal use loadDarknet */
  constructor(engine: Engine, network: Network, names: readonly string[], cfg: { text: string; name: string }, ownsEngine: boolean, maxPixels?: number) {
    this.maxPixels = maxPixels;
    this.engine = engine;
    this.network = network;
    this.names = names;
    this.cfgText = cfg.text;
    this.cfgName = cfg.name;
    this.ownsEngine = ownsEngine;
  }

  /** The storage inference runs at on this engine: 'f16' or 'f32' (LoadDarknetOptions.precision resolved). */
  get precision(): 'f32' | 'f16' {
    this.ready();
    return this.network.inferPrecision ?? 'f32';
  }

  /** Network input size. */
  get input(): { width: number; height: number; channels: number } {
    const I = this.network.input;
    return { width: I.w, height: I.h, channels: I.c };
  }

  /** The detection heads (anchors in pixels for [yolo], classes, scale_x_y ...). */
  get heads(): readonly HeadSpec[] {
    return this.ready().heads;
  }

  /** Summary of the model: input, classes, heads, parameter count, BFLOPs and the layer table. */
  info(): ModelInfo {
    const ni = networkInfo(this.network);
    const specs = this.ready().heads;
    // the heads the detector decodes (its specs, same order): [detection] has no decoder (isHeadLayer)
    const headLayers = this.network.heads().filter(isHeadLayer);
    const heads = headLayers.map((l, i) => ({ layer: l.index, kind: l.kind, classes: specs[i].classes, anchors: specs[i].anchors.length / 2 }));
    return {
      cfg: this.cfgName,
      input: this.input,
      classes: Math.max(0, ...heads.map((h) => h.classes)),
      names: this.names,
      letterBox: this.network.net.letterBox,
      heads,
      layers: this.network.layers.length,
      params: ni.params,
      bflops: ni.totalBflops,
      table: ni.rows,
      warnings: ni.warnings,
    };
  }

  /** Detects objects in one image. Boxes are in pixels of the original image. */
  async detect(image: ImageInput, opts: DetectOptions = {}): Promise<Detection[]> {
    return (await this.detectBatch([image], { ...opts, batch: 1 }))[0];
  }

  /** Detects objects in several images, `batch` images per forward; one list per image, in order. */
  async detectBatch(images: readonly ImageInput[], opts: DetectBatchOptions = {}): Promise<Detection[][]> {
    return this.exclusive(async () => {
      const net = this.ready();
      const batch = Math.max(1, Math.floor(opts.batch ?? 8));
      const out: Detection[][] = [];
      for (let i0 = 0; i0 < images.length; i0 += batch) {
        const decoded = await Promise.all(images.slice(i0, i0 + batch).map((im) => toImage(im, { maxPixels: opts.maxPixels ?? this.maxPixels })));
        const r = await detectImages(this.engine.gpu, net, decoded, { ...opts, names: this.names }, this.decoder!);
        for (const im of r.images) out.push(im.objects.map(toDetection));
      }
      return out;
    });
  }

  /**
   * Raw inference forward of an NCHW tensor [B, c, h, w] (values in [0, 1], RGB planes) on this model's
   * engine (`Tensor.from(model.engine.gpu, shape, data)`): the outputs of the output layers (the detection
   * heads, else the last layer) and of the `keep` layers, by layer index. The input stays yours; the caller
   * disposes the returned tensors (one tensor may appear under two indices).
   */
  forward(input: Tensor, opts: { keep?: number[] } = {}): Map<number, Tensor> {
    this.ready();
    return this.network.forward(input, { keep: opts.keep });
  }

  /**
   * Records a forward of `input` for replay (Network.recordForward): `run()` on the result issues the same
   * forward again without the layers' host-side work, into the same output tensors (`outputs`), for whatever
   * `input` holds (write the next image into it first). For repeated inference at one shape; dispose() it
   * before the model. docs/api.md "Models".
   */
  recordForward(input: Tensor, opts: { keep?: number[] } = {}): ForwardReplay {
    this.ready();
    return this.network.recordForward(input, { keep: opts.keep });
  }

  /** The current parameters as Darknet .weights bytes (`seen` written into the header). */
  toWeights(opts: { seen?: number | bigint } = {}): Uint8Array {
    return encodeWeights(this.network, { seen: BigInt(opts.seen ?? 0) });
  }

  /** Writes the parameters as a Darknet .weights file (Node; in a browser use toWeights()). */
  async save(file: string, opts: { seen?: number | bigint } = {}): Promise<void> {
    host.writeBytes(file, this.toWeights(opts));
  }

  /** Frees the model's GPU buffers (and its engine when loadDarknet created it). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.decoder?.dispose();
    this.decoder = null;
    this.detectNet?.release?.(); // its recorded forwards
    this.detectNet = null;
    this.network.dispose();
    if (this.ownsEngine) this.engine.dispose();
  }

  /**
   * Runs `fn` with the model to itself (detections and training on one model do not interleave).
   * @internal
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /**
   * After training changed the parameters (host copies in network layers): re-upload them for inference.
   * @internal
   */
  reloadForInference(): void {
    this.decoder?.dispose();
    this.decoder = null;
    this.detectNet?.release?.(); // its recorded forwards bind the parameters released here
    this.detectNet = null;
    this.network.release();
  }

  /**
   * The network as the detector sees it (prepared for inference on the engine).
   * @internal
   */
  detectNetwork(): DetectNetwork {
    return this.ready();
  }

  /**
   * Compiles every kernel a detect runs now, concurrently: the forward's (Network.precompile) and the head
   * decoding's, collected by a dry run of both (loadDarknet does this unless `precompile: false`).
   * @internal
   */
  async precompile(): Promise<void> {
    this.ready();
    const feeds = this.network.layers.filter(isHeadLayer).map((l) => l.sources[0]);
    const decoder = this.decoder!;
    await this.network.precompile(this.engine.gpu, { keep: feeds, extra: (outs) => decoder.enqueue(feeds.map((j) => outs.get(j)!), { thresh: 0.25 }) });
  }

  private ready(): DetectNetwork {
    if (this.disposed) throw new Error('the model was disposed');
    if (this.engine.isDisposed) throw new Error('the engine of this model was disposed');
    if (!this.detectNet) {
      this.detectNet = fromDarknetNetwork(this.network, this.engine.gpu);
      this.decoder = new HeadDecoder(this.engine.gpu, this.detectNet.heads, { width: this.detectNet.width, height: this.detectNet.height });
    }
    return this.detectNet;
  }
}

function toDetection(o: FoundObject): Detection {
  return { box: { ...o.pixels }, classId: o.classId, name: o.name, score: o.score, objectness: o.objectness, ...(o.embedding ? { embedding: o.embedding } : {}) };
}

/**
 * Decodes any ImageInput into the planar float RGB image the detector takes. Images over `opts.maxPixels`
 * (see DetectOptions.maxPixels) are refused with an ImageError 'IMAGE_TOO_LARGE', PNG / JPEG before decoding.
 */
export async function toImage(input: ImageInput, opts: { maxPixels?: number } = {}): Promise<Image> {
  const maxPixels = resolveMaxPixels(opts.maxPixels);
  if (typeof input === 'string') return host.decodeImageFile(input, { maxPixels });
  if (isBytes(input)) return host.decodeImageBytes(toU8(input), 'image', { maxPixels });
  if (host.isDrawable(input)) return host.decodeDrawable(input, { maxPixels });
  const raw = input as RawImage;
  if (raw && typeof raw === 'object' && raw.data && typeof raw.width === 'number' && typeof raw.height === 'number') {
    const { width, height } = raw;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`image: invalid size ${width}x${height}`);
    const channels = raw.channels ?? raw.data.length / (width * height);
    if (channels !== 3 && channels !== 4) throw new RangeError(`image: ${raw.data.length} bytes for ${width}x${height} is neither RGB nor RGBA (3 or 4 bytes per pixel)`);
    if (raw.data.length < width * height * channels) throw new RangeError(`image: ${raw.data.length} bytes, need ${width * height * channels} for ${width}x${height}x${channels}`);
    checkImageSize('image', width, height, maxPixels);
    const d = raw.data;
    return fromInterleaved(d instanceof Uint8Array ? d : new Uint8Array(d.buffer, d.byteOffset, d.byteLength), width, height, channels);
  }
  throw new TypeError('image: expected a path, PNG/JPEG bytes, { data, width, height } pixels, or (browser) an ImageBitmap');
}

/**
 * Loads a Darknet model: builds the cfg, loads the .weights (or a seeded random initialization) and the
 * class names, on `opts.engine` or a new engine. Throws CfgError (file, line, key), WeightsError, GpuError.
 */
export async function loadDarknet(opts: LoadDarknetOptions): Promise<Model> {
  const src = readCfgSource(opts.cfg);
  const cfg = opts.cfgName !== undefined && src.name === '<cfg>' ? { ...src, name: opts.cfgName } : src;
  const names = namesFrom(opts.names);
  if (opts.maxPixels !== undefined) resolveMaxPixels(opts.maxPixels); // a bad limit fails here, not at the first detect
  const precision = checkPrecision(opts.precision ?? 'auto');
  const network = await loadNetwork({ cfg: cfg.text, cfgName: cfg.name, weights: opts.weights, partial: opts.partial, weightsCfg: opts.weightsCfg, width: opts.width, height: opts.height, seed: opts.seed, log: opts.log, missingWeights: opts.weights === undefined ? `warning: no weights: ${host.baseName(cfg.name)} runs with seeded random weights` : undefined });
  network.precision = precision;
  const engine = opts.engine ?? (await createEngine({ log: opts.log }));
  const model = new Model(engine, network, names, cfg, !opts.engine, opts.maxPixels);
  try {
    model.heads; // prepares the network for inference now: errors surface here, not at the first detect
    if (opts.precompile !== false) await model.precompile();
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
