/**
 * Darknet [route] (kernels/concat.wgsl): channel concatenation of N NCHW inputs with AlexeyAB's
 * groups/group_id slicing (route_layer.c: each input contributes its part input_size/groups starting at
 * group_id*part, i.e. channels [group_id*C/groups, (group_id+1)*C/groups)).
 *
 * The forward is buffer copies (Gpu.copy: per input and image, its slice is one contiguous range of the input
 * and of the output), which lavapipe runs as a memcpy: the copy kernel (concat.wgsl fwd, two run-time
 * divisions, a load and a store per value) took 10-18% of yolov4-tiny's and yolov7-tiny's inference once the
 * convolutions had become fast. The backward copies too, where an input's gradient is its slice whole
 * (groups = 1); with groups it is the kernel (concat.wgsl bwd: zeros outside the slice).
 * f16 inputs (inference) are copied the same way where every byte offset and length is a multiple of 4, i.e.
 * an even number of halves; otherwise (odd channel counts of an odd-sized map) by concat.wgsl fwd with ST=f16.
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { fill } from './elementwise.js';

const WG = 256;

export interface ConcatOptions {
  /** Darknet `groups` (default 1): every input's channels are split into this many equal groups. */
  groups?: number;
  /** Darknet `group_id` (default 0): which group of each input is taken. */
  groupId?: number;
}

/**
 * Concatenates the channel slices of `inputs` (all [N, C_i, H, W] with equal N, H, W) along channels:
 * output [N, sum C_i/groups, H, W]. Backward copies each slice of dy back (zeros outside the slice); an
 * input listed twice gets both gradients summed by the tape.
 */
export function concat(inputs: Tensor[], opts: ConcatOptions = {}): Tensor {
  const groups = opts.groups ?? 1;
  const groupId = opts.groupId ?? 0;
  if (inputs.length === 0) throw new Error('concat: no inputs');
  if (!Number.isInteger(groups) || groups < 1 || !Number.isInteger(groupId) || groupId < 0 || groupId >= groups) {
    throw new Error(`concat: invalid groups ${groups} / group_id ${groupId}`);
  }
  const first = inputs[0];
  for (const t of inputs) {
    if (t.shape.length !== 4) throw new Error(`concat: expected NCHW tensors, got ${t.describe()}`);
    if (t.shape[0] !== first.shape[0] || t.shape[2] !== first.shape[2] || t.shape[3] !== first.shape[3]) {
      throw new Error(`concat: batch/spatial sizes differ: ${first.describe()} vs ${t.describe()}`);
    }
    if (t.shape[1] % groups !== 0) throw new Error(`concat: ${t.describe()} has ${t.shape[1]} channels, not divisible by groups ${groups}`);
    if (t.dtype !== first.dtype) throw new Error(`concat: storage types differ: ${first.describe()} is ${first.dtype}, ${t.describe()} ${t.dtype}`);
  }
  const [N, , H, W] = first.shape;
  const hw = H * W;
  const slices = inputs.map((t) => ({ cIn: t.shape[1], cCount: t.shape[1] / groups, cStart: (groupId * t.shape[1]) / groups }));
  const cOut = slices.reduce((s, v) => s + v.cCount, 0);
  const y = Tensor.like(first, [N, cOut, H, W]);
  const gpu = first.gpu;
  // bytes per value: f16 halves the byte offsets, and a copy needs them (and its size) multiples of 4
  const e = first.dtype === 'f16' ? 2 : 4;
  let off = 0;
  const offsets: number[] = [];
  inputs.forEach((t, k) => {
    const sl = slices[k];
    offsets.push(off);
    const aligned = e === 4 || (sl.cIn * hw % 2 === 0 && sl.cStart * hw % 2 === 0 && cOut * hw % 2 === 0 && off * hw % 2 === 0 && sl.cCount * hw % 2 === 0);
    if (aligned) {
      for (let b = 0; b < N; b++) gpu.copy(t, e * (b * sl.cIn + sl.cStart) * hw, y, e * (b * cOut + off) * hw, e * sl.cCount * hw);
    } else {
      const n = N * sl.cCount * hw;
      gpu.dispatch({ file: 'concat', entry: 'fwd', defines: storageDefines(t.dtype), constants: { WG } }, { n, hw, cIn: sl.cIn, cStart: sl.cStart, cCount: sl.cCount, cOut, cOffset: off }, { 1: t, 2: y }, gpu.grid(n, WG));
    }
    off += sl.cCount;
  });
  Tape.push({
    op: groups > 1 ? `concat:groups${groups}:${groupId}` : 'concat', inputs: [...inputs], outputs: [y], saved: [],
    backward: ([g]) => inputs.map((t, k) => {
      if (!t.requiresGrad) return null;
      const sl = slices[k];
      const dx = new Tensor(gpu, t.shape);
      // an input's gradient is its slice of g: per image one contiguous range, copied (training is f32); with
      // groups the rest of its channels are zeros (filled first; the kernel's per-value index divisions were
      // 3-4x slower on lavapipe)
      if (groups > 1) fill(dx, 0);
      for (let b = 0; b < N; b++) gpu.copy(g!, 4 * (b * cOut + offsets[k]) * hw, dx, 4 * (b * sl.cIn + sl.cStart) * hw, 4 * sl.cCount * hw);
      return dx;
    }),
  });
  return y;
}

/** Darknet's name for concat. */
export const route = concat;
