/**
 * Binarization for XNOR and binary-weight convolution (kernels/binarize.wgsl), Darknet
 * convolutional_layer.c / convolutional_kernels.cu:
 *   binarizeWeights(w): per filter (first dimension) wb = sign(w) * mean|w| over the filter's values
 *     (binarize_weights; `> 0` is positive, 0 gives -mean). Backward: straight-through, dw = dwb (Darknet
 *     applies the gradient computed with the binary weights to the real ones).
 *   binarizeInput(x): xb = x > 0 ? 1 : -1 (binarize_cpu). Backward: dx = dxb for -1 < x < 1, else 0
 *     (Darknet: gradient_array(original_input, HARDTAN, delta) after the conv's input gradient).
 * Both are recorded on the tape.
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { clone } from './elementwise.js';

const WG = 256;

/** wb[f, k] = w[f, k] > 0 ? mean_f : -mean_f, mean_f = mean of |w[f, :]| (w: [filters, ...]). */
export function binarizeWeights(w: Tensor): Tensor {
  const filters = w.shape[0];
  if (!(filters >= 1) || w.size % filters !== 0) throw new Error(`binarizeWeights: expected [filters, ...], got ${w.describe()}`);
  const K = w.size / filters;
  const y = new Tensor(w.gpu, w.shape, w.name ? `${w.name}.bin` : '');
  w.gpu.dispatch({ file: 'binarize', entry: 'weights_fwd', constants: { WG } }, { n: w.size, K, filters }, { 1: w, 3: y }, w.gpu.grid(filters, WG));
  if (!Tape.wants([w])) return y;
  Tape.push({ op: 'binarize:weights', inputs: [w], outputs: [y], saved: [], backward: ([dy]) => [clone(dy!)] });
  return y;
}

/** xb = x > 0 ? 1 : -1; backward dx = dxb * [-1 < x < 1]. */
export function binarizeInput(x: Tensor): Tensor {
  const gpu = x.gpu;
  const y = new Tensor(gpu, x.shape);
  gpu.dispatch({ file: 'binarize', entry: 'input_fwd', constants: { WG } }, { n: x.size, K: 1, filters: 1 }, { 1: x, 3: y }, gpu.grid(x.size, WG));
  if (!Tape.wants([x])) return y;
  Tape.push({
    op: 'binarize:input', inputs: [x], outputs: [y], saved: [x],
    backward: ([dy]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'binarize', entry: 'input_bwd', constants: { WG } }, { n: x.size, K: 1, filters: 1 }, { 1: x, 2: dy!, 3: dx }, gpu.grid(x.size, WG));
      return [dx];
    },
  });
  return y;
}
