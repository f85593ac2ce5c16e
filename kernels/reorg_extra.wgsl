// pjreddie's [reorg] extra= (reorg_layer.c forward/backward_reorg_layer with l.extra): every image's
// inN values followed by `extra` values that Darknet never writes (its calloc'd output: 0), a flat
// output of outN = inN + extra values per image.
//   fwd (n = B*outN): y[b*outN + j] = x[b*inN + j] for j < inN, else 0
//   bwd (n = B*inN):  y[b*inN + j] = x[b*outN + j]   (x = dy; the extra values have no input)

struct Params { n: u32, inN: u32, outN: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let b = i / P.outN;
  let j = i % P.outN;
  y[i] = select(0.0, x[b * P.inN + min(j, P.inN - 1u)], j < P.inN);
}

@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.n) { return; }
  let b = i / P.inN;
  let j = i % P.inN;
  y[i] = x[b * P.outN + j];
}
