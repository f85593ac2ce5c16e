import { test } from 'uvu';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import { scaleChannelsRef } from '../reference/scale_channels.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { scaleChannels } from '../../src/tensor/ops/scale_channels.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Planes of 21 (scalar kernels) and 24 values (per-channel scales take the vec4 entries fwd4 / bwd_from4).
for (const [wh, fShape] of [[false, [2, 5, 3, 7]], [false, [2, 5, 4, 6]], [true, [2, 5, 3, 7]], [true, [2, 5, 4, 6]]] as [boolean, number[]][]) {
  test(`scale_channels${wh ? ' scale_wh=1' : ''} [${fShape}]: forward vs float64 (exact: one rounded product), both gradients vs finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng((wh ? 5 : 6) + fShape[2]);
    const sShape = wh ? [fShape[0], 1, fShape[2], fShape[3]] : [fShape[0], fShape[1], 1, 1];
    const nf = fShape.reduce((a, b) => a * b, 1);
    const ns = sShape.reduce((a, b) => a * b, 1);
    const sv = randomArray(rng, ns, -1, 1);
    const fv = randomArray(rng, nf, -1, 1);
    const s = Tensor.param(gpu, sShape, sv);
    const f = Tensor.param(gpu, fShape, fv);
    const tape = newTape();
    const y = tape.record(() => scaleChannels(s, f, wh));
    assertClose(await y.toArray(), scaleChannelsRef(sv, fv, fShape, wh).map(Math.fround), { atol: 0, rtol: 0 }, 'forward');
    const dyv = randomArray(rng, nf, -1, 1);
    const dy = Tensor.from(gpu, fShape, dyv);
    tape.backward(y, dy);
    const ss = f64(sv);
    const fs = f64(fv);
    const loss = () => dot(scaleChannelsRef(ss, fs, fShape, wh), dyv);
    const tol = { atol: 1e-5, rtol: 1e-4 };
    assertClose(await s.grad!.toArray(), finiteDiff(loss, ss, undefined, 1e-4), tol, 'd scale');
    const idx = sampleIndices(nf, 50);
    const gf = await f.grad!.toArray();
    assertClose(gf, scaleChannelsRef(sv, dyv, fShape, wh).map(Math.fround), { atol: 0, rtol: 0 }, 'd from: one rounded product');
    assertClose(idx.map((i) => gf[i]), finiteDiff(loss, fs, idx, 1e-4), tol, 'd from');
    for (const t of [s, f, y, dy, s.grad!, f.grad!]) t.dispose();
    tape.dispose();
  });
}

test.run();
