// One 2x2 window of Darknet's [maxpool] size=2 stride=2, shared by pool.wgsl (max2_fwd) and batchnorm.wgsl
// (normalize_pool4, which pools its own activated output): the same comparisons in both, so the same values and
// argmax bit for bit. Needs NEG_FLT_MAX (-FLT_MAX, Darknet's padding value) from the including module.

struct Best { v: f32, a: i32 }

// The max of a window's taps t = (row 0 left, row 0 right, row 1 left, row 1 right), row 0 starting at
// plane index c; row 1 only when `second`. First maximum in row-major order, strict >, as max_fwd.
fn best2x2(t: vec4f, c: i32, w: i32, second: bool) -> Best {
  var b = Best(NEG_FLT_MAX, -1);
  if (t.x > b.v) { b = Best(t.x, c); }
  if (t.y > b.v) { b = Best(t.y, c + 1); }
  if (second) {
    if (t.z > b.v) { b = Best(t.z, c + w); }
    if (t.w > b.v) { b = Best(t.w, c + w + 1); }
  }
  return b;
}
