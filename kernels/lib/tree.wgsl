// A tree sum over the TREE threads of a workgroup, run by WV invocations (batchnorm.wgsl's partials,
// conv2d_direct.wgsl bwd_bias, pool.wgsl avg_fwd). The including module declares `const TREE: u32` (a power of
// two) and `override WV: u32` (a power of two, TREE / TREE_VMAX <= WV <= TREE; src/tensor/ops/reduce.ts
// treeInvocations: 8 on CPU adapters, TREE on GPUs). Invocation t holds threads t + WV*j in h[j], each summed
// on its own. The tree (thread l += thread l + s, s = TREE/2, ..., 1) adds its levels s >= WV in registers
// and the rest across the invocations, with barriers: the same additions on the same operands as TREE
// invocations would make, so the sum is the same bit for bit at every WV. Why: on lavapipe each group of 8
// invocations of a workgroup is a coroutine switched at every barrier (docs/kernels.md).

const TREE_VMAX: u32 = TREE / 8u;
var<workgroup> tree_v: array<vec2f, TREE>;

// Two sums at once (.x and .y are independent trees); thread 0's result, the same in every invocation.
fn tree_sum2(t: u32, hv: array<vec2f, TREE_VMAX>) -> vec2f {
  var h = hv;
  for (var s = TREE / WV / 2u; s > 0u; s >>= 1u) {
    for (var j = 0u; j < s; j++) { h[j] += h[j + s]; }
  }
  tree_v[t] = h[0];
  workgroupBarrier();
  for (var s = WV / 2u; s > 0u; s >>= 1u) {
    if (t < s) { tree_v[t] += tree_v[t + s]; }
    workgroupBarrier();
  }
  return tree_v[0];
}
