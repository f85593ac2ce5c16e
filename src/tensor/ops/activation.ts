/** Darknet activations (kernels/activation.wgsl), forward and backward; the forward also on f16 tensors. */
import { storageDefines } from '../../gpu/device.js';
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { ACTIVATIONS, ACT_CODE, type Activation } from './act_codes.js';

// The codes' one table (also generated into the WGSL as ACT_* constants).
export { ACTIVATIONS, ACT_CODE, type Activation };

const WG = 256;

export function activationCode(a: Activation): number {
  const c = ACT_CODE[a];
  if (c === undefined) throw new Error(`unknown activation '${a}' (supported: ${ACTIVATIONS.join(', ')})`);
  return c;
}

/** y = act(x) (y stored as x is: f32, or f16 at inference). */
export function activation(x: Tensor, act: Activation): Tensor {
  if (act === 'linear') return x;
  const code = activationCode(act);
  const y = Tensor.like(x);
  // vec4 form when the size allows (4 values per storage access)
  const n = x.size % 4 === 0 ? x.size / 4 : x.size;
  x.gpu.dispatch({ file: 'activation', entry: n === x.size ? 'fwd' : 'fwd4', defines: storageDefines(x.dtype), constants: { WG, ACT: code } }, { n }, { 1: x, 2: y }, x.gpu.grid(n, WG));
  Tape.push({ op: `activation:${act}`, inputs: [x], outputs: [y], saved: [x], backward: ([g]) => [activationBackward(x, g!, act)] });
  return y;
}

/** dx = dy * act'(x). */
export function activationBackward(x: Tensor, dy: Tensor, act: Activation): Tensor {
  const code = activationCode(act);
  const dx = new Tensor(x.gpu, x.shape);
  const n = x.size % 4 === 0 ? x.size / 4 : x.size;
  x.gpu.dispatch({ file: 'activation', entry: n === x.size ? 'bwd' : 'bwd4', constants: { WG, ACT: code } }, { n }, { 1: x, 2: dx, 3: dy }, x.gpu.grid(n, WG));
  return dx;
}
