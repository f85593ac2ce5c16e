// The tile algorithm's backward passes (src/tensor/ops/conv2d.ts tileBackwardData / tileBackwardWeights,
// kernels/conv2d_bwd_tile.wgsl): dx of stride-1 convs through the forward on dy with flipped weights (read in
// place by the tile kernel, or a flipped copy where the transposed shape runs another algorithm), dw one
// input channel per invocation over pixel tiles. Against the float64 reference and central differences, at
// ragged shapes (partial tiles at the right / bottom edges, channel blocks that do not divide, a split
// reduction), strides, groups, 1x1 as one row, every block shape a bench may set, without subgroups, and the
// demo network's layer shapes; and through the tape (conv2d's backward picks them under 'auto').
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, finiteDiff, sampleIndices, type Tol } from '../helpers/check.js';
import { conv2dGradRef, conv2dRef, refGeom } from '../reference/conv2d.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import {
  chooseConvAlgo, conv2d, conv2dBackwardData, conv2dBackwardWeights, conv2dOutShape, convGeom, convRegTuning, convTileBackwardTuning, tileBackwardSupported, type Conv2dParams,
} from '../../src/tensor/ops/conv2d.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const tolFor = (n: number): Tol => ({ atol: 1e-5 + 1e-6 * n, rtol: 1e-4 });
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const VERBOSE = !!process.env.YOLO_WGSL_TEST_VERBOSE;

interface Case { name: string; x: number[]; w: number[]; p: Conv2dParams; dx: boolean; dw: boolean }

const CASES: Case[] = [
  { name: '3x3 p1, 16 -> 20 (a ragged block of 16 rows), odd 7x9, batch 2', x: [2, 16, 7, 9], w: [20, 16, 3, 3], p: { pad: 1 }, dx: true, dw: true },
  { name: '3x3 p0 valid, 9 -> 5 channels, 8x6', x: [1, 9, 8, 6], w: [5, 9, 3, 3], p: {}, dx: true, dw: true },
  { name: '1x1, 24 -> 36 (pixels as one row), batch 2, 5x7', x: [2, 24, 5, 7], w: [36, 24, 1, 1], p: {}, dx: true, dw: true },
  { name: '3x3 stride 2 p1 (dx per output phase: 1x1, 1x2, 2x1, 2x2 sub-kernels), 12 -> 8, 9x7, batch 2', x: [2, 12, 9, 7], w: [8, 12, 3, 3], p: { stride: 2, pad: 1 }, dx: true, dw: true },
  { name: '1x1 stride 2 (dx: the odd rows and columns are zeros), 10 -> 6, 7x8', x: [1, 10, 7, 8], w: [6, 10, 1, 1], p: { stride: 2 }, dx: true, dw: true },
  { name: '3x3 stride 2 p2 (a phase would pad by -1: dx with gemm_reg), 4 -> 4, 9x9', x: [1, 4, 9, 9], w: [4, 4, 3, 3], p: { stride: 2, pad: 2 }, dx: false, dw: true },
  { name: 'groups 2 of 8 channels, 3x3 p1, 10x10', x: [1, 16, 10, 10], w: [6, 8, 3, 3], p: { groups: 2, pad: 1 }, dx: true, dw: true },
  { name: 'kernel 3x2, pad [1, 0], 8 -> 4, 6x5', x: [1, 8, 6, 5], w: [4, 8, 3, 2], p: { pad: [1, 0] }, dx: true, dw: true },
  { name: 'a first layer: 3 -> 16, 3x3 p1, 12x12, batch 2', x: [2, 3, 12, 12], w: [16, 3, 3, 3], p: { pad: 1 }, dx: true, dw: true },
  { name: 'dx only (2 input channels per group), 3x3 p1, groups 2, 4 -> 6', x: [1, 4, 6, 6], w: [6, 2, 3, 3], p: { pad: 1, groups: 2 }, dx: true, dw: false },
  { name: 'split reduction: 8 -> 8, 3x3 p1, batch 3, 24x20 (180 tiles)', x: [3, 8, 24, 20], w: [8, 8, 3, 3], p: { pad: 1 }, dx: true, dw: true },
];

interface Data { xv: Float32Array; wv: Float32Array; dyv: Float32Array; yShape: number[] }

function makeData(c: Case, seed: number): Data {
  const rng = new Rng(seed);
  const yShape = conv2dOutShape(c.x, c.w, c.p);
  return { xv: randomArray(rng, prod(c.x)), wv: randomArray(rng, prod(c.w)), dyv: randomArray(rng, prod(yShape)), yShape };
}

async function backward(c: Case, d: Data, algo: 'tile' | 'gemm_reg'): Promise<{ dx: Float32Array; dw: Float32Array }> {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, c.x, d.xv);
  const w = Tensor.from(gpu, c.w, d.wv);
  const dy = Tensor.from(gpu, d.yShape, d.dyv);
  const dx = conv2dBackwardData(dy, w, c.x, c.p, algo);
  const dw = conv2dBackwardWeights(x, dy, c.w, c.p, algo);
  const out = { dx: await dx.toArray(), dw: await dw.toArray() };
  for (const t of [x, w, dy, dx, dw]) t.dispose();
  return out;
}

const worst = { dx: 0, dw: 0 };

async function check(c: Case, seed: number, label: string, fd: boolean): Promise<void> {
  const g = convGeom(c.x, c.w, c.p);
  assert.is(tileBackwardSupported(g, 'bwd_data'), c.dx, `${c.name}: tile dx supported`);
  assert.is(tileBackwardSupported(g, 'bwd_weights'), c.dw, `${c.name}: tile dw supported`);
  const d = makeData(c, seed);
  const rg = refGeom(c.x, c.w, c.p);
  const grad = conv2dGradRef(d.xv, c.x, d.wv, c.w, d.dyv, c.p);
  const tolDx = tolFor(rg.Mg * rg.kH * rg.kW);
  const tolDw = tolFor(rg.B * rg.OH * rg.OW);
  const r = await backward(c, d, 'tile');
  worst.dx = Math.max(worst.dx, assertClose(r.dx, grad.dx, tolDx, `${c.name} ${label}: dx vs float64`));
  worst.dw = Math.max(worst.dw, assertClose(r.dw, grad.dw, tolDw, `${c.name} ${label}: dw vs float64`));
  if (!fd) return;
  const xs = Float64Array.from(d.xv);
  const ws = Float64Array.from(d.wv);
  const loss = () => dot(conv2dRef(xs, c.x, ws, c.w, null, c.p).y, d.dyv);
  const ix = sampleIndices(xs.length, 16, 3);
  const iw = sampleIndices(ws.length, 16, 5);
  assertClose(ix.map((i) => r.dx[i]), finiteDiff(loss, xs, ix, 1e-3), tolDx, `${c.name}: dx vs finite differences`);
  assertClose(iw.map((i) => r.dw[i]), finiteDiff(loss, ws, iw, 1e-3), tolDw, `${c.name}: dw vs finite differences`);
}

for (const [k, c] of CASES.entries()) {
  test(`conv2d tile backward ${c.name}: dx, dw vs float64 and finite differences`, () => check(c, 300 + k, 'default block', true));
}

test('conv2d tile dw: every block shape (TM 1-16, tiles 1x1 to 4x4), and without subgroups', async () => {
  const keep = { ...convTileBackwardTuning };
  try {
    for (const t of [{ TM: 8, TR: 2, TN: 4 }, { TM: 16, TR: 4, TN: 4 }, { TM: 4, TR: 1, TN: 8 }, { TM: 1, TR: 1, TN: 1 }, { TM: 16, TR: 3, TN: 5 }]) {
      Object.assign(convTileBackwardTuning, t);
      for (const c of [CASES[0], CASES[3], CASES[4]]) await check(c, 400, `block ${t.TM}x${t.TR}x${t.TN}`, false);
    }
  } finally {
    Object.assign(convTileBackwardTuning, keep);
  }
  convRegTuning.subgroups = false;
  try {
    for (const c of [CASES[0], CASES[2]]) await check(c, 401, 'no subgroups', false);
  } finally {
    convRegTuning.subgroups = true;
  }
});

// The demo network's trained convolutions at batch 2 (fixtures/cfg/demo.cfg: 96 px; layers 2, 6, 10, 18)
test('conv2d tile backward at the demo layers\' shapes (batch 2) vs float64', async () => {
  const shapes: Case[] = [
    { name: 'demo L2 16 -> 16 @48', x: [2, 16, 48, 48], w: [16, 16, 3, 3], p: { pad: 1 }, dx: true, dw: true },
    { name: 'demo L6 32 -> 64 @12', x: [2, 32, 12, 12], w: [64, 32, 3, 3], p: { pad: 1 }, dx: true, dw: true },
    { name: 'demo L10 128 -> 64 1x1 @6', x: [2, 128, 6, 6], w: [64, 128, 1, 1], p: {}, dx: true, dw: true },
    { name: 'demo L18 96 -> 64 @12', x: [2, 96, 12, 12], w: [64, 96, 3, 3], p: { pad: 1 }, dx: true, dw: true },
  ];
  for (const [k, c] of shapes.entries()) await check(c, 500 + k, 'demo', false);
  if (VERBOSE) console.log(`  tile backward: max |err| dx ${worst.dx.toExponential(2)}, dw ${worst.dw.toExponential(2)}`);
});

test('conv2d on the tape (auto): the same gradients as gemm_reg within float32 rounding, with the tile backward where auto takes it', async () => {
  const gpu = await getGpu();
  const c = CASES[0];
  const d = makeData(c, 600);
  const ref = await backward(c, d, 'gemm_reg');
  const x = Tensor.param(gpu, c.x, d.xv);
  const w = Tensor.param(gpu, c.w, d.wv);
  const dy = Tensor.from(gpu, d.yShape, d.dyv);
  const tape = newTape();
  const y = tape.record(() => conv2d(x, w, null, c.p));
  const before = gpu.dispatches;
  tape.backward(y, dy);
  const n = gpu.dispatches - before;
  const rg = refGeom(c.x, c.w, c.p);
  assertClose(await x.grad!.toArray(), ref.dx, tolFor(rg.Mg * 9), 'tape dx vs gemm_reg');
  assertClose(await w.grad!.toArray(), ref.dw, tolFor(rg.B * rg.OH * rg.OW), 'tape dw vs gemm_reg');
  // where auto takes tile (lavapipe, SwiftShader; not GL): dx is the forward tile kernel on dy reading w in
  // place, dw one kernel (+ reduce_split when split)
  const g = convGeom(c.x, c.w, c.p);
  if (chooseConvAlgo(gpu.info.kind, g, 'bwd_data') === 'tile' && chooseConvAlgo(gpu.info.kind, g, 'bwd_weights') === 'tile') {
    assert.ok(n >= 2 && n <= 3, `${n} dispatches`);
  }
  for (const t of [x, w, dy, y, x.grad!, w.grad!]) t.dispose();
  tape.dispose();
});

test.run();
