/**
 * Darknet .weights files (parser.c load_weights_upto / save_weights_upto).
 *
 * Layout (little-endian): int32 major, int32 minor, int32 revision, then `seen` (images seen in training)
 * as uint64 when (major*10 + minor) >= 2 and major < 1000 and minor < 1000, else uint32; then the
 * parameters of every layer that has some, in cfg order (ParamSpec order of each layer):
 *   [convolutional]  biases[n], [scales[n], rolling_mean[n], rolling_variance[n] if batch_normalize],
 *                    weights[n][c/groups][size][size]; nothing for a layer with share_index
 *   [connected]      biases[out], weights[out][in], [scales, rolling_mean, rolling_variance if BN]
 *                    (weights stored transposed, [in][out], when major > 1000 or minor > 1000)
 *   [local]          biases[out_h*out_w*filters], weights[out_h*out_w][filters][c*size*size]
 *   [crnn]           three [convolutional] parts: input, self, output ('input.biases', ...)
 *   [rnn] [gru] [lstm]  [connected] parts: input, self, output; input_z, input_r, input_h, state_z,
 *                    state_r, state_h; wf, wi, wg, wo, uf, ui, ug, uo (each transposed in legacy files)
 * A layer with dontload=1 reads nothing; dontloadscales=1 skips the BN parameters (they keep their
 * initial values). Unlike Darknet (which reads what it can and keeps going), a file that is too short or
 * too long is an error naming the layer and the expected vs found sizes. Writes are atomic.
 *
 * Cut files (Darknet's `partial`: load_weights_upto + save_weights_upto, e.g. yolov4-tiny.conv.29) hold the
 * first layers only. `decodeWeightsPartial` (training) loads one that ends exactly where a layer ends and
 * leaves the layers after the cut at their seeded initialization; `decodeWeights` (inference) refuses it
 * with a message saying so. `upto` reads layers [0, upto) only (Darknet's cutoff), and `encodeWeights`
 * with `upto` writes them (the `partial` command). `transferWeights` copies every layer whose kind and
 * parameter shapes match from a network built from the weights' own cfg (another class count).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Network } from './network.js';
import type { Layer } from './layer.js';
import { Rng } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { firstNonFinite } from '../util/validate.js';

export interface WeightsHeader {
  major: number;
  minor: number;
  revision: number;
  /** Images seen during training. */
  seen: bigint;
}

/** What AlexeyAB's darknet writes today (MAJOR_VERSION 0, MINOR_VERSION 2, PATCH_VERSION 5). */
export const DEFAULT_HEADER: WeightsHeader = { major: 0, minor: 2, revision: 5, seen: 0n };

/** A .weights file that does not fit its cfg (or cannot be read); `file` names it when known. */
export class WeightsError extends Error {
  override name = 'WeightsError';
  constructor(message: string, readonly file?: string) {
    super(message);
  }
}

const seen64 = (h: { major: number; minor: number }) => h.major * 10 + h.minor >= 2 && h.major < 1000 && h.minor < 1000;
const transposed = (h: { major: number; minor: number }) => h.major > 1000 || h.minor > 1000;
/** Connected weights (Darknet load_connected_weights: stored [in][out] in legacy files). */
const connectedWeights = (l: Layer, name: string) =>
  (l.kind === 'connected' && name === 'weights') || (['rnn', 'gru', 'lstm'].includes(l.kind) && name.endsWith('.weights'));

/** The parameters a layer stores in the file, in file order (after dontload / dontloadscales). */
function fileParams(l: Layer): { name: string; count: number; shape: number[] }[] {
  if (l.common?.dontload) return [];
  const bn = new Set(['scales', 'rolling_mean', 'rolling_variance']);
  return l.params.filter((p) => !(l.common?.dontloadscales && bn.has(p.name)));
}

function layerLabel(l: Layer): string {
  return `layer ${l.index} [${l.kind}] (${l.where})`;
}

/** Bytes the parameters of `net` (of its layers [0, upto) with `upto`) take in a file with this header. */
export function weightsFileSize(net: Network, header: Pick<WeightsHeader, 'major' | 'minor'> = DEFAULT_HEADER, upto = Infinity): number {
  let n = 0;
  for (const l of net.layers) if (l.index < upto) for (const p of fileParams(l)) n += p.count;
  return 12 + (seen64(header) ? 8 : 4) + 4 * n;
}

/** "0–28", "5", or "none" for an empty range [a, b). */
function range(a: number, b: number): string {
  return b <= a ? 'none' : b - a === 1 ? `${a}` : `${a}–${b - 1}`;
}

function readFloats(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  if (os.endianness() === 'LE') {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + 4 * count));
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, 4 * count);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
  }
  return out;
}

/** [rows][cols] -> [cols][rows] */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * When a file does not fit the cfg, says so first if it is no .weights file at all: Darknet has only
 * written versions 0.1.x and 0.2.x (and legacy files with major or minor > 1000, stored transposed).
 */
function notWeights(major: number, minor: number, revision: number, bytes: Uint8Array, name: string): void {
  const head = new TextDecoder().decode(bytes.subarray(0, 4096));
  const firstLine = head.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (firstLine && /^\[(net|network)\]$/i.test(firstLine)) throw new WeightsError(`${name}: this is a .cfg file, not a .weights file`, name);
  const fmt = bytes[0] === 0x89 && bytes[1] === 0x50 ? 'a PNG image' : bytes[0] === 0xff && bytes[1] === 0xd8 ? 'a JPEG image' : bytes[0] === 0x93 && head.slice(1, 6) === 'NUMPY' ? 'a NumPy .npy file' : bytes[0] === 0x50 && bytes[1] === 0x4b ? 'a zip archive (a PyTorch .pt checkpoint?)' : null;
  if (fmt) throw new WeightsError(`${name}: this is ${fmt}, not a Darknet .weights file`, name);
  const legacy = (major > 1000 && major < 100000) || (minor > 1000 && minor < 100000);
  const plausible = major >= 0 && minor >= 0 && revision >= 0 && revision < 1_000_000 && ((major <= 9 && minor <= 99) || legacy);
  if (!plausible) throw new WeightsError(`${name}: header version ${major}.${minor}.${revision} is not a Darknet .weights version (0.1.x or 0.2.x): not a .weights file, or a corrupt one`, name);
}

/** Where reading stops: layers [0, upto) (Darknet's cutoff), and whether a file may end at a layer boundary. */
interface ReadPlan {
  upto: number;
  partial: boolean;
  /** seed of the initialization of the layers a cut file does not hold (partial) */
  seed: number;
}

/** What a load read: the header, the layers [0, layers) taken from the file, the values read. */
export interface WeightsLoad {
  header: WeightsHeader;
  /**
   * Layers [0, layers) came from the file: the index of the first layer with parameters that the file does
   * not hold (a cut file), else `upto`, else the network's layer count.
   */
  layers: number;
  /** The network's layer count (or `upto`): layers [layers, total) were not read. */
  total: number;
  /** float32 values read. */
  values: number;
  /** Layers with parameters that were not read (they keep their values, or get the seeded initialization). */
  initialised: number[];
}

function readLayers(net: Network, bytes: Uint8Array, name: string, plan: ReadPlan): WeightsLoad {
  if (bytes.length < 12) throw new WeightsError(`${name}: file too short for a .weights header (${bytes.length} bytes, need at least 16)`, name);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = dv.getInt32(0, true);
  const minor = dv.getInt32(4, true);
  const revision = dv.getInt32(8, true);
  const wide = seen64({ major, minor });
  const headerBytes = 12 + (wide ? 8 : 4);
  if (bytes.length < headerBytes) throw new WeightsError(`${name}: file too short for a .weights header (${bytes.length} bytes, need ${headerBytes} for version ${major}.${minor}.${revision})`, name);
  const seen = wide ? dv.getBigUint64(12, true) : BigInt(dv.getUint32(12, true));
  const total = Math.min(plan.upto, net.layers.length);
  const expected = weightsFileSize(net, { major, minor }, plan.upto);
  const swap = transposed({ major, minor });
  let off = headerBytes;
  let rng: Rng | null = null;
  let cut = total;
  let values = 0;
  const loaded: [Layer, Record<string, Float32Array>][] = [];
  /** the last layer read whole (for messages) */
  let lastRead = -1;
  for (const l of net.layers) {
    if (l.index >= total) break;
    if (!l.params.length) continue;
    const stored = fileParams(l);
    if (stored.length && off === bytes.length) {
      // the file ends exactly where this layer begins: a cut file (Darknet's `partial` output)
      notWeights(major, minor, revision, bytes, name);
      if (plan.partial) {
        cut = l.index;
        break;
      }
      const held = lastRead < 0 ? 'no layer' : `layers ${range(0, l.index)}`;
      throw new WeightsError(`${name}: file too short: it ends at byte ${off}, exactly where ${layerLabel(l)} begins (this cfg needs ${expected} bytes): a cut (partial) file holding ${held}, as Darknet's \`partial\` writes (e.g. yolov4-tiny.conv.29)? \`train\` accepts one (the layers after the cut start from their initialization); inference needs the whole network (else: the wrong cfg for these weights, or a truncated download)`, name);
    }
    const data: Record<string, Float32Array> = {};
    const layerStart = off;
    if (stored.length < l.params.length) {
      // dontload / dontloadscales: the rest keeps its current (or initial) values
      if (!l.data) {
        rng ??= new Rng(1);
        l.init(rng);
      }
      Object.assign(data, l.data);
    }
    for (const p of stored) {
      const need = 4 * p.count;
      if (off + need > bytes.length) {
        notWeights(major, minor, revision, bytes, name);
        const layerEnd = layerStart + 4 * stored.reduce((n, q) => n + q.count, 0);
        const why = plan.partial
          ? `it ends inside this layer, so it is no cut (partial) file either, whose end is a layer's end (here byte ${layerStart} or ${layerEnd}): a truncated file, or the wrong cfg for these weights`
          : 'wrong cfg for these weights?';
        throw new WeightsError(`${name}: file too short: ${layerLabel(l)} needs ${p.count} floats of '${p.name}' at byte ${off}, only ${bytes.length - off} bytes are left (the file has ${bytes.length} bytes, this cfg needs ${expected}; ${why})`, name);
      }
      let a = readFloats(bytes, off, p.count);
      // Darknet loads NaN and infinities silently; a network with them detects nothing, without a word
      const bad = firstNonFinite(a);
      if (bad >= 0) {
        let n = 0;
        for (let i = bad; i < a.length; i++) if (!Number.isFinite(a[i])) n++;
        throw new WeightsError(`${name}: ${layerLabel(l)} '${p.name}' has ${n} of ${p.count} values that are NaN or infinite (the first, ${a[bad]}, at index ${bad}, byte ${off + 4 * bad}): the weights are corrupt or come from a diverged training run`, name);
      }
      if (swap && connectedWeights(l, p.name)) a = transpose(a, p.count / p.shape[0], p.shape[0]);
      data[p.name] = a;
      off += need;
      values += p.count;
    }
    loaded.push([l, data]);
    lastRead = l.index;
  }
  // with a cutoff (Darknet's load_weights_upto), whatever follows layer upto - 1 is not read
  if (cut === total && plan.upto >= net.layers.length && off !== bytes.length) {
    notWeights(major, minor, revision, bytes, name);
    throw new WeightsError(`${name}: file too long: ${bytes.length - off} bytes (${(bytes.length - off) / 4} floats) are left after the last layer with parameters (${net.layers.filter((l) => l.params.length).pop()?.index ?? '-'}); this cfg needs exactly ${expected} bytes, the file has ${bytes.length} (wrong cfg for these weights?)`, name);
  }
  const initialised = net.layers.filter((l) => l.index >= cut && l.params.length).map((l) => l.index);
  if (plan.partial && initialised.some((i) => !net.layers[i].data)) {
    // the layers after the cut without values: the seeded initialization, as initWeights(seed) gives them
    // (the loaded layers are replaced below, layers that had values get them back)
    const kept = initialised.map((i) => [net.layers[i], net.layers[i].data] as const).filter(([, d]) => d);
    net.initWeights(plan.seed);
    for (const [l, d] of kept) l.data = d;
  }
  for (const [l, data] of loaded) l.data = data;
  net.freshInit = false;
  net.release();
  return { header: { major, minor, revision, seen }, layers: cut, total, values, initialised };
}

/**
 * Reads .weights bytes into the network's host parameters (then call prepare() to upload). `name` is used
 * in messages. Returns the header. The file must hold every layer (a cut file is refused, saying that
 * `train` accepts one), or with `upto` the layers [0, upto) (what follows them is not read, as Darknet's
 * load_weights_upto). A failed load leaves the network untouched.
 */
export function decodeWeights(net: Network, bytes: Uint8Array, name = '<weights>', opts: { upto?: number } = {}): WeightsHeader {
  return readLayers(net, bytes, name, { upto: opts.upto ?? Infinity, partial: false, seed: 1 }).header;
}

/**
 * Reads .weights bytes that may be cut (Darknet's `partial` output, e.g. yolov4-tiny.conv.29): a file that
 * ends exactly where a layer ends loads the layers it holds, in order; the layers after the cut keep their
 * values, or (when they have none) get the seeded initialization `initWeights(seed)` gives them (default
 * seed 1). A file that ends inside a layer is an error naming that layer. For training (fine-tuning from
 * pretrained weights); inference should use decodeWeights, which refuses a cut file.
 */
export function decodeWeightsPartial(net: Network, bytes: Uint8Array, name = '<weights>', opts: { upto?: number; seed?: number } = {}): WeightsLoad {
  return readLayers(net, bytes, name, { upto: opts.upto ?? Infinity, partial: true, seed: opts.seed ?? 1 });
}

/** One line saying what a (partial) load did: "loaded layers 0–28 from X (N values); layers 29–37 initialised". */
export function describeWeightsLoad(r: WeightsLoad, name: string, net: Network, opts: { seed?: number; rest?: boolean } = {}): string {
  const n = net.layers.length;
  const from = r.layers >= n ? `loaded all ${n} layers from ${name}` : r.layers === 0 ? `loaded no layer from ${name}` : `loaded layers ${range(0, r.layers)} from ${name}`;
  const rest = r.layers < n && opts.rest !== false ? `; layers ${range(r.layers, n)} ${r.initialised.length ? `initialised${opts.seed !== undefined ? ` (seed ${opts.seed})` : ''}` : 'have no parameters'}` : '';
  return `${from} (${r.values} values, header ${r.header.major}.${r.header.minor}.${r.header.revision}, seen ${r.header.seen})${rest}`;
}

function readFile(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new WeightsError(`cannot read weights ${file}: ${(e as Error).message}`, file);
  }
}

/** Reads a .weights file into the network (see decodeWeights). */
export function loadWeights(net: Network, file: string, opts: { upto?: number } = {}): WeightsHeader {
  return decodeWeights(net, readFile(file), file, opts);
}

/** Reads a .weights file that may be cut into the network (see decodeWeightsPartial). */
export function loadWeightsPartial(net: Network, file: string, opts: { upto?: number; seed?: number } = {}): WeightsLoad {
  return decodeWeightsPartial(net, readFile(file), file, opts);
}

/**
 * The network's host parameters as .weights bytes; with `upto`, those of layers [0, upto) only (Darknet's
 * save_weights_upto: what its `partial` command writes).
 */
export function encodeWeights(net: Network, header: Partial<WeightsHeader> = {}, opts: { upto?: number } = {}): Uint8Array {
  const h = { ...DEFAULT_HEADER, ...header };
  const upto = opts.upto ?? Infinity;
  const size = weightsFileSize(net, h, upto);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, h.major, true);
  dv.setInt32(4, h.minor, true);
  dv.setInt32(8, h.revision, true);
  let off: number;
  if (seen64(h)) {
    dv.setBigUint64(12, BigInt.asUintN(64, h.seen), true);
    off = 20;
  } else {
    dv.setUint32(12, Number(BigInt.asUintN(32, h.seen)), true);
    off = 16;
  }
  const swap = transposed(h);
  for (const l of net.layers) {
    if (l.index >= upto) break;
    for (const p of fileParams(l)) {
      const a = l.data?.[p.name];
      if (!a) throw new WeightsError(`cannot save: ${layerLabel(l)} has no values for '${p.name}' (load weights or initialize first)`);
      if (a.length !== p.count) throw new WeightsError(`cannot save: ${layerLabel(l)} '${p.name}' has ${a.length} values, expected ${p.count}`);
      const v = swap && connectedWeights(l, p.name) ? transpose(a, p.shape[0], p.count / p.shape[0]) : a;
      if (os.endianness() === 'LE') out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), off);
      else for (let i = 0; i < v.length; i++) dv.setFloat32(off + 4 * i, v[i], true);
      off += 4 * p.count;
    }
  }
  return out;
}

/** Writes the network's host parameters (pull them from the GPU first after training) atomically. */
export function saveWeights(net: Network, file: string, header: Partial<WeightsHeader> = {}): void {
  writeFileAtomic(file, encodeWeights(net, header));
}

// ------------------------------------------------------------------------------------------ transfer

/** What transferWeights did, per layer with parameters of the target network. */
export interface TransferReport {
  /** Layers with parameters in the target. */
  total: number;
  /** Target layers whose values came from the source (same index, kind and parameter shapes). */
  transferred: number[];
  /** Target layers that kept their (initial) values, and why they did not match. */
  reinitialised: { index: number; why: string }[];
  /** float32 values copied. */
  values: number;
}

const dims = (shape: readonly number[]) => shape.join('x');

/** Why source layer `s` cannot give its values to target layer `d` (null: it can). */
function transferMismatch(d: Layer, s: Layer | undefined, srcLayers: number): string | null {
  if (!s) return 'not in the source cfg';
  if (s.kind !== d.kind) return `[${s.kind}] in the source`;
  if (s.index >= srcLayers || !s.data) return 'not in the weights file';
  const sn = s.params.map((p) => p.name);
  const dn = d.params.map((p) => p.name);
  if (sn.join() !== dn.join()) {
    const bn = (names: string[]) => (names.includes('scales') ? 1 : 0);
    return bn(sn) !== bn(dn) ? `batch_normalize ${bn(sn)} → ${bn(dn)}` : `parameters ${sn.join(', ')} → ${dn.join(', ')}`;
  }
  for (let i = 0; i < d.params.length; i++) {
    const a = s.params[i];
    const b = d.params[i];
    if (dims(a.shape) === dims(b.shape)) continue;
    // the output count shows first in the biases: filters (conv, local), output (connected)
    if (b.name === 'biases' && (d.kind === 'convolutional' || d.kind === 'connected')) return `${d.kind === 'connected' ? 'output' : 'filters'} ${a.count} → ${b.count}`;
    return `${b.name} ${dims(a.shape)} → ${dims(b.shape)}`;
  }
  return null;
}

/**
 * Transfer by shape: copies into `dst` the values of every `src` layer at the same index whose kind and every
 * parameter shape match (and that came from the file: `srcLayers`, the WeightsLoad's `layers`, default all).
 * The other layers of `dst` keep their values; a network without values gets `initWeights(seed)` first
 * (default seed 1). Darknet has no such load: given weights of another cfg (another class count) it reads
 * the bytes in order, so every layer from the first changed one on gets misaligned values.
 * Throws a WeightsError when no layer matches (the source cfg is not the weights' cfg).
 */
export function transferWeights(dst: Network, src: Network, opts: { seed?: number; srcLayers?: number; name?: string } = {}): TransferReport {
  const srcLayers = opts.srcLayers ?? src.layers.length;
  const report: TransferReport = { total: 0, transferred: [], reinitialised: [], values: 0 };
  const copies: [Layer, Record<string, Float32Array>][] = [];
  for (const d of dst.layers) {
    if (!d.params.length) continue;
    report.total++;
    const s = src.layers[d.index];
    const why = transferMismatch(d, s, srcLayers);
    if (why) {
      report.reinitialised.push({ index: d.index, why });
      continue;
    }
    const data: Record<string, Float32Array> = {};
    for (const p of d.params) {
      data[p.name] = Float32Array.from(s.data![p.name]);
      report.values += p.count;
    }
    copies.push([d, data]);
    report.transferred.push(d.index);
  }
  if (report.total > 0 && !report.transferred.length) {
    const name = opts.name ?? '<weights>';
    throw new WeightsError(`${name}: transfer from ${src.file} to ${dst.file}: no layer matches (${report.reinitialised.slice(0, 3).map((r) => `layer ${r.index}: ${r.why}`).join('; ')}${report.reinitialised.length > 3 ? '; ...' : ''}): is ${src.file} the cfg these weights were trained with?`, opts.name);
  }
  if (!dst.hasWeights) dst.initWeights(opts.seed ?? 1);
  for (const [l, data] of copies) l.data = data;
  dst.freshInit = false;
  dst.release();
  return report;
}

/**
 * Loads .weights bytes made for `src`'s cfg (cut files too) into `src`, then transfers by shape into `dst`
 * (transferWeights). Returns both reports.
 */
export function transferFromWeights(dst: Network, src: Network, bytes: Uint8Array, name = '<weights>', opts: { seed?: number } = {}): { load: WeightsLoad; transfer: TransferReport } {
  const load = decodeWeightsPartial(src, bytes, name, { seed: opts.seed });
  const transfer = transferWeights(dst, src, { seed: opts.seed, srcLayers: load.layers, name });
  return { load, transfer };
}

/** One line: "transferred 19/21 layers with parameters to X (N values); re-initialised 30, 37 (filters 255 → 18)". */
export function describeTransfer(r: TransferReport, into: string, seed?: number): string {
  const groups = new Map<string, number[]>();
  for (const x of r.reinitialised) groups.set(x.why, [...(groups.get(x.why) ?? []), x.index]);
  const re = [...groups].map(([why, idx]) => `${idx.join(', ')} (${why})`).join('; ');
  return `transferred ${r.transferred.length}/${r.total} layers with parameters to ${into} (${r.values} values)${re ? `; re-initialised ${re}${seed !== undefined ? `, seed ${seed}` : ''}` : ''}`;
}
