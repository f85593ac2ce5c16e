import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { Tensor } from '../../src/tensor/index.js';
import { HeadDecoder, decodeRows, selectAnchors, type Detection, type HeadSpec, type NetSize } from '../../src/yolo/decode.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import { decodeRowsRef, filterRows, rowsFromDarknet, type RowHit } from './reference.js';
import { readNpy } from './npy.js';

/** |err| <= 1e-5 · max|expected| per tensor (plus a hair for values near 0). */
function relTol(expected: ArrayLike<number>, rel = 1e-5) {
  return { atol: rel * maxAbs(expected), rtol: 0 };
}

/** Compacted detections vs hits of a CPU filter: the same (batch, head, index, class) in the same order. */
function assertSameHits(got: Detection[], want: RowHit[], head: number, label: string, tolValue = 1e-6): void {
  const key = (b: number, i: number, c: number) => `${b}/${i}/${c}`;
  const g = got.filter((d) => d.head === head);
  const gk = g.map((d) => key(d.batch, d.index, d.classId));
  const wk = want.map((h) => key(h.batch, h.index, h.classId));
  if (gk.join(',') !== wk.join(',')) {
    const gs = new Set(gk);
    const ws = new Set(wk);
    const missing = wk.filter((k) => !gs.has(k));
    const extra = gk.filter((k) => !ws.has(k));
    assert.unreachable(`${label}: ${g.length} detections vs ${want.length} expected; missing ${missing.slice(0, 5).join(' ')} extra ${extra.slice(0, 5).join(' ')}`);
  }
  for (let k = 0; k < g.length; k++) {
    const d = g[k];
    const h = want[k];
    const a = [d.box.x, d.box.y, d.box.w, d.box.h, d.objectness, d.score];
    const e = [...h.box, h.objectness, h.score];
    assertClose(a, e, { atol: tolValue, rtol: tolValue }, `${label} detection ${k}`);
  }
}

// ---------------------------------------------------------------- synthetic (always run)

const NET: NetSize = { width: 224, height: 160 };
const SYNTH: { name: string; head: HeadSpec; lo: number; hi: number }[] = [
  { name: 'yolo', head: { anchors: [10, 14, 23, 27, 37, 58], classes: 5 }, lo: -4, hi: 4 },
  { name: 'yolo scale_x_y 1.05', head: { anchors: [10, 14, 23, 27, 37, 58], classes: 5, scaleXY: 1.05 }, lo: -4, hi: 4 },
  // new_coords heads follow a logistic conv: inputs in [0, 1)
  { name: 'yolo new_coords scale_x_y 2', head: { anchors: [12, 16, 19, 36, 40, 28], classes: 5, scaleXY: 2, newCoords: true }, lo: 0, hi: 1 },
  { name: 'region (softmax, anchors in cells)', head: { kind: 'region', anchors: [1.08, 1.19, 3.42, 4.41, 6.63, 11.38], classes: 5 }, lo: -4, hi: 4 },
  { name: 'region softmax=0', head: { kind: 'region', anchors: [1.08, 1.19, 3.42, 4.41, 6.63, 11.38], classes: 5, softmax: false }, lo: -4, hi: 4 },
];

for (const c of SYNTH) {
  test(`decode rows, ${c.name}: vs float64 reference (batch 2, 5x7 grid, 3 anchors, 5 classes)`, async () => {
    const gpu = await getGpu();
    const shape = [2, 3 * 10, 5, 7];
    const xv = randomArray(new Rng(3), 2 * 30 * 35, c.lo, c.hi);
    const x = Tensor.from(gpu, shape, xv);
    const rows = decodeRows(x, c.head, NET);
    assert.equal(rows.shape, [2, 5 * 7 * 3, 10]);
    const got = await rows.toArray();
    const want = decodeRowsRef(xv, shape, c.head, NET);
    assertClose(got, want, { atol: 1e-6, rtol: 2e-6 }, `${c.name} rows`);
    // thresholded rows zero the class scores at or below the threshold, as OpenCV does
    const rowsT = decodeRows(x, c.head, NET, 0.2);
    assertClose(await rowsT.toArray(), decodeRowsRef(xv, shape, c.head, NET, 0.2), { atol: 1e-6, rtol: 2e-6 }, `${c.name} thresholded rows`);
    x.dispose(); rows.dispose(); rowsT.dispose();
  });

  test(`decode + compact, ${c.name}: the survivors of a CPU filter of the same rows, in Darknet order`, async () => {
    const gpu = await getGpu();
    const shape = [2, 3 * 10, 5, 7];
    const xv = randomArray(new Rng(5), 2 * 30 * 35, c.lo, c.hi);
    const x = Tensor.from(gpu, shape, xv);
    const rows = await decodeRows(x, c.head, NET).toArray();
    const dec = new HeadDecoder(gpu, [c.head], NET);
    for (const t of [0.1, 0.25, 0.5]) {
      const dets = await dec.detect([x], { thresh: t });
      const want = filterRows(rows, 2, 105, 5, t);
      assert.ok(want.length > 0 || t === 0.5, `threshold ${t} keeps something`);
      assert.is(dec.lastCount, want.length);
      assertSameHits(dets, want, 0, `${c.name} @${t}`, 0);
    }
    dec.dispose(); x.dispose();
  });
}

test('decode + compact: score vectors of heads with different class counts share one record stride', async () => {
  // one buffer, one stride (10 + the largest class count): a head with fewer classes must not shift the
  // records of the others (it wrote 10 + its own classes while the reader stepped 10 + the largest)
  const gpu = await getGpu();
  const heads: HeadSpec[] = [
    { anchors: [81, 82, 135, 169], classes: 7 },
    { anchors: [10, 14, 23, 27, 37, 58], classes: 3 },
  ];
  const shapes = [[2, 24, 3, 4], [2, 24, 5, 6]];
  const data = shapes.map((s, i) => randomArray(new Rng(40 + i), s.reduce((a, b) => a * b), -3, 3));
  const xs = shapes.map((s, i) => Tensor.from(gpu, s, data[i]));
  const dec = new HeadDecoder(gpu, heads, NET);
  const t = 0.1;
  const dets = await dec.detect(xs, { thresh: t, withScores: true });
  let total = 0;
  for (let hI = 0; hI < 2; hI++) {
    const [B, , H, W] = shapes[hI];
    const C = heads[hI].classes;
    const A = heads[hI].anchors.length / 2;
    const rows = decodeRowsRef(data[hI], shapes[hI], heads[hI], NET);
    const want = filterRows(rows, B, H * W * A, C, t);
    total += want.length;
    assert.ok(want.length > 0, `head ${hI} keeps something`);
    assertSameHits(dets, want, hI, `head ${hI}`, 2e-6);
    for (const d of dets.filter((q) => q.head === hI)) {
      const o = (d.batch * H * W * A + d.index) * (5 + C);
      const e = Array.from({ length: C }, (_, j) => (rows[o + 5 + j] > t ? rows[o + 5 + j] : 0));
      assertClose(d.scores!, e, { atol: 2e-6, rtol: 2e-6 }, `head ${hI} scores of ${d.batch}/${d.index}`);
    }
  }
  assert.is(dets.length, total);
  dec.dispose(); xs.forEach((x) => x.dispose());
});

test('decode + compact: score vectors, capacity growth, several heads and batch in one buffer', async () => {
  const gpu = await getGpu();
  const heads: HeadSpec[] = [
    { anchors: [81, 82, 135, 169, 344, 319], classes: 7 },
    { anchors: [10, 14, 23, 27], classes: 7, scaleXY: 1.1 },
  ];
  const shapes = [[2, 36, 3, 4], [2, 24, 6, 8]];
  const data = shapes.map((s, i) => randomArray(new Rng(20 + i), s.reduce((a, b) => a * b), -3, 3));
  const xs = shapes.map((s, i) => Tensor.from(gpu, s, data[i]));
  const dec = new HeadDecoder(gpu, heads, NET, { capacity: 16 });
  const t = 0.05;
  const dets = await dec.detect(xs, { thresh: t, withScores: true });
  assert.ok(dec.regrowths >= 1, 'the 16-record buffer had to grow');
  let total = 0;
  for (let hI = 0; hI < 2; hI++) {
    const [B, , H, W] = shapes[hI];
    const rows = decodeRowsRef(data[hI], shapes[hI], heads[hI], NET);
    const want = filterRows(rows, B, H * W * (heads[hI].anchors.length / 2), 7, t);
    total += want.length;
    assertSameHits(dets, want, hI, `head ${hI}`, 2e-6);
    // each entry carries its box's class scores, zero at or below the threshold
    for (const d of dets.filter((q) => q.head === hI)) {
      const o = (d.batch * H * W * (heads[hI].anchors.length / 2) + d.index) * 12;
      const e = Array.from({ length: 7 }, (_, j) => (rows[o + 5 + j] > t ? rows[o + 5 + j] : 0));
      assertClose(d.scores!, e, { atol: 2e-6, rtol: 2e-6 }, `scores of ${d.batch}/${d.index}`);
      assert.is(d.scores![d.classId], d.score);
    }
  }
  assert.is(dets.length, total);
  assert.ok(total > 16, `more than the initial capacity survived (${total})`);
  // order: image, head, row, class
  for (let k = 1; k < dets.length; k++) {
    const a = dets[k - 1];
    const b = dets[k];
    assert.ok(a.batch < b.batch || (a.batch === b.batch && (a.head < b.head || (a.head === b.head && (a.index < b.index || (a.index === b.index && a.classId < b.classId))))), `order at ${k}`);
  }
  // nothing survives a threshold of 1
  assert.equal(await dec.detect(xs, { thresh: 1 }), []);
  dec.dispose(); xs.forEach((x) => x.dispose());
});

test('decode: shape and option errors name the problem', async () => {
  const gpu = await getGpu();
  const x = Tensor.from(gpu, [1, 20, 2, 2], new Float32Array(80));
  assert.throws(() => decodeRows(x, { anchors: [1, 2, 3, 4, 5, 6], classes: 5 }, NET), /not \[B, 3\*\(5\+5\) = 30, H, W\]/);
  assert.throws(() => decodeRows(x, { anchors: [1, 2, 3], classes: 5 }, NET), /pairs/);
  assert.throws(() => new HeadDecoder(gpu, [{ kind: 'region', anchors: [1, 1], classes: 1, newCoords: true }], NET), /new_coords/);
  assert.equal(selectAnchors([10, 14, 23, 27, 37, 58, 81, 82], [3, 1]), [81, 82, 23, 27]);
  assert.throws(() => selectAnchors([10, 14], [1]), /outside/);
  x.dispose();
});

// ---------------------------------------------------------------- OpenCV / Darknet goldens (../shared)

interface GoldenHead {
  yolo: string;
  conv: string;
  head: HeadSpec;
}
const V3T_ANCHORS = [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319];
// Heads hard-coded from the cfgs: odd.cfg ([yolo] mask=0,1 anchors=10,14,23,27 classes=4),
// darknet-cfg/yolov3-tiny.cfg (masks 3,4,5 and 0,1,2), darknet-cfg/yolov4-tiny.cfg (masks 3,4,5 and 1,2,3,
// scale_x_y=1.05); the network sizes are the ones the goldens were run at (golden/README.md).
const GOLDEN: { dir: string; net: NetSize; heads: GoldenHead[] }[] = [
  { dir: 'out_odd', net: { width: 75, height: 53 }, heads: [{ yolo: 'yolo_9', conv: 'conv_8', head: { anchors: [10, 14, 23, 27], classes: 4 } }] },
  ...(['out_v3t', 'out_v3t_b2'] as const).map((dir) => ({
    dir,
    net: dir === 'out_v3t' ? { width: 160, height: 160 } : { width: 128, height: 96 },
    heads: [
      { yolo: 'yolo_16', conv: 'conv_15', head: { anchors: selectAnchors(V3T_ANCHORS, [3, 4, 5]), classes: 80 } },
      { yolo: 'yolo_23', conv: 'conv_22', head: { anchors: selectAnchors(V3T_ANCHORS, [0, 1, 2]), classes: 80 } },
    ],
  })),
  {
    dir: 'out_v4t',
    net: { width: 192, height: 160 },
    heads: [
      { yolo: 'yolo_30', conv: 'conv_29', head: { anchors: selectAnchors(V3T_ANCHORS, [3, 4, 5]), classes: 80, scaleXY: 1.05 } },
      { yolo: 'yolo_37', conv: 'conv_36', head: { anchors: selectAnchors(V3T_ANCHORS, [1, 2, 3]), classes: 80, scaleXY: 1.05 } },
    ],
  },
];

for (const g of GOLDEN) {
  test(`decode ${g.dir}: rows vs OpenCV 4.6 and Darknet activations; compacted survivors vs the OpenCV rows`, async () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared(`decode vs golden/networks/${g.dir}`);
    const dir = path.join(shared, 'golden', 'networks', g.dir);
    const shapes = JSON.parse(fs.readFileSync(path.join(dir, 'shapes.json'), 'utf8')) as { yolo_heads: Record<string, { conv: string; anchors_in_mask: number; classes: number; scale_x_y: number }> };
    const gpu = await getGpu();
    const convs: Tensor[] = [];
    const goldenRows: Float32Array[] = [];
    for (const h of g.heads) {
      const meta = shapes.yolo_heads[h.yolo];
      assert.is(meta.conv, h.conv);
      assert.is(meta.anchors_in_mask, h.head.anchors.length / 2);
      assert.is(meta.classes, h.head.classes);
      assert.is(meta.scale_x_y, h.head.scaleXY ?? 1);
      const conv = readNpy(path.join(dir, `${h.conv}.npy`));
      const x = Tensor.from(gpu, conv.shape, conv.data);
      convs.push(x);
      const rows = decodeRows(x, h.head, g.net);
      const got = await rows.toArray();
      rows.dispose();
      const cv = readNpy(path.join(dir, `${h.yolo}.npy`));
      const [B, , H, W] = conv.shape;
      const nRows = H * W * (h.head.anchors.length / 2);
      assert.is(cv.data.length, B * nRows * (5 + h.head.classes), `${h.yolo}.npy size`);
      goldenRows.push(cv.data as Float32Array);
      const e1 = assertClose(got, cv.data, relTol(cv.data), `${g.dir} ${h.yolo} vs OpenCV`);
      const dk = readNpy(path.join(dir, `${h.yolo}.darknet.npy`));
      const fromDk = rowsFromDarknet(dk.data, dk.shape, h.head, g.net);
      const e2 = assertClose(got, fromDk, relTol(fromDk), `${g.dir} ${h.yolo} vs Darknet activations`);
      console.log(`  ${g.dir} ${h.yolo}: max |err| vs OpenCV ${(e1 / maxAbs(cv.data)).toExponential(2)}, vs Darknet ${(e2 / maxAbs(fromDk)).toExponential(2)} (relative to max|value|)`);
    }
    // compaction: same survivors as Darknet's test on OpenCV's rows, except for scores within 1e-5 of t
    const dec = new HeadDecoder(gpu, g.heads.map((h) => h.head), g.net);
    for (const t of [0.05, 0.3, 0.4]) {
      const dets = await dec.detect(convs, { thresh: t });
      let n = 0;
      g.heads.forEach((h, hI) => {
        const [B, , H, W] = convs[hI].shape;
        const want = filterRows(goldenRows[hI], B, H * W * (h.head.anchors.length / 2), h.head.classes, t);
        const near = (v: number) => Math.abs(v - t) < 1e-5;
        const mine = dets.filter((d) => d.head === hI && !near(d.score) && !near(d.objectness));
        const theirs = want.filter((w) => !near(w.score) && !near(w.objectness));
        assertSameHits(mine, theirs, hI, `${g.dir} ${h.yolo} @${t}`, 1e-5);
        n += want.length;
      });
      console.log(`  ${g.dir} @${t}: ${dets.length} detections (OpenCV rows: ${n})`);
    }
    dec.dispose();
    convs.forEach((x) => x.dispose());
  });
}

test.run();
