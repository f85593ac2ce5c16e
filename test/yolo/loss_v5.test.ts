/**
 * YOLOv5 loss (src/yolo/loss_v5.ts) against fixtures/golden/yolov5_loss.json (ultralytics/yolov5 v7.0
 * ComputeLoss run by torch): build_targets exactly, loss / items, per-target CIoU, per-layer objectness and
 * class BCE means, d loss / d p; against central finite differences of the loss with CIoU's alpha and the
 * objectness targets frozen (yolov5 detaches both); edge cases; and the network path (lossFromNetwork).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { lossFromNetwork } from '../../src/yolo/loss.js';
import { V5Loss, V5_DEFAULT_HYP, applyV5PriorBiases, v5HeadsFit, groupTargets, scaleV5Hyp, v5Balance, type V5Hyp } from '../../src/yolo/loss_v5.js';
import { decodeRows } from '../../src/yolo/decode.js';
import { headFromLayer, type HeadLayerLike } from '../../src/yolo/heads.js';
import { buildTargetsV5, v5Rows, type Truth, type V5TargetRow } from '../../src/yolo/targets.js';
import { focalRef, v5LossRef, type V5RefHead } from '../reference/yolo_loss_v5.js';

interface GT { shape: number[]; data: number[] }
interface GoldenBT { n: number; b: number[]; a: number[]; gj: number[]; gi: number[]; tcls: number[]; tbox: GT; anch: GT }
interface GoldenCase {
  name: string; img_w: number; img_h: number; bs: number; nc: number; no: number; grids: [number, number][];
  anchors_grid: GT; targets: GT; p: GT[]; loss: number; loss_items: number[]; grad_p: GT[]; build_targets: GoldenBT[];
  per_layer: { ciou: number[]; obj_bce_mean: number; cls_bce_mean: number | null; tobj_nonzero: number[][] }[];
}
const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/yolov5_loss.json'), 'utf8')) as { meta: { hyp: V5Hyp; balance: number[] }; cases: GoldenCase[] };
const HYP = golden.meta.hyp;
const NA = 3;

function rowsOf(c: GoldenCase): V5TargetRow[] {
  const T = Float32Array.from(c.targets.data);
  const rows: V5TargetRow[] = [];
  for (let k = 0; k < c.targets.shape[0]; k++) rows.push({ image: T[6 * k], cls: T[6 * k + 1], x: T[6 * k + 2], y: T[6 * k + 3], w: T[6 * k + 4], h: T[6 * k + 5] });
  return rows;
}

function truthsOf(c: GoldenCase): Truth[][] {
  const out: Truth[][] = Array.from({ length: c.bs }, () => []);
  for (const r of rowsOf(c)) out[r.image].push({ x: r.x, y: r.y, w: r.w, h: r.h, cls: r.cls });
  return out;
}

/** (bs, na, ny, nx, no) <-> NCHW [bs, na*no, ny, nx] */
function toNchw(p: ArrayLike<number>, bs: number, ny: number, nx: number, no: number): Float32Array {
  const z = new Float32Array(p.length);
  for (let b = 0; b < bs; b++) for (let a = 0; a < NA; a++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) for (let k = 0; k < no; k++) {
    z[((b * NA + a) * no + k) * ny * nx + y * nx + x] = p[(((b * NA + a) * ny + y) * nx + x) * no + k];
  }
  return z;
}
function fromNchw(z: ArrayLike<number>, bs: number, ny: number, nx: number, no: number): Float64Array {
  const p = new Float64Array(z.length);
  for (let b = 0; b < bs; b++) for (let a = 0; a < NA; a++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) for (let k = 0; k < no; k++) {
    p[(((b * NA + a) * ny + y) * nx + x) * no + k] = z[((b * NA + a) * no + k) * ny * nx + y * nx + x];
  }
  return p;
}

const anchorsOf = (c: GoldenCase, i: number) => [...Float32Array.from(c.anchors_grid.data.slice(6 * i, 6 * i + 6))];
const relErr = (a: number, e: number) => (e === 0 ? Math.abs(a) : Math.abs(a - e) / Math.abs(e));

for (const c of golden.cases) {
  test(`golden ${c.name}: build_targets exact (incl. the grid-line triple, clamped indices, unclamped tbox)`, () => {
    const rows = rowsOf(c);
    c.grids.forEach(([ny, nx], i) => {
      const bt = buildTargetsV5(rows, { ny, nx, anchors: anchorsOf(c, i) }, HYP.anchor_t);
      const e = c.build_targets[i];
      assert.is(bt.n, e.n, `layer ${i} n`);
      for (const k of ['b', 'a', 'gj', 'gi', 'tcls'] as const) assert.equal([...bt[k]], e[k], `layer ${i} ${k}`);
      assertClose(bt.tbox, e.tbox.data, { atol: 1e-12, rtol: 0 }, `layer ${i} tbox`);
      assertClose(bt.anch, e.anch.data, { atol: 0, rtol: 0 }, `layer ${i} anch`);
    });
  });

  test(`golden ${c.name}: loss, items, per-layer terms, CIoU, tobj and d loss / d p on the GPU`, async () => {
    const gpu = await getGpu();
    const heads = c.grids.map((_, i) => ({ anchors: anchorsOf(c, i), balance: golden.meta.balance[i] }));
    const L = new V5Loss(heads, c.nc, HYP);
    const zv = c.p.map((p, i) => toNchw(Float32Array.from(p.data), c.bs, c.grids[i][0], c.grids[i][1], c.no));
    const zs = zv.map((v, i) => Tensor.param(gpu, [c.bs, NA * c.no, c.grids[i][0], c.grids[i][1]], v));
    const tape = newTape();
    const out = tape.record(() => L.compute(zs, truthsOf(c), { keepIou: true }));
    tape.backward(out.loss);
    const r = await out.read();
    assert.ok(relErr(r.loss, c.loss) <= 1e-5, `loss ${r.loss} vs ${c.loss}`);
    const items = [r.items.box, r.items.obj, r.items.cls];
    items.forEach((v, k) => assert.ok(c.loss_items[k] === 0 ? v === 0 : relErr(v, c.loss_items[k]) <= 1e-5, `item ${k}: ${v} vs ${c.loss_items[k]}`));
    let worst = 0;
    for (const [i, [ny, nx]] of c.grids.entries()) {
      const pl = c.per_layer[i];
      assert.is(out.stats.heads[i].assigned, c.build_targets[i].n);
      const ciou = (await out.ciou![i].toArray()).subarray(0, pl.ciou.length);
      assertClose(ciou, pl.ciou, { atol: 1e-5, rtol: 0 }, `layer ${i} ciou`);
      const meanBox = pl.ciou.length ? pl.ciou.reduce((s, v) => s + (1 - v), 0) / pl.ciou.length : 0;
      assert.ok(relErr(r.heads[i].box, HYP.box * meanBox) <= 1e-5, `layer ${i} box`);
      assert.ok(relErr(r.heads[i].obj, HYP.obj * golden.meta.balance[i] * pl.obj_bce_mean) <= 1e-5, `layer ${i} obj`);
      assert.ok(relErr(r.heads[i].cls, HYP.cls * (pl.cls_bce_mean ?? 0)) <= 1e-5, `layer ${i} cls`);
      const g = fromNchw(await zs[i].grad!.toArray(), c.bs, ny, nx, c.no);
      const e = c.grad_p[i].data;
      assertClose(g, e, { atol: 1e-6, rtol: 1e-4 }, `layer ${i} grad_p`);
      for (let k = 0; k < g.length; k++) worst = Math.max(worst, Math.abs(g[k] - e[k]) / (1e-6 + 1e-4 * Math.abs(e[k])));
    }
    // the objectness targets (last write wins) of the float64 reference equal tobj_nonzero
    const ref = v5LossRef(c.grids.map(([ny, nx], i) => ({ z: zv[i], B: c.bs, ny, nx, anchors: anchorsOf(c, i) })), rowsOf(c), c.nc, HYP, golden.meta.balance);
    c.grids.forEach(([ny, nx], i) => {
      const got = [...ref.frozen.tobj[i].entries()].filter(([, v]) => v !== 0).map(([cell, v]) => {
        const x = cell % nx, y = Math.floor(cell / nx) % ny, ba = Math.floor(cell / (nx * ny));
        return [Math.floor(ba / NA), ba % NA, y, x, v];
      }).sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2] || p[3] - q[3]);
      const want = [...c.per_layer[i].tobj_nonzero].sort((p, q) => p[0] - q[0] || p[1] - q[1] || p[2] - q[2] || p[3] - q[3]);
      assert.equal(got.map((v) => v.slice(0, 4)), want.map((v) => v.slice(0, 4)), `layer ${i} tobj cells`);
      assertClose(got.map((v) => v[4]), want.map((v) => v[4]), { atol: 1e-12, rtol: 0 }, `layer ${i} tobj values`);
    });
    assert.ok(Math.abs(ref.loss - c.loss) <= 1e-12 * c.loss, 'float64 reference loss');
    console.log(`  ${c.name}: loss rel err ${relErr(r.loss, c.loss).toExponential(2)}, worst grad |a-b|/(1e-6+1e-4|b|) ${worst.toFixed(4)}`);
    out.dispose();
    tape.dispose();
    zs.forEach((z) => {
      z.grad?.dispose();
      z.dispose();
    });
  });
}

// ---------------------------------------------------------------- synthetic: finite differences

const GRIDS: [number, number][] = [[6, 8], [3, 4]];
const ANCH = [[1.25, 1.625, 2.0, 3.75, 4.125, 2.875], [1.875, 3.8125, 3.875, 2.8125, 3.6875, 7.4375]];

function synthTruths(rng: Rng, nc: number): Truth[][] {
  const r = (lo: number, hi: number) => Math.fround(rng.uniform(lo, hi));
  return [
    [
      { x: 0.5, y: 0.5, w: 0.3, h: 0.25, cls: 0 }, // centre on grid lines of both heads
      { x: r(0.05, 0.95), y: r(0.05, 0.95), w: r(0.1, 0.4), h: r(0.1, 0.4), cls: nc - 1 },
      { x: Math.fround(0.97), y: Math.fround(0.03), w: 0.1, h: 0.12, cls: 0 }, // border: neighbours clamp
    ],
    [
      { x: r(0.05, 0.95), y: r(0.05, 0.95), w: r(0.1, 0.5), h: r(0.1, 0.5), cls: Math.min(1, nc - 1) },
      { x: r(0.05, 0.95), y: r(0.05, 0.95), w: r(0.2, 0.6), h: r(0.2, 0.6), cls: 0 },
    ],
  ];
}

const VARIANTS: { name: string; nc: number; hyp: Partial<V5Hyp>; gr?: number }[] = [
  { name: 'nc 3, default hyp', nc: 3, hyp: {} },
  { name: 'nc 1 (no class loss)', nc: 1, hyp: {} },
  { name: 'nc 2, label_smoothing 0.1, cls_pw 1.5, obj_pw 0.8, gr 0.7', nc: 2, hyp: { label_smoothing: 0.1, cls_pw: 1.5, obj_pw: 0.8, box: 0.08, cls: 0.3, obj: 1.3 }, gr: 0.7 },
];

// yolov5's FocalLoss (fl_gamma > 0) on the objectness and class BCEs, on the same cases
const FOCAL_VARIANTS = VARIANTS.flatMap((v) => [1.5, 2.0].map((g) => ({ ...v, name: `${v.name}, fl_gamma ${g}`, hyp: { ...v.hyp, fl_gamma: g } })));

for (const v of [...VARIANTS, ...FOCAL_VARIANTS]) {
  test(`synthetic ${v.name}: GPU vs float64 reference, gradient vs finite differences (alpha, tobj frozen)`, async () => {
    const gpu = await getGpu();
    const no = 5 + v.nc;
    const rng = new Rng(21);
    const zv = GRIDS.map(([ny, nx]) => randomArray(rng, 2 * NA * no * ny * nx, -1.5, 1.5));
    const truths = synthTruths(new Rng(8), v.nc);
    const balance = [4.0, 1.0];
    const L = new V5Loss(ANCH.map((a, i) => ({ anchors: a, balance: balance[i] })), v.nc, v.hyp);
    if (v.gr !== undefined) L.gr = v.gr;
    const zs = zv.map((d, i) => Tensor.param(gpu, [2, NA * no, ...GRIDS[i]], d));
    const tape = newTape();
    const out = tape.record(() => L.compute(zs, truths));
    tape.backward(out.loss);
    const r = await out.read();
    const hyp = L.hyp;
    // the reference's gr is 1: fold gr < 1 into frozen tobj targets below
    const heads = (z: ArrayLike<number>[]): V5RefHead[] => GRIDS.map(([ny, nx], i) => ({ z: z[i], B: 2, ny, nx, anchors: ANCH[i] }));
    const base = v5LossRef(heads(zv), v5Rows(truths), v.nc, hyp, balance);
    const gr = L.gr;
    const frozen = { alpha: base.frozen.alpha, tobj: base.frozen.tobj.map((m) => new Map([...m].map(([k, t]) => [k, 1 - gr + gr * t]))) };
    const ref = v5LossRef(heads(zv), v5Rows(truths), v.nc, hyp, balance, frozen);
    assert.ok(relErr(r.loss, ref.loss) <= 1e-5, `loss ${r.loss} vs ${ref.loss}`);
    assertClose([r.items.box, r.items.obj, r.items.cls], ref.items, { atol: 1e-7, rtol: 1e-5 }, 'items');
    const focal = (v.hyp.fl_gamma ?? 0) > 0;
    if (focal) {
      // the focal terms are really in play: the plain-BCE reference differs, focal shrinks obj and cls, box is unchanged
      const plain = v5LossRef(heads(zv), v5Rows(truths), v.nc, { ...hyp, fl_gamma: 0 }, balance, frozen);
      assert.ok(ref.items[1] < 0.5 * plain.items[1], `focal obj ${ref.items[1]} vs plain ${plain.items[1]}`);
      assert.ok(v.nc === 1 ? ref.items[2] === 0 : ref.items[2] < 0.5 * plain.items[2], `focal cls ${ref.items[2]} vs plain ${plain.items[2]}`);
      assert.is(ref.items[0], plain.items[0]);
      assert.ok(relErr(r.items.obj, plain.items[1]) > 0.1, 'the GPU objectness term is focal');
    }
    assert.ok(base.targets.some((t) => {
      const { groups } = groupTargets(t, NA, 6, 8);
      return groups.some((g) => g.length >= 2);
    }), 'some cell has several targets');
    const zs64 = zv.map((d) => f64(d));
    for (let i = 0; i < GRIDS.length; i++) {
      const g = await zs[i].grad!.toArray();
      assertClose(g, ref.grad[i], { atol: 1e-7, rtol: 1e-4 }, `head ${i} grad vs reference`);
      const f = () => v5LossRef(heads(zs64), v5Rows(truths), v.nc, hyp, balance, frozen).loss;
      const nonzero = [...ref.grad[i].keys()].filter((k) => Math.abs(ref.grad[i][k]) > 1e-4 && Math.floor(k / (GRIDS[i][0] * GRIDS[i][1])) % no !== 4);
      // focal: also the objectness logits of the target cells (their tobj frozen) and a few background ones
      const HW = GRIDS[i][0] * GRIDS[i][1];
      const objIdx = focal ? [...frozen.tobj[i].keys()].map((cell) => (Math.floor(cell / HW) * no + 4) * HW + (cell % HW)) : [];
      const objBg = focal ? sampleIndices(g.length / no, 10, 3).map((cell) => (Math.floor(cell / HW) * no + 4) * HW + (cell % HW)) : [];
      const idx = [...new Set([...sampleIndices(g.length, 25), ...nonzero.slice(0, 60), ...objIdx, ...objBg])];
      const fd = finiteDiff(f, zs64[i], idx, 1e-5);
      assertClose(idx.map((k) => g[k]), fd, { atol: 2e-6, rtol: 2e-3 }, `head ${i} grad vs finite differences`);
    }
    out.dispose();
    tape.dispose();
    zs.forEach((z) => {
      z.grad?.dispose();
      z.dispose();
    });
  });
}

// ---------------------------------------------------------------- focal: one logit, one target, by hand

// yolov5 FocalLoss(BCEWithLogits, gamma, alpha = 0.25) of one logit v against one target t, pos_weight 1:
//   p = σ(v), BCE = −t·log p − (1 − t)·log(1 − p), p_t = t·p + (1 − t)(1 − p), af = 0.25·t + 0.75·(1 − t),
//   FL = BCE · af · (1 − p_t)^γ,   with m = 1 − p_t = t(1 − p) + (1 − t)p, dm/dv = (1 − 2t)·p(1 − p),
//   dFL/dv = af·[(p − t)·m^γ + BCE·γ·m^(γ−1)·(1 − 2t)·p(1 − p)]          (dBCE/dv = p − t).
// v = ln 3: p = 3/4, 1 − p = 1/4, p(1 − p) = 3/16.
//  (a) t = 0, γ = 1.5: BCE = −log(1/4) = ln 4, af = 3/4, m = 3/4, m^1.5 = 3√3/8, 1.5·m^0.5 = 3√3/4, dm/dv = 3/16
//      FL = 3/4 · ln 4 · 3√3/8 = (9√3/32)·ln 4                                   ≈ 0.6753185
//      dFL/dv = 3/4·[3/4 · 3√3/8 + ln 4 · 3√3/4 · 3/16] = 27√3/128 + (27√3/256)·ln 4 ≈ 0.6185989
//  (b) t = 1, γ = 2: BCE = −log(3/4) = ln(4/3), af = 1/4, m = 1/4, m² = 1/16, 2m = 1/2, dm/dv = −3/16
//      FL = 1/4 · ln(4/3) · 1/16 = ln(4/3)/64                                     ≈ 0.004495032
//      dFL/dv = 1/4·[−1/4 · 1/16 + ln(4/3) · 1/2 · (−3/16)] = −1/256 − (3/128)·ln(4/3) ≈ −0.0106488
const HAND = [
  { t: 0, gamma: 1.5, value: ((9 * Math.sqrt(3)) / 32) * Math.log(4), grad: (27 * Math.sqrt(3)) / 128 + ((27 * Math.sqrt(3)) / 256) * Math.log(4) },
  { t: 1, gamma: 2.0, value: Math.log(4 / 3) / 64, grad: -1 / 256 - (3 / 128) * Math.log(4 / 3) },
];

test('focal by hand: one logit v = ln 3 against t = 0 (fl_gamma 1.5) and t = 1 (fl_gamma 2): reference and GPU', async () => {
  assertClose(HAND.map((h) => h.value), [0.6753185, 0.004495032], { atol: 2e-7, rtol: 0 }, 'hand values (decimal)');
  assertClose(HAND.map((h) => h.grad), [0.6185989, -0.0106488], { atol: 2e-7, rtol: 0 }, 'hand derivatives (decimal)');
  const v = Math.log(3);
  for (const h of HAND) {
    const r = focalRef(v, h.t, 1, h.gamma);
    assert.ok(relErr(r.value, h.value) <= 1e-14, `reference value ${r.value} vs ${h.value}`);
    assert.ok(relErr(r.grad, h.grad) <= 1e-14, `reference derivative ${r.grad} vs ${h.grad}`);
    // and the derivative is that of the value (central differences)
    const fd = (focalRef(v + 1e-6, h.t, 1, h.gamma).value - focalRef(v - 1e-6, h.t, 1, h.gamma).value) / 2e-6;
    assert.ok(Math.abs(fd - h.grad) <= 1e-8, `fd ${fd} vs ${h.grad}`);
  }
  // gamma 0 is the plain BCE
  const plain = focalRef(v, 1, 1, 0);
  assertClose([plain.value, plain.grad], [Math.log(4 / 3), -0.25], { atol: 1e-15, rtol: 0 }, 'gamma 0: plain BCE');
  // The GPU: one image, one anchor (1, 1), a 1x1 grid, nc 1, obj gain 1, balance 1: the loss is the focal
  // objectness of z[4] = ln 3, and d loss / d z[4] its derivative (bs = 1). Target t = 0: no truth; t = 1: a
  // truth in the cell with gr = 0 (tobj = 1 − gr + gr·CIoU = 1).
  const gpu = await getGpu();
  const zv = Float32Array.from([0.2, -0.1, 0.3, 0.1, v, 0.7]);
  for (const [k, h] of HAND.entries()) {
    const L = new V5Loss([{ anchors: [1, 1], balance: 1 }], 1, { fl_gamma: h.gamma, obj: 1 });
    L.gr = 0;
    const z = Tensor.param(gpu, [1, 6, 1, 1], zv);
    const truths: Truth[][] = h.t === 0 ? [[]] : [[{ x: 0.5, y: 0.5, w: 0.8, h: 0.7, cls: 0 }]];
    const tape = newTape();
    const out = tape.record(() => L.compute([z], truths));
    tape.backward(out.loss);
    const r = await out.read();
    const g = await z.grad!.toArray();
    // the f32 logit: v32 = fround(ln 3); the exact values above are at ln 3, 2e-8 away (|d²FL/dv²| < 1)
    assert.ok(relErr(r.items.obj, h.value) <= 1e-5, `case ${k}: GPU focal obj ${r.items.obj} vs ${h.value}`);
    assert.ok(relErr(g[4], h.grad) <= 1e-5, `case ${k}: GPU d/dz ${g[4]} vs ${h.grad}`);
    assert.is(r.items.cls, 0);
    if (h.t === 0) {
      assert.is(r.items.box, 0);
      assert.ok(relErr(r.loss, h.value) <= 1e-5, `case ${k}: loss ${r.loss}`);
      assert.equal([g[0], g[1], g[2], g[3], g[5]], [0, 0, 0, 0, 0]);
    } else assert.is(out.stats.assigned, 1);
    out.dispose();
    tape.dispose();
    z.grad?.dispose();
    z.dispose();
  }
});

// ---------------------------------------------------------------- edge cases

test('edge: no truths (one image, then the whole batch): objectness only; an unmatched tiny truth', async () => {
  const gpu = await getGpu();
  const nc = 3;
  const no = 5 + nc;
  const zv = GRIDS.map(([ny, nx], i) => randomArray(new Rng(30 + i), 2 * NA * no * ny * nx, -2, 2));
  const zs = zv.map((d, i) => Tensor.from(gpu, [2, NA * no, ...GRIDS[i]], d));
  const L = new V5Loss(ANCH.map((a, i) => ({ anchors: a, balance: [4, 1][i] })), nc);
  const heads = GRIDS.map(([ny, nx], i) => ({ z: zv[i], B: 2, ny, nx, anchors: ANCH[i] }));
  const cases: Truth[][][] = [
    [[{ x: 0.4, y: 0.6, w: 0.3, h: 0.3, cls: 2 }], []],
    [[], []],
    [[{ x: 0.4, y: 0.6, w: 0.002, h: 0.003, cls: 1 }], []], // fails anchor_t everywhere
  ];
  for (const truths of cases) {
    const out = L.compute(zs, truths, { keepGrads: true });
    const r = await out.read();
    const ref = v5LossRef(heads, v5Rows(truths), nc, L.hyp, [4, 1]);
    assert.ok(relErr(r.loss, ref.loss) <= 1e-5, `loss ${r.loss} vs ${ref.loss}`);
    for (let i = 0; i < 2; i++) assertClose(await out.grads![i].toArray(), ref.grad[i], { atol: 1e-7, rtol: 1e-4 }, `head ${i} grad`);
    if (truths.every((t) => t.length === 0) || truths[0][0].w < 0.01) {
      assert.is(out.stats.assigned, 0);
      assert.is(r.items.box, 0);
      assert.is(r.items.cls, 0);
    }
    out.dispose();
  }
  zs.forEach((z) => z.dispose());
});

test('edge: a truth only the coarse head matches; a centre on a grid line gives the same cell 3 times', () => {
  // 0.5 x 0.5: 4 x 3 cells of the 6x8 grid, at least 4x every tiny anchor there; 2 x 1.5 cells of the 3x4 grid
  const rows = v5Rows([[{ x: 0.5, y: 0.5, w: 0.5, h: 0.5, cls: 0 }]]);
  const fine = buildTargetsV5(rows, { ny: 6, nx: 8, anchors: [0.5, 0.6, 0.8, 0.7, 1.0, 0.75] }, 4);
  const coarse = buildTargetsV5(rows, { ny: 3, nx: 4, anchors: ANCH[1] }, 4);
  assert.is(fine.n, 0);
  assert.ok(coarse.n > 0);
  // x = 0.5 on an 8-wide grid: gx = 4 exactly: left (4 - 0.5 -> 3) and right (4 + 0.5 -> 4: the centre cell again)
  const line = buildTargetsV5(v5Rows([[{ x: 0.5, y: Math.fround(0.4), w: 0.2, h: 0.25, cls: 0 }]]), { ny: 6, nx: 8, anchors: ANCH[0] }, 4);
  const { groups } = groupTargets(line, NA, 6, 8);
  assert.ok(groups.some((g) => g.length >= 2), 'the centre cell repeats');
  const g3 = buildTargetsV5(v5Rows([[{ x: 0.5, y: 0.5, w: 0.2, h: 0.25, cls: 0 }]]), { ny: 6, nx: 8, anchors: ANCH[0] }, 4);
  assert.ok(groupTargets(g3, NA, 6, 8).groups.some((g) => g.length === 3), 'x and y both on grid lines: 3 entries in one cell');
  // border box: the right neighbour is not taken at x = 0.97 (gxi < 1), indices stay inside the grid
  const border = buildTargetsV5(v5Rows([[{ x: Math.fround(0.97), y: Math.fround(0.03), w: 0.1, h: 0.12, cls: 0 }]]), { ny: 6, nx: 8, anchors: ANCH[0] }, 4);
  assert.ok([...border.gi].every((v) => v >= 0 && v < 8) && [...border.gj].every((v) => v >= 0 && v < 6));
});

test('network: lossFromNetwork yolov5 (anchors / stride, balance by stride), forward + loss + backward on the tape', async () => {
  const gpu = await getGpu();
  // heads in cfg order: stride 32 first (as darknet cfgs list them), then stride 16
  const text = `[net]\nwidth=64\nheight=64\nchannels=3\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=21\nsize=1\nactivation=linear\n
[yolo]\nmask=3,4,5\nanchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119\nnum=6\nclasses=2\n
[route]\nlayers=-4\n
[convolutional]\nfilters=21\nsize=1\nactivation=linear\n
[yolo]\nmask=0,1,2\nanchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119\nnum=6\nclasses=2\n`;
  const net = Network.build(parseCfg(text, 'v5.cfg'));
  net.initWeights(3);
  net.prepare(gpu, 'train');
  const yl = lossFromNetwork(net, { kind: 'yolov5' }) as V5Loss;
  assert.equal(yl.headSources, [5, 8]);
  // balance by stride: the stride-16 head gets balance[0] = 4.0
  assert.equal(v5Balance(2), [4.0, 1.0]);
  assert.equal(yl.heads.map((h) => h.balance), [1.0, 4.0]);
  assert.equal(yl.heads[0].anchors, [30 / 32, 61 / 32, 62 / 32, 45 / 32, 59 / 32, 119 / 32]);
  assert.equal(yl.heads[1].anchors, [10 / 16, 13 / 16, 16 / 16, 30 / 16, 33 / 16, 23 / 16]);
  assert.is(yl.gradScale(16), 1);
  assert.equal(scaleV5Hyp({}, { nl: 3, nc: 80, imgsz: 640 }), V5_DEFAULT_HYP);
  const sh = scaleV5Hyp({}, { nl: 2, nc: 2, imgsz: 320 });
  assertClose([sh.box, sh.cls, sh.obj], [0.05 * 1.5, 0.5 * (2 / 80) * 1.5, 1.0 * 0.25 * 1.5], { atol: 1e-15, rtol: 0 }, 'scaled hyp');
  const x = Tensor.from(gpu, [2, 3, 64, 64], randomArray(new Rng(2), 2 * 3 * 64 * 64, 0, 1));
  const truths: Truth[][] = [[{ x: 0.4, y: 0.55, w: 0.5, h: 0.6, cls: 1 }, { x: 0.7, y: 0.3, w: 0.3, h: 0.2, cls: 0 }], [{ x: 0.5, y: 0.5, w: 0.8, h: 0.7, cls: 0 }]];
  const tape = newTape();
  let heads: Tensor[] = [];
  const out = tape.record(() => {
    const outs = net.forward(x, { mode: 'train', keep: yl.headSources });
    heads = yl.headInputs(outs).map((h) => tape.keep(h));
    return yl.compute(heads, truths);
  });
  const hv = await Promise.all(heads.map((h) => h.toArray()));
  tape.backward(out.loss);
  const r = await out.read();
  const ref = v5LossRef(heads.map((h, i) => ({ z: hv[i], B: 2, ny: h.shape[2], nx: h.shape[3], anchors: yl.heads[i].anchors })), v5Rows(truths), 2, yl.hyp, yl.heads.map((h) => h.balance));
  assert.ok(relErr(r.loss, ref.loss) <= 1e-5, `loss ${r.loss} vs ${ref.loss}`);
  assert.ok(out.stats.assigned > 0);
  // gradients reached the first convolution
  const w0 = (net.layers[0] as unknown as { tensors(m: string): Record<string, Tensor> }).tensors('train').weights;
  const g0 = await w0.grad!.toArray();
  assert.ok(g0.some((v) => v !== 0) && g0.every((v) => Number.isFinite(v)));
  out.dispose();
  tape.dispose();
  heads.forEach((h) => h.dispose());
  x.dispose();
  net.release();
});

// The same two-head network written as YOLOv5's Detect in Darknet terms (Scaled-YOLOv4's cfgs): logistic head
// convs, new_coords=1, scale_x_y=2.0.
const V5_FORM_CFG = `[net]\nwidth=64\nheight=64\nchannels=3\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n
[convolutional]\nfilters=21\nsize=1\nactivation=logistic\n
[yolo]\nmask=3,4,5\nanchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119\nnum=6\nclasses=2\nnew_coords=1\nscale_x_y=2.0\n
[route]\nlayers=-4\n
[convolutional]\nfilters=21\nsize=1\nactivation=logistic\n
[yolo]\nmask=0,1,2\nanchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119\nnum=6\nclasses=2\nnew_coords=1\nscale_x_y=2.0\n`;

test('network: heads in YOLOv5 form decode exactly the boxes the yolov5 loss trains (logits in training, Darknet decode in inference)', async () => {
  const gpu = await getGpu();
  const net = Network.build(parseCfg(V5_FORM_CFG, 'v5form.cfg'));
  net.initWeights(5);
  net.prepare(gpu, 'train');
  const yl = lossFromNetwork(net, { kind: 'yolov5' }) as V5Loss;
  assert.is(yl.decodeMismatch, null);
  assert.equal(yl.logitSources, [5, 8]);
  const x = Tensor.from(gpu, [2, 3, 64, 64], randomArray(new Rng(4), 2 * 3 * 64 * 64, 0, 1));
  const logits = net.forward(x, { mode: 'train', keep: yl.headSources, logits: yl.logitSources });
  const acts = net.forward(x, { mode: 'train', keep: yl.headSources });
  for (const [k, i] of yl.headSources.entries()) {
    const z = await logits.get(i)!.toArray();
    const a = await acts.get(i)!.toArray();
    // the logits are the conv's pre-activation: the head conv's logistic of them is its ordinary output
    assertClose(Array.from(z, (v) => 1 / (1 + Math.exp(-v))), a, { atol: 1e-6, rtol: 1e-6 }, `head ${k}: σ(logits) = output`);
    assert.ok(z.some((v) => v < 0), 'logits are not activated');
    // Darknet's decode of the activated output (what detect, OpenCV and darknet compute) = the loss's box:
    // x = (2σ(t) − 0.5 + i)·stride, w = (2σ(t))²·anchor (yolov5 Detect), in network pixels
    const layer = net.layers[i + 1] as unknown as HeadLayerLike;
    const { spec } = headFromLayer(layer);
    const out = acts.get(i)!;
    const [B, , H, W] = out.shape;
    const rows = await decodeRows(out, spec, { width: 64, height: 64 }).toArray();
    const stride = 64 / W;
    const A = 3;
    const anchors = yl.heads[k].anchors;
    let worst = 0;
    for (let b = 0; b < B; b++) for (let a = 0; a < A; a++) for (let gy = 0; gy < H; gy++) for (let gx = 0; gx < W; gx++) {
      const zi = (c: number) => z[((b * A + a) * 7 + c) * H * W + gy * W + gx];
      const sg = (v: number) => 1 / (1 + Math.exp(-v));
      const want = [(2 * sg(zi(0)) - 0.5 + gx) * stride, (2 * sg(zi(1)) - 0.5 + gy) * stride, (2 * sg(zi(2))) ** 2 * anchors[2 * a] * stride, (2 * sg(zi(3))) ** 2 * anchors[2 * a + 1] * stride];
      const r = ((b * H * W) + (gy * W + gx)) * A + a;
      const got = [rows[r * 7] * 64, rows[r * 7 + 1] * 64, rows[r * 7 + 2] * 64, rows[r * 7 + 3] * 64];
      for (let q = 0; q < 4; q++) worst = Math.max(worst, Math.abs(got[q] - want[q]) / Math.max(1, Math.abs(want[q])));
    }
    assert.ok(worst < 1e-5, `head ${k}: decoded boxes differ from the loss's boxes by ${worst}`);
  }
  for (const m of [logits, acts]) for (const t of new Set(m.values())) t.dispose();
  x.dispose();
  net.release();
});

test('network: a [yolo] head that does not decode YOLOv5 boxes is named (training refuses it); prior biases', () => {
  // Darknet's decode (σ, e^t) on linear head convs: what the yolov5 loss trains would be read wrongly
  const plain = Network.build(parseCfg(V5_FORM_CFG.replaceAll('activation=logistic', 'activation=linear').replaceAll('new_coords=1\nscale_x_y=2.0\n', ''), 'plain.cfg'));
  const yl = lossFromNetwork(plain, { kind: 'yolov5' }) as V5Loss;
  assert.equal(yl.logitSources, []);
  assert.match(yl.decodeMismatch ?? '', /plain\.cfg:\d+: this \[yolo\] head decodes Darknet's x = σ\(t\), w = e\^t·anchor/);
  assert.match(yl.decodeMismatch ?? '', /activation=logistic in the \[convolutional\] before it, new_coords=1 and scale_x_y=2\.0/);
  // new_coords without the logistic conv: also refused
  const half = Network.build(parseCfg(V5_FORM_CFG.replace('filters=21\nsize=1\nactivation=logistic', 'filters=21\nsize=1\nactivation=linear'), 'half.cfg'));
  const yh = lossFromNetwork(half, { kind: 'yolov5' }) as V5Loss;
  assert.match(yh.decodeMismatch ?? '', /new_coords=1, scale_x_y=2, after activation=linear/);
  // YOLOv5's Detect._initialize_biases on the network's own grids: obj += log(8/cells), cls += log(0.6/(nc − 0.99999))
  const net = Network.build(parseCfg(V5_FORM_CFG, 'v5form.cfg'));
  net.initWeights(5);
  const v5 = lossFromNetwork(net, { kind: 'yolov5' }) as V5Loss;
  const note = applyV5PriorBiases(net, v5);
  assert.match(note ?? '', /layer 5 obj 0\.69, layer 8 obj -0\.69, classes -0\.51/);
  assert.ok(v5HeadsFit(net) && !v5HeadsFit(plain) && !v5HeadsFit(half));
  for (const [i, cells] of [[5, 4], [8, 16]] as const) {
    const b = (net.layers[i] as unknown as { data: Record<string, Float32Array> }).data.biases;
    for (let a = 0; a < 3; a++) {
      assertClose([b[a * 7 + 4], b[a * 7 + 5], b[a * 7 + 6], b[a * 7]], [Math.log(8 / cells), Math.log(0.6 / 1.00001), Math.log(0.6 / 1.00001), 0], { atol: 1e-6, rtol: 0 }, `layer ${i} anchor ${a}`);
    }
  }
});

test.run();
