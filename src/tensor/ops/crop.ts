/**
 * Darknet [crop] at inference (kernels/crop.wgsl): the centred outH x outW window of every plane, times
 * `scale` plus `trans`. Forward only (not recordable for training).
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export function centerCrop(x: Tensor, outH: number, outW: number, scale = 1, trans = 0): Tensor {
  if (Tape.wants([x])) throw new Error('centerCrop: backward is not implemented; it cannot be recorded for training');
  if (x.shape.length !== 4) throw new Error(`centerCrop: expected NCHW input, got ${x.describe()}`);
  const [B, C, H, W] = x.shape;
  if (outH > H || outW > W || outH < 1 || outW < 1) throw new Error(`centerCrop: cannot crop ${outW} x ${outH} from ${x.describe()}`);
  const dh = Math.trunc((H - outH) / 2);
  const dw = Math.trunc((W - outW) / 2);
  const y = new Tensor(x.gpu, [B, C, outH, outW]);
  x.gpu.dispatch({ file: 'crop', entry: 'fwd', constants: { WG } }, { n: y.size, H, W, OH: outH, OW: outW, dh, dw, scale, trans }, { 1: x, 2: y }, x.gpu.grid(y.size, WG));
  return y;
}
