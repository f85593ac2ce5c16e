/**
 * The device peak probe (src/perf/peak.ts, kernels/peak.wgsl): the kernel really runs the FMAs it is
 * credited with (its output against the float64 closed form of the recurrence, for the loop count the FLOP
 * formula assumes), the probe returns a positive finite GFLOP/s, and the kernel and network benches carry
 * the peak and every case's fraction of it. No timing assertions. Also the Darknet peer's parsers
 * (bench/peers/darknet.ts), which need no Darknet binary.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { packageRoot } from '../../src/util/paths.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { LOAD_PROBE_FLOATS, LOAD_VARIANTS, PEAK_C, PEAK_M, PEAK_UNROLL, dispatchLoads, dispatchPeak, measureLoads, measurePeak, peakFlops, peakVariants } from '../../src/perf/peak.js';
import { benchKernels, formatKernelBench } from '../../src/perf/kernels.js';
import { benchNetwork, formatNetworkBench } from '../../src/perf/network.js';
import { defaultTile } from '../../src/tensor/ops/matmul.js';
import { cfgWithNet, parseDarknetIterations, probeDarknet, steadyRate } from '../../bench/peers/darknet.js';

test('load probe: every invocation sums the count floats it is credited with, in each variant (exact integer sums)', async () => {
  const gpu = await getGpu();
  const src = Tensor.from(gpu, [LOAD_PROBE_FLOATS], Float32Array.from({ length: LOAD_PROBE_FLOATS }, (_, i) => i % 7));
  const wg = 32;
  const n = 3 * wg;
  const count = 40;
  const out = new Tensor(gpu, [n]);
  try {
    for (const v of LOAD_VARIANTS) {
      dispatchLoads(gpu, v, src, out, n, count, wg);
      const got = await out.toArray();
      for (let i = 0; i < n; i++) {
        const base = (v.addresses === 'uniform' ? Math.floor(i / wg) : i) * count;
        let want = 0;
        for (let k = 0; k < count; k++) want += ((base + k) & (LOAD_PROBE_FLOATS - 1)) % 7;
        assert.is(got[i], want, `${v.width} ${v.addresses} invocation ${i}`);
      }
    }
    // wrapping at the buffer's end: an invocation whose range crosses it
    const far = Tensor.from(gpu, [LOAD_PROBE_FLOATS], Float32Array.from({ length: LOAD_PROBE_FLOATS }, (_, i) => (i >= LOAD_PROBE_FLOATS - 8 || i < 8 ? 1 : 0)));
    const big = LOAD_PROBE_FLOATS / 2 + 4; // invocation 1 reads [big, 2 big): past the end by 8, wrapped to [0, 8)
    dispatchLoads(gpu, { width: 'vec4', addresses: 'lane' }, far, out, wg, big, wg);
    assert.is((await out.toArray())[1], 16, 'the 8 values before the end and the 8 after the wrap');
    far.dispose();
    const r = await measureLoads(gpu, { targetMs: 5, samples: 1, invocations: 256, peak: { gflops: 10 } as never });
    assert.is(r.variants.length, 4);
    assert.ok(r.variants.every((x) => Number.isFinite(x.gfloats) && x.gfloats > 0 && x.count % 4 === 0), 'rates');
    assert.ok(r.fmasPerLoad !== undefined && Math.abs(r.fmasPerLoad - 5 / r.gfloats) < 1e-9, 'FMAs per load from the peak');
  } finally {
    src.dispose();
    out.dispose();
  }
});

test('peak kernel: every invocation runs iters x UNROLL x ACC vec4 FMAs (output = float64 closed form)', async () => {
  const gpu = await getGpu();
  for (const v of [{ acc: 4, wg: 16 }, { acc: 8, wg: 32 }]) {
    const n = 2 * v.wg;
    const iters = 50;
    const out = new Tensor(gpu, [4 * n]);
    try {
      dispatchPeak(gpu, v, out, n, iters);
      const got = await out.toArray();
      // a_k = fma(a_{k-1}, m, c) from a_0 = (i & 255, j, 1, 2) * 0.001: a_K = 1 + (a_0 - 1) m^K with c = 1 - m
      const m = Math.fround(PEAK_M);
      const c = Math.fround(PEAK_C);
      const K = iters * PEAK_UNROLL;
      const fix = c / (1 - m);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        for (let comp = 0; comp < 4; comp++) {
          let want = 0;
          for (let j = 0; j < v.acc; j++) {
            const a0 = Math.fround([i & 255, j, 1, 2][comp] * Math.fround(0.001));
            want += fix + (a0 - fix) * m ** K;
          }
          worst = Math.max(worst, Math.abs(got[4 * i + comp] - want));
        }
      }
      // one round more or less would move each sum by ~ACC * 4 * 8e-4; float32 rounding stays far below
      assert.ok(worst < 2e-4 * v.acc, `acc ${v.acc} wg ${v.wg}: max |err| ${worst}`);
    } finally {
      out.dispose();
    }
  }
  assert.is(peakFlops(64, 10, 8), 64 * 10 * PEAK_UNROLL * 8 * 4 * 2);
});

test('measurePeak: a positive finite GFLOP/s, the best of the variants', async () => {
  const gpu = await getGpu();
  const vs = peakVariants(gpu);
  assert.ok(vs.length >= 4 && vs.every((v) => v.wg >= 16 && (v.acc === 4 || v.acc === 8)), JSON.stringify(vs));
  const r = await measurePeak(gpu, { variants: [{ acc: 4, wg: 16 }, { acc: 8, wg: 32 }], invocations: 1024, targetMs: 20, samples: 1 });
  assert.ok(Number.isFinite(r.gflops) && r.gflops > 0, `peak ${r.gflops}`);
  assert.ok(Number.isFinite(r.gflops_cpu) && r.gflops_cpu > 0);
  assert.is(r.variants.length, 2);
  assert.is(r.gflops, Math.max(...r.variants.map((v) => v.gflops)));
  for (const v of r.variants) {
    assert.is(v.flops, peakFlops(v.invocations, v.iters, v.acc));
    assert.ok(v.ms > 0 && v.iters >= 16 && v.invocations % v.wg === 0);
  }
  assert.ok(r.variants.some((v) => v.acc === r.best.acc && v.wg === r.best.wg));
});

test('bench kernels and bench network report the peak and each case as a fraction of it', async () => {
  const gpu = await getGpu();
  const peak = await measurePeak(gpu, { variants: [{ acc: 4, wg: 16 }], invocations: 1024, targetMs: 10, samples: 1 });
  const k = await benchKernels(gpu, {
    size: 32, layers: [0], passes: ['fwd'], variants: ['gemm_reg'], matmulSizes: [[64, 64, 64]], matmulConfigs: [{ variant: 'reg', tile: defaultTile('reg') }],
    iters: 1, minIters: 1, budgetSeconds: 0, peak,
  });
  assert.is(k.peak, peak);
  assert.is(k.matmul.best.fraction_of_peak, k.matmul.best.gflops / peak.gflops);
  assert.is(k.conv.length, 1);
  const c = k.conv[0];
  assert.ok(Number.isFinite(c.fraction_of_peak) && c.fraction_of_peak > 0, `fraction_of_peak ${c.fraction_of_peak}`);
  assert.is(c.fraction_of_peak, c.gflops / peak.gflops);
  const md = formatKernelBench(k);
  assert.ok(md.includes('device peak:') && md.includes('of the device peak') && md.includes('| pk |'), md);
  // without a peak: no fractions, no column (and older result files without `peak` still format)
  const none = await benchKernels(gpu, {
    size: 32, layers: [0], passes: ['fwd'], variants: ['gemm_reg'], matmulSizes: [[64, 64, 64]], matmulConfigs: [{ variant: 'reg', tile: defaultTile('reg') }],
    iters: 1, minIters: 1, budgetSeconds: 0, peak: false,
  });
  // winograd: a forward row where it applies (layer 6, 64 -> 128), none for layer 0 (3 channels) or a backward pass
  const wk = await benchKernels(gpu, {
    size: 64, layers: [0, 6], passes: ['fwd', 'bwd_data'], variants: ['winograd'], matmulSizes: [[64, 64, 64]], matmulConfigs: [{ variant: 'reg', tile: defaultTile('reg') }],
    iters: 1, minIters: 1, budgetSeconds: 0, peak,
  });
  assert.equal(wk.conv.map((c) => `${c.layer} ${c.pass} ${c.variant}`), ['6 fwd winograd']);
  assert.ok(wk.conv[0].gflops > 0 && !wk.conv[0].error, `winograd row ${JSON.stringify(wk.conv[0])}`);
  assert.ok(formatKernelBench(wk).includes('| winograd ms |'));
  assert.is(none.peak, null);
  assert.ok(Number.isNaN(none.conv[0].fraction_of_peak));
  assert.not.ok(formatKernelBench({ ...none, peak: undefined as never }).includes('| pk |'));

  const n = await benchNetwork({
    cfg: path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), gpu, sizes: [64], inferBatches: [1], trainBatches: [], sweepBatches: [], sweepSizes: [],
    iters: 1, minIters: 1, budgetSeconds: 0, peak,
  });
  assert.equal(n.errors, []);
  assert.is(n.peak, peak);
  assert.is(n.infer.length, 1);
  assert.is(n.infer[0].fraction_of_peak, n.infer[0].gflops / peak.gflops);
  const nmd = formatNetworkBench(n);
  assert.ok(nmd.includes('device peak:') && nmd.includes('% of device peak'), nmd);
});

test('Darknet peer: iteration lines, steady img/s, cfg copies, and "not run" without a binary', () => {
  const lines = [
    ' 1: 101.9, 101.9 avg loss, 0.000000 rate, 0.4 seconds, 8 images, -1.0 hours left',
    'Loaded: 0.000031 seconds',
    '\x1b[H\x1b[J 2: 99.5, 101.6 avg loss, 0.000000 rate, 0.1 seconds, 16 images, 0.01 hours left',
    ' 3: nan, 101.6 avg loss, 0.000001 rate, 0.1 seconds, 24 images, 0.01 hours left',
    ' 4: 98.0, 101.0 avg loss, 0.000001 rate, 0.1 seconds, 32 images, 0.01 hours left',
  ].map((line, i) => ({ line, t_ms: 1000 * i }));
  const pts = parseDarknetIterations(lines);
  assert.equal(pts.map((p) => p.iteration), [1, 2, 3, 4]);
  assert.equal(pts.map((p) => p.t_ms), [0, 2000, 3000, 4000]);
  assert.is(pts[0].loss, 101.9);
  assert.ok(Number.isNaN(pts[2].loss));
  // iterations 2..4: 2 updates of 8 images in 2 s
  assert.equal(steadyRate(pts, 8, 2), { rate: 8, from: 2 });
  assert.ok(Number.isNaN(steadyRate(pts, 8, 4).rate));
  const cfg = '[net]\nbatch=8\nwidth=96\n\n[convolutional]\nbatch=3\n';
  assert.is(cfgWithNet(cfg, { width: 416, max_batches: 20 }), '[net]\nmax_batches=20\nbatch=8\nwidth=416\n\n[convolutional]\nbatch=3\n');
  assert.throws(() => cfgWithNet('[convolutional]\n', { batch: 1 }), /no \[net\]/);
  const none = probeDarknet(undefined);
  assert.is(none.available, false);
  assert.match(none.reason!, /no --darknet PATH given.*make GPU=0 CUDNN=0 OPENCV=0 AVX=1 OPENMP=1/);
  const missing = probeDarknet('/nonexistent/darknet');
  assert.is(missing.available, false);
  assert.match(missing.reason!, /no such file/);
});

test.run();
