/**
 * A TensorFlow GraphDef under construction, written as a TF.js GraphModel folder: `model.json` (format
 * "graph-model": `modelTopology` is the GraphDef in TensorFlow's JSON form, as tensorflowjs_converter writes
 * it; `weightsManifest` lists the Const tensors) and the Const values concatenated in node order, cut into
 * 4 MiB shards `group1-shardKofN.bin` (the converter's default). Attribute values follow TF's AttrValue JSON:
 * strings base64, int64 lists as decimal strings, `type: DT_FLOAT`.
 */

export type TfDtype = 'float32' | 'int32';

/** An AttrValue in TF's JSON form. */
export type TfAttr = { s: string } | { i: string } | { f: number } | { b: boolean } | { type: string } | { list: { i?: string[]; f?: number[] } } | { shape: { dim: { size: string }[] } } | { tensor: { dtype: string; tensorShape: { dim?: { size: string }[] } } };

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}

export const SHARD_BYTES = 4 * 1024 * 1024;

const DT: Record<TfDtype, string> = { float32: 'DT_FLOAT', int32: 'DT_INT32' };

/** A string attribute (ASCII: padding modes, data formats). */
export const s = (v: string): TfAttr => ({ s: btoa(v) });
export const i = (v: number): TfAttr => ({ i: String(v) });
export const f = (v: number): TfAttr => ({ f: v });
export const b = (v: boolean): TfAttr => ({ b: v });
export const ints = (v: readonly number[]): TfAttr => ({ list: { i: v.map((x) => String(x)) } });
export const T_FLOAT: TfAttr = { type: 'DT_FLOAT' };

const dims = (shape: readonly number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });

export class TfGraph {
  private readonly nodes: TfNode[] = [];
  private readonly weights: { name: string; shape: number[]; dtype: TfDtype; data: Float32Array | Int32Array }[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  /** Bytes of the Const tensors so far. */
  weightBytes = 0;
  /** Prefix of the node names made by `op` and `f32` (the layer being mapped: `l12/`). */
  scope = '';

  /** A fresh node name `<scope><base>` (suffixed _1, _2 ... when taken). */
  fresh(base: string): string {
    let n = `${this.scope}${base}`;
    for (let k = 1; this.names.has(n); k++) n = `${this.scope}${base}_${k}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`TF.js graph: the name ${name} is taken`);
    this.names.add(name);
    return name;
  }

  /** Adds a node (T = float unless `attrs` says otherwise); returns its name: `out` when given, else a fresh one from the op. */
  op(op: string, inputs: readonly string[], attrs: Record<string, TfAttr> = {}, out?: string): string {
    const name = out ? this.claim(out) : this.fresh(op);
    this.nodes.push({ name, op, input: [...inputs], attr: { T: T_FLOAT, ...attrs } });
    return name;
  }

  /** A Const whose value is stored in the weights (`data` copied as little-endian float32 / int32). */
  private constant(name: string, shape: readonly number[], dtype: TfDtype, data: Float32Array | Int32Array): string {
    const count = shape.reduce((p, d) => p * d, 1);
    if (data.length !== count) throw new Error(`TF.js constant ${name}: ${data.length} values for shape [${shape.join(', ')}]`);
    this.nodes.push({ name, op: 'Const', attr: { value: { tensor: { dtype: DT[dtype], tensorShape: dims(shape) } }, dtype: { type: DT[dtype] } } });
    this.weights.push({ name, shape: [...shape], dtype, data });
    this.weightBytes += data.byteLength;
    return name;
  }

  /** A float32 parameter tensor of the layer in scope. */
  f32(base: string, shape: readonly number[], data: Float32Array | readonly number[]): string {
    return this.constant(this.fresh(base), shape, 'float32', data instanceof Float32Array ? data : Float32Array.from(data));
  }

  /** A small float constant shared by every use. */
  constF(values: readonly number[], shape: readonly number[] = [values.length]): string {
    return this.shared(`f:${shape.join('x')}:${values.join(',')}`, (n) => this.constant(n, shape, 'float32', Float32Array.from(values)));
  }

  /** A small int32 constant (shapes, perms, axes, slice bounds) shared by every use. */
  constI(values: readonly number[], shape: readonly number[] = [values.length]): string {
    return this.shared(`i:${shape.join('x')}:${values.join(',')}`, (n) => this.constant(n, shape, 'int32', Int32Array.from(values)));
  }

  private shared(key: string, make: (name: string) => string): string {
    let name = this.consts.get(key);
    if (!name) {
      const saved = this.scope;
      this.scope = '';
      name = make(this.fresh(`c${this.consts.size}`));
      this.scope = saved;
      this.consts.set(key, name);
    }
    return name;
  }

  /** A float32 Placeholder; -1 for a free dimension. */
  input(name: string, shape: readonly number[]): string {
    this.nodes.push({ name: this.claim(name), op: 'Placeholder', attr: { dtype: T_FLOAT, shape: { shape: dims(shape) } } });
    return name;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * The folder's files: `model.json` (with `signature` naming the inputs and outputs, and `meta` as
   * userDefinedMetadata) and the weight shards.
   */
  files(sig: { inputs: { name: string; shape: number[] }[]; outputs: { name: string; shape: number[] }[] }, meta: { generatedBy: string; convertedBy: string; metadata: Record<string, unknown> }): Map<string, Uint8Array> {
    const total = this.weights.reduce((p, w) => p + w.data.byteLength, 0);
    const all = new Uint8Array(total);
    let o = 0;
    for (const w of this.weights) {
      all.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), o);
      o += w.data.byteLength;
    }
    const n = Math.max(1, Math.ceil(total / SHARD_BYTES));
    const paths = Array.from({ length: n }, (_, k) => `group1-shard${k + 1}of${n}.bin`);
    const entry = (t: { name: string; shape: number[] }) => [t.name, { name: `${t.name}:0`, dtype: 'DT_FLOAT', tensorShape: dims(t.shape) }] as const;
    const model = {
      format: 'graph-model',
      generatedBy: meta.generatedBy,
      convertedBy: meta.convertedBy,
      signature: { inputs: Object.fromEntries(sig.inputs.map(entry)), outputs: Object.fromEntries(sig.outputs.map(entry)) },
      userDefinedMetadata: meta.metadata,
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1982 } },
      weightsManifest: [{ paths, weights: this.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })) }],
    };
    const out = new Map<string, Uint8Array>();
    out.set('model.json', new TextEncoder().encode(JSON.stringify(model)));
    paths.forEach((p, k) => out.set(p, all.subarray(k * SHARD_BYTES, Math.min(total, (k + 1) * SHARD_BYTES))));
    return out;
  }
}
