// Darknet [scale_channels] (scale_channels_layer.c): out = s (broadcast) * f, f = the `from` layer
// [B, C, H, W] (hw = H*W, chw = C*H*W):
//   wh == 0: s is [B, C, 1, 1], idx(i) = i / hw                      (squeeze-excitation)
//   wh == 1: s is [B, 1, H, W], idx(i) = i % hw + (i / chw) * hw     (spatial attention)
// fwd:       out[i] = s[idx(i)] * f[i]
// bwd_from:  out[i] = s[idx(i)] * g[i]
// bwd_scale: ds[j] = sum of g*f over the elements that use s[j] (one invocation per j; n = size of s)

struct Params { n: u32, hw: u32, chw: u32, wh: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> f: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;

override WG: u32 = 256;

fn idx(i: u32) -> u32 {
  if (P.wh == 0u) { return i / P.hw; }
  return i % P.hw + (i / P.chw) * P.hw;
}

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] = s[idx(i)] * f[i];
}

@compute @workgroup_size(WG)
fn bwd_from(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  out[i] = s[idx(i)] * g[i];
}

// fwd4, bwd_from4: the same products four at a time where s is per channel (wh == 0) and hw % 4 == 0, so a
// vec4 lies in one channel (n = vec4s; on lavapipe a storage access costs the same at any width, and the
// channel's division is made once per vec4).
@group(0) @binding(2) var<storage, read> f4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(4) var<storage, read> g4: array<vec4f>;

@compute @workgroup_size(WG)
fn fwd4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * WG;
  if (q >= P.n) { return; }
  out4[q] = s[(q * 4u) / P.hw] * f4[q];
}

@compute @workgroup_size(WG)
fn bwd_from4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * WG;
  if (q >= P.n) { return; }
  out4[q] = s[(q * 4u) / P.hw] * g4[q];
}

// s binding unused here but kept in the layout; n = number of scale values
@compute @workgroup_size(WG)
fn bwd_scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * WG;
  if (j >= P.n) { return; }
  var acc = 0.0;
  if (P.wh == 0u) {
    let b0 = j * P.hw;
    for (var p = 0u; p < P.hw; p++) { acc += g[b0 + p] * f[b0 + p]; }
  } else {
    let b = j / P.hw;
    let p = j % P.hw;
    let C = P.chw / P.hw;
    for (var c = 0u; c < C; c++) {
      let k = b * P.chw + c * P.hw + p;
      acc += g[k] * f[k];
    }
  }
  out[j] = acc;
}
