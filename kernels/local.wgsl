// Darknet [local] (local_layer.c forward_local_layer): a locally connected layer, i.e. a convolution with
// separate weights at every output location (no sharing), plus a bias per output element:
//   y[b, o, oy, ox] = bias[(o*OH + oy)*OW + ox]
//                   + sum_{c, ky, kx} w[loc][o][(c*K + ky)*K + kx] * x[b, c, oy*S + ky - P, ox*S + kx - P]
// with loc = oy*OW + ox, zero outside the input (im2col order of Darknet). One invocation per output.
// N filters are computed, written to channels [Coff, Coff + N) of a y with Ntot channels (a layer whose
// weights exceed the binding limit runs in filter chunks, with w and bias holding that chunk only).

struct Params { n: u32, C: u32, H: u32, W: u32, N: u32, OH: u32, OW: u32, K: u32, S: u32, P: u32, Ntot: u32, Coff: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

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
