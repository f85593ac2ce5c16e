export { Tensor, shapeSize, shapeStr, storageBytes, type DType } from './tensor.js';
export { cast } from './ops/cast.js';
export { Tape, type TapeNode } from './tape.js';
export * from './ops/elementwise.js';
export * from './ops/activation.js';
export * from './ops/conv2d.js';
export * from './ops/matmul.js';
export * from './ops/batchnorm.js';
export * from './ops/pool.js';
export * from './ops/upsample.js';
export * from './ops/concat.js';
export * from './ops/shortcut.js';
export * from './ops/reduce.js';
export * from './ops/loss.js';
export * from './ops/optim.js';

import { Tape } from './tape.js';
import { axpyInPlace, clone, full } from './ops/elementwise.js';

/** A new autograd tape whose gradients accumulate with the elementwise kernels. */
export function newTape(): Tape {
  return new Tape({ accumulate: (into, add) => axpyInPlace(into, add, 1), ones: (t) => full(t.gpu, t.shape, 1), clone });
}
export * from './ops/dropout.js';
