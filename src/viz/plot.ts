/**
 * Charts in matplotlib's default look, as Ultralytics draws them (src/viz/painter.ts on Skia, DejaVu Sans):
 * axes with outward ticks, tick labels with shared decimals, titles, legends (inside at the emptiest
 * corner, or outside right), line plots with markers and dashes, bars, 2D histograms, annotated heat maps
 * with a colour bar, and subplot grids. Sizes are in points at a figure's dpi (1 pt = dpi / 72 px), with
 * matplotlib's rcParams defaults: 10 pt text, 12 pt titles, 3.5 pt ticks, 0.8 pt frames, 1.5 pt lines.
 */
import { Painter, type Figure, type Rect, type StrokeStyle, type TextBox } from './painter.js';
import type { Color } from './draw.js';

export interface Series {
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color: Color;
  /** Line width in points (default 1.5). */
  width?: number;
  /** Dash pattern in points (e.g. [1, 1.65] for ':', [3.7, 1.6] for '--'); solid when absent. */
  dash?: number[];
  /** Marker radius in points at each point (none when absent). */
  marker?: number;
  /** Hide the line (markers only). */
  noLine?: boolean;
}

/** matplotlib's default colour cycle (tab10). */
export const TAB10: readonly Color[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

/** tab20 (pairs of dark and light). */
const TAB20: readonly Color[] = [
  [31, 119, 180], [174, 199, 232], [255, 127, 14], [255, 187, 120], [44, 160, 44], [152, 223, 138], [214, 39, 40], [255, 152, 150],
  [148, 103, 189], [197, 176, 213], [140, 86, 75], [196, 156, 148], [227, 119, 194], [247, 182, 210], [127, 127, 127], [199, 199, 199],
  [188, 189, 34], [219, 219, 141], [23, 190, 207], [158, 218, 229],
];

/** The mean curve of PR / F1 plots (Ultralytics: linewidth 3, color 'blue'). */
export const MEAN_COLOR: Color = [0, 0, 255];
export const GREY: Color = [128, 128, 128];

/** The colour of series k of n: matplotlib's tab10 cycle, tab20 for 11..20. */
export function seriesColor(k: number, n: number): Color {
  return n > 10 ? TAB20[k % 20] : TAB10[k % 10];
}

/** matplotlib's 'Blues' colour map (its 9 anchors, linear between them) at t in [0, 1]. */
export function blues(t: number): Color {
  const A: Color[] = [[247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214], [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107]];
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (A.length - 1);
  const i = Math.min(A.length - 2, Math.floor(u));
  const f = u - i;
  return [0, 1, 2].map((c) => Math.round(A[i][c] + (A[i + 1][c] - A[i][c]) * f)) as unknown as Color;
}

/** Tick values: about `n` intervals over [lo, hi] at 1, 2, 2.5, 5 x 10^k. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw - 1e-12 * mag) ?? raw;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/** Labels of evenly spaced ticks with the same number of decimals (matplotlib's ScalarFormatter; U+2212 minus). */
export function tickLabels(ticks: readonly number[]): string[] {
  if (!ticks.length) return [];
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(ticks[0]) || 1;
  const big = Math.max(...ticks.map(Math.abs));
  const minus = (s: string) => s.replace(/^-/, '\u2212');
  if (big >= 1e6 || (big > 0 && big < 1e-3)) {
    const e = Math.floor(Math.log10(big));
    let d = 0;
    while (d < 4 && Math.abs(Math.round((step / 10 ** e) * 10 ** d) - (step / 10 ** e) * 10 ** d) > 1e-6) d++;
    return ticks.map((v) => (v === 0 ? '0' : minus(v.toExponential(d).replace('e+', 'e').replace(/e(-?)0*(\d)/, 'e$1$2'))));
  }
  let d = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  while (d < 8 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6 * 10 ** d) d++;
  return ticks.map((v) => minus((Math.abs(v) < step * 1e-9 ? 0 : v).toFixed(d)));
}

/** The finite range of the values; [lo - 0.5, lo + 0.5] when flat, [0, 1] when none. */
export function dataRange(...arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!(hi >= lo)) return [0, 1];
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/** matplotlib's axes.xmargin / ymargin: 5% of the range on each side. */
export function withMargin([lo, hi]: [number, number], m = 0.05): [number, number] {
  const r = hi - lo;
  return [lo - m * r, hi + m * r];
}

/**
 * scipy.ndimage.gaussian_filter1d(y, sigma) as Ultralytics smooths results.png: a normalised Gaussian
 * kernel of radius round(4·sigma) (truncate 4), mode 'reflect' (d c b a | a b c d | d c b a).
 */
export function gaussianSmooth(y: ArrayLike<number>, sigma = 3): number[] {
  const n = y.length;
  if (n === 0) return [];
  const r = Math.floor(4 * sigma + 0.5);
  const w: number[] = [];
  let sum = 0;
  for (let k = -r; k <= r; k++) {
    const v = Math.exp(-0.5 * (k / sigma) ** 2);
    w.push(v);
    sum += v;
  }
  const at = (i: number) => {
    const p = 2 * n;
    let j = ((i % p) + p) % p;
    if (j >= n) j = p - 1 - j;
    return y[j];
  };
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = -r; k <= r; k++) s += w[k + r] * at(i + k);
    out.push(s / sum);
  }
  return out;
}

export interface LegendEntry {
  label: string;
  color: Color;
  /** Line width in points (0: no line). */
  width?: number;
  dash?: number[];
  marker?: number;
  /** A filled square instead of a line (bars). */
  patch?: boolean;
}

export interface AxesOptions {
  dpi?: number;
  title?: string;
  xlabel?: string;
  ylabel?: string;
  xlim?: [number, number];
  ylim?: [number, number];
  /** Explicit ticks (default: nice values for the axis length). */
  xticks?: number[];
  yticks?: number[];
  /** Labels for explicit ticks (categorical axes). */
  xtickLabels?: string[];
  ytickLabels?: string[];
  /** Rotate the x tick labels 90° (long category names). */
  rotateXTicks?: boolean;
  /** Light grid lines at the ticks (default false, as matplotlib). */
  grid?: boolean;
  /** Draw the frame (spines) and ticks (default true). */
  frame?: boolean;
  /** A legend placed outside right of the axes: its space is reserved. */
  legendOutside?: LegendEntry[];
  /** A second y axis on the right (its ticks and label, in its colour). */
  right?: { lim: [number, number]; label?: string; color?: Color; ticks?: number[] };
  /** Text size in points (default 10; titles 1.2x). */
  fontPt?: number;
}

/** Font sizes and spacing at a dpi (matplotlib's rcParams in points). */
function metrics(o: AxesOptions) {
  const s = (o.dpi ?? 100) / 72;
  const fpt = o.fontPt ?? 10;
  return {
    s,
    font: fpt * s,
    title: fpt * 1.2 * s,
    tick: 3.5 * s,
    tickPad: 3.5 * s,
    labelPad: 4 * s,
    titlePad: 6 * s,
    frame: Math.max(1, 0.8 * s),
    edge: 4 * s,
  };
}

/** One plot area with its axes, ticks, labels and legend; data coordinates map into `inner`. */
export class Axes {
  readonly inner: Rect;
  readonly xlim: [number, number];
  readonly ylim: [number, number];
  private readonly m: ReturnType<typeof metrics>;
  private readonly xt: number[];
  private readonly yt: number[];
  private readonly xl: string[];
  private readonly yl: string[];
  private readonly rt: number[];
  private readonly rl: string[];
  private readonly plotted: [number, number][] = [];

  constructor(readonly p: Painter, readonly outer: Rect, readonly o: AxesOptions) {
    const m = metrics(o);
    this.m = m;
    this.xlim = o.xlim ?? [0, 1];
    this.ylim = o.ylim ?? [0, 1];
    const frame = o.frame ?? true;
    const fh = (px: number) => {
      const t = p.measure('Xg', px);
      return t.ascent + t.descent;
    };
    const lineH = fh(m.font);
    // y ticks first (their labels set the left margin), then the x ticks for the resulting width
    const top = outer.y + m.edge + (o.title ? fh(m.title) + m.titlePad : 0);
    const xRot = !!o.rotateXTicks;
    const xLabelsGuess = o.xtickLabels ?? [];
    const xTickH = frame ? (xRot ? Math.max(lineH, ...xLabelsGuess.map((l) => p.measure(l, m.font).width)) : lineH) : 0;
    const bottom = outer.y + outer.h - m.edge - (frame ? m.tick + m.tickPad + xTickH : 0) - (o.xlabel ? m.labelPad + lineH : 0);
    const yCount = Math.max(2, Math.min(9, Math.floor((bottom - top) / (lineH * 2.6))));
    this.yt = o.yticks ?? niceTicks(this.ylim[0], this.ylim[1], yCount).filter((v) => v >= Math.min(...this.ylim) - 1e-9 && v <= Math.max(...this.ylim) + 1e-9);
    this.yl = o.ytickLabels ?? tickLabels(this.yt);
    const yTickW = frame ? Math.max(0, ...this.yl.map((l) => p.measure(l, m.font).width)) : 0;
    const left = outer.x + m.edge + (o.ylabel ? lineH + m.labelPad : 0) + (frame ? yTickW + m.tickPad + m.tick : 0);
    this.rt = o.right ? (o.right.ticks ?? niceTicks(o.right.lim[0], o.right.lim[1], yCount)) : [];
    this.rl = tickLabels(this.rt);
    const rightW = o.right ? m.tick + m.tickPad + Math.max(0, ...this.rl.map((l) => p.measure(l, m.font).width)) + (o.right.label ? m.labelPad + lineH : 0) : 0;
    const legendW = o.legendOutside ? this.legendSize(o.legendOutside).w + m.font : 0;
    // room for half of the last x tick label beyond the frame
    let right = outer.x + outer.w - m.edge - rightW - legendW;
    if (frame && !xRot && !o.xticks && !o.right && !o.legendOutside) {
      const lastW = p.measure(tickLabels(niceTicks(this.xlim[0], this.xlim[1], 5)).at(-1) ?? '', m.font).width;
      right -= lastW / 2;
    }
    if (right - left < 10 || bottom - top < 10) throw new Error(`plot area ${Math.round(outer.w)}x${Math.round(outer.h)} too small for its labels`);
    this.inner = { x: left, y: top, w: right - left, h: bottom - top };
    // x ticks: as many as fit without their labels touching
    if (o.xticks) {
      this.xt = o.xticks;
      this.xl = o.xtickLabels ?? tickLabels(o.xticks);
    } else {
      let n = Math.max(2, Math.min(10, Math.floor(this.inner.w / (m.font * 3))));
      let t = niceTicks(this.xlim[0], this.xlim[1], n);
      let l = tickLabels(t);
      const fits = () => {
        const w = Math.max(...l.map((s) => p.measure(s, m.font).width));
        return t.length < 2 || (this.x(t[1]) - this.x(t[0])) > w + m.font;
      };
      while (n > 1 && !fits()) {
        n--;
        t = niceTicks(this.xlim[0], this.xlim[1], n);
        l = tickLabels(t);
      }
      const keep = t.map((v, i) => [v, l[i]] as const).filter(([v]) => v >= Math.min(...this.xlim) - 1e-9 && v <= Math.max(...this.xlim) + 1e-9);
      this.xt = keep.map((k) => k[0]);
      this.xl = keep.map((k) => k[1]);
    }
    p.axes.push(this.inner);
    if (o.grid) {
      const g: StrokeStyle = { color: [176, 176, 176], width: Math.max(1, 0.8 * m.s), alpha: 0.5 };
      for (const v of this.xt) p.line(this.x(v), this.inner.y, this.x(v), this.inner.y + this.inner.h, g);
      for (const v of this.yt) p.line(this.inner.x, this.y(v), this.inner.x + this.inner.w, this.y(v), g);
    }
  }

  /** Data x to pixels. */
  x(v: number): number {
    return this.inner.x + ((v - this.xlim[0]) / (this.xlim[1] - this.xlim[0])) * this.inner.w;
  }

  /** Data y to pixels. */
  y(v: number): number {
    return this.inner.y + this.inner.h - ((v - this.ylim[0]) / (this.ylim[1] - this.ylim[0])) * this.inner.h;
  }

  /** Right-axis y to pixels. */
  yRight(v: number): number {
    const lim = this.o.right?.lim ?? this.ylim;
    return this.inner.y + this.inner.h - ((v - lim[0]) / (lim[1] - lim[0])) * this.inner.h;
  }

  /** Plots a series (line and/or markers), clipped to the plot area. */
  plot(sr: Series, onRight = false): void {
    const s = this.m.s;
    const n = Math.min(sr.x.length, sr.y.length);
    const xs = new Float64Array(n);
    const ys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      xs[i] = Number.isFinite(sr.x[i]) ? this.x(sr.x[i]) : NaN;
      ys[i] = Number.isFinite(sr.y[i]) ? (onRight ? this.yRight(sr.y[i]) : this.y(sr.y[i])) : NaN;
      if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) this.plotted.push([xs[i], ys[i]]);
    }
    const clip = { x: this.inner.x - 3 * s, y: this.inner.y - 3 * s, w: this.inner.w + 6 * s, h: this.inner.h + 6 * s };
    if (!sr.noLine) this.p.polyline(xs, ys, { color: sr.color, width: (sr.width ?? 1.5) * s, dash: sr.dash?.map((d) => d * (sr.width ?? 1.5) * s) }, clip);
    const ok = (i: number) => i >= 0 && i < n && Number.isFinite(xs[i]) && Number.isFinite(ys[i]);
    if (!sr.marker && !sr.noLine) {
      // a point with no neighbour draws no line: show it as a dot
      const lx: number[] = [];
      const ly: number[] = [];
      for (let i = 0; i < n; i++) if (ok(i) && !ok(i - 1) && !ok(i + 1)) lx.push(xs[i]), ly.push(ys[i]);
      if (lx.length) this.p.dots(lx, ly, (sr.width ?? 1.5) * 1.5 * s, sr.color, clip);
    }
    const r = sr.marker ?? 0;
    if (r > 0) this.p.dots(xs, ys, r * s, sr.color, clip);
  }

  /** Vertical bars centred at xs. */
  bars(xs: readonly number[], hs: readonly number[], width: number, colors: readonly Color[]): void {
    xs.forEach((x, i) => {
      const x0 = this.x(x - width / 2);
      const x1 = this.x(x + width / 2);
      const y0 = this.y(Math.max(this.ylim[0], 0));
      const y1 = this.y(hs[i]);
      this.p.rect(x0, Math.min(y0, y1), x1 - x0, Math.abs(y1 - y0), { fill: colors[i % colors.length] });
      this.plotted.push([(x0 + x1) / 2, y1]);
    });
  }

  /**
   * A 2D histogram (seaborn histplot with x and y): `bins` x `bins` cells over the axes' limits, coloured
   * from white to `color` with the colour saturating at the count below which `pmax` of the mass lies.
   */
  hist2d(xs: ArrayLike<number>, ys: ArrayLike<number>, bins = 50, color: Color = TAB10[0], pmax = 0.9): number[][] {
    const counts = Array.from({ length: bins }, () => new Array<number>(bins).fill(0));
    const [x0, x1] = this.xlim;
    const [y0, y1] = this.ylim;
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
      const bx = Math.floor(((xs[i] - x0) / (x1 - x0)) * bins);
      const by = Math.floor(((ys[i] - y0) / (y1 - y0)) * bins);
      if (bx >= 0 && by >= 0 && bx <= bins && by <= bins) counts[Math.min(bins - 1, by)][Math.min(bins - 1, bx)]++;
    }
    const nz = counts.flat().filter((c) => c > 0).sort((a, b) => a - b);
    const total = nz.reduce((a, b) => a + b, 0);
    let vmax = nz.at(-1) ?? 1;
    let acc = 0;
    for (const c of nz) {
      acc += c;
      if (acc >= pmax * total) {
        vmax = c;
        break;
      }
    }
    const cw = this.inner.w / bins;
    const ch = this.inner.h / bins;
    for (let by = 0; by < bins; by++) {
      for (let bx = 0; bx < bins; bx++) {
        const c = counts[by][bx];
        if (!c) continue;
        const t = 0.15 + 0.85 * Math.min(1, c / vmax);
        const col: Color = [0, 1, 2].map((k) => Math.round(255 + (color[k] - 255) * t)) as unknown as Color;
        const px = this.inner.x + bx * cw;
        const py = this.inner.y + this.inner.h - (by + 1) * ch;
        this.p.rect(px, py, cw + 0.5, ch + 0.5, { fill: col });
        this.plotted.push([px + cw / 2, py + ch / 2]);
      }
    }
    return counts;
  }

  /** Text in data coordinates (not recorded as a plotted point). */
  label(text: string, x: number, y: number, o: { color?: Color; align?: 'left' | 'center' | 'right'; baseline?: 'top' | 'middle' | 'bottom'; role?: string; onRight?: boolean; px?: number }): TextBox {
    return this.p.text(text, this.x(x), o.onRight ? this.yRight(y) : this.y(y), { px: o.px ?? this.m.font, color: o.color, align: o.align ?? 'center', baseline: o.baseline ?? 'bottom', role: o.role ?? 'annotation' });
  }

  /** Frame, ticks, tick labels, axis labels, title and legend (`legend`: entries placed at the emptiest corner inside). */
  finish(legend?: LegendEntry[]): void {
    const { p, o, m, inner } = this;
    const frame = o.frame ?? true;
    const black: Color = [0, 0, 0];
    if (frame) {
      const fw = m.frame;
      p.rect(inner.x, inner.y, inner.w, inner.h, { stroke: { color: black, width: fw } });
      const tw: StrokeStyle = { color: black, width: fw };
      const by = inner.y + inner.h;
      this.xt.forEach((v, i) => {
        const x = this.x(v);
        p.line(x, by, x, by + m.tick, tw);
        if (o.rotateXTicks) p.text(this.xl[i], x, by + m.tick + m.tickPad + p.measure(this.xl[i], m.font).width / 2, { px: m.font, vertical: true, role: 'xtick' });
        else p.text(this.xl[i], x, by + m.tick + m.tickPad, { px: m.font, align: 'center', baseline: 'top', role: 'xtick' });
      });
      this.yt.forEach((v, i) => {
        const y = this.y(v);
        p.line(inner.x - m.tick, y, inner.x, y, tw);
        p.text(this.yl[i], inner.x - m.tick - m.tickPad, y, { px: m.font, align: 'right', baseline: 'middle', role: 'ytick' });
      });
      if (o.right) {
        const rc = o.right.color ?? black;
        let maxW = 0;
        this.rt.forEach((v, i) => {
          const y = this.yRight(v);
          const rx = inner.x + inner.w;
          p.line(rx, y, rx + m.tick, y, { color: rc, width: fw });
          maxW = Math.max(maxW, p.text(this.rl[i], rx + m.tick + m.tickPad, y, { px: m.font, align: 'left', baseline: 'middle', color: rc, role: 'ytick-right' }).w);
        });
        if (o.right.label) {
          const lh = p.measure('Xg', m.font);
          p.text(o.right.label, inner.x + inner.w + m.tick + m.tickPad + maxW + m.labelPad + (lh.ascent + lh.descent) / 2, inner.y + inner.h / 2, { px: m.font, vertical: true, color: rc, role: 'ylabel-right' });
        }
      }
    }
    const lh = p.measure('Xg', m.font);
    const lineH = lh.ascent + lh.descent;
    if (o.xlabel) {
      const xTickH = frame ? (o.rotateXTicks ? Math.max(lineH, ...this.xl.map((l) => p.measure(l, m.font).width)) : lineH) : 0;
      p.text(o.xlabel, inner.x + inner.w / 2, inner.y + inner.h + (frame ? m.tick + m.tickPad + xTickH : 0) + m.labelPad, { px: m.font, align: 'center', baseline: 'top', role: 'xlabel' });
    }
    if (o.ylabel) p.text(o.ylabel, this.outer.x + m.edge + lineH / 2, inner.y + inner.h / 2, { px: m.font, vertical: true, role: 'ylabel' });
    if (o.title) {
      const tm = p.measure(o.title, m.title);
      const cx = Math.max(this.outer.x + tm.width / 2, Math.min(this.outer.x + this.outer.w - tm.width / 2, inner.x + inner.w / 2));
      p.text(o.title, cx, inner.y - m.titlePad, { px: m.title, align: 'center', baseline: 'bottom', role: 'title' });
    }
    if (o.legendOutside) this.drawLegend(o.legendOutside, inner.x + inner.w + (o.right ? 0 : m.font), inner.y, true);
    if (legend?.length) {
      const sz = this.legendSize(legend);
      const pad = 0.5 * m.font;
      const cands: [number, number][] = [
        [inner.x + inner.w - pad - sz.w, inner.y + pad], // upper right
        [inner.x + pad, inner.y + pad], // upper left
        [inner.x + pad, inner.y + inner.h - pad - sz.h], // lower left
        [inner.x + inner.w - pad - sz.w, inner.y + inner.h - pad - sz.h], // lower right
        [inner.x + inner.w - pad - sz.w, inner.y + (inner.h - sz.h) / 2], // right
        [inner.x + (inner.w - sz.w) / 2, inner.y + pad], // upper center
        [inner.x + (inner.w - sz.w) / 2, inner.y + inner.h - pad - sz.h], // lower center
      ];
      let best = cands[0];
      let bestN = Infinity;
      for (const c of cands) {
        const n = this.plotted.filter(([x, y]) => x >= c[0] && x <= c[0] + sz.w && y >= c[1] && y <= c[1] + sz.h).length;
        if (n < bestN) {
          bestN = n;
          best = c;
        }
      }
      this.drawLegend(legend, best[0], best[1], false);
    }
  }

  /** matplotlib's legend box: borderpad 0.4, handlelength 2, handletextpad 0.8, labelspacing 0.5 (in font sizes). */
  legendSize(entries: readonly LegendEntry[]): { w: number; h: number } {
    const f = this.m?.font ?? metrics(this.o).font;
    const lh = this.p.measure('Xg', f);
    const rowH = lh.ascent + lh.descent;
    const tw = Math.max(0, ...entries.map((e) => this.p.measure(e.label, f).width));
    return { w: 2 * 0.4 * f + 2 * f + 0.8 * f + tw, h: 2 * 0.4 * f + entries.length * rowH + Math.max(0, entries.length - 1) * 0.5 * f };
  }

  private drawLegend(entries: readonly LegendEntry[], x: number, y: number, outside: boolean): void {
    const { p, m } = this;
    const f = m.font;
    const sz = this.legendSize(entries);
    const lh = p.measure('Xg', f);
    const rowH = lh.ascent + lh.descent;
    if (!outside) p.rect(x, y, sz.w, sz.h, { fill: [255, 255, 255], fillAlpha: 0.8, stroke: { color: [204, 204, 204], width: Math.max(1, 0.8 * m.s) } });
    entries.forEach((e, i) => {
      const cy = y + 0.4 * f + i * (rowH + 0.5 * f) + rowH / 2;
      const hx = x + 0.4 * f;
      if (e.patch) p.rect(hx + 0.3 * f, cy - 0.35 * f, 1.4 * f, 0.7 * f, { fill: e.color });
      else {
        const w = e.width ?? 1.5;
        if (w > 0) p.line(hx, cy, hx + 2 * f, cy, { color: e.color, width: w * m.s, dash: e.dash?.map((d) => d * w * m.s) });
        if (e.marker) p.dots([hx + f], [cy], e.marker * m.s, e.color);
      }
      p.text(e.label, hx + 2.8 * f, cy, { px: f, baseline: 'middle', role: 'legend' });
    });
  }
}

/** Rectangles of a rows x cols grid filling w x h (row-major). */
export function gridCells(w: number, h: number, rows: number, cols: number, x0 = 0, y0 = 0): Rect[] {
  const out: Rect[] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.push({ x: x0 + (c * w) / cols, y: y0 + (r * h) / rows, w: w / cols, h: h / rows });
  return out;
}

export interface PlotOptions {
  /** Size in inches (matplotlib's figsize; default [6.4, 4.8]). */
  figsize?: [number, number];
  /** Pixels per inch (default 100). */
  dpi?: number;
  /** Size in pixels (instead of figsize x dpi). */
  width?: number;
  height?: number;
  title?: string;
  xlabel?: string;
  ylabel?: string;
  xlim?: [number, number];
  ylim?: [number, number];
  /** 'inside' (the emptiest corner; true, the default), 'outside' (right of the axes, as Ultralytics' PR plot) or false. */
  legend?: boolean | 'inside' | 'outside';
  grid?: boolean;
}

/** A figure with one line chart. */
export function linePlot(series: readonly Series[], opts: PlotOptions = {}): Figure {
  const [fw, fh] = opts.figsize ?? [6.4, 4.8];
  const dpi = opts.dpi ?? 100;
  const p = new Painter(opts.width ?? Math.round(fw * dpi), opts.height ?? Math.round(fh * dpi));
  const entries: LegendEntry[] = series.filter((s) => s.label).map((s) => ({ label: s.label, color: s.color, width: s.noLine ? 0 : s.width, dash: s.dash, marker: s.marker }));
  const legend = opts.legend === true || opts.legend === undefined ? 'inside' : opts.legend;
  const ax = new Axes(p, { x: 0, y: 0, w: p.width, h: p.height }, {
    dpi, title: opts.title, xlabel: opts.xlabel, ylabel: opts.ylabel, grid: opts.grid,
    xlim: opts.xlim ?? withMargin(dataRange(...series.map((s) => s.x))),
    ylim: opts.ylim ?? withMargin(dataRange(...series.map((s) => s.y))),
    legendOutside: legend === 'outside' && entries.length ? entries : undefined,
  });
  for (const s of series) ax.plot(s);
  ax.finish(legend === 'inside' ? entries : undefined);
  return p.toRgba();
}

export interface HeatmapOptions {
  /** Row labels (top to bottom) and column labels (left to right). */
  rowLabels: readonly string[];
  colLabels: readonly string[];
  title?: string;
  xlabel?: string;
  ylabel?: string;
  /** The value of the darkest colour (default: the largest cell). */
  vmax?: number;
  /** Write the values in the cells (default: up to 30 columns, as Ultralytics). */
  annotate?: boolean;
  /** Digits after the point (default 2). */
  digits?: number;
  /** Cells below this are blank (default 0.005, as Ultralytics). */
  hideBelow?: number;
  figsize?: [number, number];
  dpi?: number;
}

/**
 * An annotated heat map in seaborn's look (Ultralytics' confusion matrix): square cells in 'Blues', the
 * values written in the cells (white on dark), category labels on both axes (x labels turned 90° when
 * they would collide) and a colour bar on the right.
 */
export function heatmap(m: readonly ArrayLike<number>[], o: HeatmapOptions): Figure {
  const rows = m.length;
  const cols = rows ? m[0].length : 0;
  const [fw, fh] = o.figsize ?? [12, 9];
  const dpi = o.dpi ?? 100;
  const p = new Painter(Math.round(fw * dpi), Math.round(fh * dpi));
  const s = dpi / 72;
  let vmax = o.vmax ?? 0;
  if (o.vmax === undefined) for (const r of m) for (let j = 0; j < cols; j++) if (Number.isFinite(r[j])) vmax = Math.max(vmax, r[j]);
  const hide = o.hideBelow ?? 0.005;
  const edge = 6 * s;
  const title = 12 * s;
  const tl = p.measure('Xg', title);
  const top = edge + (o.title ? tl.ascent + tl.descent + 6 * s : 0);
  const cbarW = 0.05 * p.width;
  // the label size: seaborn's (10 pt, 8 pt from 50 classes), smaller when the rows would not fit it
  let font = (cols < 50 ? 10 : 8) * s;
  let lineH = 0;
  let left = 0;
  let availW = 0;
  let colW = 0;
  let cell = 0;
  let rotate = false;
  for (let pass = 0; pass < 4; pass++) {
    const lh = p.measure('Xg', font);
    lineH = lh.ascent + lh.descent;
    const rowW = Math.max(0, ...o.rowLabels.map((l) => p.measure(l, font).width));
    colW = Math.max(0, ...o.colLabels.map((l) => p.measure(l, font).width));
    left = edge + (o.ylabel ? lineH + 4 * s : 0) + rowW + 7 * s;
    // x labels horizontal when each fits its cell, else turned
    availW = p.width - left - edge - cbarW - 3 * lineH;
    const bottomFixed = edge + (o.xlabel ? lineH + 4 * s : 0) + 7 * s;
    cell = Math.min(availW / Math.max(1, cols), (p.height - top - bottomFixed - lineH) / Math.max(1, rows));
    rotate = colW > cell - 0.3 * font;
    if (rotate) cell = Math.min(availW / Math.max(1, cols), (p.height - top - bottomFixed - colW) / Math.max(1, rows));
    if (lineH <= cell * 0.95) break;
    font *= (cell * 0.9) / lineH;
  }
  const gw = cell * cols;
  const gh = cell * rows;
  const gx = left + Math.max(0, (availW - gw) / 2);
  const gy = top;
  p.axes.push({ x: gx, y: gy, w: gw, h: gh });
  const annotate = o.annotate ?? cols < 30;
  const digits = o.digits ?? 2;
  let aFont = Math.min(font, cell * 0.3);
  const widest = (0).toFixed(digits);
  while (aFont > 4 && p.measure(widest, aFont).width > cell * 0.85) aFont *= 0.9;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = m[i][j];
      if (!(Number.isFinite(v) && v >= hide)) continue;
      const c = blues(vmax > 0 ? v / vmax : 0);
      p.rect(gx + j * cell, gy + i * cell, cell + 0.5, cell + 0.5, { fill: c });
      if (annotate && aFont > 4) {
        const lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        p.text(v.toFixed(digits), gx + (j + 0.5) * cell, gy + (i + 0.5) * cell, { px: aFont, align: 'center', baseline: 'middle', color: lum > 140 ? [38, 38, 38] : [255, 255, 255], role: 'cell' });
      }
    }
  }
  // category labels
  o.rowLabels.forEach((l, i) => p.text(l, gx - 7 * s, gy + (i + 0.5) * cell, { px: font, align: 'right', baseline: 'middle', role: 'ytick' }));
  o.colLabels.forEach((l, j) => {
    const x = gx + (j + 0.5) * cell;
    if (rotate) p.text(l, x, gy + gh + 7 * s + p.measure(l, font).width / 2, { px: font, vertical: true, role: 'xtick' });
    else p.text(l, x, gy + gh + 7 * s, { px: font, align: 'center', baseline: 'top', role: 'xtick' });
  });
  const xTickH = rotate ? colW : lineH;
  if (o.xlabel) p.text(o.xlabel, gx + gw / 2, gy + gh + 7 * s + xTickH + 4 * s, { px: font, align: 'center', baseline: 'top', role: 'xlabel' });
  if (o.ylabel) p.text(o.ylabel, edge + lineH / 2, gy + gh / 2, { px: font, vertical: true, role: 'ylabel' });
  if (o.title) p.text(o.title, gx + gw / 2, gy - 6 * s, { px: title, align: 'center', baseline: 'bottom', role: 'title' });
  // colour bar: 'Blues' from 0 to vmax with ticks
  const bx = gx + gw + 1.5 * lineH;
  const bw = Math.min(cbarW * 0.4, 1.5 * lineH);
  const steps = 64;
  for (let k = 0; k < steps; k++) p.rect(bx, gy + gh - ((k + 1) * gh) / steps, bw, gh / steps + 0.5, { fill: blues(k / (steps - 1)) });
  p.rect(bx, gy, bw, gh, { stroke: { color: [0, 0, 0], width: Math.max(1, 0.8 * s) } });
  const ct = niceTicks(0, vmax > 0 ? vmax : 1, 5);
  const cl = tickLabels(ct);
  ct.forEach((v, k) => {
    const y = gy + gh - (v / (vmax > 0 ? vmax : 1)) * gh;
    p.line(bx + bw, y, bx + bw + 3.5 * s, y, { color: [0, 0, 0], width: Math.max(1, 0.8 * s) });
    p.text(cl[k], bx + bw + 7 * s, y, { px: font, baseline: 'middle', role: 'cbar' });
  });
  return p.toRgba();
}
