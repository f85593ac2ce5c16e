/**
 * Images for detection and training, on the CPU: decode PNG (pngjs) and JPEG (jpeg-js, pure JS) into
 * planar RGB float32 in [0, 1] (Darknet's `image`: CHW, value/255), resize to the network input the way
 * Darknet does (resize_image: stretch; letterbox_image: keep the aspect ratio, pad with 0.5 grey), and map
 * boxes between the network input and the original image (Darknet correct_yolo_boxes).
 *
 * Why the CPU: decoding is inherently serial per image, and the resize of one image to 416x416 costs a few
 * milliseconds here (two separable passes over typed arrays, precomputed source indices and weights, no
 * per-pixel allocation), well below a network forward on any adapter; the result is uploaded once as the
 * input tensor.
 *
 * Semantics (AlexeyAB/darknet src/image.c, src/yolo_layer.c):
 * - 8-bit samples v map to v/255. Alpha is dropped (stb_image loading 3 channels), grey is replicated to
 *   RGB. 16-bit PNGs are reduced to 8 bits by pngjs (rounded; stb_image truncates, at most 1/255 apart);
 *   EXIF orientation is ignored, as Darknet does.
 * - resize_image: separable bilinear with the corner-aligned scale (src-1)/(dst-1): first along x into an
 *   intermediate [C, srcH, dstW], the last column taking the last source pixel; then along y. Darknet
 *   computes the source row r·scale in float32, which can land a hair below an integer; here it is the
 *   exact r·(srcH-1)/(dstH-1) in float64 (identical except in those rounding cases).
 * - letterbox_image: if netW/imgW < netH/imgH (float32 compare) the image is resized to netW x
 *   floor(imgH·netW/imgW), else to floor(imgW·netH/imgH) x netH, and pasted at integer offset
 *   ((netW-newW)/2, (netH-newH)/2) onto 0.5 grey.
 * - correct_yolo_boxes: with letterbox, x' = (x - (netW-newW)/2/netW) / (newW/netW) and w' = w·netW/newW
 *   (likewise y, h); without, boxes are unchanged (normalised coordinates survive a stretch). Note that
 *   Darknet removes the padding as (netW-newW)/2 in float while the paste used the integer half; the
 *   mapping follows Darknet so detections agree with it (a half-pixel shift when netW-newW is odd).
 *
 * Decompression bombs: a PNG or JPEG of a few hundred bytes can declare 20000x20000 pixels, and decoding it
 * allocates gigabytes (the decoder's pixels, then 12 bytes a pixel of float RGB). decodeImage reads the size
 * the file declares (PNG IHDR, JPEG SOFn; imageDimensions) before anything is decoded and refuses an image
 * over `maxPixels` (DEFAULT_MAX_PIXELS, the environment variable YOLO_WGSL_MAX_PIXELS, or the option) with
 * an ImageError of code 'IMAGE_TOO_LARGE'. An interlaced PNG, which pngjs inflates without a bound, has its
 * compressed data inflated once more with a cap at the size its header implies (a zlib bomb inside an image
 * of honest size).
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import type { Box } from '../yolo/box.js';

/** A planar float image: data[c*height*width + y*width + x], values in [0, 1]. */
export interface Image {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

export type ImageFormat = 'png' | 'jpeg';

export function makeImage(width: number, height: number, channels = 3, fill = 0): Image {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new Error(`invalid image size ${width}x${height}`);
  const data = new Float32Array(width * height * channels);
  if (fill !== 0) data.fill(fill);
  return { width, height, channels, data };
}

/** The format from the file's magic bytes (null when neither PNG nor JPEG). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Planar RGB from interleaved 8-bit samples (stride `step` bytes per pixel, RGB in the first three). */
export function fromInterleaved(src: Uint8Array, width: number, height: number, step: number): Image {
  const im = makeImage(width, height, 3);
  const n = width * height;
  const d = im.data;
  const inv = 1 / 255;
  for (let i = 0, o = 0; i < n; i++, o += step) {
    d[i] = src[o] * inv;
    d[n + i] = src[o + 1] * inv;
    d[2 * n + i] = src[o + 2] * inv;
  }
  return im;
}

// ---------------------------------------------------------------- limits and headers

/**
 * The default largest image decoded, in pixels (width x height): 64 megapixels (67,108,864 = 8192x8192).
 *
 * Other libraries' decompression-bomb guards: Pillow refuses past MAX_IMAGE_PIXELS (89,478,485, a 1 GiB
 * budget at 4 bytes x 3 per pixel; it warns past that and raises past twice that), sharp past limitInputPixels
 * (268,402,689 = 0x3FFF², but libvips streams and never holds a whole decoded image). This follows Pillow's
 * approach (a pixel count, checked from the header before decoding, a hard error) with a somewhat lower
 * number because the whole image is held here, several times over: pngjs's RGBA (4 bytes a pixel, plus the
 * inflated rows) or jpeg-js's coefficient blocks (up to ~30 bytes a pixel), then the planar float RGB (12
 * bytes a pixel); 64 megapixels peaks at about 1 GiB for a PNG, which is what Pillow budgets, and is well
 * above any camera photo a detector is fed (a 50-megapixel sensor fits).
 */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

/** The environment variable that sets the pixel limit where no `maxPixels` option is given. */
export const MAX_PIXELS_ENV = 'YOLO_WGSL_MAX_PIXELS';

/**
 * jpeg-js's own memory cap, from the pixel limit: bytes per pixel of its worst case (4 components of Int32
 * coefficient blocks at 16 bytes, component lines, the colour-converted and the returned pixels), so a JPEG
 * under the pixel limit is never refused by jpeg-js for memory, and none much over it is decoded.
 */
const JPEG_BYTES_PER_PIXEL = 32;

/**
 * - 'IMAGE_TOO_LARGE': the declared width x height is over the pixel limit (`width`, `height`, `limit`).
 * - 'IMAGE_FORMAT': neither PNG nor JPEG.
 * - 'IMAGE_INVALID': a PNG / JPEG that cannot be decoded: truncated, corrupt, zero width or height.
 * - 'IMAGE_UNREADABLE': the file cannot be read (missing, a directory, no permission).
 */
export type ImageErrorCode = 'IMAGE_TOO_LARGE' | 'IMAGE_FORMAT' | 'IMAGE_INVALID' | 'IMAGE_UNREADABLE';

/** An image that cannot be read, decoded or is over the pixel limit; the message starts with `file: `. */
export class ImageError extends Error {
  readonly code: ImageErrorCode;
  /** The path, or the name the bytes were given ('image' by default). */
  readonly file: string;
  /** The size the file declares, when known. */
  readonly width?: number;
  readonly height?: number;
  /** The pixel limit in force ('IMAGE_TOO_LARGE'). */
  readonly limit?: number;
  constructor(code: ImageErrorCode, file: string, message: string, extra: { width?: number; height?: number; limit?: number; cause?: unknown } = {}) {
    super(`${file}: ${message}`, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'ImageError';
    this.code = code;
    this.file = file;
    this.width = extra.width;
    this.height = extra.height;
    this.limit = extra.limit;
  }
}

export interface DecodeImageOptions {
  /**
   * The largest image decoded, in pixels (width x height, as the file declares it); default: the environment
   * variable YOLO_WGSL_MAX_PIXELS, else DEFAULT_MAX_PIXELS (64 megapixels). `Infinity` turns the check off.
   */
  maxPixels?: number;
}

/**
 * The pixel limit in force: `maxPixels` when given (a positive integer or Infinity), else the environment
 * variable YOLO_WGSL_MAX_PIXELS (a positive integer; empty counts as unset), else DEFAULT_MAX_PIXELS.
 * Throws a RangeError naming the option or the variable when it is not a positive integer.
 */
export function resolveMaxPixels(maxPixels?: number): number {
  if (maxPixels !== undefined) {
    if (maxPixels === Infinity || (Number.isSafeInteger(maxPixels) && maxPixels > 0)) return maxPixels;
    throw new RangeError(`maxPixels: expected a positive integer number of pixels (or Infinity for no limit), got ${String(maxPixels)}`);
  }
  const env = typeof process !== 'undefined' ? process.env?.[MAX_PIXELS_ENV] : undefined;
  if (env === undefined || env.trim() === '') return DEFAULT_MAX_PIXELS;
  const v = env.trim();
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n <= 0) {
    throw new RangeError(`${MAX_PIXELS_ENV}=${JSON.stringify(env)}: expected a positive integer number of pixels (e.g. 100000000); unset it for the default ${DEFAULT_MAX_PIXELS}`);
  }
  return n;
}

/** "400.0 megapixels", or "1200 pixels" for sizes under a tenth of a megapixel. */
export function formatPixels(n: number): string {
  return n >= 1e5 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}

/**
 * Refuses a size with no pixels (ImageError 'IMAGE_INVALID') or over the limit (ImageError
 * 'IMAGE_TOO_LARGE', naming the size, the limit and how to raise it). `maxPixels` as in resolveMaxPixels.
 */
export function checkImageSize(name: string, width: number, height: number, maxPixels?: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ImageError('IMAGE_INVALID', name, `image is ${width}x${height}: no pixels`, { width, height });
  }
  const limit = resolveMaxPixels(maxPixels);
  const pixels = width * height;
  if (pixels > limit) {
    throw new ImageError('IMAGE_TOO_LARGE', name,
      `image is ${width}x${height} (${formatPixels(pixels)}), over the limit of ${formatPixels(limit)} (${limit} pixels; raise it with the maxPixels option or the environment variable ${MAX_PIXELS_ENV})`,
      { width, height, limit });
  }
}

/** The size an image file declares in its header. */
export interface ImageDimensions {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const u16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u32 = (b: Uint8Array, i: number) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));

/**
 * The width and height a PNG (IHDR) or JPEG (the first SOFn frame header) declares, read from the header
 * without decoding anything; null when the bytes are neither PNG nor JPEG. Zero sizes are returned as they
 * are (checkImageSize refuses them). A truncated or corrupt header throws an ImageError 'IMAGE_INVALID'
 * whose message starts `name: cannot decode PNG|JPEG: `.
 */
export function imageDimensions(bytes: Uint8Array, name = 'image'): ImageDimensions | null {
  const fmt = sniffFormat(bytes);
  if (fmt === 'png') return pngDimensions(bytes, name);
  if (fmt === 'jpeg') return jpegDimensions(bytes, name);
  return null;
}

function badHeader(name: string, fmt: ImageFormat, why: string): ImageError {
  return new ImageError('IMAGE_INVALID', name, `cannot decode ${fmt.toUpperCase()}: ${why}`);
}

function pngDimensions(b: Uint8Array, name: string): ImageDimensions {
  if (PNG_SIGNATURE.some((v, i) => b[i] !== v)) throw badHeader(name, 'png', 'damaged PNG signature');
  // signature (8), then the IHDR chunk: length (4) = 13, type (4), width (4), height (4), ...
  if (b.length < 24) throw badHeader(name, 'png', `truncated: ${b.length} bytes, the header (IHDR) needs 24`);
  if (ascii(b, 12, 4) !== 'IHDR') throw badHeader(name, 'png', `the first chunk is ${JSON.stringify(ascii(b, 12, 4))}, not IHDR`);
  if (u32(b, 8) !== 13) throw badHeader(name, 'png', `IHDR chunk of ${u32(b, 8)} bytes (13 expected)`);
  return { format: 'png', width: u32(b, 16), height: u32(b, 20) };
}

function jpegDimensions(b: Uint8Array, name: string): ImageDimensions {
  let pos = 2; // after SOI
  const truncated = () => badHeader(name, 'jpeg', `truncated before the frame header (SOF) at byte ${pos} of ${b.length}`);
  for (;;) {
    if (pos >= b.length) throw truncated();
    if (b[pos] !== 0xff) throw badHeader(name, 'jpeg', `marker expected at byte ${pos}, found 0x${b[pos].toString(16).padStart(2, '0')}`);
    while (pos + 1 < b.length && b[pos + 1] === 0xff) pos++; // fill bytes before a marker
    if (pos + 1 >= b.length) throw truncated();
    const marker = b[pos + 1];
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      pos += 2; // standalone: SOI, TEM, RSTn
      continue;
    }
    if (marker === 0xd9) throw badHeader(name, 'jpeg', 'end of image (EOI) before a frame header (SOF)');
    if (marker === 0xda) throw badHeader(name, 'jpeg', 'scan data (SOS) before a frame header (SOF)');
    if (marker === 0x00) throw badHeader(name, 'jpeg', `stray 0xFF00 at byte ${pos}`);
    if (pos + 4 > b.length) throw truncated();
    const len = u16(b, pos + 2);
    if (len < 2) throw badHeader(name, 'jpeg', `segment length ${len} at byte ${pos}`);
    // SOF0..SOF15 carry the frame size; 0xC4 (DHT), 0xC8 (JPG), 0xCC (DAC) share the range and do not
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // length (2), precision (1), height (2), width (2)
      if (len < 7) throw badHeader(name, 'jpeg', `frame header (SOF) of ${len} bytes`);
      if (pos + 9 > b.length) throw truncated();
      return { format: 'jpeg', width: u16(b, pos + 7), height: u16(b, pos + 5) };
    }
    pos += 2 + len;
  }
}

/** Bytes of a PNG's filtered image data: one filter byte a row, per Adam7 pass when interlaced. */
function pngDataSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (Math.ceil((w * bitsPerPixel) / 8) + 1) : 0);
  if (!interlaced) return rows(width, height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  let n = 0;
  for (const [x0, y0, dx, dy] of passes) n += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return n;
}

/**
 * pngjs inflates an interlaced PNG's data without a bound (zlib.inflateSync): inflate it here first with the
 * output capped at what the header implies, so a zlib bomb in an image of honest size throws instead of
 * allocating gigabytes. Non-interlaced PNGs need nothing: pngjs caps their inflate itself.
 */
function guardInterlacedPng(b: Uint8Array, name: string, width: number, height: number): void {
  if (b.length < 29 || b[28] !== 1) return; // IHDR interlace method (byte 28): 1 = Adam7
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[b[25]];
  if (!channels) return; // pngjs refuses the colour type itself
  const limit = pngDataSize(width, height, channels * b[24], true);
  const idat: Uint8Array[] = [];
  for (let pos = 8; pos + 8 <= b.length;) {
    const len = u32(b, pos);
    const type = ascii(b, pos + 4, 4);
    if (type === 'IDAT') idat.push(b.subarray(pos + 8, Math.min(b.length, pos + 8 + len)));
    if (type === 'IEND') break;
    pos += 12 + len;
  }
  try {
    zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: Math.max(1, limit) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw badHeader(name, 'png', `the compressed image data inflates past the ${limit} bytes a ${width}x${height} interlaced image holds (a decompression bomb?)`);
    }
    // other inflate errors: pngjs reports them
  }
}

export function decodePng(bytes: Uint8Array): Image {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return fromInterleaved(png.data, png.width, png.height, 4);
}

/**
 * Baseline and progressive JPEG (jpeg-js); grey JPEGs come out as RGB. `maxResolutionInMP` /
 * `maxMemoryUsageInMB` are jpeg-js's own caps (defaults: from DEFAULT_MAX_PIXELS).
 */
export function decodeJpeg(bytes: Uint8Array, opts: { maxResolutionInMP?: number; maxMemoryUsageInMB?: number } = {}): Image {
  const caps = jpegCaps(DEFAULT_MAX_PIXELS);
  const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: opts.maxResolutionInMP ?? caps.maxResolutionInMP, maxMemoryUsageInMB: opts.maxMemoryUsageInMB ?? caps.maxMemoryUsageInMB });
  return fromInterleaved(j.data, j.width, j.height, 3);
}

/** jpeg-js's caps consistent with a pixel limit (its resolution cap is in units of 10^6 pixels). */
function jpegCaps(maxPixels: number): { maxResolutionInMP: number; maxMemoryUsageInMB: number } {
  if (maxPixels === Infinity) return { maxResolutionInMP: Infinity, maxMemoryUsageInMB: Infinity };
  return { maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: Math.max(64, Math.ceil((maxPixels * JPEG_BYTES_PER_PIXEL) / 2 ** 20)) };
}

/**
 * Decodes PNG or JPEG by magic bytes; `name` only labels errors. The size the header declares is checked
 * against `opts.maxPixels` (see resolveMaxPixels) before decoding. Throws ImageError: 'IMAGE_FORMAT',
 * 'IMAGE_INVALID' (truncated, corrupt, no pixels), 'IMAGE_TOO_LARGE'.
 */
export function decodeImage(bytes: Uint8Array, name = 'image', opts: DecodeImageOptions = {}): Image {
  const limit = resolveMaxPixels(opts.maxPixels);
  const dims = imageDimensions(bytes, name);
  if (!dims) throw new ImageError('IMAGE_FORMAT', name, 'not a PNG or JPEG file (supported formats: .png, .jpg/.jpeg)');
  const fmt = dims.format;
  checkImageSize(name, dims.width, dims.height, limit);
  if (fmt === 'png') guardInterlacedPng(bytes, name, dims.width, dims.height);
  let im: Image;
  try {
    im = fmt === 'png' ? decodePng(bytes) : decodeJpeg(bytes, jpegCaps(limit));
  } catch (e) {
    throw new ImageError('IMAGE_INVALID', name, `cannot decode ${fmt.toUpperCase()}: ${(e as Error).message}`, { width: dims.width, height: dims.height, cause: e });
  }
  // the decoders read the same header; a later frame header of another size would have been decoded
  if (im.width * im.height > limit) checkImageSize(name, im.width, im.height, limit);
  return im;
}

/** The bytes of an image file; ImageError 'IMAGE_UNREADABLE' naming the path when it cannot be read. */
export function readImageFile(file: string): Uint8Array {
  const fail = (e: unknown): ImageError => {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not an image'
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : `cannot read: ${(e as Error).message}`;
    return new ImageError('IMAGE_UNREADABLE', file, why, { cause: e });
  };
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw fail(e);
  }
  if (st.isDirectory()) throw new ImageError('IMAGE_UNREADABLE', file, 'is a directory, not an image');
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw fail(e);
  }
}

/** Reads and decodes a PNG or JPEG file (decodeImage; the path labels errors). */
export function loadImage(file: string, opts: DecodeImageOptions = {}): Image {
  return decodeImage(readImageFile(file), file, opts);
}

export function copyImage(im: Image): Image {
  return { width: im.width, height: im.height, channels: im.channels, data: im.data.slice() };
}

/** Darknet resize_image (see the file comment). Returns a new image (a copy when the size is unchanged). */
export function resizeImage(im: Image, w: number, h: number): Image {
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) throw new Error(`invalid resize target ${w}x${h}`);
  if (im.width === w && im.height === h) return copyImage(im);
  const W = im.width;
  const H = im.height;
  const C = im.channels;
  const src = im.data;
  // pass 1: along x into part [C, H, w]
  const ix = new Int32Array(w);
  const fx = new Float64Array(w);
  for (let c = 0; c < w; c++) {
    if (c === w - 1 || W === 1) {
      ix[c] = W - 1;
      fx[c] = -1; // take the pixel as is
    } else {
      const sx = (c * (W - 1)) / (w - 1);
      ix[c] = Math.floor(sx);
      fx[c] = sx - ix[c];
    }
  }
  const part = new Float32Array(C * H * w);
  for (let k = 0; k < C; k++) {
    for (let r = 0; r < H; r++) {
      const s = (k * H + r) * W;
      const o = (k * H + r) * w;
      for (let c = 0; c < w; c++) {
        const dx = fx[c];
        const i = s + ix[c];
        part[o + c] = dx < 0 ? src[i] : (1 - dx) * src[i] + dx * src[i + 1];
      }
    }
  }
  // pass 2: along y
  const out = makeImage(w, h, C);
  const dst = out.data;
  for (let r = 0; r < h; r++) {
    const sy = h === 1 ? 0 : (r * (H - 1)) / (h - 1);
    const iy = Math.floor(sy);
    const dy = sy - iy;
    const last = r === h - 1 || H === 1;
    for (let k = 0; k < C; k++) {
      const p0 = (k * H + iy) * w;
      const o = (k * h + r) * w;
      if (last) {
        for (let c = 0; c < w; c++) dst[o + c] = (1 - dy) * part[p0 + c];
      } else {
        const p1 = p0 + w;
        for (let c = 0; c < w; c++) dst[o + c] = (1 - dy) * part[p0 + c] + dy * part[p1 + c];
      }
    }
  }
  return out;
}

/** Where an image lands in the network input (for letterbox and the inverse box mapping). */
export interface Placement {
  imageWidth: number;
  imageHeight: number;
  netWidth: number;
  netHeight: number;
  letterbox: boolean;
  /** Size of the resized image inside the input (the input size without letterbox). */
  newWidth: number;
  newHeight: number;
  /** Integer offset of the pasted image (0 without letterbox). */
  dx: number;
  dy: number;
}

/** Darknet's letterbox arithmetic (letterbox_image / correct_yolo_boxes). */
export function placement(imageWidth: number, imageHeight: number, netWidth: number, netHeight: number, letterbox: boolean): Placement {
  let newWidth = netWidth;
  let newHeight = netHeight;
  if (letterbox) {
    if (Math.fround(netWidth / imageWidth) < Math.fround(netHeight / imageHeight)) {
      newWidth = netWidth;
      newHeight = Math.floor((imageHeight * netWidth) / imageWidth);
    } else {
      newHeight = netHeight;
      newWidth = Math.floor((imageWidth * netHeight) / imageHeight);
    }
  }
  return {
    imageWidth, imageHeight, netWidth, netHeight, letterbox, newWidth, newHeight,
    dx: Math.floor((netWidth - newWidth) / 2),
    dy: Math.floor((netHeight - newHeight) / 2),
  };
}

/** Darknet letterbox_image: aspect-preserving resize pasted onto 0.5 grey. */
export function letterboxImage(im: Image, w: number, h: number): Image {
  const p = placement(im.width, im.height, w, h, true);
  const resized = resizeImage(im, p.newWidth, p.newHeight);
  const out = makeImage(w, h, im.channels, 0.5);
  for (let k = 0; k < im.channels; k++) {
    for (let y = 0; y < p.newHeight; y++) {
      const s = (k * p.newHeight + y) * p.newWidth;
      out.data.set(resized.data.subarray(s, s + p.newWidth), (k * h + y + p.dy) * w + p.dx);
    }
  }
  return out;
}

/** The network input for an image: letterboxed or stretched (Darknet's default), and its placement. */
export function prepareImage(im: Image, netWidth: number, netHeight: number, letterbox = false): { image: Image; placement: Placement } {
  const p = placement(im.width, im.height, netWidth, netHeight, letterbox);
  return { image: letterbox ? letterboxImage(im, netWidth, netHeight) : resizeImage(im, netWidth, netHeight), placement: p };
}

/** A box normalised to the network input -> normalised to the original image (Darknet correct_yolo_boxes, relative). */
export function boxToImage(b: Box, p: Placement): Box {
  if (!p.letterbox) return { ...b };
  const rw = p.newWidth / p.netWidth;
  const rh = p.newHeight / p.netHeight;
  return {
    x: (b.x - (p.netWidth - p.newWidth) / 2 / p.netWidth) / rw,
    y: (b.y - (p.netHeight - p.newHeight) / 2 / p.netHeight) / rh,
    w: b.w / rw,
    h: b.h / rh,
  };
}

/** The inverse of boxToImage: a box normalised to the image -> normalised to the network input. */
export function boxToNet(b: Box, p: Placement): Box {
  if (!p.letterbox) return { ...b };
  const rw = p.newWidth / p.netWidth;
  const rh = p.newHeight / p.netHeight;
  return {
    x: b.x * rw + (p.netWidth - p.newWidth) / 2 / p.netWidth,
    y: b.y * rh + (p.netHeight - p.newHeight) / 2 / p.netHeight,
    w: b.w * rw,
    h: b.h * rh,
  };
}

/** Pixel corners of a box normalised to an image of width x height, clipped to the image when `clip`. */
export function boxToPixels(b: Box, width: number, height: number, clip = true): { x1: number; y1: number; x2: number; y2: number } {
  let x1 = (b.x - b.w / 2) * width;
  let y1 = (b.y - b.h / 2) * height;
  let x2 = (b.x + b.w / 2) * width;
  let y2 = (b.y + b.h / 2) * height;
  if (clip) {
    x1 = Math.min(Math.max(x1, 0), width);
    x2 = Math.min(Math.max(x2, 0), width);
    y1 = Math.min(Math.max(y1, 0), height);
    y2 = Math.min(Math.max(y2, 0), height);
  }
  return { x1, y1, x2, y2 };
}

/** Packs same-sized images into one NCHW batch (the network input tensor's data). */
export function toBatch(images: readonly Image[], into?: Float32Array): Float32Array {
  if (images.length === 0) throw new Error('toBatch: no images');
  const { width, height, channels } = images[0];
  const n = width * height * channels;
  const out = into ?? new Float32Array(n * images.length);
  if (out.length < n * images.length) throw new Error(`toBatch: buffer of ${out.length} values for ${images.length} images of ${n}`);
  images.forEach((im, i) => {
    if (im.width !== width || im.height !== height || im.channels !== channels) throw new Error(`toBatch: image ${i} is ${im.width}x${im.height}x${im.channels}, expected ${width}x${height}x${channels}`);
    out.set(im.data, i * n);
  });
  return out;
}
