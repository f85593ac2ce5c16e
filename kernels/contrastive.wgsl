// AlexeyAB [contrastive] in detector mode (softmax_layer.c forward_contrastive_layer with a [yolo] layer;
// blas.c cosine_similarity, P_constrastive_f_det, grad_contrastive_loss_positive_f / _negative_f) and the
// embedding gather the detections use (yolo_layer.c get_embedding). src/tensor/ops/contrastive.ts drives it.
//
// emb: the embedding layer's output [B, C, H, W]; sample k's embedding entry m sits at
//   ((b*C + a*E + m)*HW) + cell   (a = anchor, cell = y*W + x)
// tab: ROW = 6 words per sample (integers bitcast): b, a, cell, label (track id, i32), class (i32), time step.
//   The training samples are Darknet's labelled ones (l.labels >= 0), in its sample order
//   z = (b*n + a)*HW + cell; the gather of the detections sets label, class, step to 0.
// z: [K, E] the samples' embeddings. sim, ex: [K, K] cosine similarity and exp(sim / T) of the pairs Darknet
// keeps (i != j, same class, same time step; ex = 0 elsewhere). col: [K] the column sums of ex.
// out: [K, E] the delta of each sample (after cls_normalizer and the max_delta clip); grad: the delta
// scattered into [B, C, H, W] (zero elsewhere, filled before). partials: [5, K] (zero, filled before) with
// row 3 = the sample's sum of delta^2 (Darknet's l.cost is their total).

struct Params {
  n: u32,       // threads
  K: u32,       // samples
  E: u32,       // embedding size
  C: u32,       // channels of emb
  HW: u32,
  T: f32,       // temperature
  clsNorm: f32,
  maxDelta: f32,
  negMax: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> emb: array<f32>;
@group(0) @binding(2) var<storage, read> tab: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> sim: array<f32>;
@group(0) @binding(5) var<storage, read_write> ex: array<f32>;
@group(0) @binding(6) var<storage, read_write> col: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad: array<f32>;
@group(0) @binding(9) var<storage, read_write> partials: array<f32>;

override WG: u32 = 64;
const ROW: u32 = 6u;

fn tabu(k: u32, f: u32) -> u32 { return bitcast<u32>(tab[k * ROW + f]); }
fn label(k: u32) -> i32 { return bitcast<i32>(tab[k * ROW + 3u]); }
fn cls(k: u32) -> i32 { return bitcast<i32>(tab[k * ROW + 4u]); }
fn step(k: u32) -> u32 { return tabu(k, 5u); }
fn at(k: u32, m: u32) -> u32 { return (tabu(k, 0u) * P.C + tabu(k, 1u) * P.E + m) * P.HW + tabu(k, 2u); }
fn index(gid: vec3u, nwg: vec3u) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// z[k, m] = emb[sample k, entry m]: n = K*E
@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= P.n) { return; }
  z[i] = emb[at(i / P.E, i % P.E)];
}

// Darknet's pair filter: both labelled (every sample here is), i != j, same class, same time step.
fn paired(i: u32, j: u32) -> bool { return i != j && cls(i) == cls(j) && step(i) == step(j); }

// cosine_similarity in Darknet's order (three running sums, sqrt(a)*sqrt(b), 0 when that is 0); n = K*K
@compute @workgroup_size(WG)
fn sims(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(gid, nwg);
  if (t >= P.n) { return; }
  let i = t / P.K;
  let j = t % P.K;
  if (!paired(i, j)) {
    sim[t] = 0.0;
    ex[t] = 0.0;
    return;
  }
  var mul = 0.0;
  var da = 0.0;
  var db = 0.0;
  for (var m = 0u; m < P.E; m++) {
    let a = z[i * P.E + m];
    let b = z[j * P.E + m];
    mul += a * b;
    da += a * a;
    db += b * b;
  }
  let divider = sqrt(da) * sqrt(db);
  var s = 0.0;
  if (divider > 0.0) { s = mul / divider; }
  sim[t] = s;
  ex[t] = exp(s / P.T);
}

// col[j] = sum over the pairs (k, j) of exp(sim / T), k ascending; n = K
@compute @workgroup_size(WG)
fn colsum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = index(gid, nwg);
  if (j >= P.n) { return; }
  var s = 0.0;
  for (var k = 0u; k < P.K; k++) { s += ex[k * P.K + j]; }
  col[j] = s;
}

// P_constrastive_f_det of the pair (i, j): exp(sim_ij / T) / (sum over the pairs (k, j), k != i), 0.9999 when
// that sum is 0 or the ratio exceeds 1
fn prob(i: u32, j: u32) -> f32 {
  let e = ex[i * P.K + j];
  let den = col[j] - e;
  var r = 0.9999;
  if (den != 0.0) { r = e / den; }
  if (r > 1.0) { r = 0.9999; }
  return r;
}

// The delta of sample i, entry m (grad_contrastive_loss_positive_f then _negative_f, Darknet's loops and
// their quirks: N counts i itself over every sample of the batch; the negatives k share j's class, and the
// counter of neg_max also counts the pairs Darknet does not find, whose `continue` skips the return check);
// then cls_normalizer and the clip. n = K*E
@compute @workgroup_size(WG)
fn deltas(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = index(gid, nwg);
  if (t >= P.n) { return; }
  let i = t / P.E;
  let m = t % P.E;
  let li = label(i);
  var len2 = 0.0;
  for (var q = 0u; q < P.E; q++) { len2 += z[i * P.E + q] * z[i * P.E + q]; }
  let vlen = sqrt(len2);
  var N = 0.0;
  for (var j = 0u; j < P.K; j++) { if (label(j) == li) { N += 1.0; } }
  var d = 0.0;
  // N == 1: no other sample of this track (no pair below); vlen == 0: Darknet stops with an error, here no delta
  if (N > 1.0 && vlen > 0.0) {
    let mult = 1.0 / ((N - 1.0) * P.T * vlen);
    let zi = z[i * P.E + m];
    for (var j = 0u; j < P.K; j++) {
      if (j == i || label(j) != li || !paired(i, j)) { continue; }
      let s = sim[i * P.K + j];
      d -= mult * (s * zi - z[j * P.E + m]) * (1.0 - prob(i, j));
    }
    var neg = 0u;
    var done = false;
    for (var j = 0u; j < P.K && !done; j++) {
      if (j == i || label(j) != li) { continue; }
      for (var k = 0u; k < P.K; k++) {
        if (k == i || k == j || label(k) == li || cls(j) != cls(k)) { continue; }
        neg++;
        if (!paired(i, k)) { continue; }
        let s = sim[i * P.K + k];
        d -= mult * (z[k * P.E + m] - s * zi) * prob(i, k);
        if (neg >= P.negMax) {
          done = true;
          break;
        }
      }
    }
  }
  d = clamp(d * P.clsNorm, -P.maxDelta, P.maxDelta);
  out[t] = d;
  grad[at(i, m)] = d;
}

// partials[3*K + k] = sum over m of out[k, m]^2 (Darknet's cost is the total); n = K
@compute @workgroup_size(WG)
fn cost(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = index(gid, nwg);
  if (k >= P.n) { return; }
  var s = 0.0;
  for (var m = 0u; m < P.E; m++) { s += out[k * P.E + m] * out[k * P.E + m]; }
  partials[3u * P.K + k] = s;
}
