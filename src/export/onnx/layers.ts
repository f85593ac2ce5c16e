/**
 * One ONNX mapping per Darknet layer kind (the registry's LAYER_KINDS: a kind without an entry here is a type
 * error), each the inference forward of src/layers/<kind>.ts in ONNX operators (opset 13+), NCHW, batch free.
 * Parameters are the host arrays the engine uploads, with BN folded the same way (src/layers/common.ts
 * foldBn). A kind that cannot be expressed throws a CfgError at its section's line saying why.
 *
 * | kind | ONNX |
 * |---|---|
 * | convolutional | Conv (BN folded; groups, dilation, stride_x/stride_y) + activation; xnor: Where(x > 0, 1, -1) on the input; binary / xnor weights sign(w)·mean|w| per filter |
 * | connected | Flatten, Gemm (BN folded), Reshape to [N, n, 1, 1] + activation |
 * | local | Pad, k² strided Slices (im2col), batched MatMul per location, bias + activation |
 * | batchnorm | Mul, Add (rolling statistics) |
 * | maxpool / local_avgpool | MaxPool / AveragePool(count_include_pad=0), Darknet's padding split floor(p/2) before, the rest after |
 * | avgpool | GlobalAveragePool |
 * | upsample | Resize nearest (asymmetric, floor) × scale; negative stride: AveragePool × stride²·scale |
 * | route | Concat of Slices (groups / group_id) |
 * | shortcut | Add (+ strided Slice / zero interleave / Pad for mismatched shapes) + activation |
 * | sam / scale_channels | Mul (broadcast) + activation |
 * | reorg / reorg3d | Reshape, Transpose, Reshape (Darknet's reorg_cpu index map); extra: Pad of the flat input |
 * | crop | Slice of the centred window, x·2 − 1 unless noadjust |
 * | softmax | Softmax per group (÷ temperature); tree: Gather into padded sibling groups, Softmax, Gather back |
 * | dropout / cost / contrastive | identity (their inference forward) |
 * | yolo / Gaussian_yolo | Darknet's l.output: per-channel Sigmoid / scale_x_y |
 * | region | Sigmoid on x, y, objectness; Softmax (or tree softmax, or Sigmoid) over each anchor's classes |
 * | detection | Softmax over each cell's classes |
 * | rnn / crnn / gru / lstm | refused: hidden state carried from one forward to the next |
 */
import type { Network } from '../../darknet/network.js';
import type { AnyLayer, LayerKind, LayerOf } from '../../darknet/registry.js';
import { CfgError } from '../../darknet/cfg.js';
import type { Activation } from '../../tensor/ops/activation.js';
import { BN_EPS, foldBn, hostParam } from '../../layers/common.js';
import { shortcutGeometry } from '../../tensor/ops/shortcut.js';
import { requireLayerFile, type Tree } from '../../darknet/tree.js';
import { float, int, ints, str, type OnnxGraph } from './graph.js';
import { binarizeHost, gaussianCoefficients, groupedSoftmaxIndex, poolPads, recurrentReason, refusal, regionCoefficients, yoloCoefficients, type HeadCoefficients } from '../common.js';

/** What a mapping gets besides its layer and inputs. */
export interface MapContext {
  g: OnnxGraph;
  net: Network;
  /** The initializer names of a layer's folded parameters, by owner layer (share_index reuses them). */
  params: Map<number, { w: string; b: string }>;
}

/** Maps a layer: its input tensor names (in `sources` order) to its output tensor name. */
export type LayerMap<K extends LayerKind> = (l: LayerOf<K>, x: string[], m: MapContext) => string;

/** A CfgError at the layer's section: why it has no ONNX form. */
export const refuse = refusal('ONNX');

// ------------------------------------------------------------------------------------ shared pieces

/** Darknet's activation (lib/act.wgsl) in ONNX ops. */
export function activation(g: OnnxGraph, x: string, act: Activation): string {
  switch (act) {
    case 'linear': return x;
    case 'leaky': return g.op('LeakyRelu', [x], { alpha: float(0.1) });
    case 'logistic': return g.op('Sigmoid', [x]);
    case 'relu': return g.op('Relu', [x]);
    case 'tanh': return g.op('Tanh', [x]);
    case 'swish': return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    // Darknet's softplus switches to v / exp(v) beyond ±20, where log(1 + e^v) rounds to the same float32
    case 'mish': return g.opset >= 18 ? g.op('Mish', [x]) : g.op('Mul', [x, g.op('Tanh', [g.op('Softplus', [x])])]);
    case 'relu6': return g.op('Clip', [x, g.constF([0], []), g.constF([6], [])]);
    // ramp: v·(v > 0) + 0.1·v
    case 'ramp': return g.op('Add', [g.op('Relu', [x]), g.op('Mul', [x, g.constF([0.1], [])])]);
  }
}

/** Reshape with a static shape (0 copies the batch). */
export const reshape = (g: OnnxGraph, x: string, shape: readonly number[]): string => g.op('Reshape', [x, g.constI(shape)]);

/** x[..., start:end:step] along `axis`. */
export function slice(g: OnnxGraph, x: string, axis: number, start: number, end: number, step = 1): string {
  const inputs = [x, g.constI([start]), g.constI([end]), g.constI([axis])];
  if (step !== 1) inputs.push(g.constI([step]));
  return g.op('Slice', inputs);
}

/** Zero padding (or `value`) of an NCHW-like tensor: `before` and `after` per axis. */
export function pad(g: OnnxGraph, x: string, before: readonly number[], after: readonly number[], value = 0): string {
  if (before.every((v) => v === 0) && after.every((v) => v === 0)) return x;
  return g.op('Pad', [x, g.constI([...before, ...after]), g.constF([value], [])], { mode: str('constant') });
}

/** The folded weight and bias initializers of a linear layer (once per parameter owner). */
function foldedParams(m: MapContext, owner: AnyLayer & { batchNormalize: boolean }, n: number, wDims: number[], transform?: (w: Float32Array) => Float32Array): { w: string; b: string } {
  const done = m.params.get(owner.index);
  if (done) return done;
  let w = hostParam(owner, 'weights');
  let b = hostParam(owner, 'biases');
  if (owner.batchNormalize) ({ w, b } = foldBn(w, n, b, hostParam(owner, 'scales'), hostParam(owner, 'rolling_mean'), hostParam(owner, 'rolling_variance')));
  if (transform) w = transform(w);
  const r = { w: m.g.f32('weights', wDims, w), b: m.g.f32('biases', [n], b) };
  m.params.set(owner.index, r);
  return r;
}

/**
 * Softmax over groups of entries along `axis` (sizes and offsets from a Darknet tree: the sibling groups) of
 * a tensor of shape `flatShape` (0 for the batch; its entry at `axis` is replaced):
 * the entries are gathered into [groups, largest group] with a −1e30 pad (Pad of one slot, then Gather),
 * Softmax on the last of those axes, flattened and gathered back to their order.
 */
export function groupedSoftmax(g: OnnxGraph, x: string, axis: number, n: number, offsets: ArrayLike<number>, sizes: ArrayLike<number>, flatShape: readonly number[]): string {
  const rank = flatShape.length;
  const { G, S, idx, back } = groupedSoftmaxIndex(n, offsets, sizes);
  const before = new Array(rank).fill(0);
  const after = new Array(rank).fill(0);
  after[axis] = 1;
  const padded = pad(g, x, before, after, -1e30);
  const grouped = g.op('Gather', [padded, g.constI(idx, [G, S])], { axis: int(axis) });
  const sm = g.op('Softmax', [grouped], { axis: int(axis + 1) });
  // [.., G, S, ..] -> [.., G*S, ..] (flatShape: the shape with G*S at `axis`, 0 for the batch)
  const flat = reshape(g, sm, flatShape.map((d, i) => (i === axis ? G * S : d)));
  return g.op('Gather', [flat, g.constI(back)], { axis: int(axis) });
}

/** The tree of a softmax / region layer (its file must have been found at build time). */
function treeOf(l: LayerOf<'softmax'> | LayerOf<'region'>): Tree | null {
  const f = l.kind === 'softmax' ? l.tree : l.options.tree;
  return f ? requireLayerFile(f, 'the ONNX export') : null;
}

/**
 * The per-channel head activation of [yolo] / [Gaussian_yolo] (yolo_act.wgsl, gaussian_yolo.wgsl): with
 * per-channel vectors R, A, B, out = x·R + sigmoid(x)·A + B. R = 1, A = 0 on raw channels; A = 1 on
 * logistic channels; on x, y A = scale_x_y, B = −0.5·(scale_x_y − 1) (new_coords: R = scale_x_y).
 */
function channelAct(g: OnnxGraph, x: string, k: HeadCoefficients): string {
  const dims = [1, k.R.length, 1, 1];
  const terms: string[] = [];
  if (k.anyR) terms.push(k.identityR ? x : g.op('Mul', [x, g.f32('raw', dims, k.R)]));
  if (k.anyA) terms.push(g.op('Mul', [g.op('Sigmoid', [x]), g.f32('act', dims, k.A)]));
  let y = terms.length === 2 ? g.op('Add', terms) : terms[0] ?? g.op('Mul', [x, g.constF([0], [])]);
  if (k.anyB) y = g.op('Add', [y, g.f32('bias', dims, k.B)]);
  return y;
}

// ------------------------------------------------------------------------------------ the mappings

const convolutional: LayerMap<'convolutional'> = (l, [x], m) => {
  const g = m.g;
  const o = l.owner;
  const k = l.size;
  const p = l.padding * l.dilation;
  const bin = l.xnor || l.binary;
  const { w, b } = foldedParams(m, o, o.filters, [o.filters, o.input.c / o.groups, k, k], bin ? (v) => binarizeHost(v, o.filters) : undefined);
  // binarize_cpu: x > 0 ? 1 : -1, then the convolution pads with zeros
  const xin = l.xnor ? g.op('Where', [g.op('Greater', [x, g.constF([0], [])]), g.constF([1], []), g.constF([-1], [])]) : x;
  const y = g.op('Conv', [xin, w, b], {
    kernel_shape: ints([k, k]), strides: ints([l.strideY, l.strideX]), pads: ints([p, p, p, p]), dilations: ints([l.dilation, l.dilation]), group: int(l.groups),
  });
  return activation(g, y, l.activation);
};

const connected: LayerMap<'connected'> = (l, [x], m) => {
  const g = m.g;
  const n = l.outputsN;
  const { w, b } = foldedParams(m, l, n, [n, l.inputsN]);
  const y = g.op('Gemm', [g.op('Flatten', [x], { axis: int(1) }), w, b], { transB: int(1) });
  return activation(g, reshape(g, y, [0, n, 1, 1]), l.activation);
};

const local: LayerMap<'local'> = (l, [x], m) => {
  const g = m.g;
  const { c } = l.input;
  const { h: oh, w: ow } = l.output;
  const k = l.size;
  const s = l.stride;
  const F = l.filters;
  const L = oh * ow;
  const K = c * k * k;
  // im2col (Darknet's row order: channel, then kernel row, kernel column): k² strided slices of the padded input
  const xp = pad(g, x, [0, 0, l.pad, l.pad], [0, 0, l.pad, l.pad]);
  const taps: string[] = [];
  for (let kh = 0; kh < k; kh++) {
    for (let kw = 0; kw < k; kw++) {
      const rows = slice(g, xp, 2, kh, kh + s * (oh - 1) + 1, s);
      const tap = slice(g, rows, 3, kw, kw + s * (ow - 1) + 1, s);
      taps.push(g.op('Unsqueeze', [tap, g.constI([2])]));
    }
  }
  const cols = reshape(g, taps.length === 1 ? taps[0] : g.op('Concat', taps, { axis: int(2) }), [0, K, L]);
  // weights [L][F][K] -> [L][K][F]; out[n, f, l] = sum_k W[l, f, k] * cols[n, k, l] + b[f*L + l]
  const w = hostParam(l, 'weights');
  const wt = new Float32Array(w.length);
  for (let j = 0; j < L; j++) for (let f = 0; f < F; f++) for (let q = 0; q < K; q++) wt[(j * K + q) * F + f] = w[(j * F + f) * K + q];
  const W = g.f32('weights', [L, K, F], wt);
  const B = g.f32('biases', [1, F, oh, ow], hostParam(l, 'biases'));
  const y = g.op('MatMul', [g.op('Transpose', [cols], { perm: ints([2, 0, 1]) }), W]); // [L, N, F]
  const z = reshape(g, g.op('Transpose', [y], { perm: ints([1, 2, 0]) }), [0, F, oh, ow]);
  return activation(g, g.op('Add', [z, B]), l.activation);
};

const batchnorm: LayerMap<'batchnorm'> = (l, [x], m) => {
  const g = m.g;
  const o = l.owner;
  const C = l.input.c;
  const sc = new Float32Array(C);
  const bi = new Float32Array(C);
  const scales = hostParam(o, 'scales');
  const mean = hostParam(o, 'rolling_mean');
  const variance = hostParam(o, 'rolling_variance');
  const biases = hostParam(o, 'biases');
  for (let c = 0; c < C; c++) {
    const s = scales[c] / (Math.sqrt(variance[c]) + BN_EPS);
    sc[c] = s;
    bi[c] = biases[c] - s * mean[c];
  }
  return g.op('Add', [g.op('Mul', [x, g.f32('scale', [1, C, 1, 1], sc)]), g.f32('bias', [1, C, 1, 1], bi)]);
};

function windowPool(l: LayerOf<'maxpool'> | LayerOf<'local_avgpool'>, x: string, m: MapContext): string {
  const g = m.g;
  const [pt, pb] = poolPads(l.input.h, l.output.h, l.size, l.strideY, l.padding);
  const [pl, pr] = poolPads(l.input.w, l.output.w, l.size, l.strideX, l.padding);
  const attrs = { kernel_shape: ints([l.size, l.size]), strides: ints([l.strideY, l.strideX]) };
  let y: string;
  if (l.kind === 'local_avgpool') {
    // ONNX Runtime wants pads smaller than the window; Darknet's padding never is unless set by hand
    if (Math.max(pt, pb, pl, pr) >= l.size) throw refuse(l, `padding=${l.padding} reaches a whole ${l.size}x${l.size} window past the edge (windows of padding only)`);
    y = g.op('AveragePool', [x], { ...attrs, pads: ints([pt, pl, pb, pr]), count_include_pad: int(0) });
  } else if (Math.max(pt, pb, pl, pr) >= l.size) {
    // the pads as -FLT_MAX values, Darknet's padding taps
    y = g.op('MaxPool', [pad(g, x, [0, 0, pt, pl], [0, 0, pb, pr], -3.4028234663852886e38)], attrs);
  } else y = g.op('MaxPool', [x], { ...attrs, pads: ints([pt, pl, pb, pr]) });
  return y;
}

const maxpool: LayerMap<'maxpool'> = (l, [x], m) => windowPool(l, x, m);
const localAvgpool: LayerMap<'local_avgpool'> = (l, [x], m) => windowPool(l, x, m);

const avgpool: LayerMap<'avgpool'> = (_l, [x], m) => m.g.op('GlobalAveragePool', [x]);

const upsample: LayerMap<'upsample'> = (l, [x], m) => {
  const g = m.g;
  const k = Math.abs(l.stride);
  if (l.stride > 0) {
    const y = g.op('Resize', [x, '', g.constF([1, 1, k, k])], {
      mode: str('nearest'), coordinate_transformation_mode: str('asymmetric'), nearest_mode: str('floor'),
    });
    return l.scale === 1 ? y : g.op('Mul', [y, g.constF([l.scale], [])]);
  }
  // Darknet's reverse upsample: scale times the sum of each k x k block
  const y = g.op('AveragePool', [x], { kernel_shape: ints([k, k]), strides: ints([k, k]) });
  return g.op('Mul', [y, g.constF([k * k * l.scale], [])]);
};

const route: LayerMap<'route'> = (l, xs, m) => {
  const g = m.g;
  const parts = l.sources.map((j, i) => {
    if (l.groups === 1) return xs[i];
    const c = (j < 0 ? m.net.input.c : m.net.layers[j].output.c) / l.groups;
    return slice(g, xs[i], 1, l.groupId * c, (l.groupId + 1) * c);
  });
  return parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: int(1) });
};

const shortcut: LayerMap<'shortcut'> = (l, [a, b], m) => {
  const g = m.g;
  const A = l.input;
  const Bs = m.net.layers[l.from].output;
  let add = b;
  if (A.c !== Bs.c || A.h !== Bs.h || A.w !== Bs.w) {
    // shortcut_cpu: b[k, j*stride, i*stride] adds to a[k, j*sample, i*sample] for k < min c, i < min w, j < min h
    const { stride, sample, minc, minh, minw } = shortcutGeometry(A, Bs)!; // the layer checked the ratios
    if (Bs.c > minc) add = slice(g, add, 1, 0, minc);
    if (stride > 1 || Bs.h > minh || Bs.w > minw) {
      add = slice(g, add, 2, 0, (minh - 1) * stride + 1, stride);
      add = slice(g, add, 3, 0, (minw - 1) * stride + 1, stride);
    }
    if (sample > 1) {
      // zeros between the samples: [N, c, h, 1, w, 1] padded to [N, c, h, sample, w, sample]
      const r = reshape(g, add, [0, minc, minh, 1, minw, 1]);
      add = reshape(g, pad(g, r, [0, 0, 0, 0, 0, 0], [0, 0, 0, sample - 1, 0, sample - 1]), [0, minc, minh * sample, minw * sample]);
    }
    add = pad(g, add, [0, 0, 0, 0], [0, A.c - minc, A.h - minh * sample, A.w - minw * sample]);
  }
  return activation(g, g.op('Add', [a, add]), l.activation);
};

const sam: LayerMap<'sam'> = (l, [a, b], m) => activation(m.g, m.g.op('Mul', [a, b]), l.activation);

const scaleChannels: LayerMap<'scale_channels'> = (l, [sc, f], m) => activation(m.g, m.g.op('Mul', [f, sc]), l.activation);

function reorgAny(l: LayerOf<'reorg'> | LayerOf<'reorg3d'>, x: string, m: MapContext): string {
  const g = m.g;
  const o = l.output;
  if (l.extra) {
    const flat = reshape(g, x, [0, -1]);
    return reshape(g, pad(g, flat, [0, 0], [0, l.extra]), [0, o.c, 1, 1]);
  }
  // reorg_cpu(x, W, H, C, s, forward): with oc = C/s², out[k, j, i] <- x viewed as [oc, H*s, W*s] at
  // (k % oc, j*s + (k / oc) / s, i*s + (k / oc) % s) (forward = 0), the inverse map for forward = 1
  const { W, H, C, stride: s, forward } = l.call();
  const oc = C / (s * s);
  let y: string;
  if (!forward) y = g.op('Transpose', [reshape(g, x, [0, oc, H, s, W, s])], { perm: ints([0, 3, 5, 1, 2, 4]) });
  else y = g.op('Transpose', [reshape(g, x, [0, s, s, oc, H, W])], { perm: ints([0, 3, 4, 1, 5, 2]) });
  return reshape(g, y, [0, o.c, o.h, o.w]);
}

const reorg: LayerMap<'reorg'> = (l, [x], m) => reorgAny(l, x, m);
const reorg3d: LayerMap<'reorg3d'> = (l, [x], m) => reorgAny(l, x, m);

const crop: LayerMap<'crop'> = (l, [x], m) => {
  const g = m.g;
  const { h: H, w: W } = l.input;
  const dh = Math.trunc((H - l.cropHeight) / 2);
  const dw = Math.trunc((W - l.cropWidth) / 2);
  const y = g.op('Slice', [x, g.constI([dh, dw]), g.constI([dh + l.cropHeight, dw + l.cropWidth]), g.constI([2, 3])]);
  if (l.noadjust) return y;
  return g.op('Sub', [g.op('Mul', [y, g.constF([2], [])]), g.constF([1], [])]);
};

const softmax: LayerMap<'softmax'> = (l, [x], m) => {
  const g = m.g;
  const { c, h, w } = l.input;
  const per = c * h * w;
  const xt = l.temperature === 1 ? x : g.op('Mul', [x, g.constF([1 / l.temperature], [])]);
  const tree = treeOf(l);
  let y: string;
  if (tree) y = groupedSoftmax(g, reshape(g, xt, [0, per]), 1, per, tree.groupOffset, tree.groupSize, [0, per]);
  else y = g.op('Softmax', [reshape(g, xt, [0, l.groups, per / l.groups])], { axis: int(2) });
  return reshape(g, y, [0, c, h, w]);
};

const identity = (_l: AnyLayer, [x]: string[]): string => x;

const yolo: LayerMap<'yolo'> = (l, [x], m) => channelAct(m.g, x, yoloCoefficients(l));

const gaussianYolo: LayerMap<'Gaussian_yolo'> = (l, [x], m) => channelAct(m.g, x, gaussianCoefficients(l));

const region: LayerMap<'region'> = (l, [x], m) => {
  const g = m.g;
  const o = l.options;
  const E = o.coords + 1 + o.classes;
  const tree = treeOf(l);
  const soft = (o.softmax || tree !== null) && o.classes > 0;
  const a = channelAct(g, x, regionCoefficients(l, soft));
  if (!soft) return a;
  const { h: H, w: W } = l.input;
  const r = reshape(g, a, [0, o.num, E, H, W]);
  const head = slice(g, r, 2, 0, o.coords + 1);
  const cls = slice(g, r, 2, o.coords + 1, E);
  const sm = tree ? groupedSoftmax(g, cls, 2, o.classes, tree.groupOffset, tree.groupSize, [0, o.num, o.classes, H, W]) : g.op('Softmax', [cls], { axis: int(2) });
  return reshape(g, g.op('Concat', [head, sm], { axis: int(2) }), [0, o.num * E, H, W]);
};

const detection: LayerMap<'detection'> = (l, [x], m) => {
  const g = m.g;
  const o = l.options;
  if (!o.softmax || o.classes === 0) return x;
  const { c, h, w } = l.input;
  const per = c * h * w;
  const cells = o.side * o.side;
  const flat = reshape(g, x, [0, per]);
  const probs = g.op('Softmax', [reshape(g, slice(g, flat, 1, 0, cells * o.classes), [0, cells, o.classes])], { axis: int(2) });
  const rest = slice(g, flat, 1, cells * o.classes, per);
  return reshape(g, g.op('Concat', [reshape(g, probs, [0, cells * o.classes]), rest], { axis: int(1) }), [0, c, h, w]);
};

const recurrent = (l: AnyLayer): string => {
  throw refuse(l, recurrentReason('an ONNX'));
};

/** The mapping of every layer kind the engine builds. */
export const LAYER_MAPS: { [K in LayerKind]: LayerMap<K> } = {
  convolutional, maxpool, avgpool, route, shortcut, upsample, yolo, region, reorg, reorg3d, dropout: identity, connected,
  detection, softmax, sam, scale_channels: scaleChannels, local, crop, cost: identity, local_avgpool: localAvgpool,
  Gaussian_yolo: gaussianYolo, batchnorm, crnn: recurrent, rnn: recurrent, gru: recurrent, lstm: recurrent, contrastive: identity,
};

/** Maps one layer through LAYER_MAPS. */
export function mapLayer(l: AnyLayer, x: string[], m: MapContext): string {
  return (LAYER_MAPS[l.kind] as LayerMap<LayerKind>)(l as never, x, m);
}
