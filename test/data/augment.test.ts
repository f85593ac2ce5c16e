import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/util/paths.js';
import { Rng } from '../../src/util/rng.js';
import { makeImage, type Image } from '../../src/data/image.js';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import {
  applyHsv,
  augmentConfigFromNetwork,
  augmentSample,
  DEFAULT_AUGMENT,
  drawMosaicParams,
  drawParams,
  IDENTITY_PARAMS,
  mixSeed,
  mosaicSample,
  plainSample,
  sizeSchedule,
  sizeScheduleFromNetwork,
  transformTruths,
  type AugmentConfig,
  type AugmentParams,
  type Target,
  type Truth,
} from '../../src/data/augment.js';

const close = (a: number, b: number, eps = 1e-6) => Math.abs(a - b) <= eps;

/** An Rng that returns the given values from next() (then 0.5). */
class FixedRng extends Rng {
  private i = 0;
  constructor(private readonly values: number[]) {
    super(1);
  }
  override next(): number {
    return this.i < this.values.length ? this.values[this.i++] : 0.5;
  }
}

type RGB = [number, number, number];

/** A W x H image of colour bg with rectangles [x1, x2) x [y1, y2) of other colours. */
function rectImage(W: number, H: number, bg: RGB, rects: { x1: number; y1: number; x2: number; y2: number; color: RGB }[]): Image {
  const im = makeImage(W, H, 3);
  const n = W * H;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let c = bg;
    for (const r of rects) if (x >= r.x1 && x < r.x2 && y >= r.y1 && y < r.y2) c = r.color;
    for (let k = 0; k < 3; k++) im.data[k * n + y * W + x] = c[k];
  }
  return im;
}

function target(W: number, H: number): Target {
  return { data: new Float32Array(3 * W * H), offset: 0, width: W, height: H };
}

/**
 * Bounding box [x1, x2) x [y1, y2) of the pixels at least half of the way from colour bg to colour fg
 * (projection onto the segment; null when none). `offLine` receives the largest distance of a pixel from
 * the bg-fg line (pixels of other colours).
 */
function fgExtent(t: Target, bg: RGB, fg: RGB, region = { x1: 0, y1: 0, x2: t.width, y2: t.height }, offLine?: { max: number }) {
  const n = t.width * t.height;
  const d = [fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]];
  const dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity, count = 0;
  for (let y = region.y1; y < region.y2; y++) for (let x = region.x1; x < region.x2; x++) {
    const i = t.offset + y * t.width + x;
    const v = [t.data[i] - bg[0], t.data[i + n] - bg[1], t.data[i + 2 * n] - bg[2]];
    const a = (v[0] * d[0] + v[1] * d[1] + v[2] * d[2]) / dd;
    if (offLine) offLine.max = Math.max(offLine.max, Math.hypot(v[0] - a * d[0], v[1] - a * d[1], v[2] - a * d[2]));
    if (a >= 0.5) {
      count++;
      x1 = Math.min(x1, x); x2 = Math.max(x2, x + 1); y1 = Math.min(y1, y); y2 = Math.max(y2, y + 1);
    }
  }
  return count ? { x1, y1, x2, y2, count } : null;
}

function truthPixels(t: Truth, W: number, H: number) {
  return { x1: (t.x - t.w / 2) * W, x2: (t.x + t.w / 2) * W, y1: (t.y - t.h / 2) * H, y2: (t.y + t.h / 2) * H };
}

const NO_COLOUR: Partial<AugmentConfig> = { hue: 0, saturation: 1, exposure: 1 };

test('drawParams: Darknet jitter / resize / letter_box arithmetic from given random numbers', () => {
  const cfg: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.3, hue: 0.1, saturation: 1.5, exposure: 1.5 };
  // order: resize_r1, resize_r2, r1..r4, flip, dhue, (dsat: u, pick), (dexp: u, pick)
  let p = drawParams(new FixedRng([0.5, 0.5, 0.9, 0.1, 0.25, 0.75, 0.2, 1, 0.5, 0.2, 0, 0.9]), cfg, 100, 50, 64, 64);
  // dw = trunc(100*.3) = 30: pleft = trunc(.9*60 - 30) = 24, pright = trunc(.1*60 - 30) = trunc(-24) = -24
  // dh = 15: ptop = trunc(.25*30 - 15) = trunc(-7.5) = -7, pbot = trunc(.75*30 - 15) = 7
  assert.equal([p.pleft, p.pright, p.ptop, p.pbot], [24, -24, -7, 7]);
  assert.is(p.flip, true); // 0.2 < 0.5
  assert.ok(close(p.dhue, 0.1)); // 1*(0.2) - 0.1
  assert.ok(close(p.dsat, 1.25)); // u = 1 + .5*.5, pick .2 < .5 -> u
  assert.ok(close(p.dexp, 1 / 1)); // u = 1 + 0*.5 = 1, pick .9 -> 1/u
  // resize = 1.5: min_rdw = trunc(100*(1-1.5)/2) = -25, max_rdw = trunc(100*(1-1/1.5)/2) = 16;
  // resize_r1 = 0.5 -> -25 + .5*41 = -4.5; resize_r2 = 1 -> 16
  p = drawParams(new FixedRng([0.5, 1, 0.5, 0.5, 0.5, 0.5, 0.9]), { ...cfg, resize: 1.5 }, 100, 50, 64, 64);
  // pleft = trunc(0 + -4.5) = -4, pright = trunc(0 + 16) = 16; min_rdh = trunc(50*-.5/2) = -12, max_rdh = 8
  // ptop = trunc(0 + (-12 + .5*20)) = -2, pbot = trunc(0 + 8) = 8
  assert.equal([p.pleft, p.pright, p.ptop, p.pbot], [-4, 16, -2, 8]);
  // letter_box: a 200x100 image for a square input gets (200/1 - 100)/2 = 50 rows of padding top and bottom
  p = drawParams(new FixedRng([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), { ...cfg, jitter: 0, letterBox: true }, 200, 100, 128, 128);
  assert.equal([p.pleft, p.pright, p.ptop, p.pbot], [0, 0, -50, -50]);
  // no flip when flip=0, whatever the draw
  p = drawParams(new FixedRng([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]), { ...cfg, flip: false }, 100, 100, 64, 64);
  assert.is(p.flip, false);
});

test('transformTruths: crop/stretch/flip vs hand-computed values; clipping and the tiny-box filter', () => {
  const p: AugmentParams = { ...IDENTITY_PARAMS, pleft: 10, pright: -20, ptop: 5, pbot: 0 };
  // 100x50 image, box x 40..60, y 15..35 px; swidth = 110, sheight = 45
  const t: Truth = { cls: 2, x: 0.5, y: 0.5, w: 0.2, h: 0.4 };
  const [a] = transformTruths([t], p, 100, 50, 64, 32);
  const l = 30 / 110, r = 50 / 110, tp = 10 / 45, bt = 30 / 45;
  assert.is(a.cls, 2);
  assert.ok(close(a.x, (l + r) / 2) && close(a.w, r - l) && close(a.y, (tp + bt) / 2) && close(a.h, bt - tp), JSON.stringify(a));
  const [f] = transformTruths([t], { ...p, flip: true }, 100, 50, 64, 32);
  assert.ok(close(f.x, 1 - (l + r) / 2) && close(f.w, r - l) && close(f.y, a.y));
  // a box cut by the crop: x 0..20 px -> (0-10)/110 .. 10/110, clipped at 0
  const [c] = transformTruths([{ cls: 0, x: 0.1, y: 0.5, w: 0.2, h: 0.4 }], p, 100, 50, 64, 32);
  assert.ok(close(c.x - c.w / 2, 0) && close(c.x + c.w / 2, 10 / 110), JSON.stringify(c));
  // mostly cut away (< 10% of its area left) -> dropped; under 2 network pixels -> dropped
  assert.equal(transformTruths([{ cls: 0, x: 0.1, y: 0.5, w: 0.2, h: 0.4 }], { ...p, pleft: 19, pright: 0 }, 100, 50, 64, 32), []);
  assert.equal(transformTruths([{ cls: 0, x: 0.5, y: 0.5, w: 0.02, h: 0.4 }], IDENTITY_PARAMS, 100, 50, 64, 32), []); // 1.28 px
  assert.is(transformTruths([{ cls: 0, x: 0.5, y: 0.5, w: 0.04, h: 0.4 }], IDENTITY_PARAMS, 100, 50, 64, 32).length, 1); // 2.56 px
  // entirely outside the crop -> dropped
  assert.equal(transformTruths([{ cls: 0, x: 0.05, y: 0.5, w: 0.1, h: 0.4 }], { ...p, pleft: 30 }, 100, 50, 64, 32), []);
  // maxBoxes
  const many = Array.from({ length: 5 }, (_, i) => ({ cls: i % 3, x: 0.1 + 0.2 * i, y: 0.5, w: 0.1, h: 0.1 }));
  assert.is(transformTruths(many, IDENTITY_PARAMS, 100, 100, 64, 64, { ...DEFAULT_AUGMENT, maxBoxes: 3 }).length, 3);
});

test('augmentSample: the identity reproduces the image; crop pixels follow the cv::resize mapping; mean-colour fill', () => {
  const W = 40, H = 30;
  const rng = new Rng(3);
  const im = makeImage(W, H, 3);
  for (let i = 0; i < im.data.length; i++) im.data[i] = rng.next();
  const t = target(W, H);
  augmentSample({ image: im, truths: [] }, rng, DEFAULT_AUGMENT, W, H, t, IDENTITY_PARAMS);
  for (let i = 0; i < im.data.length; i++) assert.ok(close(t.data[i], im.data[i], 1e-6));
  // flip mirrors
  augmentSample({ image: im, truths: [] }, rng, DEFAULT_AUGMENT, W, H, t, { ...IDENTITY_PARAMS, flip: true });
  for (let k = 0; k < 3; k++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) assert.ok(close(t.data[k * W * H + y * W + x], im.data[k * W * H + y * W + (W - 1 - x)], 1e-6));
  // a 2x upscale of the crop x 10..29, y 5..19 (pleft 10, pright 10, ptop 5, pbot 10) into 40x30:
  // output column X samples crop u = (X + .5)/2 - .5 (clamped), i.e. source 10 + u
  const p: AugmentParams = { ...IDENTITY_PARAMS, pleft: 10, pright: 10, ptop: 5, pbot: 10 };
  augmentSample({ image: im, truths: [] }, rng, DEFAULT_AUGMENT, W, H, t, p);
  const at = (k: number, x: number, y: number) => im.data[k * W * H + y * W + x];
  for (const [X, Y] of [[0, 0], [7, 3], [39, 29], [20, 15], [13, 28]]) {
    const u = Math.min(19, Math.max(0, (X + 0.5) / 2 - 0.5)), v = Math.min(14, Math.max(0, (Y + 0.5) / 2 - 0.5));
    const x0 = Math.floor(u), y0 = Math.floor(v), x1 = Math.min(x0 + 1, 19), y1 = Math.min(y0 + 1, 14);
    const fx = u - x0, fy = v - y0;
    for (let k = 0; k < 3; k++) {
      const top = at(k, 10 + x0, 5 + y0) * (1 - fx) + at(k, 10 + x1, 5 + y0) * fx;
      const bot = at(k, 10 + x0, 5 + y1) * (1 - fx) + at(k, 10 + x1, 5 + y1) * fx;
      assert.ok(close(t.data[k * W * H + Y * W + X], top * (1 - fy) + bot * fy, 1e-5), `(${X}, ${Y})`);
    }
  }
  // a crop reaching outside the image reads the image mean there
  const flat = rectImage(W, H, [0.2, 0.4, 0.6], [{ x1: 0, y1: 0, x2: 20, y2: 30, color: [0.6, 0.4, 0.2] }]);
  augmentSample({ image: flat, truths: [] }, rng, DEFAULT_AUGMENT, W, H, t, { ...IDENTITY_PARAMS, pleft: -40, pright: 0 });
  // output columns 0..19 come from x < 0: the mean (0.4, 0.4, 0.4)
  for (let k = 0; k < 3; k++) assert.ok(close(t.data[k * W * H + 10 * W + 5], 0.4, 1e-6));
});

test('augmentSample: boxes follow the pixels (random jitter / resize / flip, many seeds)', () => {
  const red: RGB = [1, 0, 0];
  const im = rectImage(120, 80, [0.3, 0.5, 0.3], [{ x1: 30, y1: 20, x2: 50, y2: 45, color: red }]);
  const truth: Truth = { cls: 1, x: 40 / 120, y: 32.5 / 80, w: 20 / 120, h: 25 / 80 };
  const cfg: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.3, resize: 1.5, ...NO_COLOUR };
  let kept = 0, flips = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const [W, H] = seed % 2 ? [96, 64] : [64, 64];
    const t = target(W, H);
    const rng = new Rng(seed);
    const p = drawParams(new Rng(seed), cfg, 120, 80, W, H);
    const out = augmentSample({ image: im, truths: [truth] }, rng, cfg, W, H, t);
    if (p.flip) flips++;
    // pixels at least half red (bilinear edges) vs the box
    const ext = fgExtent(t, [0.3, 0.5, 0.3], red);
    if (out.length === 0) {
      // dropped: what remains of the rectangle is tiny or mostly cut away
      assert.ok(!ext || ext.x2 - ext.x1 <= 3 || ext.y2 - ext.y1 <= 3 || ext.count < 0.15 * (20 * 25 * W * H) / (120 * 80), `seed ${seed}: dropped a visible box ${JSON.stringify(ext)}`);
      continue;
    }
    kept++;
    assert.ok(ext, `seed ${seed}: box but no red pixels`);
    const b = truthPixels(out[0], W, H);
    for (const [a, c] of [[b.x1, ext!.x1], [b.x2, ext!.x2], [b.y1, ext!.y1], [b.y2, ext!.y2]]) assert.ok(Math.abs(a - c) <= 1, `seed ${seed}: box ${JSON.stringify(b)} vs red ${JSON.stringify(ext)}`);
  }
  assert.ok(kept > 40 && flips > 10 && flips < 50, `kept ${kept}, flips ${flips}`);
});

test('plainSample: stretch keeps normalised boxes; letterbox maps them as Darknet (hand-computed)', () => {
  const im = rectImage(100, 50, [0.5, 0.5, 0.5], [{ x1: 20, y1: 10, x2: 60, y2: 30, color: [0, 0, 1] }]);
  const truth: Truth = { cls: 0, x: 0.4, y: 0.4, w: 0.4, h: 0.4 };
  const t = target(64, 64);
  const [s] = plainSample({ image: im, truths: [truth] }, 64, 64, false, t);
  assert.ok(close(s.x, 0.4) && close(s.y, 0.4) && close(s.w, 0.4) && close(s.h, 0.4));
  // letterbox: new size 64x32 at dy = 16: y' = 0.4*0.5 + 0.25 = 0.45, h' = 0.2
  const [l] = plainSample({ image: im, truths: [truth] }, 64, 64, true, t);
  assert.ok(close(l.x, 0.4) && close(l.w, 0.4) && close(l.y, 0.45) && close(l.h, 0.2), JSON.stringify(l));
  // the grey band above the image, the blue rectangle where the box says
  assert.ok(close(t.data[5 * 64 + 30], 0.5));
  const ext = fgExtent(t, [0.5, 0.5, 0.5], [0, 0, 1])!;
  const b = truthPixels(l, 64, 64);
  for (const [a, c] of [[b.x1, ext.x1], [b.x2, ext.x2], [b.y1, ext.y1], [b.y2, ext.y2]]) assert.ok(Math.abs(a - c) <= 1.5, `${JSON.stringify(b)} vs ${JSON.stringify(ext)}`);
});

test('HSV: identity is a no-op; hue/saturation/exposure exact on known colours; always within [0, 1]', () => {
  const W = 16, H = 8;
  const rng = new Rng(11);
  const base = new Float32Array(3 * W * H).map(() => rng.next());
  const t: Target = { data: base.slice(), offset: 0, width: W, height: H };
  applyHsv(t, 0, 0, W, H, 0, 1, 1);
  assert.equal(Array.from(t.data), Array.from(base));
  const one = (rgb: RGB, dh: number, ds: number, dv: number): number[] => {
    const u: Target = { data: Float32Array.from(rgb), offset: 0, width: 1, height: 1 };
    applyHsv(u, 0, 0, 1, 1, dh, ds, dv);
    return Array.from(u.data);
  };
  const near = (a: number[], b: number[]) => a.every((v, i) => close(v, b[i], 1e-6));
  assert.ok(near(one([1, 0, 0], 1 / 3, 1, 1), [0, 1, 0]), 'red + 1/3 = green');
  assert.ok(near(one([1, 0, 0], -1 / 3, 1, 1), [0, 0, 1]), 'red - 1/3 wraps to blue');
  assert.ok(near(one([0.8, 0.4, 0.4], 0, 0, 1), [0.8, 0.8, 0.8]), 'no saturation: grey at v');
  assert.ok(near(one([0.4, 0.2, 0.2], 0, 1, 2), [0.8, 0.4, 0.4]), 'exposure scales v');
  assert.ok(near(one([0.8, 0.4, 0.4], 0, 1, 2), [1, 0.5, 0.5]), 'v clamped at 1 (hue and saturation kept)');
  assert.ok(near(one([0.8, 0.6, 0.6], 0, 5, 1), [0.8, 0, 0]), 's clamped at 1');
  // extreme random changes stay in [0, 1]
  for (let i = 0; i < 20; i++) {
    const u: Target = { data: base.slice(), offset: 0, width: W, height: H };
    applyHsv(u, 0, 0, W, H, rng.uniform(-1, 1), rng.uniform(0, 5), rng.uniform(0, 5));
    for (const v of u.data) assert.ok(v >= 0 && v <= 1 && Number.isFinite(v), `${v}`);
  }
  // through augmentSample with the cfg's draws: every value in [0, 1]
  const im = makeImage(50, 40, 3);
  im.data.set(new Float32Array(im.data.length).map(() => rng.next()));
  const cfg: AugmentConfig = { ...DEFAULT_AUGMENT, hue: 0.5, saturation: 4, exposure: 4, jitter: 0.3 };
  for (let s = 0; s < 10; s++) {
    const o = target(32, 32);
    augmentSample({ image: im, truths: [] }, new Rng(s + 1), cfg, 32, 32, o);
    for (const v of o.data) assert.ok(v >= 0 && v <= 1, `${v}`);
  }
});

test('mosaic: four images in the four quadrants at the cut, each box inside its quadrant over its colour', () => {
  const bgs: RGB[] = [[0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]];
  const fgs: RGB[] = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]];
  const samples = [0, 1, 2, 3].map((q) => {
    const W = 80 + 20 * q, H = 60 + 10 * q;
    const r = { x1: Math.round(W * 0.3), y1: Math.round(H * 0.3), x2: Math.round(W * 0.7), y2: Math.round(H * 0.7) };
    return {
      image: rectImage(W, H, bgs[q], [{ ...r, color: fgs[q] }]),
      truths: [{ cls: q, x: (r.x1 + r.x2) / 2 / W, y: (r.y1 + r.y2) / 2 / H, w: (r.x2 - r.x1) / W, h: (r.y2 - r.y1) / H }],
    };
  });
  const cfg: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.2, mosaic: true, ...NO_COLOUR };
  const N = 96;
  let boxes = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const t = target(N, N);
    const rng = new Rng(seed);
    const out = mosaicSample(samples, rng, cfg, N, N, t);
    // the same draws again: the cut, and each image's crop
    const mp = drawMosaicParams(new Rng(seed), cfg, samples.map((s) => s.image), N, N);
    const { cutX, cutY } = mp;
    assert.ok(cutX >= 19 && cutX <= 76 && cutY >= 19 && cutY <= 76);
    const quads = [
      { x1: 0, y1: 0, x2: cutX, y2: cutY },
      { x1: cutX, y1: 0, x2: N, y2: cutY },
      { x1: 0, y1: cutY, x2: cutX, y2: N },
      { x1: cutX, y1: cutY, x2: N, y2: N },
    ];
    // every pixel of quadrant q is a blend of image q's two colours (its mean fill too): nothing of another image
    quads.forEach((qr, q) => {
      const off = { max: 0 };
      fgExtent(t, bgs[q], fgs[q], qr, off);
      assert.ok(off.max < 1e-5, `seed ${seed}: quadrant ${q} has pixels off its image's colours (${off.max})`);
    });
    for (const b of out) {
      boxes++;
      const q = b.cls;
      const px = truthPixels(b, N, N);
      const qr = quads[q];
      assert.ok(px.x1 >= qr.x1 - 1e-9 && px.x2 <= qr.x2 + 1e-9 && px.y1 >= qr.y1 - 1e-9 && px.y2 <= qr.y2 + 1e-9, `seed ${seed}: box ${q} ${JSON.stringify(px)} outside its quadrant ${JSON.stringify(qr)}`);
      const ext = fgExtent(t, bgs[q], fgs[q], qr)!;
      assert.ok(ext, `seed ${seed}: box ${q} without its colour`);
      for (const [a, c] of [[px.x1, ext.x1], [px.x2, ext.x2], [px.y1, ext.y1], [px.y2, ext.y2]]) assert.ok(Math.abs(a - c) <= 1, `seed ${seed}: box ${q} ${JSON.stringify(px)} vs colour ${JSON.stringify(ext)}`);
    }
    // a quadrant showing enough of its rectangle (>= 15% of its area after the crop/stretch) has its box
    quads.forEach((qr, q) => {
      const ext = fgExtent(t, bgs[q], fgs[q], qr);
      const p = mp.parts[q];
      const im = samples[q].image;
      const tr = samples[q].truths[0];
      const area0 = ((tr.w * im.width * N) / (im.width - p.pleft - p.pright)) * ((tr.h * im.height * N) / (im.height - p.ptop - p.pbot));
      if (ext && ext.x2 - ext.x1 >= 4 && ext.y2 - ext.y1 >= 4 && ext.count > 0.15 * area0) {
        assert.ok(out.some((b) => b.cls === q), `seed ${seed}: quadrant ${q} shows its rectangle (${JSON.stringify(ext)}) but has no box`);
      }
    });
  }
  assert.ok(boxes > 40, `${boxes} boxes in 25 mosaics`);
});

test('sizeSchedule: Darknet multi-scale sizes, deterministic from the seed, constant per 10 batches', () => {
  const f = sizeSchedule({ seed: 5, width: 128, height: 128, random: 1, maxBatches: 2000 });
  const g = sizeSchedule({ seed: 5, width: 128, height: 128, random: 1, maxBatches: 2000 });
  const h = sizeSchedule({ seed: 6, width: 128, height: 128, random: 1, maxBatches: 2000 });
  const seen = new Set<number>();
  let differs = false;
  // first period and the last 100 batches at the largest size round(1.4*128/32 + 1)*32 = 224
  assert.equal(f(0), { width: 224, height: 224 });
  assert.equal(f(9), { width: 224, height: 224 });
  assert.equal(f(1950), { width: 224, height: 224 });
  for (let b = 10; b < 1900; b++) {
    const s = f(b);
    assert.equal(s, g(b));
    assert.is(s.width, s.height);
    assert.equal(s, f(b - (b % 10)), 'constant within a period');
    seen.add(s.width);
    if (h(b).width !== s.width) differs = true;
  }
  // random_val in [1/1.4, 1.4]: < 1 gives round(4r + 1) in {4, 5} -> back to 128 when grown; >= 1 gives 5..7
  assert.equal([...seen].sort((a, b) => a - b), [128, 160, 192, 224]);
  assert.ok(differs, 'another seed gives another schedule');
  assert.equal(sizeSchedule({ seed: 1, width: 128, height: 96, random: 0 })(123), { width: 128, height: 96 });
  // random = 1.2 (a coefficient), 416x416, resize_step 32: sizes within [round(416/1.2/32 + 1)*32 ..., round(1.2*416/32+1)*32]
  const k = sizeSchedule({ seed: 2, width: 416, height: 416, random: 1.2, maxAtEnds: false });
  for (let b = 0; b < 500; b += 10) {
    const s = k(b).width;
    assert.ok(s % 32 === 0 && s >= 352 && s <= 544, `${s}`);
  }
  assert.ok(mixSeed(1, 2, 3) !== mixSeed(1, 2, 4) && mixSeed(1, 2, 3) === mixSeed(1, 2, 3));
});

test('augmentConfigFromNetwork: yolo-mini ([net] hue/saturation/exposure, [yolo] jitter); mosaic=1 and random=1 cfgs', () => {
  const net = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'));
  const c = augmentConfigFromNetwork(net);
  assert.equal([c.jitter, c.hue, c.saturation, c.exposure, c.flip, c.mosaic, c.letterBox, c.resize], [0.3, 0.1, 1.5, 1.5, true, false, false, 1]);
  assert.equal(sizeScheduleFromNetwork(net, 1)(55), { width: 128, height: 128 }); // random=0
  const text = fs
    .readFileSync(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), 'utf8')
    .replace('hue=.1', 'hue=.1\nmosaic=1\nflip=0\nletter_box=1\nresize_step=64')
    .replace(/random=0/g, 'random=1\nresize=1.5');
  const v4 = Network.build(parseCfg(text, 'v4-style.cfg'));
  const d = augmentConfigFromNetwork(v4, { mosaicProb: 1 });
  assert.equal([d.mosaic, d.flip, d.letterBox, d.resize, d.mosaicProb], [true, false, true, 1.5, 1]);
  const sizes = new Set<number>();
  const sched = sizeScheduleFromNetwork(v4, 3);
  for (let b = 0; b < 1000; b += 10) sizes.add(sched(b).width);
  for (const s of sizes) assert.ok(s % 64 === 0, `${s}`);
  assert.ok(sizes.size > 1);
});

test('augment speed (reported): 416x416 from a 640x480 image, and a mosaic', () => {
  const rng = new Rng(1);
  const im = makeImage(640, 480, 3);
  for (let i = 0; i < im.data.length; i++) im.data[i] = rng.next();
  const cfg: AugmentConfig = { ...DEFAULT_AUGMENT, jitter: 0.3, hue: 0.1, saturation: 1.5, exposure: 1.5 };
  const t = target(416, 416);
  const truths = [{ cls: 0, x: 0.5, y: 0.5, w: 0.3, h: 0.3 }];
  let t0 = performance.now();
  for (let i = 0; i < 5; i++) augmentSample({ image: im, truths }, rng, cfg, 416, 416, t);
  const single = (performance.now() - t0) / 5;
  t0 = performance.now();
  for (let i = 0; i < 5; i++) mosaicSample([0, 1, 2, 3].map(() => ({ image: im, truths })), rng, cfg, 416, 416, t);
  const mosaic = (performance.now() - t0) / 5;
  console.log(`  augment: ${single.toFixed(1)} ms per 416x416 image, ${mosaic.toFixed(1)} ms per mosaic (HSV on)`);
  assert.ok(single < 1000 && mosaic < 2000);
});

test.run();
