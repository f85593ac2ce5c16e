/**
 * Detection on decoded images, shared by the library API (Model.detect), the `detect` and `val` commands
 * and training-time validation: network input (stretch or letterbox) -> forward -> fused head decode and
 * threshold on the GPU (only survivors read back) -> NMS (the cfg's nms_kind) -> boxes in image pixels.
 *
 * Platform-neutral: no file system here (the browser bundle uses it as is).
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { gatherEmbeddings, type EmbeddingSample } from '../tensor/ops/contrastive.js';
import { HeadDecoder, type Detection as RawDetection, type HeadSpec } from '../yolo/decode.js';
import { nms, nmsOptionsFromDarknet, type NmsOptions } from '../yolo/nms.js';
import { headFromLayer, isHeadLayer } from '../yolo/heads.js';
import { boxToImage, boxToPixels, prepareImage, toBatch, type Image, type Placement } from '../data/image.js';
import type { Box } from '../yolo/box.js';
import { checkOptional, RULES } from '../util/validate.js';
import { ReplayedForwards, type ReplayableNetwork } from '../darknet/replay.js';

/** A network ready for detection. */
export interface DetectNetwork {
  /** Network input size ([net] width, height, channels). */
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** [net] letter_box. */
  readonly letterBox: boolean;
  /** The heads in cfg order. */
  readonly heads: readonly HeadSpec[];
  /** The NMS of the cfg (Darknet uses the last layer's nms_kind / beta_nms); default plain IoU. */
  readonly nms?: Pick<NmsOptions, 'kind' | 'beta'>;
  /**
   * Inference forward of an NCHW batch [B, channels, height, width]; returns the raw inputs of the head
   * layers (the head convolutions' outputs, [B, A*(5+C), H, W]) in `heads` order, then (when `embeddings`
   * says so) the embedding tensors. The caller disposes them.
   */
  forwardHeads(input: Tensor): Promise<Tensor[]> | Tensor[];
  /**
   * Per head (in `heads` order): the embedding size E of a head with Darknet's embedding_layer= (its
   * detections carry `embedding`), 0 for a head without. Absent: no head has embeddings. forwardHeads
   * then returns, after the head inputs, the embedding layer's output [B, A*E, H, W] of each head with
   * E > 0, in head order.
   */
  readonly embeddings?: readonly number[];
  /** Frees what the network keeps between forwards (recorded forwards); it stays usable. */
  release?(): void;
  dispose?(): void;
}

/**
 * What detection needs of a built Darknet network (src/darknet/network.ts Network fits structurally):
 * the input shape, [net] letter_box, the layers (heads found by kind; a head reads layers[i].sources[0]),
 * prepare for inference, and a forward that returns the kept layers' outputs.
 */
export interface DarknetNetworkLike extends ReplayableNetwork {
  readonly input: { c: number; h: number; w: number };
  readonly net: { letterBox: boolean };
  readonly layers: readonly { kind: string; index: number; sources: readonly number[]; carriesState: boolean }[];
  prepare(gpu: Gpu, mode: 'infer'): void;
  dispose(): void;
}

/**
 * Adapts a built network with its weights loaded: prepares it for inference on `gpu`; forwardHeads keeps
 * the outputs of the layers feeding the heads (the head convolutions) and frees the rest. The forwards are
 * replayed once a batch size repeats (ReplayedForwards, src/darknet/replay.ts; `replay: false` runs every
 * forward as usual): release() or dispose() frees the recordings. The NMS is the last head's nms_kind /
 * beta_nms (Darknet reads the network's last layer).
 */
export function fromDarknetNetwork(net: DarknetNetworkLike, gpu: Gpu, opts: { replay?: boolean } = {}): DetectNetwork {
  const headLayers = net.layers.filter(isHeadLayer);
  if (headLayers.length === 0) throw new Error('the network has no [yolo] or [region] layer to detect with');
  const parsed = headLayers.map((l) => headFromLayer(l));
  const feeds = headLayers.map((l) => l.sources[0]);
  if (feeds.some((j) => j < 0)) throw new Error('a detection head reads the network input directly');
  // [yolo] embedding_layer=: its output follows the head inputs (Darknet yolo_layer.c embedding_output)
  const embeddings = headLayers.map((l) => (l.kind === 'yolo' && l.options.embeddingLayer != null ? l.options.embeddingSize ?? 0 : 0));
  headLayers.forEach((l, i) => {
    if (embeddings[i] > 0 && l.kind === 'yolo') feeds.push(l.options.embeddingLayer!);
  });
  net.prepare(gpu, 'infer');
  const forwards = new ReplayedForwards(net, feeds, opts.replay === false ? 0 : 2);
  return {
    ...(embeddings.some((e) => e > 0) ? { embeddings } : {}),
    width: net.input.w,
    height: net.input.h,
    channels: net.input.c,
    letterBox: net.net.letterBox,
    heads: parsed.map((p) => p.spec),
    nms: parsed[parsed.length - 1].nms,
    // two heads reading one layer get a tensor each (ReplayedForwards copies), so the caller can dispose each
    forwardHeads: (x: Tensor): Tensor[] => forwards.forward(x),
    release: () => forwards.release(),
    dispose: () => {
      forwards.release();
      net.dispose();
    },
  };
}

/** An image a detection or evaluation run could not use, and why (the run went on without it). */
export interface SkippedImage {
  /** The image file (for a list entry that names nothing, the path as the list wrote it). */
  file: string;
  /** Why, e.g. "not a PNG or JPEG file (...)", "not found", "is a directory, not an image file". */
  reason: string;
  /** For an entry of a list file that was checked before the run: "list.txt:LINE". */
  listed?: string;
}

/**
 * Why reading or decoding one image failed: the reason of an error thrown by loadImage / decodeImage (a
 * file-system error, a decode error, an image over the pixel limit), without the file name that the
 * decode errors start with. Only call this for errors of those functions: GPU and programming errors
 * elsewhere are not per-image failures and must propagate.
 */
export function imageFailureReason(e: unknown, file: string): string {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'not found';
    case 'EISDIR':
      return 'is a directory, not an image file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
  }
  const msg = e instanceof Error ? e.message : String(e);
  return msg.startsWith(`${file}: `) ? msg.slice(file.length + 2) : msg;
}

/** One line about a skipped image: "list.txt:3: image x.png not found" or "skipped x.png: why". */
export function describeSkipped(s: SkippedImage): string {
  return s.listed ? `${s.listed}: image ${s.file} ${s.reason}` : `skipped ${s.file}: ${s.reason}`;
}

/** One detected object, as the `detect` command reports it (the library API's Detection is made from it). */
export interface FoundObject {
  classId: number;
  name: string;
  /** objectness x class probability */
  score: number;
  objectness: number;
  /** Centre and size normalised to the original image. */
  box: Box;
  /** Pixel corners in the original image, clipped to it. */
  pixels: { x1: number; y1: number; x2: number; y2: number };
  /**
   * The box's embedding, when its head has Darknet's embedding_layer= (yolov4-tiny_contrastive.cfg): the raw
   * values of the embedding layer at the box's image, anchor and cell (Darknet dets[i].embeddings, for
   * tracking by cosine similarity); absent otherwise.
   */
  embedding?: number[];
}

/**
 * The detections as `detect` writes them per image (and `serve` answers): class, score, objectness, pixel
 * corners (2 decimals) and the normalised centre box (6), and the embedding where the head has one.
 */
export function objectsJson(objects: readonly FoundObject[]): object[] {
  return objects.map((o) => ({
    class_id: o.classId,
    name: o.name,
    score: Number(o.score.toFixed(6)),
    objectness: Number(o.objectness.toFixed(6)),
    bbox_xyxy: [o.pixels.x1, o.pixels.y1, o.pixels.x2, o.pixels.y2].map((v) => Number(v.toFixed(2))),
    bbox_cxcywh_norm: [o.box.x, o.box.y, o.box.w, o.box.h].map((v) => Number(v.toFixed(6))),
    // only for a [yolo] with embedding_layer= (Darknet's dets[i].embeddings); absent otherwise
    ...(o.embedding ? { embedding: o.embedding.map((v) => Number(v.toPrecision(7))) } : {}),
  }));
}

export interface PostprocessOptions {
  /** NMS IoU threshold (default 0.45). */
  iou?: number;
  agnostic?: boolean;
  /** Detections kept per image after NMS (default 1000). */
  maxDet?: number;
  nms?: Pick<NmsOptions, 'kind' | 'beta'>;
  names?: readonly string[];
}

/** Post-processing of one image's decoded entries: NMS, then mapping to the image. */
export function postprocess(dets: readonly RawDetection[], placement: Placement, opts: PostprocessOptions): FoundObject[] {
  const kept = nms(dets, { iouThreshold: opts.iou ?? 0.45, agnostic: opts.agnostic, maxDetections: opts.maxDet ?? 1000, ...(opts.nms ?? {}) });
  return kept.map((d) => {
    const box = boxToImage(d.box, placement);
    return {
      classId: d.classId,
      name: opts.names?.[d.classId] ?? String(d.classId),
      score: d.score,
      objectness: d.objectness,
      box,
      pixels: boxToPixels(box, placement.imageWidth, placement.imageHeight, true),
      ...(d.embedding ? { embedding: Array.from(d.embedding) } : {}),
    };
  });
}

export interface DetectImagesOptions extends Omit<PostprocessOptions, 'nms'> {
  /** Objectness and class-score threshold (Darknet -thresh; default 0.25). */
  conf?: number;
  /** Letterbox (true) or stretch (false); default: the cfg's letter_box. */
  letterbox?: boolean;
  /** Override the cfg's nms_kind: default | greedynms | diounms. */
  nmsKind?: string;
  /** Read the detections' embeddings when the network has them (default true; evaluation needs none). */
  embeddings?: boolean;
}

export interface DetectImagesResult {
  /** Per image, in order: where it landed in the network input and its objects. */
  images: { placement: Placement; objects: FoundObject[] }[];
  /** Milliseconds spent resizing + uploading, and in forward + decode (for the whole batch). */
  prepareMs: number;
  forwardMs: number;
}

/** conf and iou in [0, 1], maxDet a positive integer: a NaN threshold would keep nothing without a word. */
export function checkDetectOptions(opts: { conf?: number; iou?: number; maxDet?: number }): void {
  checkOptional('conf', opts.conf, RULES.probability);
  checkOptional('iou', opts.iou, RULES.probability);
  checkOptional('maxDet', opts.maxDet, RULES.positiveInt);
}

/** The NMS a detection run uses: `nmsKind` when given, else the cfg's. */
export function nmsFor(net: DetectNetwork, nmsKind?: string): Pick<NmsOptions, 'kind' | 'beta'> | undefined {
  return nmsKind ? nmsOptionsFromDarknet(nmsKind, net.nms?.beta ?? 0.6) : net.nms;
}

/**
 * Detects on one batch of decoded images (one forward for all of them). `decoder` is a HeadDecoder for
 * `net` (reused across batches); without it one is made and disposed here.
 */
export async function detectImages(gpu: Gpu, net: DetectNetwork, images: readonly Image[], opts: DetectImagesOptions = {}, decoder?: HeadDecoder): Promise<DetectImagesResult> {
  checkDetectOptions(opts);
  if (images.length === 0) return { images: [], prepareMs: 0, forwardMs: 0 };
  if (net.channels !== 3) throw new Error(`detect needs a 3-channel network input; the cfg has channels=${net.channels}`);
  const own = !decoder;
  const dec = decoder ?? new HeadDecoder(gpu, net.heads, { width: net.width, height: net.height });
  try {
    const t0 = performance.now();
    const letterbox = opts.letterbox ?? net.letterBox;
    const prepared = images.map((im) => prepareImage(im, net.width, net.height, letterbox));
    const input = Tensor.from(gpu, [images.length, 3, net.height, net.width], toBatch(prepared.map((p) => p.image)), 'detect-input');
    const t1 = performance.now();
    let heads: Tensor[] = [];
    let dets: RawDetection[];
    try {
      heads = await net.forwardHeads(input);
      const nH = net.heads.length;
      dets = await dec.detect(heads.slice(0, nH), { thresh: opts.conf ?? 0.25 });
      if (net.embeddings && opts.embeddings !== false) await readEmbeddings(dets, net.heads, net.embeddings, heads.slice(nH));
    } finally {
      input.dispose();
      for (const h of heads) h.dispose();
    }
    const t2 = performance.now();
    const nmsOpt = nmsFor(net, opts.nmsKind);
    const out = prepared.map((p, b) => ({
      placement: p.placement,
      objects: postprocess(dets.filter((d) => d.batch === b), p.placement, { iou: opts.iou, agnostic: opts.agnostic, maxDet: opts.maxDet, nms: nmsOpt, names: opts.names }),
    }));
    return { images: out, prepareMs: t1 - t0, forwardMs: t2 - t1 };
  } finally {
    if (own) dec.dispose();
  }
}

/**
 * Sets `embedding` on the detections of the heads with embeddings (Darknet get_yolo_detections_batch:
 * get_embedding at the box's image, anchor and cell): one GPU gather and one readback per such head.
 * `embs` holds the embedding tensors of the heads with sizes[h] > 0, in head order.
 */
export async function readEmbeddings(dets: RawDetection[], heads: readonly HeadSpec[], sizes: readonly number[], embs: readonly Tensor[]): Promise<void> {
  let e = 0;
  for (let h = 0; h < heads.length; h++) {
    const E = sizes[h];
    if (!(E > 0)) continue;
    const emb = embs[e++];
    if (!emb) throw new Error(`readEmbeddings: no embedding tensor for head ${h}`);
    const A = heads[h].anchors.length / 2;
    const mine = dets.filter((d) => d.head === h);
    if (mine.length === 0) continue;
    // one sample per box (a box with several classes gives several detections)
    const rows = new Map<string, number>();
    const samples: EmbeddingSample[] = [];
    for (const d of mine) {
      const key = `${d.batch}/${d.index}`;
      if (rows.has(key)) continue;
      rows.set(key, samples.length);
      samples.push({ b: d.batch, a: d.index % A, cell: Math.floor(d.index / A) });
    }
    const z = gatherEmbeddings(emb, E, samples);
    let v: Float32Array;
    try {
      v = await z.toArray();
    } finally {
      z.dispose();
    }
    for (const d of mine) {
      const k = rows.get(`${d.batch}/${d.index}`)!;
      d.embedding = v.slice(k * E, (k + 1) * E);
    }
  }
}
