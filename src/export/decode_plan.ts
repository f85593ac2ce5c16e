/**
 * What both exporters' `--decode` graphs (src/export/onnx/decode.ts, src/export/tfjs/decode.ts) take from a
 * head before writing ops: its decode spec (src/yolo/heads.ts, the same as src/yolo/decode.ts uses), the
 * refusals, the entry layout per head kind, the cell grid and the anchors in input pixels.
 */
import type { CfgError } from '../darknet/cfg.js';
import type { AnyLayer } from '../darknet/registry.js';
import type { HeadSpec } from '../yolo/decode.js';
import { headFromLayer, isHeadLayer } from '../yolo/heads.js';

export interface DecodePlan {
  spec: HeadSpec;
  kind: 'yolo' | 'Gaussian_yolo' | 'region';
  /** anchors, classes, entries per anchor (5 + C; 9 + C for [Gaussian_yolo]) */
  A: number;
  C: number;
  E: number;
  H: number;
  W: number;
  /** scale_x_y (1 for [region]) */
  scale: number;
  /** [H·W][2]: each cell's x, y */
  grid: number[];
  /** [A][2]: anchors in input pixels ([region]: grid cells times the cell size; new_coords: 4·anchor) */
  anchors: number[];
  /** entries of x, y; of w, h; of the objectness */
  xy: number[];
  wh: number[];
  obj: number;
}

/** The plan of head `l`, or `refuse(l, why)` thrown for a head --decode cannot write. */
export function decodePlan(l: AnyLayer, net: { width: number; height: number }, refuse: (l: AnyLayer, why: string) => CfgError): DecodePlan {
  if (!isHeadLayer(l)) throw refuse(l, `--decode handles [yolo], [Gaussian_yolo] and [region] heads, not [${l.kind}]`);
  let spec: HeadSpec;
  try {
    spec = headFromLayer(l).spec;
  } catch (e) {
    throw refuse(l, `--decode: ${(e as Error).message}`);
  }
  if (spec.tree) throw refuse(l, '--decode: a [region] head with a class tree (tree=) gives one class per box from the tree walk, not per-class rows; export without --decode');
  const kind = (spec.kind ?? 'yolo') as DecodePlan['kind'];
  const A = spec.anchors.length / 2;
  const C = spec.classes;
  const gaussian = kind === 'Gaussian_yolo';
  const { h: H, w: W } = l.input;
  const grid: number[] = [];
  for (let c = 0; c < H * W; c++) grid.push(c % W, Math.floor(c / W));
  const anchors: number[] = [];
  for (let a = 0; a < A; a++) {
    const [aw, ah] = [spec.anchors[2 * a], spec.anchors[2 * a + 1]];
    if (kind === 'region') anchors.push((aw * net.width) / W, (ah * net.height) / H);
    else if (spec.newCoords) anchors.push(4 * aw, 4 * ah);
    else anchors.push(aw, ah);
  }
  return {
    spec, kind, A, C, E: (gaussian ? 9 : 5) + C, H, W, scale: kind === 'region' ? 1 : spec.scaleXY ?? 1, grid, anchors,
    xy: gaussian ? [0, 2] : [0, 1], wh: gaussian ? [4, 6] : [2, 3], obj: gaussian ? 8 : 4,
  };
}
