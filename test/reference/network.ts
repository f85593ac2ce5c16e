/**
 * Float64 forward of a whole built network, layer by layer, in 'infer' or 'train' mode (train: every
 * batch-normalized [convolutional] uses Darknet's training BN, batch statistics with the unbiased variance,
 * test/reference/batchnorm.ts bnTrainRef). Parameters come from a float64 copy of the host parameters
 * (`hostParams64`), so finite differences can perturb them in float64; every other layer kind is
 * test/layers/reference.ts layerRef. `from` + `cache` recompute only from one layer onward (the layers
 * before it keep their cached outputs): what whole-network finite differences need to stay cheap.
 */
import type { Network } from '../../src/darknet/network.js';
import type { AnyLayer } from '../../src/darknet/registry.js';
import { layerRef, type Val } from '../layers/reference.js';
import { bnTrainRef } from './batchnorm.js';
import { act } from './activation.js';

export type Params64 = Map<number, Record<string, Float64Array>>;

/** Float64 copies of every layer's host parameters (layer.data), keyed by layer index. */
export function hostParams64(net: Network): Params64 {
  const m: Params64 = new Map();
  for (const l of net.layers) {
    if (!l.data) continue;
    const r: Record<string, Float64Array> = {};
    for (const [k, v] of Object.entries(l.data)) r[k] = Float64Array.from(v);
    m.set(l.index, r);
  }
  return m;
}

/**
 * conv2dRef's function (stride, padding, dilation, groups), computed per output pixel as the dot product of
 * each filter with the gathered input patch (fast in JS for the deep layers' small grids and many
 * channels); checked against conv2dRef in test/train/network-grad.test.ts.
 */
export function conv2dFast(x: ArrayLike<number>, xShape: readonly number[], w: ArrayLike<number>, wShape: readonly number[], p: { stride: [number, number]; pad: number; dilation: number; groups: number }): { y: Float64Array; shape: number[] } {
  const [B, Cin, H, W] = xShape;
  const [Cout, Cg, kH, kW] = wShape;
  const [sy, sx] = p.stride;
  const d = p.dilation;
  const pad = p.pad;
  const OH = Math.floor((H + 2 * pad - d * (kH - 1) - 1) / sy) + 1;
  const OW = Math.floor((W + 2 * pad - d * (kW - 1) - 1) / sx) + 1;
  const Mg = Cout / p.groups;
  const K = Cg * kH * kW;
  const col = new Float64Array(K);
  const y = new Float64Array(B * Cout * OH * OW);
  for (let b = 0; b < B; b++)
    for (let grp = 0; grp < p.groups; grp++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let q = 0;
          for (let c = 0; c < Cg; c++) {
            const xo = (b * Cin + grp * Cg + c) * H * W;
            for (let ky = 0; ky < kH; ky++) {
              const iy = oy * sy - pad + ky * d;
              for (let kx = 0; kx < kW; kx++) {
                const ix = ox * sx - pad + kx * d;
                col[q++] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[xo + iy * W + ix] : 0;
              }
            }
          }
          for (let co = grp * Mg; co < (grp + 1) * Mg; co++) {
            const wo = co * K;
            let s = 0;
            for (let k = 0; k < K; k++) s += w[wo + k] * col[k];
            y[((b * Cout + co) * OH + oy) * OW + ox] = s;
          }
        }
  return { y, shape: [B, Cout, OH, OW] };
}

function convRef(l: Extract<AnyLayer, { kind: 'convolutional' }>, x: Val, d: Record<string, Float64Array>, mode: 'infer' | 'train'): Float64Array {
  if (l.xnor || l.binary || l.owner !== l) throw new Error(`network reference: layer ${l.index}: xnor / binary / share_index convs are not covered`);
  const wShape = [l.filters, l.input.c / l.groups, l.size, l.size];
  const { y, shape } = conv2dFast(x.data, x.shape, d.weights, wShape, { stride: [l.strideY, l.strideX], pad: l.padding * l.dilation, dilation: l.dilation, groups: l.groups });
  let z = y;
  if (!l.batchNormalize) {
    const per = shape[2] * shape[3];
    for (let i = 0; i < z.length; i++) z[i] += d.biases[Math.floor(i / per) % l.filters];
  }
  if (l.batchNormalize) {
    if (mode === 'train') z = bnTrainRef(y, shape, d.scales, d.biases, 'darknet');
    else {
      const per = shape[2] * shape[3];
      for (let i = 0; i < z.length; i++) {
        const o = Math.floor(i / per) % l.filters;
        z[i] = ((z[i] - d.rolling_mean[o]) / (Math.sqrt(d.rolling_variance[o]) + 1e-6)) * d.scales[o] + d.biases[o];
      }
    }
  }
  const a = l.activation;
  return a === 'linear' ? z : z.map((v) => act(v, a));
}

/**
 * Every layer's float64 output for input x ([B, c, h, w]). With `cache` (a previous result for the same
 * input) and `from`, layers before `from` are taken from the cache.
 */
export function networkRef(net: Network, x: Val, params: Params64, mode: 'infer' | 'train', from = 0, cache?: Val[]): Val[] {
  const B = x.shape[0];
  const outs: Val[] = cache ? cache.slice(0, from) : [];
  if (outs.length !== from) throw new Error(`networkRef: cache has ${outs.length} layers, from = ${from}`);
  for (let i = from; i < net.layers.length; i++) {
    const l = net.layers[i];
    const ins = l.sources.map((j) => (j < 0 ? x : outs[j]));
    const shape = [B, l.output.c, l.output.h, l.output.w];
    let data: Float64Array;
    if (l.kind === 'convolutional') data = convRef(l, ins[0], params.get(i)!, mode);
    else if (l.data && mode === 'train') throw new Error(`network reference: layer ${i} [${l.kind}] has parameters; only [convolutional] is covered`);
    else data = layerRef(l, ins);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`network reference: layer ${i} [${l.kind}] gave ${data.length} values for ${shape}`);
    outs.push({ data, shape });
  }
  return outs;
}
