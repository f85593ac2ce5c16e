import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { classColor, drawBox, drawDetections, encodePng, imageToRgba, labelFontPx, labelOf, labelSize, makeRgba, writePng, type Color, type RgbaImage } from '../../src/viz/draw.js';
import { measureText } from '../../src/viz/font.js';
import { Painter } from '../../src/viz/painter.js';
import { makeImage } from '../../src/data/image.js';

const at = (img: RgbaImage, x: number, y: number): number[] => Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 3));

test("classColor: Darknet's draw_detections colours, distinct for 80 classes", () => {
  assert.equal(classColor(0, 80), [255, 0, 255]); // offset 0: magenta
  assert.equal(classColor(1, 80), [255, 16, 0]); // offset 123457 % 80 = 17: ratio 1.0625 between red and yellow
  assert.equal(classColor(0, 1), [255, 0, 255]);
  const seen = new Set<string>();
  for (let c = 0; c < 80; c++) seen.add(classColor(c, 80).join(','));
  assert.is(seen.size, 80);
});

/** Pixels of `img` inside the rectangle that differ from `bg` by more than `tol` in some channel. */
function inkIn(img: RgbaImage, x0: number, y0: number, w: number, h: number, bg: Color, tol = 40): number {
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(img.height, Math.ceil(y0 + h)); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(img.width, Math.ceil(x0 + w)); x++) {
      const p = at(img, x, y);
      if (Math.abs(p[0] - bg[0]) > tol || Math.abs(p[1] - bg[1]) > tol || Math.abs(p[2] - bg[2]) > tol) n++;
    }
  }
  return n;
}

test('font: DejaVu Sans metrics, lowercase with descenders, anti-aliased ink inside the measured box', () => {
  const m = measureText('Training loss per epoch', 20);
  // DejaVu Sans: ascent 0.928 em, descent 0.236 em (hhea 1901 / 483 of 2048), advance widths from the font
  assert.ok(Math.abs(m.ascent - 0.928 * 20) <= 1 && Math.abs(m.descent - 0.236 * 20) <= 1, `ascent ${m.ascent} descent ${m.descent}`);
  assert.ok(m.width > 200 && m.width < 260, `width ${m.width}`);
  // proportional: 'i' narrower than 'W'; twice the size, twice the width
  assert.ok(measureText('iiii', 20).width < measureText('WWWW', 20).width / 2);
  assert.ok(Math.abs(measureText('Training', 40).width - 2 * measureText('Training', 20).width) < 1);
  const p = new Painter(300, 40, [255, 255, 255]);
  const box = p.text('Trainin9 gyp', 10, 5, { px: 20, baseline: 'top' });
  const img = p.toRgba();
  assert.equal([img.width, img.height], [300, 40]);
  const inside = inkIn(img, box.x - 1, box.y - 1, box.w + 2, box.h + 2, [255, 255, 255], 10); // 1 px of anti-aliasing fringe
  const all = inkIn(img, 0, 0, 300, 40, [255, 255, 255], 10);
  assert.ok(inside > 150 && inside === all, `ink ${inside} inside the box (+1 px) of ${all}`);
  // descenders (g, y, p) reach below the baseline, into the descent band
  const baseline = box.y + m.ascent;
  assert.ok(inkIn(img, box.x, baseline + 1, box.w, m.descent - 1, [255, 255, 255], 10) > 15, 'descenders');
  // anti-aliased: grey levels between paper and ink
  let grey = 0;
  for (let i = 0; i < img.width * img.height; i++) if (img.data[4 * i] > 30 && img.data[4 * i] < 225) grey++;
  assert.ok(grey > 50, `${grey} intermediate pixels`);
});

test('drawDetections: box edges in the class colour, interior untouched, label with text on the class colour', () => {
  const W = 200;
  const H = 120;
  const img = makeRgba(W, H, [128, 128, 128]);
  const names = ['person', 'bicycle', 'car'];
  drawDetections(img, [{ x1: 40, y1: 50, x2: 120, y2: 100, classId: 2, score: 0.87 }], { names, lineWidth: 2 });
  const col: Color = classColor(2, 3);
  // outer edge pixels (x2, y2 are exclusive edges: the last pixel is 119, 99) and the second line pixel
  for (const [x, y] of [[40, 50], [119, 50], [40, 99], [119, 99], [80, 50], [80, 51], [80, 99], [80, 98], [40, 75], [41, 75], [119, 75], [118, 75]]) {
    assert.equal(at(img, x, y), [...col], `edge pixel ${x},${y}`);
  }
  for (const [x, y] of [[80, 52], [42, 75], [117, 75], [80, 97], [39, 75], [120, 75], [80, 101]]) {
    assert.equal(at(img, x, y), [128, 128, 128], `untouched pixel ${x},${y}`);
  }
  // label "car 0.87" above the box: background of the class colour with text pixels in it
  const text = labelOf({ x1: 0, y1: 0, x2: 0, y2: 0, classId: 2, score: 0.87 }, names);
  assert.is(text, 'car 0.87');
  const px = labelFontPx(W, H);
  assert.is(px, 11);
  const ts = labelSize(new Painter(1, 1), text, px);
  const top = 50 - ts.height;
  let bg = 0;
  for (let y = top; y < 50; y++) for (let x = 40; x < 40 + ts.width; x++) if (at(img, x, y).join(',') === col.join(',')) bg++;
  const ink = inkIn(img, 40, top, ts.width, ts.height, col, 60);
  assert.ok(bg > ts.width * ts.height * 0.6 && ink > 20, `label: ${bg} background and ${ink} text pixels`);
  assert.equal(at(img, 40, top - 1), [128, 128, 128], 'nothing above the label');
  assert.equal(at(img, 40 + ts.width, top + 2), [128, 128, 128], 'nothing right of the label');
});

test('drawDetections: boxes at the image border clip, labels move inside; default widths scale with the image', () => {
  const img = makeRgba(64, 48, [10, 20, 30]);
  drawDetections(img, [{ x1: -10, y1: -5, x2: 100, y2: 60, classId: 0, score: 0.5 }], { classes: 80 });
  const c = classColor(0, 80);
  assert.equal(at(img, 0, 30), [...c]);
  assert.equal(at(img, 63, 30), [...c]);
  assert.equal(at(img, 30, 47), [...c]);
  // big image: thicker lines by default
  const big = makeRgba(1000, 800, [0, 0, 0]);
  drawDetections(big, [{ x1: 100, y1: 300, x2: 500, y2: 600, classId: 1, score: 0.9, label: 'x' }], { classes: 80 });
  const c1 = classColor(1, 80);
  for (let k = 0; k < 3; k++) assert.equal(at(big, 300, 599 - k), [...c1], `line pixel ${k}`);
  assert.equal(at(big, 300, 599 - 3), [0, 0, 0]);
  drawBox(big, 10, 10, 12, 12, [1, 2, 3], 10); // tiny box with a wide line: filled, no overflow
  assert.equal(at(big, 11, 11), [1, 2, 3]);
  assert.equal(at(big, 13, 11), [0, 0, 0]);
});

test('PNG round trip (atomic write), float image -> RGBA', () => {
  const im = makeImage(7, 5);
  for (let i = 0; i < im.data.length; i++) im.data[i] = (i % 17) / 16;
  const rgba = imageToRgba(im);
  assert.equal(at(rgba, 1, 0), [Math.round((1 / 16) * 255), Math.round(((36 % 17) / 16) * 255), Math.round(((71 % 17) / 16) * 255)]);
  drawDetections(rgba, [{ x1: 1, y1: 1, x2: 6, y2: 4, classId: 3, score: 0.3 }], { classes: 5, lineWidth: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-draw-'));
  const file = path.join(dir, 'sub', 'out.png');
  writePng(file, rgba);
  assert.equal(fs.readdirSync(path.join(dir, 'sub')), ['out.png'], 'no temporary file left behind');
  const back = PNG.sync.read(fs.readFileSync(file));
  assert.equal([back.width, back.height], [7, 5]);
  for (let i = 0; i < 35; i++) {
    assert.equal(Array.from(back.data.subarray(4 * i, 4 * i + 3)), Array.from(rgba.data.subarray(4 * i, 4 * i + 3)), `pixel ${i}`);
  }
  assert.equal(encodePng(rgba), fs.readFileSync(file));
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
