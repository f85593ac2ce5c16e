/**
 * Darknet [shortcut] (kernels/shortcut.wgsl): out = act(z), z = alpha*a + beta*b on the positions a shares
 * with b and z = a elsewhere (shortcut_layer.c + blas.c shortcut_cpu: the output starts as a copy of the
 * previous layer `a`, then the `from` layer `b` is added where shapes overlap: the first min(C) channels, and
 * for different spatial sizes every stride-th position of the larger / sample-th of the smaller).
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { activationCode, type Activation } from './activation.js';

const WG = 256;

/**
 * Whether a and b of one shape take the vec4 entries (fwd4, bwd4); the tests turn it off to compare with the
 * general entries, which must give the same bits.
 */
export const shortcutTuning = { vec4: true };

export interface ShortcutOptions {
  /** Activation applied to the sum (Darknet `activation`, default linear). */
  activation?: Activation;
  /** Darknet `alpha` (s1, default 1): weight of `a` on the shared positions. */
  alpha?: number;
  /** Darknet `beta` (s2, default 1): weight of `b`. */
  beta?: number;
}

/**
 * How Darknet's shortcut_cpu lays `b` (the `from` layer) onto `a` (the previous layer, the output's shape):
 * stride = w_b / w_a, sample = w_a / w_b (each at least 1), the same for h; b[k, j*stride, i*stride] adds to
 * a[k, j*sample, i*sample] for k < minc, j < minh, i < minw. null when the width and height ratios differ.
 * The op, the layer's cfg check and both exporters use it.
 */
export function shortcutGeometry(a: { c: number; h: number; w: number }, b: { c: number; h: number; w: number }): { stride: number; sample: number; minc: number; minh: number; minw: number } | null {
  const stride = Math.max(Math.trunc(b.w / a.w), 1);
  const sample = Math.max(Math.trunc(a.w / b.w), 1);
  if (stride !== Math.max(Math.trunc(b.h / a.h), 1) || sample !== Math.max(Math.trunc(a.h / b.h), 1)) return null;
  return { stride, sample, minc: Math.min(a.c, b.c), minh: Math.min(a.h, b.h), minw: Math.min(a.w, b.w) };
}

/** The uniform parameters (all but n, alpha, beta) shared by every shortcut entry point. */
function geometry(a: Tensor, b: Tensor) {
  if (a.shape.length !== 4 || b.shape.length !== 4) throw new Error(`shortcut: expected NCHW tensors, got ${a.describe()} and ${b.describe()}`);
  const [na, ac, ah, aw] = a.shape;
  const [nb, bc, bh, bw] = b.shape;
  if (na !== nb) throw new Error(`shortcut: batch sizes differ: ${a.describe()} vs ${b.describe()}`);
  const sg = shortcutGeometry({ c: ac, h: ah, w: aw }, { c: bc, h: bh, w: bw });
  if (!sg) throw new Error(`shortcut: width and height ratios differ between ${a.describe()} and ${b.describe()}`);
  return { aw, ah, ac, bw, bh, bc, ...sg };
}

/** act(alpha*a + beta*b) on the shared positions, act(a) elsewhere; output shaped like a. */
export function shortcut(a: Tensor, b: Tensor, opts: ShortcutOptions = {}): Tensor {
  const act = opts.activation ?? 'linear';
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 1;
  const spec = (entry: string) => ({ file: 'shortcut', entry, constants: { WG, ACT: activationCode(act) } });
  const geo = geometry(a, b);
  if (a.dtype !== b.dtype) throw new Error(`shortcut: storage types differ: ${a.describe()} is ${a.dtype}, ${b.describe()} ${b.dtype}`);
  const gpu = a.gpu;
  const params = (n: number) => ({ n, ...geo, alpha, beta });
  // one shape (every position shared) in whole vec4s: four values per invocation, no index math
  const v4 = shortcutTuning.vec4 && a.size % 4 === 0 && geo.aw === geo.bw && geo.ah === geo.bh && geo.ac === geo.bc;
  const y = Tensor.like(a); // f32, or f16 at inference
  const n = v4 ? a.size / 4 : a.size;
  gpu.dispatch({ ...spec(v4 ? 'fwd4' : 'fwd'), defines: storageDefines(a.dtype) }, params(n), { 1: a, 2: b, 3: y }, gpu.grid(n, WG));
  Tape.push({
    op: `shortcut:${act}`, inputs: [a, b], outputs: [y], saved: [],
    backward: ([dy]) => {
      let da: Tensor | null = null;
      let db: Tensor | null = null;
      if (v4 && a.requiresGrad && b.requiresGrad) {
        da = new Tensor(gpu, a.shape);
        db = new Tensor(gpu, b.shape);
        gpu.dispatch(spec('bwd4'), params(n), { 1: a, 2: b, 3: da, 4: dy!, 5: db }, gpu.grid(n, WG));
        return [da, db];
      }
      if (a.requiresGrad) {
        da = new Tensor(gpu, a.shape);
        gpu.dispatch(spec('bwd_a'), params(a.size), { 1: a, 2: b, 3: da, 4: dy! }, gpu.grid(a.size, WG));
      }
      if (b.requiresGrad) {
        db = new Tensor(gpu, b.shape);
        gpu.dispatch(spec('bwd_b'), params(b.size), { 1: a, 2: b, 3: db, 4: dy! }, gpu.grid(b.size, WG));
      }
      return [da, db];
    },
  });
  return y;
}
