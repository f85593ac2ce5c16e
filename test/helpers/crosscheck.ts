/**
 * What scripts/crosscheck.ts and test/darknet/corpus_refs.test.ts share: how a corpus cfg is built for a
 * cross-check (size, seeded weights, input) and how a reference engine's layer output is brought to this
 * engine's layout, so that the golden the script writes and the test that reads it cannot drift apart.
 */
import { Network } from '../../src/darknet/network.js';
import type { AnyLayer } from '../../src/darknet/registry.js';
import { perturb } from './perturb.js';

export const XCHECK_TOL = 1e-4;
export const XCHECK_WEIGHT_SEED = 7;

/**
 * The cfg at `size` x `size` (its own size when that is smaller, or when it is not an image network),
 * batch 1; networks with stride 64/128 (p6, p7) or a fixed crop that does not fit get twice, then four times
 * the size. Seeded weights: initWeights(7), then perturb(net, 8) (biases, BN scales and statistics).
 */
export function crosscheckNetwork(cfg: string, size: number): Network {
  const probe = Network.fromFile(cfg);
  const { h: H0, w: W0 } = probe.input;
  const small = !probe.inputIsImage || H0 * W0 <= size * size;
  let net: Network | null = null;
  for (let k = 1; !net; k *= 2) {
    try {
      net = small ? Network.fromFile(cfg, { batch: 1 }) : Network.fromFile(cfg, { width: size * k, height: size * k, batch: 1 });
    } catch (e) {
      if (small || k === 4) throw e;
    }
  }
  net.initWeights(XCHECK_WEIGHT_SEED);
  perturb(net, XCHECK_WEIGHT_SEED + 1);
  return net;
}

/** The input: n values in [0, 1) from a multiplicative hash (exactly reproducible in C and Python). */
export function crosscheckInput(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 2654435761) >>> 0) / 2 ** 32;
  return x;
}

export type Reference = 'darknet' | 'pjreddie' | 'opencv';

/**
 * A reference's output of layer `l` in this engine's layout, or null when the two do not compute the same
 * thing there (the caller leaves the layer out):
 * - [cost]: Darknet writes l.output only when training (forward_cost_layer returns without truth);
 * - AlexeyAB's CPU [region] output is flatten()ed to [h*w][n*(coords+1+classes)] (region_layer.c) and leaves
 *   x, y to get_region_box's logistic; ours keeps NCHW and applies it in the layer, as pjreddie's does;
 * - OpenCV's [softmax] is per position over the channels (Darknet's over the whole layer) and has no
 *   temperature and no tree=; its [yolo]/[region] outputs are decoded boxes (the script does not read them).
 */
export function asOurs(l: AnyLayer, e: Float32Array, who: Reference): Float32Array | null {
  if (l.kind === 'cost') return null;
  if (who === 'opencv' && l.kind === 'softmax' && (l.input.h * l.input.w > 1 || l.temperature !== 1 || l.tree)) return null;
  if (who === 'darknet' && l.kind === 'region') {
    const cells = l.output.h * l.output.w;
    const layers = l.output.c;
    const y = new Float32Array(e.length);
    for (let c = 0; c < layers; c++) for (let i = 0; i < cells; i++) y[c * cells + i] = e[i * layers + c];
    const per = y.length / l.options.num;
    for (let a = 0; a < l.options.num; a++) for (let i = 0; i < 2 * cells; i++) y[a * per + i] = 1 / (1 + Math.exp(-y[a * per + i]));
    return y;
  }
  return e;
}

/** max|a - e| / max|e| (absolute when e is all zero; Infinity when anything is not finite). */
export function relErr(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - e[i]));
    s = Math.max(s, Math.abs(e[i]));
  }
  if (!Number.isFinite(m)) return Infinity;
  return s > 0 ? m / s : m;
}

/** The indices a golden keeps of a layer of n values: `k` spread evenly, offset so that they are not all 0 mod 4. */
export function sampleIndices(n: number, k = 8): number[] {
  const out: number[] = [];
  for (let j = 0; j < Math.min(k, n); j++) out.push(Math.min(n - 1, Math.floor(((j + 0.37) * n) / Math.min(k, n))));
  return out;
}
