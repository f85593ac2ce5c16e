/** Float64 CPU references of the reductions in src/tensor/ops/reduce.ts and their gradients. */

/** Σ x in float64 (Neumaier-compensated, so the reference itself is exact to ~1e-16 relative). */
export function sumRef(x: ArrayLike<number>, square = false): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < x.length; i++) {
    const v = square ? x[i] * x[i] : x[i];
    const t = s + v;
    c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
    s = t;
  }
  return s + c;
}

/** Per-channel Σ over n and inner of an [n, c, inner] array. */
export function channelSumRef(x: ArrayLike<number>, n: number, c: number, inner: number, square = false): Float64Array {
  const out = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    const vals: number[] = [];
    for (let b = 0; b < n; b++) for (let i = 0; i < inner; i++) vals.push(x[(b * c + k) * inner + i]);
    out[k] = sumRef(vals, square);
  }
  return out;
}

/** d(scale * Σ v)/dx for v = x or x², with upstream g (scalar) — the broadcast backward. */
export function sumGradRef(x: ArrayLike<number>, g: number, scale: number, square: boolean): Float64Array {
  return Float64Array.from(x as ArrayLike<number>, (v) => (square ? 2 * g * scale * v : g * scale));
}

/** Per-channel backward: dx[b, k, i] = scale * g[k] (times 2 x when square). */
export function channelGradRef(x: ArrayLike<number>, g: ArrayLike<number>, n: number, c: number, inner: number, scale: number, square: boolean): Float64Array {
  const out = new Float64Array(n * c * inner);
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let i = 0; i < inner; i++) {
    const j = (b * c + k) * inner + i;
    out[j] = (square ? 2 * x[j] : 1) * g[k] * scale;
  }
  return out;
}
