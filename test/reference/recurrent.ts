/**
 * Float64 reference of Darknet's recurrent layers (crnn_layer.c, rnn_layer.c, gru_layer.c, lstm_layer.c
 * forward_*_layer), written from the layers' options (not from their parts) and a parameter record (the
 * layer's host data, or a perturbed float64 copy for finite differences):
 *   [crnn]  h = input(x) + self(h) (+ h with shortcut); y = output(h)             (conv parts)
 *   [rnn]   the same with [connected] parts
 *   [gru]   z = σ(iz(x) + sz(h)), r = σ(ir(x) + sr(h)), hh = σ(ih(x) + sh(h*r)); h = z*h + (1-z)*hh; y = h
 *   [lstm]  f, i, o = σ(w*(h) + u*(x)), g = tanh(wg(h) + ug(x)); c = f*c + i*g; h = o*tanh(c); y = h
 * Each part: linear map, then Darknet BN (train: batch statistics of the step's rows, unbiased variance,
 * (x - mean)/(sqrt(var) + 1e-6); infer: rolling statistics) or bias, then its activation. The batch is
 * `steps` chunks of b rows (step t = rows [t*b, (t+1)*b)); the state starts from `state` (or zeros).
 */
import type { CrnnLayer } from '../../src/layers/crnn.js';
import type { RnnLayer } from '../../src/layers/rnn.js';
import type { GruLayer } from '../../src/layers/gru.js';
import type { LstmLayer } from '../../src/layers/lstm.js';
import type { Activation } from '../../src/tensor/ops/activation.js';
import { conv2dRef, type RefConvParams } from './conv2d.js';
import { bnApplyRef, bnStatsRef, bnTrainRef } from './batchnorm.js';
import { act } from './activation.js';

export type RecurrentRefLayer = CrnnLayer | RnnLayer | GruLayer | LstmLayer;

export interface RecurrentRefOptions {
  steps?: number;
  /** Batch statistics in every part's BN (Darknet state.train). */
  train?: boolean;
  /** The state before the first step (b rows each; [lstm]: h then c); zeros when absent. */
  state?: ArrayLike<number>[];
  /** Parameters by name ('input.weights', ...); default the layer's host data. */
  params?: Record<string, ArrayLike<number>>;
  /**
   * Darknet's CPU normalization, (x - mean)/sqrt(var + 1e-5) (blas.c normalize_cpu), instead of the GPU one the
   * engine follows, (x - mean)/(sqrt(var) + 1e-6): to check goldens made by Darknet's CPU build exactly.
   */
  cpuBn?: boolean;
}

export interface RecurrentRefResult {
  y: Float64Array;
  /** The state after the last step. */
  state: V[];
}

type V = Float64Array<ArrayBufferLike>;
const vmap = (a: V, f: (v: number, i: number) => number): V => a.map(f);
const addV = (a: V, b: V): V => vmap(a, (v, i) => v + b[i]);
const mulV = (a: V, b: V): V => vmap(a, (v, i) => v * b[i]);
const actV = (a: V, f: Activation): V => vmap(a, (v) => act(v, f));

export function recurrentRef(l: RecurrentRefLayer, x: ArrayLike<number>, xShape: readonly number[], opts: RecurrentRefOptions = {}): RecurrentRefResult {
  const steps = opts.steps ?? 1;
  const d = opts.params ?? (l.data as Record<string, ArrayLike<number>>);
  const B = xShape[0];
  const b = B / steps;
  const rowIn = x.length / B;
  const bn = l.batchNormalize;
  /** One part on `xin` [b, ...inShape]: linear, BN or bias, activation. */
  const part = (name: string, xin: ArrayLike<number>, inShape: number[], wShape: number[], geom: RefConvParams, a: Activation): { y: V; shape: number[] } => {
    const { y, shape } = conv2dRef(xin, [b, ...inShape], d[`${name}.weights`], wShape, null, geom);
    const z = bn && opts.cpuBn
      ? cpuBn(y, shape, name)
      : bn
      ? opts.train
        ? bnTrainRef(y, shape, d[`${name}.scales`], d[`${name}.biases`], 'darknet')
        : bnApplyRef(y, shape, d[`${name}.scales`], d[`${name}.biases`], d[`${name}.rolling_mean`], d[`${name}.rolling_variance`], 'darknet')
      : vmap(y, (v, i) => v + d[`${name}.biases`][Math.floor(i / (shape[2] * shape[3])) % shape[1]]);
    return { y: actV(z, a), shape: shape.slice(1) };
  };
  const cpuBn = (y: V, shape: number[], name: string): V => {
    const st = opts.train ? bnStatsRef(y, shape) : null;
    const mean = st ? st.mean : d[`${name}.rolling_mean`];
    const vr = st ? st.varUnbiased : d[`${name}.rolling_variance`];
    const hw = shape[2] * shape[3];
    return vmap(y, (v, i) => {
      const c = Math.floor(i / hw) % shape[1];
      return ((v - mean[c]) / Math.sqrt(vr[c] + 1e-5)) * d[`${name}.scales`][c] + d[`${name}.biases`][c];
    });
  };
  const inShape = xShape.slice(1) as number[];
  let stateShapes: number[][];
  let step: (xt: V, s: V[]) => { y: V; s: V[] };
  switch (l.kind) {
    case 'crnn':
    case 'rnn': {
      const conv = l.kind === 'crnn';
      const H = l.hidden;
      const O = l.kind === 'crnn' ? l.outputFilters : l.outputsN;
      const sp = conv ? [l.input.h, l.input.w] : [1, 1];
      const k = conv ? l.size : 1;
      const G = conv ? l.groups : 1;
      const geom: RefConvParams = conv ? { stride: l.stride, pad: l.padding, groups: G } : {};
      const selfAct = l.kind === 'rnn' ? l.selfActivation : l.activation;
      const wIn = conv ? [H, inShape[0] / G, k, k] : [H, ...inShape];
      stateShapes = [[H, ...sp]];
      step = (xt, [h]) => {
        const a = part('input', xt, inShape, wIn, geom, l.activation).y;
        const s = part('self', h, [H, ...sp], [H, H / G, k, k], geom, selfAct).y;
        const next = l.shortcut ? addV(addV(h, a), s) : addV(a, s);
        return { y: part('output', next, [H, ...sp], [O, H / G, k, k], geom, l.activation).y, s: [next] };
      };
      break;
    }
    case 'gru': {
      const n = l.outputsN;
      stateShapes = [[n, 1, 1]];
      const lin = (name: string, v: V, shape: number[]) => part(name, v, shape, [n, ...shape], {}, 'linear').y;
      step = (xt, [h]) => {
        const z = actV(addV(lin('input_z', xt, inShape), lin('state_z', h, [n, 1, 1])), 'logistic');
        const r = actV(addV(lin('input_r', xt, inShape), lin('state_r', h, [n, 1, 1])), 'logistic');
        const hh = actV(addV(lin('input_h', xt, inShape), lin('state_h', mulV(h, r), [n, 1, 1])), 'logistic');
        const out = vmap(z, (zv, i) => zv * h[i] + (1 - zv) * hh[i]);
        return { y: out, s: [out] };
      };
      break;
    }
    case 'lstm': {
      const n = l.outputsN;
      stateShapes = [[n, 1, 1], [n, 1, 1]];
      const gate = (g: string, xt: V, h: V, a: Activation) =>
        actV(addV(part(`w${g}`, h, [n, 1, 1], [n, n, 1, 1], {}, 'linear').y, part(`u${g}`, xt, inShape, [n, ...inShape], {}, 'linear').y), a);
      step = (xt, [h, c]) => {
        const f = gate('f', xt, h, 'logistic');
        const i = gate('i', xt, h, 'logistic');
        const g = gate('g', xt, h, 'tanh');
        const o = gate('o', xt, h, 'logistic');
        const c2 = vmap(f, (fv, k) => fv * c[k] + i[k] * g[k]);
        const h2 = vmap(o, (ov, k) => ov * Math.tanh(c2[k]));
        return { y: h2, s: [h2, c2] };
      };
      break;
    }
  }
  let s: V[] = stateShapes.map((sh, k) => (opts.state?.[k] ? Float64Array.from(opts.state[k] as ArrayLike<number>) : new Float64Array(b * sh.reduce((p, q) => p * q, 1))));
  const outs: V[] = [];
  for (let t = 0; t < steps; t++) {
    const xt = Float64Array.from({ length: b * rowIn }, (_, i) => x[t * b * rowIn + i]);
    const r = step(xt, s);
    outs.push(r.y);
    s = r.s;
  }
  const y = new Float64Array(outs.reduce((n, o) => n + o.length, 0));
  let off = 0;
  for (const o of outs) {
    y.set(o, off);
    off += o.length;
  }
  return { y, state: s };
}
