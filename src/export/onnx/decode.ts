/**
 * `--decode`: the box decode of src/yolo/decode.ts (kernels/yolo_decode.wgsl `rows`, the layout before
 * thresholds and NMS) in ONNX operators, from each head's raw input (the head convolution's output).
 *
 * One output `boxes` [N, boxes, 4 + 1 + C]: the heads in layer order, each head's rows in OpenCV's order
 * (row (y·W + x)·A + a), each row cx, cy, w, h (box centre and size in network-input pixels: decodeRows'
 * normalised values times the input width / height), objectness, then objectness × class probability for
 * every class (no threshold; [Gaussian_yolo]: × (1 − the mean of the four uncertainties)). The math follows
 * the kernel per head kind: [yolo] logistic x, y, objectness, classes with scale_x_y, w = e^tw·anchor;
 * new_coords=1 no activation, w = (2·tw)²·anchor; [region] anchors in grid cells, softmax (or logistic)
 * classes; [Gaussian_yolo] x, y, w, h at entries 0, 2, 4, 6, objectness at 8.
 */
import type { AnyLayer } from '../../darknet/registry.js';
import { decodePlan } from '../decode_plan.js';
import { int, ints, type OnnxGraph } from './graph.js';
import { refuse, reshape, slice } from './layers.js';

/** The decode graph of one head: `x` [N, A·E, H, W] -> [N, H·W·A, 5 + C]. */
function decodeHead(g: OnnxGraph, l: AnyLayer, x: string, net: { width: number; height: number }): { rows: string; count: number; classes: number } {
  const { spec, kind, A, C, E, H, W, scale: sc, grid, anchors, xy: xyIdx, wh: whIdx, obj: objIdx } = decodePlan(l, net, refuse);
  const HW = H * W;
  // [N, A*E, H, W] -> [N, H*W, A, E]: the rows of decodeRows, entries on the last axis
  const r = g.op('Transpose', [reshape(g, x, [0, A, E, HW])], { perm: ints([0, 3, 1, 2]) });
  const gridT = g.f32('grid', [1, HW, 1, 2], grid);
  const cell = g.constF([net.width / W, net.height / H], [2]);
  const pick = (t: string, idx: number[]) => (idx.length === idx[idx.length - 1] - idx[0] + 1 ? slice(g, t, 3, idx[0], idx[idx.length - 1] + 1) : g.op('Gather', [t, g.constI(idx)], { axis: int(3) }));
  const clsFrom = E - C;
  const sig = kind === 'yolo' && spec.newCoords ? r : g.op('Sigmoid', [r]);
  // x, y: [yolo] / [Gaussian_yolo] v·s − 0.5·(s − 1) of the logistic (new_coords: of the raw value); [region] the logistic
  let bxy = pick(sig, xyIdx);
  if (sc !== 1) bxy = g.op('Add', [g.op('Mul', [bxy, g.constF([sc], [])]), g.constF([-0.5 * (sc - 1)], [])]);
  const cxy = g.op('Mul', [g.op('Add', [gridT, bxy]), cell]);
  // w, h in pixels: anchors in pixels ([yolo], [Gaussian_yolo]) or grid cells ([region], times the cell size)
  const anc = g.f32('anchors', [1, 1, A, 2], anchors);
  const twh = pick(r, whIdx);
  const wh = g.op('Mul', [spec.newCoords ? g.op('Mul', [twh, twh]) : g.op('Exp', [twh]), anc]);
  const obj = pick(sig, [objIdx]);
  let prob: string;
  if (kind === 'region' && spec.softmax !== false) prob = g.op('Softmax', [slice(g, r, 3, clsFrom, E)], { axis: int(3) });
  else prob = slice(g, sig, 3, clsFrom, E);
  let scores = g.op('Mul', [obj, prob]);
  if (kind === 'Gaussian_yolo') {
    // 1 − (σx + σy + σw + σh) / 4
    const mean = g.op('MatMul', [pick(sig, [1, 3, 5, 7]), g.constF([0.25, 0.25, 0.25, 0.25], [4, 1])]);
    scores = g.op('Mul', [scores, g.op('Sub', [g.constF([1], []), mean])]);
  }
  const rows = reshape(g, g.op('Concat', [cxy, wh, obj, scores], { axis: int(3) }), [0, HW * A, 5 + C]);
  return { rows, count: HW * A, classes: C };
}

/**
 * The decoded boxes of every head of the network: [N, boxes, 5 + C] (see the file comment). `inputOf(l)` is
 * the tensor name of a head's input. Throws a CfgError (at the head's line) for a head it cannot decode, or
 * when the heads disagree on the class count.
 */
export function decodeHeads(g: OnnxGraph, heads: readonly AnyLayer[], inputOf: (l: AnyLayer) => string, net: { width: number; height: number }): { name: string; boxes: number; classes: number } {
  const parts = heads.map((l) => ({ l, ...decodeHead(g, l, inputOf(l), net) }));
  const C = parts[0].classes;
  const odd = parts.find((p) => p.classes !== C);
  if (odd) throw refuse(odd.l, `--decode: this head has ${odd.classes} classes, layer ${parts[0].l.index} has ${C}; one [N, boxes, 5 + C] output needs one class count`);
  const rows = parts.length === 1 ? parts[0].rows : g.op('Concat', parts.map((p) => p.rows), { axis: int(1) });
  return { name: rows, boxes: parts.reduce((s, p) => s + p.count, 0), classes: C };
}
