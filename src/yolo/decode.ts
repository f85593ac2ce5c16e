/**
 * Detection-head decode on the GPU (kernels/yolo_decode.wgsl): Darknet [yolo] (logistic, or new_coords),
 * [region] (YOLOv2) and [Gaussian_yolo] (Gaussian YOLOv3: class scores times 1 − the mean of the box's four
 * uncertainties) heads, straight from the head convolution's raw NCHW output.
 *
 * - `decodeRows`: OpenCV's row layout [B, H*W*A, 5+C] (row (y*W + x)*A + a: cx, cy, w, h, objectness,
 *   objectness × class probability), for tests and for callers that want every box.
 * - `HeadDecoder`: the inference path. One fused kernel per head decodes, thresholds (objectness > thresh,
 *   then one entry per class whose objectness × probability > thresh, as Darknet's get_yolo_detections)
 *   and appends the survivors to a GPU buffer with an atomic counter, shared by every head of a network.
 *   Readback is the 4-byte count, then only that many records.
 *
 * Boxes come out normalised to the network input (Darknet's relative boxes before correct_yolo_boxes);
 * map them to image pixels with `boxToImage` from src/data/image.ts.
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor, shapeStr } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import type { Box } from './box.js';
import { treeTable, type Tree } from '../darknet/tree.js';

export type HeadKind = 'yolo' | 'region' | 'Gaussian_yolo';

/** One detection head. */
export interface HeadSpec {
  /**
   * 'yolo' (default), 'region' (YOLOv2: anchors in grid cells, softmax over classes) or 'Gaussian_yolo'
   * (9 + classes entries per anchor: x, σx, y, σy, w, σw, h, σh, objectness, classes; decoded as [yolo], each
   * class score times 1 − mean(σx, σy, σw, σh), Darknet get_gaussian_yolo_detections).
   */
  kind?: HeadKind;
  /** This head's anchors [w0, h0, w1, h1, ...] after `mask` (see selectAnchors): pixels for [yolo] and [Gaussian_yolo], grid cells for [region]. */
  anchors: readonly number[];
  classes: number;
  /** [yolo] / [Gaussian_yolo] scale_x_y (default 1). */
  scaleXY?: number;
  /** [yolo] new_coords=1 (Scaled-YOLOv4 / YOLOv7 cfgs): no activation in the head, w = (2·tw)²·anchor. */
  newCoords?: boolean;
  /** [region] softmax over the classes (default true); false: logistic classes (Darknet softmax=0). */
  softmax?: boolean;
  /**
   * [region] tree= (YOLO9000): the class hierarchy (`classes` = its size). Each box with objectness > thresh
   * gives one detection: the class Darknet's hierarchy_top_prediction picks (kernels/region_tree.wgsl),
   * score = objectness.
   */
  tree?: Tree;
  /** [region] tree=: Darknet's hier_thresh of that walk (default 0.5, Darknet's -hier). */
  hierThresh?: number;
}

/** The network input size the boxes are normalised to. */
export interface NetSize {
  width: number;
  height: number;
}

/** One class entry of one decoded box (a box with several classes above the threshold gives several). */
export interface Detection {
  /** Image index within the batch. */
  batch: number;
  /** Index of the head in the list given to HeadDecoder. */
  head: number;
  /** Row of the head's OpenCV layout: (y*W + x)*A + a. */
  index: number;
  classId: number;
  objectness: number;
  /** objectness × class probability ([Gaussian_yolo]: × (1 − the mean of the box's four uncertainties)). */
  score: number;
  /** Centre and size, normalised to the network input. */
  box: Box;
  /** Every class score of the box (Darknet's dets.prob: score if > thresh else 0), when asked for. */
  scores?: Float32Array;
  /** The box's embedding (a [yolo] with embedding_layer=; src/api/detector.ts readEmbeddings). */
  embedding?: Float32Array;
}

/** The anchors [w, h, ...] of the mask entries (all anchors when mask is absent): Darknet's l.biases[2*mask[n]]. */
export function selectAnchors(anchors: readonly number[], mask?: readonly number[]): number[] {
  if (anchors.length % 2 !== 0) throw new Error(`anchors must come in w,h pairs; got ${anchors.length} values`);
  if (!mask) return [...anchors];
  const out: number[] = [];
  for (const m of mask) {
    if (!Number.isInteger(m) || m < 0 || 2 * m + 1 >= anchors.length) throw new Error(`mask entry ${m} is outside the ${anchors.length / 2} anchors`);
    out.push(anchors[2 * m], anchors[2 * m + 1]);
  }
  return out;
}

const WG = 64;
/** The most negative finite f32: "no threshold" (probabilities and coordinates are all above it). */
const NO_THRESH = -3.4028234663852886e38;
/** Words per record before the optional class-score vector. */
export const RECORD_WORDS = 10;

function modeOf(h: HeadSpec): number {
  const kind = h.kind ?? 'yolo';
  if (kind === 'Gaussian_yolo') {
    if (h.newCoords) throw new Error('[Gaussian_yolo] heads have no new_coords');
    return 4;
  }
  if (h.tree && kind !== 'region') throw new Error(`a class tree belongs to a [region] head, not '${kind}'`);
  if (kind === 'region') {
    if (h.newCoords) throw new Error('[region] heads have no new_coords');
    if (h.tree && h.tree.n !== h.classes) throw new Error(`[region] head: the tree has ${h.tree.n} classes, the head ${h.classes}`);
    return h.softmax === false ? 3 : 2;
  }
  if (kind !== 'yolo') throw new Error(`unknown head kind '${String(kind)}'`);
  return h.newCoords ? 1 : 0;
}

interface Geometry {
  B: number;
  A: number;
  C: number;
  H: number;
  W: number;
}

function geometry(x: Tensor, h: HeadSpec, what: string): Geometry {
  if (h.anchors.length === 0 || h.anchors.length % 2 !== 0) throw new Error(`${what}: anchors must be non-empty w,h pairs; got ${h.anchors.length} values`);
  if (!Number.isInteger(h.classes) || h.classes < 1) throw new Error(`${what}: classes must be a positive integer; got ${h.classes}`);
  const A = h.anchors.length / 2;
  const C = h.classes;
  // entries per anchor before the classes: x, y, w, h, objectness; [Gaussian_yolo] adds the 4 uncertainties
  const E = h.kind === 'Gaussian_yolo' ? 9 : 5;
  if (x.shape.length !== 4 || x.shape[1] !== A * (E + C)) {
    throw new Error(`${what}: input ${shapeStr(x.shape)} is not [B, ${A}*(${E}+${C}) = ${A * (E + C)}, H, W] (${A} anchors, ${C} classes)`);
  }
  return { B: x.shape[0], A, C, H: x.shape[2], W: x.shape[3] };
}

function checkNet(net: NetSize): void {
  if (!(net.width > 0 && net.height > 0)) throw new Error(`network size must be positive; got ${net.width}x${net.height}`);
}

/**
 * Decodes a head to OpenCV's rows [B, H*W*A, 5+C] (a new tensor the caller disposes). Class scores at or
 * below `thresh` are set to 0 as OpenCV does; by default nothing is zeroed.
 */
export function decodeRows(x: Tensor, head: HeadSpec, net: NetSize, thresh = NO_THRESH, anchorsTensor?: Tensor): Tensor {
  const g = geometry(x, head, 'decodeRows');
  checkNet(net);
  if (head.tree) throw new Error('decodeRows: a [region] head with a class tree has no per-class rows (its detections come from the tree walk: HeadDecoder)');
  const gpu = x.gpu;
  const out = new Tensor(gpu, [g.B, g.H * g.W * g.A, 5 + g.C], 'yolo-rows');
  const anchors = anchorsTensor ?? Tape.untracked(() => Tensor.from(gpu, [head.anchors.length], head.anchors, 'anchors'));
  const n = g.B * g.A * g.H * g.W;
  gpu.dispatch(
    { file: 'yolo_decode', entry: 'rows', constants: { WG, MODE: modeOf(head) } },
    { B: g.B, A: g.A, C: g.C, H: g.H, W: g.W, net_w: net.width, net_h: net.height, scale_xy: head.scaleXY ?? 1, thresh, head: 0, cap: 0, rec: 0 },
    { 1: x, 2: anchors, 3: out },
    gpu.grid(n, WG),
  );
  if (!anchorsTensor) anchors.dispose(); // the queue runs in order: the pool hands the buffer out only to later work
  return out;
}

export interface DecodeOptions {
  /** Objectness and class-score threshold (Darknet -thresh, default 0.25): strictly greater survives. */
  thresh?: number;
  /** Also return each entry's full class-score vector. */
  withScores?: boolean;
}

/**
 * The fused decode + threshold + compaction for a network's heads. Keep one per network (it holds the
 * anchors, the counter and the append buffer) and call `detect` with the heads' raw outputs.
 */
export class HeadDecoder {
  private anchors: Tensor[];
  /** The tree table of each [region] tree= head (null for the others). */
  private trees: (Tensor | null)[];
  private counter: Tensor;
  private records: Tensor | null = null;
  private capacity: number;
  /** Records the last read found (may exceed the capacity before a re-run). */
  lastCount = 0;
  /** How many times the append buffer had to grow (a re-run of the decode each time). */
  regrowths = 0;

  constructor(readonly gpu: Gpu, readonly heads: readonly HeadSpec[], readonly net: NetSize, opts: { capacity?: number } = {}) {
    if (heads.length === 0) throw new Error('HeadDecoder needs at least one head');
    checkNet(net);
    heads.forEach(modeOf);
    this.capacity = Math.max(16, opts.capacity ?? 4096);
    this.anchors = Tape.untracked(() => heads.map((h, i) => Tensor.from(gpu, [h.anchors.length], h.anchors, `anchors[${i}]`)));
    this.trees = Tape.untracked(() => heads.map((h, i) => (h.tree ? Tensor.from(gpu, [3 * h.tree.n + 2 * h.tree.groups], treeTable(h.tree), `tree[${i}]`) : null)));
    this.counter = Tape.untracked(() => new Tensor(gpu, [1], 'detect-count'));
  }

  /** Records the decode of every head into the append buffer (no readback). outputs[i] feeds heads[i]. */
  enqueue(outputs: readonly Tensor[], opts: DecodeOptions = {}): void {
    if (outputs.length !== this.heads.length) throw new Error(`HeadDecoder: ${outputs.length} outputs for ${this.heads.length} heads`);
    const thresh = opts.thresh ?? 0.25;
    const geo = outputs.map((x, i) => geometry(x, this.heads[i], `head ${i}`));
    const B = geo[0].B;
    if (geo.some((g) => g.B !== B)) throw new Error(`HeadDecoder: heads disagree on the batch size (${geo.map((g) => g.B).join(', ')})`);
    const stride = this.stride(opts.withScores ?? false);
    const words = this.capacity * stride;
    if (!this.records || this.records.size < words) {
      this.records?.dispose();
      this.records = Tape.untracked(() => new Tensor(this.gpu, [words], 'detect-records'));
    }
    const gpu = this.gpu;
    // count[0] = head (0); the other fields are unused by `clear`
    gpu.dispatch({ file: 'yolo_decode', entry: 'clear' }, { B: 0, A: 0, C: 0, H: 0, W: 0, net_w: 0, net_h: 0, scale_xy: 0, thresh: 0, head: 0, cap: 0, rec: 0 }, { 4: this.counter }, [1]);
    outputs.forEach((x, i) => {
      const h = this.heads[i];
      const g = geo[i];
      const n = g.B * g.A * g.H * g.W;
      const tree = this.trees[i];
      if (h.tree && tree) {
        gpu.dispatch(
          { file: 'region_tree', entry: 'detect', constants: { WG, SCORES: opts.withScores ? 1 : 0 } },
          { B: g.B, A: g.A, C: g.C, H: g.H, W: g.W, G: h.tree.groups, thresh, hier: h.hierThresh ?? 0.5, head: i, cap: this.capacity, rec: stride },
          { 1: x, 2: this.anchors[i], 4: this.counter, 5: this.records!, 6: tree },
          gpu.grid(n, WG),
        );
        return;
      }
      gpu.dispatch(
        { file: 'yolo_decode', entry: 'detect', constants: { WG, MODE: modeOf(h), SCORES: opts.withScores ? 1 : 0 } },
        { B: g.B, A: g.A, C: g.C, H: g.H, W: g.W, net_w: this.net.width, net_h: this.net.height, scale_xy: h.scaleXY ?? 1, thresh, head: i, cap: this.capacity, rec: stride },
        { 1: x, 2: this.anchors[i], 4: this.counter, 5: this.records! },
        gpu.grid(n, WG),
      );
    });
  }

  /**
   * Decodes, thresholds and compacts every head on the GPU, then reads back the count and the survivors.
   * Entries are in Darknet's order: by image, head, row ((y*W + x)*A + a), class. When more survive than
   * the buffer holds, it grows and the decode runs again (the outputs must still be alive).
   */
  async detect(outputs: readonly Tensor[], opts: DecodeOptions = {}): Promise<Detection[]> {
    const withScores = opts.withScores ?? false;
    for (;;) {
      this.enqueue(outputs, opts);
      const n = new Uint32Array(await this.gpu.read(this.counter, 4))[0];
      this.lastCount = n;
      if (n > this.capacity) {
        this.capacity = Math.ceil(n * 1.25);
        this.regrowths++;
        continue;
      }
      if (n === 0) return [];
      const stride = this.stride(withScores);
      const buf = await this.gpu.read(this.records!, n * stride * 4);
      return parseRecords(buf, n, withScores ? this.heads.map((h) => h.classes) : null);
    }
  }

  private stride(withScores: boolean): number {
    return RECORD_WORDS + (withScores ? Math.max(...this.heads.map((h) => h.classes)) : 0);
  }

  dispose(): void {
    for (const a of this.anchors) a.dispose();
    for (const t of this.trees) t?.dispose();
    this.counter.dispose();
    this.records?.dispose();
    this.records = null;
  }
}

/**
 * Parses n records (see kernels/yolo_decode.wgsl) and sorts them into Darknet's order. `classesPerHead`
 * is given when the records carry score vectors (the stride is 10 + max classes).
 */
export function parseRecords(buf: ArrayBuffer, n: number, classesPerHead: number[] | null): Detection[] {
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const stride = RECORD_WORDS + (classesPerHead ? Math.max(...classesPerHead) : 0);
  const out: Detection[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const o = k * stride;
    const d: Detection = {
      batch: u[o],
      head: u[o + 1],
      index: u[o + 2],
      classId: u[o + 3],
      objectness: f[o + 4],
      score: f[o + 5],
      box: { x: f[o + 6], y: f[o + 7], w: f[o + 8], h: f[o + 9] },
    };
    if (classesPerHead) d.scores = f.slice(o + RECORD_WORDS, o + RECORD_WORDS + classesPerHead[d.head]);
    out[k] = d;
  }
  out.sort(compareDetections);
  return out;
}

/** Darknet's order: image, head, row, class. */
export function compareDetections(a: Detection, b: Detection): number {
  return a.batch - b.batch || a.head - b.head || a.index - b.index || a.classId - b.classId;
}
