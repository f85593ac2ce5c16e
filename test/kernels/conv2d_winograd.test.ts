import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, channelSlice, type Tol } from '../helpers/check.js';
import { conv2dRef, refGeom } from '../reference/conv2d.js';
import { act as actRef } from '../reference/activation.js';
import { maxpoolRef } from '../reference/pool.js';
import { Tensor, ACTIVATIONS, type Activation } from '../../src/tensor/index.js';
import { conv2dForward, convGeom, convTuneKey, type Conv2dParams } from '../../src/tensor/ops/conv2d.js';
import { conv2dWinograd, useWinograd, winogradPanel, winogradPlan, winogradSupported, winogradTile, winogradWeights, type WinogradTile } from '../../src/tensor/ops/conv2d_winograd.js';
import { convTuneCandidates } from '../../src/tensor/ops/conv_tune.js';
import { fixedSubgroupSize } from '../../src/tensor/ops/matmul.js';
import { tuneTable } from '../../src/gpu/tune.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// Winograd F(4x4, 3x3) rounds differently from a direct conv: the transforms multiply by up to 5 (B), 8 (A)
// and divide by 6 and 24 (G), so float32 errors grow about 10x over the direct kernels' (Lavin & Gray 2015;
// Barabasz et al. 2020, "Error analysis and improving the accuracy of Winograd convolution"). F(2x2, 3x3)'s
// matrices hold only 0, +-1 and 1/2, and its errors stay near the direct kernels'. The direct tests
// (conv2d.test.ts) allow atol 1e-5 + 1e-6 per accumulated term and rtol 1e-4; these allow ten times the
// per-term part, for both tiles. The largest errors reached are printed at the end.
const tolFor = (n: number): Tol => ({ atol: 1e-5 + 1e-5 * n, rtol: 1e-4 });
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const TILES: WinogradTile[] = [4, 2];
const F = (n: WinogradTile) => `F(${n}x${n})`;

interface Case { name: string; x: number[]; M: number; pad: number; bias: boolean }
const CASES: Case[] = [
  { name: 'pad 1, 4->4, 5x7 (one tile row, edge tiles)', x: [1, 4, 5, 7], M: 4, pad: 1, bias: true },
  { name: 'pad 1, batch 2, 8->12, 13x13 (4x4 tiles past the map)', x: [2, 8, 13, 13], M: 12, pad: 1, bias: true },
  { name: 'pad 1, 16->32, 16x12 (OW % 4 == 0: vec4 stores)', x: [1, 16, 16, 12], M: 32, pad: 1, bias: true },
  { name: 'pad 0 valid, 4->8, 9x6', x: [1, 4, 9, 6], M: 8, pad: 0, bias: false },
  { name: 'pad 2, 64->8, 17x11 (long reduction)', x: [1, 64, 17, 11], M: 8, pad: 2, bias: true },
  { name: 'pad 1, batch 3, 12->20, 1x9 and 3 x 1 rows', x: [3, 12, 1, 9], M: 20, pad: 1, bias: true },
  { name: 'pad 1, batch 2, 8->96 (3 column panels on lavapipe), 10x9 (18 tiles)', x: [2, 8, 10, 9], M: 96, pad: 1, bias: true },
];

const worst: Record<string, { err: number; tol: string }> = {};
function note(key: string, err: number, tol: Tol): void {
  if (!worst[key] || err > worst[key].err) worst[key] = { err, tol: `atol ${tol.atol.toExponential(1)} rtol ${tol.rtol}` };
}

function data(c: Case, seed: number) {
  const rng = new Rng(seed);
  const w = [c.M, c.x[1], 3, 3];
  return { w, xv: randomArray(rng, prod(c.x)), wv: randomArray(rng, prod(w)), bv: c.bias ? randomArray(rng, c.M) : null };
}

for (const c of CASES) for (const n of TILES) {
  test(`winograd ${F(n)} ${c.name}: vs float64, every activation; the weights transformed twice give the same bits`, async () => {
    const gpu = await getGpu();
    const d = data(c, 300 + CASES.indexOf(c));
    const p: Conv2dParams = { pad: c.pad };
    assert.ok(winogradSupported(convGeom(c.x, d.w, p)));
    const ref = conv2dRef(d.xv, c.x, d.wv, d.w, d.bv, p);
    const tol = tolFor(c.x[1] * 9 + 1);
    const x = Tensor.from(gpu, c.x, d.xv);
    const w = Tensor.from(gpu, d.w, d.wv);
    const b = d.bv ? Tensor.from(gpu, [c.M], d.bv) : null;
    // the adapter's layout (column panels where the products run 'sg' and Cout allows) and row-major
    const panel = winogradPanel(gpu, c.M);
    const u = winogradWeights(w, panel, n);
    const X = (n + 2) ** 2;
    assert.equal([...u.shape], panel ? [X, c.M / panel, c.x[1], panel] : [X, c.x[1], c.M]);
    for (const act of ACTIVATIONS) {
      const y = conv2dWinograd(x, u, b, p, act);
      assert.equal([...y.shape], ref.shape);
      const got = await y.toArray();
      note(`${F(n)} y ${act}`, assertClose(got, Float64Array.from(ref.y, (v) => actRef(v, act)), tol, `${F(n)} ${c.name} [${act}]`), tol);
      if (act === 'leaky') {
        for (const layout of [panel, 0]) {
          const u2 = winogradWeights(w, layout, n);
          const again = await conv2dWinograd(x, u2, b, p, act).toArray();
          assert.ok(again.every((v, i) => Object.is(v, got[i])), `weights transformed again (${layout ? `panels of ${layout}` : 'row-major'}): the same bits`);
          u2.dispose();
        }
      }
      y.dispose();
    }
    for (const t of [x, w, b, u]) t?.dispose();
  });
}

test('winograd error against the direct kernel: F(4x4) about 10x its error on a 64-channel conv (the reason for the tolerance), under 20x; F(2x2) under 3x', async () => {
  const gpu = await getGpu();
  const c = CASES[4];
  const d = data(c, 7);
  const p = { pad: c.pad };
  const ref = conv2dRef(d.xv, c.x, d.wv, d.w, d.bv, p).y;
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, d.w, d.wv);
  const b = Tensor.from(gpu, [c.M], d.bv!);
  const maxErr = (a: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
  const u = winogradWeights(w);
  const u2 = winogradWeights(w, undefined, 2);
  const eW = maxErr(await conv2dWinograd(x, u, b, p).toArray());
  const eW2 = maxErr(await conv2dWinograd(x, u2, b, p).toArray());
  const eD = maxErr(await conv2dForward(x, w, b, p, 'gemm_reg').toArray());
  console.log(`  winograd max error F(4x4) ${eW.toExponential(2)}, F(2x2) ${eW2.toExponential(2)}, gemm_reg ${eD.toExponential(2)} (max |y| ${ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toFixed(2)})`);
  assert.ok(eW > 0 && eW < 20 * Math.max(eD, 1e-6), `F(4x4) ${eW} vs direct ${eD}`);
  assert.ok(eW2 > 0 && eW2 < 3 * Math.max(eD, 1e-6), `F(2x2) ${eW2} vs direct ${eD}`);
  for (const t of [x, w, b, u, u2]) t.dispose();
});

test('winograd (both tiles) with the 2x2/2 maxpool in its output transform == conv, activation, maxpool (float64), odd maps, padding 0 and 1', async () => {
  const gpu = await getGpu();
  const cases = [
    { x: [2, 8, 13, 11], M: 12, pool: { size: 2, stride: 2 } }, // last window row / column holds one conv output
    { x: [1, 4, 9, 7], M: 8, pool: { size: 2, stride: 2, padding: 0 } }, // the odd row / column is dropped
    { x: [1, 4, 8, 8], M: 4, pool: { size: 2, stride: 2 } },
  ];
  const rng = new Rng(41);
  for (const c of cases) {
    const wShape = [c.M, c.x[1], 3, 3];
    const xv = randomArray(rng, prod(c.x));
    const wv = randomArray(rng, prod(wShape));
    const bv = randomArray(rng, c.M);
    const conv = conv2dRef(xv, c.x, wv, wShape, bv, { pad: 1 });
    const tol = tolFor(c.x[1] * 9 + 1);
    const x = Tensor.from(gpu, c.x, xv);
    const w = Tensor.from(gpu, wShape, wv);
    const b = Tensor.from(gpu, [c.M], bv);
    for (const n of TILES) {
      const u = winogradWeights(w, undefined, n);
      for (const act of ['leaky', 'mish', 'linear'] as Activation[]) {
        const want = maxpoolRef(Float64Array.from(conv.y, (v) => actRef(v, act)), conv.shape, { size: 2, strideX: 2, strideY: 2, padding: c.pool.padding ?? 1 });
        const y = conv2dWinograd(x, u, b, { pad: 1 }, act, { pool: c.pool });
        assert.equal([...y.shape], want.shape);
        note(`${F(n)} pooled ${act}`, assertClose(await y.toArray(), want.y, tol, `${F(n)} ${c.x.join('x')} pooled [${act}]`), tol);
        y.dispose();
      }
      u.dispose();
    }
    for (const t of [x, w, b]) t.dispose();
  }
});

test('winograd (both tiles) into a channel slice of a bigger tensor: the other channels untouched', async () => {
  const gpu = await getGpu();
  const c = CASES[1];
  const d = data(c, 12);
  const ref = conv2dRef(d.xv, c.x, d.wv, d.w, d.bv, { pad: 1 }).y;
  const [B, , OH, OW] = [c.x[0], c.M, 13, 13];
  const Ctot = 19;
  const off = 5;
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, d.w, d.wv);
  const b = Tensor.from(gpu, [c.M], d.bv!);
  const want = Float64Array.from(ref, (e) => actRef(e, 'leaky'));
  for (const n of TILES) {
    const u = winogradWeights(w, undefined, n);
    const dst = Tensor.from(gpu, [B, Ctot, OH, OW], new Float32Array(B * Ctot * OH * OW).fill(7.5));
    assert.is(conv2dWinograd(x, u, b, { pad: 1 }, 'leaky', { out: { dst, channelOffset: off } }), dst);
    const got = channelSlice(await dst.toArray(), { B, Ctot, off, C: c.M, plane: OH * OW, sentinel: 7.5 }, `winograd ${F(n)}`);
    assertClose(got, want, tolFor(73), `${F(n)} slice values`);
    for (const t of [u, dst]) t.dispose();
  }
  for (const t of [x, w, b]) t.dispose();
});

test('winograd transforms past maxComputeWorkgroupsPerDimension: split (P.t0) or on a 2-D grid (weights), the same bits', async () => {
  const gpu = await getGpu();
  const c: Case = { name: 'split', x: [1, 64, 80, 72], M: 64, pad: 1, bias: true };
  const d = data(c, 5);
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, d.w, d.wv);
  const b = Tensor.from(gpu, [c.M], d.bv!);
  const u = winogradWeights(w);
  const whole = await conv2dWinograd(x, u, b, { pad: 1 }, 'leaky').toArray();
  const pooledWhole = await conv2dWinograd(x, u, b, { pad: 1 }, 'leaky', { pool: { size: 2, stride: 2 } }).toArray();
  await gpu.sync();
  const limits = gpu.limits;
  const keep = limits.maxComputeWorkgroupsPerDimension;
  const before = gpu.dispatches;
  let split: Float32Array;
  let pooledSplit: Float32Array;
  let uSplit: Float32Array;
  try {
    // the weight transform: 64 x 64/4 = 1024 invocations, 16 workgroups on a 2-D grid at a limit of 4
    limits.maxComputeWorkgroupsPerDimension = 4;
    const u2 = winogradWeights(w);
    uSplit = await u2.toArray();
    u2.dispose();
    // 20 x 18 = 360 tiles x 16 channel groups = 5760 invocations: 90 workgroups of 64, 2 dispatches per
    // transform at a limit of 64 (the matmul's grid fits: 36 products, 45 row blocks of 8 ('reg' on GL and
    // SwiftShader) or 15 of 24 ('sg' on lavapipe); its dimensions are not split)
    limits.maxComputeWorkgroupsPerDimension = 64;
    split = await conv2dWinograd(x, u, b, { pad: 1 }, 'leaky').toArray();
    pooledSplit = await conv2dWinograd(x, u, b, { pad: 1 }, 'leaky', { pool: { size: 2, stride: 2 } }).toArray();
  } finally {
    limits.maxComputeWorkgroupsPerDimension = keep;
  }
  assert.is(gpu.dispatches - before, 1 + 2 * (2 + 1 + 2), `split dispatches (${gpu.dispatches - before})`);
  const uWhole = await u.toArray();
  assert.ok(uSplit.every((v, i) => Object.is(v, uWhole[i])), 'weight transform on a 2-D grid: the same bits');
  assert.ok(split.every((v, i) => Object.is(v, whole[i])), 'same bits split and whole');
  assert.ok(pooledSplit.every((v, i) => Object.is(v, pooledWhole[i])), 'same bits split and whole (pooled)');
  assertClose(whole, Float64Array.from(conv2dRef(d.xv, c.x, d.wv, d.w, d.bv, { pad: 1 }).y, (v) => actRef(v, 'leaky')), tolFor(577), 'split case vs float64');
  for (const t of [x, w, b, u]) t.dispose();
});

test('winograd: what it takes, and clear errors for what it does not', async () => {
  const gpu = await getGpu();
  const g = (x: number[], w: number[], p: Conv2dParams) => winogradSupported(convGeom(x, w, p));
  assert.ok(g([1, 4, 8, 8], [4, 4, 3, 3], { pad: 1 }));
  assert.not.ok(g([1, 4, 8, 8], [4, 4, 3, 3], { pad: 1, stride: 2 }), 'stride 2');
  assert.not.ok(g([1, 3, 8, 8], [4, 3, 3, 3], { pad: 1 }), 'Cin 3');
  assert.not.ok(g([1, 4, 8, 8], [6, 4, 3, 3], { pad: 1 }), 'Cout 6');
  assert.not.ok(g([1, 8, 8, 8], [8, 4, 3, 3], { pad: 1, groups: 2 }), 'groups');
  assert.not.ok(g([1, 4, 8, 8], [4, 4, 3, 3], { pad: 2, dilation: 2 }), 'dilation');
  assert.not.ok(g([1, 4, 8, 8], [4, 4, 1, 1], {}), '1x1');
  const x = Tensor.from(gpu, [1, 4, 6, 6], new Float32Array(144));
  const w3 = Tensor.from(gpu, [4, 3, 3, 3], new Float32Array(108));
  assert.throws(() => winogradWeights(w3), /Cin and Cout multiples of 4, got .*\[4, 3, 3, 3\]/);
  const w = Tensor.from(gpu, [4, 4, 3, 3], new Float32Array(144));
  const u = winogradWeights(w);
  assert.throws(() => conv2dWinograd(x, w, null), /transformed weights must be \[36 or 16, Cin, Cout\] or its panels/);
  assert.throws(() => winogradWeights(w, 0, 3 as WinogradTile), /the output tile must be 4 or 2, got 3/);
  assert.throws(() => winogradWeights(w, 8), /panels of 8 columns need Cout \(4\) a multiple of them/);
  assert.throws(() => conv2dWinograd(x, u, null, { pad: 1, stride: 2 }), /3x3 stride-1 conv/);
  assert.throws(() => conv2dWinograd(x, u, null, { pad: 1 }, 'linear', { pool: { size: 3, stride: 2 } }), /only a 2x2\/2 maxpool/);
  const b5 = Tensor.from(gpu, [5], new Float32Array(5));
  assert.throws(() => conv2dWinograd(x, u, b5, { pad: 1 }), /bias has shape \[5\], expected \[4\]/);
  for (const t of [x, w3, w, u, b5]) t.dispose();
});

test('winogradTile: F(2x2) where one image\'s products are smaller (maps up to 10x10), F(4x4) from 11x11; the same at any batch', () => {
  const tile = (O: number, B = 1, W = O) => winogradTile(convGeom([B, 64, O, W], [64, 64, 3, 3], { pad: 1 }));
  for (const B of [1, 8]) {
    for (const O of [3, 4, 5, 6, 7, 8, 9, 10]) assert.is(tile(O, B), 2, `${O}x${O}, batch ${B}`);
    for (const O of [11, 12, 13, 16, 19, 26, 52, 104]) assert.is(tile(O, B), 4, `${O}x${O}, batch ${B}`);
  }
  // 8 x 40: F(2x2) 80 tiles (16 x 80 rows), F(4x4) 20 (36 x 32 rows)
  assert.is(tile(8, 1, 40), 4, '8x40');
  assert.is(tile(8, 1, 12), 2, '8x12: F(2x2) 24 tiles (16 x 32 rows), F(4x4) 6 (36 x 16 rows)');
});

test('useWinograd: the tuned pick when there is one, else lavapipe from 4e7 multiply-adds (2.5e7 at F(2x2)), 64 channels in, tiles padding the map at most 60% (any batch); never past the binding limit; tune candidates', async () => {
  const gpu = await getGpu();
  const sg8 = gpu.info.kind !== 'gpu' && fixedSubgroupSize(gpu) === 8;
  const big = convGeom([1, 128, 52, 52], [128, 128, 3, 3], { pad: 1 }); // 399M multiply-adds, 169 tiles
  assert.is(useWinograd(gpu, big), sg8, `${gpu.info.kind}: 128->128 at 52x52`);
  assert.not.ok(useWinograd(gpu, convGeom([1, 32, 104, 104], [64, 32, 3, 3], { pad: 1 })), '32 input channels');
  assert.not.ok(useWinograd(gpu, convGeom([1, 64, 13, 13], [128, 64, 3, 3], { pad: 1 })), '12.5M multiply-adds');
  assert.not.ok(useWinograd(gpu, convGeom([1, 64, 16, 16], [128, 64, 3, 3], { pad: 1 })), '18.9M multiply-adds');
  assert.is(useWinograd(gpu, convGeom([1, 128, 16, 16], [256, 128, 3, 3], { pad: 1 })), sg8, '75.5M multiply-adds, 16 tiles');
  // per image, not per batch: the same kernels (the same bits) for an image whatever the batch
  for (const B of [1, 2, 4, 8]) {
    assert.is(useWinograd(gpu, convGeom([B, 256, 8, 8], [512, 256, 3, 3], { pad: 1 })), sg8, `8x8 (F(2x2)), batch ${B}`);
    assert.not.ok(useWinograd(gpu, convGeom([B, 64, 13, 13], [128, 64, 3, 3], { pad: 1 })), `12.5M multiply-adds per image, batch ${B}`);
    assert.is(useWinograd(gpu, convGeom([B, 128, 52, 52], [128, 128, 3, 3], { pad: 1 })), sg8, `52x52, batch ${B}`);
  }
  assert.is(useWinograd(gpu, convGeom([1, 512, 7, 7], [512, 512, 3, 3], { pad: 1 })), sg8, '7x7 (F(2x2): 16 tiles, 1.31x the map)');
  assert.is(useWinograd(gpu, convGeom([1, 256, 12, 12], [512, 256, 3, 3], { pad: 1 })), sg8, '12x12 (F(4x4): 9 tiles)');
  assert.not.ok(useWinograd(gpu, convGeom([1, 768, 3, 3], [768, 768, 3, 3], { pad: 1 })), '3x3 (F(2x2): 4 tiles, 1.78x the map)');
  assert.is(useWinograd(gpu, convGeom([1, 256, 8, 8], [256, 256, 3, 3], { pad: 1 })), sg8, '8x8, 37.7M multiply-adds (F(2x2): from 2.5e7)');
  assert.not.ok(useWinograd(gpu, convGeom([1, 128, 8, 8], [256, 128, 3, 3], { pad: 1 })), '8x8, 18.9M multiply-adds');
  assert.not.ok(useWinograd(gpu, convGeom([1, 192, 13, 13], [128, 192, 3, 3], { pad: 1 })), '13x13 (F(4x4)), 37.4M multiply-adds');
  assert.not.ok(useWinograd(gpu, convGeom([1, 128, 52, 52], [128, 128, 3, 3], { pad: 1, stride: 2 })), 'stride 2');
  const table = tuneTable(gpu);
  const small = convGeom([1, 8, 12, 12], [8, 8, 3, 3], { pad: 1 });
  try {
    table.set('conv2d', convTuneKey(small, 'fwd'), 'winograd');
    assert.ok(useWinograd(gpu, small), 'a measured winograd pick is followed');
    // the pick's tile, whatever the untuned rule's: F(4x4) on an 8x8 map at batch 8, F(2x2) on a 52x52 one
    const b8 = convGeom([8, 256, 8, 8], [512, 256, 3, 3], { pad: 1 });
    assert.is(winogradPlan(gpu, b8), sg8 ? 2 : 0, 'untuned: F(2x2) on lavapipe');
    table.set('conv2d', convTuneKey(b8, 'fwd'), 'winograd');
    assert.is(winogradPlan(gpu, b8), 4, "'winograd': F(4x4)");
    table.set('conv2d', convTuneKey(b8, 'fwd'), 'winograd2');
    assert.is(winogradPlan(gpu, b8), 2, "'winograd2': F(2x2)");
    table.set('conv2d', convTuneKey(big, 'fwd'), 'winograd2');
    assert.is(winogradPlan(gpu, big), 2, "'winograd2' on 52x52");
    table.set('conv2d', convTuneKey(big, 'fwd'), 'tile');
    assert.not.ok(useWinograd(gpu, big), 'a measured direct pick is followed');
    // conv2dForward's auto does not run the winograd pick (the layer keeps the transformed weights; auto
    // would transform them on every call): the heuristic's direct kernel
    const x = Tensor.from(gpu, [1, 8, 12, 12], new Float32Array(1152).fill(0.5));
    const w = Tensor.from(gpu, [8, 8, 3, 3], new Float32Array(576).fill(0.25));
    const before = gpu.dispatches;
    conv2dForward(x, w, null, { pad: 1 }).dispose();
    assert.is(gpu.dispatches - before, 1, 'one direct dispatch, not the four of winograd');
    x.dispose();
    w.dispose();
  } finally {
    table.clear();
  }
  const limits = gpu.limits;
  const keep = limits.maxStorageBufferBindingSize;
  try {
    limits.maxStorageBufferBindingSize = 36 * 4 * 128 * 128 - 4; // the transformed weights do not fit
    assert.not.ok(useWinograd(gpu, big), 'past the binding limit');
  } finally {
    limits.maxStorageBufferBindingSize = keep;
  }
  assert.ok(convTuneCandidates(big, 'fwd').includes('winograd') && convTuneCandidates(big, 'fwd').includes('winograd2'));
  assert.not.ok(convTuneCandidates(big, 'bwd_data').some((a) => a.startsWith('winograd')));
  assert.not.ok(convTuneCandidates(convGeom([1, 3, 8, 8], [4, 3, 3, 3], { pad: 1 }), 'fwd').includes('winograd'));
});

test('summary of the largest winograd errors reached', () => {
  for (const [k, v] of Object.entries(worst)) console.log(`  ${k.padEnd(16)} max |err| ${v.err.toExponential(2)} (${v.tol})`);
});

test.run();
