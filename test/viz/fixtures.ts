/**
 * Fixed data for the plot tests and the contact sheet (scripts/plots-sheet.ts): a training history and
 * iteration log, evaluation results scored from fixed detections, dataset labels and small images. All
 * from a seeded generator, so every run draws the same pictures.
 */
import { ConfusionMatrix } from '../../src/eval/confusion.js';
import { scoreDetections, type EvalSummary } from '../../src/eval/metrics.js';
import type { EvalImage, GroundTruth, Prediction, Protocol } from '../../src/eval/types.js';
import type { IterationPoint } from '../../src/train/plots.js';
import type { EpochSummary } from '../../src/train/types.js';
import { makeRgba, type RgbaImage } from '../../src/viz/draw.js';
import type { MosaicTile, NormBox } from '../../src/viz/labels.js';

export const NAMES = ['person', 'bicycle', 'car', 'dog', 'traffic light'];

/** Mulberry32. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 30 epochs of 20 iterations: decaying losses with noise, a cosine learning rate, metrics from epoch 2 on. */
export function trainingRun(epochs = 30, perEpoch = 20): { history: EpochSummary[]; iterations: IterationPoint[] } {
  const r = rng(7);
  const history: EpochSummary[] = [];
  const iterations: IterationPoint[] = [];
  for (let e = 0; e < epochs; e++) {
    const t = e / (epochs - 1);
    const lr = 0.01 * (0.5 * (1 + Math.cos(Math.PI * t)) * 0.99 + 0.01);
    let sum = 0;
    for (let k = 0; k < perEpoch; k++) {
      const it = e * perEpoch + k + 1;
      const loss = 6 * Math.exp(-it / 180) + 1.2 + 0.6 * (r() - 0.5) + (it < 15 ? 8 * (1 - it / 15) : 0);
      iterations.push({ iteration: it, loss, lr });
      sum += loss;
    }
    const box = 0.1 * Math.exp(-e / 10) + 0.03 + 0.004 * r();
    const obj = 0.05 * Math.exp(-e / 14) + 0.02 + 0.003 * r();
    const cls = 0.03 * Math.exp(-e / 6) + 0.005 + 0.002 * r();
    const h: EpochSummary = { epoch: e, iteration: (e + 1) * perEpoch, loss: sum / perEpoch, lossItems: { box, obj, cls }, lr, seconds: 41 + 3 * r() };
    if (e >= 2) {
      const g = 1 - Math.exp(-(e - 1) / 8);
      const map50 = 0.72 * g + 0.02 * (r() - 0.5);
      h.metrics = { precision: 0.3 + 0.5 * g + 0.03 * (r() - 0.5), recall: 0.2 + 0.55 * g + 0.03 * (r() - 0.5), map50, map50_95: 0.62 * map50 };
    }
    history.push(h);
  }
  return { history, iterations };
}

/** 40 images of 320 x 240 with 1-6 objects of the 5 classes and detections: most found, some shifted, some confused, some missed, false positives. */
export function evalImages(): EvalImage[] {
  const r = rng(11);
  const images: EvalImage[] = [];
  for (let i = 0; i < 40; i++) {
    const gts: GroundTruth[] = [];
    const dets: Prediction[] = [];
    const n = 1 + Math.floor(r() * 6);
    for (let k = 0; k < n; k++) {
      const classId = Math.min(4, Math.floor(r() * r() * 6));
      const w = 20 + r() * 120;
      const h = 20 + r() * 100;
      const x1 = r() * (320 - w);
      const y1 = r() * (240 - h);
      gts.push({ x1, y1, x2: x1 + w, y2: y1 + h, classId });
      const u = r();
      if (u < 0.12) continue; // missed
      const j = u < 0.6 ? 0.03 : 0.18;
      const dx = (r() - 0.5) * j * w;
      const dy = (r() - 0.5) * j * h;
      const confused = r() < 0.1;
      dets.push({ x1: x1 + dx, y1: y1 + dy, x2: x1 + w + dx, y2: y1 + h + dy, classId: confused ? (classId + 1) % 5 : classId, score: 0.2 + 0.79 * r() * (u < 0.6 ? 1 : 0.7) });
    }
    const fp = Math.floor(r() * 3);
    for (let k = 0; k < fp; k++) {
      const x1 = r() * 280;
      const y1 = r() * 200;
      dets.push({ x1, y1, x2: x1 + 30 + r() * 60, y2: y1 + 30 + r() * 40, classId: Math.floor(r() * 5), score: 0.05 + 0.5 * r() });
    }
    images.push({ id: `img_${String(i).padStart(3, '0')}`, width: 320, height: 240, gts, dets });
  }
  return images;
}

export function evalSummary(protocol: Protocol = 'ultralytics'): { summary: EvalSummary; confusion: ConfusionMatrix; images: EvalImage[] } {
  const images = evalImages();
  return { summary: scoreDetections(images, { protocol, names: NAMES }), confusion: new ConfusionMatrix(NAMES.length).processImages(images), images };
}

/** The ground truth of evalImages, normalised. */
export function labelBoxes(): NormBox[] {
  return evalImages().flatMap((im) => im.gts.map((g) => ({ classId: g.classId, cx: (g.x1 + g.x2) / 2 / 320, cy: (g.y1 + g.y2) / 2 / 240, w: (g.x2 - g.x1) / 320, h: (g.y2 - g.y1) / 240 })));
}

/** A 320 x 240 picture: a sky-to-grass gradient with the ground-truth boxes as filled shapes. */
export function picture(im: EvalImage): RgbaImage {
  const img = makeRgba(im.width ?? 320, im.height ?? 240);
  const W = img.width;
  const H = img.height;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      const t = y / H;
      img.data[o] = t < 0.6 ? 150 + 80 * t : 70;
      img.data[o + 1] = t < 0.6 ? 190 + 40 * t : 130 + 20 * Math.sin(x / 9);
      img.data[o + 2] = t < 0.6 ? 240 : 60;
    }
  }
  for (const g of im.gts) {
    const c = [[200, 60, 60], [60, 60, 200], [230, 200, 40], [140, 90, 40], [40, 40, 40]][g.classId];
    for (let y = Math.max(0, Math.round(g.y1 + 3)); y < Math.min(H, Math.round(g.y2 - 3)); y++) {
      for (let x = Math.max(0, Math.round(g.x1 + 3)); x < Math.min(W, Math.round(g.x2 - 3)); x++) {
        const o = (y * W + x) * 4;
        img.data[o] = c[0];
        img.data[o + 1] = c[1];
        img.data[o + 2] = c[2];
      }
    }
  }
  return img;
}

/** The first 16 images as mosaic tiles: the labels, and the detections. */
export function mosaicTiles(): { labels: MosaicTile[]; preds: MosaicTile[] } {
  const ims = evalImages().slice(0, 16);
  const pics = ims.map(picture);
  return {
    labels: ims.map((im, i) => ({ file: `images/val/${im.id}.png`, image: pics[i], boxes: im.gts })),
    preds: ims.map((im, i) => ({ file: `images/val/${im.id}.png`, image: pics[i], boxes: im.dets })),
  };
}
