/**
 * One forward + backward of a batchnorm op (test/kernels/batchnorm_act.test.ts, batchnorm_maxpool.test.ts):
 * x, gamma and beta as parameters, running statistics 0.25 / 1.5, the op recorded on a tape and dz fed to
 * its output. Returns the output, the three gradients, the updated running statistics and how many
 * dispatches the forward and the backward recorded.
 */
import * as assert from 'uvu/assert';
import { getGpu } from './gpu.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import type { BatchnormState } from '../../src/tensor/ops/batchnorm.js';

export interface BnRun {
  z: Float32Array;
  dx: Float32Array;
  dg: Float32Array;
  db: Float32Array;
  rm: Float32Array;
  rv: Float32Array;
  /** Dispatches of the forward and of the backward. */
  forward: number;
  backward: number;
}

export interface BnData {
  xv: Float32Array;
  gv: Float32Array;
  bv: Float32Array;
  dzv: Float32Array;
}

export async function runBn(shape: number[], outShape: number[], d: BnData, op: (x: Tensor, gamma: Tensor, beta: Tensor, state: BatchnormState) => Tensor): Promise<BnRun> {
  const gpu = await getGpu();
  const C = shape[1];
  const x = Tensor.param(gpu, shape, d.xv);
  const gamma = Tensor.param(gpu, [C], d.gv);
  const beta = Tensor.param(gpu, [C], d.bv);
  const state: BatchnormState = { runningMean: Tensor.from(gpu, [C], new Float32Array(C).fill(0.25)), runningVar: Tensor.from(gpu, [C], new Float32Array(C).fill(1.5)) };
  const dz = Tensor.from(gpu, outShape, d.dzv);
  const tape = newTape();
  await gpu.sync();
  const d0 = gpu.dispatches;
  const z = tape.record(() => op(x, gamma, beta, state));
  const forward = gpu.dispatches - d0;
  assert.equal([...z.shape], outShape);
  const zz = await z.toArray();
  const d1 = gpu.dispatches;
  tape.backward(z, dz);
  const backward = gpu.dispatches - d1;
  const out = { z: zz, dx: await x.grad!.toArray(), dg: await gamma.grad!.toArray(), db: await beta.grad!.toArray(), rm: await state.runningMean.toArray(), rv: await state.runningVar.toArray(), forward, backward };
  for (const t of [z, dz, x.grad!, gamma.grad!, beta.grad!, x, gamma, beta, state.runningMean, state.runningVar]) t.dispose();
  tape.dispose();
  return out;
}
