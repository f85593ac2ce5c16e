import { test } from 'uvu';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import { headActivationRef, type HeadRef } from '../reference/yolo_act.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { headActivation } from '../../src/tensor/ops/yolo_act.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const cases: { name: string; shape: number[]; a: HeadRef }[] = [
  { name: '[yolo] 2 anchors, 3 classes, scale_x_y 1.05, batch 2', shape: [2, 16, 3, 5], a: { entries: 8, xyLogistic: true, xyScale: 1.05, xyBias: -0.5 * 0.05, actFrom: 4, actTo: 8 } },
  { name: '[yolo] new_coords=1, scale_x_y 2', shape: [1, 21, 2, 3], a: { entries: 7, xyLogistic: false, xyScale: 2, xyBias: -0.5, actFrom: 7, actTo: 7 } },
  { name: '[region] softmax=1: x, y, obj only', shape: [1, 18, 3, 3], a: { entries: 9, xyLogistic: true, actFrom: 4, actTo: 5 } },
  // planes of whole vec4s: the fwd4 / bwd4 entries
  { name: '[yolo] vec4 planes (4x6), batch 2', shape: [2, 16, 4, 6], a: { entries: 8, xyLogistic: true, xyScale: 1.05, xyBias: -0.5 * 0.05, actFrom: 4, actTo: 8 } },
  { name: '[yolo] new_coords=1, vec4 planes (2x2)', shape: [1, 21, 2, 2], a: { entries: 7, xyLogistic: false, xyScale: 2, xyBias: -0.5, actFrom: 7, actTo: 7 } },
  { name: '[region] softmax=1, vec4 planes (4x4)', shape: [1, 18, 4, 4], a: { entries: 9, xyLogistic: true, actFrom: 4, actTo: 5 } },
];

for (const c of cases) {
  test(`head activation ${c.name}: forward vs float64, backward vs finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(9);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -3, 3);
    const x = Tensor.param(gpu, c.shape, xv);
    const tape = newTape();
    const y = tape.record(() => headActivation(x, c.a));
    assertClose(await y.toArray(), headActivationRef(xv, c.shape, c.a), { atol: 1e-7, rtol: 1e-6 }, 'forward');
    const dyv = randomArray(rng, n, -1, 1);
    const dy = Tensor.from(gpu, c.shape, dyv);
    tape.backward(y, dy);
    const gx = await x.grad!.toArray();
    const xs = f64(xv);
    const idx = sampleIndices(n, 60);
    assertClose(idx.map((i) => gx[i]), finiteDiff(() => dot(headActivationRef(xs, c.shape, c.a), dyv), xs, idx, 1e-5), { atol: 1e-6, rtol: 1e-4 }, 'backward');
    for (const t of [x, y, dy, x.grad!]) t.dispose();
    tape.dispose();
  });
}

test.run();
