/**
 * What the ONNX and TF.js exporters (src/export/onnx/layers.ts, src/export/tfjs/layers.ts) compute the same way
 * before writing ops in their own layout: the refusal error, the weights' host transforms (Darknet's
 * binarization, its pool padding), each head's per-channel activation as coefficient vectors, and the index
 * plan of a tree's grouped softmax.
 */
import { CfgError } from '../darknet/cfg.js';
import type { AnyLayer, LayerOf } from '../darknet/registry.js';

/** `refuse(l, why)` for one exporter: a CfgError at the layer's section saying why it has no `target` form. */
export function refusal(target: string): (l: AnyLayer, why: string) => CfgError {
  return (l, why) => new CfgError(l.section.file, l.section.line, undefined, `${l.section.label} (layer ${l.index}) cannot be exported to ${target}: ${why}`);
}

/** Why a recurrent layer has no form in a stateless graph of `target`. */
export const recurrentReason = (target: string): string =>
  `a recurrent layer carries its hidden state from one forward to the next (Darknet time_steps); ${target} graph has no state between runs`;

/** Darknet binarize_weights (kernels/binarize.wgsl): per filter sign(w)·mean|w| (0 counts as negative), float32 sums in order. */
export function binarizeHost(w: Float32Array, filters: number): Float32Array {
  const K = w.length / filters;
  const out = new Float32Array(w.length);
  for (let f = 0; f < filters; f++) {
    let s = 0;
    for (let k = 0; k < K; k++) s = Math.fround(s + Math.abs(w[f * K + k]));
    const mean = Math.fround(s / K);
    for (let k = 0; k < K; k++) out[f * K + k] = w[f * K + k] > 0 ? mean : -mean;
  }
  return out;
}

/** Darknet maxpool padding as (before, after) on one axis: floor(padding/2) before, the rest to reach the output size. */
export function poolPads(inSize: number, outSize: number, size: number, stride: number, padding: number): [number, number] {
  const before = Math.floor(padding / 2);
  const after = Math.max(0, (outSize - 1) * stride + size - inSize - before);
  return [before, after];
}

/**
 * The per-channel head activation of [yolo] / [Gaussian_yolo] / [region] (yolo_act.wgsl, gaussian_yolo.wgsl,
 * the region forward) as out = x·R + sigmoid(x)·A + B over the channels: R = 1 on raw channels; A = 1 on
 * logistic ones; on x, y A = scale_x_y, B = −0.5·(scale_x_y − 1) (new_coords: R = scale_x_y). `anyR`, `anyA`,
 * `anyB`: whether the term is needed at all; `identityR`: R is all ones.
 */
export interface HeadCoefficients {
  R: Float32Array;
  A: Float32Array;
  B: Float32Array;
  anyR: boolean;
  anyA: boolean;
  anyB: boolean;
  identityR: boolean;
}

type Channel = 'raw' | 'logistic' | 'xy' | 'xyRaw';

function coefficients(C: number, kindOf: (c: number) => Channel, scaleXY: number): HeadCoefficients {
  const R = new Float32Array(C);
  const A = new Float32Array(C);
  const B = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const k = kindOf(c);
    if (k === 'raw') R[c] = 1;
    else if (k === 'logistic') A[c] = 1;
    else if (k === 'xy') {
      A[c] = scaleXY;
      B[c] = -0.5 * (scaleXY - 1);
    } else {
      R[c] = scaleXY;
      B[c] = -0.5 * (scaleXY - 1);
    }
  }
  const nz = (v: number) => v !== 0;
  return { R, A, B, anyR: R.some(nz), anyA: A.some(nz), anyB: B.some(nz), identityR: R.every((v) => v === 1) };
}

/** [yolo]: logistic x, y (scaled), objectness and classes; raw w, h (new_coords: the conv before is logistic already, x, y only scaled). */
export function yoloCoefficients(l: LayerOf<'yolo'>): HeadCoefficients {
  const o = l.options;
  const E = o.classes + 5;
  return coefficients(l.input.c, (c) => {
    const k = c % E;
    if (k < 2) return o.newCoords ? 'xyRaw' : 'xy';
    return k < 4 || o.newCoords ? 'raw' : 'logistic';
  }, o.scaleXY);
}

/** [Gaussian_yolo]: x, y at entries 0, 2 (scaled logistic), w, h at 4, 6 raw, the rest logistic. */
export function gaussianCoefficients(l: LayerOf<'Gaussian_yolo'>): HeadCoefficients {
  const E = l.options.classes + 9;
  return coefficients(l.input.c, (c) => {
    const k = c % E;
    if (k === 0 || k === 2) return 'xy';
    return k === 4 || k === 6 ? 'raw' : 'logistic';
  }, l.options.scaleXY);
}

/** [region]: logistic x, y and objectness; the classes raw when a softmax (or a tree) follows, else logistic. */
export function regionCoefficients(l: LayerOf<'region'>, soft: boolean): HeadCoefficients {
  const o = l.options;
  const E = o.coords + 1 + o.classes;
  return coefficients(l.input.c, (c) => {
    const k = c % E;
    if (k < 2 || k === o.coords) return 'logistic';
    return k > o.coords && !soft ? 'logistic' : 'raw';
  }, 1);
}

/**
 * The gathers of a softmax over groups of entries (a Darknet tree's sibling groups: `offsets`, `sizes`) of an
 * axis of n entries, done as one Softmax: `idx` ([G, S], S the largest group) picks each group's entries into a
 * row, padded with index n (the −1e30 slot the exporter appends); `back` ([n]) takes each entry back from the
 * flattened [G * S]. Throws when the groups do not cover every entry.
 */
export function groupedSoftmaxIndex(n: number, offsets: ArrayLike<number>, sizes: ArrayLike<number>): { G: number; S: number; idx: number[]; back: number[] } {
  const G = sizes.length;
  let S = 0;
  for (let k = 0; k < G; k++) S = Math.max(S, sizes[k]);
  const idx: number[] = new Array(G * S).fill(n);
  const back: number[] = new Array(n).fill(-1);
  for (let k = 0; k < G; k++) {
    for (let j = 0; j < sizes[k]; j++) {
      idx[k * S + j] = offsets[k] + j;
      back[offsets[k] + j] = k * S + j;
    }
  }
  if (back.some((v) => v < 0)) throw new Error('groupedSoftmax: the groups do not cover every entry');
  return { G, S, idx, back };
}
