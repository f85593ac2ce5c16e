/**
 * Seeded training augmentation on planar float images (src/data/image.ts `Image`), Darknet semantics
 * (AlexeyAB src/data.c load_data_detection + src/image_opencv.cpp image_data_augmentation):
 *
 * - **jitter** (crop / scale / translate, [yolo] jitter): dw = trunc(ow·jitter), dh = trunc(oh·jitter);
 *   pleft, pright, ptop, pbot each uniform in [-dw, dw] (resp. dh), truncated to integers. The source
 *   rectangle (pleft, ptop, ow-pleft-pright, oh-ptop-pbot) — negative offsets reach outside the image,
 *   which reads as the image's mean colour (OpenCV `cropped.setTo(cv::mean(img))`) — is stretched to the
 *   network size with bilinear interpolation (cv::resize INTER_LINEAR: half-pixel centres, edge
 *   replicated inside the crop). Boxes: left' = (left·ow − pleft)/swidth (Darknet correct_boxes with
 *   dx = pleft/swidth, sx = swidth/ow), likewise right, top, bottom; then clipped to [0, 1].
 * - **resize** ([yolo] resize, scale jitter): resize > 1 adds to every side a value in
 *   [ow(1−resize)/2, ow(1−1/resize)/2] (zoom out / in); resize < 1 only zooms out. 1 = off.
 * - **letter_box** ([net]): the crop is padded (left/right or top/bottom, by the mean colour) to the
 *   network's aspect ratio before the stretch.
 * - **flip** ([net] flip, default 1): mirror the result horizontally with probability 1/2; left' = 1 − right.
 * - **HSV** ([net] hue, saturation, exposure): dhue uniform in [−hue, hue], dsat = rand_scale(saturation),
 *   dexp = rand_scale(exposure) (rand_scale(s): u uniform in [1, s], then u or 1/u with probability 1/2);
 *   per pixel RGB → HSV, s·dsat, v·dexp (both clamped to [0, 1], as OpenCV's 8-bit saturation does),
 *   h + dhue wrapped into [0, 1) (Darknet's own distort_image wraps; OpenCV's 8-bit H saturates), → RGB.
 *   The result stays in [0, 1].
 * - **mosaic** ([net] mosaic=1): 4 images, each fully augmented as above, cut at a random point
 *   cut_x ∈ [0.2w, 0.8w], cut_y ∈ [0.2h, 0.8h] (Darknet rand_int bounds); quadrant q takes the piece of
 *   its augmented image next to the centre, shifted by left/right/top/bottom_shift away from the mean
 *   padding exactly as Darknet computes them; with probability 1/2 an image is moved to its corner
 *   (Darknet's "move each 2nd image to the corner"). Boxes are shifted by the same offsets and clipped to
 *   their quadrant (Darknet's mosaic_bound=1; Darknet's default lets a box run into the neighbouring
 *   quadrant, which does not follow the pixels). Darknet applies mosaic to half of its load calls; the
 *   loader applies it to each image with probability `mosaicProb` (0.5).
 * - **Box filter**: after clipping a box is kept when it is at least `minBoxPixels` (2) network pixels wide
 *   and high and keeps at least `minAreaRatio` (0.1) of its unclipped transformed area (Ultralytics
 *   box_candidates thresholds; Darknet drops only boxes under 1 pixel).
 * - **random** ([yolo] random, multi-scale): sizeSchedule computes Darknet's per-10-batches size
 *   deterministically from the seed.
 *
 * Everything writes straight into a caller's NCHW batch buffer; no per-pixel allocation (one reused
 * scratch buffer per thread).
 */
import { Rng } from '../util/rng.js';
import type { Truth } from '../yolo/targets.js';
import { prepareImage, boxToNet, type Image } from './image.js';

/** A ground-truth box: class and centre / size normalised to the image it belongs to (src/yolo/targets.ts). */
export type { Truth } from '../yolo/targets.js';

/** A 32-bit seed from several integers (murmur3-style mixing): independent streams per (seed, epoch, index, ...). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9 ^ parts.length;
  for (const p of parts) {
    let k = Math.trunc(p) >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    // a high part for values beyond 32 bits
    const hi = Math.floor(p / 4294967296) >>> 0;
    if (hi) h = Math.imul(h ^ hi, 0x85ebca6b);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 0x6d2b79f5;
}

export interface AugmentConfig {
  /** [yolo] jitter (Darknet default 0.2). */
  jitter: number;
  /** [yolo] resize (1 = off). */
  resize: number;
  /** [net] hue (0), saturation (1), exposure (1). */
  hue: number;
  saturation: number;
  exposure: number;
  /** [net] flip (default on). */
  flip: boolean;
  /** [net] mosaic=1. */
  mosaic: boolean;
  /** Probability that an image becomes a mosaic when `mosaic` (0.5, Darknet's effective rate). */
  mosaicProb: number;
  /** [net] letter_box. */
  letterBox: boolean;
  /** Boxes narrower or lower than this many network pixels after clipping are dropped (2). */
  minBoxPixels: number;
  /** Boxes keeping less than this fraction of their unclipped area are dropped (0.1). */
  minAreaRatio: number;
  /** At most this many boxes per image ([yolo] max, 200); the rest are dropped. */
  maxBoxes: number;
  /**
   * [net] contrastive=1 (AlexeyAB load_data_detection with contrastive): the loader pairs the images of a
   * batch (slot 2k+1 is slot 2k's image again) and gives each box a track id (Truth.track, the same for the
   * same box of the pair), for the [contrastive] loss. The second image of a pair draws its own crop and
   * flip only with `jitFlip` (contrastive_jit_flip), its own HSV change only with `color` (contrastive_color);
   * otherwise it takes its partner's. Absent: off.
   */
  contrastive?: { jitFlip: boolean; color: boolean };
}

export const DEFAULT_AUGMENT: AugmentConfig = {
  jitter: 0.2,
  resize: 1,
  hue: 0,
  saturation: 1,
  exposure: 1,
  flip: true,
  mosaic: false,
  mosaicProb: 0.5,
  letterBox: false,
  minBoxPixels: 2,
  minAreaRatio: 0.1,
  maxBoxes: 200,
};

/** What augmentConfigFromNetwork reads: a built Network (src/darknet/network.ts) fits. */
export interface NetworkLike {
  net: { width: number; height: number; letterBox: boolean; train: Record<string, number | number[] | string> };
  /** The detection heads in layer order (Network.heads()). */
  heads(): readonly { options?: unknown }[];
}

/**
 * The detection layer Darknet reads jitter / resize / random from: the last layer when it is a head, else the
 * last head; that is the last of Network.heads().
 */
function headOptions(net: NetworkLike): { jitter?: number; resize?: number; random?: number; maxBoxes?: number } {
  const heads = net.heads();
  const head = heads[heads.length - 1];
  return (head?.options ?? {}) as { jitter?: number; resize?: number; random?: number; maxBoxes?: number };
}

/** Augmentation settings of a cfg: [net] hue/saturation/exposure/flip/mosaic/letter_box, [yolo] jitter/resize/max. */
export function augmentConfigFromNetwork(net: NetworkLike, overrides: Partial<AugmentConfig> = {}): AugmentConfig {
  const t = net.net.train;
  const num = (k: string, d: number) => (typeof t[k] === 'number' ? (t[k] as number) : d);
  const h = headOptions(net);
  return {
    ...DEFAULT_AUGMENT,
    jitter: h.jitter ?? DEFAULT_AUGMENT.jitter,
    resize: h.resize ?? 1,
    hue: num('hue', 0),
    // Darknet load_thread: 0 means 1
    saturation: num('saturation', 1) || 1,
    exposure: num('exposure', 1) || 1,
    flip: num('flip', 1) !== 0,
    mosaic: num('mosaic', 0) !== 0,
    letterBox: net.net.letterBox,
    maxBoxes: h.maxBoxes ?? DEFAULT_AUGMENT.maxBoxes,
    ...(num('contrastive', 0) ? { contrastive: { jitFlip: num('contrastive_jit_flip', 0) !== 0, color: num('contrastive_color', 0) !== 0 } } : {}),
    ...overrides,
  };
}

// ---------------------------------------------------------------- random draws (Darknet's helpers)

/** rand_precalc_random: r in [0, 1) mapped onto [min, max] (bounds swapped when reversed). */
function precalc(min: number, max: number, r: number): number {
  if (max < min) [min, max] = [max, min];
  return r * (max - min) + min;
}

/** rand_scale(s): u uniform in [1, s] (or [s, 1]), then u or 1/u with probability 1/2. */
export function randScale(rng: Rng, s: number): number {
  const u = precalc(1, s, rng.next());
  return rng.next() < 0.5 ? u : 1 / u;
}

/** rand_int(min, max): integer uniform in [trunc(min), trunc(max)] inclusive. */
function randInt(rng: Rng, min: number, max: number): number {
  let a = Math.trunc(min), b = Math.trunc(max);
  if (b < a) [a, b] = [b, a];
  return a + rng.int(b - a + 1);
}

/** One image's draws: the crop (in source pixels), flip and the HSV change. */
export interface AugmentParams {
  pleft: number;
  pright: number;
  ptop: number;
  pbot: number;
  flip: boolean;
  dhue: number;
  dsat: number;
  dexp: number;
}

/** The identity: the whole image, no flip, no colour change. */
export const IDENTITY_PARAMS: AugmentParams = { pleft: 0, pright: 0, ptop: 0, pbot: 0, flip: false, dhue: 0, dsat: 1, dexp: 1 };

/** Darknet's per-image draws (load_data_detection, track=0) for an ow x oh image and a netW x netH input. */
export function drawParams(rng: Rng, cfg: AugmentConfig, ow: number, oh: number, netW: number, netH: number): AugmentParams {
  const dw = Math.trunc(ow * cfg.jitter);
  const dh = Math.trunc(oh * cfg.jitter);
  let down = cfg.resize, up = cfg.resize;
  if (down > 1) down = 1 / down;
  if (up < 1) up = 1 / up;
  const minRdw = Math.trunc((ow * (1 - 1 / down)) / 2); // <= 0
  const minRdh = Math.trunc((oh * (1 - 1 / down)) / 2);
  const maxRdw = Math.trunc((ow * (1 - 1 / up)) / 2); // >= 0
  const maxRdh = Math.trunc((oh * (1 - 1 / up)) / 2);
  const resizeR1 = rng.next();
  const resizeR2 = rng.next();
  const r1 = rng.next(), r2 = rng.next(), r3 = rng.next(), r4 = rng.next();
  const flip = cfg.flip ? rng.next() < 0.5 : false;
  const dhue = precalc(-cfg.hue, cfg.hue, rng.next());
  const dsat = randScale(rng, cfg.saturation);
  const dexp = randScale(rng, cfg.exposure);
  let pleft = Math.trunc(precalc(-dw, dw, r1));
  let pright = Math.trunc(precalc(-dw, dw, r2));
  let ptop = Math.trunc(precalc(-dh, dh, r3));
  let pbot = Math.trunc(precalc(-dh, dh, r4));
  const hiW = cfg.resize < 1 ? 0 : maxRdw;
  const hiH = cfg.resize < 1 ? 0 : maxRdh;
  pleft = Math.trunc(pleft + precalc(minRdw, hiW, resizeR1));
  pright = Math.trunc(pright + precalc(minRdw, hiW, resizeR2));
  ptop = Math.trunc(ptop + precalc(minRdh, hiH, resizeR1));
  pbot = Math.trunc(pbot + precalc(minRdh, hiH, resizeR2));
  if (cfg.letterBox) {
    const imgAr = Math.fround(ow / oh);
    const netAr = Math.fround(netW / netH);
    if (imgAr / netAr > 1) {
      const deltaH = (ow / netAr - oh) / 2;
      ptop = Math.trunc(ptop - deltaH);
      pbot = Math.trunc(pbot - deltaH);
    } else {
      const deltaW = (oh * netAr - ow) / 2;
      pleft = Math.trunc(pleft - deltaW);
      pright = Math.trunc(pright - deltaW);
    }
  }
  // keep at least one source pixel (Darknet would fail in OpenCV here; only jitter >= 0.5 gets close)
  if (ow - pleft - pright < 1) pright = ow - pleft - 1;
  if (oh - ptop - pbot < 1) pbot = oh - ptop - 1;
  return { pleft, pright, ptop, pbot, flip, dhue, dsat, dexp };
}

// ---------------------------------------------------------------- pixels

let scratch = new Float32Array(0);
function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, scratch.length * 2));
  return scratch;
}

/** Per-channel mean of an image (Darknet's crop fill). */
export function meanColor(im: Image): Float32Array {
  const n = im.width * im.height;
  const m = new Float32Array(im.channels);
  for (let k = 0; k < im.channels; k++) {
    let s = 0;
    const d = im.data;
    for (let i = k * n, e = i + n; i < e; i++) s += d[i];
    m[k] = s / n;
  }
  return m;
}

/** A region of the virtual outW x outH augmented image. */
export interface Window {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where rendered pixels go: a planar image of `channels` x height x width at `offset` in `data`. */
export interface Target {
  data: Float32Array;
  offset: number;
  width: number;
  height: number;
}

/**
 * Renders the window `win` of the augmented outW x outH image (crop of `p`, flip, HSV) into `dst` at
 * (dx, dy). Bilinear with half-pixel centres over the crop; source pixels outside the image read `fill`.
 */
export function renderAugmented(src: Image, p: AugmentParams, outW: number, outH: number, win: Window, dst: Target, dx: number, dy: number, fill: Float32Array): void {
  const C = src.channels;
  const W = src.width, H = src.height;
  const cw = W - p.pleft - p.pright;
  const ch = H - p.ptop - p.pbot;
  if (win.w <= 0 || win.h <= 0) return;
  if (win.x < 0 || win.y < 0 || win.x + win.w > outW || win.y + win.h > outH) throw new Error(`renderAugmented: window ${JSON.stringify(win)} outside ${outW}x${outH}`);
  if (dx < 0 || dy < 0 || dx + win.w > dst.width || dy + win.h > dst.height) throw new Error(`renderAugmented: window does not fit the target at (${dx}, ${dy})`);
  // column taps
  const ww = win.w, wh = win.h;
  const xs0 = new Int32Array(ww), xs1 = new Int32Array(ww), fxs = new Float32Array(ww);
  const sxs = cw / outW;
  for (let i = 0; i < ww; i++) {
    const X = win.x + i;
    const Xv = p.flip ? outW - 1 - X : X;
    let u = (Xv + 0.5) * sxs - 0.5;
    if (u < 0) u = 0;
    if (u > cw - 1) u = cw - 1;
    const c0 = Math.floor(u);
    const c1 = c0 + 1 < cw ? c0 + 1 : c0;
    fxs[i] = u - c0;
    const s0 = c0 + p.pleft, s1 = c1 + p.pleft;
    xs0[i] = s0 >= 0 && s0 < W ? s0 : -1;
    xs1[i] = s1 >= 0 && s1 < W ? s1 : -1;
  }
  // row taps
  const ys0 = new Int32Array(wh), ys1 = new Int32Array(wh), fys = new Float32Array(wh);
  const sys = ch / outH;
  let rMin = Infinity, rMax = -Infinity;
  for (let j = 0; j < wh; j++) {
    let v = (win.y + j + 0.5) * sys - 0.5;
    if (v < 0) v = 0;
    if (v > ch - 1) v = ch - 1;
    const r0 = Math.floor(v);
    const r1 = r0 + 1 < ch ? r0 + 1 : r0;
    fys[j] = v - r0;
    const s0 = r0 + p.ptop, s1 = r1 + p.ptop;
    ys0[j] = s0 >= 0 && s0 < H ? s0 : -1;
    ys1[j] = s1 >= 0 && s1 < H ? s1 : -1;
    for (const s of [ys0[j], ys1[j]]) {
      if (s < 0) continue;
      if (s < rMin) rMin = s;
      if (s > rMax) rMax = s;
    }
  }
  // pass 1: horizontal interpolation of the needed source rows into slots; slot `slots` is the fill row.
  // Out-of-image columns read index W of a padded row copy (the fill value): no branch per pixel.
  const nRange = rMax >= rMin ? rMax - rMin + 1 : 0;
  const slotOf = new Int32Array(nRange).fill(-1);
  let slots = 0;
  for (let j = 0; j < wh; j++) {
    const a = ys0[j], b = ys1[j];
    if (a >= 0 && slotOf[a - rMin] < 0) slotOf[a - rMin] = slots++;
    if (b >= 0 && slotOf[b - rMin] < 0) slotOf[b - rMin] = slots++;
  }
  for (let i = 0; i < ww; i++) {
    if (xs0[i] < 0) xs0[i] = W;
    if (xs1[i] < 0) xs1[i] = W;
  }
  const rowLen = slots + 1;
  const buf = scratchOf(C * rowLen * ww + W + 1);
  const tmp = buf.subarray(0, C * rowLen * ww);
  const row = buf.subarray(C * rowLen * ww, C * rowLen * ww + W + 1);
  const sd = src.data;
  for (let k = 0; k < C; k++) {
    row[W] = fill[k];
    for (let r = 0; r < nRange; r++) {
      const slot = slotOf[r];
      if (slot < 0) continue;
      const rowBase = (k * H + rMin + r) * W;
      row.set(sd.subarray(rowBase, rowBase + W));
      const o = (k * rowLen + slot) * ww;
      for (let i = 0; i < ww; i++) {
        const a = row[xs0[i]];
        tmp[o + i] = a + fxs[i] * (row[xs1[i]] - a);
      }
    }
    tmp.fill(fill[k], (k * rowLen + slots) * ww, (k * rowLen + slots + 1) * ww);
  }
  // pass 2: vertical
  const dd = dst.data;
  const plane = dst.width * dst.height;
  for (let k = 0; k < C; k++) {
    for (let j = 0; j < wh; j++) {
      const o = dst.offset + k * plane + (dy + j) * dst.width + dx;
      const a0 = (k * rowLen + (ys0[j] >= 0 ? slotOf[ys0[j] - rMin] : slots)) * ww;
      const a1 = (k * rowLen + (ys1[j] >= 0 ? slotOf[ys1[j] - rMin] : slots)) * ww;
      const fy = fys[j];
      if (fy === 0) {
        dd.set(tmp.subarray(a0, a0 + ww), o);
        continue;
      }
      for (let i = 0; i < ww; i++) {
        const t0 = tmp[a0 + i];
        dd[o + i] = t0 + fy * (tmp[a1 + i] - t0);
      }
    }
  }
  if (C >= 3) applyHsv(dst, dx, dy, ww, wh, p.dhue, p.dsat, p.dexp);
  else if (p.dexp !== 1) {
    for (let j = 0; j < wh; j++) {
      const o = dst.offset + (dy + j) * dst.width + dx;
      for (let i = 0; i < ww; i++) dd[o + i] = Math.min(1, Math.max(0, dd[o + i] * p.dexp));
    }
  }
}

/**
 * HSV change of a region of a planar RGB target (channels 0..2): h + dhue (wrapped), s·dsat and v·dexp
 * (clamped to [0, 1]). A no-op for (0, 1, 1). Values end in [0, 1].
 */
export function applyHsv(dst: Target, x0: number, y0: number, w: number, h: number, dhue: number, dsat: number, dexp: number): void {
  if (dhue === 0 && dsat === 1 && dexp === 1) return;
  const d = dst.data;
  const plane = dst.width * dst.height;
  const dh6 = dhue * 6;
  for (let y = y0; y < y0 + h; y++) {
    let i = dst.offset + y * dst.width + x0;
    for (let e = i + w; i < e; i++) {
      const r = d[i], g = d[i + plane], b = d[i + 2 * plane];
      const max = r > g ? (r > b ? r : b) : g > b ? g : b;
      const min = r < g ? (r < b ? r : b) : g < b ? g : b;
      const delta = max - min;
      let v = max * dexp;
      if (v > 1) v = 1;
      else if (v < 0) v = 0;
      if (!(delta > 0)) {
        // grey: no hue, saturation 0 stays 0
        d[i] = d[i + plane] = d[i + 2 * plane] = v;
        continue;
      }
      let s = (delta / max) * dsat;
      if (s > 1) s = 1;
      else if (s < 0) s = 0;
      // hue in sixths, shifted and wrapped into [0, 6)
      let h6 = (r === max ? (g - b) / delta : g === max ? 2 + (b - r) / delta : 4 + (r - g) / delta) + dh6;
      h6 -= 6 * Math.floor(h6 / 6);
      let sector = h6 | 0;
      if (sector > 5) sector = 5;
      const f = h6 - sector;
      const pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
      let R: number, G: number, B: number;
      switch (sector) {
        case 0: R = v; G = t; B = pp; break;
        case 1: R = q; G = v; B = pp; break;
        case 2: R = pp; G = v; B = t; break;
        case 3: R = pp; G = q; B = v; break;
        case 4: R = t; G = pp; B = v; break;
        default: R = v; G = pp; B = q; break;
      }
      d[i] = R;
      d[i + plane] = G;
      d[i + 2 * plane] = B;
    }
  }
}

// ---------------------------------------------------------------- boxes

/** A box in network pixels (corners), with the area it had before any clipping (and its track id, if any). */
interface PixelBox {
  cls: number;
  track?: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  area0: number;
}

/** Truths of an ow x oh image through the crop / stretch / flip of `p` into outW x outH pixels (not clipped). */
function transformToPixels(truths: readonly Truth[], p: AugmentParams, ow: number, oh: number, outW: number, outH: number): PixelBox[] {
  const sw = ow - p.pleft - p.pright;
  const sh = oh - p.ptop - p.pbot;
  const out: PixelBox[] = [];
  for (const t of truths) {
    let l = ((t.x - t.w / 2) * ow - p.pleft) / sw;
    let r = ((t.x + t.w / 2) * ow - p.pleft) / sw;
    const tp = ((t.y - t.h / 2) * oh - p.ptop) / sh;
    const bt = ((t.y + t.h / 2) * oh - p.ptop) / sh;
    if (p.flip) [l, r] = [1 - r, 1 - l];
    const b: PixelBox = { cls: t.cls, x1: l * outW, y1: tp * outH, x2: r * outW, y2: bt * outH, area0: 0 };
    if (t.track !== undefined) b.track = t.track;
    b.area0 = (b.x2 - b.x1) * (b.y2 - b.y1);
    out.push(b);
  }
  return out;
}

/** Clips pixel boxes to a rectangle and keeps those passing the size / area filter; normalised to netW x netH. */
function finishBoxes(boxes: readonly PixelBox[], clip: { x1: number; y1: number; x2: number; y2: number }, netW: number, netH: number, cfg: AugmentConfig, into: Truth[]): void {
  for (const b of boxes) {
    if (into.length >= cfg.maxBoxes) return;
    const x1 = Math.max(b.x1, clip.x1), x2 = Math.min(b.x2, clip.x2);
    const y1 = Math.max(b.y1, clip.y1), y2 = Math.min(b.y2, clip.y2);
    const w = x2 - x1, h = y2 - y1;
    if (!(w >= cfg.minBoxPixels && h >= cfg.minBoxPixels)) continue;
    if (w * h < cfg.minAreaRatio * b.area0) continue;
    const t: Truth = { cls: b.cls, x: (x1 + x2) / 2 / netW, y: (y1 + y2) / 2 / netH, w: w / netW, h: h / netH };
    if (b.track !== undefined) t.track = b.track;
    into.push(t);
  }
}

/** Truths of an ow x oh image after the augmentation `p` to netW x netH (clipped and filtered). */
export function transformTruths(truths: readonly Truth[], p: AugmentParams, ow: number, oh: number, netW: number, netH: number, cfg: AugmentConfig = DEFAULT_AUGMENT): Truth[] {
  const out: Truth[] = [];
  finishBoxes(transformToPixels(truths, p, ow, oh, netW, netH), { x1: 0, y1: 0, x2: netW, y2: netH }, netW, netH, cfg, out);
  return out;
}

// ---------------------------------------------------------------- samples

/** An image and its truths (normalised to the image). */
export interface Sample {
  image: Image;
  truths: readonly Truth[];
}

/**
 * One augmented image (jitter, flip, HSV) rendered into `dst` (a netW x netH planar image); returns its
 * truths normalised to the network input. `params` overrides the random draws (tests).
 */
export function augmentSample(s: Sample, rng: Rng, cfg: AugmentConfig, netW: number, netH: number, dst: Target, params?: AugmentParams): Truth[] {
  const p = params ?? drawParams(rng, cfg, s.image.width, s.image.height, netW, netH);
  renderAugmented(s.image, p, netW, netH, { x: 0, y: 0, w: netW, h: netH }, dst, 0, 0, meanColor(s.image));
  return transformTruths(s.truths, p, s.image.width, s.image.height, netW, netH, cfg);
}

/** The draws of a mosaic: the cut point and, per quadrant, its image's params and the corner move. */
export interface MosaicParams {
  cutX: number;
  cutY: number;
  parts: AugmentParams[];
}

/** Darknet's mosaic draws for 4 images (ow, oh each). */
export function drawMosaicParams(rng: Rng, cfg: AugmentConfig, sizes: readonly { width: number; height: number }[], netW: number, netH: number): MosaicParams {
  const cutX = randInt(rng, netW * 0.2, netW * 0.8);
  const cutY = randInt(rng, netH * 0.2, netH * 0.8);
  const parts = sizes.map((sz, q) => {
    const p = { ...drawParams(rng, cfg, sz.width, sz.height, netW, netH) };
    if (rng.next() < 0.5) {
      // move the image to its corner so that most of it stays visible (Darknet, use_mixup == 3)
      const toLeft = () => { p.pleft += p.pright; p.pright = 0; };
      const toRight = () => { p.pright += p.pleft; p.pleft = 0; };
      const toTop = () => { p.ptop += p.pbot; p.pbot = 0; };
      const toBottom = () => { p.pbot += p.ptop; p.ptop = 0; };
      const left = q === 0 || q === 2;
      if (p.flip ? left : !left) toLeft();
      else toRight();
      if (q < 2) toBottom();
      else toTop();
    }
    return p;
  });
  return { cutX, cutY, parts };
}

/**
 * A 4-image mosaic (Darknet semantics, see the file comment) rendered into `dst` (netW x netH); returns
 * the truths normalised to the network input. Quadrants: 0 top-left, 1 top-right, 2 bottom-left,
 * 3 bottom-right.
 */
export function mosaicSample(samples: readonly Sample[], rng: Rng, cfg: AugmentConfig, netW: number, netH: number, dst: Target, params?: MosaicParams): Truth[] {
  if (samples.length !== 4) throw new Error(`mosaic needs 4 images, got ${samples.length}`);
  const mp = params ?? drawMosaicParams(rng, cfg, samples.map((s) => s.image), netW, netH);
  const { cutX, cutY } = mp;
  const w = netW, h = netH;
  const out: Truth[] = [];
  samples.forEach((s, q) => {
    const p = mp.parts[q];
    const ow = s.image.width, oh = s.image.height;
    // padding (in network pixels) on each side of the augmented image, as seen after the flip
    const [pl, pr] = p.flip ? [p.pright, p.pleft] : [p.pleft, p.pright];
    const leftShift = Math.min(cutX, Math.max(0, Math.trunc((-pl * w) / ow)));
    const topShift = Math.min(cutY, Math.max(0, Math.trunc((-p.ptop * h) / oh)));
    const rightShift = Math.min(w - cutX, Math.max(0, Math.trunc((-pr * w) / ow)));
    const botShift = Math.min(h - cutY, Math.max(0, Math.trunc((-p.pbot * h) / oh)));
    const left = q === 0 || q === 2;
    const top = q < 2;
    const win: Window = {
      x: left ? w - cutX - rightShift : leftShift,
      y: top ? h - cutY - botShift : topShift,
      w: left ? cutX : w - cutX,
      h: top ? cutY : h - cutY,
    };
    const dx = left ? 0 : cutX;
    const dy = top ? 0 : cutY;
    renderAugmented(s.image, p, w, h, win, dst, dx, dy, meanColor(s.image));
    const boxes = transformToPixels(s.truths, p, ow, oh, w, h).map((b) => ({ ...b, x1: b.x1 - win.x + dx, x2: b.x2 - win.x + dx, y1: b.y1 - win.y + dy, y2: b.y2 - win.y + dy }));
    finishBoxes(boxes, { x1: dx, y1: dy, x2: dx + win.w, y2: dy + win.h }, w, h, cfg, out);
  });
  return out;
}

/**
 * Without augmentation (validation): the image resized to netW x netH as for inference (Darknet
 * resize_image, or letterbox_image when `letterBox`), truths mapped accordingly (unchanged for a
 * stretch), clipped and filtered like augmented ones.
 */
export function plainSample(s: Sample, netW: number, netH: number, letterBox: boolean, dst: Target, cfg: AugmentConfig = DEFAULT_AUGMENT): Truth[] {
  const { image, placement } = prepareImage(s.image, netW, netH, letterBox);
  if (dst.width !== netW || dst.height !== netH) throw new Error(`plainSample: target is ${dst.width}x${dst.height}, expected ${netW}x${netH}`);
  dst.data.set(image.data, dst.offset);
  const boxes: PixelBox[] = s.truths.map((t) => {
    const b = boxToNet(t, placement);
    const px: PixelBox = { cls: t.cls, x1: (b.x - b.w / 2) * netW, y1: (b.y - b.h / 2) * netH, x2: (b.x + b.w / 2) * netW, y2: (b.y + b.h / 2) * netH, area0: 0 };
    if (t.track !== undefined) px.track = t.track;
    px.area0 = (px.x2 - px.x1) * (px.y2 - px.y1);
    return px;
  });
  const out: Truth[] = [];
  finishBoxes(boxes, { x1: 0, y1: 0, x2: netW, y2: netH }, netW, netH, cfg, out);
  return out;
}

// ---------------------------------------------------------------- multi-scale

export interface SizeScheduleOptions {
  seed: number;
  /** The cfg's input size (init_w, init_h). */
  width: number;
  height: number;
  /** [yolo] random of the last layer: 0 off, 1 → coefficient 1.4, any other value is the coefficient. */
  random: number;
  /** [net] resize_step (Darknet default 32). */
  resizeStep?: number;
  /** Batches between size changes (Darknet: 10). */
  period?: number;
  /** [net] max_batches: the last 100 batches use the largest size, as Darknet does. */
  maxBatches?: number;
  /** Darknet's first period (and last 100 batches) at the largest size (default true). */
  maxAtEnds?: boolean;
}

/**
 * Darknet's multi-scale training sizes (train_detector, `random`): every `period` batches
 * random_val = rand_scale(coef); dim = round(random_val·init/step + 1)·step (note Darknet's +1: sizes lean
 * one step up), back to init when random_val < 1 but the size grew; at least one step; the first period
 * and the last 100 batches use the largest size round(coef·init/step + 1)·step. The size of batch b is a
 * pure function of (seed, floor(b / period)), so a resumed run gets the same sizes.
 */
export function sizeSchedule(o: SizeScheduleOptions): (batch: number) => { width: number; height: number } {
  const step = o.resizeStep ?? 32;
  const period = o.period ?? 10;
  const fixed = { width: o.width, height: o.height };
  if (!o.random) return () => fixed;
  const coef = o.random === 1 ? 1.4 : o.random;
  const maxW = Math.round((coef * o.width) / step + 1) * step;
  const maxH = Math.round((coef * o.height) / step + 1) * step;
  const atEnds = o.maxAtEnds ?? true;
  return (batch: number) => {
    const k = Math.floor(batch / period);
    if (atEnds && (k === 0 || (o.maxBatches !== undefined && batch > o.maxBatches - 100))) return { width: Math.max(step, maxW), height: Math.max(step, maxH) };
    const rng = new Rng(mixSeed(o.seed, 0x517e, k));
    const r = randScale(rng, coef);
    let w = Math.round((r * o.width) / step + 1) * step;
    let h = Math.round((r * o.height) / step + 1) * step;
    if (r < 1 && (w > o.width || h > o.height)) [w, h] = [o.width, o.height];
    return { width: Math.max(step, w), height: Math.max(step, h) };
  };
}

/** The multi-scale schedule of a cfg ([yolo] random of the last layer, [net] resize_step, max_batches). */
export function sizeScheduleFromNetwork(net: NetworkLike, seed: number, overrides: Partial<SizeScheduleOptions> = {}): (batch: number) => { width: number; height: number } {
  const t = net.net.train;
  const h = headOptions(net);
  return sizeSchedule({
    seed,
    width: net.net.width,
    height: net.net.height,
    random: h.random ?? 0,
    resizeStep: typeof t.resize_step === 'number' && t.resize_step > 0 ? t.resize_step : 32,
    maxBatches: typeof t.max_batches === 'number' ? t.max_batches : undefined,
    ...overrides,
  });
}
