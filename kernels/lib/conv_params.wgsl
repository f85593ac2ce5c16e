// The uniform parameters shared by every conv2d kernel (conv2d_direct / _gemm / _reg / _bwd.wgsl). Included
// with `// #include "lib/conv_params.wgsl"`. This struct is the contract: src/tensor/ops/conv2d.ts passes its
// values by these field names (its params()), and the runtime packs each as the type declared here
// (src/gpu/uniforms.ts). Add a field here and to params(); the order is free.

struct Params {
  B: u32, Cin: u32, H: u32, W: u32,
  Cout: u32, OH: u32, OW: u32, KH: u32,
  KW: u32, SY: u32, SX: u32, PY: u32,
  PX: u32, DY: u32, DX: u32, G: u32,
  Cg: u32, Mg: u32, Ctot: u32, Coff: u32,
  S: u32, chunk: u32, n: u32, t0: u32,
  act: u32, has_bias: u32, kt: u32,
  // conv2d_tile.wgsl with a fused POOL x POOL / POOL maxpool: the pooled output's height and width
  pool_h: u32, pool_w: u32,
  // conv2d_tile.wgsl's weight addressing: an output channel's row starts wrow values after the previous one,
  // an input channel's taps wcin values after the previous one's, taps reversed when wflip != 0 (forward:
  // Cg*KH*KW, KH*KW, 0; dx reads the forward's weights as the transposed conv's: KH*KW, Cg*KH*KW, 1)
  wrow: u32, wcin: u32, wflip: u32,
  // conv2d_tile.wgsl's destination without the fused pool: output (oy, ox) of channel plane q at
  // q*oplane + ooff + oy*orow + ox*ocol (a conv's own map: OH*OW, 0, OW, 1; a strided conv's dx phase (ry, rx)
  // written into dx: H*W, ry*W + rx, SY*W, SX)
  oplane: u32, ooff: u32, orow: u32, ocol: u32,
}
