/**
 * A canvas (src/viz/font.ts: Skia through @napi-rs/canvas, DejaVu Sans) with the few primitives the plots
 * and overlays use, anti-aliased, and a record of every text drawn: its string and the box it occupies
 * (advance width x font ascent + descent, rotated when the text is), so tests can check that each label
 * has ink where it says, stays inside the picture and overlaps no other.
 */
import { createCanvas2d, fontSpec, measureText, type CanvasObject, type Context2D, type TextMetrics } from './font.js';
import type { Color, RgbaImage } from './draw.js';

/** An axis-aligned rectangle in pixels. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A text drawn: the string and its layout box in image pixels. */
export interface TextBox extends Rect {
  text: string;
  /** Font size in pixels. */
  px: number;
  /** Drawn rotated 90° counter-clockwise (reads bottom to top). */
  vertical: boolean;
  /** What the text is (a caller's tag: 'title', 'xtick', 'legend', ...). */
  role: string;
  /** The text colour (CSS). */
  color: string;
}

/** A rendered picture with what was drawn on it. */
export interface Figure extends RgbaImage {
  texts: TextBox[];
  /** The plot areas (inside the axes frames), in drawing order. */
  axes: Rect[];
}

export type Align = 'left' | 'center' | 'right';
export type Baseline = 'top' | 'middle' | 'bottom' | 'alphabetic';

export interface TextOptions {
  px: number;
  bold?: boolean;
  color?: Color | string;
  align?: Align;
  baseline?: Baseline;
  /** Rotated 90° counter-clockwise; (x, y) is then the centre of the rotated box. */
  vertical?: boolean;
  /** Recorded role (default 'text'); `null`: not recorded. */
  role?: string | null;
}

export interface StrokeStyle {
  color: Color | string;
  /** Line width in pixels (default 1). */
  width?: number;
  /** Dash pattern in pixels (solid when absent). */
  dash?: number[];
  alpha?: number;
}

/** CSS colour of an [r, g, b] (with alpha when given). */
export function css(c: Color | string, alpha?: number): string {
  if (typeof c === 'string') return c;
  return alpha === undefined || alpha >= 1 ? `rgb(${c[0]},${c[1]},${c[2]})` : `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

export class Painter {
  readonly canvas: CanvasObject;
  readonly ctx: Context2D;
  readonly texts: TextBox[] = [];
  readonly axes: Rect[] = [];

  constructor(width: number, height: number, background: Color | string | null = [255, 255, 255]) {
    const c = createCanvas2d(width, height, background === null ? null : css(background));
    this.canvas = c.canvas;
    this.ctx = c.ctx;
  }

  /** A painter over a copy of `img` (draw, then toRgba()). */
  static over(img: RgbaImage): Painter {
    const p = new Painter(img.width, img.height, null);
    const id = p.ctx.createImageData(img.width, img.height);
    id.data.set(img.data);
    p.ctx.putImageData(id, 0, 0);
    return p;
  }

  get width(): number {
    return this.canvas.width;
  }

  get height(): number {
    return this.canvas.height;
  }

  measure(text: string, px: number, bold = false): TextMetrics {
    return measureText(text, px, bold);
  }

  /** The box `text` would occupy when drawn at (x, y) with these options. */
  textBox(text: string, x: number, y: number, o: TextOptions): Rect {
    const m = this.measure(text, o.px, o.bold);
    const h = m.ascent + m.descent;
    if (o.vertical) return { x: x - h / 2, y: y - m.width / 2, w: h, h: m.width };
    const left = o.align === 'center' ? x - m.width / 2 : o.align === 'right' ? x - m.width : x;
    const b = o.baseline ?? 'alphabetic';
    const top = b === 'top' ? y : b === 'middle' ? y - h / 2 : b === 'bottom' ? y - h : y - m.ascent;
    return { x: left, y: top, w: m.width, h };
  }

  /** Draws one line of text and records its box. */
  text(text: string, x: number, y: number, o: TextOptions): TextBox {
    const m = this.measure(text, o.px, o.bold);
    const box = this.textBox(text, x, y, o);
    const ctx = this.ctx;
    ctx.save();
    ctx.font = fontSpec(o.px, o.bold);
    ctx.fillStyle = css(o.color ?? [0, 0, 0]);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    if (o.vertical) {
      ctx.translate(x, y);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(text, -m.width / 2, (m.ascent - m.descent) / 2);
    } else {
      ctx.fillText(text, box.x, box.y + m.ascent);
    }
    ctx.restore();
    const tb: TextBox = { ...box, text, px: o.px, vertical: !!o.vertical, role: o.role ?? 'text', color: css(o.color ?? [0, 0, 0]) };
    if (o.role !== null) this.texts.push(tb);
    return tb;
  }

  private stroke(s: StrokeStyle): void {
    const ctx = this.ctx;
    ctx.strokeStyle = css(s.color, s.alpha);
    ctx.lineWidth = s.width ?? 1;
    ctx.setLineDash(s.dash ?? []);
    ctx.lineJoin = 'round';
    ctx.lineCap = s.dash ? 'butt' : 'round';
  }

  line(x0: number, y0: number, x1: number, y1: number, s: StrokeStyle): void {
    const ctx = this.ctx;
    ctx.save();
    this.stroke(s);
    ctx.lineCap = 'butt';
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    ctx.restore();
  }

  /** A polyline through the points (a non-finite coordinate breaks it), optionally clipped to a rectangle. */
  polyline(xs: ArrayLike<number>, ys: ArrayLike<number>, s: StrokeStyle, clip?: Rect): void {
    const ctx = this.ctx;
    ctx.save();
    if (clip) this.clipTo(clip);
    this.stroke(s);
    ctx.beginPath();
    let pen = false;
    const n = Math.min(xs.length, ys.length);
    for (let i = 0; i < n; i++) {
      const x = xs[i];
      const y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
    ctx.restore();
  }

  /** Filled circles of radius r at the points (non-finite ones skipped). */
  dots(xs: ArrayLike<number>, ys: ArrayLike<number>, r: number, color: Color | string, clip?: Rect): void {
    const ctx = this.ctx;
    ctx.save();
    if (clip) this.clipTo(clip);
    ctx.fillStyle = css(color);
    ctx.beginPath();
    const n = Math.min(xs.length, ys.length);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      ctx.moveTo(xs[i] + r, ys[i]);
      ctx.arc(xs[i], ys[i], r, 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.restore();
  }

  /** A rectangle, filled and/or outlined (the outline centred on the edges). */
  rect(x: number, y: number, w: number, h: number, o: { fill?: Color | string; fillAlpha?: number; stroke?: StrokeStyle }): void {
    const ctx = this.ctx;
    ctx.save();
    if (o.fill !== undefined) {
      ctx.fillStyle = css(o.fill, o.fillAlpha);
      ctx.fillRect(x, y, w, h);
    }
    if (o.stroke) {
      this.stroke(o.stroke);
      ctx.strokeRect(x, y, w, h);
    }
    ctx.restore();
  }

  /** Draws an RGBA image scaled into the rectangle (bilinear). */
  image(img: RgbaImage, x: number, y: number, w: number, h: number): void {
    const src = Painter.over(img);
    const ctx = this.ctx;
    ctx.save();
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(src.canvas, x, y, w, h);
    ctx.restore();
  }

  clipTo(r: Rect): void {
    this.ctx.beginPath();
    this.ctx.rect(r.x, r.y, r.w, r.h);
    this.ctx.clip();
  }

  /** The pixels (RGBA8, not premultiplied) with the texts and axes recorded. */
  toRgba(): Figure {
    const d = this.ctx.getImageData(0, 0, this.width, this.height);
    return { width: this.width, height: this.height, data: new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength), texts: [...this.texts], axes: [...this.axes] };
  }

  /** PNG bytes. */
  png(): Buffer {
    return this.canvas.encodeSync('png');
  }

  /** JPEG bytes at `quality` (0..100). */
  jpeg(quality = 90): Buffer {
    return this.canvas.encodeSync('jpeg', quality);
  }
}
