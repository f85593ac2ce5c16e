/**
 * Pictures of labelled data, as Ultralytics draws them (yolov5 utils/plots.py plot_labels, plot_images):
 *
 * - `labelsPlot` (labels.jpg): the instances per class (bars), the shapes of up to 1000 boxes drawn from
 *   a common centre, and 2D histograms of box centres (x, y) and sizes (width, height), normalised.
 * - `batchMosaic` (val_batch0_labels.jpg, val_batch0_pred.jpg): up to 16 images in a square grid of tiles
 *   at most 1920 px wide, each fitted into its tile on grey (114) with a white border and its file name,
 *   its boxes and labels ("name", or "name 0.87" for predictions above `conf`); the same images in the
 *   same tiles for the labels and the predictions, so the two files compare side by side.
 *
 * Both use Ultralytics' 20-colour class palette (the detect overlay keeps Darknet's colours).
 */
import path from 'node:path';
import { Painter, type Figure } from './painter.js';
import { Axes, gridCells, TAB10 } from './plot.js';
import { drawLabel, type Color, type RgbaImage } from './draw.js';

/** Ultralytics' class colours (utils/plots.py Colors). */
export const ULTRALYTICS_PALETTE: readonly Color[] = ['FF3838', 'FF9D97', 'FF701F', 'FFB21D', 'CFD231', '48F90A', '92CC17', '3DDB86', '1A9334', '00D4BB', '2C99A8', '00C2FF', '344593', '6473FF', '0018EC', '8438FF', '520085', 'CB38FF', 'FF95C8', 'FF37C7']
  .map((h) => [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)] as const);

export function paletteColor(classId: number): Color {
  return ULTRALYTICS_PALETTE[((classId % 20) + 20) % 20];
}

/** A box normalised to its image: centre and size in [0, 1]. */
export interface NormBox {
  classId: number;
  cx: number;
  cy: number;
  w: number;
  h: number;
}

/** labels.jpg: class histogram, box shapes, centre and size histograms (figsize 8 x 8 in at `dpi`, default 125). */
export function labelsPlot(boxes: readonly NormBox[], names: readonly string[], opts: { dpi?: number } = {}): Figure {
  const dpi = opts.dpi ?? 125;
  const S = Math.round(8 * dpi);
  const p = new Painter(S, S);
  const [c0, c1, c2, c3] = gridCells(S, S, 2, 2);
  const nc = Math.max(names.length, ...boxes.map((b) => b.classId + 1));
  const counts = new Array<number>(nc).fill(0);
  for (const b of boxes) if (b.classId >= 0) counts[b.classId]++;
  const named = nc > 0 && nc < 30;
  const ks = counts.map((_, k) => k);
  const ymax = Math.max(1, ...counts);
  const a0 = new Axes(p, c0, {
    dpi, ylabel: 'instances', xlabel: named ? undefined : 'classes', xlim: [-0.5, Math.max(0.5, nc - 0.5)], ylim: [0, ymax * 1.05],
    xticks: named ? ks : undefined, xtickLabels: named ? ks.map((k) => names[k] ?? String(k)) : undefined,
    rotateXTicks: named,
  });
  a0.bars(ks, counts, 0.8, ks.map(paletteColor));
  a0.finish();
  // box shapes: up to 1000 boxes from the centre of a white square, axes off (Ultralytics draws them on 2000 px)
  const side = Math.min(c1.w, c1.h) - 24;
  const ox = c1.x + (c1.w - side) / 2;
  const oy = c1.y + (c1.h - side) / 2;
  p.axes.push({ x: ox, y: oy, w: side, h: side });
  for (const b of boxes.slice(0, 1000)) {
    p.rect(ox + side * (0.5 - b.w / 2), oy + side * (0.5 - b.h / 2), side * b.w, side * b.h, { stroke: { color: paletteColor(b.classId), width: Math.max(1, dpi / 125) } });
  }
  const a2 = new Axes(p, c2, { dpi, xlabel: 'x', ylabel: 'y', xlim: [0, 1], ylim: [0, 1] });
  a2.hist2d(boxes.map((b) => b.cx), boxes.map((b) => 1 - b.cy), 50, TAB10[0]);
  a2.finish();
  const a3 = new Axes(p, c3, { dpi, xlabel: 'width', ylabel: 'height', xlim: [0, 1], ylim: [0, 1] });
  a3.hist2d(boxes.map((b) => b.w), boxes.map((b) => b.h), 50, TAB10[0]);
  a3.finish();
  return p.toRgba();
}

/** A box to draw on a mosaic tile: pixel corners in its image. */
export interface TileBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  classId: number;
  /** Predictions: drawn with the score, and only above `conf`. */
  score?: number;
}

export interface MosaicTile {
  file: string;
  /** The image (null: unreadable, the tile shows why). */
  image: RgbaImage | null;
  /** Why the image is null. */
  error?: string;
  boxes: readonly TileBox[];
}

export interface MosaicOptions {
  names: readonly string[];
  /** Largest side of the mosaic (default 1920, as Ultralytics). */
  maxSize?: number;
  /** Predictions below this are not drawn (default 0.25, as Ultralytics' plot_images). */
  conf?: number;
}

/** An Ultralytics-style batch mosaic of up to 16 tiles. */
export function batchMosaic(tiles: readonly MosaicTile[], o: MosaicOptions): Figure {
  const list = tiles.slice(0, 16);
  const ns = Math.max(1, Math.ceil(Math.sqrt(list.length)));
  const cell = Math.floor(Math.min(640, (o.maxSize ?? 1920) / ns));
  const rows = Math.max(1, Math.ceil(list.length / ns));
  const p = new Painter(ns * cell, rows * cell, [255, 255, 255]);
  const px = Math.max(11, Math.round(cell * 0.045));
  const lw = Math.max(1, Math.round(px / 10));
  const conf = o.conf ?? 0.25;
  list.forEach((t, i) => {
    const x0 = (i % ns) * cell;
    const y0 = Math.floor(i / ns) * cell;
    p.rect(x0, y0, cell, cell, { fill: [114, 114, 114] });
    p.ctx.save();
    p.clipTo({ x: x0, y: y0, w: cell, h: cell });
    if (t.image) {
      const k = Math.min(cell / t.image.width, cell / t.image.height);
      const w = t.image.width * k;
      const h = t.image.height * k;
      const ix = x0 + (cell - w) / 2;
      const iy = y0 + (cell - h) / 2;
      p.image(t.image, ix, iy, w, h);
      const shown = t.boxes.filter((b) => b.score === undefined || b.score >= conf).sort((a, b) => (a.score ?? 1) - (b.score ?? 1));
      for (const b of shown) {
        const color = paletteColor(b.classId);
        const bx = ix + b.x1 * k;
        const by = iy + b.y1 * k;
        p.rect(bx, by, (b.x2 - b.x1) * k, (b.y2 - b.y1) * k, { stroke: { color, width: lw } });
        const name = o.names[b.classId] ?? String(b.classId);
        drawLabel(p, b.score === undefined ? name : `${name} ${b.score.toFixed(2)}`, bx - lw / 2, by - lw / 2, color, px, lw, { x: x0, y: y0, w: cell, h: cell });
      }
    } else {
      p.text(t.error ?? 'unreadable', x0 + cell / 2, y0 + cell / 2, { px, align: 'center', baseline: 'middle', color: [255, 255, 255], role: 'tile-error' });
    }
    p.ctx.restore();
    p.rect(x0 + lw, y0 + lw, cell - 2 * lw, cell - 2 * lw, { stroke: { color: [255, 255, 255], width: 2 * lw } });
    p.text(path.basename(t.file).slice(0, 40), x0 + 5 + 2 * lw, y0 + 5 + 2 * lw, { px, baseline: 'top', color: [220, 220, 220], role: 'filename' });
  });
  return p.toRgba();
}
