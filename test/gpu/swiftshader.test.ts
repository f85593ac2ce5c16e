/**
 * A second subgroup size (docs/gpu.md "Subgroup sizes"): `--backend swiftshader` selects Google's SwiftShader
 * (Vulkan on the CPU, 4-lane subgroups where lavapipe has 8), and the kernels that share values through
 * subgroupShuffle compute the float64 reference there too: gemm_reg conv forward / dx / dw (SG = 4), the tile
 * conv forward (its weights shared over 4 lanes) and the matmul regsg kernel with 4-lane tiles. Skipped (saying why) where SwiftShader is not installed
 * (scripts/setup-swiftshader.sh); `make test-swiftshader` runs every kernel test on it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Gpu } from '../../src/gpu/device.js';
import { GpuError } from '../../src/gpu/errors.js';
import { selectAdapter, swiftshaderIcd } from '../../src/gpu/adapter.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { conv2dForward, conv2dBackwardData, conv2dBackwardWeights } from '../../src/tensor/ops/conv2d.js';
import { fixedSubgroupSize, matmul, sgConfigsFor, configName } from '../../src/tensor/ops/matmul.js';
import { conv2dRef, conv2dGradRef } from '../reference/conv2d.js';
import { matmulRef } from '../reference/matmul.js';
import { assertClose } from '../helpers/check.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const VK_ENV = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'YOLO_WGSL_SWIFTSHADER'] as const;

/** Runs `fn` and puts the Vulkan driver variables back (the other tests' device and ORT read them). */
async function keepVkEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved = VK_ENV.map((k) => process.env[k]);
  try {
    return await fn();
  } finally {
    VK_ENV.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
  }
}

test('backend swiftshader: a missing driver is a clear error naming what to do', async () => {
  await keepVkEnv(async () => {
    process.env.YOLO_WGSL_SWIFTSHADER = '/nonexistent/swiftshader';
    assert.is(swiftshaderIcd(), undefined);
    let err: unknown;
    const lines: string[] = [];
    try {
      await selectAdapter({ backend: 'swiftshader', log: (l) => lines.push(l) });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof GpuError && err.kind === 'no-adapter', String(err));
    assert.match((err as Error).message, /tried: SwiftShader.*setup-swiftshader\.sh.*YOLO_WGSL_SWIFTSHADER/);
    assert.ok(lines.some((l) => /SwiftShader: no vk_swiftshader_icd\.json \(YOLO_WGSL_SWIFTSHADER=\/nonexistent/.test(l)), lines.join('\n'));
  });
});

test('SwiftShader (4-lane subgroups): gemm_reg conv fwd/dx/dw, tile conv fwd and matmul regsg vs float64', async () => {
  if (!swiftshaderIcd()) return void console.log('  [skipped: SwiftShader is not installed (bash scripts/setup-swiftshader.sh, or YOLO_WGSL_SWIFTSHADER)]');
  await keepVkEnv(async () => {
    const gpu = await Gpu.create({ backend: 'swiftshader', tuning: false });
    try {
      assert.is(gpu.info.kind, 'cpu');
      assert.match(gpu.info.summary, /SwiftShader/);
      const sg = fixedSubgroupSize(gpu);
      assert.is(sg, 4, `subgroup size ${sg}`);
      const rng = new Rng(21);
      // 20 output channels: a 16-row tile (4 weight rows per lane, shuffled) and a ragged 4-row one; stride 2
      const cases: [number[], number[], { pad?: number; stride?: number }][] = [[[2, 6, 9, 8], [20, 6, 3, 3], { pad: 1, stride: 2 }], [[1, 12, 7, 7], [18, 12, 1, 1], {}]];
      for (const [xs, ws, p] of cases) {
        const xv = randomArray(rng, xs.reduce((a, b) => a * b, 1));
        const wv = randomArray(rng, ws.reduce((a, b) => a * b, 1));
        const bv = randomArray(rng, ws[0]);
        const ref = conv2dRef(xv, xs, wv, ws, bv, p);
        const dyv = randomArray(rng, ref.y.length);
        const g = conv2dGradRef(xv, xs, wv, ws, dyv, p);
        const x = Tensor.from(gpu, [...xs], xv);
        const w = Tensor.from(gpu, [...ws], wv);
        const b = Tensor.from(gpu, [ws[0]], bv);
        const dy = Tensor.from(gpu, ref.shape, dyv);
        const y = conv2dForward(x, w, b, p, 'gemm_reg');
        const yt = conv2dForward(x, w, b, p, 'tile');
        const dx = conv2dBackwardData(dy, w, [...xs], p, 'gemm_reg');
        const dw = conv2dBackwardWeights(x, dy, [...ws], p, 'gemm_reg');
        const n = ws[1] * ws[2] * ws[3];
        assertClose(await y.toArray(), ref.y, { atol: 1e-5 + 1e-6 * n, rtol: 1e-4 }, `fwd ${ws.join('x')}`);
        assertClose(await yt.toArray(), ref.y, { atol: 1e-5 + 1e-6 * n, rtol: 1e-4 }, `tile fwd ${ws.join('x')}`);
        assertClose(await dx.toArray(), g.dx, { atol: 1e-5 + 1e-6 * ws[0] * ws[2] * ws[3], rtol: 1e-4 }, `dx ${ws.join('x')}`);
        assertClose(await dw.toArray(), g.dw, { atol: 1e-5 + 1e-6 * ref.y.length, rtol: 1e-4 }, `dw ${ws.join('x')}`);
        for (const t of [x, w, b, dy, y, yt, dx, dw]) t.dispose();
      }
      for (const cfg of sgConfigsFor(4)) {
        const [M, N, K] = [37, 24, 20];
        const av = randomArray(rng, M * K);
        const bv = randomArray(rng, K * N);
        const a = Tensor.from(gpu, [M, K], av);
        const b = Tensor.from(gpu, [K, N], bv);
        const c = matmul(a, b, cfg);
        assertClose(await c.toArray(), matmulRef(av, bv, M, N, K), { atol: 1e-6 * K, rtol: 1e-5 }, configName(cfg));
        for (const t of [a, b, c]) t.dispose();
      }
      await gpu.sync();
    } finally {
      gpu.dispose();
    }
  });
});

test.run();
