/**
 * A deterministic synthetic detection dataset: coloured circles/ellipses, squares/rectangles and
 * triangles (the classes of fixtures/cfg/yolo-mini.names) on textured backgrounds (gradients, stripes,
 * checkers, value noise, pixel noise), several objects per image, varied sizes, aspects, rotations and
 * colours, partial occlusion and objects cut by the image border.
 *
 * Layout written under `out` (the Ultralytics layout, which Darknet's images -> labels rule also finds):
 *   images/{train,val}/NNNNNN.png   RGB PNG, size x size
 *   labels/{train,val}/NNNNNN.txt   YOLO `class cx cy w h` (normalised, 6 decimals)
 *   train.txt, val.txt              image lists (paths relative to `out`)
 *   synth.names, synth.data         Darknet description (paths relative to `out`)
 *   synth.yaml                      Ultralytics description (path: .)
 *   synth.json                      the parameters (a later call with the same ones returns at once)
 *
 * Labels are the **visible** extent of each object: the bounding box of the pixels it owns in the final
 * image (drawn with hard edges: a pixel belongs to a shape when its centre is inside), so a label is
 * exact to the pixel. Objects drawn later occlude earlier ones; placement is retried so that every object
 * keeps at least half of its pixels, and an object keeps at least 60% of its area inside the image.
 *
 * Determinism: every image is a pure function of (seed, split, index, size) through its own Rng, and PNG
 * encoding (pngjs, zlib) is deterministic, so the same seed gives byte-identical files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { Rng } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { mixSeed } from './augment.js';

export const SYNTH_CLASSES = ['circle', 'square', 'triangle'] as const;
export const SYNTH_VERSION = 3;

/**
 * Every shape the generator draws. The default class set is SYNTH_CLASSES; `generateSynth({ classes })`
 * picks another (its order gives the class ids), e.g. a different task to fine-tune on (docs/finetune.md):
 * `ring` (an ellipse with a hole, 50-65% of its radii, the background showing through), `cross` (a plus
 * sign: two bars 30-45% as thick as the shape), `diamond` (a rhombus), `hexagon`.
 */
export const SYNTH_SHAPES = ['circle', 'square', 'triangle', 'ring', 'cross', 'diamond', 'hexagon'] as const;
export type SynthShape = (typeof SYNTH_SHAPES)[number];

/**
 * How hard the images are. `minSize`/`maxSize`: the long side of a shape as a fraction of the image side
 * (never under 8 px); `minVisible`: the share of its own pixels every object keeps when later objects
 * overlap it; `minInside`: the share of its area that stays inside the image; `margin`: the centre lies
 * within `margin` times the shape's size outside the image border (negative: that far inside).
 */
export interface SynthDifficulty {
  minSize: number;
  maxSize: number;
  minVisible: number;
  minInside: number;
  margin: number;
}

/**
 * `hard` is the version-2 generator (shapes from 8 px, half-occluded, 40% outside the image): ambiguous
 * at 96 px even to a person for the smallest shapes. `standard` (the default) keeps shapes from 14% of
 * the image side, at most 20% occluded and 15% outside, which is what a 96-px detector can be asked to
 * see; `easy` has large, unoccluded shapes (for smoke tests).
 */
export const SYNTH_DIFFICULTY = {
  easy: { minSize: 0.25, maxSize: 0.6, minVisible: 1, minInside: 1, margin: -0.5 },
  standard: { minSize: 0.14, maxSize: 0.55, minVisible: 0.8, minInside: 0.85, margin: -0.3 },
  hard: { minSize: 0, maxSize: 0.6, minVisible: 0.5, minInside: 0.6, margin: 0.3 },
} as const satisfies Record<string, SynthDifficulty>;
export type SynthDifficultyName = keyof typeof SYNTH_DIFFICULTY;

export interface SynthOptions {
  /** Output folder (created). */
  out: string;
  trainCount?: number;
  valCount?: number;
  /** Image width and height in pixels (default 128). */
  size?: number;
  seed?: number;
  /** A preset (default `standard`) or explicit limits. */
  difficulty?: SynthDifficultyName | SynthDifficulty;
  /**
   * The class set, in class-id order (default SYNTH_CLASSES: circle, square, triangle; the default output
   * is the same as before this option existed). Any distinct shapes of SYNTH_SHAPES, e.g.
   * `['ring', 'cross', 'diamond', 'hexagon']`.
   */
  classes?: readonly SynthShape[];
  /** Regenerate even when out/synth.json records the same parameters. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface SynthResult {
  out: string;
  data: string;
  yaml: string;
  names: string;
  train: number;
  val: number;
  boxes: number;
  /** True when the files were already there (same parameters) and nothing was written. */
  cached: boolean;
  ms: number;
}

export type ShapeGeometry =
  | { kind: 'ellipse'; cx: number; cy: number; rx: number; ry: number }
  | { kind: 'polygon'; points: [number, number][] }
  /** An elliptic annulus: inside the ellipse and outside the same ellipse scaled by `inner` (0..1). */
  | { kind: 'ring'; cx: number; cy: number; rx: number; ry: number; inner: number }
  /** A union of convex polygons (the cross). */
  | { kind: 'polygons'; parts: [number, number][][] };

export interface SynthObject {
  classId: number;
  geometry: ShapeGeometry;
  /** 8-bit RGB fill. */
  color: [number, number, number];
  /** Visible extent in pixels: columns x1..x2-1, rows y1..y2-1. */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Visible pixels and pixels of the whole (unoccluded, unclipped) raster. */
  visible: number;
  area: number;
}

export interface SynthImage {
  width: number;
  height: number;
  /** Interleaved 8-bit RGB. */
  rgb: Uint8Array;
  /** Per pixel: 0 background, k + 1 = objects[k]. */
  owner: Uint8Array;
  objects: SynthObject[];
}

const SPLIT_ID = { train: 1, val: 2 } as const;

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][((i % 6) + 6) % 6];
  return [clamp255(r * 255), clamp255(g * 255), clamp255(b * 255)];
}

function randomColor(rng: Rng, sMin = 0.45, vMin = 0.3): [number, number, number] {
  return hsvToRgb(rng.next(), rng.uniform(sMin, 1), rng.uniform(vMin, 1));
}

/** Fills planar float channels (0..255) with a random texture. */
function paintBackground(rng: Rng, W: number, H: number, bg: Float32Array): void {
  const n = W * H;
  const layer = (kind: number, into: Float32Array) => {
    const c0 = randomColor(rng, 0, 0.1);
    const c1 = randomColor(rng, 0, 0.1);
    const ang = rng.uniform(0, Math.PI);
    const ca = Math.cos(ang), sa = Math.sin(ang);
    if (kind === 0) {
      // linear gradient
      const span = Math.abs(ca) * W + Math.abs(sa) * H;
      const off = Math.min(0, ca * W) + Math.min(0, sa * H);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const t = (ca * x + sa * y - off) / span;
        for (let k = 0; k < 3; k++) into[k * n + y * W + x] = c0[k] + (c1[k] - c0[k]) * t;
      }
    } else if (kind === 1) {
      // stripes (soft or hard)
      const period = rng.uniform(4, 24);
      const hard = rng.next() < 0.5;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        let t = 0.5 + 0.5 * Math.sin((2 * Math.PI * (ca * x + sa * y)) / period);
        if (hard) t = t > 0.5 ? 1 : 0;
        for (let k = 0; k < 3; k++) into[k * n + y * W + x] = c0[k] + (c1[k] - c0[k]) * t;
      }
    } else if (kind === 2) {
      // checkerboard
      const cell = 4 + rng.int(16);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const t = (Math.floor(x / cell) + Math.floor(y / cell)) & 1;
        for (let k = 0; k < 3; k++) into[k * n + y * W + x] = t ? c1[k] : c0[k];
      }
    } else {
      // value noise: a coarse random grid, bilinear (smoothstep) between its nodes, per channel
      const g = 3 + rng.int(10);
      const nodes = new Float32Array(3 * (g + 1) * (g + 1));
      for (let i = 0; i < nodes.length; i++) nodes[i] = rng.uniform(0, 255);
      for (let y = 0; y < H; y++) {
        const fy = (y / H) * g, iy = Math.floor(fy);
        let ty = fy - iy;
        ty = ty * ty * (3 - 2 * ty);
        for (let x = 0; x < W; x++) {
          const fx = (x / W) * g, ix = Math.floor(fx);
          let tx = fx - ix;
          tx = tx * tx * (3 - 2 * tx);
          for (let k = 0; k < 3; k++) {
            const b = k * (g + 1) * (g + 1);
            const a00 = nodes[b + iy * (g + 1) + ix], a01 = nodes[b + iy * (g + 1) + ix + 1];
            const a10 = nodes[b + (iy + 1) * (g + 1) + ix], a11 = nodes[b + (iy + 1) * (g + 1) + ix + 1];
            into[k * n + y * W + x] = (a00 * (1 - tx) + a01 * tx) * (1 - ty) + (a10 * (1 - tx) + a11 * tx) * ty;
          }
        }
      }
    }
  };
  layer(rng.int(4), bg);
  if (rng.next() < 0.5) {
    // blend a second texture
    const second = new Float32Array(3 * n);
    layer(rng.int(4), second);
    const a = rng.uniform(0.2, 0.6);
    for (let i = 0; i < 3 * n; i++) bg[i] = bg[i] * (1 - a) + second[i] * a;
  }
  const noise = rng.next() < 0.7 ? rng.uniform(2, 20) : 0;
  if (noise > 0) for (let i = 0; i < 3 * n; i++) bg[i] += (rng.next() - 0.5) * 2 * noise;
}

function makeGeometry(rng: Rng, shape: SynthShape, W: number, H: number, d: SynthDifficulty): ShapeGeometry {
  const S = Math.min(W, H);
  // long side log-uniform in [max(8 px, minSize S), maxSize S]
  const lo = Math.max(8, d.minSize * S);
  const L = Math.exp(rng.uniform(Math.log(lo), Math.log(Math.max(lo, d.maxSize * S))));
  const aspect = Math.exp(rng.uniform(-0.45, 0.45));
  let w = L, h = L;
  if (aspect > 1) h = L / aspect;
  else w = L * aspect;
  // centre: up to `margin` of the shape's size outside the image (minInside is checked after rasterizing)
  const cx = rng.uniform(-d.margin * w, W + d.margin * w);
  const cy = rng.uniform(-d.margin * h, H + d.margin * h);
  if (shape === 'circle') return { kind: 'ellipse', cx, cy, rx: w / 2, ry: h / 2 };
  if (shape === 'ring') return { kind: 'ring', cx, cy, rx: w / 2, ry: h / 2, inner: rng.uniform(0.5, 0.65) };
  let pts: [number, number][];
  let rot: number;
  if (shape === 'cross') {
    // two bars through the centre, rotated together
    const t = rng.uniform(0.3, 0.45);
    const parts: [number, number][][] = [
      [[-w / 2, (-t * h) / 2], [w / 2, (-t * h) / 2], [w / 2, (t * h) / 2], [-w / 2, (t * h) / 2]],
      [[(-t * w) / 2, -h / 2], [(t * w) / 2, -h / 2], [(t * w) / 2, h / 2], [(-t * w) / 2, h / 2]],
    ];
    rot = rng.next() < 0.5 ? 0 : rng.uniform(-0.4, 0.4);
    const c = Math.cos(rot), s = Math.sin(rot);
    return { kind: 'polygons', parts: parts.map((q) => q.map(([x, y]) => [cx + c * x - s * y, cy + s * x + c * y] as [number, number])) };
  }
  if (shape === 'diamond') {
    pts = [[0, -h / 2], [w / 2, 0], [0, h / 2], [-w / 2, 0]];
    rot = rng.next() < 0.6 ? 0 : rng.uniform(-0.25, 0.25);
  } else if (shape === 'hexagon') {
    const a0 = rng.uniform(0, Math.PI / 3);
    pts = [0, 1, 2, 3, 4, 5].map((k) => [(w / 2) * Math.cos(a0 + (k * Math.PI) / 3), (h / 2) * Math.sin(a0 + (k * Math.PI) / 3)]);
    rot = 0;
  } else if (shape === 'square') {
    pts = [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]];
    rot = rng.next() < 0.6 ? 0 : rng.uniform(-0.35, 0.35);
  } else {
    // a triangle: apex anywhere along the top edge, base at the bottom
    const apex = rng.uniform(-0.4, 0.4) * w;
    pts = [[apex, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]];
    rot = rng.next() < 0.5 ? 0 : rng.uniform(-Math.PI, Math.PI);
  }
  const c = Math.cos(rot), s = Math.sin(rot);
  return { kind: 'polygon', points: pts.map(([x, y]) => [cx + c * x - s * y, cy + s * x + c * y]) };
}

/** Integer pixel bounds [x1, x2) x [y1, y2) that can contain pixel centres of the shape (unclipped). */
export function geometryBounds(g: ShapeGeometry): { x1: number; y1: number; x2: number; y2: number } {
  let a: number, b: number, c: number, d: number;
  if (g.kind === 'ellipse' || g.kind === 'ring') [a, b, c, d] = [g.cx - g.rx, g.cx + g.rx, g.cy - g.ry, g.cy + g.ry];
  else {
    const pts = g.kind === 'polygon' ? g.points : g.parts.flat();
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    [a, b, c, d] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  }
  return { x1: Math.floor(a - 0.5), x2: Math.ceil(b + 0.5), y1: Math.floor(c - 0.5), y2: Math.ceil(d + 0.5) };
}

/** Whether the pixel centre (px + 0.5, py + 0.5) is inside the shape. */
export function insideGeometry(g: ShapeGeometry, px: number, py: number): boolean {
  const x = px + 0.5, y = py + 0.5;
  if (g.kind === 'ellipse' || g.kind === 'ring') {
    const u = (x - g.cx) / g.rx, v = (y - g.cy) / g.ry;
    const r2 = u * u + v * v;
    return r2 <= 1 && (g.kind === 'ellipse' || r2 >= g.inner * g.inner);
  }
  if (g.kind === 'polygons') return g.parts.some((points) => insideConvex(points, x, y));
  return insideConvex(g.points, x, y);
}

/** Whether (x, y) is inside a convex polygon: on the same side of every edge. */
function insideConvex(p: [number, number][], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < p.length; i++) {
    const [ax, ay] = p[i];
    const [bx, by] = p[(i + 1) % p.length];
    const cr = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
    if (cr === 0) continue;
    const sgn = cr > 0 ? 1 : -1;
    if (sign === 0) sign = sgn;
    else if (sgn !== sign) return false;
  }
  return true;
}

function colorDistance(a: readonly number[], b: readonly number[]): number {
  return Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
}

/**
 * Renders one image of the synthetic dataset (pure function of its arguments). `seed` is the image's own
 * seed (see imageSeed).
 */
export function renderSynthImage(
  seed: number,
  width = 128,
  height = width,
  difficulty: SynthDifficultyName | SynthDifficulty = 'standard',
  classes: readonly SynthShape[] = SYNTH_CLASSES,
): SynthImage {
  const d = typeof difficulty === 'string' ? SYNTH_DIFFICULTY[difficulty] : difficulty;
  const rng = new Rng(seed);
  const W = width, H = height, n = W * H;
  const bg = new Float32Array(3 * n);
  paintBackground(rng, W, H, bg);
  let mean = [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += bg[k * n + i];
    mean[k] = s / n;
  }
  mean = mean.map((v) => Math.min(255, Math.max(0, v)));

  const owner = new Uint8Array(n);
  const objects: SynthObject[] = [];
  // 1..6 objects; about 4% of the images are backgrounds (no object), as real datasets have
  const want = rng.next() < 0.04 ? 0 : 1 + rng.int(6);
  const scratch: number[] = [];
  for (let k = 0; k < want; k++) {
    const classId = rng.int(classes.length);
    let color = randomColor(rng);
    for (let t = 0; t < 10 && colorDistance(color, mean) < 150; t++) color = randomColor(rng);
    for (let attempt = 0; attempt < 25; attempt++) {
      const g = makeGeometry(rng, classes[classId], W, H, d);
      const b = geometryBounds(g);
      // rasterize: pixels inside (clipped to the image), the whole raster's area
      scratch.length = 0;
      let area = 0;
      for (let y = b.y1; y < b.y2; y++) for (let x = b.x1; x < b.x2; x++) {
        if (!insideGeometry(g, x, y)) continue;
        area++;
        if (x >= 0 && x < W && y >= 0 && y < H) scratch.push(y * W + x);
      }
      if (area < 16 || scratch.length < d.minInside * area) continue;
      // occlusion check: every earlier object keeps >= minVisible of its pixels
      const lost = new Array(objects.length).fill(0);
      for (const i of scratch) if (owner[i]) lost[owner[i] - 1]++;
      if (objects.some((o, j) => o.visible - lost[j] < d.minVisible * o.visible || o.visible - lost[j] < d.minVisible * o.area)) continue;
      objects.forEach((o, j) => (o.visible -= lost[j]));
      const id = objects.length + 1;
      for (const i of scratch) owner[i] = id;
      objects.push({ classId, geometry: g, color, x1: 0, y1: 0, x2: 0, y2: 0, visible: scratch.length, area });
      break;
    }
  }
  // visible extents from the owner map
  const ext = objects.map(() => [W, H, -1, -1]);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const o = owner[y * W + x];
    if (!o) continue;
    const e = ext[o - 1];
    if (x < e[0]) e[0] = x;
    if (y < e[1]) e[1] = y;
    if (x > e[2]) e[2] = x;
    if (y > e[3]) e[3] = y;
  }
  objects.forEach((o, j) => {
    [o.x1, o.y1] = [ext[j][0], ext[j][1]];
    [o.x2, o.y2] = [ext[j][2] + 1, ext[j][3] + 1];
  });
  // compose
  const rgb = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const o = owner[i];
    if (o) {
      const c = objects[o - 1].color;
      rgb[3 * i] = c[0];
      rgb[3 * i + 1] = c[1];
      rgb[3 * i + 2] = c[2];
    } else {
      rgb[3 * i] = clamp255(bg[i]);
      rgb[3 * i + 1] = clamp255(bg[n + i]);
      rgb[3 * i + 2] = clamp255(bg[2 * n + i]);
    }
  }
  return { width: W, height: H, rgb, owner, objects };
}

/** The seed of image `index` of a split. */
export function imageSeed(seed: number, split: 'train' | 'val', index: number): number {
  return mixSeed(seed, SPLIT_ID[split], index);
}

/** YOLO label text of a rendered image (6 decimals, one line per object, drawing order). */
export function labelText(im: SynthImage): string {
  return im.objects
    .map((o) => {
      const cx = (o.x1 + o.x2) / 2 / im.width, cy = (o.y1 + o.y2) / 2 / im.height;
      const w = (o.x2 - o.x1) / im.width, h = (o.y2 - o.y1) / im.height;
      return `${o.classId} ${cx.toFixed(6)} ${cy.toFixed(6)} ${w.toFixed(6)} ${h.toFixed(6)}\n`;
    })
    .join('');
}

export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  return PNG.sync.write({ width, height, data: Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength) } as unknown as PNG, {
    colorType: 2,
    inputColorType: 2,
    inputHasAlpha: false,
    deflateLevel: 6,
    filterType: 4,
  });
}

/** Never a truncated file under its name (a full disk), without an fsync per file (the set regenerates). */
function writeText(file: string, data: string | Uint8Array): void {
  writeFileAtomic(file, data, { sync: false });
}

/** The class set of generateSynth({ classes }): distinct names of SYNTH_SHAPES, at least one. */
function checkClasses(classes: readonly string[]): readonly SynthShape[] {
  if (!Array.isArray(classes) || classes.length === 0) throw new Error('synth: classes must be a non-empty list of shapes');
  for (const c of classes) {
    if (!(SYNTH_SHAPES as readonly string[]).includes(c)) throw new Error(`synth: unknown shape ${JSON.stringify(c)} in classes (known: ${SYNTH_SHAPES.join(', ')})`);
  }
  if (new Set(classes).size !== classes.length) throw new Error(`synth: classes must be distinct, got ${classes.join(', ')}`);
  return classes as readonly SynthShape[];
}

/**
 * Writes the synthetic dataset (see the file comment). Returns the description files. When out/synth.json
 * records the same parameters and every listed file exists, nothing is written (cached: true).
 */
export function generateSynth(opts: SynthOptions): SynthResult {
  const t0 = performance.now();
  const out = path.resolve(opts.out);
  const trainCount = opts.trainCount ?? 2000;
  const valCount = opts.valCount ?? 200;
  const size = opts.size ?? 128;
  const seed = opts.seed ?? 1;
  if (!(Number.isInteger(size) && size >= 16)) throw new Error(`synth: size must be an integer >= 16, got ${size}`);
  for (const [k, v] of [['trainCount', trainCount], ['valCount', valCount]] as const) {
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`synth: ${k} must be a non-negative integer, got ${v}`);
  }
  const difficulty = opts.difficulty ?? 'standard';
  const d = typeof difficulty === 'string' ? SYNTH_DIFFICULTY[difficulty] : difficulty;
  if (!d) throw new Error(`synth: difficulty must be one of ${Object.keys(SYNTH_DIFFICULTY).join(', ')}, got ${String(difficulty)}`);
  const classes = checkClasses(opts.classes ?? SYNTH_CLASSES);
  const params = { version: SYNTH_VERSION, trainCount, valCount, size, seed, difficulty: { ...d }, classes: [...classes] };
  const files = { data: path.join(out, 'synth.data'), yaml: path.join(out, 'synth.yaml'), names: path.join(out, 'synth.names') };
  const manifest = path.join(out, 'synth.json');
  if (!opts.force && fs.existsSync(manifest)) {
    try {
      const m = JSON.parse(fs.readFileSync(manifest, 'utf8'));
      const same = JSON.stringify(m.params) === JSON.stringify(params);
      const complete = same && Object.values(files).every((f) => fs.existsSync(f)) && ['train', 'val'].every((s) => fs.existsSync(path.join(out, `${s}.txt`)));
      if (complete) {
        return { out, ...files, train: trainCount, val: valCount, boxes: m.boxes ?? 0, cached: true, ms: performance.now() - t0 };
      }
    } catch { /* regenerate */ }
  }
  fs.rmSync(manifest, { force: true });
  let boxes = 0;
  for (const split of ['train', 'val'] as const) {
    const count = split === 'train' ? trainCount : valCount;
    const imgDir = path.join(out, 'images', split);
    const lblDir = path.join(out, 'labels', split);
    // a regenerated split replaces the old one completely (a smaller count leaves no stale files)
    fs.rmSync(imgDir, { recursive: true, force: true });
    fs.rmSync(lblDir, { recursive: true, force: true });
    fs.mkdirSync(imgDir, { recursive: true });
    fs.mkdirSync(lblDir, { recursive: true });
    const list: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = String(i).padStart(6, '0');
      const im = renderSynthImage(imageSeed(seed, split, i), size, size, d, classes);
      boxes += im.objects.length;
      writeText(path.join(imgDir, `${name}.png`), encodePng(im.rgb, im.width, im.height));
      writeText(path.join(lblDir, `${name}.txt`), labelText(im));
      list.push(`images/${split}/${name}.png`);
    }
    writeText(path.join(out, `${split}.txt`), list.length ? `${list.join('\n')}\n` : '');
    opts.log?.(`synth: ${split}: ${count} images`);
  }
  writeText(files.names, `${classes.join('\n')}\n`);
  writeText(files.data, `# synthetic shapes (yolo-wgsl src/data/synth.ts), seed ${seed}; paths relative to this file's folder\nclasses = ${classes.length}\ntrain = train.txt\nvalid = val.txt\nnames = synth.names\n`);
  writeText(files.yaml, `# synthetic shapes (yolo-wgsl src/data/synth.ts), seed ${seed}\npath: .\ntrain: images/train\nval: images/val\nnc: ${classes.length}\nnames: [${classes.join(', ')}]\n`);
  writeText(manifest, `${JSON.stringify({ params, boxes }, null, 2)}\n`);
  return { out, ...files, train: trainCount, val: valCount, boxes, cached: false, ms: performance.now() - t0 };
}
