/**
 * A minimal NumPy .npy reader for the goldens (little-endian float32/float64/int32, C order, format 1.0-3.0).
 * Local to these tests until src/util/npy.ts exists; then this file can re-export that.
 */
import fs from 'node:fs';

export interface Npy {
  shape: number[];
  data: Float32Array | Float64Array | Int32Array;
}

export function readNpy(file: string): Npy {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x934e554d || buf.toString('latin1', 4, 6) !== 'PY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeTxt = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeTxt === undefined) throw new Error(`${file}: bad .npy header ${header}`);
  if (fortran) throw new Error(`${file}: Fortran order is not supported`);
  const shape = shapeTxt.split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  const bytes = buf.subarray(off);
  const copy = (B: number) => {
    const ab = new ArrayBuffer(n * B);
    new Uint8Array(ab).set(bytes.subarray(0, n * B));
    return ab;
  };
  switch (descr) {
    case '<f4': return { shape, data: new Float32Array(copy(4)) };
    case '<f8': return { shape, data: new Float64Array(copy(8)) };
    case '<i4': return { shape, data: new Int32Array(copy(4)) };
    default: throw new Error(`${file}: dtype ${descr} is not supported`);
  }
}
