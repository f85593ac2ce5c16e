/**
 * Storage casts float32 <-> float16 (kernels/cast.wgsl), inference only (not recorded): what Network.forward
 * puts in front of a layer without an f16 variant and behind it, around the network's input and outputs
 * (docs/kernels.md "f16 storage"). f32 -> f16 rounds to a neighbouring half (WGSL leaves the direction to
 * the implementation: at most one half ulp, 2^-10 relative); f16 -> f32 is exact.
 */
import { storageDefines } from '../../gpu/device.js';
import { Tensor, type DType } from '../tensor.js';

const WG = 256;

/** x stored as `dtype`: x itself when it already is, else a new tensor (the caller disposes it). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const gpu = x.gpu;
  const y = new Tensor(gpu, x.shape, x.name, undefined, dtype);
  // vec4 form when the size allows (4 values per storage access)
  const n = x.size % 4 === 0 ? x.size / 4 : x.size;
  const entry = `${dtype === 'f16' ? 'to_st' : 'from_st'}${n === x.size ? '' : '4'}`;
  gpu.dispatch({ file: 'cast', entry, defines: storageDefines('f16'), constants: { WG } }, { n }, { 1: x, 2: y }, gpu.grid(n, WG));
  return y;
}
