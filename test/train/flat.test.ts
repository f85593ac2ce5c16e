// Packed parameters (src/tensor/arena.ts) and the flat optimizer / EMA kernels (kernels/optim.wgsl sgd_flat,
// adam_flat; kernels/ema.wgsl update_flat): views behave like the tensors they replace, and one dispatch over
// an arena gives the per-tensor kernels' bits (SGD with momentum / nesterov / none, Adam, AdamW; per-tensor
// rates and decay switches; skipped parameters; a subset step), and the float64 references.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, f64 } from '../helpers/check.js';
import { adamRef, sgdRef, type AdamRefState, type SgdRefState } from '../reference/optim.js';
import { Tensor } from '../../src/tensor/index.js';
import { TensorArena, arenaAlign, packTensors } from '../../src/tensor/arena.js';
import { axpyInPlace, fill } from '../../src/tensor/ops/elementwise.js';
import { Adam, AdamW, SGD, type Optimizer, type ParamLike } from '../../src/train/optim.js';
import { ModelEma } from '../../src/train/ema.js';
import type { Gpu } from '../../src/gpu/device.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const SIZES = [1, 255, 257, 4099, 3, 1030];
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function params(gpu: Gpu, seed: number): { ps: Tensor[]; vals: Float32Array[] } {
  const rng = new Rng(seed);
  const vals = SIZES.map((n) => randomArray(rng, n, -1, 1));
  return { ps: vals.map((v, k) => Tensor.param(gpu, [v.length], v, `p${k}`)), vals };
}

test('arena: packed tensors keep their values; kernels, copies and reads see only their range; freed with the last view', async () => {
  const gpu = await getGpu();
  const before = gpu.pool.inUse;
  const { ps, vals } = params(gpu, 1);
  const arenas = packTensors(gpu, ps);
  assert.is(arenas.length, 1);
  const arena = arenas[0];
  const align = arenaAlign(gpu);
  for (const [k, p] of ps.entries()) {
    assert.ok(p.isView && TensorArena.of(p) === arena, `p${k} is a view of the arena`);
    assert.is(p.offset % (align * 4), 0, `p${k} offset aligned`);
    assert.ok(bits(await p.toArray()).equals(bits(vals[k])), `p${k} values after packing`);
  }
  // a kernel on one view (fill, axpy) changes that range only; write/read and copies go through the offset
  fill(ps[2], 7);
  const other = Tensor.from(gpu, [4099], new Float32Array(4099).fill(-3));
  axpyInPlace(ps[3], other, 2);
  ps[4].write([9, 8, 7]);
  gpu.copy(other, 0, ps[2], 4, 8);
  for (const [k, p] of ps.entries()) {
    let want = vals[k];
    if (k === 2) want = Float32Array.from({ length: 257 }, (_, i) => (i === 1 || i === 2 ? -3 : 7));
    if (k === 3) want = vals[3].map((v) => Math.fround(v + -6));
    if (k === 4) want = Float32Array.from([9, 8, 7]);
    assert.ok(bits(await p.toArray()).equals(bits(want)), `p${k} after kernels on neighbours`);
  }
  // the gaps between slots stay zero
  const all = await arena.all.toArray();
  const used = new Set<number>();
  for (const p of ps) for (let i = 0; i < p.size; i++) used.add(arena.slots.get(p)!.offset + i);
  assert.ok(all.every((v, i) => used.has(i) || v === 0), 'padding is zero');
  assert.throws(() => TensorArena.pack(gpu, [ps[0]]), /already a view/);
  // WebGPU forbids one buffer bound writable and read-only in one dispatch: two views of an arena cannot be
  // the output and an input of one kernel (the arena holds parameters, which kernels only read, except the
  // optimizer / EMA / running statistics updates, which write them and read other buffers)
  await gpu.sync();
  const pair = [Tensor.from(gpu, [4], [1, 2, 3, 4]), Tensor.from(gpu, [4], [5, 6, 7, 8])];
  packTensors(gpu, pair);
  await gpu.sync();
  axpyInPlace(pair[0], pair[1], 1);
  await assert_rejects(gpu.sync(), /writable usage and another usage/);
  for (const t of pair) t.dispose();
  other.dispose();
  for (const p of ps) p.dispose();
  assert.is(gpu.pool.inUse, before, 'the arena goes back to the pool with its last view');
});

async function assert_rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable('expected an error');
}

type Make = (ps: ParamLike[], flat: boolean) => Optimizer;
const OPTIMIZERS: [string, Make, 'sgd' | 'adam' | 'adamw', Record<string, number | boolean>][] = [
  ['SGD momentum 0.9, decay 5e-4', (ps, flat) => new SGD(ps, { lr: 0.1, momentum: 0.9, decay: 5e-4, flat }), 'sgd', { momentum: 0.9, decay: 5e-4 }],
  ['SGD nesterov 0.7, dampening 0', (ps, flat) => new SGD(ps, { lr: 0.1, momentum: 0.7, nesterov: true, decay: 1e-3, flat }), 'sgd', { momentum: 0.7, decay: 1e-3, nesterov: true }],
  ['SGD momentum 0.8, dampening 0.3', (ps, flat) => new SGD(ps, { lr: 0.1, momentum: 0.8, dampening: 0.3, decay: 1e-2, flat }), 'sgd', { momentum: 0.8, dampening: 0.3, decay: 1e-2 }],
  ['SGD without momentum', (ps, flat) => new SGD(ps, { lr: 0.1, momentum: 0, decay: 1e-2, flat }), 'sgd', { momentum: 0, decay: 1e-2 }],
  ['Adam', (ps, flat) => new Adam(ps, { lr: 0.01, beta1: 0.85, beta2: 0.99, eps: 1e-6, decay: 1e-2, flat }), 'adam', { beta1: 0.85, beta2: 0.99, eps: 1e-6, decay: 1e-2 }],
  ['AdamW', (ps, flat) => new AdamW(ps, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 0.05, flat }), 'adamw', { beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 0.05 }],
];

for (const [name, make, kind, h] of OPTIMIZERS) {
  test(`flat ${name}: one dispatch per step, bitwise the per-tensor kernels, and the float64 reference`, async () => {
    const gpu = await getGpu();
    const A = params(gpu, 21);
    const B = params(gpu, 21);
    packTensors(gpu, B.ps);
    // per-tensor options: no decay on p1 (a "bias"), twice the rate on p2
    const spec = (ps: Tensor[]) => ps.map((p, k) => ({ param: p, decay: k !== 1, lrScale: k === 2 ? 2 : 1 }));
    const optA = make(spec(A.ps), true); // not packed: per-tensor kernels
    const optB = make(spec(B.ps), true); // packed: the flat kernel
    const refs = A.vals.map((v) => ({ w: f64(v), b: new Float64Array(v.length), m: new Float64Array(v.length), v: new Float64Array(v.length), t: 0 }));
    const rng = new Rng(22);
    for (let step = 1; step <= 6; step++) {
      const lr = (kind === 'sgd' ? 0.1 : 0.01) * step ** 0.5;
      optA.lr = lr;
      optB.lr = lr;
      const gradScale = step % 2 ? 1 : 0.25;
      for (const [k, v] of A.vals.entries()) {
        // p5 gets no gradient at step 3: skipped (state and step count untouched)
        if (step === 3 && k === 5) continue;
        const g = randomArray(rng, v.length, -2, 2);
        for (const ps of [A.ps, B.ps]) (ps[k].grad ??= new Tensor(gpu, [v.length])).write(g);
        const r = refs[k];
        const hk = { lr: lr * (k === 2 ? 2 : 1), decay: k !== 1 ? (h.decay as number) : 0, gradScale };
        if (kind === 'sgd') sgdRef(r as SgdRefState, g, { ...hk, momentum: h.momentum as number, dampening: h.dampening as number | undefined, nesterov: h.nesterov as boolean | undefined });
        else adamRef(r as AdamRefState, g, { ...hk, beta1: h.beta1 as number, beta2: h.beta2 as number, eps: h.eps as number, decoupled: kind === 'adamw' });
      }
      optA.step({ gradScale });
      const d0 = gpu.dispatches;
      optB.step({ gradScale });
      // (the first step also zeroes the new gradient and state mirrors)
      if (step > 1) assert.is(gpu.dispatches - d0, 1, `step ${step}: one dispatch`);
      for (const ps of [A.ps, B.ps]) for (const p of ps) { p.grad?.dispose(); p.grad = null; }
    }
    let worst = 0;
    for (const [k, p] of B.ps.entries()) {
      const got = await p.toArray();
      assert.ok(bits(got).equals(bits(await A.ps[k].toArray())), `p${k} (n=${p.size}) bitwise the per-tensor update`);
      worst = Math.max(worst, assertClose(got, refs[k].w, { atol: 2e-6, rtol: 1e-5 }, `p${k} vs float64`));
      const sa = optA.state.get(A.ps[k])!;
      const sb = optB.state.get(p)!;
      assert.is(sb.step, sa.step);
      assert.is(sb.step, k === 5 ? 5 : 6);
      for (const slot of optA.slotNames) assert.ok(bits(await sb.slots[slot].toArray()).equals(bits(await sa.slots[slot].toArray())), `p${k} ${slot} bitwise`);
    }
    console.log(`  flat ${name}: bitwise the per-tensor kernels; max |err| vs float64 ${worst.toExponential(2)}`);
    // state export / import through the views round-trips into a fresh packed optimizer
    const saved = await optB.exportState();
    const C = params(gpu, 21);
    packTensors(gpu, C.ps);
    const optC = make(spec(C.ps), true);
    optC.importState(saved);
    for (const [k, p] of C.ps.entries()) for (const slot of optC.slotNames) assert.ok(bits(await optC.state.get(p)!.slots[slot].toArray()).equals(bits(saved.params[k].slots[slot])), `import p${k} ${slot}`);
    for (const p of [...A.ps, ...B.ps, ...C.ps]) p.dispose();
    for (const o of [optA, optB, optC]) o.dispose();
  });
}

test('flat optimizer: a subset step (the bias group) updates only its parameters; flat: false keeps the per-tensor kernels', async () => {
  const gpu = await getGpu();
  const A = params(gpu, 31);
  const B = params(gpu, 31);
  packTensors(gpu, B.ps);
  const optA = new SGD(A.ps, { lr: 0.05, momentum: 0.9, decay: 1e-3 });
  const optB = new SGD(B.ps, { lr: 0.05, momentum: 0.9, decay: 1e-3 });
  const rng = new Rng(32);
  for (let step = 0; step < 3; step++) {
    for (const [k, v] of A.vals.entries()) {
      const g = randomArray(rng, v.length, -1, 1);
      for (const ps of [A.ps, B.ps]) (ps[k].grad ??= new Tensor(gpu, [v.length])).write(g);
    }
    for (const [opt, ps] of [[optA, A.ps], [optB, B.ps]] as const) {
      opt.lr = 0.05;
      opt.step([ps[0], ps[2], ps[4]]);
      opt.lr = 0.2;
      opt.step([ps[1], ps[3], ps[5]]);
    }
  }
  for (const [k, p] of B.ps.entries()) assert.ok(bits(await p.toArray()).equals(bits(await A.ps[k].toArray())), `p${k} bitwise`);
  const D = params(gpu, 33);
  packTensors(gpu, D.ps);
  const optD = new SGD(D.ps, { lr: 0.05, momentum: 0.9, flat: false });
  for (const p of D.ps) p.grad = Tensor.from(gpu, [p.size], new Float32Array(p.size).fill(1));
  optD.step();
  const d0 = gpu.dispatches;
  optD.step();
  assert.is(gpu.dispatches - d0, D.ps.length, 'flat: false: one dispatch per tensor');
  for (const p of [...A.ps, ...B.ps, ...D.ps]) { p.grad?.dispose(); p.dispose(); }
  for (const o of [optA, optB, optD]) o.dispose();
});

test('flat EMA: one dispatch over the packed sources, bitwise the per-tensor EMA; fixed sources stay exact', async () => {
  const gpu = await getGpu();
  const A = params(gpu, 41);
  const B = params(gpu, 41);
  packTensors(gpu, B.ps);
  const sources = (ps: Tensor[]) => ps.map((t, i) => ({ name: `p${i}`, tensor: t, fixed: i === 2 }));
  const ea = new ModelEma(sources(A.ps), { tau: 5 });
  const eb = new ModelEma(sources(B.ps), { tau: 5 });
  const rng = new Rng(42);
  for (let step = 0; step < 5; step++) {
    for (const [k, v] of A.vals.entries()) {
      if (k === 2) continue;
      const nv = v.map((x) => Math.fround(x + rng.uniform(-0.5, 0.5)));
      A.ps[k].write(nv);
      B.ps[k].write(nv);
    }
    ea.update();
    const d0 = gpu.dispatches;
    eb.update();
    assert.is(gpu.dispatches - d0, 1, 'one dispatch');
  }
  const ra = await ea.read();
  const rb = await eb.read();
  for (const k of ra.keys()) assert.ok(bits(rb.get(k)!).equals(bits(ra.get(k)!)), `${k} bitwise`);
  assert.ok(bits(rb.get('p2')!).equals(bits(A.vals[2])), 'fixed source unchanged');
  // state round trip and reset through the views
  const st = await eb.exportState();
  const ec = new ModelEma(sources(B.ps), { tau: 5 });
  ec.importState(st);
  for (const [k, v] of await ec.read()) assert.ok(bits(v).equals(bits(rb.get(k)!)), `import ${k}`);
  ec.reset();
  for (const [k, v] of await ec.read()) assert.ok(bits(v).equals(bits(await B.ps[Number(k.slice(1))].toArray())), `reset ${k}`);
  for (const e of [ea, eb, ec]) e.dispose();
  for (const p of [...A.ps, ...B.ps]) p.dispose();
});

test.run();
