import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import jpeg from 'jpeg-js';
import { assertClose } from '../helpers/check.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng } from '../../src/util/rng.js';
import {
  boxToImage, boxToNet, boxToPixels, decodeImage, decodeJpeg, letterboxImage, loadImage, makeImage, placement, prepareImage,
  resizeImage, sniffFormat, toBatch, type Image,
} from '../../src/data/image.js';
import { FIXTURES, alphaPattern, grayPattern, rgb16Pattern, rgbPattern, smoothPattern } from '../../fixtures/images/make-images.js';

const DIR = path.join(packageRoot(), 'fixtures', 'images');
const px = (im: Image, x: number, y: number, c: number) => im.data[(c * im.height + y) * im.width + x];

function expectPattern(im: Image, f: (x: number, y: number, c: number) => number, scale: number, tol: number, label: string): void {
  const want = new Float64Array(im.data.length);
  for (let c = 0; c < 3; c++) for (let y = 0; y < im.height; y++) for (let x = 0; x < im.width; x++) want[(c * im.height + y) * im.width + x] = f(x, y, c) / scale;
  assertClose(im.data, want, { atol: tol, rtol: 0 }, label);
}

// ---------------------------------------------------------------- decode

test('PNG decode: 8-bit RGB, grey (replicated), RGBA (alpha dropped), 16-bit (to 8 bits)', () => {
  const rgb = loadImage(path.join(DIR, FIXTURES.rgb.file));
  assert.equal([rgb.width, rgb.height, rgb.channels], [13, 9, 3]);
  expectPattern(rgb, rgbPattern, 255, 1e-7, 'rgb');
  const gray = loadImage(path.join(DIR, FIXTURES.gray.file));
  assert.equal([gray.width, gray.height], [6, 5]);
  expectPattern(gray, (x, y) => grayPattern(x, y), 255, 1e-7, 'gray');
  const rgba = loadImage(path.join(DIR, FIXTURES.rgba.file));
  expectPattern(rgba, rgbPattern, 255, 1e-7, 'rgba (colour kept where alpha is 0)');
  assert.is(alphaPattern(0, 0), 0, 'the fixture has transparent pixels');
  const r16 = loadImage(path.join(DIR, FIXTURES.rgb16.file));
  expectPattern(r16, (x, y, c) => Math.round((rgb16Pattern(x, y, c) * 255) / 65535), 255, 1e-7, 'rgb16 rounded to 8 bits');
  expectPattern(r16, rgb16Pattern, 65535, 0.5 / 255 + 1e-7, 'rgb16 vs the 16-bit values');
});

test('JPEG decode: size, colours within JPEG error of the source; encode/decode of a random image', () => {
  const f = FIXTURES.jpeg;
  const im = loadImage(path.join(DIR, f.file));
  assert.equal([im.width, im.height, im.channels], [f.width, f.height, 3]);
  let sum = 0;
  let max = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < f.height; y++) {
      for (let x = 0; x < f.width; x++) {
        const e = Math.abs(px(im, x, y, c) * 255 - smoothPattern(x, y, c, f.width, f.height));
        sum += e;
        max = Math.max(max, e);
      }
    }
  }
  const mean = sum / (3 * f.width * f.height);
  assert.ok(mean < 1.5 && max < 8, `JPEG q95 error: mean ${mean.toFixed(2)}, max ${max} (of 255)`);
  // a flat colour survives exactly
  const w = 16;
  const h = 8;
  const flat = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) flat.set([200, 40, 90, 255], i * 4);
  const dec = decodeJpeg(jpeg.encode({ data: flat, width: w, height: h }, 100).data);
  for (let i = 0; i < w * h; i++) {
    assert.ok(Math.abs(dec.data[i] * 255 - 200) <= 1 && Math.abs(dec.data[w * h + i] * 255 - 40) <= 1 && Math.abs(dec.data[2 * w * h + i] * 255 - 90) <= 1, `flat pixel ${i}`);
  }
});

test('decodeImage: sniffs PNG/JPEG, names the file on errors', () => {
  const pngBytes = fs.readFileSync(path.join(DIR, FIXTURES.rgb.file));
  const jpgBytes = fs.readFileSync(path.join(DIR, FIXTURES.jpeg.file));
  assert.is(sniffFormat(pngBytes), 'png');
  assert.is(sniffFormat(jpgBytes), 'jpeg');
  assert.is(sniffFormat(Buffer.from('BM....')), null);
  assert.throws(() => decodeImage(Buffer.from('GIF89a....'), 'x.gif'), /x\.gif: not a PNG or JPEG/);
  assert.throws(() => decodeImage(pngBytes.subarray(0, 40), 'cut.png'), /cut\.png: cannot decode PNG/);
  assert.throws(() => decodeImage(jpgBytes.subarray(0, 30), 'cut.jpg'), /cut\.jpg: cannot decode JPEG/);
});

// ---------------------------------------------------------------- resize / letterbox vs float64 references

/** Darknet resize_image written as in image.c (get_pixel, part image, skipped last-row term), in float64. */
function resizeRef(im: Image, w: number, h: number): Float64Array {
  const { width: W, height: H, channels: C } = im;
  const get = (x: number, y: number, k: number) => im.data[(k * H + y) * W + x];
  if (W === w && H === h) return Float64Array.from(im.data);
  const part = new Float64Array(C * H * w);
  for (let k = 0; k < C; k++) {
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < w; c++) {
        let val: number;
        if (c === w - 1 || W === 1) val = get(W - 1, r, k);
        else {
          const sx = (c * (W - 1)) / (w - 1);
          const ix = Math.trunc(sx);
          const dx = sx - ix;
          val = (1 - dx) * get(ix, r, k) + dx * get(ix + 1, r, k);
        }
        part[(k * H + r) * w + c] = val;
      }
    }
  }
  const out = new Float64Array(C * h * w);
  for (let k = 0; k < C; k++) {
    for (let r = 0; r < h; r++) {
      const sy = h === 1 ? 0 : (r * (H - 1)) / (h - 1);
      const iy = Math.trunc(sy);
      const dy = sy - iy;
      for (let c = 0; c < w; c++) out[(k * h + r) * w + c] = (1 - dy) * part[(k * H + iy) * w + c];
      if (r === h - 1 || H === 1) continue;
      for (let c = 0; c < w; c++) out[(k * h + r) * w + c] += dy * part[(k * H + iy + 1) * w + c];
    }
  }
  return out;
}

function randomImage(w: number, h: number, seed: number): Image {
  const im = makeImage(w, h);
  const rng = new Rng(seed);
  for (let i = 0; i < im.data.length; i++) im.data[i] = Math.fround(rng.next());
  return im;
}

test('resizeImage vs a float64 transcription of Darknet resize_image (down, up, odd, 1-pixel sides)', () => {
  const cases: [number, number, number, number][] = [
    [37, 23, 16, 16], [13, 9, 7, 5], [13, 9, 20, 17], [640, 480, 416, 416], [9, 13, 9, 13], [5, 4, 1, 3], [5, 4, 3, 1], [1, 6, 4, 4], [6, 1, 4, 4], [1, 1, 3, 2],
  ];
  for (const [W, H, w, h] of cases) {
    const im = randomImage(W, H, W * 100 + H);
    const got = resizeImage(im, w, h);
    assert.equal([got.width, got.height, got.channels], [w, h, 3]);
    assertClose(got.data, resizeRef(im, w, h), { atol: 1e-6, rtol: 0 }, `resize ${W}x${H} -> ${w}x${h}`);
  }
  // corners are the source corners; a constant image stays constant
  const im = randomImage(31, 17, 3);
  const r = resizeImage(im, 12, 40);
  for (const [x, y, X, Y] of [[0, 0, 0, 0], [11, 0, 30, 0], [0, 39, 0, 16], [11, 39, 30, 16]]) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(px(r, x, y, c) - px(im, X, Y, c)) < 1e-6, `corner ${x},${y}`);
  }
  const flat = makeImage(23, 11, 3, 0.3);
  assertClose(resizeImage(flat, 17, 29).data, new Float64Array(17 * 29 * 3).fill(0.3), { atol: 1e-7, rtol: 0 }, 'constant');
});

test('letterboxImage: Darknet placement, 0.5 grey pad, content = resize of the image', () => {
  for (const [W, H, w, h, nw, nh] of [
    [640, 480, 416, 416, 416, 312], [64, 48, 41, 41, 41, 30], [30, 50, 32, 32, 19, 32], [100, 100, 64, 48, 48, 48], [7, 7, 5, 9, 5, 5],
  ]) {
    const p = placement(W, H, w, h, true);
    assert.equal([p.newWidth, p.newHeight], [nw, nh], `placement ${W}x${H} -> ${w}x${h}`);
    assert.equal([p.dx, p.dy], [Math.floor((w - nw) / 2), Math.floor((h - nh) / 2)]);
    const im = randomImage(W, H, W + H);
    const lb = letterboxImage(im, w, h);
    const inner = resizeRef(im, nw, nh);
    const want = new Float64Array(3 * w * h).fill(0.5);
    for (let c = 0; c < 3; c++) for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) want[(c * h + y + p.dy) * w + x + p.dx] = inner[(c * nh + y) * nw + x];
    assertClose(lb.data, want, { atol: 1e-6, rtol: 0 }, `letterbox ${W}x${H} -> ${w}x${h}`);
  }
  const plain = prepareImage(randomImage(20, 10, 1), 16, 16);
  assert.equal([plain.image.width, plain.image.height, plain.placement.letterbox, plain.placement.newWidth], [16, 16, false, 16]);
});

test('box mapping: Darknet correct_yolo_boxes values, round trip, and agreement with the pixels', () => {
  const p = placement(640, 480, 416, 416, true); // new 416x312, pad 52 on top and bottom
  const b = boxToImage({ x: 0.5, y: 0.5, w: 0.5, h: 0.25 }, p);
  assertClose([b.x, b.y, b.w, b.h], [0.5, 0.5, 0.5, 1 / 3], { atol: 1e-12, rtol: 0 }, 'centre box');
  assertClose([boxToImage({ x: 0.5, y: 52 / 416, w: 0, h: 0 }, p).y], [0], { atol: 1e-12, rtol: 0 }, 'top of the content');
  const rng = new Rng(9);
  for (const pl of [p, placement(300, 500, 320, 256, true), placement(300, 500, 320, 256, false), placement(33, 17, 64, 64, true)]) {
    for (let k = 0; k < 20; k++) {
      const box = { x: rng.uniform(0, 1), y: rng.uniform(0, 1), w: rng.uniform(0.01, 1), h: rng.uniform(0.01, 1) };
      const back = boxToNet(boxToImage(box, pl), pl);
      assertClose([back.x, back.y, back.w, back.h], [box.x, box.y, box.w, box.h], { atol: 1e-12, rtol: 0 }, 'round trip');
    }
  }
  assert.equal(boxToImage({ x: 0.3, y: 0.6, w: 0.2, h: 0.1 }, placement(300, 500, 320, 256, false)), { x: 0.3, y: 0.6, w: 0.2, h: 0.1 });
  // a white rectangle in the image lands where boxToNet says (within a pixel of the letterboxed input)
  const W = 120;
  const H = 60;
  const im = makeImage(W, H);
  const [x1, y1, x2, y2] = [30, 10, 90, 40];
  for (let c = 0; c < 3; c++) for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) im.data[(c * H + y) * W + x] = 1;
  const { image: net, placement: pl } = prepareImage(im, 64, 64, true);
  const nb = boxToNet({ x: (x1 + x2) / 2 / W, y: (y1 + y2) / 2 / H, w: (x2 - x1) / W, h: (y2 - y1) / H }, pl);
  const corners = boxToPixels(nb, 64, 64);
  let minX = 64, minY = 64, maxX = -1, maxY = -1;
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) if (net.data[y * 64 + x] > 0.5) { minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y); }
  assertClose([minX, minY, maxX + 1, maxY + 1], [corners.x1, corners.y1, corners.x2, corners.y2], { atol: 1.5, rtol: 0 }, 'rectangle in the letterboxed input');
  const pxs = boxToPixels({ x: 0.9, y: 0.1, w: 0.4, h: 0.4 }, 100, 50);
  assertClose([pxs.x1, pxs.y1, pxs.x2, pxs.y2], [70, 0, 100, 15], { atol: 1e-9, rtol: 0 }, 'clipped pixel corners');
});

test('toBatch packs NCHW; a 640x480 JPEG decodes and letterboxes to 416x416 quickly', () => {
  const a = randomImage(4, 3, 1);
  const b = randomImage(4, 3, 2);
  const batch = toBatch([a, b]);
  assert.is(batch.length, 72);
  assert.equal(Array.from(batch.subarray(36)), Array.from(b.data));
  assert.throws(() => toBatch([a, randomImage(3, 4, 1)]), /image 1 is 3x4x3/);
  const w = 640;
  const h = 480;
  const rgba = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgba.set([(x * 255) / w, (y * 255) / h, ((x ^ y) & 255), 255], (y * w + x) * 4);
  const bytes = jpeg.encode({ data: rgba, width: w, height: h }, 90).data;
  const t0 = performance.now();
  const im = decodeImage(bytes);
  const t1 = performance.now();
  const lb = prepareImage(im, 416, 416, true);
  const t2 = performance.now();
  const rs = prepareImage(im, 416, 416, false);
  const t3 = performance.now();
  assert.equal([lb.image.width, rs.image.height], [416, 416]);
  console.log(`  640x480 JPEG decode ${(t1 - t0).toFixed(1)} ms, letterbox to 416 ${(t2 - t1).toFixed(1)} ms, resize to 416 ${(t3 - t2).toFixed(1)} ms`);
});

test.run();
