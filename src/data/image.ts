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
 */
import fs from 'node:fs';
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

export function decodePng(bytes: Uint8Array): Image {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return fromInterleaved(png.data, png.width, png.height, 4);
}

/** Baseline and progressive JPEG (jpeg-js); grey JPEGs come out as RGB. */
export function decodeJpeg(bytes: Uint8Array, opts: { maxResolutionInMP?: number; maxMemoryUsageInMB?: number } = {}): Image {
  const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: opts.maxResolutionInMP ?? 100, maxMemoryUsageInMB: opts.maxMemoryUsageInMB ?? 1024 });
  return fromInterleaved(j.data, j.width, j.height, 3);
}

/** Decodes PNG or JPEG by magic bytes; `name` only labels errors. */
export function decodeImage(bytes: Uint8Array, name = 'image'): Image {
  const fmt = sniffFormat(bytes);
  if (!fmt) throw new Error(`${name}: not a PNG or JPEG file (supported formats: .png, .jpg/.jpeg)`);
  try {
    return fmt === 'png' ? decodePng(bytes) : decodeJpeg(bytes);
  } catch (e) {
    throw new Error(`${name}: cannot decode ${fmt.toUpperCase()}: ${(e as Error).message}`);
  }
}

export function loadImage(file: string): Image {
  return decodeImage(fs.readFileSync(file), file);
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
