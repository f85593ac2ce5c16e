// [region] detection with a class hierarchy (tree=, YOLO9000): pjreddie region_layer.c
// get_region_detections with l.softmax_tree and no map, straight from the head convolution's output
// x: NCHW [B, A*(5+C), H, W], channel a*(5+C)+k = entry k (tx, ty, tw, th, obj, class 0..C-1) of anchor a.
// One invocation per (batch, anchor, cell). The box and objectness are yolo_decode.wgsl's MODE 2 ([region]);
// a box with objectness > thresh gets ONE class, hierarchy_top_prediction(hierarchy_predictions(softmax_tree
// of its classes), hier_thresh):
//   p = 1, group = 0; loop: over the group's classes take the first largest absolute probability
//   (the class's softmax within its group times its parent's absolute probability), max at class m;
//   if p*max > hier_thresh: p *= max, and m is the answer when it has no children, else descend into
//   child[m]; otherwise the answer is m at the top group and the group's parent below it.
// Its score is the objectness (Darknet: prob[j] = objectness > thresh ? objectness : 0). Records as
// yolo_decode.wgsl `detect` (10 words; with SCORES=1 the C class scores: the objectness at j, 0 elsewhere).
//
// tree: u32 table (src/darknet/tree.ts treeTable): parent[n] (i32 bits), child[n], group[n],
// group_offset[G], group_size[G] with n = P.C, G = P.G.

struct Params {
  B: u32,
  A: u32,
  C: u32,
  H: u32,
  W: u32,
  G: u32,
  thresh: f32,
  hier: f32,
  head: u32,
  cap: u32,
  rec: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(4) var<storage, read_write> count: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> records: array<u32>;
@group(0) @binding(6) var<storage, read> tree: array<u32>;

override WG: u32 = 64;
override SCORES: u32 = 0;

// #include "lib/sigmoid.wgsl"

fn parent_of(k: u32) -> i32 { return bitcast<i32>(tree[k]); }
fn child_of(k: u32) -> i32 { return bitcast<i32>(tree[P.C + k]); }
fn group_offset(g: u32) -> u32 { return tree[3u * P.C + g]; }
fn group_size(g: u32) -> u32 { return tree[3u * P.C + P.G + g]; }

@compute @workgroup_size(WG)
fn detect(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  let hw = P.H * P.W;
  if (i >= P.B * P.A * hw) { return; }
  let cell = i % hw;
  let ba = i / hw;
  let a = ba % P.A;
  let b = ba / P.A;
  let base = ba * (5u + P.C) * hw + cell;
  let obj = sigmoid_darknet(x[base + 4u * hw]);
  if (!(obj > P.thresh)) { return; }
  let cls = base + 5u * hw;
  // hierarchy_top_prediction
  var p = 1.0;
  var group = 0u;
  var above = 1.0;   // the absolute probability of the group's parent (1 at the top)
  var top = 0u;
  loop {
    let off = group_offset(group);
    let n = group_size(group);
    var largest = bitcast<f32>(0xff7fffffu);
    for (var j = 0u; j < n; j++) { largest = max(largest, x[cls + (off + j) * hw]); }
    var sum = 0.0;
    for (var j = 0u; j < n; j++) { sum += exp(x[cls + (off + j) * hw] - largest); }
    var mx = 0.0;
    var mi = 0u;
    for (var j = 0u; j < n; j++) {
      var v = exp(x[cls + (off + j) * hw] - largest) / sum;
      if (group != 0u) { v = v * above; }
      if (v > mx) {
        mi = off + j;
        mx = v;
      }
    }
    if (p * mx > P.hier) {
      p = p * mx;
      let c = child_of(mi);
      if (c < 0) {
        top = mi;
        break;
      }
      group = u32(c);
      above = mx;
    } else if (group == 0u) {
      top = mi;
      break;
    } else {
      top = u32(parent_of(off));
      break;
    }
  }
  let slot = atomicAdd(&count[0], 1u);
  if (slot >= P.cap) { return; }
  let col = f32(cell % P.W);
  let row = f32(cell / P.W);
  let fw = f32(P.W);
  let fh = f32(P.H);
  let o = slot * P.rec;
  records[o] = b;
  records[o + 1u] = P.head;
  records[o + 2u] = cell * P.A + a;
  records[o + 3u] = top;
  records[o + 4u] = bitcast<u32>(obj);
  records[o + 5u] = bitcast<u32>(obj);
  records[o + 6u] = bitcast<u32>((col + sigmoid_darknet(x[base])) / fw);
  records[o + 7u] = bitcast<u32>((row + sigmoid_darknet(x[base + hw])) / fh);
  records[o + 8u] = bitcast<u32>(exp(x[base + 2u * hw]) * anchors[2u * a] / fw);
  records[o + 9u] = bitcast<u32>(exp(x[base + 3u * hw]) * anchors[2u * a + 1u] / fh);
  if (SCORES == 1u) {
    for (var q = 0u; q < P.C; q++) { records[o + 10u + q] = bitcast<u32>(select(0.0, obj, q == top)); }
  }
}
