{{ENABLE}}
// @defaults ENABLE= SGB=/* SGE=*/ SG=8 TM=16 HW4=0
// Pointwise convolution forward: a 1x1 conv with stride 1, no padding and one group, float32, as a matrix
// product per image, y[b] = act(W x[b] + bias) with W [Cout, Cin] and x[b] [Cin, H*W]: the `tile`
// algorithm's kernel for these shapes on adapters with subgroups of one fixed size (src/tensor/ops/conv2d.ts
// pointwiseSupported), where conv2d_tile.wgsl would run them as one flattened row of pixels.
//
// It is matmul.wgsl's regsg with the conv's epilogue. The workgroup is one subgroup; each lane owns one vec4
// of neighbouring pixels (workgroup_id.x) and TM output channels (workgroup_id.y), image workgroup_id.z. Per 4
// input channels every lane loads TM/SG vec4 of weights (row m, channels c..c+3) and receives the others'
// with subgroupShuffle, and 4 vec4 of pixels (one per channel). Where H*W % 4 != 0 a channel's 4 pixels
// straddle two aligned vec4, taken apart by a swizzle whose offset is a constant of the pipeline (HW4 =
// H*W % 4; docs/kernels.md "Pointwise convs"); the components past the map's end are never stored. Each
// accumulator takes its 4 channels in a row (on lavapipe the accumulators live on the stack: one read and
// one write of it per 4 FMAs; docs/kernels.md).
//
// Summation order per output: acc = fma(w, x, acc) over the input channels in order from 0, then + bias,
// then the activation, as conv2d_tile.wgsl computes a 1x1 conv: the same outputs bit for bit (the tests
// compare the two exactly).
// Epilogue: written to channel Coff + m of a destination with Ctot channels (route/concat slices).
// The op passes ENABLE = 'enable subgroups;' and empty SGB / SGE; their defaults (empty, and a block comment
// around the entry point) keep the module valid WGSL on devices without subgroups, as matmul.wgsl's regsg.

// #include "lib/conv_params.wgsl"
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> w4: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const SG: u32 = {{SG}}u;     // the subgroup size: the workgroup
const TM: u32 = {{TM}}u;     // output channels per workgroup, a multiple of SG
const RA: u32 = TM / SG;     // weight rows each lane loads per step
const HW4: u32 = {{HW4}}u;    // H*W % 4

// #include "lib/act.wgsl"

{{SGB}}
@compute @workgroup_size(SG)
fn fwd(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) sgl: u32) {
  let hw = P.H * P.W;
  let N4 = (hw + 3u) / 4u;
  let K4 = P.Cin / 4u;
  let b = wid.z;
  let m0 = wid.y * TM;
  // Lanes past the last vec4 of pixels compute a copy of it (uniform control flow for the shuffles) and
  // store nothing. The rows of W a lane loads are the ones subgroupShuffle(., l) fetches from lane l.
  let c4 = (wid.x + P.t0) * SG + lid.x;
  let cc = min(c4, N4 - 1u);
  var aoff: array<u32, RA>;
  for (var q = 0u; q < RA; q++) { aoff[q] = min(m0 + q * SG + sgl, P.Cout - 1u) * K4; }
  let last4 = arrayLength(&x4) - 1u;
  var acc: array<vec4f, TM>;
  var av: array<vec4f, RA>;
  var bv: array<vec4f, 4>;
  var xo = b * P.Cin * hw;
  for (var k4 = 0u; k4 < K4; k4++) {
    for (var q = 0u; q < RA; q++) { av[q] = w4[aoff[q] + k4]; }
    for (var kk = 0u; kk < 4u; kk++) {
      // The 4 pixels from the one or two aligned vec4 around them. Their offset within a vec4 is the same for
      // every lane and, since Cin % 4 == 0, depends only on kk and H*W % 4 (HW4): a constant.
      let r = (kk * HW4) % 4u;
      let a = xo / 4u + cc;
      let v0 = x4[a];
      if (r == 0u) {
        bv[kk] = v0;
      } else {
        let v1 = x4[min(a + 1u, last4)];
        if (r == 1u) { bv[kk] = vec4f(v0.yzw, v1.x); }
        if (r == 2u) { bv[kk] = vec4f(v0.zw, v1.xy); }
        if (r == 3u) { bv[kk] = vec4f(v0.w, v1.xyz); }
      }
      xo += hw;
    }
    // Two short loops the driver's compiler unrolls (acc must stay in registers, not per-lane indexed memory).
    for (var q = 0u; q < RA; q++) {
      for (var l = 0u; l < SG; l++) {
        let ar = subgroupShuffle(av[q], l);
        let r = q * SG + l;
        var s = acc[r];
        s = fma(vec4f(ar.x), bv[0], s);
        s = fma(vec4f(ar.y), bv[1], s);
        s = fma(vec4f(ar.z), bv[2], s);
        s = fma(vec4f(ar.w), bv[3], s);
        acc[r] = s;
      }
    }
  }
  if (c4 >= N4) { return; }
  let n = min(4u, hw - c4 * 4u);
  var base = (b * P.Ctot + P.Coff + m0) * hw + c4 * 4u;
  // Leaky and linear as conv2d_tile.wgsl's epilogue computes them (bit for bit act_code's); any other
  // activation through act_code.
  let fast = P.act == ACT_LEAKY || P.act == ACT_LINEAR;
  let k = select(1.0, 0.1, P.act == ACT_LEAKY);
  for (var r = 0u; r < TM; r++) {
    if (m0 + r >= P.Cout) { break; }
    let a = acc[r];
    let bb = bias[select(0u, m0 + r, P.has_bias != 0u)];
    for (var i = 0u; i < 4u; i++) {
      if (i >= n) { break; }
      var v: f32;
      if (fast) {
        let s = a[i] + select(0.0, bb, P.has_bias != 0u);
        v = select(k * s, s, s > 0.0);
      } else {
        v = a[i];
        if (P.has_bias != 0u) { v += bb; }
        v = act_code(v, P.act);
      }
      y[base + i] = v;
    }
    base += hw;
  }
}
{{SGE}}
