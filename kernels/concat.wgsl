// Darknet [route] (route_layer.c, AlexeyAB groups/group_id): channel concatenation of N inputs, each
// contributing its channel slice [cStart, cStart + cCount) (cStart = group_id*C/groups, cCount = C/groups).
// The forward, dst[n, cOffset + k, s] = src[n, cStart + k, s], and the backward (an input's gradient: its
// slice of the output's gradient, zeros in its other channels) are buffer copies (src/tensor/ops/concat.ts:
// one contiguous range per input and image, a memcpy on lavapipe). This kernel is the exception, one dispatch
// per input:
//   fwd: dst[n, cOffset + k, s] = src[n, cStart + k, s], k < cCount: the forward of an f16 input whose slices
//        a buffer copy cannot move (copies need 4-byte offsets and sizes: an odd number of halves)
// cIn = channels of the input, cOut = channels of the concat output. n = number of elements written.
// ST: the storage type of src and dst (f32, or f16 for inference: docs/kernels.md "f16 storage").

alias ST = {{ST}};
struct Params { n: u32, hw: u32, cIn: u32, cStart: u32, cCount: u32, cOut: u32, cOffset: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<ST>;
@group(0) @binding(2) var<storage, read_write> dst: array<ST>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let s = i % P.hw;
  let t = i / P.hw;
  let k = t % P.cCount;
  let b = t / P.cCount;
  dst[(b * P.cOut + P.cOffset + k) * P.hw + s] = src[(b * P.cIn + P.cStart + k) * P.hw + s];
}
