/**
 * The f16-storage variants of the inference kernels (ST=f16: docs/kernels.md "f16 storage") against the
 * float64 references of their f32 tests, evaluated on the inputs rounded to f16 (exactly what the kernels
 * read). What is left is the kernel's own error: its float32 arithmetic (as in the f32 tests) plus the f16
 * store of the output, which WGSL lets round to either neighbouring half: at most one half ulp, 2^-10 of
 * |y| for normal halves, 2^-24 absolute below 2^-14. So the bound is
 *   |y - ref| <= 2^-10 |ref| + 2^-24 + (the f32 test's arithmetic tolerance)
 * and 0 for the ops that only move or compare values (maxpool, route, upsample at scale 1).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, type Tol } from '../helpers/check.js';
import { conv2dRef } from '../reference/conv2d.js';
import { act as actRef, activationRef } from '../reference/activation.js';
import { maxpoolRef } from '../reference/pool.js';
import { upsampleRef, upsampleSumRef } from '../reference/upsample.js';
import { shortcutRef } from '../reference/shortcut.js';
import { concatRef } from '../reference/concat.js';
import { headActivationRef } from '../reference/yolo_act.js';
import { Tensor, cast, activation, maxpool, avgpool, upsample, concat, shortcut, ACTIVATIONS } from '../../src/tensor/index.js';
import { conv2dForward, conv2dMaxpoolForward, parseConvPick, type Conv2dParams } from '../../src/tensor/ops/conv2d.js';
import { headActivation } from '../../src/tensor/ops/yolo_act.js';
import { halfBits, halfValue, roundHalf, toHalf, fromHalf } from '../../src/tensor/f16.js';
import { allKernelSpecs } from '../../src/gpu/catalog.js';
import { GpuError } from '../../src/gpu/errors.js';
import { kernelsDir } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import type { Gpu } from '../../src/gpu/device.js';

const ULP = 2 ** -10;
const TINY = 2 ** -24;
/** The bound of the file comment, with `atol` / `rtol` the f32 test's arithmetic tolerance. */
const halfTol = (atol: number, rtol = 0): Tol => ({ atol: TINY + atol, rtol: ULP + rtol });
const EXACT: Tol = { atol: 0, rtol: 0 };
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Random values already rounded to f16 (the kernels then read exactly them). */
function halfArray(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from(randomArray(rng, n, lo, hi), roundHalf);
}

async function skipWithoutF16(): Promise<Gpu | null> {
  const gpu = await getGpu();
  if (gpu.hasFeature('shader-f16')) return gpu;
  console.log(`  [skipped: f16 kernels: ${gpu.info.summary} has no shader-f16]`);
  return null;
}

/** Reads an f16 tensor back, checks it is f16, disposes it. */
async function readHalf(t: Tensor): Promise<Float32Array> {
  assert.is(t.dtype, 'f16', `${t.describe()} is f16`);
  const v = await t.toArray();
  t.dispose();
  return v;
}

test('host binary16: rounding to nearest even, subnormals, overflow to Infinity, NaN', () => {
  assert.is(halfBits(1), 0x3c00);
  assert.is(halfBits(-2), 0xc000);
  assert.is(halfBits(65504), 0x7bff);
  assert.is(halfBits(65520), 0x7c00); // halfway to 2^16 rounds to even: Infinity
  assert.is(halfBits(65519), 0x7bff);
  assert.is(halfBits(2 ** -24), 0x0001);
  assert.is(halfBits(2 ** -25), 0x0000); // tie to even (0)
  assert.is(halfBits(3 * 2 ** -25), 0x0002); // tie to even (2)
  assert.is(halfBits(1 + 2 ** -11), 0x3c00); // tie: down to even
  assert.is(halfBits(1 + 3 * 2 ** -11), 0x3c02); // tie: up to even
  assert.is(halfBits(-0), 0x8000);
  assert.ok(Number.isNaN(halfValue(halfBits(NaN))));
  assert.is(halfValue(0x7c00), Infinity);
  assert.is(halfValue(0x03ff), 1023 * 2 ** -24);
  // every half is a float32 and survives the round trip
  const all = new Uint16Array(0x7c00);
  for (let i = 0; i < all.length; i++) all[i] = i;
  const back = toHalf(fromHalf(all));
  for (let i = 0; i < all.length; i++) if (back[i] !== all[i]) throw new Error(`half ${i} does not round-trip (${back[i]})`);
});

test('f16 tensors: padded storage, written rounded, read back as float32 (odd size)', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const v = [1, -2.5, 1 / 3, 70000, 1e-8, 0.1, 65504];
  const t = Tensor.from(gpu, [7], v, 'h', 'f16');
  assert.is(t.bytes, 16);
  assert.match(t.describe(), / f16$/);
  assert.equal([...(await t.toArray())], v.map(roundHalf));
  t.dispose();
});

test('cast (scalar and vec4 kernels): f32 -> f16 within one half ulp (WGSL picks a neighbour), f16 -> f32 exact', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(3);
  for (const n of [1001, 1000]) {
    const v = randomArray(rng, n, -300, 300);
    v[0] = 0; v[1] = 1e-6; v[2] = -65504; v[3] = 2 ** -20;
    const x = Tensor.from(gpu, [n], v);
    const h = cast(x, 'f16');
    const back = cast(h, 'f32');
    assert.is(cast(x, 'f32'), x, 'same storage: no copy');
    const hv = await h.toArray();
    assertClose(hv, Float64Array.from(v), halfTol(0), `f32 -> f16 (${n})`);
    for (const u of hv) assert.is(roundHalf(u), u, 'a half');
    assert.equal([...(await back.toArray())], [...hv], `f16 -> f32 (${n})`);
    x.dispose(); h.dispose(); back.dispose();
  }
});

test('every entry point of the kernels with a storage type compiles with ST=f16', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const withSt = allKernelSpecs().filter((s) => fs.readFileSync(path.join(kernelsDir(), `${s.file}.wgsl`), 'utf8').includes('{{ST}}'));
  const files = new Set(withSt.map((s) => s.file));
  for (const f of ['activation', 'cast', 'concat', 'conv2d_direct', 'conv2d_gemm', 'conv2d_reg', 'conv2d_tile', 'pool', 'shortcut', 'upsample', 'yolo_act']) assert.ok(files.has(f), `${f}.wgsl has {{ST}}`);
  for (const s of withSt) await gpu.compile({ ...s, defines: { ...(s.defines ?? {}), ST: 'f16' } });
});

// ---------------------------------------------------------------- convolution

interface ConvCase { name: string; x: number[]; w: number[]; p: Conv2dParams; picks: string[]; act: 'leaky' | 'linear' | 'mish' }

const CONV_CASES: ConvCase[] = [
  { name: '3x3 pad 1, 5 -> 19 channels, batch 2, 9x11', x: [2, 5, 9, 11], w: [19, 5, 3, 3], p: { pad: 1 }, act: 'leaky', picks: ['direct', 'gemm_tiled', 'gemm_reg', 'tile', 'tile@16x2x4', 'tile@8x4x2', 'gemm_reg@8x4x64'] },
  { name: '3x3 stride 2, 6 -> 8, 13x13', x: [1, 6, 13, 13], w: [8, 6, 3, 3], p: { stride: 2, pad: 1 }, act: 'mish', picks: ['direct', 'gemm_reg', 'tile'] },
  { name: '1x1, 16 -> 12, 7x5 (a flattened row)', x: [1, 16, 7, 5], w: [12, 16, 1, 1], p: {}, act: 'linear', picks: ['direct', 'gemm_tiled', 'gemm_reg', 'tile'] },
  { name: 'depthwise 3x3, 4 channels, 6x6', x: [1, 4, 6, 6], w: [4, 1, 3, 3], p: { groups: 4, pad: 1 }, act: 'leaky', picks: ['direct', 'gemm_reg', 'tile'] },
];

for (const c of CONV_CASES) {
  test(`conv2d f16 ${c.name}: every algorithm vs float64 on the f16 inputs`, async () => {
    const gpu = await skipWithoutF16();
    if (!gpu) return;
    const rng = new Rng(41);
    const xv = halfArray(rng, prod(c.x), -2, 2);
    const wv = halfArray(rng, prod(c.w), -0.5, 0.5);
    const bv = randomArray(rng, c.w[0], -0.5, 0.5); // the bias stays f32
    const ref = conv2dRef(xv, c.x, wv, c.w, bv, c.p);
    const want = Float64Array.from(ref.y, (v) => actRef(v, c.act));
    // the f32 conv test's arithmetic tolerance for a reduction of K terms (test/kernels/conv2d.test.ts)
    const K = c.w[1] * c.w[2] * c.w[3] + 1;
    const tol = halfTol(1e-5 + 1e-6 * K, 1e-4);
    const x = Tensor.from(gpu, c.x, xv, 'x', 'f16');
    const w = Tensor.from(gpu, c.w, wv, 'w', 'f16');
    const b = Tensor.from(gpu, [c.w[0]], bv, 'b');
    for (const pick of c.picks) {
      const y = conv2dForward(x, w, b, c.p, parseConvPick(pick)!, c.act);
      assertClose(await readHalf(y), want, tol, `${c.name} ${pick}`);
    }
    // into a channel slice of a bigger f16 destination (route / split weights): Coff 3 of Ctot Cout + 5
    const [B, Co, OH, OW] = ref.shape;
    const dst = Tensor.from(gpu, [B, Co + 5, OH, OW], new Float32Array(B * (Co + 5) * OH * OW).fill(7), 'dst', 'f16');
    conv2dForward(x, w, b, c.p, parseConvPick(c.picks[0])!, c.act, { dst, channelOffset: 3 });
    const got = await readHalf(dst);
    for (let n = 0; n < B; n++) {
      for (let ch = 0; ch < Co + 5; ch++) {
        const plane = got.subarray(((n * (Co + 5)) + ch) * OH * OW, ((n * (Co + 5)) + ch + 1) * OH * OW);
        if (ch < 3 || ch >= 3 + Co) assert.ok(plane.every((v) => v === 7), `channel ${ch} untouched`);
        else assertClose(plane, want.subarray((n * Co + ch - 3) * OH * OW, (n * Co + ch - 2) * OH * OW), tol, `${c.name} slice channel ${ch}`);
      }
    }
    x.dispose(); w.dispose(); b.dispose();
  });
}

test('conv2d f16 + fused 2x2/2 maxpool epilogue (tile), odd 11x9 map, vs float64 on the f16 inputs', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(5);
  const xs = [1, 4, 11, 9];
  const ws = [10, 4, 3, 3];
  const xv = halfArray(rng, prod(xs), -2, 2);
  const wv = halfArray(rng, prod(ws), -0.5, 0.5);
  const bv = randomArray(rng, 10, -0.2, 0.2);
  const conv = conv2dRef(xv, xs, wv, ws, bv, { pad: 1 });
  const want = maxpoolRef(Float64Array.from(conv.y, (v) => actRef(v, 'leaky')), conv.shape, { size: 2, strideX: 2, strideY: 2, padding: 1 }).y;
  const x = Tensor.from(gpu, xs, xv, 'x', 'f16');
  const w = Tensor.from(gpu, ws, wv, 'w', 'f16');
  const b = Tensor.from(gpu, [10], bv);
  for (const pick of ['tile', 'tile@16x2x4', 'tile@8x4x2', 'gemm_reg']) {
    const y = conv2dMaxpoolForward(x, w, b, { pad: 1 }, { size: 2, stride: 2 }, parseConvPick(pick)!, 'leaky');
    assertClose(await readHalf(y), want, halfTol(1e-5 + 1e-6 * 37, 1e-4), `fused pool ${pick}`);
  }
  x.dispose(); w.dispose(); b.dispose();
});

test('conv2d refuses mixed storage (x f16 with f32 weights), naming the types', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const x = Tensor.from(gpu, [1, 2, 4, 4], new Float32Array(32), 'x', 'f16');
  const w = Tensor.from(gpu, [3, 2, 3, 3], new Float32Array(54));
  assert.throws(() => conv2dForward(x, w, null, { pad: 1 }), /storage types do not match: x f16, w f32/);
  x.dispose(); w.dispose();
});

// ---------------------------------------------------------------- the other inference kernels

test('maxpool f16 (max_fwd and the vec4 pair kernel): exactly the float64 maximum of the halves', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(9);
  const cases = [
    { shape: [2, 3, 8, 8], o: { size: 2, stride: 2 } }, // max2_fwd (width a multiple of 4)
    { shape: [1, 3, 7, 9], o: { size: 2, stride: 2 } }, // max_fwd
    { shape: [1, 4, 13, 13], o: { size: 5, stride: 1 } }, // SPP
    { shape: [1, 2, 13, 13], o: { size: 2, stride: 1 } }, // yolov3-tiny's last pool
  ];
  for (const c of cases) {
    const xv = halfArray(rng, prod(c.shape), -3, 3);
    const x = Tensor.from(gpu, c.shape, xv, 'x', 'f16');
    const ref = maxpoolRef(xv, c.shape, { size: c.o.size, strideX: c.o.stride, strideY: c.o.stride, padding: c.o.size - 1 });
    assertClose(await readHalf(maxpool(x, c.o)), ref.y, EXACT, `maxpool ${c.shape.join('x')} size ${c.o.size}/${c.o.stride}`);
    x.dispose();
  }
});

test('upsample f16: nearest x2 exact, scale 0.5 and the reverse block sum within the bound', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(10);
  const shape = [2, 3, 5, 7];
  const xv = halfArray(rng, prod(shape), -4, 4);
  const x = Tensor.from(gpu, shape, xv, 'x', 'f16');
  assertClose(await readHalf(upsample(x, 2)), upsampleRef(xv, shape, 2), EXACT, 'upsample x2');
  assertClose(await readHalf(upsample(x, 3, { scale: 0.3 })), upsampleRef(xv, shape, 3, 0.3), halfTol(1e-6, 1e-6), 'upsample x3 scale 0.3');
  const big = [1, 2, 8, 6];
  const bv = halfArray(rng, prod(big), -4, 4);
  const xb = Tensor.from(gpu, big, bv, 'xb', 'f16');
  assertClose(await readHalf(upsample(xb, -2)), upsampleSumRef(bv, [1, 2, 4, 3], 2), halfTol(1e-6, 1e-6), 'reverse (downsample) by 2');
  x.dispose(); xb.dispose();
});

test('route / concat f16: copies where the half offsets allow, the kernel where they are odd; exact', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(12);
  // 13x13 planes (odd) with odd channel counts: every slice of b and the groups=2 halves are odd in halves
  for (const [shapes, groups, groupId] of [
    [[[1, 4, 6, 6], [1, 2, 6, 6]], 1, 0], // even: buffer copies
    [[[2, 3, 13, 13], [2, 5, 13, 13]], 1, 0], // odd: the kernel
    [[[1, 6, 13, 13], [1, 2, 13, 13]], 2, 1], // yolov4-tiny's group_id=1 of 2 at 13x13: odd offsets
  ] as [number[][], number, number][]) {
    const vals = shapes.map((s) => halfArray(rng, prod(s), -5, 5));
    const ts = shapes.map((s, i) => Tensor.from(gpu, s, vals[i], `in${i}`, 'f16'));
    const want = concatRef(shapes.map((s, i) => ({ data: vals[i], shape: s })), groups, groupId);
    assertClose(await readHalf(concat(ts, { groups, groupId })), want, EXACT, `concat ${shapes.map((s) => s.join('x')).join(' + ')} groups ${groups}/${groupId}`);
    for (const t of ts) t.dispose();
  }
  const a = Tensor.from(gpu, [1, 2, 2, 2], new Float32Array(8), 'a', 'f16');
  const b = Tensor.from(gpu, [1, 2, 2, 2], new Float32Array(8), 'b');
  assert.throws(() => concat([a, b]), /storage types differ/);
  a.dispose(); b.dispose();
});

test('shortcut f16 (linear and leaky, equal and resampled shapes) within the bound', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(13);
  for (const [as, bs, act] of [
    [[2, 4, 5, 6], [2, 4, 5, 6], 'linear'],
    [[1, 4, 6, 6], [1, 3, 3, 3], 'leaky'],
  ] as [number[], number[], 'linear' | 'leaky'][]) {
    const av = halfArray(rng, prod(as), -3, 3);
    const bv = halfArray(rng, prod(bs), -3, 3);
    const a = Tensor.from(gpu, as, av, 'a', 'f16');
    const b = Tensor.from(gpu, bs, bv, 'b', 'f16');
    assertClose(await readHalf(shortcut(a, b, { activation: act })), shortcutRef(av, as, bv, bs, act), halfTol(1e-6, 1e-6), `shortcut ${act} ${as.join('x')} + ${bs.join('x')}`);
    a.dispose(); b.dispose();
  }
});

for (const act of ACTIVATIONS.filter((a) => a !== 'linear')) {
  test(`activation ${act} f16 (scalar and vec4 kernels) within the bound`, async () => {
    const gpu = await skipWithoutF16();
    if (!gpu) return;
    const rng = new Rng(14);
    for (const shape of [[2, 3, 5, 7], [2, 3, 4, 6]]) {
      const xv = halfArray(rng, prod(shape), -6, 6);
      const x = Tensor.from(gpu, shape, xv, 'x', 'f16');
      // the f32 activation test's tolerance (transcendentals: ~1e-6 relative)
      assertClose(await readHalf(activation(x, act)), activationRef(xv, act), halfTol(2e-6, 2e-5), `${act} ${shape.join('x')}`);
      x.dispose();
    }
  });
}

test('[yolo] / [region] head activation f16 within the bound', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const rng = new Rng(15);
  // planes of 15 (fwd) and 16 values (fwd4)
  for (const shape of [[2, 2 * 7, 5, 3], [2, 2 * 7, 4, 4]]) {
    const xv = halfArray(rng, prod(shape), -6, 6);
    const x = Tensor.from(gpu, shape, xv, 'x', 'f16');
    for (const a of [
      { entries: 7, xyLogistic: true, xyScale: 1.05, xyBias: -0.025, actFrom: 4, actTo: 7 },
      { entries: 7, xyLogistic: false, actFrom: 7, actTo: 7 },
    ]) {
      assertClose(await readHalf(headActivation(x, a)), headActivationRef(xv, shape, a), halfTol(2e-6, 2e-5), `head activation [${shape}] ${JSON.stringify(a)}`);
    }
    x.dispose();
  }
});

test('an f16 tensor given to a kernel without the f16 variant is refused, naming the kernel and binding', async () => {
  const gpu = await skipWithoutF16();
  if (!gpu) return;
  const x = Tensor.from(gpu, [1, 2, 3, 3], new Float32Array(18), 'x', 'f16');
  try {
    avgpool(x);
    assert.unreachable('avgpool of an f16 tensor');
  } catch (e) {
    assert.instance(e, GpuError);
    assert.is((e as GpuError).kind, 'params');
    assert.match((e as Error).message, /pool\.wgsl:avg_fwd/);
    assert.match((e as Error).message, /binding 1 is an f16 tensor 'x'/);
  }
  x.dispose();
});

test.run();
