/**
 * The rasterizer and the font of every picture the package writes (plots, detection overlays, mosaics).
 *
 * - Rasterizer: `@napi-rs/canvas` (Skia behind the browser's Canvas 2D API; prebuilt binaries for Linux,
 *   macOS, Windows and Android on x64/arm64, installed as optional dependencies by npm, no build step).
 *   Loaded on first use, not when the package is imported (it costs ~0.2 s), and never in the browser
 *   bundle (src/viz is Node-only; test/examples/browser.test.ts checks).
 * - Font: DejaVu Sans (matplotlib's default font, so the charts read like Ultralytics' matplotlib ones),
 *   regular and bold, from the npm package `@fontsource/dejavu-sans` (its latin subset as WOFF2, read by
 *   Skia directly). Licence: the DejaVu fonts licence (Bitstream Vera's permissive licence; DejaVu's
 *   changes public domain), the package's LICENSE file. A character outside the subset (Latin-1 and
 *   punctuation) comes from an installed system font where one has it.
 * - Text is drawn only under FONT_FAMILY with `lang = 'en'` and the canvas's 'portable' text renderer,
 *   so the pixels and metrics are the same on every machine.
 *
 * Why this one (docs/training.md "Plots"): measured against pureimage (pure JS) and @resvg/resvg-js
 * (SVG), it is the only one with exact text metrics (measureText) and the whole Canvas API (images,
 * rotation, clipping, dashes); ~35 MB installed against 2 and 4 MB.
 */
import { createRequire } from 'node:module';
import type * as Canvas from '@napi-rs/canvas';

export type { SKRSContext2D as Context2D, Canvas as CanvasObject } from '@napi-rs/canvas';

/** The family name the DejaVu Sans faces are registered under (nothing else is looked up). */
export const FONT_FAMILY = 'yolo-wgsl DejaVu Sans';

/** Font files: `@fontsource/dejavu-sans` latin subset. */
export const FONT_FILES = {
  regular: '@fontsource/dejavu-sans/files/dejavu-sans-latin-400-normal.woff2',
  bold: '@fontsource/dejavu-sans/files/dejavu-sans-latin-700-normal.woff2',
} as const;

let mod: typeof Canvas | undefined;

/** The canvas module, loaded (and the fonts registered) on the first call. */
export function canvasModule(): typeof Canvas {
  if (mod) return mod;
  const require = createRequire(import.meta.url);
  let m: typeof Canvas;
  try {
    m = require('@napi-rs/canvas') as typeof Canvas;
  } catch (e) {
    throw new Error(`drawing needs the package @napi-rs/canvas (a dependency of yolo-wgsl; its prebuilt binary for ${process.platform}-${process.arch} is an optional dependency npm installs): ${(e as Error).message}`);
  }
  for (const [weight, spec] of [[400, FONT_FILES.regular], [700, FONT_FILES.bold]] as const) {
    let file: string;
    try {
      file = require.resolve(spec);
    } catch (e) {
      throw new Error(`drawing needs the font package @fontsource/dejavu-sans (a dependency of yolo-wgsl): ${(e as Error).message}`);
    }
    if (!m.GlobalFonts.registerFromPath(file, FONT_FAMILY, { weight, style: 'normal' })) throw new Error(`could not register the font ${file}`);
  }
  mod = m;
  return m;
}

/** The CSS font of `px` pixels (bold or regular). */
export function fontSpec(px: number, bold = false): string {
  return `${bold ? 'bold ' : ''}${+px.toFixed(2)}px "${FONT_FAMILY}"`;
}

/** A canvas of w x h with its 2D context set up for drawing text (lang 'en'), filled with `fill` (CSS colour) unless null. */
export function createCanvas2d(w: number, h: number, fill: string | null = '#ffffff'): { canvas: Canvas.Canvas; ctx: Canvas.SKRSContext2D } {
  const m = canvasModule();
  const canvas = m.createCanvas(Math.max(1, Math.round(w)), Math.max(1, Math.round(h)));
  const ctx = canvas.getContext('2d');
  ctx.lang = 'en';
  if (fill !== null) {
    ctx.fillStyle = fill;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  return { canvas, ctx };
}

/** Layout metrics of a line of text: advance width and the font's ascent and descent (pixels). */
export interface TextMetrics {
  width: number;
  ascent: number;
  descent: number;
}

let measureCtx: Canvas.SKRSContext2D | undefined;

/** The metrics of `text` at `px` pixels (Skia's measureText on the registered font). */
export function measureText(text: string, px: number, bold = false): TextMetrics {
  measureCtx ??= createCanvas2d(1, 1, null).ctx;
  measureCtx.font = fontSpec(px, bold);
  const m = measureCtx.measureText(text);
  return { width: m.width, ascent: m.fontBoundingBoxAscent, descent: m.fontBoundingBoxDescent };
}
