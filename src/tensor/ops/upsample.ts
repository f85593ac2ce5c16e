/**
 * Darknet [upsample] (kernels/upsample.wgsl): nearest-neighbour by an integer stride with the optional
 * `scale` multiplier (upsample_layer.c). A negative stride is Darknet's reverse mode: the output is the
 * input shrunk by |stride|, each output value the scaled sum of its |stride| x |stride| block.
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export interface UpsampleOptions {
  /** Darknet `scale` (default 1): multiplies every output value. */
  scale?: number;
}

function dims(x: Tensor): [number, number, number] {
  if (x.shape.length !== 4) throw new Error(`upsample: expected an NCHW tensor, got ${x.describe()}`);
  const [n, c, h, w] = x.shape;
  return [n * c, h, w];
}

/** big = scale * nearest(small) over planes of small size h x w. */
function expand(small: Tensor, big: Tensor, planes: number, h: number, w: number, s: number, scale: number): void {
  const n = planes * h * w * s * s;
  small.gpu.dispatch({ file: 'upsample', entry: 'expand', defines: storageDefines(small.dtype), constants: { WG } }, { n, w, h, s, scale }, { 1: small, 2: big }, small.gpu.grid(n, WG));
}

/** small = scale * (sum over each s x s block of big). */
function reduce(big: Tensor, small: Tensor, planes: number, h: number, w: number, s: number, scale: number): void {
  const n = planes * h * w;
  big.gpu.dispatch({ file: 'upsample', entry: 'reduce', defines: storageDefines(big.dtype), constants: { WG } }, { n, w, h, s, scale }, { 1: big, 2: small }, big.gpu.grid(n, WG));
}

/**
 * y[n, c, y, x] = scale * x[n, c, y/stride, x/stride]: shape [N, C, H*stride, W*stride] (stride >= 1).
 * stride <= -1 (reverse): shape [N, C, H/s, W/s] with s = -stride (H, W must be multiples of s), the
 * scaled block sums. Backward: the transpose (block sums of dy for upsampling, nearest expansion for reverse).
 */
export function upsample(x: Tensor, stride: number, opts: UpsampleOptions = {}): Tensor {
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(stride) || stride === 0) throw new Error(`upsample: stride must be a non-zero integer, got ${stride}`);
  const [planes, h, w] = dims(x);
  const [N, C] = x.shape;
  const s = Math.abs(stride);
  const reverse = stride < 0;
  if (reverse && (h % s !== 0 || w % s !== 0)) throw new Error(`upsample: reverse stride ${s} needs H and W divisible by ${s}, got ${x.describe()}`);
  // small plane size
  const sh = reverse ? h / s : h;
  const sw = reverse ? w / s : w;
  const y = Tensor.like(x, reverse ? [N, C, sh, sw] : [N, C, h * s, w * s]); // f32, or f16 at inference
  if (reverse) reduce(x, y, planes, sh, sw, s, scale);
  else expand(x, y, planes, sh, sw, s, scale);
  Tape.push({
    op: `upsample:${stride}`, inputs: [x], outputs: [y], saved: [],
    backward: ([g]) => {
      const dx = new Tensor(x.gpu, x.shape);
      if (reverse) expand(g!, dx, planes, sh, sw, s, scale);
      else reduce(g!, dx, planes, sh, sw, s, scale);
      return [dx];
    },
  });
  return y;
}
