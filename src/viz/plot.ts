/**
 * Small chart renderer on top of src/viz/draw.ts (RGBA images, the built-in 5x7 font): line plots with
 * axes, ticks, labels and a legend (PR curves, F1-confidence curves, loss curves), and annotated heat maps
 * (confusion matrices). CPU only; PNG through writePng.
 */
import { classColor, drawText, fillRect, makeRgba, textSize, type Color, type RgbaImage } from './draw.js';

export interface Series {
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: Color;
  /** Line width in pixels (default 1). */
  width?: number;
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  xlabel?: string;
  ylabel?: string;
  /** Axis ranges (default: the data range, or [0, 1] when empty). */
  xlim?: [number, number];
  ylim?: [number, number];
  /** Tick count per axis (default 5 intervals -> 6 ticks). */
  ticks?: number;
  /** Draw the legend (default true when 0 < series <= 20). */
  legend?: boolean;
  /** Font scale (default 1 below 700 px wide, else 2). */
  fontScale?: number;
}

const WHITE: Color = [255, 255, 255];
const BLACK: Color = [0, 0, 0];
const GRID: Color = [225, 225, 225];

export const MEAN_COLOR: Color = [0, 0, 255];

/** The colour of class k of n in plots (Darknet's class colours, as drawn boxes use). */
export function seriesColor(k: number, n: number): Color {
  return classColor(k, Math.max(n, 1));
}

function setPixel(img: RgbaImage, x: number, y: number, c: Color): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = (y * img.width + x) * 4;
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
  img.data[o + 3] = 255;
}

/** A line from (x0, y0) to (x1, y1) (pixels), `width` thick, clipped to the box [cx0, cx1] x [cy0, cy1]. */
export function drawLine(img: RgbaImage, x0: number, y0: number, x1: number, y1: number, c: Color, width = 1, clip?: [number, number, number, number]): void {
  const [cx0, cy0, cx1, cy1] = clip ?? [0, 0, img.width - 1, img.height - 1];
  const dx = x1 - x0;
  const dy = y1 - y0;
  const steps = Math.max(1, Math.ceil(Math.max(Math.abs(dx), Math.abs(dy))));
  const r = Math.max(0, Math.floor((width - 1) / 2));
  const r2 = width - 1 - r;
  for (let i = 0; i <= steps; i++) {
    const x = Math.round(x0 + (dx * i) / steps);
    const y = Math.round(y0 + (dy * i) / steps);
    for (let oy = -r; oy <= r2; oy++) {
      for (let ox = -r; ox <= r2; ox++) {
        const px = x + ox;
        const py = y + oy;
        if (px < cx0 || px > cx1 || py < cy0 || py > cy1) continue;
        setPixel(img, px, py, c);
      }
    }
  }
}

/** Text rotated 90° counter-clockwise (reads bottom to top), its bounding box's top-left at (x, y). */
export function drawTextVertical(img: RgbaImage, x: number, y: number, text: string, c: Color, scale = 1): void {
  const ts = textSize(text, scale);
  if (ts.width === 0) return;
  const tmp = makeRgba(ts.width, ts.height, WHITE);
  drawText(tmp, 0, 0, text, BLACK, scale);
  for (let ty = 0; ty < ts.height; ty++) {
    for (let tx = 0; tx < ts.width; tx++) {
      if (tmp.data[(ty * ts.width + tx) * 4] !== 0) continue;
      setPixel(img, x + ty, y + ts.width - 1 - tx, c);
    }
  }
}

/** Tick values: `n` intervals over [lo, hi] rounded to a short decimal. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw - 1e-12) ?? raw;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  const s = Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toFixed(4)));
  return s;
}

function range(series: readonly Series[], key: 'x' | 'y'): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s[key].length; i++) {
      const v = s[key][i];
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!(hi >= lo)) return [0, 1];
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/** A line chart of the series on a white background. */
export function linePlot(series: readonly Series[], opts: PlotOptions = {}): RgbaImage {
  const W = opts.width ?? 900;
  const H = opts.height ?? 600;
  const fs = opts.fontScale ?? (W >= 700 ? 2 : 1);
  const img = makeRgba(W, H, WHITE);
  const [x0v, x1v] = opts.xlim ?? range(series, 'x');
  const [y0v, y1v] = opts.ylim ?? range(series, 'y');
  const lineH = textSize('X', fs).height;
  const legend = opts.legend ?? (series.length > 0 && series.length <= 20);
  const legendW = legend ? Math.min(Math.floor(W * 0.4), Math.max(...series.map((s) => textSize(s.label, fs).width)) + 30 * fs) : 0;
  const yTicks = niceTicks(y0v, y1v, opts.ticks ?? 5);
  const xTicks = niceTicks(x0v, x1v, opts.ticks ?? 5);
  const yTickW = Math.max(...yTicks.map((v) => textSize(tickLabel(v), fs).width));
  const left = 10 * fs + (opts.ylabel ? lineH + 6 * fs : 0) + yTickW + 6 * fs;
  const top = 10 * fs + (opts.title ? lineH + 8 * fs : 0);
  const right = W - 12 * fs - legendW;
  const bottom = H - (10 * fs + lineH + 6 * fs + (opts.xlabel ? lineH + 6 * fs : 0));
  if (right - left < 20 || bottom - top < 20) throw new Error(`plot ${W}x${H} too small for its labels`);
  const px = (v: number) => left + ((v - x0v) / (x1v - x0v)) * (right - left);
  const py = (v: number) => bottom - ((v - y0v) / (y1v - y0v)) * (bottom - top);
  // grid and ticks
  for (const v of xTicks) {
    const x = Math.round(px(v));
    drawLine(img, x, top, x, bottom, GRID);
    drawLine(img, x, bottom, x, bottom + 4 * fs, BLACK);
    const lbl = tickLabel(v);
    drawText(img, x - textSize(lbl, fs).width / 2, bottom + 6 * fs, lbl, BLACK, fs);
  }
  for (const v of yTicks) {
    const y = Math.round(py(v));
    drawLine(img, left, y, right, y, GRID);
    drawLine(img, left - 4 * fs, y, left, y, BLACK);
    const lbl = tickLabel(v);
    drawText(img, left - 6 * fs - textSize(lbl, fs).width, y - lineH / 2, lbl, BLACK, fs);
  }
  // series, clipped to the axes box
  const clip: [number, number, number, number] = [left, top, right, bottom];
  for (const s of series) {
    let prev: [number, number] | null = null;
    const n = Math.min(s.x.length, s.y.length);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(s.x[i]) || !Number.isFinite(s.y[i])) {
        prev = null;
        continue;
      }
      const p: [number, number] = [px(s.x[i]), py(s.y[i])];
      if (prev) drawLine(img, prev[0], prev[1], p[0], p[1], s.color, s.width ?? 1, clip);
      else if (n === 1) drawLine(img, p[0], p[1], p[0], p[1], s.color, (s.width ?? 1) + 2, clip);
      prev = p;
    }
  }
  // axes box
  drawLine(img, left, top, right, top, BLACK);
  drawLine(img, left, bottom, right, bottom, BLACK);
  drawLine(img, left, top, left, bottom, BLACK);
  drawLine(img, right, top, right, bottom, BLACK);
  // labels
  if (opts.title) drawText(img, (left + right) / 2 - textSize(opts.title, fs).width / 2, 10 * fs, opts.title, BLACK, fs);
  if (opts.xlabel) drawText(img, (left + right) / 2 - textSize(opts.xlabel, fs).width / 2, H - 8 * fs - lineH, opts.xlabel, BLACK, fs);
  if (opts.ylabel) drawTextVertical(img, 8 * fs, (top + bottom) / 2 - textSize(opts.ylabel, fs).width / 2, opts.ylabel, BLACK, fs);
  if (legend) {
    let y = top;
    const lx = right + 10 * fs;
    for (const s of series) {
      if (y + lineH > H) break;
      fillRect(img, lx, y + lineH / 2 - Math.max(1, (s.width ?? 1) / 2), lx + 16 * fs, y + lineH / 2 + Math.max(0, (s.width ?? 1) / 2 - 1), s.color);
      let lbl = s.label;
      const maxW = W - (lx + 20 * fs) - 2;
      while (lbl.length > 1 && textSize(lbl, fs).width > maxW) lbl = lbl.slice(0, -1);
      drawText(img, lx + 20 * fs, y, lbl, BLACK, fs);
      y += lineH + 5 * fs;
    }
  }
  return img;
}

export interface HeatmapOptions {
  /** Row labels (y axis, top to bottom) and column labels (x axis, left to right). */
  rowLabels: readonly string[];
  colLabels: readonly string[];
  title?: string;
  xlabel?: string;
  ylabel?: string;
  /** Value shown as the darkest colour (default the max cell). */
  vmax?: number;
  /** Write the values in the cells (default: when the matrix is at most 30 wide). */
  annotate?: boolean;
  /** Digits after the point in annotations (default 2). */
  digits?: number;
  /** Cells below this are left blank (default 0.005, as Ultralytics does). */
  hideBelow?: number;
  /** Cell size in pixels (default: fits ~900 px). */
  cell?: number;
  fontScale?: number;
}

/** White to dark blue ('Blues'-like) for t in [0, 1]. */
export function blues(t: number): Color {
  const u = Math.max(0, Math.min(1, t));
  const a: Color = [247, 251, 255];
  const b: Color = [8, 48, 107];
  return [Math.round(a[0] + (b[0] - a[0]) * u), Math.round(a[1] + (b[1] - a[1]) * u), Math.round(a[2] + (b[2] - a[2]) * u)];
}

/** An annotated heat map of `m` (rows x cols). */
export function heatmap(m: readonly ArrayLike<number>[], opts: HeatmapOptions): RgbaImage {
  const rows = m.length;
  const cols = rows ? m[0].length : 0;
  const fs = opts.fontScale ?? (Math.max(rows, cols) <= 12 ? 2 : 1);
  const lineH = textSize('X', fs).height;
  const cell = opts.cell ?? Math.max(lineH + 4, Math.min(80, Math.floor(700 / Math.max(1, cols))));
  let vmax = opts.vmax ?? 0;
  if (opts.vmax === undefined) for (const r of m) for (let j = 0; j < cols; j++) vmax = Math.max(vmax, r[j]);
  const hide = opts.hideBelow ?? 0.005;
  const annotate = opts.annotate ?? cols <= 30;
  const digits = opts.digits ?? 2;
  const rowW = Math.max(0, ...opts.rowLabels.map((l) => textSize(l, fs).width));
  const colH = Math.max(0, ...opts.colLabels.map((l) => textSize(l, fs).width));
  const left = 10 * fs + (opts.ylabel ? lineH + 8 * fs : 0) + rowW + 6 * fs;
  const top = 10 * fs + (opts.title ? lineH + 8 * fs : 0);
  const gridW = cell * cols;
  const gridH = cell * rows;
  const titleW = opts.title ? textSize(opts.title, fs).width + 20 * fs : 0;
  const W = Math.max(left + gridW + 20 * fs, titleW);
  const H = top + gridH + 6 * fs + colH + (opts.xlabel ? lineH + 8 * fs : 0) + 10 * fs;
  const img = makeRgba(Math.max(W, 200), Math.max(H, 100), WHITE);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = m[i][j];
      const x = left + j * cell;
      const y = top + i * cell;
      const shown = Number.isFinite(v) && v >= hide;
      const c = shown ? blues(vmax > 0 ? v / vmax : 0) : WHITE;
      fillRect(img, x, y, x + cell - 1, y + cell - 1, c);
      if (annotate && shown) {
        const txt = v.toFixed(digits);
        let s = fs;
        while (s > 1 && textSize(txt, s).width > cell - 2) s--;
        const ts = textSize(txt, s);
        if (ts.width <= cell - 2) {
          const lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
          drawText(img, x + (cell - ts.width) / 2, y + (cell - ts.height) / 2, txt, lum > 140 ? BLACK : WHITE, s);
        }
      }
    }
  }
  // frame
  drawLine(img, left - 1, top - 1, left + gridW, top - 1, BLACK);
  drawLine(img, left - 1, top + gridH, left + gridW, top + gridH, BLACK);
  drawLine(img, left - 1, top - 1, left - 1, top + gridH, BLACK);
  drawLine(img, left + gridW, top - 1, left + gridW, top + gridH, BLACK);
  opts.rowLabels.forEach((l, i) => drawText(img, left - 6 * fs - textSize(l, fs).width, top + i * cell + (cell - lineH) / 2, l, BLACK, fs));
  opts.colLabels.forEach((l, j) => drawTextVertical(img, left + j * cell + (cell - lineH) / 2, top + gridH + 6 * fs, l, BLACK, fs));
  if (opts.title) {
    const tw = textSize(opts.title, fs).width;
    drawText(img, Math.max(10 * fs, Math.min(img.width - 10 * fs - tw, left + gridW / 2 - tw / 2)), 10 * fs, opts.title, BLACK, fs);
  }
  if (opts.xlabel) drawText(img, left + gridW / 2 - textSize(opts.xlabel, fs).width / 2, top + gridH + 6 * fs + colH + 8 * fs, opts.xlabel, BLACK, fs);
  if (opts.ylabel) drawTextVertical(img, 8 * fs, top + gridH / 2 - textSize(opts.ylabel, fs).width / 2, opts.ylabel, BLACK, fs);
  return img;
}
