/**
 * IEEE 754 binary16 on the host (Node 20 has no Float16Array): what Tensor.write uploads into an f16 tensor
 * and Tensor.toArray reads back from one. Rounding to nearest, ties to even (Math.fround's rule, one step
 * down); past the largest finite half (65504) values round to +-Infinity; NaN stays NaN.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bits of a number (rounded to nearest even). */
export function halfBits(v: number): number {
  f32[0] = v; // first to float32, as a GPU store from f32 sees it
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow: Inf
  if (e <= 0) {
    // subnormal half (or 0): shift the mantissa with its hidden bit, round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: still right (up to Inf)
  return sign | h;
}

/** The number binary16 bits stand for. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** v rounded to the nearest binary16 value (as a number). */
export function roundHalf(v: number): number {
  return halfValue(halfBits(v));
}

/** Packs values as binary16 (rounded to nearest even). */
export function toHalf(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = halfBits(data[i]);
  return out;
}

let values: Float32Array | null = null;

/** Unpacks binary16 values into float32 (exact: every half is a float32), through a table of all 65536. */
export function fromHalf(bits: Uint16Array): Float32Array {
  if (!values) {
    values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) values[h] = halfValue(h);
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = values[bits[i]];
  return out;
}
