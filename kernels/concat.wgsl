// Darknet [route] (route_layer.c, AlexeyAB groups/group_id): channel concatenation of N inputs, each
// contributing its channel slice [cStart, cStart + cCount) (cStart = group_id*C/groups, cCount = C/groups).
// The forward, dst[n, cOffset + k, s] = src[n, cStart + k, s], is buffer copies (src/tensor/ops/concat.ts:
// one contiguous range per input and image, a memcpy on lavapipe). One dispatch per input:
//   bwd: dst[n, c, s] = src[n, cOffset + c - cStart, s] if c in the slice, else 0   (the input's gradient,
//        written whole so no fill is needed; src is the concat output's gradient)
// cIn = channels of the input, cOut = channels of the concat output. n = number of elements written.

struct Params { n: u32, hw: u32, cIn: u32, cStart: u32, cCount: u32, cOut: u32, cOffset: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let s = i % P.hw;
  let t = i / P.hw;
  let c = t % P.cIn;
  let b = t / P.cIn;
  var v = 0.0;
  if (c >= P.cStart && c < P.cStart + P.cCount) {
    v = src[(b * P.cOut + P.cOffset + c - P.cStart) * P.hw + s];
  }
  dst[i] = v;
}
