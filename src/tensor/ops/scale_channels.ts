/**
 * Darknet [scale_channels] (kernels/scale_channels.wgsl): out = s * f with s broadcast over H*W
 * (s: [B, C, 1, 1]) or, with `wh`, over channels (s: [B, 1, H, W]); f: [B, C, H, W]. Forward and backward.
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;

export function scaleChannels(s: Tensor, f: Tensor, wh = false): Tensor {
  if (f.shape.length !== 4 || s.shape.length !== 4) throw new Error(`scaleChannels: expected NCHW tensors, got ${s.describe()} and ${f.describe()}`);
  const [B, C, H, W] = f.shape;
  const want = wh ? [B, 1, H, W] : [B, C, 1, 1];
  if (s.shape.some((d, i) => d !== want[i])) throw new Error(`scaleChannels: scale ${s.describe()} does not broadcast to ${f.describe()} (expected [${want.join(', ')}])`);
  const gpu = f.gpu;
  const hw = H * W;
  const p = (n: number) => ({ n, hw, chw: C * hw, wh: wh ? 1 : 0 });
  // per-channel scales on planes of whole vec4s: the vec4 entries (the same products)
  const v4 = !wh && hw % 4 === 0;
  const n = v4 ? f.size / 4 : f.size;
  const y = new Tensor(gpu, f.shape);
  gpu.dispatch({ file: 'scale_channels', entry: v4 ? 'fwd4' : 'fwd', constants: { WG } }, p(n), { 1: s, 2: f, 3: y }, gpu.grid(n, WG));
  Tape.push({
    op: `scaleChannels${wh ? ':wh' : ''}`, inputs: [s, f], outputs: [y], saved: [s, f],
    backward: ([g]) => {
      let ds: Tensor | null = null;
      let df: Tensor | null = null;
      if (s.requiresGrad) {
        ds = new Tensor(gpu, s.shape);
        gpu.dispatch({ file: 'scale_channels', entry: 'bwd_scale', constants: { WG } }, p(s.size), { 2: f, 3: ds, 4: g! }, gpu.grid(s.size, WG));
      }
      if (f.requiresGrad) {
        df = new Tensor(gpu, f.shape);
        gpu.dispatch({ file: 'scale_channels', entry: v4 ? 'bwd_from4' : 'bwd_from', constants: { WG } }, p(n), { 1: s, 3: df, 4: g! }, gpu.grid(n, WG));
      }
      return [ds, df];
    },
  });
  return y;
}
