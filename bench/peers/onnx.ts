/**
 * An ONNX model of a Darknet network, written with a small protobuf encoder (no protobuf package): the
 * inference graph (NCHW, opset 13) with the BN-folded weights of the engine's own layers (the same
 * foldBn the engine uploads), so ONNX Runtime runs exactly the network our forward runs.
 *
 * Supported layers: [convolutional] (groups, dilation, leaky / linear / logistic / relu / mish / swish),
 * [maxpool] (Darknet's padding: floor(padding/2) before, the rest after, as our kernel), [route] (with
 * groups / group_id), [upsample] (positive stride, scale), [shortcut] (one source, no weights, linear), and
 * [yolo] (logistic on x, y, objectness and classes, scale_x_y). Anything else throws UnsupportedLayerError.
 * Outputs: the [yolo] layers' outputs (Darknet's l.output), named `out<layer index>`, in cfg order.
 */
import type { Network } from '../../src/darknet/network.js';
import type { LayerOf } from '../../src/darknet/registry.js';
import { foldBn } from '../../src/layers/common.js';

export class UnsupportedLayerError extends Error {
  override name = 'UnsupportedLayerError';
}

// ------------------------------------------------------------------------------------ protobuf writer

const enc = new TextEncoder();

/** A protobuf message under construction: a list of byte chunks. */
class Msg {
  readonly chunks: Uint8Array[] = [];
  size = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private varintBytes(v: number | bigint): Uint8Array {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x) b |= 0x80;
      out.push(b);
    } while (x);
    return Uint8Array.from(out);
  }

  private key(field: number, wire: number): void {
    this.push(this.varintBytes((field << 3) | wire));
  }

  /** int32 / int64 / enum (negative values as 10-byte two's complement, as protobuf does). */
  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.push(this.varintBytes(v));
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.push(this.varintBytes(b.length));
    this.push(b);
    return this;
  }

  str(field: number, s: string): this {
    return this.bytes(field, enc.encode(s));
  }

  msg(field: number, m: Msg): this {
    this.key(field, 2);
    this.push(this.varintBytes(m.size));
    for (const c of m.chunks) this.push(c);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// ------------------------------------------------------------------------------------ ONNX messages

const FLOAT = 1;
const INT64 = 7;
// AttributeProto.AttributeType
const A_FLOAT = 1;
const A_INT = 2;
const A_STRING = 3;
const A_INTS = 7;

type Attr = { name: string } & ({ f: number } | { i: number } | { s: string } | { ints: number[] });

function attribute(a: Attr): Msg {
  const m = new Msg().str(1, a.name);
  if ('f' in a) m.float(2, a.f).int(20, A_FLOAT);
  else if ('i' in a) m.int(3, a.i).int(20, A_INT);
  else if ('s' in a) m.bytes(4, enc.encode(a.s)).int(20, A_STRING);
  else {
    for (const v of a.ints) m.int(8, v);
    m.int(20, A_INTS);
  }
  return m;
}

function tensorProto(name: string, dims: number[], data: Float32Array | BigInt64Array): Msg {
  const m = new Msg();
  for (const d of dims) m.int(1, d);
  m.int(2, data instanceof Float32Array ? FLOAT : INT64);
  m.str(8, name);
  m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return m;
}

function valueInfo(name: string, dims: (number | string)[]): Msg {
  const shape = new Msg();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Msg().int(1, d) : new Msg().str(2, d));
  const tensorType = new Msg().int(1, FLOAT).msg(2, shape);
  return new Msg().str(1, name).msg(2, new Msg().msg(1, tensorType));
}

class Graph {
  readonly nodes: Msg[] = [];
  readonly inits: Msg[] = [];
  private n = 0;

  node(op: string, inputs: string[], attrs: Attr[] = [], name?: string): string {
    const out = name ?? `t${this.n++}`;
    const m = new Msg();
    for (const i of inputs) m.str(1, i);
    m.str(2, out).str(3, `${op}_${out}`).str(4, op);
    for (const a of attrs) m.msg(5, attribute(a));
    this.nodes.push(m);
    return out;
  }

  init(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    this.inits.push(tensorProto(name, dims, data));
    return name;
  }
}

// ------------------------------------------------------------------------------------ the network

/** Host data of a conv layer for inference: BN-folded weights (OIHW) and bias. */
export function foldedConv(l: LayerOf<'convolutional'>): { w: Float32Array; b: Float32Array } {
  const d = (l.share ?? l).data;
  if (!d) throw new Error(`layer ${l.index}: no parameters (load weights or initWeights first)`);
  if (!l.batchNormalize) return { w: d.weights, b: d.biases };
  return foldBn(d.weights, l.filters, d.biases, d.scales, d.rolling_mean, d.rolling_variance);
}

/** Darknet maxpool padding as explicit (before, after) per axis: floor(padding/2) before, the rest to reach the output size. */
export function maxpoolPads(inSize: number, outSize: number, size: number, stride: number, padding: number): [number, number] {
  const before = Math.floor(padding / 2);
  const after = Math.max(0, (outSize - 1) * stride + size - inSize - before);
  return [before, after];
}

/** The [yolo] head activation as three per-channel vectors: out = x*raw + sigmoid(x)*act + bias. */
export function yoloChannelMasks(l: LayerOf<'yolo'>): { raw: Float32Array; act: Float32Array; bias: Float32Array; anyBias: boolean } {
  const o = l.options;
  if (o.newCoords) throw new UnsupportedLayerError(`layer ${l.index} [yolo]: new_coords=1 is not supported by the peer models`);
  const E = o.classes + 5;
  const C = E * o.mask.length;
  const raw = new Float32Array(C);
  const act = new Float32Array(C);
  const bias = new Float32Array(C);
  let anyBias = false;
  for (let c = 0; c < C; c++) {
    const k = c % E;
    if (k === 2 || k === 3) raw[c] = 1;
    else if (k < 2) {
      act[c] = o.scaleXY;
      bias[c] = -0.5 * (o.scaleXY - 1);
      if (bias[c] !== 0) anyBias = true;
    } else act[c] = 1;
  }
  return { raw, act, bias, anyBias };
}

export interface OnnxModel {
  bytes: Uint8Array;
  input: string;
  outputs: { name: string; layer: number; shape: number[] }[];
}

/**
 * The ONNX model (opset 13) of a network at its built input size, batch dimension symbolic ('N').
 * Throws UnsupportedLayerError for layers it cannot express.
 */
export function buildOnnxModel(net: Network): OnnxModel {
  const g = new Graph();
  const I = net.input;
  const names: string[] = [];
  const src = (j: number) => (j < 0 ? 'input' : names[j]);
  const activation = (x: string, act: string, where: string): string => {
    switch (act) {
      case 'linear': return x;
      case 'leaky': return g.node('LeakyRelu', [x], [{ name: 'alpha', f: 0.1 }]);
      case 'logistic': return g.node('Sigmoid', [x]);
      case 'relu': return g.node('Relu', [x]);
      case 'swish': return g.node('Mul', [x, g.node('Sigmoid', [x])]);
      case 'mish': return g.node('Mul', [x, g.node('Tanh', [g.node('Softplus', [x])])]);
      default: throw new UnsupportedLayerError(`${where}: activation ${act}`);
    }
  };
  const outputs: OnnxModel['outputs'] = [];
  for (const l of net.layers) {
    const where = `layer ${l.index} [${l.kind}]`;
    const x = src(l.sources[0]);
    let y: string;
    if (l.kind === 'convolutional') {
      const c = l;
      const { w, b } = foldedConv(l);
      const W = g.init(`w${l.index}`, [c.filters, l.input.c / c.groups, c.size, c.size], w);
      const B = g.init(`b${l.index}`, [c.filters], b);
      const p = c.padding * c.dilation;
      const conv = g.node('Conv', [x, W, B], [
        { name: 'kernel_shape', ints: [c.size, c.size] }, { name: 'strides', ints: [c.strideY, c.strideX] },
        { name: 'pads', ints: [p, p, p, p] }, { name: 'dilations', ints: [c.dilation, c.dilation] }, { name: 'group', i: c.groups },
      ]);
      y = activation(conv, c.activation, where);
    } else if (l.kind === 'maxpool') {
      const m = l;
      const [pt, pb] = maxpoolPads(l.input.h, l.output.h, m.size, m.strideY, m.padding);
      const [pl, pr] = maxpoolPads(l.input.w, l.output.w, m.size, m.strideX, m.padding);
      y = g.node('MaxPool', [x], [{ name: 'kernel_shape', ints: [m.size, m.size] }, { name: 'strides', ints: [m.strideY, m.strideX] }, { name: 'pads', ints: [pt, pl, pb, pr] }]);
    } else if (l.kind === 'route') {
      const r = l;
      const parts = l.sources.map((j) => {
        const t = src(j);
        if (r.groups === 1) return t;
        const c = (j < 0 ? I.c : net.layers[j].output.c) / r.groups;
        const starts = g.init(`rs${l.index}_${j}`, [1], BigInt64Array.from([BigInt(r.groupId * c)]));
        const ends = g.init(`re${l.index}_${j}`, [1], BigInt64Array.from([BigInt((r.groupId + 1) * c)]));
        const axes = g.init(`ra${l.index}_${j}`, [1], BigInt64Array.from([1n]));
        return g.node('Slice', [t, starts, ends, axes]);
      });
      y = parts.length === 1 ? g.node('Identity', parts) : g.node('Concat', parts, [{ name: 'axis', i: 1 }]);
    } else if (l.kind === 'upsample') {
      const u = l;
      if (u.stride < 0) throw new UnsupportedLayerError(`${where}: downsampling (negative stride)`);
      const scales = g.init(`us${l.index}`, [4], Float32Array.from([1, 1, u.stride, u.stride]));
      y = g.node('Resize', [x, '', scales], [
        { name: 'mode', s: 'nearest' }, { name: 'coordinate_transformation_mode', s: 'asymmetric' }, { name: 'nearest_mode', s: 'floor' },
      ]);
      if (u.scale !== 1) y = g.node('Mul', [y, g.init(`usc${l.index}`, [], Float32Array.from([u.scale]))]);
    } else if (l.kind === 'shortcut') {
      const s = l;
      if (l.sources.length !== 2 || l.params.length) throw new UnsupportedLayerError(`${where}: only a plain two-input shortcut is supported`);
      y = activation(g.node('Add', [src(l.sources[0]), src(l.sources[1])]), s.activation ?? 'linear', where);
    } else if (l.kind === 'yolo') {
      const m = yoloChannelMasks(l);
      const C = m.raw.length;
      const raw = g.init(`yr${l.index}`, [1, C, 1, 1], m.raw);
      const act = g.init(`ya${l.index}`, [1, C, 1, 1], m.act);
      y = g.node('Add', [g.node('Mul', [x, raw]), g.node('Mul', [g.node('Sigmoid', [x]), act])]);
      if (m.anyBias) y = g.node('Add', [y, g.init(`yb${l.index}`, [1, C, 1, 1], m.bias)]);
      y = g.node('Identity', [y], [], `out${l.index}`);
      outputs.push({ name: y, layer: l.index, shape: [l.output.c, l.output.h, l.output.w] });
    } else {
      throw new UnsupportedLayerError(`${where} is not supported by the peer models`);
    }
    names.push(y);
  }
  if (!outputs.length) throw new UnsupportedLayerError('the network has no [yolo] heads');
  const graph = new Msg();
  for (const n of g.nodes) graph.msg(1, n);
  graph.str(2, 'yolo-wgsl');
  for (const t of g.inits) graph.msg(5, t);
  graph.msg(11, valueInfo('input', ['N', I.c, I.h, I.w]));
  for (const o of outputs) graph.msg(12, valueInfo(o.name, ['N', ...o.shape]));
  const model = new Msg()
    .int(1, 8) // ir_version 8
    .str(2, 'yolo-wgsl bench')
    .msg(7, graph)
    .msg(8, new Msg().str(1, '').int(2, 13));
  return { bytes: model.finish(), input: 'input', outputs };
}
