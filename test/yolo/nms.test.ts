import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ciou, diou, fromCorners, giou, intersection, iou, iouKind, toCorners, union, type Box } from '../../src/yolo/box.js';
import { nms, nmsOptionsFromDarknet, nmsOverlap, type Scored } from '../../src/yolo/nms.js';

const close = (a: number, e: number, tol = 1e-12, what = '') => assert.ok(Math.abs(a - e) <= tol, `${what}: ${a} != ${e}`);
const box = (x: number, y: number, w: number, h: number): Box => ({ x, y, w, h });

// ---------------------------------------------------------------- box math vs hand-computed values

test('iou/giou/diou/ciou of two unit squares offset by half a side', () => {
  // a = [0,1]², b = [0.5,1.5]²: I = 1/4, U = 7/4, enclosing [0,1.5]² (area 9/4, diagonal² 9/2), d² = 1/2
  const a = box(0.5, 0.5, 1, 1);
  const b = box(1, 1, 1, 1);
  close(intersection(a, b), 0.25);
  close(union(a, b), 1.75);
  close(iou(a, b), 1 / 7);
  close(giou(a, b), 1 / 7 - 0.5 / 2.25);
  close(diou(a, b), 1 / 7 - 0.5 / 4.5);
  close(diou(a, b, 0.6), -0.12472337772960074, 1e-12, "Darknet's box_diou (exponent 0.6)");
  close(ciou(a, b), 1 / 7 - 1 / 9, 1e-12, 'same aspect: ciou = diou');
  close(iouKind(a, b, 'giou'), giou(a, b));
  // symmetric
  close(iou(b, a), iou(a, b));
  close(diou(b, a, 0.6), diou(a, b, 0.6));
});

test('ciou with different aspect ratios; nested, disjoint, touching and empty boxes', () => {
  // a = 2x1, b = 1x1 at the same centre: iou 1/2, d = 0, v = 4/π²·(atan 1 - atan 2)², alpha = v/(1/2 + v + 1e-6)
  close(ciou(box(0, 0, 2, 1), box(0, 0, 1, 1)), 0.4967518766947719, 1e-12, 'ciou');
  close(iou(box(0, 0, 2, 2), box(0.5, 0.5, 1, 1)), 0.25, 1e-12, 'nested');
  close(giou(box(0, 0, 2, 2), box(0.5, 0.5, 1, 1)), 0.25, 1e-12, 'nested giou = iou');
  // disjoint: iou 0, giou = -(C-U)/C with C = 3x1, U = 2
  close(iou(box(0.5, 0.5, 1, 1), box(2.5, 0.5, 1, 1)), 0, 0, 'disjoint');
  close(giou(box(0.5, 0.5, 1, 1), box(2.5, 0.5, 1, 1)), -1 / 3, 1e-12, 'disjoint giou');
  // touching edges: zero intersection
  close(iou(box(0.5, 0.5, 1, 1), box(1.5, 0.5, 1, 1)), 0, 0, 'touching');
  // degenerate boxes: Darknet returns 0 for I == 0 or U == 0, and iou when the enclosing box is empty
  close(iou(box(1, 1, 0, 0), box(1, 1, 0, 0)), 0, 0, 'empty');
  close(giou(box(1, 1, 0, 0), box(1, 1, 0, 0)), 0, 0, 'empty giou');
  close(diou(box(1, 1, 0, 0), box(1, 1, 0, 0)), 0, 0, 'empty diou');
  const c = toCorners(box(2, 3, 4, 2));
  assert.equal(c, { x1: 0, y1: 2, x2: 4, y2: 4 });
  assert.equal(fromCorners(c), box(2, 3, 4, 2));
});

// ---------------------------------------------------------------- NMS

interface D extends Scored { name: string }
const det = (name: string, classId: number, score: number, b: Box, batch = 0): D => ({ name, classId, score, box: b, batch });
const names = (ds: D[]) => ds.map((d) => d.name);

const SCENE: D[] = [
  det('E', 0, 0.5, box(0.56, 0.5, 0.4, 0.4)), // IoU with A 0.739
  det('B', 0, 0.8, box(0.52, 0.5, 0.4, 0.4)), // IoU with A 0.905
  det('A', 0, 0.9, box(0.5, 0.5, 0.4, 0.4)),
  det('C', 1, 0.7, box(0.52, 0.5, 0.4, 0.4)), // B's box, another class
  det('D', 0, 0.6, box(0.2, 0.2, 0.1, 0.1)), // far away
];

test('greedy NMS: class-aware by default, agnostic on request, output by score', () => {
  assert.equal(names(nms(SCENE, { iouThreshold: 0.45 })), ['A', 'C', 'D']);
  assert.equal(names(nms(SCENE, { iouThreshold: 0.45, agnostic: true })), ['A', 'D']);
  // a threshold above every overlap keeps everything
  assert.equal(names(nms(SCENE, { iouThreshold: 0.95 })), ['A', 'B', 'C', 'D', 'E']);
  // 0.8 separates B (0.905, dropped) from E (0.739, kept)
  assert.equal(names(nms(SCENE, { iouThreshold: 0.8 })), ['A', 'C', 'D', 'E']);
});

test('greedy NMS: a suppressed box suppresses nothing (chain), ties keep input order, strict >', () => {
  // P1, P2, P3 of width 0.5 at x = 0, 0.25, 0.5: IoU(P1,P2) = IoU(P2,P3) = 1/3, IoU(P1,P3) = 0
  const chain = [det('P3', 0, 0.7, box(0.5, 0, 0.5, 1)), det('P2', 0, 0.8, box(0.25, 0, 0.5, 1)), det('P1', 0, 0.9, box(0, 0, 0.5, 1))];
  assert.equal(names(nms(chain, { iouThreshold: 0.3 })), ['P1', 'P3']);
  assert.equal(names(nms(chain, { iouThreshold: 0.34 })), ['P1', 'P2', 'P3']);
  // IoU exactly at the threshold is not suppressed (Darknet: > thresh)
  const half = [det('h1', 0, 0.9, box(0, 0, 2, 1)), det('h2', 0, 0.8, box(0.5, 0, 1, 1))]; // IoU 0.5
  assert.equal(names(nms(half, { iouThreshold: 0.5 })), ['h1', 'h2']);
  assert.equal(names(nms(half, { iouThreshold: 0.49 })), ['h1']);
  // equal scores: the earlier input wins, both in suppression and in output order
  const tie = [det('t1', 2, 0.5, box(1, 1, 1, 1)), det('t2', 2, 0.5, box(1, 1, 1, 1)), det('t3', 2, 0.5, box(5, 5, 1, 1))];
  assert.equal(names(nms(tie)), ['t1', 't3']);
  assert.equal(names(nms([tie[1], tie[0], tie[2]])), ['t2', 't3']);
});

test('NMS per image, maxDetections per image, empty input', () => {
  const two = [...SCENE.map((d) => ({ ...d, batch: 1, name: `1${d.name}` })), ...SCENE];
  assert.equal(names(nms(two)), ['A', 'C', 'D', '1A', '1C', '1D']);
  assert.equal(names(nms(two, { maxDetections: 2 })), ['A', 'C', '1A', '1C']);
  assert.equal(nms([]), []);
  // the kept objects are the inputs themselves
  assert.is(nms(SCENE)[0], SCENE[2]);
});

test('DIoU-NMS (Darknet greedynms / diounms): keeps overlapping boxes whose centres are apart', () => {
  // a = 2x1 at 0, b = 1x1 at x 0.5: IoU 1/2, d²/c² = 0.25/5 = 0.05
  const pair = [det('a', 0, 0.9, box(0, 0, 2, 1)), det('b', 0, 0.8, box(0.5, 0, 1, 1))];
  close(nmsOverlap(pair[0].box, pair[1].box, 'diou', 0.6), 0.33427729913300064, 1e-12, '0.5 - 0.05^0.6');
  close(nmsOverlap(pair[0].box, pair[1].box, 'diou', 1), 0.45, 1e-12, '0.5 - 0.05');
  assert.equal(names(nms(pair, { iouThreshold: 0.4 })), ['a'], 'IoU 0.5 > 0.4');
  assert.equal(names(nms(pair, { iouThreshold: 0.4, kind: 'diou' })), ['a', 'b'], 'DIoU(0.6) 0.334 <= 0.4');
  assert.equal(names(nms(pair, { iouThreshold: 0.3, kind: 'diou' })), ['a'], 'DIoU(0.6) 0.334 > 0.3');
  assert.equal(names(nms(pair, { iouThreshold: 0.4, kind: 'diou', beta: 1 })), ['a'], 'DIoU(1) 0.45 > 0.4');
  // concentric boxes: DIoU = IoU
  const conc = [det('c1', 0, 0.9, box(0, 0, 2, 2)), det('c2', 0, 0.8, box(0, 0, 1.5, 1.5))]; // IoU 0.5625
  assert.equal(names(nms(conc, { iouThreshold: 0.5, kind: 'diou' })), ['c1']);
  assert.equal(names(nms(conc, { iouThreshold: 0.5, kind: 'diou', agnostic: true })), ['c1']);
  assert.equal(nmsOptionsFromDarknet('default'), { kind: 'iou' });
  assert.equal(nmsOptionsFromDarknet('greedynms', 0.3), { kind: 'diou', beta: 0.6 });
  assert.equal(nmsOptionsFromDarknet('diounms', 0.3), { kind: 'diou', beta: 0.3 });
  assert.equal(nmsOptionsFromDarknet('cornersnms'), { kind: 'iou' });
});


// The one-pass NMS (precomputed edges, an image stops at maxDetections) against the plain statement of the
// algorithm: sort by score (stable), per image and class a box survives when no kept box of its group
// overlaps it by more than the threshold, then the first maxDetections per image. Random boxes with many
// exact ties (scores and boxes on a coarse grid), a few images and classes, NaN boxes, both kinds.
function naiveNms(dets: Scored[], o: { iouThreshold: number; kind: 'iou' | 'diou'; beta: number; agnostic: boolean; maxDetections: number }): Scored[] {
  const order = dets.map((_, i) => i).sort((a, b) => dets[b].score - dets[a].score || a - b);
  const kept: number[] = [];
  for (const i of order) {
    const d = dets[i];
    const same = (k: number) => (dets[k].batch ?? 0) === (d.batch ?? 0) && (o.agnostic || dets[k].classId === d.classId);
    if (kept.every((k) => !same(k) || !(nmsOverlap(dets[k].box, d.box, o.kind, o.beta) > o.iouThreshold))) kept.push(i);
  }
  const out: Scored[] = [];
  for (const img of [...new Set(kept.map((k) => dets[k].batch ?? 0))].sort((a, b) => a - b)) {
    out.push(...kept.filter((k) => (dets[k].batch ?? 0) === img).slice(0, o.maxDetections).map((k) => dets[k]));
  }
  return out;
}

test('one-pass NMS == the plain algorithm on random boxes with ties (iou and diou, agnostic, maxDetections)', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + Math.floor(rnd() * 300);
    const dets: Scored[] = [];
    for (let i = 0; i < n; i++) {
      const nan = rnd() < 0.01;
      dets.push({
        batch: Math.floor(rnd() * 3), classId: Math.floor(rnd() * 4), score: Math.round(rnd() * 20) / 20,
        box: { x: nan ? NaN : Math.round(rnd() * 16) / 4, y: Math.round(rnd() * 16) / 4, w: Math.round(rnd() * 8) / 4, h: Math.round(rnd() * 8) / 4 },
      });
    }
    const o = {
      iouThreshold: [0, 0.3, 0.45, 0.7][trial % 4], kind: (trial % 3 === 0 ? 'diou' : 'iou') as 'iou' | 'diou', beta: 0.6,
      agnostic: trial % 5 === 0, maxDetections: [Infinity, 1, 7, 40][trial % 4],
    };
    const want = naiveNms(dets, o);
    const got = nms(dets, o);
    assert.is(got.length, want.length, `trial ${trial}: count`);
    got.forEach((d, i) => assert.ok(d === want[i], `trial ${trial}: detection ${i} differs`));
  }
});

test.run();
