/**
 * An ONNX graph under construction and its serialization: nodes, initializers (constants), inputs and
 * outputs as plain objects shaped like ONNX's protobuf messages (src/export/onnx/onnx.proto, field names as
 * there), encoded with protobufjs from the schema's JSON descriptor (proto.ts). No hand-written protobuf.
 */
import protobuf from 'protobufjs/light.js';
import { ONNX_PROTO_JSON } from './proto.js';

/** TensorProto.DataType values used here. */
export const FLOAT = 1;
export const INT64 = 7;

/** An attribute value, tagged with its ONNX type (AttributeProto.AttributeType). */
export type Attr = { f: number } | { i: number } | { s: string } | { ints: readonly number[] } | { floats: readonly number[] };

export const int = (i: number): Attr => ({ i });
export const float = (f: number): Attr => ({ f });
export const str = (s: string): Attr => ({ s });
export const ints = (v: readonly number[]): Attr => ({ ints: v });

/** A dimension: a size, or a symbolic name (the batch 'N' with --dynamic-batch). */
export type Dim = number | string;

interface AttributeMsg {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  ints?: number[];
  floats?: number[];
}

interface NodeMsg {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: AttributeMsg[];
}

interface TensorMsg {
  dims: number[];
  data_type: number;
  name: string;
  raw_data: Uint8Array;
}

interface ValueInfoMsg {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

const enc = new TextEncoder();

function attribute(name: string, a: Attr): AttributeMsg {
  // AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7
  if ('f' in a) return { name, type: 1, f: a.f };
  if ('i' in a) {
    if (!Number.isInteger(a.i)) throw new Error(`ONNX attribute ${name}: ${a.i} is not an integer`);
    return { name, type: 2, i: a.i };
  }
  if ('s' in a) return { name, type: 3, s: enc.encode(a.s) };
  if ('floats' in a) return { name, type: 6, floats: [...a.floats] };
  if (a.ints.some((v) => !Number.isInteger(v))) throw new Error(`ONNX attribute ${name}: [${a.ints.join(', ')}] are not all integers`);
  return { name, type: 7, ints: [...a.ints] };
}

function valueInfo(name: string, dims: readonly Dim[]): ValueInfoMsg {
  const dim = dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

/**
 * ONNX's IR version of each opset (onnx/helper.py VERSION_TABLE): the model declares the IR version of the
 * ONNX release that introduced its opset, so a checker or runtime of that release accepts it.
 */
export const IR_VERSION: Readonly<Record<number, number>> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 12, 25: 13 };
export const MIN_OPSET = 13;
export const MAX_OPSET = 25;

export class OnnxGraph {
  private readonly nodes: NodeMsg[] = [];
  private readonly inits: TensorMsg[] = [];
  private readonly inputs: ValueInfoMsg[] = [];
  private readonly outputs: ValueInfoMsg[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  /** Bytes of the initializers so far. */
  weightBytes = 0;
  /** Prefix of the names made by `op` and `f32` (the layer being mapped: `l12.`). */
  scope = '';

  constructor(readonly opset: number) {
    if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new Error(`ONNX opset ${opset} is not supported (${MIN_OPSET}..${MAX_OPSET})`);
  }

  /** A fresh tensor name `<scope><base>` (suffixed _1, _2 ... when taken). */
  fresh(base: string): string {
    let n = `${this.scope}${base}`;
    for (let k = 1; this.names.has(n); k++) n = `${this.scope}${base}_${k}`;
    this.names.add(n);
    return n;
  }

  /** Adds a node; returns its (first) output name: `out` when given, else a fresh name from the op type. */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const o = out ?? this.fresh(type.toLowerCase());
    if (out) {
      if (this.names.has(out)) throw new Error(`ONNX graph: the name ${out} is taken`);
      this.names.add(out);
    }
    this.nodes.push({ input: [...inputs], output: [o], name: o, op_type: type, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return o;
  }

  /** A float32 initializer (the bytes are copied as they are: little-endian, as ONNX's raw_data). */
  f32(base: string, dims: readonly number[], data: Float32Array | readonly number[]): string {
    const a = data instanceof Float32Array ? data : Float32Array.from(data);
    const count = dims.reduce((p, d) => p * d, 1);
    if (a.length !== count) throw new Error(`ONNX initializer ${base}: ${a.length} values for dims [${dims.join(', ')}]`);
    const name = this.fresh(base);
    this.inits.push({ dims: [...dims], data_type: FLOAT, name, raw_data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
    this.weightBytes += a.byteLength;
    return name;
  }

  /** A small float constant, shared by every use (name `c.f32.<values>`). */
  constF(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.shared(`f:${dims.join('x')}:${values.join(',')}`, () => {
      const a = Float32Array.from(values);
      return { dims: [...dims], data_type: FLOAT, raw_data: new Uint8Array(a.buffer) };
    });
  }

  /** A small int64 constant (shapes, axes, slice bounds), shared by every use. */
  constI(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.shared(`i:${dims.join('x')}:${values.join(',')}`, () => {
      const a = BigInt64Array.from(values.map((v) => BigInt(v)));
      return { dims: [...dims], data_type: INT64, raw_data: new Uint8Array(a.buffer) };
    });
  }

  private shared(key: string, make: () => Omit<TensorMsg, 'name'>): string {
    let name = this.consts.get(key);
    if (!name) {
      const saved = this.scope;
      this.scope = '';
      name = this.fresh(`c${this.consts.size}`);
      this.scope = saved;
      this.inits.push({ ...make(), name });
      this.consts.set(key, name);
    }
    return name;
  }

  input(name: string, dims: readonly Dim[]): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: the name ${name} is taken`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  /** Declares `tensor` a graph output named `name` (an Identity node when the names differ). */
  output(tensor: string, name: string, dims: readonly Dim[]): void {
    if (tensor !== name) this.op('Identity', [tensor], {}, name);
    this.outputs.push(valueInfo(name, dims));
  }

  /** The serialized ModelProto. */
  encode(meta: { producer: string; version: string; doc: string; props?: Record<string, string> }): Uint8Array {
    const ModelProto = onnxRoot().lookupType('onnx.ModelProto');
    const model = {
      ir_version: IR_VERSION[this.opset],
      opset_import: [{ domain: '', version: this.opset }],
      producer_name: meta.producer,
      producer_version: meta.version,
      doc_string: meta.doc,
      graph: { node: this.nodes, name: 'yolo-wgsl', initializer: this.inits, input: this.inputs, output: this.outputs },
      metadata_props: Object.entries(meta.props ?? {}).map(([key, value]) => ({ key, value })),
    };
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }

  /** Node count (for reports). */
  get nodeCount(): number {
    return this.nodes.length;
  }
}

let root: protobuf.Root | null = null;

/** ONNX's schema, loaded once from its JSON descriptor. */
export function onnxRoot(): protobuf.Root {
  root ??= protobuf.Root.fromJSON(ONNX_PROTO_JSON as protobuf.INamespace);
  return root;
}

/** Decodes a ModelProto (for tests and tools): a plain object, field names as in onnx.proto, int64 as numbers. */
export function decodeOnnx(bytes: Uint8Array): Record<string, unknown> {
  const ModelProto = onnxRoot().lookupType('onnx.ModelProto');
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false }) as Record<string, unknown>;
}
