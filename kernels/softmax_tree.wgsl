// Darknet's hierarchical softmax (softmax_layer.c softmax_tree, the [softmax] tree= and [region] tree=
// forwards): a softmax over each group of sibling classes of every row, forward and backward. One
// invocation per (row, group). Row r starts at
//   base(r) = offset + (r % c0)*s0 + ((r / c0) % c1)*s1 + (r / (c0*c1))*s2
// (the row layout of softmax.wgsl) and class k of it is at base(r) + k*stride; group g covers the classes
// tree[2g] .. tree[2g] + tree[2g+1] - 1 (tree = (offset, size) pairs, src/darknet/tree.ts groupTable).
//   fwd: y_j = exp(x_j*invT - max*invT) / sum over the group   (blas.c softmax: exp(x/temp - largest/temp))
//   bwd: dx_j = invT * y_j * (dy_j - sum_k dy_k y_k), sums over the group   (x binding = the forward output y)

struct Params { rows: u32, groups: u32, stride: u32, offset: u32, c0: u32, s0: u32, c1: u32, s1: u32, s2: u32, invT: f32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> tree: array<u32>;

override WG: u32 = 64;

fn base(r: u32) -> u32 {
  return P.offset + (r % P.c0) * P.s0 + ((r / P.c0) % P.c1) * P.s1 + (r / (P.c0 * P.c1)) * P.s2;
}

@compute @workgroup_size(WG)
fn fwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.rows * P.groups) { return; }
  let g = i % P.groups;
  let n = tree[2u * g + 1u];
  let b0 = base(i / P.groups) + tree[2u * g] * P.stride;
  var largest = bitcast<f32>(0xff7fffffu);
  for (var j = 0u; j < n; j++) { largest = max(largest, x[b0 + j * P.stride]); }
  var sum = 0.0;
  for (var j = 0u; j < n; j++) {
    let e = exp(x[b0 + j * P.stride] * P.invT - largest * P.invT);
    sum += e;
    y[b0 + j * P.stride] = e;
  }
  for (var j = 0u; j < n; j++) { y[b0 + j * P.stride] = y[b0 + j * P.stride] / sum; }
}

// x = forward output y, y = dx
@compute @workgroup_size(WG)
fn bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= P.rows * P.groups) { return; }
  let g = i % P.groups;
  let n = tree[2u * g + 1u];
  let b0 = base(i / P.groups) + tree[2u * g] * P.stride;
  var dot = 0.0;
  for (var j = 0u; j < n; j++) { dot += dy[b0 + j * P.stride] * x[b0 + j * P.stride]; }
  for (var j = 0u; j < n; j++) {
    let k = b0 + j * P.stride;
    y[k] = P.invT * x[k] * (dy[k] - dot);
  }
}
