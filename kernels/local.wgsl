// Darknet [local] (local_layer.c forward_local_layer): a locally connected layer, i.e. a convolution with
// separate weights at every output location (no sharing), plus a bias per output element:
//   y[b, o, oy, ox] = bias[(o*OH + oy)*OW + ox]
//                   + sum_{c, ky, kx} w[loc][o][(c*K + ky)*K + kx] * x[b, c, oy*S + ky - P, ox*S + kx - P]
// with loc = oy*OW + ox, zero outside the input (im2col order of Darknet). One invocation per output.
// N filters are computed, written to channels [Coff, Coff + N) of a y with Ntot channels (a layer whose
// weights exceed the binding limit runs in filter chunks, with w and bias holding that chunk only).
//
// Backward (the exact gradients of that forward, gather form: one invocation per element of the gradient
// it writes, summing everything that reaches it; no atomics). dy is [B, N, OH, OW] (Ntot = N, Coff = 0):
//   bwd_bias    db[o*OH*OW + loc]   = sum_b dy[b, o, loc]                                   (n = N*OH*OW)
//   bwd_weights dw[loc][o][k]       = sum_b dy[b, o, loc] * x[b, c, oy*S + ky - P, ox*S + kx - P]
//                                     with k = (c*K + ky)*K + kx                            (n = OH*OW*N*C*K*K)
//   bwd_input   dx[b, c, iy, ix]    = sum over the (oy, ky), (ox, kx) with oy*S + ky - P = iy,
//                                     ox*S + kx - P = ix, and o < N of w[loc][o][(c*K + ky)*K + kx] * dy[b, o, oy, ox]
//                                                                                           (n = B*C*H*W)
// Darknet's backward_local_layer computes the same sums (bias_updates += delta, weight_updates +=
// delta . im2col(x)^T, col2im(w^T . delta) into net.delta) on its delta, which is minus the gradient.

struct Params { n: u32, B: u32, C: u32, H: u32, W: u32, N: u32, OH: u32, OW: u32, K: u32, S: u32, P: u32, Ntot: u32, Coff: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ox = i % P.OW;
  let oy = (i / P.OW) % P.OH;
  let o = (i / (P.OW * P.OH)) % P.N;
  let b = i / (P.OW * P.OH * P.N);
  let loc = oy * P.OW + ox;
  let KK = P.K * P.K;
  let wbase = (loc * P.N + o) * P.C * KK;
  var acc = bias[o * P.OH * P.OW + loc];
  for (var c = 0u; c < P.C; c++) {
    let xb = (b * P.C + c) * P.H;
    for (var ky = 0u; ky < P.K; ky++) {
      let iy = i32(oy * P.S + ky) - i32(P.P);
      if (iy < 0 || iy >= i32(P.H)) { continue; }
      for (var kx = 0u; kx < P.K; kx++) {
        let ix = i32(ox * P.S + kx) - i32(P.P);
        if (ix < 0 || ix >= i32(P.W)) { continue; }
        acc += w[wbase + (c * P.K + ky) * P.K + kx] * x[(xb + u32(iy)) * P.W + u32(ix)];
      }
    }
  }
  y[((b * P.Ntot + P.Coff + o) * P.OH + oy) * P.OW + ox] = acc;
}

// grad = db [N*OH*OW]: one invocation per bias, summing dy over the batch.
@compute @workgroup_size(WG)
fn bwd_bias(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let per = P.N * P.OH * P.OW;
  var acc = 0.0;
  for (var b = 0u; b < P.B; b++) { acc += dy[b * per + i]; }
  grad[i] = acc;
}

// grad = dw [OH*OW][N][C*K*K]: one invocation per weight, summing dy * the input tap over the batch.
@compute @workgroup_size(WG)
fn bwd_weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let KK = P.K * P.K;
  let kx = i % P.K;
  let ky = (i / P.K) % P.K;
  let c = (i / KK) % P.C;
  let o = (i / (KK * P.C)) % P.N;
  let loc = i / (KK * P.C * P.N);
  let ox = loc % P.OW;
  let oy = loc / P.OW;
  let iy = i32(oy * P.S + ky) - i32(P.P);
  let ix = i32(ox * P.S + kx) - i32(P.P);
  var acc = 0.0;
  if (iy >= 0 && iy < i32(P.H) && ix >= 0 && ix < i32(P.W)) {
    let L = P.OH * P.OW;
    for (var b = 0u; b < P.B; b++) {
      acc += dy[(b * P.N + o) * L + loc] * x[((b * P.C + c) * P.H + u32(iy)) * P.W + u32(ix)];
    }
  }
  grad[i] = acc;
}

// grad = dx [B, C, H, W]: one invocation per input element, summing w * dy over every output window
// (location, filter) that reads it.
@compute @workgroup_size(WG)
fn bwd_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let ix = i32(i % P.W);
  let iy = i32((i / P.W) % P.H);
  let c = (i / (P.W * P.H)) % P.C;
  let b = i / (P.W * P.H * P.C);
  let KK = P.K * P.K;
  let KC = P.C * KK;
  let L = P.OH * P.OW;
  var acc = 0.0;
  for (var ky = 0u; ky < P.K; ky++) {
    let ty = iy + i32(P.P) - i32(ky);
    if (ty < 0 || u32(ty) % P.S != 0u) { continue; }
    let oy = u32(ty) / P.S;
    if (oy >= P.OH) { continue; }
    for (var kx = 0u; kx < P.K; kx++) {
      let tx = ix + i32(P.P) - i32(kx);
      if (tx < 0 || u32(tx) % P.S != 0u) { continue; }
      let ox = u32(tx) / P.S;
      if (ox >= P.OW) { continue; }
      let loc = oy * P.OW + ox;
      let k = (c * P.K + ky) * P.K + kx;
      for (var o = 0u; o < P.N; o++) {
        acc += w[(loc * P.N + o) * KC + k] * dy[(b * P.N + o) * L + loc];
      }
    }
  }
  grad[i] = acc;
}
