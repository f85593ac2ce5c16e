/**
 * Activations of Darknet detection heads (kernels/yolo_act.wgsl) on [B, A*E, H, W], forward and backward:
 * x, y (entries 0, 1) optionally logistic, then * scale + bias; entries [actFrom, actTo) logistic; the rest
 * unchanged. See the kernel for the [yolo] and [region] settings.
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export interface HeadActivation {
  /** Entries per anchor (yolo: 5 + classes; region: coords + 1 + classes). */
  entries: number;
  xyLogistic: boolean;
  xyScale?: number;
  xyBias?: number;
  actFrom: number;
  actTo: number;
}

export function headActivation(x: Tensor, a: HeadActivation): Tensor {
  if (x.shape.length !== 4) throw new Error(`headActivation: expected NCHW, got ${x.describe()}`);
  const [, C, H, W] = x.shape;
  if (C % a.entries !== 0) throw new Error(`headActivation: ${C} channels are not a multiple of ${a.entries} entries per anchor`);
  const gpu = x.gpu;
  // planes of whole vec4s: the vec4 entries (the same arithmetic, one entry index per four values)
  const v4 = (H * W) % 4 === 0;
  const n = v4 ? x.size / 4 : x.size;
  const p = { n, hw: H * W, E: a.entries, xyAct: a.xyLogistic ? 1 : 0, actFrom: a.actFrom, actTo: a.actTo, scale: a.xyScale ?? 1, bias: a.xyBias ?? 0 };
  // y stored as x is (f32, or f16 at inference)
  const y = Tensor.like(x);
  gpu.dispatch({ file: 'yolo_act', entry: v4 ? 'fwd4' : 'fwd', defines: storageDefines(x.dtype), constants: { WG } }, p, { 1: x, 2: y }, gpu.grid(n, WG));
  Tape.push({
    op: 'headActivation', inputs: [x], outputs: [y], saved: [x],
    backward: ([g]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'yolo_act', entry: v4 ? 'bwd4' : 'bwd', constants: { WG } }, p, { 1: x, 2: dx, 3: g! }, gpu.grid(n, WG));
      return [dx];
    },
  });
  return y;
}
