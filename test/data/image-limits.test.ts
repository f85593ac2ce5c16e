/**
 * Decompression-bomb guard and clean errors of the image decoder: the size a PNG / JPEG declares is read
 * from its header (imageDimensions) and checked against the pixel limit (DEFAULT_MAX_PIXELS, the
 * YOLO_WGSL_MAX_PIXELS variable, the maxPixels option) before anything is decoded; truncated headers,
 * empty images, directories and missing files give an ImageError naming the file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/util/paths.js';
import { getGpu } from '../helpers/gpu.js';
import { DEFAULT_MAX_PIXELS as EXPORTED_DEFAULT, Engine, ImageError as ExportedImageError, imageDimensions as exportedDimensions, loadDarknet } from '../../src/index.js';
import {
  DEFAULT_MAX_PIXELS, ImageError, MAX_PIXELS_ENV, checkImageSize, decodeImage, imageDimensions, loadImage, resolveMaxPixels,
} from '../../src/data/image.js';
import { FIXTURES, forgedPng, rgbPattern } from '../../fixtures/images/make-images.js';

const DIR = path.join(packageRoot(), 'fixtures', 'images');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-image-limits-'));
const MB = 1024 * 1024;

// ---------------------------------------------------------------- hand-made files

/** The JPEG fixture with its frame header (SOF0) saying width x height. */
function forgedJpeg(width: number, height: number): Buffer {
  const b = Buffer.from(fs.readFileSync(path.join(DIR, FIXTURES.jpeg.file)));
  const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
  assert.ok(sof > 0, 'the fixture has a SOF0');
  b.writeUInt16BE(height, sof + 5);
  b.writeUInt16BE(width, sof + 7);
  return b;
}

/** rss growth (bytes) across fn, which must throw; returns the error. */
function rssAcross(fn: () => unknown): { grew: number; error: unknown } {
  const before = process.memoryUsage().rss;
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  return { grew: process.memoryUsage().rss - before, error };
}

function expectImageError(e: unknown, code: string, re: RegExp): ImageError {
  assert.ok(e instanceof ImageError, `an ImageError, got ${String(e)}`);
  assert.is(e.name, 'ImageError');
  assert.is(e.code, code, e.message);
  assert.match(e.message, re);
  return e;
}

// ---------------------------------------------------------------- the guard

test('a 20000x20000 PNG of a few hundred bytes is refused from its header, without allocating', () => {
  const bomb = forgedPng(20000, 20000);
  assert.ok(bomb.length < 300, `${bomb.length} bytes`);
  assert.equal(imageDimensions(bomb), { format: 'png', width: 20000, height: 20000 });
  const { grew, error } = rssAcross(() => decodeImage(bomb, 'bomb.png'));
  const e = expectImageError(error, 'IMAGE_TOO_LARGE', /^bomb\.png: image is 20000x20000 \(400\.0 megapixels\), over the limit of 67\.1 megapixels \(67108864 pixels; raise it with the maxPixels option or the environment variable YOLO_WGSL_MAX_PIXELS\)$/);
  assert.equal([e.file, e.width, e.height, e.limit], ['bomb.png', 20000, 20000, DEFAULT_MAX_PIXELS]);
  assert.ok(grew < 100 * MB, `rss grew ${(grew / MB).toFixed(1)} MB`);
  // the same through a file
  const file = path.join(tmp, 'bomb.png');
  fs.writeFileSync(file, bomb);
  const r = rssAcross(() => loadImage(file));
  expectImageError(r.error, 'IMAGE_TOO_LARGE', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: image is 20000x20000`));
  assert.ok(r.grew < 100 * MB, `rss grew ${(r.grew / MB).toFixed(1)} MB`);
  // a PNG of 2^32-1 columns: the pixel count is computed without overflow
  expectImageError(rssAcross(() => decodeImage(forgedPng(0xffffffff, 1), 'wide.png')).error, 'IMAGE_TOO_LARGE', /wide\.png: image is 4294967295x1 \(4295\.0 megapixels\)/);
});

test('a JPEG whose frame header (SOF) says 9000x9000 or 65535x65535 is refused before jpeg-js allocates', () => {
  for (const [w, h, mp] of [[9000, 9000, '81.0'], [65535, 65535, '4294.8']] as const) {
    const bomb = forgedJpeg(w, h);
    assert.equal(imageDimensions(bomb), { format: 'jpeg', width: w, height: h });
    const { grew, error } = rssAcross(() => decodeImage(bomb, 'bomb.jpg'));
    const e = expectImageError(error, 'IMAGE_TOO_LARGE', new RegExp(`^bomb\\.jpg: image is ${w}x${h} \\(${mp.replace('.', '\\.')} megapixels\\), over the limit of 67\\.1 megapixels`));
    assert.equal([e.width, e.height, e.limit], [w, h, DEFAULT_MAX_PIXELS]);
    assert.ok(grew < 100 * MB, `rss grew ${(grew / MB).toFixed(1)} MB`);
  }
});

test('JPEG header walk: fill bytes, standalone markers, APPn and DHT (0xC4) before the SOF; SOF2 and SOF3 count', () => {
  const seg = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const sof = (marker: number, w: number, h: number) => seg(marker, [8, h >> 8, h & 0xff, w >> 8, w & 0xff, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
  const app0 = seg(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const dht = seg(0xc4, [0x00, 1, ...new Array(15).fill(0), 0]); // a DHT: in the SOF range, not a frame header
  const dac = seg(0xcc, [0x00, 0x10]);
  const bytes = Uint8Array.from([0xff, 0xd8, ...app0, 0xff, 0xff, 0xff, ...dht, 0xff, 0xd0, 0xff, 0x01, ...dac, ...sof(0xc2, 321, 123), 0xff, 0xd9]);
  assert.equal(imageDimensions(bytes), { format: 'jpeg', width: 321, height: 123 });
  assert.equal(imageDimensions(Uint8Array.from([0xff, 0xd8, ...sof(0xc3, 7, 5)])), { format: 'jpeg', width: 7, height: 5 });
  assert.equal(imageDimensions(fs.readFileSync(path.join(DIR, FIXTURES.jpeg.file))), { format: 'jpeg', width: 40, height: 24 });
  assert.equal(imageDimensions(fs.readFileSync(path.join(DIR, FIXTURES.rgb.file))), { format: 'png', width: 13, height: 9 });
  assert.is(imageDimensions(Buffer.from('GIF89a....')), null);
  // EOI / SOS before any SOF, a stray 0xFF00, a byte that is no marker
  assert.throws(() => imageDimensions(Uint8Array.from([0xff, 0xd8, ...app0, 0xff, 0xd9]), 'a.jpg'), /a\.jpg: cannot decode JPEG: end of image \(EOI\) before a frame header/);
  assert.throws(() => imageDimensions(Uint8Array.from([0xff, 0xd8, ...seg(0xda, [1, 2, 3])]), 'b.jpg'), /b\.jpg: cannot decode JPEG: scan data \(SOS\) before a frame header/);
  assert.throws(() => imageDimensions(Uint8Array.from([0xff, 0xd8, ...app0, 0x12, 0x34]), 'c.jpg'), /c\.jpg: cannot decode JPEG: marker expected at byte 20, found 0x12/);
  assert.throws(() => imageDimensions(Uint8Array.from([0xff, 0xd8, 0xff, 0x00, 0, 0]), 'd.jpg'), /d\.jpg: cannot decode JPEG: stray 0xFF00/);
});

test('truncated headers: a clean ImageError (IMAGE_INVALID) naming the file, for every cut', () => {
  const png = fs.readFileSync(path.join(DIR, FIXTURES.rgb.file));
  for (const n of [8, 12, 16, 20, 23]) {
    expectImageError(rssAcross(() => decodeImage(png.subarray(0, n), 'cut.png')).error, 'IMAGE_INVALID', /^cut\.png: cannot decode PNG: truncated: \d+ bytes, the header \(IHDR\) needs 24$/);
  }
  const jpg = forgedJpeg(40, 24);
  const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
  for (const n of [3, 4, 5, 10, sof, sof + 1, sof + 3, sof + 6, sof + 8]) {
    expectImageError(rssAcross(() => decodeImage(jpg.subarray(0, n), 'cut.jpg')).error, 'IMAGE_INVALID', /^cut\.jpg: cannot decode JPEG: truncated before the frame header \(SOF\) at byte \d+ of \d+$/);
  }
  // the header whole, the data cut: the decoder's own error, still an ImageError
  expectImageError(rssAcross(() => decodeImage(png.subarray(0, 40), 'cut.png')).error, 'IMAGE_INVALID', /^cut\.png: cannot decode PNG: /);
  expectImageError(rssAcross(() => decodeImage(jpg.subarray(0, sof + 30), 'cut.jpg')).error, 'IMAGE_INVALID', /^cut\.jpg: cannot decode JPEG: /);
  // a damaged signature / first chunk
  const sig = Buffer.from(png);
  sig[5] = 0;
  expectImageError(rssAcross(() => decodeImage(sig, 'sig.png')).error, 'IMAGE_INVALID', /sig\.png: cannot decode PNG: damaged PNG signature/);
  const first = Buffer.from(png);
  first.write('tEXt', 12, 'latin1');
  expectImageError(rssAcross(() => decodeImage(first, 'first.png')).error, 'IMAGE_INVALID', /first\.png: cannot decode PNG: the first chunk is "tEXt", not IHDR/);
  expectImageError(rssAcross(() => decodeImage(Buffer.from('GIF89a....'), 'x.gif')).error, 'IMAGE_FORMAT', /^x\.gif: not a PNG or JPEG file/);
});

test('zero width or height: IMAGE_INVALID "no pixels"', () => {
  expectImageError(rssAcross(() => decodeImage(forgedPng(0, 10), 'zero.png')).error, 'IMAGE_INVALID', /^zero\.png: image is 0x10: no pixels$/);
  expectImageError(rssAcross(() => decodeImage(forgedJpeg(40, 0), 'zero.jpg')).error, 'IMAGE_INVALID', /^zero\.jpg: image is 40x0: no pixels$/);
});

test('a real image under a lowered limit is refused, under the default and at exactly the limit decoded', () => {
  const file = path.join(DIR, FIXTURES.rgb.file); // 13x9 = 117 pixels
  const e = expectImageError(rssAcross(() => loadImage(file, { maxPixels: 100 })).error, 'IMAGE_TOO_LARGE', /rgb-13x9\.png: image is 13x9 \(117 pixels\), over the limit of 100 pixels \(100 pixels; raise it/);
  assert.equal([e.width, e.height, e.limit], [13, 9, 100]);
  assert.equal([loadImage(file).width, loadImage(file, { maxPixels: 117 }).height], [13, 9]);
  const jpg = path.join(DIR, FIXTURES.jpeg.file); // 40x24 = 960
  expectImageError(rssAcross(() => loadImage(jpg, { maxPixels: 959 })).error, 'IMAGE_TOO_LARGE', /smooth-40x24\.jpg: image is 40x24 \(960 pixels\), over the limit of 959 pixels/);
  assert.is(loadImage(jpg, { maxPixels: 960 }).width, 40);
  assert.is(loadImage(jpg, { maxPixels: Infinity }).width, 40);
  for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => loadImage(jpg, { maxPixels: bad }), /maxPixels: expected a positive integer number of pixels/);
  assert.throws(() => checkImageSize('raw', 300, 300, 1000), (err: unknown) => err instanceof ImageError && err.code === 'IMAGE_TOO_LARGE' && /^raw: image is 300x300 \(90000 pixels\)/.test(err.message));
});

test('YOLO_WGSL_MAX_PIXELS sets the limit where no option is given; a bad value is a RangeError naming it', () => {
  const file = path.join(DIR, FIXTURES.rgb.file);
  const saved = process.env[MAX_PIXELS_ENV];
  try {
    process.env[MAX_PIXELS_ENV] = '100';
    assert.is(resolveMaxPixels(), 100);
    expectImageError(rssAcross(() => loadImage(file)).error, 'IMAGE_TOO_LARGE', /image is 13x9 \(117 pixels\), over the limit of 100 pixels/);
    assert.is(loadImage(file, { maxPixels: 200 }).width, 13, 'the option wins over the variable');
    process.env[MAX_PIXELS_ENV] = '117';
    assert.is(loadImage(file).width, 13);
    process.env[MAX_PIXELS_ENV] = '';
    assert.is(resolveMaxPixels(), DEFAULT_MAX_PIXELS, 'empty = unset');
    for (const bad of ['abc', '0', '-5', '1.5', '1e6', '99999999999999999999']) {
      process.env[MAX_PIXELS_ENV] = bad;
      assert.throws(() => loadImage(file), (e: unknown) => e instanceof RangeError && e.message.startsWith(`YOLO_WGSL_MAX_PIXELS=${JSON.stringify(bad)}: expected a positive integer number of pixels`), bad);
    }
  } finally {
    if (saved === undefined) delete process.env[MAX_PIXELS_ENV];
    else process.env[MAX_PIXELS_ENV] = saved;
  }
  assert.is(resolveMaxPixels(), saved === undefined ? DEFAULT_MAX_PIXELS : resolveMaxPixels());
});

test('loadImage: a directory and a missing file give an ImageError naming the path', () => {
  expectImageError(rssAcross(() => loadImage(tmp)).error, 'IMAGE_UNREADABLE', new RegExp(`^${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is a directory, not an image$`));
  const missing = path.join(tmp, 'nope.png');
  expectImageError(rssAcross(() => loadImage(missing)).error, 'IMAGE_UNREADABLE', new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no such file$`));
});

// ---------------------------------------------------------------- interlaced PNG

/** An Adam7-interlaced 8-bit RGB PNG of rgbPattern, filter 0 on every row (written by hand; pngjs writes none). */
function interlacedPng(width: number, height: number): Buffer {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    if (x0 >= width || y0 >= height) continue;
    for (let y = y0; y < height; y += dy) {
      rows.push(0);
      for (let x = x0; x < width; x += dx) for (let c = 0; c < 3; c++) rows.push(rgbPattern(x, y, c));
    }
  }
  return forgedPng(width, height, zlib.deflateSync(Uint8Array.from(rows)), 1);
}

async function deflateZeros(bytes: number): Promise<Buffer> {
  const d = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  d.on('data', (c: Buffer) => out.push(c));
  const zeros = Buffer.alloc(MB);
  for (let n = 0; n < bytes; n += zeros.length) if (!d.write(zeros)) await once(d, 'drain');
  d.end();
  await once(d, 'end');
  return Buffer.concat(out);
}

test('interlaced PNG: decoded as before; a zlib bomb inside one of honest size is refused without inflating it', async () => {
  for (const [w, h] of [[13, 9], [1, 1], [5, 3], [9, 17]]) {
    const im = decodeImage(interlacedPng(w, h), 'adam7.png');
    assert.equal([im.width, im.height], [w, h]);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) assert.is(Math.round(im.data[(c * h + y) * w + x] * 255), rgbPattern(x, y, c), `${w}x${h} (${x},${y},${c})`);
  }
  const idat = await deflateZeros(256 * MB); // about 250 KB that inflate to 256 MB
  const bomb = forgedPng(100, 100, idat, 1);
  assert.ok(bomb.length < MB, `${bomb.length} bytes`);
  const { grew, error } = rssAcross(() => decodeImage(bomb, 'adam7-bomb.png'));
  expectImageError(error, 'IMAGE_INVALID', /^adam7-bomb\.png: cannot decode PNG: the compressed image data inflates past the 30\d+ bytes a 100x100 interlaced image holds/);
  assert.ok(grew < 100 * MB, `rss grew ${(grew / MB).toFixed(1)} MB`);
});

// ---------------------------------------------------------------- through the library API

test('model.detect: maxPixels from loadDarknet (the default) and per call; bombs refused as bytes and as paths', async () => {
  assert.is(EXPORTED_DEFAULT, 64 * 1024 * 1024);
  assert.is(ExportedImageError, ImageError, 'the package exports the same class');
  assert.is(exportedDimensions, imageDimensions);
  const cfg = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
  const engine = new Engine(await getGpu());
  const model = await loadDarknet({ cfg, engine, seed: 3 });
  const small = await loadDarknet({ cfg, engine, seed: 3, maxPixels: 100 });
  try {
    const file = path.join(DIR, FIXTURES.rgb.file); // 13x9
    const bombFile = path.join(tmp, 'api-bomb.png');
    fs.writeFileSync(bombFile, forgedPng(20000, 20000));
    const refused = async (p: Promise<unknown>, re: RegExp) => {
      const before = process.memoryUsage().rss;
      const e = await p.then(() => undefined, (err: unknown) => err);
      expectImageError(e, 'IMAGE_TOO_LARGE', re);
      assert.ok(process.memoryUsage().rss - before < 100 * MB, 'nothing allocated');
    };
    await refused(model.detect(forgedPng(20000, 20000)), /^image: image is 20000x20000 \(400\.0 megapixels\), over the limit of 67\.1 megapixels/);
    await refused(model.detect(bombFile), /api-bomb\.png: image is 20000x20000/);
    await refused(model.detect(Uint8Array.from(forgedJpeg(9000, 9000)).buffer), /image is 9000x9000/);
    await refused(model.detect(file, { maxPixels: 100 }), /rgb-13x9\.png: image is 13x9 \(117 pixels\), over the limit of 100 pixels/);
    await refused(small.detect(file), /over the limit of 100 pixels/);
    await refused(small.detect({ data: new Uint8Array(300 * 300 * 3), width: 300, height: 300 }), /^image: image is 300x300 \(90000 pixels\), over the limit of 100 pixels/);
    assert.ok(Array.isArray(await small.detect(file, { maxPixels: 117 })), 'the per-call option wins over the model default');
    assert.ok(Array.isArray(await model.detect(file)));
    const batch = await model.detectBatch([file, file], { maxPixels: 117 });
    assert.is(batch.length, 2);
    const bad = await loadDarknet({ cfg, engine, maxPixels: 0 }).then(() => undefined, (e: unknown) => e);
    assert.ok(bad instanceof RangeError && /maxPixels: expected a positive integer/.test(bad.message), String(bad));
  } finally {
    model.dispose();
    small.dispose();
  }
});

test.run();
