/**
 * Drawing detections onto an RGBA8 image and writing it as PNG (pngjs) or JPEG, CPU only.
 *
 * - Class colours follow Darknet's draw_detections: offset = class·123457 mod classes, and each channel is
 *   get_color's interpolation over six anchor colours (magenta, red, yellow, green, cyan, blue in RGB).
 * - Boxes: `width` nested rectangles drawn inward from the box edges (Darknet draw_box_width), width
 *   scaled to the image (about min(w, h)/250, at least 1) unless given; exact pixels, no smoothing.
 * - Labels: "name 0.87" in DejaVu Sans (src/viz/font.ts, anti-aliased), its size scaled to the image
 *   (3% of the mean side, at least 11 px, as Ultralytics' 3.5%), on a filled background of the class colour
 *   above the box (inside it when there is no room above), moved left to stay in the image and clipped at
 *   its borders when wider; text black or white by the colour's luminance.
 */
import { PNG } from 'pngjs';
import type { Image } from '../data/image.js';
import { writeFileAtomic } from '../util/fs.js';
import { Painter } from './painter.js';

/** Interleaved RGBA, 8 bits per sample. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** [r, g, b], 0..255. */
export type Color = readonly [number, number, number];

export function makeRgba(width: number, height: number, fill: Color = [0, 0, 0]): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[4 * i] = fill[0];
    data[4 * i + 1] = fill[1];
    data[4 * i + 2] = fill[2];
    data[4 * i + 3] = 255;
  }
  return { width, height, data };
}

/** A planar float image in [0, 1] (src/data/image.ts) as RGBA8 (rounded, clamped; grey if one channel). */
export function imageToRgba(im: Image): RgbaImage {
  const n = im.width * im.height;
  const out = new Uint8Array(n * 4);
  const c1 = im.channels > 1 ? n : 0;
  const c2 = im.channels > 2 ? 2 * n : c1;
  const d = im.data;
  const q = (v: number) => (v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255));
  for (let i = 0; i < n; i++) {
    out[4 * i] = q(d[i]);
    out[4 * i + 1] = q(d[c1 + i]);
    out[4 * i + 2] = q(d[c2 + i]);
    out[4 * i + 3] = 255;
  }
  return { width: im.width, height: im.height, data: out };
}

// Darknet's colour table, per entry [c0, c1, c2]; draw_detections reads red from c2, green c1, blue c0.
const DARKNET_COLORS = [[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]];

function getColor(c: number, x: number, max: number): number {
  let ratio = (x / max) * 5;
  const i = Math.floor(ratio);
  const j = Math.ceil(ratio);
  ratio -= i;
  return (1 - ratio) * DARKNET_COLORS[i][c] + ratio * DARKNET_COLORS[j][c];
}

/** The colour Darknet gives class `classId` of `classes`. */
export function classColor(classId: number, classes: number): Color {
  const n = Math.max(1, classes);
  const offset = (classId * 123457) % n;
  return [Math.round(getColor(2, offset, n) * 255), Math.round(getColor(1, offset, n) * 255), Math.round(getColor(0, offset, n) * 255)];
}

/** Fills the pixels x1..x2, y1..y2 (inclusive integers, clipped to the image). */
export function fillRect(img: RgbaImage, x1: number, y1: number, x2: number, y2: number, c: Color): void {
  const xa = Math.max(0, Math.round(x1));
  const xb = Math.min(img.width - 1, Math.round(x2));
  const ya = Math.max(0, Math.round(y1));
  const yb = Math.min(img.height - 1, Math.round(y2));
  for (let y = ya; y <= yb; y++) {
    let o = (y * img.width + xa) * 4;
    for (let x = xa; x <= xb; x++, o += 4) {
      img.data[o] = c[0];
      img.data[o + 1] = c[1];
      img.data[o + 2] = c[2];
      img.data[o + 3] = 255;
    }
  }
}

/** A rectangle outline with corners (x1, y1), (x2, y2) (inclusive pixels, clipped), `width` pixels thick inward. */
export function drawBox(img: RgbaImage, x1: number, y1: number, x2: number, y2: number, c: Color, width = 1): void {
  const l = Math.round(Math.min(x1, x2));
  const r = Math.round(Math.max(x1, x2));
  const t = Math.round(Math.min(y1, y2));
  const b = Math.round(Math.max(y1, y2));
  const w = Math.max(1, Math.min(Math.round(width), Math.floor((r - l) / 2) + 1, Math.floor((b - t) / 2) + 1));
  fillRect(img, l, t, r, t + w - 1, c);
  fillRect(img, l, b - w + 1, r, b, c);
  fillRect(img, l, t, l + w - 1, b, c);
  fillRect(img, r - w + 1, t, r, b, c);
}

/** A detection to draw: pixel corners in the image (x2, y2 exclusive edges as from boxToPixels). */
export interface DrawItem {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  classId: number;
  score: number;
  /** Overrides "name score". */
  label?: string;
}

export interface DrawOptions {
  /** Class names (labels fall back to the class number). */
  names?: readonly string[];
  /** Number of classes for the colours (default names.length, else 80). */
  classes?: number;
  /** Box line width in pixels (default max(1, round(min(w, h)/250))). */
  lineWidth?: number;
  /** Label font size in pixels (default labelFontPx of the image). */
  fontPx?: number;
}

export function defaultLineWidth(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 250));
}

/** Label text size for an image: 3% of the mean side, at least 11 px (Ultralytics' Annotator uses 3.5%, at least 12). */
export function labelFontPx(width: number, height: number): number {
  return Math.max(11, Math.round(((width + height) / 2) * 0.03));
}

/** Luminance-picked text colour on a background colour. */
export function textOn(c: Color): Color {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? [0, 0, 0] : [255, 255, 255];
}

/** The box a label of `text` at `px` occupies: text plus a padding of px/5 (whole pixels). */
export function labelSize(p: Painter, text: string, px: number): { width: number; height: number; pad: number } {
  const m = p.measure(text, px);
  const pad = Math.max(1, Math.round(px / 5));
  return { width: Math.ceil(m.width) + 2 * pad, height: Math.ceil(m.ascent + m.descent) + 2 * pad, pad };
}

/**
 * Draws a label for a box whose top-left pixel is (x1, y1): above the box when it fits in `bounds` (default
 * the image), else inside below its top edge (`inset` pixels down); moved left to stay in bounds; clipped
 * at the image's borders when wider.
 */
export function drawLabel(p: Painter, text: string, x1: number, y1: number, color: Color, px: number, inset = 0, bounds?: { x: number; y: number; w: number; h: number }): { x: number; y: number; w: number; h: number } {
  const b = bounds ?? { x: 0, y: 0, w: p.width, h: p.height };
  const sz = labelSize(p, text, px);
  let ly = y1 - sz.height;
  if (ly < b.y) ly = y1 + inset;
  let lx = x1;
  if (lx + sz.width > b.x + b.w) lx = Math.max(b.x, b.x + b.w - sz.width);
  p.rect(lx, ly, sz.width, sz.height, { fill: color });
  p.text(text, lx + sz.pad, ly + sz.pad, { px, baseline: 'top', color: textOn(color), role: 'label' });
  return { x: lx, y: ly, w: sz.width, h: sz.height };
}

/** The label of an item: its own, or "name 0.87". */
export function labelOf(d: DrawItem, names?: readonly string[]): string {
  if (d.label !== undefined) return d.label;
  const name = names?.[d.classId] ?? String(d.classId);
  return `${name} ${d.score.toFixed(2)}`;
}

/** Draws boxes and labels (lowest score first, so the best ends on top), in place. */
export function drawDetections(img: RgbaImage, items: readonly DrawItem[], opts: DrawOptions = {}): void {
  if (!items.length) return;
  const classes = opts.classes ?? (opts.names?.length || 80);
  const lw = Math.max(1, Math.round(opts.lineWidth ?? defaultLineWidth(img.width, img.height)));
  const px = opts.fontPx ?? labelFontPx(img.width, img.height);
  const order = [...items].sort((a, b) => a.score - b.score);
  // boxes as exact pixels (whole-pixel rectangles), labels with anti-aliased text, in score order
  const p = Painter.over(img);
  for (const d of order) {
    const color = classColor(d.classId, classes);
    const x1 = Math.max(0, Math.min(img.width - 1, Math.floor(d.x1)));
    const y1 = Math.max(0, Math.min(img.height - 1, Math.floor(d.y1)));
    const x2 = Math.max(0, Math.min(img.width - 1, Math.ceil(d.x2) - 1));
    const y2 = Math.max(0, Math.min(img.height - 1, Math.ceil(d.y2) - 1));
    const w = Math.min(lw, Math.floor((x2 - x1) / 2) + 1, Math.floor((y2 - y1) / 2) + 1);
    p.rect(x1, y1, x2 - x1 + 1, w, { fill: color });
    p.rect(x1, y2 - w + 1, x2 - x1 + 1, w, { fill: color });
    p.rect(x1, y1, w, y2 - y1 + 1, { fill: color });
    p.rect(x2 - w + 1, y1, w, y2 - y1 + 1, { fill: color });
    drawLabel(p, labelOf(d, opts.names), x1, y1, color, px, w);
  }
  img.data.set(p.toRgba().data);
}

/** JPEG bytes of an RGBA image at `quality` (0..100). */
export function encodeJpeg(img: RgbaImage, quality = 90): Buffer {
  return Painter.over(img).jpeg(quality);
}

/** Writes the image as JPEG atomically. */
export function writeJpeg(file: string, img: RgbaImage, quality = 90): void {
  writeFileAtomic(file, encodeJpeg(img, quality));
}

/**
 * Writes a picture atomically as PNG or JPEG (by the file's extension: .jpg / .jpeg, else PNG), encoded
 * by the rasterizer (Skia; PNG without row filters, which suits flat-coloured charts: ~7x faster than
 * pngjs here and smaller).
 */
export function writeImage(file: string, img: RgbaImage, jpegQuality = 90): void {
  const p = Painter.over(img);
  writeFileAtomic(file, /\.jpe?g$/i.test(file) ? p.jpeg(jpegQuality) : p.canvas.encodeSync('png', { filters: 0x08 }));
}

/** PNG bytes (RGB, 8-bit) of an RGBA image. */
export function encodePng(img: RgbaImage): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 6 });
}

/** Writes the image as PNG atomically (temporary file, fsync, rename). */
export function writePng(file: string, img: RgbaImage): void {
  writeFileAtomic(file, encodePng(img));
}
