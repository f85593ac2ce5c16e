/**
 * Darknet [crop] at inference (kernels/crop.wgsl): the centred outH x outW window of every plane, times
 * `scale` plus `trans`. Recorded on the tape: the backward is the transpose of that fixed window,
 * dx = scale * dy inside it and 0 outside (the engine's [crop] takes the centred window in training too).
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export function centerCrop(x: Tensor, outH: number, outW: number, scale = 1, trans = 0): Tensor {
  if (x.shape.length !== 4) throw new Error(`centerCrop: expected NCHW input, got ${x.describe()}`);
  const [B, C, H, W] = x.shape;
  if (outH > H || outW > W || outH < 1 || outW < 1) throw new Error(`centerCrop: cannot crop ${outW} x ${outH} from ${x.describe()}`);
  const dh = Math.trunc((H - outH) / 2);
  const dw = Math.trunc((W - outW) / 2);
  const gpu = x.gpu;
  const params = (n: number) => ({ n, H, W, OH: outH, OW: outW, dh, dw, scale, trans });
  const y = new Tensor(gpu, [B, C, outH, outW]);
  gpu.dispatch({ file: 'crop', entry: 'fwd', constants: { WG } }, params(y.size), { 1: x, 2: y }, gpu.grid(y.size, WG));
  Tape.push({
    op: `crop:${outH}x${outW}`, inputs: [x], outputs: [y], saved: [],
    backward: ([dy]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'crop', entry: 'bwd', constants: { WG } }, params(dx.size), { 3: dy!, 4: dx }, gpu.grid(dx.size, WG));
      return [dx];
    },
  });
  return y;
}
