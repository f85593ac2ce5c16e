// The logistic function 1 / (1 + exp(-v)) in the two numerics the kernels need, one definition each
// (included with `// #include "lib/sigmoid.wgsl"`; lib/act.wgsl and lib/stable.wgsl include it). They differ
// only for v < 0, in the last bits, and each caller's results are matched against a different reference:
//
// sigmoid_darknet: the plain formula, as Darknet's logistic_activate (activations.h) and OpenCV's region /
//   yolo decode compute it: the activations (lib/act.wgsl), the detection-head activations (yolo_act.wgsl)
//   and the decode (yolo_decode.wgsl). exp(-v) overflows to inf for v < -88, giving exactly 0.
// sigmoid_stable: exp of -|v| only (never overflows), the negative side as e/(1 + e): the losses (through
//   lib/stable.wgsl: loss.wgsl, yolo_loss.wgsl, yolo_loss_v5.wgsl), checked against float64 references and the
//   PyTorch / libdarknet goldens.

fn sigmoid_darknet(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }

fn sigmoid_stable(v: f32) -> f32 {
  let e = exp(-abs(v));
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, v >= 0.0);
}
