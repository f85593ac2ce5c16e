/**
 * `--decode` for TF.js: the box decode of the ONNX export (src/export/onnx/decode.ts, itself
 * src/yolo/decode.ts before thresholds and NMS) in TF ops, from each head's NHWC input. One output `boxes`
 * [N, boxes, 4 + 1 + C], rows and entries exactly as the ONNX `boxes` (cx, cy, w, h in input pixels,
 * objectness, objectness × class probability).
 */
import type { AnyLayer } from '../../darknet/registry.js';
import { decodePlan } from '../decode_plan.js';
import { b, i, type TfGraph } from './graph.js';
import { concat, refuse, reshape, slice } from './layers.js';

/** The decode graph of one head: `x` [N, H, W, A·E] (NHWC) -> [N, H·W·A, 5 + C]. */
function decodeHead(g: TfGraph, l: AnyLayer, x: string, net: { width: number; height: number }): { rows: string; count: number; classes: number } {
  const { spec, kind, A, C, E, H, W, scale: sc, grid, anchors, xy: xyIdx, wh: whIdx, obj: objIdx } = decodePlan(l, net, refuse);
  const HW = H * W;
  // NHWC [N, H, W, A*E] is already [N, H*W, A, E]: the rows of decodeRows, entries on the last axis
  const r = reshape(g, x, [-1, HW, A, E]);
  const gridT = g.f32('grid', [1, HW, 1, 2], grid);
  const cell = g.constF([net.width / W, net.height / H], [2]);
  const pick = (t: string, idx: number[]) => (idx.length === idx[idx.length - 1] - idx[0] + 1 ? slice(g, t, 4, 3, idx[0], idx[idx.length - 1] + 1) : g.op('GatherV2', [t, g.constI(idx), g.constI([3], [])], { Tparams: { type: 'DT_FLOAT' }, Tindices: { type: 'DT_INT32' }, Taxis: { type: 'DT_INT32' }, batch_dims: i(0) }));
  const sig = kind === 'yolo' && spec.newCoords ? r : g.op('Sigmoid', [r]);
  let bxy = pick(sig, xyIdx);
  if (sc !== 1) bxy = g.op('AddV2', [g.op('Mul', [bxy, g.constF([sc], [])]), g.constF([-0.5 * (sc - 1)], [])]);
  const cxy = g.op('Mul', [g.op('AddV2', [gridT, bxy]), cell]);
  const anc = g.f32('anchors', [1, 1, A, 2], anchors);
  const twh = pick(r, whIdx);
  const wh = g.op('Mul', [spec.newCoords ? g.op('Mul', [twh, twh]) : g.op('Exp', [twh]), anc]);
  const obj = pick(sig, [objIdx]);
  const prob = kind === 'region' && spec.softmax !== false ? g.op('Softmax', [slice(g, r, 4, 3, E - C, E)]) : slice(g, sig, 4, 3, E - C, E);
  let scores = g.op('Mul', [obj, prob]);
  if (kind === 'Gaussian_yolo') {
    // 1 − (σx + σy + σw + σh) / 4
    const mean = g.op('Mean', [pick(sig, [1, 3, 5, 7]), g.constI([3])], { keep_dims: b(true), Tidx: { type: 'DT_INT32' } });
    scores = g.op('Mul', [scores, g.op('Sub', [g.constF([1], []), mean])]);
  }
  const rows = reshape(g, concat(g, [cxy, wh, obj, scores], 3), [-1, HW * A, 5 + C]);
  return { rows, count: HW * A, classes: C };
}

/** The decoded boxes of every head: [N, boxes, 5 + C]. Throws a CfgError for a head it cannot decode, or differing class counts. */
export function decodeHeads(g: TfGraph, heads: readonly AnyLayer[], inputOf: (l: AnyLayer) => string, net: { width: number; height: number }): { name: string; boxes: number; classes: number } {
  const parts = heads.map((l) => ({ l, ...decodeHead(g, l, inputOf(l), net) }));
  const C = parts[0].classes;
  const odd = parts.find((p) => p.classes !== C);
  if (odd) throw refuse(odd.l, `--decode: this head has ${odd.classes} classes, layer ${parts[0].l.index} has ${C}; one [N, boxes, 5 + C] output needs one class count`);
  return { name: concat(g, parts.map((p) => p.rows), 1), boxes: parts.reduce((t, p) => t + p.count, 0), classes: C };
}
