/**
 * Darknet [local] (kernels/local.wgsl): locally connected layer, forward and backward. The backward is the
 * exact gradient of the forward (dx, dweights, dbiases; Darknet's backward_local_layer computes the same
 * sums on its delta, which is minus the gradient), each gradient element computed by one invocation (gather
 * form, no atomics).
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
 * writes channels [channelOffset, channelOffset + filters) of out.dst [B, Ntot, OH, OW] instead (inference
 * in filter chunks: not recordable, a chunked layer has no gradients).
 * Recorded on the tape when an input requires grad: dx (when x does), dw and dbias.
 */
export function local(x: Tensor, w: Tensor, bias: Tensor, g: LocalGeometry, out?: { dst: Tensor; channelOffset: number }): Tensor {
  if (x.shape.length !== 4) throw new Error(`local: expected NCHW input, got ${x.describe()}`);
  const [B, C, H, W] = x.shape;
  const L = g.outH * g.outW;
  const nw = L * g.filters * C * g.size * g.size;
  if (w.size !== nw) throw new Error(`local: weights ${w.describe()} have ${w.size} values, expected ${nw}`);
  if (bias.size !== g.filters * L) throw new Error(`local: bias ${bias.describe()} has ${bias.size} values, expected ${g.filters * L}`);
  const record = Tape.wants([x, w, bias]);
  if (out && record) throw new Error('local: writing into channels of another tensor (filter chunks) is inference only; it cannot be recorded for training');
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
  const gpu = x.gpu;
  const params = (n: number) => ({ n, B, C, H, W, N: g.filters, OH: g.outH, OW: g.outW, K: g.size, S: g.stride, P: g.pad, Ntot: y.shape[1], Coff: off });
  const n = B * g.filters * L;
  gpu.dispatch({ file: 'local', entry: 'fwd', constants: { WG } }, params(n), { 1: x, 2: w, 3: bias, 4: y }, gpu.grid(n, WG));
  if (!record) return y;
  Tape.push({
    op: `local:${g.size}/${g.stride}p${g.pad}`, inputs: [x, w, bias], outputs: [y], saved: [],
    backward: ([dy]) => {
      const grads: (Tensor | null)[] = [null, null, null];
      if (x.requiresGrad) {
        const dx = new Tensor(gpu, x.shape);
        gpu.dispatch({ file: 'local', entry: 'bwd_input', constants: { WG } }, params(dx.size), { 2: w, 5: dy!, 6: dx }, gpu.grid(dx.size, WG));
        grads[0] = dx;
      }
      if (w.requiresGrad) {
        const dw = new Tensor(gpu, w.shape);
        gpu.dispatch({ file: 'local', entry: 'bwd_weights', constants: { WG } }, params(dw.size), { 1: x, 5: dy!, 6: dw }, gpu.grid(dw.size, WG));
        grads[1] = dw;
      }
      if (bias.requiresGrad) {
        const db = new Tensor(gpu, bias.shape);
        gpu.dispatch({ file: 'local', entry: 'bwd_bias', constants: { WG } }, params(db.size), { 5: dy!, 6: db }, gpu.grid(db.size, WG));
        grads[2] = db;
      }
      return grads;
    },
  });
  return y;
}
