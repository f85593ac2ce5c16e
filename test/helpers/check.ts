/** Numeric assertions with useful failure messages, finite differences, and golden/shared data access. */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/util/paths.js';
import { Rng } from '../../src/util/rng.js';

export interface Tol {
  /** absolute tolerance */
  atol: number;
  /** relative tolerance (times |expected|) */
  rtol: number;
}

/** Asserts |a - e| <= atol + rtol*|e| elementwise; reports the worst element. Returns the max abs error. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, label: string): number {
  if (actual.length !== expected.length) throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  let worst = -1;
  let worstRatio = 0;
  let maxErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const err = Math.abs(a - e);
    if (!Number.isFinite(a) && a !== e) throw new Error(`${label}: element ${i} is ${a}, expected ${e}`);
    maxErr = Math.max(maxErr, err);
    const ratio = err / (tol.atol + tol.rtol * Math.abs(e));
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (worstRatio > 1) {
    throw new Error(`${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (|err| ${Math.abs(actual[worst] - expected[worst]).toExponential(3)} > atol ${tol.atol} + rtol ${tol.rtol}·|e|; max |err| ${maxErr.toExponential(3)})`);
  }
  return maxErr;
}

/**
 * The channels [off, off + C) of `dst` [B, Ctot, plane] in [B, C, plane] order, after checking that every other
 * channel still holds `sentinel` (what an op written into a channel slice must leave alone).
 */
export function channelSlice(dst: ArrayLike<number>, s: { B: number; Ctot: number; off: number; C: number; plane: number; sentinel: number }, label: string): number[] {
  const got: number[] = [];
  for (let bi = 0; bi < s.B; bi++) {
    for (let ch = 0; ch < s.Ctot; ch++) {
      for (let q = 0; q < s.plane; q++) {
        const val = dst[(bi * s.Ctot + ch) * s.plane + q];
        if (ch >= s.off && ch < s.off + s.C) got.push(val);
        else if (val !== s.sentinel) throw new Error(`${label}: channel ${ch} of image ${bi} outside the slice was overwritten (${val})`);
      }
    }
  }
  return got;
}

/** Max |value|, for tolerances relative to a tensor's scale. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * Central finite differences of a scalar float64 function f over the entries `indices` of input `x`
 * (all entries when omitted). Returns d f / d x[i] for those entries.
 */
export function finiteDiff(f: () => number, x: Float64Array, indices?: number[], eps = 1e-3): Float64Array {
  const idx = indices ?? [...Array(x.length).keys()];
  const out = new Float64Array(idx.length);
  idx.forEach((i, k) => {
    const keep = x[i];
    x[i] = keep + eps;
    const fp = f();
    x[i] = keep - eps;
    const fm = f();
    x[i] = keep;
    out[k] = (fp - fm) / (2 * eps);
  });
  return out;
}

/** sum(y * dy) in float64: the scalar loss the goldens and finite-difference checks use. */
export function dot(y: ArrayLike<number>, dy: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
  return s;
}

/** Up to n distinct indices spread over [0, len) (all when len <= n), deterministic (first and last included). */
export function sampleIndices(len: number, n: number, seed = 7): number[] {
  if (len <= n) return [...Array(len).keys()];
  // partial Fisher-Yates shuffle of 1..len-2 with a seeded generator
  const rest = [...Array(len - 2).keys()].map((i) => i + 1);
  const rng = new Rng(seed);
  for (let k = 0; k < n - 2; k++) {
    const j = k + rng.int(rest.length - k);
    [rest[k], rest[j]] = [rest[j], rest[k]];
  }
  return [0, len - 1, ...rest.slice(0, n - 2)].sort((a, b) => a - b);
}

export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

// ---------------------------------------------------------------- goldens

export interface GoldenTensor {
  shape: number[];
  data: number[];
}
export interface GradCase {
  name: string;
  op: string;
  params: Record<string, unknown>;
  tensors: Record<string, GoldenTensor>;
}

let grads: GradCase[] | undefined;

/** PyTorch goldens from fixtures/golden/grads.json (a copy of ../shared/golden/grads.json). */
export function gradCase(name: string): GradCase {
  grads ??= (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/grads.json'), 'utf8')) as { cases: GradCase[] }).cases;
  const c = grads.find((g) => g.name === name);
  if (!c) throw new Error(`golden case ${name} not in fixtures/golden/grads.json`);
  return c;
}

/** Golden inputs are float32 values: read them through Float32Array. */
export function f32In(t: GoldenTensor): Float32Array {
  return Float32Array.from(t.data);
}

/**
 * The read-only reference folder (../shared beside the checkout, or YOLO_WGSL_SHARED). Returns undefined
 * when absent; tests that need it print that plainly and skip.
 */
export function sharedDir(): string | undefined {
  const dir = process.env.YOLO_WGSL_SHARED ?? path.resolve(packageRoot(), '..', 'shared');
  return fs.existsSync(path.join(dir, 'golden')) ? dir : undefined;
}

export function noteMissingShared(what: string): void {
  console.log(`  [skipped: ${what} needs ../shared (set YOLO_WGSL_SHARED); it is absent here]`);
}
