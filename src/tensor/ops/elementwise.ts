/** Elementwise ops (kernels/elementwise.wgsl): fill, axpy, add, scale, mul, with their backward. */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';

const WG = 256;
const K = (entry: string) => ({ file: 'elementwise', entry, constants: { WG } });

function sameSize(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: size mismatch ${a.describe()} vs ${b.describe()}`);
}

/** out[:] = value, in stream order. */
export function fill(t: Tensor, value: number): Tensor {
  t.gpu.dispatch(K('fill'), { n: t.size, alpha: value, beta: 0 }, { 3: t }, t.gpu.grid(t.size, WG));
  return t;
}

export function zeros(gpu: Tensor['gpu'], shape: readonly number[], name = ''): Tensor {
  return fill(new Tensor(gpu, shape, name), 0);
}

export function full(gpu: Tensor['gpu'], shape: readonly number[], value: number, name = ''): Tensor {
  return fill(new Tensor(gpu, shape, name), value);
}

/** into += alpha * x (in place, not recorded: used by the tape and optimizers). */
export function axpyInPlace(into: Tensor, x: Tensor, alpha = 1): void {
  sameSize('axpy', into, x);
  const n = into.size;
  into.gpu.dispatch(K(n % 4 === 0 ? 'axpy4' : 'axpy'), { n, alpha, beta: 0 }, { 1: x, 3: into }, into.gpu.grid(n % 4 === 0 ? n / 4 : n, WG));
}

/** alpha * a + beta * b (same shape), recorded. */
export function lincomb(a: Tensor, b: Tensor, alpha = 1, beta = 1): Tensor {
  sameSize('lincomb', a, b);
  const out = new Tensor(a.gpu, a.shape);
  a.gpu.dispatch(K('lincomb'), { n: a.size, alpha, beta }, { 1: a, 2: b, 3: out }, a.gpu.grid(a.size, WG));
  Tape.push({
    op: 'lincomb', inputs: [a, b], outputs: [out], saved: [],
    backward: ([g]) => [a.requiresGrad ? scale(g!, alpha) : null, b.requiresGrad ? scale(g!, beta) : null],
  });
  return out;
}

export const add = (a: Tensor, b: Tensor) => lincomb(a, b, 1, 1);
export const sub = (a: Tensor, b: Tensor) => lincomb(a, b, 1, -1);

/** alpha * a, recorded. */
export function scale(a: Tensor, alpha: number): Tensor {
  const out = new Tensor(a.gpu, a.shape);
  a.gpu.dispatch(K('scale'), { n: a.size, alpha, beta: 0 }, { 1: a, 3: out }, a.gpu.grid(a.size, WG));
  Tape.push({ op: 'scale', inputs: [a], outputs: [out], saved: [], backward: ([g]) => [scale(g!, alpha)] });
  return out;
}

/** alpha * a * b elementwise, recorded. */
export function mul(a: Tensor, b: Tensor, alpha = 1): Tensor {
  sameSize('mul', a, b);
  const out = new Tensor(a.gpu, a.shape);
  a.gpu.dispatch(K('mul'), { n: a.size, alpha, beta: 0 }, { 1: a, 2: b, 3: out }, a.gpu.grid(a.size, WG));
  Tape.push({
    op: 'mul', inputs: [a, b], outputs: [out], saved: [a, b],
    backward: ([g]) => [a.requiresGrad ? mul(g!, b, alpha) : null, b.requiresGrad ? mul(g!, a, alpha) : null],
  });
  return out;
}

/** A copy of t (not recorded). */
export function clone(t: Tensor): Tensor {
  const out = new Tensor(t.gpu, t.shape, t.name);
  t.gpu.copy(t, 0, out, 0, t.bytes);
  return out;
}
