/**
 * NumPy .npy files (format versions 1.0 to 3.0): read little/big-endian float32 / float64 / int32 /
 * int64 / uint8 arrays in C order, write float32 (or float64 / int32) in version 1.0.
 */
import fs from 'node:fs';
import { writeFileAtomic } from './fs.js';

export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray<T extends NpyData = NpyData> {
  shape: number[];
  /** NumPy dtype string as stored, e.g. '<f4'. */
  dtype: string;
  data: T;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const SIZES: Record<string, number> = { f4: 4, f8: 8, i4: 4, i8: 8, u1: 1 };

/** Parses .npy bytes; `name` is used in messages. */
export function parseNpy(bytes: Uint8Array, name = '<npy>'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error(`${name}: not a .npy file (bad magic)`);
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let off: number;
  if (major === 1) {
    hlen = dv.getUint16(8, true);
    off = 10;
  } else if (major === 2 || major === 3) {
    hlen = dv.getUint32(8, true);
    off = 12;
  } else throw new Error(`${name}: unsupported .npy version ${major}.${bytes[7]}`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(off, off + hlen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: malformed .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new Error(`${name}: Fortran-order arrays are not supported`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${name}: bad shape (${shapeText})`);
  const endian = descr[0];
  const kind = descr.slice(1);
  const size = SIZES[kind];
  if (!size || !'<>|='.includes(endian)) throw new Error(`${name}: unsupported dtype '${descr}' (float32/64, int32/64, uint8)`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = off + hlen;
  if (bytes.length - start !== count * size) {
    throw new Error(`${name}: ${bytes.length - start} data bytes, shape (${shape.join(', ')}) of ${descr} needs ${count * size}`);
  }
  const little = endian !== '>';
  const raw = new DataView(bytes.buffer, bytes.byteOffset + start, count * size);
  let data: NpyData;
  switch (kind) {
    case 'f4': data = new Float32Array(count); for (let i = 0; i < count; i++) data[i] = raw.getFloat32(4 * i, little); break;
    case 'f8': data = new Float64Array(count); for (let i = 0; i < count; i++) data[i] = raw.getFloat64(8 * i, little); break;
    case 'i4': data = new Int32Array(count); for (let i = 0; i < count; i++) data[i] = raw.getInt32(4 * i, little); break;
    case 'i8': data = new BigInt64Array(count); for (let i = 0; i < count; i++) data[i] = raw.getBigInt64(8 * i, little); break;
    default: data = bytes.slice(start, start + count);
  }
  return { shape, dtype: descr, data };
}

export function readNpy(file: string): NpyArray {
  return parseNpy(fs.readFileSync(file), file);
}

/** A float array from a .npy file (float32 or float64 data; float64 is rounded to float32). */
export function readNpyF32(file: string): NpyArray<Float32Array> {
  const a = readNpy(file);
  if (a.data instanceof Float32Array) return a as NpyArray<Float32Array>;
  if (a.data instanceof Float64Array) return { shape: a.shape, dtype: '<f4', data: Float32Array.from(a.data) };
  throw new Error(`${file}: expected a float array, got ${a.dtype}`);
}

/** .npy (version 1.0, little-endian, C order) bytes of an array. */
export function encodeNpy(shape: readonly number[], data: Float32Array | Float64Array | Int32Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`);
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Float64Array ? '<f8' : '<i4';
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const hb = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + hb.length + data.byteLength);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, hb.length, true);
  out.set(hb, 10);
  const dv = new DataView(out.buffer, 10 + hb.length);
  const size = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float32Array) dv.setFloat32(i * size, data[i], true);
    else if (data instanceof Float64Array) dv.setFloat64(i * size, data[i], true);
    else dv.setInt32(i * size, data[i], true);
  }
  return out;
}

/** Writes a .npy file atomically. */
export function writeNpy(file: string, shape: readonly number[], data: Float32Array | Float64Array | Int32Array): void {
  writeFileAtomic(file, encodeNpy(shape, data));
}
