/**
 * Whole networks vs OpenCV DNN 4.6 (../shared/golden/networks, README "networks/"): Darknet cfg + seeded
 * .weights + input.npy; every head convolution's raw output (conv_N.npy) must match within 1e-4 of its
 * max|value|, and each [yolo] layer's output Darknet's own activations (yolo_M.darknet.npy).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { Network } from '../../src/darknet/network.js';
import { loadWeights } from '../../src/darknet/weights.js';
import { readNpyF32 } from '../../src/util/npy.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { pickWinograd } from '../helpers/winograd.js';
import { tuneTable } from '../../src/gpu/tune.js';

const TOL = 1e-4;

// winograd: also run with every 3x3 stride-1 conv through Winograd (odd.cfg has none it takes: its 3x3 convs
// read 3 channels, or are strided and grouped)
const CASES: { dir: string; cfg: (shared: string) => string; weights: string; what: string; winograd?: boolean }[] = [
  { dir: 'out_odd', cfg: (s) => path.join(s, 'golden/networks/odd.cfg'), weights: 'odd.weights', what: '75x53, odd maxpools, groups, mismatched shortcut' },
  { dir: 'out_v3t', cfg: (s) => path.join(s, 'darknet-cfg/yolov3-tiny.cfg'), weights: 'yolov3-tiny.weights', what: 'yolov3-tiny 160x160', winograd: true },
  { dir: 'out_v3t_b2', cfg: (s) => path.join(s, 'darknet-cfg/yolov3-tiny.cfg'), weights: 'yolov3-tiny.weights', what: 'yolov3-tiny 128x96 batch 2', winograd: true },
  { dir: 'out_v4t', cfg: (s) => path.join(s, 'darknet-cfg/yolov4-tiny.cfg'), weights: 'yolov4-tiny.weights', what: 'yolov4-tiny 192x160, route groups, scale_x_y 1.05', winograd: true },
];

/** max|a - e| / max|e| */
function relErr(a: Float32Array, e: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - e[i]));
  return m / maxAbs(e);
}

for (const c of CASES) for (const winograd of c.winograd ? [false, true] : [false]) {
  test(`OpenCV DNN golden ${c.dir} (${c.what}): head convolutions and [yolo] outputs${winograd ? ', every 3x3 stride-1 conv through Winograd' : ''}`, async () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared('the OpenCV network goldens');
    const dir = path.join(shared, 'golden/networks', c.dir);
    const gpu = await getGpu();
    const input = readNpyF32(path.join(dir, 'input.npy'));
    const [B, C, H, W] = input.shape;
    const net = Network.fromFile(c.cfg(shared), { width: W, height: H, channels: C, batch: B });
    loadWeights(net, path.join(shared, 'golden/networks', c.weights));
    // the direct kernels: precision f32; Winograd: precision auto with every 3x3 stride-1 conv picked for it
    const picked = winograd ? pickWinograd(net, gpu) : [];
    if (winograd) assert.ok(picked.length > 0, 'some conv takes Winograd');
    const tiles = ([4, 2] as const).map((n) => `${picked.filter((e) => e.tile === n).length} F(${n}x${n})`).join(', ');
    net.prepare(gpu, 'infer', { precision: winograd ? 'auto' : 'f32' });
    const heads = net.layers.filter((l) => l.kind === 'yolo');
    const feeds = heads.map((l) => l.sources[0]);
    const x = Tensor.from(gpu, input.shape, input.data, 'input');
    // which kernels the forward dispatches (a dry run: every adapter, timestamp queries or not)
    const kernels = gpu.collectKernels(() => {
      for (const t of new Set(net.forward(x, { keep: feeds }).values())) t.dispose();
    });
    assert.is(kernels.some((k) => k.file === 'conv2d_winograd'), winograd, `Winograd kernels run: ${winograd}`);
    const t0 = performance.now();
    const outs = net.forward(x, { keep: feeds });
    const report: string[] = [];
    try {
      for (const j of feeds) {
        const g = readNpyF32(path.join(dir, `conv_${j}.npy`));
        const t = outs.get(j)!;
        assert.equal([...t.shape], g.shape, `conv_${j} shape`);
        const err = relErr(await t.toArray(), g.data);
        report.push(`conv_${j} ${err.toExponential(2)}`);
        assert.ok(err <= TOL, `${c.dir} conv_${j}: max|err| = ${err.toExponential(3)} of max|value| > ${TOL}`);
      }
      for (const l of heads) {
        const f = path.join(dir, `yolo_${l.index}.darknet.npy`);
        if (!fs.existsSync(f)) continue;
        const g = readNpyF32(f);
        const err = relErr(await outs.get(l.index)!.toArray(), g.data);
        report.push(`yolo_${l.index} ${err.toExponential(2)}`);
        assert.ok(err <= TOL, `${c.dir} yolo_${l.index} (Darknet activations): ${err.toExponential(3)} > ${TOL}`);
      }
    } finally {
      for (const t of new Set(outs.values())) t.dispose();
      x.dispose();
      net.dispose();
      tuneTable(gpu).clear();
    }
    console.log(`  ${c.dir}${winograd ? ` (${picked.length} convs through Winograd: ${tiles})` : ''}: ${report.join(', ')} (relative to max|value|; forward+readback ${(performance.now() - t0).toFixed(0)} ms)`);
  });
}

test.run();
