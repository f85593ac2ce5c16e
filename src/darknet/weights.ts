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
 * A layer with dontload=1 reads nothing; dontloadscales=1 skips the BN parameters (they keep their
 * initial values). Unlike Darknet (which reads what it can and keeps going), a file that is too short or
 * too long is an error naming the layer and the expected vs found sizes. Writes are atomic.
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

/** The parameters a layer stores in the file, in file order (after dontload / dontloadscales). */
function fileParams(l: Layer): { name: string; count: number; shape: number[] }[] {
  if (l.common?.dontload) return [];
  const bn = new Set(['scales', 'rolling_mean', 'rolling_variance']);
  return l.params.filter((p) => !(l.common?.dontloadscales && bn.has(p.name)));
}

function layerLabel(l: Layer): string {
  return `layer ${l.index} [${l.kind}] (${l.where})`;
}

/** Bytes the parameters of `net` take in a file with this header. */
export function weightsFileSize(net: Network, header: Pick<WeightsHeader, 'major' | 'minor'> = DEFAULT_HEADER): number {
  let n = 0;
  for (const l of net.layers) for (const p of fileParams(l)) n += p.count;
  return 12 + (seen64(header) ? 8 : 4) + 4 * n;
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

/**
 * Reads .weights bytes into the network's host parameters (then call prepare() to upload). `name` is used
 * in messages. Returns the header.
 */
export function decodeWeights(net: Network, bytes: Uint8Array, name = '<weights>'): WeightsHeader {
  if (bytes.length < 12) throw new WeightsError(`${name}: file too short for a .weights header (${bytes.length} bytes, need at least 16)`, name);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = dv.getInt32(0, true);
  const minor = dv.getInt32(4, true);
  const revision = dv.getInt32(8, true);
  const wide = seen64({ major, minor });
  const headerBytes = 12 + (wide ? 8 : 4);
  if (bytes.length < headerBytes) throw new WeightsError(`${name}: file too short for a .weights header (${bytes.length} bytes, need ${headerBytes} for version ${major}.${minor}.${revision})`, name);
  const seen = wide ? dv.getBigUint64(12, true) : BigInt(dv.getUint32(12, true));
  const expected = weightsFileSize(net, { major, minor });
  const swap = transposed({ major, minor });
  let off = headerBytes;
  let rng: Rng | null = null;
  const loaded: [Layer, Record<string, Float32Array>][] = [];
  for (const l of net.layers) {
    if (!l.params.length) continue;
    const stored = fileParams(l);
    const data: Record<string, Float32Array> = {};
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
        throw new WeightsError(`${name}: file too short: ${layerLabel(l)} needs ${p.count} floats of '${p.name}' at byte ${off}, only ${bytes.length - off} bytes are left (the file has ${bytes.length} bytes, this cfg needs ${expected}; wrong cfg for these weights?)`, name);
      }
      let a = readFloats(bytes, off, p.count);
      // Darknet loads NaN and infinities silently; a network with them detects nothing, without a word
      const bad = firstNonFinite(a);
      if (bad >= 0) {
        let n = 0;
        for (let i = bad; i < a.length; i++) if (!Number.isFinite(a[i])) n++;
        throw new WeightsError(`${name}: ${layerLabel(l)} '${p.name}' has ${n} of ${p.count} values that are NaN or infinite (the first, ${a[bad]}, at index ${bad}, byte ${off + 4 * bad}): the weights are corrupt or come from a diverged training run`, name);
      }
      if (swap && l.kind === 'connected' && p.name === 'weights') a = transpose(a, p.count / p.shape[0], p.shape[0]);
      data[p.name] = a;
      off += need;
    }
    loaded.push([l, data]);
  }
  if (off !== bytes.length) {
    notWeights(major, minor, revision, bytes, name);
    throw new WeightsError(`${name}: file too long: ${bytes.length - off} bytes (${(bytes.length - off) / 4} floats) are left after the last layer with parameters (${net.layers.filter((l) => l.params.length).pop()?.index ?? '-'}); this cfg needs exactly ${expected} bytes, the file has ${bytes.length} (wrong cfg for these weights?)`, name);
  }
  for (const [l, data] of loaded) l.data = data;
  net.freshInit = false;
  net.release();
  return { major, minor, revision, seen };
}

/** Reads a .weights file into the network (see decodeWeights). */
export function loadWeights(net: Network, file: string): WeightsHeader {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new WeightsError(`cannot read weights ${file}: ${(e as Error).message}`, file);
  }
  return decodeWeights(net, bytes, file);
}

/** The network's host parameters as .weights bytes. */
export function encodeWeights(net: Network, header: Partial<WeightsHeader> = {}): Uint8Array {
  const h = { ...DEFAULT_HEADER, ...header };
  const size = weightsFileSize(net, h);
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
    for (const p of fileParams(l)) {
      const a = l.data?.[p.name];
      if (!a) throw new WeightsError(`cannot save: ${layerLabel(l)} has no values for '${p.name}' (load weights or initialize first)`);
      if (a.length !== p.count) throw new WeightsError(`cannot save: ${layerLabel(l)} '${p.name}' has ${a.length} values, expected ${p.count}`);
      const v = swap && l.kind === 'connected' && p.name === 'weights' ? transpose(a, p.shape[0], p.count / p.shape[0]) : a;
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
