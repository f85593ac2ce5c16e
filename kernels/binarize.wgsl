// Binarization for XNOR / binary-weight convolution (Darknet convolutional_layer.c binarize_weights,
// binarize_cpu; backward as convolutional_kernels.cu backward_convolutional_layer_gpu).
//
//   weights_fwd: per filter f (K = c/groups*size*size values), mean_f = (sum |w[f, k]|) / K summed in
//                float32 in k order as Darknet's loop; wb[f, k] = w > 0 ? mean_f : -mean_f. One thread a filter.
//                Backward (straight-through, as Darknet): dw = dwb (a copy, no kernel).
//   input_fwd:   xb = x > 0 ? 1 : -1 (the CPU binarize_cpu; the CUDA kernel tests x >= 0).
//   input_bwd:   dx = dxb * hardtan'(x), hardtan'(x) = 1 for -1 < x < 1, else 0 (gradient_array HARDTAN).

struct Params { n: u32, K: u32, filters: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn weights_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let f = gid.x + gid.y * nwg.x * WG;
  if (f >= P.filters) { return; }
  let base = f * P.K;
  var s = 0.0;
  for (var k = 0u; k < P.K; k++) { s += abs(x[base + k]); }
  let mean = s / f32(P.K);
  for (var k = 0u; k < P.K; k++) { y[base + k] = select(-mean, mean, x[base + k] > 0.0); }
}

@compute @workgroup_size(WG)
fn input_fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = select(-1.0, 1.0, x[i] > 0.0);
}

@compute @workgroup_size(WG)
fn input_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  y[i] = select(0.0, dy[i], x[i] > -1.0 && x[i] < 1.0);
}
