/**
 * One TF.js GraphModel mapping per Darknet layer kind (the registry's LAYER_KINDS: a kind without an entry
 * is a type error), each the inference forward of src/layers/<kind>.ts in TensorFlow ops that TF.js's
 * converter executes, on NHWC tensors with a free batch. The math follows the ONNX mappings
 * (src/export/common.ts: the same binarization, pool padding and head activations as the ONNX export); layers whose Darknet forward
 * reads memory in NCHW order (connected, softmax, reorg, detection) transpose to NCHW and back.
 *
 * | kind | TF ops |
 * |---|---|
 * | convolutional | Conv2D (EXPLICIT padding; groups: Split / Conv2D per group / ConcatV2; groups = channels = filters: DepthwiseConv2dNative; dilation with stride: stride 1 + StridedSlice) + BiasAdd + activation |
 * | connected | Transpose to NCHW, Reshape, MatMul, BiasAdd, Reshape + activation |
 * | batchnorm | Mul, AddV2 |
 * | maxpool | PadV2 (−FLT_MAX) + MaxPool VALID |
 * | local_avgpool | Pad + AvgPool VALID × (window / in-bounds taps) |
 * | avgpool | Mean over H, W |
 * | upsample | ResizeNearestNeighbor (+ Mul scale); negative stride: AvgPool × stride²·scale |
 * | route | ConcatV2 of StridedSlices |
 * | shortcut | AddV2 (+ StridedSlice / Pad / zero interleave for mismatched shapes) + activation |
 * | sam / scale_channels | Mul (broadcast) + activation |
 * | reorg / reorg3d | Transposes and Reshapes (reorg_cpu's index map) |
 * | crop | StridedSlice, x·2 − 1 unless noadjust |
 * | softmax | Softmax per group (÷ temperature) |
 * | dropout / cost / contrastive | identity |
 * | yolo / Gaussian_yolo / region / detection | the head activation per channel; Softmax over the classes |
 * | local | Pad, k² StridedSlices (im2col), BatchMatMulV2 per position, bias + activation |
 * | softmax / region tree= | GatherV2 into padded sibling groups, Softmax, GatherV2 back |
 * | rnn / crnn / gru / lstm | refused: hidden state carried from one forward to the next |
 */
import type { Network } from '../../darknet/network.js';
import type { AnyLayer, LayerKind, LayerOf } from '../../darknet/registry.js';
import { CfgError } from '../../darknet/cfg.js';
import type { Activation } from '../../tensor/ops/activation.js';
import { BN_EPS, foldBn, hostParam } from '../../layers/common.js';
import { shortcutGeometry } from '../../tensor/ops/shortcut.js';
import { requireLayerFile } from '../../darknet/tree.js';
import { binarizeHost, gaussianCoefficients, groupedSoftmaxIndex, poolPads, recurrentReason, refusal, regionCoefficients, yoloCoefficients, type HeadCoefficients } from '../common.js';
import { b, f, i, ints, s, type TfGraph } from './graph.js';

const FLT_MAX = 3.4028234663852886e38;

export interface MapContext {
  g: TfGraph;
  net: Network;
  /** The Const names of a layer's folded parameters, by owner layer (share_index reuses them). */
  params: Map<number, { w: string[]; b: string }>;
}

/** Maps a layer: its input node names (in `sources` order, NHWC) to its output node name (NHWC). */
export type LayerMap<K extends LayerKind> = (l: LayerOf<K>, x: string[], m: MapContext) => string;

/** A CfgError at the layer's section: why it has no TF.js form. */
export const refuse = refusal('TF.js');

// ------------------------------------------------------------------------------------ shared pieces

/** Darknet's activation (lib/act.wgsl) in TF ops. */
export function activation(g: TfGraph, x: string, act: Activation): string {
  switch (act) {
    case 'linear': return x;
    case 'leaky': return g.op('LeakyRelu', [x], { alpha: f(0.1) });
    case 'logistic': return g.op('Sigmoid', [x]);
    case 'relu': return g.op('Relu', [x]);
    case 'tanh': return g.op('Tanh', [x]);
    case 'swish': return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'mish': return g.op('Mul', [x, g.op('Tanh', [g.op('Softplus', [x])])]);
    case 'relu6': return g.op('Relu6', [x]);
    case 'ramp': return g.op('AddV2', [g.op('Relu', [x]), g.op('Mul', [x, g.constF([0.1], [])])]);
  }
}

export const reshape = (g: TfGraph, x: string, shape: readonly number[]): string => g.op('Reshape', [x, g.constI(shape)], { Tshape: { type: 'DT_INT32' } });
export const transpose = (g: TfGraph, x: string, perm: readonly number[]): string => g.op('Transpose', [x, g.constI(perm)], { Tperm: { type: 'DT_INT32' } });
export const toNchw = (g: TfGraph, x: string): string => transpose(g, x, [0, 3, 1, 2]);
export const toNhwc = (g: TfGraph, x: string): string => transpose(g, x, [0, 2, 3, 1]);
export const concat = (g: TfGraph, xs: readonly string[], axis: number): string => (xs.length === 1 ? xs[0] : g.op('ConcatV2', [...xs, g.constI([axis], [])], { N: i(xs.length), Tidx: { type: 'DT_INT32' } }));

/** x[..., start:end:step] along `axis` of a rank-`rank` tensor. */
export function slice(g: TfGraph, x: string, rank: number, axis: number, start: number, end: number, step = 1): string {
  const begin = new Array(rank).fill(0);
  const stop = new Array(rank).fill(0);
  const strides = new Array(rank).fill(1);
  begin[axis] = start;
  stop[axis] = end;
  strides[axis] = step;
  const mask = ((1 << rank) - 1) & ~(1 << axis);
  return g.op('StridedSlice', [x, g.constI(begin), g.constI(stop), g.constI(strides)], { Index: { type: 'DT_INT32' }, begin_mask: i(mask), end_mask: i(mask), ellipsis_mask: i(0), new_axis_mask: i(0), shrink_axis_mask: i(0) });
}

/** Constant padding (`before` / `after` per axis) with `value`. */
export function pad(g: TfGraph, x: string, before: readonly number[], after: readonly number[], value = 0): string {
  if (before.every((v) => v === 0) && after.every((v) => v === 0)) return x;
  const p: number[] = [];
  before.forEach((v, k) => p.push(v, after[k]));
  return g.op('PadV2', [x, g.constI(p, [before.length, 2]), g.constF([value], [])], { Tpaddings: { type: 'DT_INT32' } });
}

/** OIHW -> HWIO (Conv2D filters), for `o` filters of `ci` input channels. */
function oihwToHwio(w: Float32Array, o: number, ci: number, k: number): Float32Array {
  const out = new Float32Array(o * ci * k * k);
  for (let co = 0; co < o; co++) for (let c = 0; c < ci; c++) for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) out[((kh * k + kw) * ci + c) * o + co] = w[((co * ci + c) * k + kh) * k + kw];
  return out;
}

/** The per-channel head activation: out = x·R + sigmoid(x)·A + B, vectors over the (last) channel axis. */
function channelAct(g: TfGraph, x: string, k: HeadCoefficients): string {
  const dims = [k.R.length];
  const terms: string[] = [];
  if (k.anyR) terms.push(k.identityR ? x : g.op('Mul', [x, g.f32('raw', dims, k.R)]));
  if (k.anyA) terms.push(g.op('Mul', [g.op('Sigmoid', [x]), g.f32('act', dims, k.A)]));
  let y = terms.length === 2 ? g.op('AddV2', terms) : terms[0] ?? g.op('Mul', [x, g.constF([0], [])]);
  if (k.anyB) y = g.op('AddV2', [y, g.f32('bias', dims, k.B)]);
  return y;
}

/**
 * Softmax over groups of entries on the last axis of a tensor [N, ...lead, n] (a Darknet tree's sibling groups,
 * offsets and sizes): a −1e30 slot padded at the end, the entries gathered into [groups, largest group],
 * Softmax (last axis), flattened and gathered back to their order.
 */
function groupedSoftmax(g: TfGraph, x: string, lead: readonly number[], n: number, offsets: ArrayLike<number>, sizes: ArrayLike<number>): string {
  const rank = lead.length + 2;
  const { G, S, idx, back } = groupedSoftmaxIndex(n, offsets, sizes);
  const gather = (t: string, ix: number[], shape: number[], axis: number) => g.op('GatherV2', [t, g.constI(ix, shape), g.constI([axis], [])], { Tparams: { type: 'DT_FLOAT' }, Tindices: { type: 'DT_INT32' }, Taxis: { type: 'DT_INT32' }, batch_dims: i(0) });
  const before = new Array(rank).fill(0);
  const after = new Array(rank).fill(0);
  after[rank - 1] = 1;
  const grouped = gather(pad(g, x, before, after, -1e30), idx, [G, S], rank - 1); // [..., G, S]
  // [-1, ...lead, G, S] -> [-1, ...lead, G*S]
  const flat = reshape(g, g.op('Softmax', [grouped]), [-1, ...lead, G * S]);
  return gather(flat, back, [n], rank - 1);
}

// ------------------------------------------------------------------------------------ the mappings

const convolutional: LayerMap<'convolutional'> = (l, [x], m) => {
  const g = m.g;
  const o = l.owner;
  const k = l.size;
  const G = l.groups;
  const cin = o.input.c;
  const F = o.filters;
  const depthwise = G > 1 && G === cin && G === F;
  let par = m.params.get(o.index);
  if (!par) {
    let w = hostParam(o, 'weights');
    let bias = hostParam(o, 'biases');
    if (o.batchNormalize) ({ w, b: bias } = foldBn(w, F, bias, hostParam(o, 'scales'), hostParam(o, 'rolling_mean'), hostParam(o, 'rolling_variance')));
    if (l.xnor || l.binary) w = binarizeHost(w, F);
    const per = (F / G) * (cin / G) * k * k;
    const ws: string[] = [];
    if (depthwise) ws.push(g.f32('weights', [k, k, cin, 1], oihwToHwio(w, F, 1, k)));
    else for (let j = 0; j < G; j++) ws.push(g.f32('weights', [k, k, cin / G, F / G], oihwToHwio(w.subarray(j * per, (j + 1) * per), F / G, cin / G, k)));
    par = { w: ws, b: g.f32('biases', [F], bias) };
    m.params.set(o.index, par);
  }
  // binarize_cpu: x > 0 ? 1 : -1, then the convolution pads with zeros
  const xin = l.xnor ? g.op('SelectV2', [g.op('Greater', [x, g.constF([0], [])]), g.constF([1], []), g.constF([-1], [])]) : x;
  const p = l.padding * l.dilation;
  // TF.js convolutions take strides or dilations > 1, not both: dilated strided ones run at stride 1 and are sampled
  const strided = l.dilation > 1 && (l.strideX > 1 || l.strideY > 1);
  const [sy, sx] = strided ? [1, 1] : [l.strideY, l.strideX];
  const attrs = {
    strides: ints([1, sy, sx, 1]), dilations: ints([1, l.dilation, l.dilation, 1]), data_format: s('NHWC'),
    ...(p > 0 ? { padding: s('EXPLICIT'), explicit_paddings: ints([0, 0, p, p, p, p, 0, 0]) } : { padding: s('VALID') }),
  };
  let y: string;
  if (depthwise) y = g.op('DepthwiseConv2dNative', [xin, par.w[0]], attrs);
  else if (G === 1) y = g.op('Conv2D', [xin, par.w[0]], { ...attrs, use_cudnn_on_gpu: b(true) });
  else {
    const split = g.op('Split', [g.constI([3], []), xin], { num_split: i(G) });
    y = concat(g, par.w.map((w, j) => g.op('Conv2D', [`${split}:${j}`, w], { ...attrs, use_cudnn_on_gpu: b(true) })), 3);
  }
  if (strided) {
    const { h, w } = l.output;
    y = slice(g, slice(g, y, 4, 1, 0, (h - 1) * l.strideY + 1, l.strideY), 4, 2, 0, (w - 1) * l.strideX + 1, l.strideX);
  }
  return activation(g, g.op('BiasAdd', [y, par.b], { data_format: s('NHWC') }), l.activation);
};

const connected: LayerMap<'connected'> = (l, [x], m) => {
  const g = m.g;
  const n = l.outputsN;
  const K = l.inputsN;
  let par = m.params.get(l.index);
  if (!par) {
    let w = hostParam(l, 'weights');
    let bias = hostParam(l, 'biases');
    if (l.batchNormalize) ({ w, b: bias } = foldBn(w, n, bias, hostParam(l, 'scales'), hostParam(l, 'rolling_mean'), hostParam(l, 'rolling_variance')));
    par = { w: [g.f32('weights', [n, K], w)], b: g.f32('biases', [n], bias) };
    m.params.set(l.index, par);
  }
  const { h, w } = l.input;
  const flat = reshape(g, h * w === 1 ? x : toNchw(g, x), [-1, K]);
  const y = g.op('BiasAdd', [g.op('MatMul', [flat, par.w[0]], { transpose_a: b(false), transpose_b: b(true) }), par.b], { data_format: s('NHWC') });
  return activation(g, reshape(g, y, [-1, 1, 1, n]), l.activation);
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
    const v = scales[c] / (Math.sqrt(variance[c]) + BN_EPS);
    sc[c] = v;
    bi[c] = biases[c] - v * mean[c];
  }
  return g.op('AddV2', [g.op('Mul', [x, g.f32('scale', [C], sc)]), g.f32('bias', [C], bi)]);
};

const poolAttrs = (size: number, sy: number, sx: number) => ({ ksize: ints([1, size, size, 1]), strides: ints([1, sy, sx, 1]), padding: s('VALID'), data_format: s('NHWC') });

const maxpool: LayerMap<'maxpool'> = (l, [x], m) => {
  const g = m.g;
  const [pt, pb] = poolPads(l.input.h, l.output.h, l.size, l.strideY, l.padding);
  const [pl, pr] = poolPads(l.input.w, l.output.w, l.size, l.strideX, l.padding);
  // Darknet's padding taps are -FLT_MAX
  return g.op('MaxPool', [pad(g, x, [0, pt, pl, 0], [0, pb, pr, 0], -FLT_MAX)], poolAttrs(l.size, l.strideY, l.strideX));
};

const localAvgpool: LayerMap<'local_avgpool'> = (l, [x], m) => {
  const g = m.g;
  const { h: H, w: W } = l.input;
  const { h: oh, w: ow } = l.output;
  const [pt, pb] = poolPads(H, oh, l.size, l.strideY, l.padding);
  const [pl, pr] = poolPads(W, ow, l.size, l.strideX, l.padding);
  const y = g.op('AvgPool', [pad(g, x, [0, pt, pl, 0], [0, pb, pr, 0])], poolAttrs(l.size, l.strideY, l.strideX));
  if (!pt && !pb && !pl && !pr) return y;
  // Darknet averages over the taps inside the image: the window mean times size² / taps
  const corr = new Float32Array(oh * ow);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      let n = 0;
      for (let dy = 0; dy < l.size; dy++) for (let dx = 0; dx < l.size; dx++) {
        const yy = oy * l.strideY + dy - pt;
        const xx = ox * l.strideX + dx - pl;
        if (yy >= 0 && yy < H && xx >= 0 && xx < W) n++;
      }
      if (n === 0) throw refuse(l, `padding=${l.padding} makes a window of padding only`);
      corr[oy * ow + ox] = (l.size * l.size) / n;
    }
  }
  return g.op('Mul', [y, g.f32('count', [1, oh, ow, 1], corr)]);
};

const avgpool: LayerMap<'avgpool'> = (_l, [x], m) => m.g.op('Mean', [x, m.g.constI([1, 2])], { keep_dims: b(true), Tidx: { type: 'DT_INT32' } });

const upsample: LayerMap<'upsample'> = (l, [x], m) => {
  const g = m.g;
  const k = Math.abs(l.stride);
  if (l.stride > 0) {
    const y = g.op('ResizeNearestNeighbor', [x, g.constI([l.output.h, l.output.w])], { align_corners: b(false), half_pixel_centers: b(false) });
    return l.scale === 1 ? y : g.op('Mul', [y, g.constF([l.scale], [])]);
  }
  // Darknet's reverse upsample: scale times the sum of each k x k block
  return g.op('Mul', [g.op('AvgPool', [x], poolAttrs(k, k, k)), g.constF([k * k * l.scale], [])]);
};

const route: LayerMap<'route'> = (l, xs, m) => {
  const parts = l.sources.map((j, q) => {
    if (l.groups === 1) return xs[q];
    const c = (j < 0 ? m.net.input.c : m.net.layers[j].output.c) / l.groups;
    return slice(m.g, xs[q], 4, 3, l.groupId * c, (l.groupId + 1) * c);
  });
  return concat(m.g, parts, 3);
};

const shortcut: LayerMap<'shortcut'> = (l, [a, bIn], m) => {
  const g = m.g;
  const A = l.input;
  const Bs = m.net.layers[l.from].output;
  let add = bIn;
  if (A.c !== Bs.c || A.h !== Bs.h || A.w !== Bs.w) {
    // shortcut_cpu: b[k, j*stride, i*stride] adds to a[k, j*sample, i*sample] for k < min c, i < min w, j < min h
    const { stride, sample, minc, minh, minw } = shortcutGeometry(A, Bs)!; // the layer checked the ratios
    if (Bs.c > minc) add = slice(g, add, 4, 3, 0, minc);
    if (stride > 1 || Bs.h > minh || Bs.w > minw) {
      add = slice(g, add, 4, 1, 0, (minh - 1) * stride + 1, stride);
      add = slice(g, add, 4, 2, 0, (minw - 1) * stride + 1, stride);
    }
    if (sample > 1) {
      // zeros between the samples: [N, h, 1, w, 1, c] padded to [N, h, sample, w, sample, c]
      const r = reshape(g, add, [-1, minh, 1, minw, 1, minc]);
      add = reshape(g, pad(g, r, [0, 0, 0, 0, 0, 0], [0, 0, sample - 1, 0, sample - 1, 0]), [-1, minh * sample, minw * sample, minc]);
    }
    add = pad(g, add, [0, 0, 0, 0], [0, A.h - minh * sample, A.w - minw * sample, A.c - minc]);
  }
  return activation(g, g.op('AddV2', [a, add]), l.activation);
};

const sam: LayerMap<'sam'> = (l, [a, c], m) => activation(m.g, m.g.op('Mul', [a, c]), l.activation);

const scaleChannels: LayerMap<'scale_channels'> = (l, [sc, x], m) => activation(m.g, m.g.op('Mul', [x, sc]), l.activation);

function reorgAny(l: LayerOf<'reorg'> | LayerOf<'reorg3d'>, x: string, m: MapContext): string {
  const g = m.g;
  const o = l.output;
  const xc = toNchw(g, x);
  if (l.extra) {
    const flat = reshape(g, xc, [-1, l.input.c * l.input.h * l.input.w]);
    return reshape(g, pad(g, flat, [0, 0], [0, l.extra]), [-1, 1, 1, o.c]);
  }
  // reorg_cpu (see the ONNX mapping): x viewed as [oc, H*s, W*s] (forward = 0) or its inverse map
  const { W, H, C, stride: st, forward } = l.call();
  const oc = C / (st * st);
  let y: string;
  if (!forward) y = transpose(g, reshape(g, xc, [-1, oc, H, st, W, st]), [0, 3, 5, 1, 2, 4]);
  else y = transpose(g, reshape(g, xc, [-1, st, st, oc, H, W]), [0, 3, 4, 1, 5, 2]);
  return toNhwc(g, reshape(g, y, [-1, o.c, o.h, o.w]));
}

const reorg: LayerMap<'reorg'> = (l, [x], m) => reorgAny(l, x, m);
const reorg3d: LayerMap<'reorg3d'> = (l, [x], m) => reorgAny(l, x, m);

const crop: LayerMap<'crop'> = (l, [x], m) => {
  const g = m.g;
  const { h: H, w: W } = l.input;
  const dh = Math.trunc((H - l.cropHeight) / 2);
  const dw = Math.trunc((W - l.cropWidth) / 2);
  const y = slice(g, slice(g, x, 4, 1, dh, dh + l.cropHeight), 4, 2, dw, dw + l.cropWidth);
  if (l.noadjust) return y;
  return g.op('Sub', [g.op('Mul', [y, g.constF([2], [])]), g.constF([1], [])]);
};

const softmax: LayerMap<'softmax'> = (l, [x], m) => {
  const g = m.g;
  const { c, h, w } = l.input;
  const per = c * h * w;
  const xt = l.temperature === 1 ? x : g.op('Mul', [x, g.constF([1 / l.temperature], [])]);
  const tree = l.tree ? requireLayerFile(l.tree, 'the TF.js export') : null;
  const flat = h * w === 1 ? xt : toNchw(g, xt);
  const y = tree ? groupedSoftmax(g, reshape(g, flat, [-1, per]), [], per, tree.groupOffset, tree.groupSize) : g.op('Softmax', [reshape(g, flat, [-1, l.groups, per / l.groups])]);
  return h * w === 1 ? reshape(g, y, [-1, 1, 1, c]) : toNhwc(g, reshape(g, y, [-1, c, h, w]));
};

const identity = (_l: AnyLayer, [x]: string[]): string => x;

const yolo: LayerMap<'yolo'> = (l, [x], m) => channelAct(m.g, x, yoloCoefficients(l));

const gaussianYolo: LayerMap<'Gaussian_yolo'> = (l, [x], m) => channelAct(m.g, x, gaussianCoefficients(l));

const region: LayerMap<'region'> = (l, [x], m) => {
  const g = m.g;
  const o = l.options;
  const tree = o.tree ? requireLayerFile(o.tree, 'the TF.js export') : null;
  const E = o.coords + 1 + o.classes;
  const soft = (o.softmax || tree !== null) && o.classes > 0;
  const a = channelAct(g, x, regionCoefficients(l, soft));
  if (!soft) return a;
  // NHWC: the anchors' entries are the last axis, [N, H, W, num, E]; softmax over each anchor's classes
  const { h: H, w: W } = l.input;
  const r = reshape(g, a, [-1, H, W, o.num, E]);
  const c = slice(g, r, 5, 4, o.coords + 1, E);
  const cls = tree ? groupedSoftmax(g, c, [H, W, o.num], o.classes, tree.groupOffset, tree.groupSize) : g.op('Softmax', [c]);
  return reshape(g, concat(g, [slice(g, r, 5, 4, 0, o.coords + 1), cls], 4), [-1, H, W, o.num * E]);
};

const detection: LayerMap<'detection'> = (l, [x], m) => {
  const g = m.g;
  const o = l.options;
  if (!o.softmax || o.classes === 0) return x;
  const { c, h, w } = l.input;
  const per = c * h * w;
  const cells = o.side * o.side;
  const flat = reshape(g, h * w === 1 ? x : toNchw(g, x), [-1, per]);
  const probs = g.op('Softmax', [reshape(g, slice(g, flat, 2, 1, 0, cells * o.classes), [-1, cells, o.classes])]);
  const y = concat(g, [reshape(g, probs, [-1, cells * o.classes]), slice(g, flat, 2, 1, cells * o.classes, per)], 1);
  return h * w === 1 ? reshape(g, y, [-1, 1, 1, c]) : toNhwc(g, reshape(g, y, [-1, c, h, w]));
};

const local: LayerMap<'local'> = (l, [x], m) => {
  const g = m.g;
  const { c } = l.input;
  const { h: oh, w: ow } = l.output;
  const k = l.size;
  const st = l.stride;
  const F = l.filters;
  const L = oh * ow;
  const K = c * k * k;
  // im2col in Darknet's row order (channel, then kernel row, kernel column): k² strided slices of the padded
  // input, each [N, L, c, 1], side by side -> [N, L, c, k²] -> [L, N, K]
  const xp = pad(g, x, [0, l.pad, l.pad, 0], [0, l.pad, l.pad, 0]);
  const taps: string[] = [];
  for (let kh = 0; kh < k; kh++) {
    for (let kw = 0; kw < k; kw++) {
      const tap = slice(g, slice(g, xp, 4, 1, kh, kh + st * (oh - 1) + 1, st), 4, 2, kw, kw + st * (ow - 1) + 1, st);
      taps.push(reshape(g, tap, [-1, L, c, 1]));
    }
  }
  const cols = transpose(g, reshape(g, concat(g, taps, 3), [-1, L, K]), [1, 0, 2]);
  // weights [L][F][K]: out[l, n, f] = sum_k cols[l, n, k] * W[l, f, k]; bias b[f*L + l] as NHWC [1, oh, ow, F]
  const W = g.f32('weights', [L, F, K], hostParam(l, 'weights'));
  const bias = hostParam(l, 'biases');
  const bt = new Float32Array(L * F);
  for (let j = 0; j < L; j++) for (let q = 0; q < F; q++) bt[j * F + q] = bias[q * L + j];
  const y = g.op('BatchMatMulV2', [cols, W], { adj_x: b(false), adj_y: b(true) });
  const z = reshape(g, transpose(g, y, [1, 0, 2]), [-1, oh, ow, F]);
  return activation(g, g.op('AddV2', [z, g.f32('biases', [1, oh, ow, F], bt)]), l.activation);
};

const recurrent = (l: AnyLayer): string => {
  throw refuse(l, recurrentReason('a TF.js'));
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
