import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/util/paths.js';
import { cocoEvaluate, COCO_IOU_THRS } from '../../src/eval/coco.js';
import { ultralyticsEvaluate, ULTRALYTICS_IOUV, processBatch } from '../../src/eval/ultralytics.js';
import { vocEvaluate } from '../../src/eval/voc.js';
import { scoreDetections, formatTable, summaryJson, fmtG } from '../../src/eval/metrics.js';
import { arange, interp, linspace, trapz } from '../../src/eval/numeric.js';
import type { EvalImage, GroundTruth, Prediction, Protocol } from '../../src/eval/types.js';

// ---------------------------------------------------------------- goldens (fixtures/golden/map_cases.json)

interface Tensor2 {
  shape: [number, number];
  data: number[];
}
interface MapCase {
  name: string;
  num_images: number;
  num_classes: number;
  ground_truths: Tensor2;
  detections: Tensor2;
  pycocotools: { stats: number[]; per_class: ({ class: number; AP50_95: number | null; AP50: number | null; AP75: number | null; recall_maxdet100_iou50: number | null })[] };
  ultralytics: {
    per_class: { class: number; P: number; R: number; AP50: number; AP50_95: number; tp: number; fp: number }[];
    mP: number;
    mR: number;
    mAP50: number;
    mAP50_95: number;
    correct: boolean[][];
  };
  voc: { per_class: { class: number; npos: number; ndet: number; AP50_11pt: number | null; AP50_allpt: number | null }[]; mAP50_11pt: number; mAP50_allpt: number };
}

const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/map_cases.json'), 'utf8')) as { cases: MapCase[] };
const TOL = 1e-6;

/**
 * Images of a case. Coordinates are float32 values (read through Math.fround as the README says). Scores
 * are 4-decimal numbers: `f32Scores` reads them as float32 too; the generator fed them to val.py as
 * doubles, which Ultralytics' interpolated P/R notice at ~1e-8 (inside the 1e-6 tolerance either way).
 */
function imagesOf(c: MapCase, f32Scores = false): { images: EvalImage[]; rows: [number, number][] } {
  const f = Math.fround;
  const images: { id: number; gts: GroundTruth[]; dets: Prediction[] }[] = Array.from({ length: c.num_images }, (_, i) => ({ id: i + 1, gts: [], dets: [] }));
  const G = c.ground_truths.data;
  for (let r = 0; r < c.ground_truths.shape[0]; r++) {
    const o = r * 6;
    images[G[o]].gts.push({ x1: f(G[o + 1]), y1: f(G[o + 2]), x2: f(G[o + 3]), y2: f(G[o + 4]), classId: G[o + 5] });
  }
  const D = c.detections.data;
  const rows: [number, number][] = [];
  for (let r = 0; r < c.detections.shape[0]; r++) {
    const o = r * 7;
    rows.push([D[o], images[D[o]].dets.length]);
    images[D[o]].dets.push({ x1: f(D[o + 1]), y1: f(D[o + 2]), x2: f(D[o + 3]), y2: f(D[o + 4]), score: f32Scores ? f(D[o + 5]) : D[o + 5], classId: D[o + 6] });
  }
  return { images, rows };
}

const close = (a: number, e: number, what: string, tol = TOL) => assert.ok(Math.abs(a - e) <= tol, `${what}: ${a} vs golden ${e} (|err| ${Math.abs(a - e).toExponential(2)} > ${tol})`);

let worst = { coco: 0, ultralytics: 0, voc: 0 };
const track = (k: keyof typeof worst, a: number, e: number) => (worst[k] = Math.max(worst[k], Math.abs(a - e)));

for (const c of golden.cases) {
  test(`golden ${c.name}: pycocotools stats (all 12) and per-class AP50/AP50_95/AP75/recall`, () => {
    const { images } = imagesOf(c);
    const r = cocoEvaluate(images, { numClasses: c.num_classes });
    r.stats.forEach((v, i) => {
      close(v, c.pycocotools.stats[i], `stats[${i}]`);
      track('coco', v, c.pycocotools.stats[i]);
    });
    c.pycocotools.per_class.forEach((e, k) => {
      const p = r.perClass[k];
      if (e.AP50 === null) {
        assert.is(p, null, `class ${k} has no GT: excluded`);
        return;
      }
      assert.ok(p, `class ${k}`);
      for (const [a, b, n] of [[p!.ap50, e.AP50, 'AP50'], [p!.ap50_95, e.AP50_95!, 'AP50_95'], [p!.ap75, e.AP75!, 'AP75'], [p!.recall50, e.recall_maxdet100_iou50!, 'recall']] as [number, number, string][]) {
        close(a, b, `class ${k} ${n}`);
        track('coco', a, b);
      }
    });
    // through the unified entry point
    const s = scoreDetections(images, { protocol: 'coco', numClasses: c.num_classes });
    close(s.map50, c.pycocotools.stats[1], 'evaluate coco map50');
    close(s.map50_95, c.pycocotools.stats[0], 'evaluate coco map50_95');
  });

  test(`golden ${c.name}: Ultralytics correct matrix exactly, per-class P/R/AP/tp/fp and means`, () => {
    for (const f32 of [false, true]) {
      const { images, rows } = imagesOf(c, f32);
      const u = ultralyticsEvaluate(images);
      rows.forEach(([im, k], r) => {
        const got = Array.from(u.correct[im][k], (v) => v === 1);
        assert.equal(got, c.ultralytics.correct[r], `correct row ${r} (image ${im}, det ${k})`);
      });
      assert.is(u.perClass.length, c.ultralytics.per_class.length);
      u.perClass.forEach((p, i) => {
        const e = c.ultralytics.per_class[i];
        assert.is(p.classId, e.class);
        for (const [a, b, n] of [[p.p, e.P, 'P'], [p.r, e.R, 'R'], [p.ap50, e.AP50, 'AP50'], [p.ap50_95, e.AP50_95, 'AP50_95'], [p.tp, e.tp, 'tp'], [p.fp, e.fp, 'fp']] as [number, number, string][]) {
          close(a, b, `class ${e.class} ${n} (${f32 ? 'f32' : 'f64'} scores)`);
          if (!f32) track('ultralytics', a, b);
        }
      });
      for (const [a, b, n] of [[u.mp, c.ultralytics.mP, 'mP'], [u.mr, c.ultralytics.mR, 'mR'], [u.map50, c.ultralytics.mAP50, 'mAP50'], [u.map50_95, c.ultralytics.mAP50_95, 'mAP50_95']] as [number, number, string][]) {
        close(a, b, `${n} (${f32 ? 'f32' : 'f64'} scores)`);
        if (!f32) track('ultralytics', a, b);
      }
    }
    const { images } = imagesOf(c);
    const s = scoreDetections(images, { protocol: 'ultralytics', numClasses: c.num_classes });
    close(s.map50, c.ultralytics.mAP50, 'evaluate ultralytics map50');
    close(s.precision, c.ultralytics.mP, 'evaluate ultralytics precision');
  });

  test(`golden ${c.name}: VOC 11-point and all-point AP per class and mean`, () => {
    const { images } = imagesOf(c);
    const all = vocEvaluate(images, c.num_classes, { thresholds: [0.5] });
    const p11 = vocEvaluate(images, c.num_classes, { thresholds: [0.5], use07: true });
    c.voc.per_class.forEach((e, k) => {
      assert.is(all.perClass[k].npos, e.npos, `class ${k} npos`);
      assert.is(all.perClass[k].ndet, e.ndet, `class ${k} ndet`);
      if (e.AP50_allpt === null) {
        assert.is(all.perClass[k].ap[0], null);
        assert.is(p11.perClass[k].ap[0], null);
        return;
      }
      close(all.perClass[k].ap[0]!, e.AP50_allpt, `class ${k} AP50_allpt`);
      close(p11.perClass[k].ap[0]!, e.AP50_11pt!, `class ${k} AP50_11pt`);
      track('voc', all.perClass[k].ap[0]!, e.AP50_allpt);
      track('voc', p11.perClass[k].ap[0]!, e.AP50_11pt!);
    });
    close(all.map[0], c.voc.mAP50_allpt, 'mAP50_allpt');
    close(p11.map[0], c.voc.mAP50_11pt, 'mAP50_11pt');
    track('voc', all.map[0], c.voc.mAP50_allpt);
    track('voc', p11.map[0], c.voc.mAP50_11pt);
    close(scoreDetections(images, { protocol: 'voc', numClasses: c.num_classes }).map50, c.voc.mAP50_allpt, 'evaluate voc');
    close(scoreDetections(images, { protocol: 'voc07', numClasses: c.num_classes }).map50, c.voc.mAP50_11pt, 'evaluate voc07');
  });
}

test('golden: worst deviations (printed for docs/evaluation.md)', () => {
  console.log(`  max |err| vs goldens: pycocotools ${worst.coco.toExponential(2)}, ultralytics ${worst.ultralytics.toExponential(2)}, voc ${worst.voc.toExponential(2)}`);
  assert.ok(worst.coco <= TOL && worst.ultralytics <= TOL && worst.voc <= TOL);
});

// ---------------------------------------------------------------- hand-made cases with known answers

const gt = (x1: number, y1: number, x2: number, y2: number, classId = 0): GroundTruth => ({ x1, y1, x2, y2, classId });
const det = (x1: number, y1: number, x2: number, y2: number, score: number, classId = 0): Prediction => ({ x1, y1, x2, y2, score, classId });
const all = (images: EvalImage[], numClasses?: number) => Object.fromEntries((['coco', 'ultralytics', 'voc', 'voc07'] as Protocol[]).map((p) => [p, scoreDetections(images, { protocol: p, numClasses })])) as Record<Protocol, ReturnType<typeof scoreDetections>>;
const near = (a: number, e: number, what: string) => assert.ok(Math.abs(a - e) <= 1e-12, `${what}: ${a} != ${e}`);

test('perfect detections: AP 1 everywhere (Ultralytics 0.995: its interpolation drops the last 0.01 half-step)', () => {
  const images: EvalImage[] = [
    { id: 'a', gts: [gt(10, 10, 60, 80), gt(100, 100, 200, 150, 1)], dets: [det(10, 10, 60, 80, 0.9), det(100, 100, 200, 150, 0.8, 1)] },
    { id: 'b', gts: [gt(5, 5, 25, 45)], dets: [det(5, 5, 25, 45, 0.7)] },
  ];
  const r = all(images);
  for (const p of ['coco', 'voc', 'voc07'] as Protocol[]) {
    near(r[p].map50, 1, `${p} map50`);
    near(r[p].map50_95, 1, `${p} map50_95`);
    near(r[p].precision, 1, `${p} P`);
    near(r[p].recall, 1, `${p} R`);
  }
  near(r.ultralytics.map50, 0.995, 'ultralytics map50');
  near(r.ultralytics.map50_95, 0.995, 'ultralytics map50_95');
  near(r.ultralytics.precision, 1, 'ultralytics P');
  near(r.ultralytics.recall, 1, 'ultralytics R');
  assert.equal(r.coco.perClass.map((c) => [c.classId, c.images, c.instances]), [[0, 2, 2], [1, 1, 1]]);
});

test('one false positive ranked first: AP 0.5 (COCO, VOC), 0.4975 (Ultralytics)', () => {
  const images: EvalImage[] = [{ id: 1, gts: [gt(10, 10, 50, 50)], dets: [det(300, 300, 340, 340, 0.9), det(10, 10, 50, 50, 0.8)] }];
  const r = all(images);
  near(r.coco.map50, 0.5, 'coco');
  near(r.voc.map50, 0.5, 'voc');
  near(r.voc07.map50, 0.5, 'voc07');
  near(r.ultralytics.map50, 0.4975, 'ultralytics: 0.5 plateau + (0.5+0)/2·0.01 at the end');
  // best F1 at the lowest score: P 0.5, R 1
  near(r.coco.precision, 0.5, 'P');
  near(r.coco.recall, 1, 'R');
  near(r.coco.conf, 0.8, 'conf');
});

test('a duplicate detection is a FP ranked after its TP: AP stays 1 (COCO, VOC), P/R read before it', () => {
  const images: EvalImage[] = [{ id: 1, gts: [gt(10, 10, 50, 50), gt(100, 10, 150, 50)], dets: [det(10, 10, 50, 50, 0.9), det(11, 10, 51, 50, 0.85), det(100, 10, 150, 50, 0.6)] }];
  const r = all(images);
  // ranked: TP, FP(duplicate), TP -> precision 1, 0.5, 0.667; recall 0.5, 0.5, 1
  near(r.voc.map50, 0.5 + 0.5 * (2 / 3), 'voc all-point');
  // COCO: envelope [1, 2/3, 2/3] at recall [.5, .5, 1]: 51 points at 1, 50 at 2/3
  near(r.coco.map50, (51 + 50 * (2 / 3)) / 101, 'coco');
  const u = processBatch(images[0].dets, images[0].gts);
  assert.equal(u.map((row) => row[0]), [1, 0, 1], 'ultralytics: the duplicate is not TP');
  // best mean F1: at 0.6 (P 2/3, R 1, F1 0.8) vs at 0.9 (P 1, R .5, F1 .667)
  near(r.voc.conf, 0.6, 'conf');
  near(r.voc.f1, 0.8, 'F1');
});

test('a class with detections but no ground truth is excluded by every protocol', () => {
  const images: EvalImage[] = [
    { id: 1, gts: [gt(10, 10, 50, 50)], dets: [det(10, 10, 50, 50, 0.9), det(200, 200, 260, 260, 0.95, 1), det(10, 10, 50, 50, 0.5, 1)] },
  ];
  const r = all(images, 2);
  for (const p of ['coco', 'voc', 'voc07'] as Protocol[]) near(r[p].map50, 1, p);
  near(r.ultralytics.map50, 0.995, 'ultralytics');
  for (const p of Object.keys(r) as Protocol[]) {
    assert.equal(r[p].perClass.map((c) => c.classId), [0], `${p} rows`);
    assert.equal(r[p].excludedClasses, [1], `${p} excluded`);
  }
  assert.is(cocoEvaluate(images, { numClasses: 2 }).perClass[1], null);
});

test('an image whose objects get no detection: recall 0.5, and the Ultralytics ramp adds area', () => {
  const images: EvalImage[] = [
    { id: 1, gts: [gt(10, 10, 50, 50)], dets: [det(10, 10, 50, 50, 0.9)] },
    { id: 2, gts: [gt(10, 10, 50, 50)], dets: [] },
    { id: 3, gts: [], dets: [] },
  ];
  const r = all(images);
  near(r.coco.map50, 51 / 101, 'coco: recall thresholds 0..0.5 -> 51 of 101');
  near(r.voc.map50, 0.5, 'voc all-point');
  near(r.voc07.map50, 6 / 11, 'voc07: 0, .1, ..., .5');
  near(r.ultralytics.map50, 0.75, 'ultralytics: 0.5 + the ramp from (0.5, 1) to (1, 0)');
  near(r.coco.recall, 0.5, 'R');
  assert.is(r.coco.numImages, 3);
});

test("the designed image: COCO's fallback makes det A a TP at .50-.65, Ultralytics and VOC call it a FP", () => {
  const images: EvalImage[] = [{ id: 1, gts: [gt(100, 100, 200, 200), gt(130, 100, 230, 200)], dets: [det(102, 100, 202, 200, 0.97), det(112, 100, 212, 200, 0.93)] }];
  const c = cocoEvaluate(images, { numClasses: 1 });
  const e = c.evalImgs[0][0]!;
  // sorted dets: C then A; dtMatches per threshold: A matched (GT2) at t = .50, .55, .60, .65 only (IoU 0.6949)
  assert.equal(COCO_IOU_THRS.map((_, t) => e.dtMatches[t * 2 + 1] !== 0), [true, true, true, true, false, false, false, false, false, false]);
  const u = processBatch(images[0].dets, images[0].gts, ULTRALYTICS_IOUV);
  assert.equal(Array.from(u[1]), new Array(10).fill(0), 'ultralytics: A loses GT1 to C, no fallback');
  assert.equal(Array.from(u[0]), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 'C: IoU 0.9608');
  const v = vocEvaluate(images, 1, { thresholds: [0.5] });
  assert.equal(Array.from(v.perClass[0].flags), [1, 0]);
  const r = all(images);
  near(r.coco.map50, 1, 'coco: both TP');
  near(r.voc.map50, 0.5, 'voc');
  near(r.voc07.map50, 6 / 11, 'voc07');
  near(r.ultralytics.map50, 0.6225, 'ultralytics: 0.49 + 0.0075 + ramp 0.125');
});

test('crowd ground truth (COCO): matched detections ignored, unmatched crowd not counted', () => {
  const crowd: GroundTruth = { ...gt(0, 0, 100, 100), crowd: true };
  const images: EvalImage[] = [{ id: 1, gts: [gt(200, 200, 250, 250), crowd], dets: [det(200, 200, 250, 250, 0.9), det(10, 10, 40, 40, 0.8), det(50, 50, 90, 90, 0.7)] }];
  const c = cocoEvaluate(images, { numClasses: 1 });
  // the two detections inside the crowd region (IoU = inter/det area = 1) are ignored: AP 1
  near(c.stats[1], 1, 'AP50');
  const d = { ...images[0], gts: [gt(200, 200, 250, 250), { ...gt(0, 0, 100, 100), difficult: true }] };
  const v = vocEvaluate([d], 1, { thresholds: [0.5] });
  assert.is(v.perClass[0].npos, 1, 'difficult not counted');
});

test('no detections at all and no ground truth at all', () => {
  const none: EvalImage[] = [{ id: 1, gts: [gt(0, 0, 10, 10)], dets: [] }];
  for (const p of ['coco', 'ultralytics', 'voc', 'voc07'] as Protocol[]) {
    const s = scoreDetections(none, { protocol: p });
    near(s.map50, 0, `${p} map50`);
    assert.is(s.perClass.length, 1);
    near(s.perClass[0].recall, 0, `${p} R`);
  }
  const empty: EvalImage[] = [{ id: 1, gts: [], dets: [det(0, 0, 10, 10, 0.5)] }];
  for (const p of ['coco', 'ultralytics', 'voc', 'voc07'] as Protocol[]) {
    const s = scoreDetections(empty, { protocol: p });
    near(s.map50, 0, `${p} map50 without GT`);
    assert.is(s.perClass.length, 0);
  }
});

test('table and JSON name the protocol and carry per-class numbers', () => {
  const { images } = imagesOf(golden.cases[0]);
  const s = scoreDetections(images, { protocol: 'coco', names: ['cat', 'dog', 'bird'] });
  const t = formatTable(s);
  assert.match(t[0], /Class\s+Images\s+Instances\s+P\s+R\s+mAP50\s+mAP50-95/);
  assert.match(t[1], /^\s+all\s+20\s+75\s/);
  assert.match(t[2], /cat/);
  const j = summaryJson(s) as { protocol: string; map50: number; per_class: { map50: number; name: string }[] };
  assert.is(j.protocol, 'coco');
  near(j.map50, golden.cases[0].pycocotools.stats[1], 'json map50');
  assert.is(j.per_class[1].name, 'dog');
  assert.is(fmtG(0.75), '0.75');
  assert.is(fmtG(0.6265093), '0.627');
  assert.is(fmtG(0), '0');
  assert.is(fmtG(0.99996), '1');
});

test('numpy helpers: linspace, arange, interp ties, trapz', () => {
  assert.is(linspace(0.5, 0.95, 10)[8], 0.8999999999999999);
  assert.is(arange(0, 1.1, 0.1)[3], 0.30000000000000004);
  assert.is(arange(0, 1.1, 0.1).length, 11);
  // ties in xp: the last of the equal points
  assert.equal(Array.from(interp([0.5, 1], [0, 0.5, 0.5, 1, 1], [1, 0.9, 0.4, 0.3, 0])), [0.4, 0]);
  near(trapz([0, 1, 2], [0, 1, 2]), 2, 'trapz');
});

test.run();
