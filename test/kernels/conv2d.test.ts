import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, channelSlice, dot, f32In, finiteDiff, gradCase, sampleIndices, type Tol } from '../helpers/check.js';
import { conv2dRef, conv2dGradRef, refGeom } from '../reference/conv2d.js';
import { act as actRef, actGrad } from '../reference/activation.js';
import { maxpoolRef } from '../reference/pool.js';
import { Tensor, newTape, activation, ACTIVATIONS, type Activation } from '../../src/tensor/index.js';
import {
  conv2d, conv2dForward, conv2dBackwardData, conv2dBackwardWeights, conv2dBackwardBias, conv2dOutShape, conv2dFlops, conv2dMaxpoolForward,
  chooseConvAlgo, convGeom, convRegTuning, parseConvPick, pointwiseSupported, tileSupported, tileBlockFor, CONV_ALGOS, type Conv2dParams, type ConvAlgo,
} from '../../src/tensor/ops/conv2d.js';
import { fusableMaxpool } from '../../src/tensor/ops/pool.js';
import { fixedSubgroupSize } from '../../src/tensor/ops/matmul.js';
import { sameAtTreeWidths } from '../helpers/tree.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import type { Gpu } from '../../src/gpu/device.js';

// Tolerances. The kernels accumulate n products of O(1) float32 values in float32; the reference does it
// in float64. Worst-case rounding is about n * 2^-24 * max|term|, so allow 1e-6 per accumulated term (a
// 16x margin) on top of atol 1e-5, plus rtol 1e-4. n is the reduction length of the tensor checked:
// Cg*kH*kW (+1 for the bias) for y, Mg*kH*kW for dx, B*OH*OW for dw and db.
const tolFor = (n: number): Tol => ({ atol: 1e-5 + 1e-6 * n, rtol: 1e-4 });
// PyTorch goldens (fixtures/golden/grads.json), from their generator: |a - b| <= 1e-4 + 1e-4|b|.
const GOLDEN_TOL: Tol = { atol: 1e-4, rtol: 1e-4 };

const KERNEL_ALGOS = CONV_ALGOS.filter((a) => a !== 'auto');
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case { name: string; x: number[]; w: number[]; p: Conv2dParams; bias: boolean }

const CASES: Case[] = [
  { name: 'k3 s1 p1, 3->5 channels, batch 2, odd 7x9', x: [2, 3, 7, 9], w: [5, 3, 3, 3], p: { pad: 1 }, bias: true },
  { name: 'k3 s2 p1, 5->7, non-square 9x6', x: [1, 5, 9, 6], w: [7, 5, 3, 3], p: { stride: 2, pad: 1 }, bias: true },
  { name: 'k1 s1 p0 pointwise, 8->12, batch 2', x: [2, 8, 5, 6], w: [12, 8, 1, 1], p: {}, bias: true },
  { name: 'k3 p1 groups 2, 6->4', x: [1, 6, 7, 7], w: [4, 3, 3, 3], p: { groups: 2, pad: 1 }, bias: true },
  { name: 'depthwise k3 s2 p1, 5 channels, batch 2, no bias', x: [2, 5, 8, 7], w: [5, 1, 3, 3], p: { groups: 5, stride: 2, pad: 1 }, bias: false },
  { name: 'dilation 2, k3 p2, 3->4, 9x10', x: [1, 3, 9, 10], w: [4, 3, 3, 3], p: { pad: 2, dilation: 2 }, bias: true },
  { name: 'rectangular stride [2,1], pad [1,0], kernel 3x2, 4->6', x: [1, 4, 7, 8], w: [6, 4, 3, 2], p: { stride: [2, 1], pad: [1, 0] }, bias: true },
  { name: 'k3 p0 valid, 7->70 (several row tiles), 11x10', x: [1, 7, 11, 10], w: [70, 7, 3, 3], p: {}, bias: true },
  { name: 'k5 s3 p2 dilation [1,2], 2->3, 13x14', x: [1, 2, 13, 14], w: [3, 2, 5, 5], p: { stride: 3, pad: 2, dilation: [1, 2] }, bias: true },
  { name: 'k1 s2 p0, batch 2, 3->2, 6x7', x: [2, 3, 6, 7], w: [2, 3, 1, 1], p: { stride: 2 }, bias: true },
  { name: 'groups 3 x 2 channels, dilation 2 p2, batch 2, no bias', x: [2, 6, 6, 5], w: [6, 2, 3, 3], p: { groups: 3, pad: 2, dilation: 2 }, bias: false },
  { name: 'split-K dw: 8->24, batch 2, 16x17 (B*OH*OW = 544)', x: [2, 8, 16, 17], w: [24, 8, 3, 3], p: { pad: 1 }, bias: true },
  // strided: tile's dx runs per output phase (tilePhasedBackwardData)
  { name: 'k3 s2 p0 valid, groups 2, batch 2, 4->6, 9x8', x: [2, 4, 9, 8], w: [6, 2, 3, 3], p: { stride: 2, groups: 2 }, bias: true },
  { name: 'k2 s2 p0 (2x2 downsample), 6->20, 8x10', x: [1, 6, 8, 10], w: [20, 6, 2, 2], p: { stride: 2 }, bias: false },
  { name: 'k3 s3 p1, 3->4, 10x11', x: [1, 3, 10, 11], w: [4, 3, 3, 3], p: { stride: 3, pad: 1 }, bias: true },
  { name: 'k3 s2 p1, 16->40 (several channel blocks per phase), batch 2, 8x8', x: [2, 16, 8, 8], w: [40, 16, 3, 3], p: { stride: 2, pad: 1 }, bias: true },
  // depthwise: tile's dw is conv2d_depthwise.wgsl (up to 7x7)
  { name: 'depthwise k5 s1 p2, 6 channels, batch 2, 11x9', x: [2, 6, 11, 9], w: [6, 1, 5, 5], p: { groups: 6, pad: 2 }, bias: true },
  { name: 'depthwise k7 s2 p3, 4 channels, 15x13', x: [1, 4, 15, 13], w: [4, 1, 7, 7], p: { groups: 4, stride: 2, pad: 3 }, bias: false },
  { name: 'depthwise 5x3 kernel, stride [2, 1], pad [2, 1], 3 channels, 10x12', x: [1, 3, 10, 12], w: [3, 1, 5, 3], p: { groups: 3, stride: [2, 1], pad: [2, 1] }, bias: true },
  { name: 'depthwise k3 s1 p1, 2 channels, batch 2, 40x9 (dw in 2 chunks of rows)', x: [2, 2, 40, 9], w: [2, 1, 3, 3], p: { groups: 2, pad: 1 }, bias: true },
];

interface Data { xv: Float32Array; wv: Float32Array; bv: Float32Array | null; dyv: Float32Array; yShape: number[] }

function makeData(c: Case, seed: number): Data {
  const rng = new Rng(seed);
  const yShape = conv2dOutShape(c.x, c.w, c.p);
  return {
    xv: randomArray(rng, prod(c.x)),
    wv: randomArray(rng, prod(c.w)),
    bv: c.bias ? randomArray(rng, c.w[0]) : null,
    dyv: randomArray(rng, prod(yShape)),
    yShape,
  };
}

/** Runs forward + the three backward kernels with one algorithm (no tape). */
async function runAll(gpu: Gpu, c: Case, d: Data, algo: ConvAlgo) {
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, c.w, d.wv);
  const b = d.bv ? Tensor.from(gpu, [c.w[0]], d.bv) : null;
  const dy = Tensor.from(gpu, d.yShape, d.dyv);
  const y = conv2dForward(x, w, b, c.p, algo);
  const dx = conv2dBackwardData(dy, w, c.x, c.p, algo);
  const dw = conv2dBackwardWeights(x, dy, c.w, c.p, algo);
  const db = conv2dBackwardBias(dy);
  const out = { y: await y.toArray(), dx: await dx.toArray(), dw: await dw.toArray(), db: await db.toArray() };
  for (const t of [x, w, b, dy, y, dx, dw, db]) t?.dispose();
  return out;
}

const worst: Record<string, { err: number; tol: string }> = {};
function note(key: string, err: number, tol: Tol | string): void {
  const t = typeof tol === 'string' ? tol : `atol ${tol.atol.toExponential(1)} rtol ${tol.rtol}`;
  if (!worst[key] || err > worst[key].err) worst[key] = { err, tol: t };
}

for (const c of CASES) {
  test(`conv2d ${c.name}: every algorithm, forward/dx/dw/db vs float64 reference and finite differences`, async () => {
    const gpu = await getGpu();
    const d = makeData(c, 101 + CASES.indexOf(c));
    const g = refGeom(c.x, c.w, c.p);
    const ref = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p);
    assert.equal(ref.shape, d.yShape);
    const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, d.dyv, c.p);
    const tolY = tolFor(g.Cg * g.kH * g.kW + 1);
    const tolDx = tolFor(g.Mg * g.kH * g.kW);
    const tolDw = tolFor(g.B * g.OH * g.OW);

    // Central differences of the float64 forward, loss = sum(y * dy), at sampled entries.
    const xs = Float64Array.from(d.xv);
    const ws = Float64Array.from(d.wv);
    const bs = d.bv ? Float64Array.from(d.bv) : null;
    const loss = () => dot(conv2dRef(xs, c.x, ws, c.w, bs, c.p).y, d.dyv);
    const ix = sampleIndices(xs.length, 24, 3);
    const iw = sampleIndices(ws.length, 24, 5);
    const fdx = finiteDiff(loss, xs, ix, 1e-3);
    const fdw = finiteDiff(loss, ws, iw, 1e-3);
    const fdb = bs ? finiteDiff(loss, bs, undefined, 1e-3) : null;
    // The reference gradients themselves agree with the differences (the loss is bilinear: FD is exact
    // up to float64 rounding).
    assertClose(ix.map((i) => grad.dx[i]), fdx, { atol: 1e-8, rtol: 1e-8 }, 'reference dx vs FD');
    assertClose(iw.map((i) => grad.dw[i]), fdw, { atol: 1e-8, rtol: 1e-8 }, 'reference dw vs FD');

    for (const algo of KERNEL_ALGOS) {
      const r = await runAll(gpu, c, d, algo);
      const L = (what: string) => `${c.name} [${algo}] ${what}`;
      note(`${algo} y`, assertClose(r.y, ref.y, tolY, L('y vs reference')), tolY);
      note(`${algo} dx`, assertClose(r.dx, grad.dx, tolDx, L('dx vs reference')), tolDx);
      note(`${algo} dw`, assertClose(r.dw, grad.dw, tolDw, L('dw vs reference')), tolDw);
      note('db', assertClose(r.db, grad.db, tolDw, L('db vs reference')), tolDw);
      note(`${algo} dx FD`, assertClose(ix.map((i) => r.dx[i]), fdx, tolDx, L('dx vs finite differences')), tolDx);
      note(`${algo} dw FD`, assertClose(iw.map((i) => r.dw[i]), fdw, tolDw, L('dw vs finite differences')), tolDw);
      if (fdb) note('db FD', assertClose(r.db, fdb, tolDw, L('db vs finite differences')), tolDw);
    }
  });
}

test('gemm_reg without subgroup weight sharing (the path for adapters without fixed-size subgroups)', async () => {
  const gpu = await getGpu();
  convRegTuning.subgroups = false;
  try {
    for (const c of [CASES[0]]) {
      const d = makeData(c, 7);
      const g = refGeom(c.x, c.w, c.p);
      const ref = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p);
      const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, d.dyv, c.p);
      const r = await runAll(gpu, c, d, 'gemm_reg');
      assertClose(r.y, ref.y, tolFor(g.Cg * g.kH * g.kW + 1), `${c.name} y (no subgroups)`);
      const rt = await runAll(gpu, c, d, 'tile');
      assertClose(rt.y, ref.y, tolFor(g.Cg * g.kH * g.kW + 1), `${c.name} y (tile, no subgroups)`);
      assertClose(r.dx, grad.dx, tolFor(g.Mg * g.kH * g.kW), `${c.name} dx (no subgroups)`);
      assertClose(r.dw, grad.dw, tolFor(g.B * g.OH * g.OW), `${c.name} dw (no subgroups)`);
    }
  } finally {
    convRegTuning.subgroups = true;
  }
});

// The tile forward (conv2d_tile.wgsl) at awkward shapes and every block shape the autotune may pick: ragged
// tiles at the right and bottom edges, ragged channel blocks, windows reaching into the padding, batch 2.
const TILE_CASES: { name: string; x: number[]; w: number[]; p: Conv2dParams; picks: string[] }[] = [
  { name: 'Cin 3 -> 16 (a first layer), 17x19', x: [1, 3, 17, 19], w: [16, 3, 3, 3], p: { pad: 1 }, picks: ['tile', 'tile@16x4x2', 'tile@16x1x8', 'tile@8x2x4', 'tile@16x2x4', 'tile@16x2x7'] },
  { name: '70 channels in blocks of 32 (6 left over), batch 2, 7x5', x: [2, 5, 7, 5], w: [70, 5, 3, 3], p: { pad: 1 }, picks: ['tile@32x1x4', 'tile@16x2x4', 'tile@4x3x5'] },
  { name: 'stride 2, odd 9x7, batch 2', x: [2, 6, 9, 7], w: [12, 6, 3, 3], p: { stride: 2, pad: 1 }, picks: ['tile', 'tile@32x1x4', 'tile@8x4x2', 'tile@16x2x7'] },
  { name: 'stride [2, 1], kernel 3x2, pad [1, 0]', x: [1, 4, 7, 8], w: [6, 4, 3, 2], p: { stride: [2, 1], pad: [1, 0] }, picks: ['tile', 'tile@16x1x8'] },
  { name: 'groups 3, 13x13 (ragged in both directions)', x: [1, 9, 13, 13], w: [12, 3, 3, 3], p: { groups: 3, pad: 1 }, picks: ['tile', 'tile@16x4x2', 'tile@1x1x1'] },
  { name: 'depthwise, stride 2', x: [2, 5, 8, 7], w: [5, 1, 3, 3], p: { groups: 5, stride: 2, pad: 1 }, picks: ['tile'] },
  { name: '1x1 (pixels as one row), batch 2, 36 channels', x: [2, 8, 5, 7], w: [36, 8, 1, 1], p: {}, picks: ['tile', 'tile@32x1x4', 'tile@16x4x2'] },
  { name: '1x1 stride 2 and 1x1 with padding (windows, not one row)', x: [1, 3, 6, 7], w: [4, 3, 1, 1], p: { stride: 2, pad: 1 }, picks: ['tile'] },
  { name: 'valid 3x3 (no padding), 2x2 output', x: [1, 7, 4, 4], w: [9, 7, 3, 3], p: {}, picks: ['tile', 'tile@16x1x8'] },
];

for (const c of TILE_CASES) {
  test(`conv2d tile ${c.name}: every block shape vs the float64 reference, fused bias + leaky`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(300 + TILE_CASES.indexOf(c));
    const xv = randomArray(rng, prod(c.x));
    const wv = randomArray(rng, prod(c.w));
    const bv = randomArray(rng, c.w[0]);
    const g = refGeom(c.x, c.w, c.p);
    assert.ok(tileSupported(convGeom(c.x, c.w, c.p)), 'a tile shape');
    const want = Float64Array.from(conv2dRef(xv, c.x, wv, c.w, bv, c.p).y, (v) => actRef(v, 'leaky'));
    const tol = tolFor(g.Cg * g.kH * g.kW + 1);
    const x = Tensor.from(gpu, c.x, xv);
    const w = Tensor.from(gpu, c.w, wv);
    const b = Tensor.from(gpu, [c.w[0]], bv);
    for (const pick of c.picks) {
      const y = conv2dForward(x, w, b, c.p, parseConvPick(pick)!, 'leaky');
      note(`tile y (${pick})`, assertClose(await y.toArray(), want, tol, `${c.name} [${pick}]`), tol);
      y.dispose();
    }
    x.dispose(); w.dispose(); b.dispose();
  });
}

// At stride 2 a lane of the tile forward takes its window's first row from the lane above (VS2 in
// conv2d_tile.wgsl) where that lane holds the tile above: subgroups that end inside a column of tiles, the top
// of each map, batch boundaries, valid and padded convs, blocks of 2 and 4 rows. The values are the ones the
// lane would load, so the bits must equal the kernel's without subgroup sharing (convRegTuning.subgroups =
// false), and both must match float64.
test('conv2d tile at stride 2: the window row shared between lanes gives the bits of loading it', async () => {
  const gpu = await getGpu();
  const cases: { x: number[]; w: number[]; p: Conv2dParams }[] = [
    { x: [2, 6, 24, 26], w: [20, 6, 3, 3], p: { stride: 2, pad: 1 } },
    { x: [1, 5, 31, 9], w: [8, 5, 3, 3], p: { stride: 2 } },
    { x: [3, 4, 17, 17], w: [16, 4, 3, 3], p: { stride: 2, pad: 1 } },
  ];
  const rng = new Rng(77);
  for (const c of cases) {
    const xv = randomArray(rng, prod(c.x));
    const wv = randomArray(rng, prod(c.w));
    const bv = randomArray(rng, c.w[0]);
    const g = refGeom(c.x, c.w, c.p);
    const want = Float64Array.from(conv2dRef(xv, c.x, wv, c.w, bv, c.p).y, (v) => actRef(v, 'leaky'));
    const tol = tolFor(g.Cg * g.kH * g.kW + 1);
    const x = Tensor.from(gpu, c.x, xv);
    const w = Tensor.from(gpu, c.w, wv);
    const b = Tensor.from(gpu, [c.w[0]], bv);
    for (const pick of ['tile@16x2x4', 'tile@16x2x7', 'tile@8x4x2']) {
      const run = async () => {
        const y = conv2dForward(x, w, b, c.p, parseConvPick(pick)!, 'leaky');
        const v = await y.toArray();
        y.dispose();
        return v;
      };
      const shared = await run();
      convRegTuning.subgroups = false;
      let own: Float32Array;
      try {
        own = await run();
      } finally {
        convRegTuning.subgroups = true;
      }
      const what = `[${c.x}] * [${c.w}] ${JSON.stringify(c.p)} ${pick}`;
      assert.ok(shared.every((v, i) => Object.is(v, own[i])), `${what}: the bits of the kernel without sharing`);
      note(`stride 2 ${pick}`, assertClose(shared, want, tol, what), tol);
    }
    x.dispose(); w.dispose(); b.dispose();
  }
});

// 1x1 stride-1 convs with Cin % 4 == 0 run conv2d_pw.wgsl (the tile algorithm's kernel for them, where the
// adapter has fixed-size subgroups): every H*W % 4 (vec4 loads straddling rows), ragged channel blocks, batch 3,
// no bias, a channel slice. It sums in conv2d_tile.wgsl's order, so it must give the tile kernel's bits (the
// tile kernel without subgroup sharing computes the same sums: convRegTuning.subgroups = false).
const PW_CASES: { x: number[]; Cout: number; bias: boolean; act: Activation; slice?: { Ctot: number; off: number } }[] = [
  { x: [1, 16, 4, 4], Cout: 33, bias: true, act: 'leaky' },
  { x: [3, 8, 3, 3], Cout: 12, bias: true, act: 'mish', slice: { Ctot: 20, off: 5 } },
  { x: [2, 32, 5, 2], Cout: 17, bias: false, act: 'linear' },
  { x: [2, 12, 5, 7], Cout: 40, bias: true, act: 'logistic' },
  { x: [1, 64, 13, 13], Cout: 24, bias: false, act: 'leaky', slice: { Ctot: 30, off: 6 } },
];
for (const c of PW_CASES) {
  const hw = c.x[2] * c.x[3];
  test(`pointwise 1x1 (conv2d_pw.wgsl), ${c.x.join('x')} -> ${c.Cout}, H*W % 4 = ${hw % 4}, ${c.act}${c.bias ? '' : ', no bias'}${c.slice ? ', channel slice' : ''}: float64, and the tile kernel's bits`, async () => {
    const gpu = await getGpu();
    const wShape = [c.Cout, c.x[1], 1, 1];
    const g = convGeom(c.x, wShape, {});
    if (!pointwiseSupported(gpu, g, 'f32')) return void console.log('  [skipped: no fixed subgroup size on this device: 1x1 convs run conv2d_tile.wgsl]');
    const rng = new Rng(400 + PW_CASES.indexOf(c));
    const xv = randomArray(rng, prod(c.x));
    const wv = randomArray(rng, prod(wShape));
    const bv = c.bias ? randomArray(rng, c.Cout) : null;
    const x = Tensor.from(gpu, c.x, xv);
    const w = Tensor.from(gpu, wShape, wv);
    const b = bv ? Tensor.from(gpu, [c.Cout], bv) : null;
    const B = c.x[0];
    const run = async () => {
      if (!c.slice) {
        const y = conv2dForward(x, w, b, {}, 'tile', c.act);
        const v = await y.toArray();
        y.dispose();
        return Array.from(v);
      }
      const dst = Tensor.from(gpu, [B, c.slice.Ctot, c.x[2], c.x[3]], new Float32Array(B * c.slice.Ctot * hw).fill(7.5));
      conv2dForward(x, w, b, {}, 'tile', c.act, { dst, channelOffset: c.slice.off });
      const got = channelSlice(await dst.toArray(), { B, Ctot: c.slice.Ctot, off: c.slice.off, C: c.Cout, plane: hw, sentinel: 7.5 }, 'pointwise slice');
      dst.dispose();
      return got;
    };
    const pw = await run();
    convRegTuning.subgroups = false;
    let tile: number[];
    try {
      tile = await run();
    } finally {
      convRegTuning.subgroups = true;
    }
    const differ = pw.findIndex((v, i) => !Object.is(v, tile[i]));
    assert.is(differ, -1, `conv2d_pw.wgsl and conv2d_tile.wgsl differ at ${differ}: ${pw[differ]} vs ${tile[differ]}`);
    const want = Float64Array.from(conv2dRef(xv, c.x, wv, wShape, bv, {}).y, (v) => actRef(v, c.act));
    const tol = tolFor(c.x[1] + 1);
    note('pointwise y', assertClose(pw, want, tol, 'pointwise vs float64'), tol);
    x.dispose(); w.dispose(); b?.dispose();
  });
}

test('pointwiseSupported: 1x1, stride 1, no padding, one group, Cin % 4 == 0, float32, fixed subgroups', async () => {
  const gpu = await getGpu();
  const sg = convRegTuning.subgroups && gpu.hasFeature('subgroups');
  const ok = (x: number[], w: number[], p: Conv2dParams = {}, dtype: 'f32' | 'f16' = 'f32') => pointwiseSupported(gpu, convGeom(x, w, p), dtype);
  if (sg && ok([1, 8, 5, 5], [4, 8, 1, 1])) {
    assert.not.ok(ok([1, 6, 5, 5], [4, 6, 1, 1]), 'Cin 6');
    assert.not.ok(ok([1, 8, 5, 5], [4, 8, 1, 1], { stride: 2 }), 'stride 2');
    assert.not.ok(ok([1, 8, 5, 5], [4, 8, 1, 1], { pad: 1 }), 'padding');
    assert.not.ok(ok([1, 8, 5, 5], [4, 4, 1, 1], { groups: 2 }), 'groups');
    assert.not.ok(ok([1, 8, 5, 5], [4, 8, 3, 3], { pad: 1 }), '3x3');
    assert.not.ok(ok([1, 8, 5, 5], [4, 8, 1, 1], {}, 'f16'), 'f16 storage');
  }
  convRegTuning.subgroups = false;
  try {
    assert.not.ok(ok([1, 8, 5, 5], [4, 8, 1, 1]), 'never without subgroup sharing');
  } finally {
    convRegTuning.subgroups = true;
  }
});

test('tile block for untuned shapes: 2x7 pixels where a 7-wide tile wastes at most 10% more columns than 4-wide (from 13 wide, stride 1), else 2x4', () => {
  const blk = (hw: number, k = 3, pad = 1, stride = 1) => {
    const t = tileBlockFor(convGeom([1, 8, hw, hw], [16, 8, k, k], { pad, stride }));
    return `${t.TM}x${t.TR}x${t.TN}`;
  };
  assert.is(blk(13), '16x2x7', '13x13: 14 of 16 columns vs 16 of 16');
  assert.is(blk(19), '16x2x7', '19: 21 vs 20 columns');
  assert.is(blk(52), '16x2x7', '52: 56 vs 52 columns, within 10%');
  assert.is(blk(10), '16x2x4', '10: a 7-wide tile leaves 40% idle');
  assert.is(blk(8), '16x2x4', 'narrower than 13');
  assert.is(blk(16), '16x2x4', '16: 21 vs 16 columns');
  assert.is(blk(13, 1, 0), '16x2x4', '1x1 stride 1: the pixels are one row');
  assert.is(blk(208, 3, 1, 2), '16x2x4', 'stride 2 (104 wide): the wide window buys nothing');
  assert.is(`${tileBlockFor(convGeom([1, 8, 13, 13], [16, 8, 3, 3], { pad: 1 }), true).TN}`, '4', 'the fused maxpool keeps an even block');
});

test('conv + maxpool 2x2/2 fused in the tile epilogue == conv, activation, maxpool (float64), odd maps, every activation', async () => {
  const gpu = await getGpu();
  assert.ok(fusableMaxpool({ size: 2, stride: 2 }) && fusableMaxpool({ size: 2, stride: 2, padding: 0 }));
  assert.not.ok(fusableMaxpool({ size: 2, stride: 1 }), 'stride 1 (yolov3-tiny layer 11)');
  assert.not.ok(fusableMaxpool({ size: 3, stride: 2 }));
  assert.not.ok(fusableMaxpool({ size: 2, stride: 2, padding: 2 }), 'windows from -1');
  const cases: { x: number[]; w: number[]; p: Conv2dParams; pool: { size: number; stride: number; padding?: number }; picks: string[] }[] = [
    // odd 13x11 output, default padding 1: the last window row / column holds one conv output
    { x: [2, 3, 13, 11], w: [20, 3, 3, 3], p: { pad: 1 }, pool: { size: 2, stride: 2 }, picks: ['tile', 'tile@16x4x2', 'tile@8x2x2', 'tile@32x2x4'] },
    // padding 0: the last odd row / column is dropped
    { x: [1, 5, 9, 7], w: [6, 5, 3, 3], p: { pad: 1 }, pool: { size: 2, stride: 2, padding: 0 }, picks: ['tile'] },
    // stride-2 conv, groups 2, then the pool
    { x: [1, 8, 15, 14], w: [10, 4, 3, 3], p: { pad: 1, stride: 2, groups: 2 }, pool: { size: 2, stride: 2 }, picks: ['tile'] },
    // not fused (an odd tile, gemm_reg, 1x1): the conv then the maxpool op, same numbers
    { x: [1, 4, 10, 10], w: [8, 4, 3, 3], p: { pad: 1 }, pool: { size: 2, stride: 2 }, picks: ['tile@16x1x8', 'gemm_reg', 'tile@8x3x5'] },
    { x: [1, 4, 6, 6], w: [8, 4, 1, 1], p: {}, pool: { size: 2, stride: 2 }, picks: ['tile'] },
  ];
  const rng = new Rng(77);
  for (const c of cases) {
    const xv = randomArray(rng, prod(c.x));
    const wv = randomArray(rng, prod(c.w));
    const bv = randomArray(rng, c.w[0]);
    const conv = conv2dRef(xv, c.x, wv, c.w, bv, c.p);
    const g = refGeom(c.x, c.w, c.p);
    const tol = tolFor(g.Cg * g.kH * g.kW + 1);
    const x = Tensor.from(gpu, c.x, xv);
    const w = Tensor.from(gpu, c.w, wv);
    const b = Tensor.from(gpu, [c.w[0]], bv);
    for (const act of ['leaky', 'mish', 'linear'] as Activation[]) {
      const want = maxpoolRef(Float64Array.from(conv.y, (v) => actRef(v, act)), conv.shape, { size: 2, strideX: 2, strideY: 2, padding: c.pool.padding ?? 1 });
      for (const pick of c.picks) {
        const before = gpu.dispatches;
        const y = conv2dMaxpoolForward(x, w, b, c.p, c.pool, parseConvPick(pick)!, act);
        const fused = gpu.dispatches - before === 1;
        assert.equal([...y.shape], want.shape, `${pick} shape`);
        note(`fused maxpool (${act})`, assertClose(await y.toArray(), want.y, tol, `${c.x.join('x')} -> ${c.w.join('x')} [${pick}, ${act}, ${fused ? 'fused' : 'conv + maxpool'}]`), tol);
        assert.is(fused, pick === 'tile' || pick === 'tile@16x4x2' || pick === 'tile@8x2x2' || pick === 'tile@32x2x4' ? c.w[2] === 3 : false, `${pick}: one dispatch when fused`);
        y.dispose();
      }
    }
    x.dispose(); w.dispose(); b.dispose();
  }
});

/**
 * Forward and dx of case c with each algorithm while maxComputeWorkgroupsPerDimension is 2 (so dispatches split
 * by P.t0): their outputs, the float64 references, how many dispatches ran, and how many the same calls make
 * unsplit (the workgroup counts, hence the splits, depend on the device's subgroup size).
 */
async function runSplit(c: Case, seed: number, algos: readonly ConvAlgo[]) {
  const gpu = await getGpu();
  const d = makeData(c, seed);
  const ref = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p);
  const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, d.dyv, c.p);
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, c.w, d.wv);
  const b = Tensor.from(gpu, [c.w[0]], d.bv!);
  const dy = Tensor.from(gpu, d.yShape, d.dyv);
  await gpu.sync();
  const unsplit0 = gpu.dispatches;
  for (const algo of algos) for (const t of [conv2dForward(x, w, b, c.p, algo), conv2dBackwardData(dy, w, c.x, c.p, algo)]) t.dispose();
  const unsplit = gpu.dispatches - unsplit0;
  await gpu.sync();
  const limits = gpu.limits;
  const keep = limits.maxComputeWorkgroupsPerDimension;
  const before = gpu.dispatches;
  const out: Record<string, Float32Array> = {};
  try {
    limits.maxComputeWorkgroupsPerDimension = 2;
    for (const algo of algos) {
      const y = conv2dForward(x, w, b, c.p, algo);
      const dx = conv2dBackwardData(dy, w, c.x, c.p, algo);
      out[`${algo} y`] = await y.toArray();
      out[`${algo} dx`] = await dx.toArray();
      y.dispose(); dx.dispose();
    }
  } finally {
    limits.maxComputeWorkgroupsPerDimension = keep;
  }
  const dispatches = gpu.dispatches - before;
  for (const t of [x, w, b, dy]) t.dispose();
  return { out, ref, grad, dispatches, unsplit };
}

test('dispatches past maxComputeWorkgroupsPerDimension are split (P.t0 offsets), gemm algorithms', async () => {
  const c: Case = { name: 'split dispatch', x: [1, 2, 48, 48], w: [4, 2, 3, 3], p: { pad: 1 }, bias: true };
  const algos = ['gemm_tiled', 'gemm_reg', 'tile'] as const;
  const { out, ref, grad, dispatches, unsplit } = await runSplit(c, 9, algos);
  // with lavapipe's subgroups of 8: tiled: 36 column tiles -> 18 dispatches each pass; reg: 5 -> 3 each; tile
  // forward: 288 tiles of 2x4 in workgroups of 32 -> 9 -> 5 dispatches (its dx is gemm_reg's: 3)
  // other subgroup sizes (SwiftShader 4, lavapipe at LP_NATIVE_VECTOR_WIDTH=512 16) make other counts: split at all
  const least = fixedSubgroupSize(await getGpu()) === 8 ? 2 * 18 + 2 * 3 + 5 + 3 : unsplit + 1;
  assert.ok(dispatches >= least, `dispatches were split (${dispatches}, unsplit ${unsplit})`);
  for (const algo of algos) {
    assertClose(out[`${algo} y`], ref.y, tolFor(19), `[${algo}] y with split dispatches`);
    assertClose(out[`${algo} dx`], grad.dx, tolFor(36), `[${algo}] dx with split dispatches`);
  }
});

test('pointwise 1x1 (conv2d_pw.wgsl): a forward past maxComputeWorkgroupsPerDimension split by P.t0', async () => {
  // 30x29 = 870 pixels (H*W % 4 = 2): 218 vec4 columns in workgroups of 8 lanes: 28 workgroups, 14 dispatches at a limit of 2
  // (8 output channels: one row of workgroups for conv2d_pw, two for the tile kernel's 4 rows on GL; the grid's y is not split)
  const c: Case = { name: 'pointwise split', x: [2, 8, 30, 29], w: [8, 8, 1, 1], p: {}, bias: true };
  const gpu = await getGpu();
  const pw = pointwiseSupported(gpu, convGeom(c.x, c.w, c.p), 'f32');
  const { out, ref, dispatches, unsplit } = await runSplit(c, 11, ['tile']);
  if (pw) assert.ok(dispatches >= (fixedSubgroupSize(gpu) === 8 ? 14 : unsplit + 1), `dispatches were split (${dispatches}, unsplit ${unsplit})`);
  assertClose(out['tile y'], ref.y, tolFor(9), `[tile${pw ? ': conv2d_pw' : ''}] y with split dispatches`);
});

test('depthwise (conv2d_depthwise.wgsl): forward and dx past maxComputeWorkgroupsPerDimension split by P.t0', async () => {
  // 24 x 6 tiles of 2x8 per plane in workgroups of 32: 5 workgroups, 3 dispatches at a limit of 2
  const c: Case = { name: 'split depthwise', x: [1, 2, 48, 48], w: [2, 1, 5, 5], p: { pad: 2, groups: 2 }, bias: true };
  const { out, ref, grad, dispatches } = await runSplit(c, 10, ['tile']);
  assert.is(dispatches, 6, 'three dispatches per pass');
  assertClose(out['tile y'], ref.y, tolFor(26), 'y with split dispatches');
  assertClose(out['tile dx'], grad.dx, tolFor(25), 'dx with split dispatches');
});

// ------------------------------------------------------------------------------------ PyTorch goldens

const GOLDEN = ['conv2d_k3s1p1', 'conv2d_k1s1p0', 'conv2d_k3s2p1_odd', 'conv2d_k3s2p1_even_nobias', 'conv2d_k3s1p0_valid', 'conv2d_k3s1p1_groups2', 'conv2d_k3s1p1_depthwise', 'conv2d_k1s2p0'];

for (const name of GOLDEN) {
  test(`conv2d golden ${name} (PyTorch): y, dx, dw, db through the tape, every algorithm and auto`, async () => {
    const gpu = await getGpu();
    const gc = gradCase(name);
    const P = gc.params as { stride: number; pad: number; groups: number; bias: boolean };
    const p: Conv2dParams = { stride: P.stride, pad: P.pad, groups: P.groups };
    const T = gc.tensors;
    for (const algo of CONV_ALGOS) {
      const x = Tensor.param(gpu, T.x.shape, f32In(T.x), 'x');
      const w = Tensor.param(gpu, T.w.shape, f32In(T.w), 'w');
      const b = P.bias ? Tensor.param(gpu, T.b.shape, f32In(T.b), 'b') : null;
      const dy = Tensor.from(gpu, T.dy.shape, f32In(T.dy));
      const tape = newTape();
      const y = tape.record(() => conv2d(x, w, b, p, { algo }));
      assert.equal([...y.shape], T.y.shape, `${name} output shape`);
      const L = (what: string) => `${name} [${algo}] ${what}`;
      note('golden y', assertClose(await y.toArray(), T.y.data, GOLDEN_TOL, L('y')), GOLDEN_TOL);
      tape.backward(y, dy);
      note('golden dx', assertClose(await x.grad!.toArray(), T.dx.data, GOLDEN_TOL, L('dx')), GOLDEN_TOL);
      note('golden dw', assertClose(await w.grad!.toArray(), T.dw.data, GOLDEN_TOL, L('dw')), GOLDEN_TOL);
      if (b) note('golden db', assertClose(await b.grad!.toArray(), T.db.data, GOLDEN_TOL, L('db')), GOLDEN_TOL);
      for (const t of [x, w, b, dy, y, x.grad, w.grad, b?.grad]) t?.dispose();
      tape.dispose();
    }
  });
}

// ------------------------------------------------------------------------------ epilogue and slices

test('fused bias + activation epilogue == conv followed by the activation op (every algorithm, every activation)', async () => {
  const gpu = await getGpu();
  const c = CASES[1];
  const d = makeData(c, 21);
  const g = refGeom(c.x, c.w, c.p);
  const pre = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p).y;
  const tol = tolFor(g.Cg * g.kH * g.kW + 1);
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, c.w, d.wv);
  const b = Tensor.from(gpu, [c.w[0]], d.bv!);
  for (const algo of KERNEL_ALGOS) {
    const lin = conv2dForward(x, w, b, c.p, algo);
    for (const act of ACTIVATIONS) {
      const fused = conv2dForward(x, w, b, c.p, algo, act);
      const sep = activation(lin, act);
      const fv = await fused.toArray();
      // Same float32 pre-activation, same activation code: equal up to the activation's own rounding.
      assertClose(fv, await sep.toArray(), { atol: 1e-6, rtol: 1e-5 }, `[${algo}] fused ${act} vs conv + activation`);
      note(`fused ${act}`, assertClose(fv, Float64Array.from(pre, (v) => actRef(v, act)), tol, `[${algo}] fused ${act} vs reference`), tol);
      fused.dispose();
      if (sep !== lin) sep.dispose();
    }
    lin.dispose();
  }
  x.dispose(); w.dispose(); b.dispose();
});

// batch 2, Cout 5; and a depthwise conv (tile: conv2d_depthwise.wgsl)
for (const c of [CASES[0], CASES.find((k) => k.name.startsWith('depthwise k5'))!]) {
  test(`output into a channel slice of a bigger tensor (route/concat without a copy), every algorithm: ${c.name}`, async () => {
    const gpu = await getGpu();
    const d = makeData(c, 33);
    const ref = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p).y;
    const [B, Cout, OH, OW] = d.yShape;
    const Ctot = 11;
    const off = 4;
    const x = Tensor.from(gpu, c.x, d.xv);
    const w = Tensor.from(gpu, c.w, d.wv);
    const b = Tensor.from(gpu, [Cout], d.bv!);
    for (const algo of CONV_ALGOS) {
      const sentinel = new Float32Array(B * Ctot * OH * OW).fill(7.5);
      const dst = Tensor.from(gpu, [B, Ctot, OH, OW], sentinel);
      const r = conv2dForward(x, w, b, c.p, algo, 'leaky', { dst, channelOffset: off });
      assert.is(r, dst, 'returns the destination');
      const got = channelSlice(await dst.toArray(), { B, Ctot, off, C: Cout, plane: OH * OW, sentinel: 7.5 }, `[${algo}]`);
      const want = Float64Array.from(ref, (e) => actRef(e, 'leaky'));
      assertClose(got, want, tolFor(28), `[${algo}] slice values`);
      dst.dispose();
    }
    x.dispose(); w.dispose(); b.dispose();
  });
}

// ------------------------------------------------------------------------------------------ the tape

test('conv2d on the tape with act: gradients through bias + leaky, only inputs that require grad get one', async () => {
  const gpu = await getGpu();
  const c = CASES[3]; // groups 2
  const d = makeData(c, 44);
  const g = refGeom(c.x, c.w, c.p);
  const pre = conv2dRef(d.xv, c.x, d.wv, c.w, d.bv, c.p).y;
  const act: Activation = 'leaky';
  const dpre = Float32Array.from(d.dyv, (v, i) => v * actGrad(pre[i], act));
  const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, dpre, c.p);
  for (const algo of CONV_ALGOS) {
    // x is data (no grad), w and b are parameters.
    const x = Tensor.from(gpu, c.x, d.xv);
    const w = Tensor.param(gpu, c.w, d.wv);
    const b = Tensor.param(gpu, [c.w[0]], d.bv!);
    const dy = Tensor.from(gpu, d.yShape, d.dyv);
    const tape = newTape();
    const y = tape.record(() => conv2d(x, w, b, c.p, { algo, act }));
    assertClose(await y.toArray(), Float64Array.from(pre, (v) => actRef(v, act)), tolFor(g.Cg * 9 + 1), `[${algo}] y`);
    assert.is(tape.nodes.length, 2, 'conv2d + activation recorded');
    tape.backward(y, dy);
    assert.is(x.grad, null, 'x does not require grad');
    assertClose(await w.grad!.toArray(), grad.dw, tolFor(g.OH * g.OW), `[${algo}] dw through leaky`);
    assertClose(await b.grad!.toArray(), grad.db, tolFor(g.OH * g.OW), `[${algo}] db through leaky`);
    for (const t of [x, w, b, dy, y, w.grad, b.grad]) t?.dispose();
    tape.dispose();
  }
  // Without a recording tape (inference) nothing is recorded, the activation is fused.
  const x = Tensor.param(gpu, c.x, d.xv);
  const w = Tensor.param(gpu, c.w, d.wv);
  const y = conv2d(x, w, null, c.p, { act: 'relu' });
  assert.is(y.node, null);
  y.dispose(); x.dispose(); w.dispose();
});

test('conv2d records dx only when only x requires grad (no bias)', async () => {
  const gpu = await getGpu();
  const c = CASES[1];
  const d = makeData(c, 55);
  const g = refGeom(c.x, c.w, c.p);
  const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, d.dyv, c.p);
  const x = Tensor.param(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, c.w, d.wv);
  const dy = Tensor.from(gpu, d.yShape, d.dyv);
  const tape = newTape();
  const y = tape.record(() => conv2d(x, w, null, c.p));
  tape.backward(y, dy);
  assertClose(await x.grad!.toArray(), grad.dx, tolFor(g.Mg * 9), 'dx');
  assert.is(w.grad, null);
  for (const t of [x, w, dy, y, x.grad]) t?.dispose();
  tape.dispose();
});

// ------------------------------------------------------------------------------- shapes and errors

// db's tree over 256 threads runs on 8 invocations on CPU adapters, 256 on GPUs (reduce.ts treeInvocations):
// the same bits at every width, and the sum in float64. Planes under and over 256 values, several images.
test('conv2dBackwardBias: the same bits with 8 to 256 invocations per workgroup, and float64', async () => {
  const gpu = await getGpu();
  for (const shape of [[3, 5, 7, 9], [2, 4, 20, 17], [1, 300, 2, 2]]) {
    const [B, C, H, W] = shape;
    const dyv = randomArray(new Rng(B * 31 + C), B * C * H * W, -1, 1);
    const dy = Tensor.from(gpu, shape, dyv);
    const ref = Array.from({ length: C }, (_, c) => {
      let a = 0;
      for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) a += dyv[(b * C + c) * H * W + i];
      return a;
    });
    const runs = await sameAtTreeWidths([256, 64, 32, 8], `db [${shape}]`, async () => {
      const db = conv2dBackwardBias(dy);
      const r = { db: await db.toArray() };
      db.dispose();
      return r;
    });
    assertClose(runs[3].db, ref, { atol: 1e-5, rtol: 1e-6 }, `db [${shape}] vs float64`);
    dy.dispose();
  }
});

test('conv2dOutShape, conv2dFlops, chooseConvAlgo', () => {
  assert.equal(conv2dOutShape([2, 3, 7, 9], [5, 3, 3, 3], { stride: 2, pad: 1 }), [2, 5, 4, 5]);
  assert.equal(conv2dOutShape([1, 4, 8, 8], [4, 1, 3, 3], { groups: 4, dilation: 2, pad: 2 }), [1, 4, 8, 8]);
  assert.equal(conv2dOutShape([1, 4, 7, 8], [6, 4, 3, 2], { stride: [2, 1], pad: [1, 0] }), [1, 6, 4, 7]);
  assert.is(conv2dFlops([2, 4, 8, 8], [6, 2, 3, 3], { groups: 2, pad: 1 }), 2 * 2 * 6 * 8 * 8 * 2 * 3 * 3);
  const tiny = convGeom([1, 3, 5, 5], [4, 3, 3, 3], { pad: 1 });
  const mid = convGeom([1, 64, 52, 52], [128, 64, 3, 3], { pad: 1 });
  const point = convGeom([1, 64, 52, 52], [128, 64, 1, 1]);
  const dil = convGeom([1, 64, 52, 52], [128, 64, 3, 3], { pad: 2, dilation: 2 });
  assert.is(chooseConvAlgo('lavapipe', tiny), 'direct');
  assert.is(chooseConvAlgo('lavapipe', mid), 'tile');
  assert.is(chooseConvAlgo('lavapipe', mid, 'bwd_data'), 'tile', 'dx of a stride-1 conv: the forward tile kernel on dy');
  assert.is(chooseConvAlgo('lavapipe', mid, 'bwd_weights'), 'tile', 'dw: conv2d_bwd_tile.wgsl');
  const strided = convGeom([1, 64, 52, 52], [128, 64, 3, 3], { pad: 1, stride: 2 });
  assert.is(chooseConvAlgo('lavapipe', strided, 'bwd_data'), 'tile', 'dx of a strided conv: the tile kernel per output phase');
  const wide = convGeom([1, 8, 20, 20], [8, 8, 3, 3], { pad: 2, stride: 2 });
  assert.is(chooseConvAlgo('lavapipe', wide, 'bwd_data'), 'gemm_reg', 'a phase would need a negative padding (pad >= stride): gemm_reg');
  assert.is(chooseConvAlgo('lavapipe', convGeom([8, 3, 96, 96], [16, 3, 3, 3], { pad: 1 }), 'bwd_weights'), 'tile', 'dw with 3 input channels: tile');
  const dwise = convGeom([8, 32, 24, 24], [32, 1, 5, 5], { pad: 2, groups: 32 });
  assert.is(chooseConvAlgo('lavapipe', dwise, 'bwd_weights'), 'tile', 'depthwise dw (5x5): conv2d_depthwise.wgsl');
  assert.is(chooseConvAlgo('llvmpipe', dwise, 'bwd_weights'), 'tile', 'depthwise dw on GL too (no subgroups needed)');
  assert.is(chooseConvAlgo('gpu', dwise, 'bwd_weights'), 'gemm_tiled', 'depthwise dw on a GPU: gemm_tiled');
  assert.is(chooseConvAlgo('lavapipe', dwise), 'tile', 'depthwise forward (5x5): conv2d_depthwise.wgsl');
  assert.is(chooseConvAlgo('llvmpipe', dwise), 'tile', 'depthwise forward on GL');
  assert.is(chooseConvAlgo('lavapipe', dwise, 'bwd_data'), 'tile', 'depthwise stride-1 dx: the depthwise forward on dy');
  const dwise2 = convGeom([8, 32, 24, 24], [32, 1, 5, 5], { pad: 2, stride: 2, groups: 32 });
  assert.is(chooseConvAlgo('lavapipe', dwise2, 'bwd_data'), 'tile', 'depthwise 5x5 stride-2 dx: by output phase');
  assert.is(chooseConvAlgo('lavapipe', convGeom([8, 32, 24, 24], [32, 1, 3, 3], { pad: 1, groups: 32, dilation: 2 }), 'bwd_weights'), 'gemm_reg', 'dilated depthwise dw: gemm_reg');
  assert.is(chooseConvAlgo('lavapipe', point), 'tile', '1x1: the pixels as one row');
  assert.is(chooseConvAlgo('lavapipe', dil), 'gemm_reg', 'dilation: not a tile shape');
  assert.is(chooseConvAlgo('cpu', mid), 'tile', 'SwiftShader (4-lane subgroups)');
  assert.is(chooseConvAlgo('llvmpipe', mid), 'gemm_reg', 'GL: no subgroups to share the weights');
  assert.is(chooseConvAlgo('gpu', mid), 'gemm_tiled');
  assert.ok(tileSupported(convGeom([1, 4, 9, 9], [4, 4, 3, 2], { stride: [2, 1] })));
  assert.not.ok(tileSupported(convGeom([1, 4, 9, 9], [4, 4, 5, 5], { pad: 2 })), '5x5');
});

test('conv2d shape errors are clear', async () => {
  const gpu = await getGpu();
  const throwsMsg = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable(`expected an error matching ${re}`);
  };
  throwsMsg(() => convGeom([1, 5, 8, 8], [4, 3, 3, 3], { groups: 2 }), /conv2d: input has 5 channels, weights expect 6 \(groups 2 x 3\)/);
  throwsMsg(() => convGeom([1, 6, 8, 8], [5, 3, 3, 3], { groups: 2 }), /5 output channels are not divisible by groups 2/);
  throwsMsg(() => convGeom([1, 3, 8], [4, 3, 3, 3]), /input must be 4-D NCHW/);
  throwsMsg(() => convGeom([1, 1, 2, 2], [1, 1, 5, 5]), /empty output/);
  throwsMsg(() => convGeom([1, 3, 8, 8], [4, 3, 3, 3], { stride: 0 }), /stride must be an integer >= 1/);
  throwsMsg(() => convGeom([1, 3, 8, 8], [4, 3, 3, 3], { pad: -1 }), /pad must be an integer >= 0/);
  const x = Tensor.from(gpu, [1, 3, 6, 6], new Float32Array(108));
  const w = Tensor.from(gpu, [4, 3, 3, 3], new Float32Array(108));
  const b = Tensor.from(gpu, [3], new Float32Array(3));
  throwsMsg(() => conv2dForward(x, w, b, { pad: 1 }), /bias has shape \[3\], expected \[4\]/);
  throwsMsg(() => conv2dForward(x, w, null, { pad: 1 }, 'fastest' as ConvAlgo), /unknown algorithm 'fastest'/);
  const dst = Tensor.from(gpu, [1, 6, 6, 6], new Float32Array(216));
  throwsMsg(() => conv2dForward(x, w, null, { pad: 1 }, 'direct', 'linear', { dst, channelOffset: 3 }), /output channels \[3, 7\) do not fit in the destination's 6 channels/);
  throwsMsg(() => conv2dBackwardData(dst, w, [1, 3, 6, 6], { pad: 1 }), /dy has shape \[1, 6, 6, 6\], expected \[1, 4, 6, 6\]/);
  const xp = Tensor.param(gpu, [1, 3, 6, 6], new Float32Array(108));
  const whole = Tensor.from(gpu, [1, 4, 6, 6], new Float32Array(144));
  const tape = newTape();
  throwsMsg(() => tape.record(() => conv2d(xp, w, null, { pad: 1 }, { out: { dst: whole, channelOffset: 0 } })), /channel slice .* is for inference/);
  tape.dispose();
  for (const t of [x, w, b, dst, xp, whole]) t.dispose();
});

test('summary of the largest errors reached', () => {
  for (const [k, v] of Object.entries(worst).sort()) console.log(`  ${k.padEnd(18)} max |err| ${v.err.toExponential(2)}  (${v.tol})`);
});

test.run();
