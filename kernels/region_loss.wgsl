// Darknet's [region] training loss (AlexeyAB region_layer.c forward_region_layer with state.train), YOLOv2 and
// YOLO9000 (tree=), on the head input z: NCHW [B, A*(5+C), H, W], channel a*(5+C)+k = entry k (tx, ty, tw,
// th, obj, class 0..C-1) of anchor a (coords = 4). Writes Darknet's l.delta (the loss's -dL/dz; the trainer
// applies it as the gradient of z) in the same layout, and per-prediction loss partials.
//
// Forward values, as forward_region_layer: sx = logistic(tx), sy, obj = logistic(z_obj); classes softmax over
// all C, or per group of siblings (tree). Pred box (get_region_box, DOABS): ((i + sx)/W, (j + sy)/H,
// exp(tw)*aw/W, exp(th)*ah/H), anchors in grid cells.
//
// neg   one invocation per prediction: best IoU with the image's truths (a truth of class >= C is skipped, the
//       first with x == 0 ends the list); delta_obj = noobj*(0 - obj)*obj*(1 - obj), 0 when best IoU > thresh;
//       classes 0; box: with `prior` (Darknet's *net.seen < 12800) delta_region_box toward the cell centre and
//       the anchor, scale .01, else 0.
// pos   one invocation per image, the truths in order (later ones overwrite, as in Darknet): cell
//       (i, j) = (int)(x*W), (int)(y*H) (clamped to the grid), best anchor by IoU of the shapes (the anchor
//       shapes with bias_match, else the predicted shapes; first max), then delta_region_box (scale
//       coord_scale: x, y: s*(t - sx)*sx*(1 - sx); w, h: s*(t - z), t = log(w*W/aw)), objectness
//       obj_scale*(1 - obj) (rescore: (iou - obj)) times obj*(1 - obj), and delta_region_class with the class
//       through `map` (truth word 5): flat, s*([k == c] - p_k) over all classes (focal_loss: times
//       0.5*-(1 - pt)*(2*pt*log(pt) + pt - 1), pt = p_c + 1e-15); tree, for c and each ancestor, its group
//       s*(0 - p_k) and s*(1 - p_c) at the class itself (groups another truth wrote and this one does not
//       keep their values: Darknet's overwrite).
// cost  one invocation per prediction: aux0 = sum of its delta^2 (Darknet's cost |delta|^2 summed).
//
// Partials [5, cells] (rows box, obj, cls, aux0, aux1), the implied loss whose gradient is -delta: box
// 1/2*s*((t - sx)^2 + (t - sy)^2 + (t - tw)^2 + (t - th)^2), obj 1/2*s*(t - obj)^2, classes s*(-log p_c) summed
// over the path's groups (focal: the same, without the focal factor); aux1 = 1 for an ignored prediction.
// A prediction a truth takes gets that truth's terms (the last truth's, as its deltas).
//
// truths: [B, T, 6] f32: x, y, w, h, class, class through the map (rows after an image's truths are 0).
// tree: u32 table (src/darknet/tree.ts treeTable): parent[C] (i32 bits), child[C], group[C],
// group_offset[G], group_size[G].

struct Params {
  n: u32,
  B: u32,
  A: u32,
  C: u32,
  H: u32,
  W: u32,
  T: u32,
  G: u32,
  tree: u32,
  prior: u32,
  rescore: u32,
  biasMatch: u32,
  focal: u32,
  cells: u32,
  noobjScale: f32,
  objScale: f32,
  coordScale: f32,
  classScale: f32,
  thresh: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> truths: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> anchors: array<f32>;
@group(0) @binding(6) var<storage, read> tree: array<u32>;

override WG: u32 = 64;

// #include "lib/sigmoid.wgsl"

struct Box { x: f32, y: f32, w: f32, h: f32, }

// box.c overlap / box_intersection / box_union / box_iou
fn overlap(x1: f32, w1: f32, x2: f32, w2: f32) -> f32 {
  let left = max(x1 - w1 / 2.0, x2 - w2 / 2.0);
  let right = min(x1 + w1 / 2.0, x2 + w2 / 2.0);
  return right - left;
}

fn box_iou(a: Box, b: Box) -> f32 {
  let w = overlap(a.x, a.w, b.x, b.w);
  let h = overlap(a.y, a.h, b.y, b.h);
  var i = 0.0;
  if (!(w < 0.0 || h < 0.0)) { i = w * h; }
  let u = a.w * a.h + b.w * b.h - i;
  if (i == 0.0 || u == 0.0) { return 0.0; }
  return i / u;
}

fn hw() -> u32 { return P.H * P.W; }

// index of entry k of anchor a of image b at cell
fn at(b: u32, a: u32, k: u32, cell: u32) -> u32 { return ((b * P.A + a) * (5u + P.C) + k) * hw() + cell; }

fn pred_box(b: u32, a: u32, cell: u32) -> Box {
  let i = f32(cell % P.W);
  let j = f32(cell / P.W);
  let fw = f32(P.W);
  let fh = f32(P.H);
  return Box((i + sigmoid_darknet(z[at(b, a, 0u, cell)])) / fw, (j + sigmoid_darknet(z[at(b, a, 1u, cell)])) / fh,
             exp(z[at(b, a, 2u, cell)]) * anchors[2u * a] / fw, exp(z[at(b, a, 3u, cell)]) * anchors[2u * a + 1u] / fh);
}

fn truth_at(b: u32, t: u32) -> u32 { return (b * P.T + t) * 6u; }

fn truth_box(o: u32) -> Box { return Box(truths[o], truths[o + 1u], truths[o + 2u], truths[o + 3u]); }

// delta_region_box: writes the 4 box deltas of (b, a, cell) toward `t`, returns (iou of the prediction with
// t, the implied loss)
fn delta_box(t: Box, b: u32, a: u32, cell: u32, scale: f32) -> vec2f {
  let pred = pred_box(b, a, cell);
  let iou = box_iou(pred, t);
  let fw = f32(P.W);
  let fh = f32(P.H);
  let tx = t.x * fw - f32(cell % P.W);
  let ty = t.y * fh - f32(cell / P.W);
  let tw = log(t.w * fw / anchors[2u * a]);
  let th = log(t.h * fh / anchors[2u * a + 1u]);
  let sx = sigmoid_darknet(z[at(b, a, 0u, cell)]);
  let sy = sigmoid_darknet(z[at(b, a, 1u, cell)]);
  let zw = z[at(b, a, 2u, cell)];
  let zh = z[at(b, a, 3u, cell)];
  delta[at(b, a, 0u, cell)] = scale * (tx - sx) * ((1.0 - sx) * sx);
  delta[at(b, a, 1u, cell)] = scale * (ty - sy) * ((1.0 - sy) * sy);
  delta[at(b, a, 2u, cell)] = scale * (tw - zw);
  delta[at(b, a, 3u, cell)] = scale * (th - zh);
  let l = 0.5 * scale * ((tx - sx) * (tx - sx) + (ty - sy) * (ty - sy) + (tw - zw) * (tw - zw) + (th - zh) * (th - zh));
  return vec2f(iou, l);
}

fn pidx(b: u32, a: u32, cell: u32) -> u32 { return (b * P.A + a) * hw() + cell; }

@compute @workgroup_size(WG)
fn neg(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let cell = p % hw();
  let a = (p / hw()) % P.A;
  let b = p / (hw() * P.A);
  let pred = pred_box(b, a, cell);
  var best = 0.0;
  for (var t = 0u; t < P.T; t++) {
    let o = truth_at(b, t);
    if (truths[o + 4u] >= f32(P.C)) { continue; }
    if (truths[o] == 0.0) { break; }
    let iou = box_iou(pred, truth_box(o));
    if (iou > best) { best = iou; }
  }
  let obj = sigmoid_darknet(z[at(b, a, 4u, cell)]);
  var dobj = P.noobjScale * ((0.0 - obj) * ((1.0 - obj) * obj));
  var lobj = 0.5 * P.noobjScale * obj * obj;
  var ignored = 0.0;
  if (best > P.thresh) {
    dobj = 0.0;
    lobj = 0.0;
    ignored = 1.0;
  }
  delta[at(b, a, 4u, cell)] = dobj;
  for (var k = 0u; k < P.C; k++) { delta[at(b, a, 5u + k, cell)] = 0.0; }
  var lbox = 0.0;
  if (P.prior != 0u) {
    let fw = f32(P.W);
    let fh = f32(P.H);
    let t = Box((f32(cell % P.W) + 0.5) / fw, (f32(cell / P.W) + 0.5) / fh, anchors[2u * a] / fw, anchors[2u * a + 1u] / fh);
    lbox = delta_box(t, b, a, cell, 0.01).y;
  } else {
    for (var k = 0u; k < 4u; k++) { delta[at(b, a, k, cell)] = 0.0; }
  }
  partials[p] = lbox;
  partials[P.cells + p] = lobj;
  partials[2u * P.cells + p] = 0.0;
  partials[4u * P.cells + p] = ignored;
}

fn parent_of(k: u32) -> i32 { return bitcast<i32>(tree[k]); }
fn group_of(k: u32) -> u32 { return tree[2u * P.C + k]; }
fn group_offset(g: u32) -> u32 { return tree[3u * P.C + g]; }
fn group_size(g: u32) -> u32 { return tree[3u * P.C + P.G + g]; }

// softmax statistics (max, sum of exp(v - max)) of classes off .. off+n-1 of (b, a, cell)
fn soft_stats(b: u32, a: u32, cell: u32, off: u32, n: u32) -> vec2f {
  var m = bitcast<f32>(0xff7fffffu);
  for (var k = 0u; k < n; k++) { m = max(m, z[at(b, a, 5u + off + k, cell)]); }
  var s = 0.0;
  for (var k = 0u; k < n; k++) { s += exp(z[at(b, a, 5u + off + k, cell)] - m); }
  return vec2f(m, s);
}

// delta_region_class; returns the implied class loss
fn delta_class(b: u32, a: u32, cell: u32, cls: u32) -> f32 {
  let s = P.classScale;
  var loss = 0.0;
  if (P.tree != 0u) {
    var c = i32(cls);
    loop {
      if (c < 0) { break; }
      let g = group_of(u32(c));
      let off = group_offset(g);
      let n = group_size(g);
      let st = soft_stats(b, a, cell, off, n);
      for (var k = 0u; k < n; k++) {
        let q = exp(z[at(b, a, 5u + off + k, cell)] - st.x) / st.y;
        delta[at(b, a, 5u + off + k, cell)] = s * (0.0 - q);
      }
      let pc = exp(z[at(b, a, 5u + u32(c), cell)] - st.x) / st.y;
      delta[at(b, a, 5u + u32(c), cell)] = s * (1.0 - pc);
      loss += -s * log(pc);
      c = parent_of(u32(c));
    }
    return loss;
  }
  let st = soft_stats(b, a, cell, 0u, P.C);
  let pc = exp(z[at(b, a, 5u + cls, cell)] - st.x) / st.y;
  var f = 1.0;
  if (P.focal != 0u) {
    let pt = pc + 1e-15;
    f = 0.5 * (-(1.0 - pt) * (2.0 * pt * log(pt) + pt - 1.0));
  }
  for (var k = 0u; k < P.C; k++) {
    let q = exp(z[at(b, a, 5u + k, cell)] - st.x) / st.y;
    delta[at(b, a, 5u + k, cell)] = s * (select(0.0, 1.0, k == cls) - q) * f;
  }
  return -s * log(pc);
}

@compute @workgroup_size(1)
fn pos(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.x;
  if (b >= P.B) { return; }
  let fw = f32(P.W);
  let fh = f32(P.H);
  for (var t = 0u; t < P.T; t++) {
    let o = truth_at(b, t);
    if (truths[o + 4u] >= f32(P.C)) { continue; }
    if (truths[o] == 0.0) { break; }
    let tb = truth_box(o);
    let i = min(u32(max(tb.x * fw, 0.0)), P.W - 1u);
    let j = min(u32(max(tb.y * fh, 0.0)), P.H - 1u);
    let cell = j * P.W + i;
    let shift = Box(0.0, 0.0, tb.w, tb.h);
    var best = 0.0;
    var bn = 0u;
    for (var a = 0u; a < P.A; a++) {
      var pr = pred_box(b, a, cell);
      if (P.biasMatch != 0u) {
        pr.w = anchors[2u * a] / fw;
        pr.h = anchors[2u * a + 1u] / fh;
      }
      pr.x = 0.0;
      pr.y = 0.0;
      let iou = box_iou(pr, shift);
      if (iou > best) {
        best = iou;
        bn = a;
      }
    }
    let r = delta_box(tb, b, bn, cell, P.coordScale);
    let obj = sigmoid_darknet(z[at(b, bn, 4u, cell)]);
    var tgt = 1.0;
    if (P.rescore != 0u) { tgt = r.x; }
    delta[at(b, bn, 4u, cell)] = P.objScale * (tgt - obj) * ((1.0 - obj) * obj);
    let lcls = delta_class(b, bn, cell, u32(truths[o + 5u]));
    let q = pidx(b, bn, cell);
    partials[q] = r.y;
    partials[P.cells + q] = 0.5 * P.objScale * (tgt - obj) * (tgt - obj);
    partials[2u * P.cells + q] = lcls;
    partials[4u * P.cells + q] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn cost(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = gid.x + gid.y * nwg.x * WG;
  if (p >= P.n) { return; }
  let cell = p % hw();
  let a = (p / hw()) % P.A;
  let b = p / (hw() * P.A);
  var s = 0.0;
  for (var k = 0u; k < 5u + P.C; k++) {
    let d = delta[at(b, a, k, cell)];
    s += d * d;
  }
  partials[3u * P.cells + p] = s;
}
