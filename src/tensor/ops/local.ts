/**
 * Darknet [local] (kernels/local.wgsl): locally connected layer, forward only (its backward is not
 * implemented yet: recording it on a tape with inputs that need gradients is an error).
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 64;

export interface LocalGeometry {
  size: number;
  stride: number;
  /** Zero padding per side (Darknet passes its `pad` value to im2col). */
  pad: number;
  filters: number;
  outH: number;
  outW: number;
}

/**
 * x [B, C, H, W], w [OH*OW, filters, C*size*size], bias [filters*OH*OW] -> [B, filters, OH, OW]; with `out`,
 * writes channels [channelOffset, channelOffset + filters) of out.dst [B, Ntot, OH, OW] instead.
 */
export function local(x: Tensor, w: Tensor, bias: Tensor, g: LocalGeometry, out?: { dst: Tensor; channelOffset: number }): Tensor {
  if (Tape.wants([x, w, bias])) throw new Error('local: backward is not implemented; it cannot be recorded for training');
  if (x.shape.length !== 4) throw new Error(`local: expected NCHW input, got ${x.describe()}`);
  const [B, C, H, W] = x.shape;
  const L = g.outH * g.outW;
  const nw = L * g.filters * C * g.size * g.size;
  if (w.size !== nw) throw new Error(`local: weights ${w.describe()} have ${w.size} values, expected ${nw}`);
  if (bias.size !== g.filters * L) throw new Error(`local: bias ${bias.describe()} has ${bias.size} values, expected ${g.filters * L}`);
  let y: Tensor;
  let off = 0;
  if (out) {
    const d = out.dst.shape;
    off = out.channelOffset;
    if (d.length !== 4 || d[0] !== B || d[2] !== g.outH || d[3] !== g.outW || off < 0 || off + g.filters > d[1]) {
      throw new Error(`local: channels [${off}, ${off + g.filters}) of ${out.dst.describe()} do not fit [${B}, C, ${g.outH}, ${g.outW}]`);
    }
    y = out.dst;
  } else y = new Tensor(x.gpu, [B, g.filters, g.outH, g.outW]);
  const n = B * g.filters * L;
  x.gpu.dispatch({ file: 'local', entry: 'fwd', constants: { WG } }, { n, C, H, W, N: g.filters, OH: g.outH, OW: g.outW, K: g.size, S: g.stride, P: g.pad, Ntot: y.shape[1], Coff: off }, { 1: x, 2: w, 3: bias, 4: y }, x.gpu.grid(n, WG));
  return y;
}
