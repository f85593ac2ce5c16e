/**
 * `yolo-wgsl detect`: images -> network input (stretch, or letterbox as the cfg's letter_box / --letterbox
 * says) -> network forward -> fused head decode + threshold on the GPU (only survivors read back) -> NMS
 * (the cfg's nms_kind) -> boxes in image pixels -> drawn PNGs and optional label files.
 *
 * A bad file never stops a run: every entry of the source is checked before anything runs (list entries
 * that name no file are reported with the list's file:line), an image that cannot be read or decoded is
 * skipped with a warning, and the result's `skipped` lists them all (the CLI exits 1 when it is not empty;
 * docs/data.md "Bad images in detect and val").
 *
 * The network comes through the `DetectNetwork` seam: anything that can run an NCHW batch and hand back
 * the raw inputs of its [yolo]/[region] layers. `NetworkLoader` builds one from cfg + weights; the default,
 * `loadDetectNetwork`, builds it with src/darknet.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { HeadDecoder } from '../yolo/decode.js';
import { loadImage, sniffFormat, type Image, type Placement } from '../data/image.js';
import { drawDetections, imageToRgba, writePng } from '../viz/draw.js';
import { writeFileAtomic } from '../util/fs.js';
import { describeSkipped, detectImages, fromDarknetNetwork, imageFailureReason, objectsJson, type DetectNetwork, type FoundObject, type SkippedImage } from '../api/detector.js';
import { loadNetwork } from '../api/model.js';
import { checkPrecision, type Precision } from '../darknet/precision.js';

export type NetworkLoader = (gpu: Gpu, cfg: string, weights: string | undefined) => Promise<DetectNetwork>;

/**
 * The default loader: builds the cfg with src/darknet and loads the .weights (or, without weights, a seeded
 * random initialization, said in the log: its detections are meaningless but exercise the whole pipeline).
 * `size.precision`: the inference precision (src/darknet/precision.ts; default auto); f16 is said in the log.
 */
export async function loadDetectNetwork(gpu: Gpu, cfg: string, weights: string | undefined, log: (l: string) => void = () => {}, size?: { width?: number; height?: number; precision?: Precision }): Promise<DetectNetwork> {
  const precision = checkPrecision(size?.precision ?? 'auto', '--precision');
  const net = await loadNetwork({ cfg, weights, width: size?.width, height: size?.height, log, missingWeights: `warning: no --weights: ${path.basename(cfg)} runs with seeded random weights (detections are meaningless)` });
  net.precision = precision;
  try {
    const dn = fromDarknetNetwork(net, gpu);
    if (net.inferPrecision === 'f16') log(`precision: f16 storage (${precision === 'auto' ? 'auto: the tune measured it faster on this adapter' : '--precision f16'}; sums in f32)`);
    // all inference kernels compiled now, concurrently, instead of one by one inside the first forward
    await net.precompile(gpu);
    return dn;
  } catch (e) {
    net.dispose();
    throw e;
  }
}

export interface DetectCommandOptions {
  cfg: string;
  weights?: string;
  /** Class names file (one per line, e.g. coco.names). */
  names?: string;
  /** An image, a folder of images, or a list file (.txt, one image path per line). */
  source: string;
  /** Objectness and class-score threshold (Darknet -thresh; default 0.25). */
  conf?: number;
  /** NMS threshold (Darknet -nms; default 0.45). */
  iou?: number;
  /** Output folder for the drawn images (<name>.png) and, with saveTxt, labels/<name>.txt. */
  out?: string;
  /** Write labels/<name>.txt: "class cx cy w h score", normalised to the image, boxes clipped to it. */
  saveTxt?: boolean;
  /** Class-agnostic NMS. */
  agnostic?: boolean;
  /** Letterbox (true) or stretch (false) the images; default: the cfg's letter_box. */
  letterbox?: boolean;
  /** Override the cfg's nms_kind: default | greedynms | diounms. */
  nmsKind?: string;
  /** Detections kept per image after NMS (default 1000). */
  maxDet?: number;
  /** Images per forward (default 1). */
  batch?: number;
  /** Network input size (square; default: the cfg's width and height). */
  img?: number;
  /** Inference precision: 'auto' (default), 'f32' or 'f16' (src/darknet/precision.ts). */
  precision?: Precision;
  log?: (line: string) => void;
  gpu?: Gpu;
  loader?: NetworkLoader;
}

export interface ImageResult {
  file: string;
  width: number;
  height: number;
  objects: FoundObject[];
  placement: Placement;
  outImage?: string;
  outTxt?: string;
  outJson?: string;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/**
 * The results of a detection run, one per image that ran (in source order), and `skipped`: the images
 * that did not run and why (list entries that name no file, files that cannot be read or decoded).
 */
export type DetectResults = ImageResult[] & { skipped: SkippedImage[] };

/** The images of a source, checked before anything runs: `files` to run, `skipped` entries that cannot. */
export interface SourceList {
  files: string[];
  /** Entries that name no file, or a directory: a list file's with its file:line (`listed`). */
  skipped: SkippedImage[];
}

/** Why a path cannot be an image file (stat only), or null when it is a file. */
function notAFile(p: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    return imageFailureReason(e, p);
  }
  return st.isFile() ? null : st.isDirectory() ? 'is a directory, not an image file' : 'is not a regular file';
}

/**
 * The images of a source: one image file, the images of a folder (sorted), or the lines of a list file
 * (relative to the working folder, else to the list's folder). Every entry is checked up front (exists,
 * is a file): one that is not lands in `skipped` (a list file's entries with its file:line), and the rest
 * still run. Throws when the source itself does not exist, or names no image at all.
 */
export function collectSources(source: string): SourceList {
  if (!fs.existsSync(source)) throw new Error(`source ${source} does not exist`);
  const st = fs.statSync(source);
  const files: string[] = [];
  const skipped: SkippedImage[] = [];
  if (st.isDirectory()) {
    const names = fs.readdirSync(source).filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase())).sort();
    if (names.length === 0) throw new Error(`source folder ${source} has no .png/.jpg/.jpeg images`);
    for (const f of names.map((n) => path.join(source, n))) {
      const why = notAFile(f);
      if (why) skipped.push({ file: f, reason: why });
      else files.push(f);
    }
    return { files, skipped };
  }
  const ext = path.extname(source).toLowerCase();
  if (IMAGE_EXT.has(ext)) return { files: [source], skipped };
  const head = Buffer.alloc(8);
  const fd = fs.openSync(source, 'r');
  try {
    fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (sniffFormat(head)) return { files: [source], skipped };
  // a list file: one path per line, relative to the working folder or else to the list's folder
  const lines = fs.readFileSync(source, 'utf8').split(/\r?\n/).map((l, i) => ({ l: l.trim(), line: i + 1 })).filter(({ l }) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new Error(`list file ${source} names no images`);
  for (const { l, line } of lines) {
    const rel = path.join(path.dirname(source), l);
    const f = path.isAbsolute(l) || fs.existsSync(l) || !fs.existsSync(rel) ? l : rel;
    const why = notAFile(f);
    if (why) skipped.push({ file: l, reason: why, listed: `${source}:${line}` });
    else files.push(f);
  }
  return { files, skipped };
}

/**
 * The images of a source (see collectSources), for callers that want every entry to exist: throws, naming
 * every list entry that does not (`list.txt:LINE: image X not found`, one line each).
 */
export function listSources(source: string): string[] {
  const { files, skipped } = collectSources(source);
  if (skipped.length) throw new Error(skipped.map(describeSkipped).join('\n'));
  return files;
}

/** Class names, one per line (trailing blank lines dropped). */
export function readNames(file: string): string[] {
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Darknet-style text lines of one image's objects ("dog: 97%  (left_x: ... )"). */
export function describeObjects(objects: readonly FoundObject[]): string[] {
  return objects.map((o) => {
    const p = o.pixels;
    const r = (v: number) => String(Math.round(v)).padStart(4);
    return `${o.name}: ${Math.round(o.score * 100)}%\t(left_x: ${r(p.x1)}   top_y: ${r(p.y1)}   width: ${r(p.x2 - p.x1)}   height: ${r(p.y2 - p.y1)})`;
  });
}

/**
 * Runs detection over already-built network and image files. An image that cannot be read or decoded is
 * skipped with a warning (`warning: skipped x.png: why`) and lands in the result's `skipped`; the others
 * run. Batches are filled with the images that decode, so a batch-mate of a bad image is batched as in a
 * run without it. GPU and other errors are not skipped: they end the run.
 */
export async function detectWithNetwork(gpu: Gpu, net: DetectNetwork, files: readonly string[], opts: Omit<DetectCommandOptions, 'cfg' | 'weights' | 'source' | 'names'> & { names?: readonly string[] }): Promise<DetectResults> {
  const log = opts.log ?? (() => {});
  const batch = Math.max(1, Math.floor(opts.batch ?? 1));
  if (net.channels !== 3) throw new Error(`detect needs a 3-channel network input; the cfg has channels=${net.channels}`);
  const classes = Math.max(...net.heads.map((h) => h.classes));
  if (opts.names && opts.names.length < classes) log(`warning: ${opts.names.length} class names for ${classes} classes; the rest are shown by number`);
  const decoder = new HeadDecoder(gpu, net.heads, { width: net.width, height: net.height });
  const results: ImageResult[] = [];
  const skipped: SkippedImage[] = [];
  const usedNames = new Set<string>();
  try {
    for (let next = 0; next < files.length; ) {
      // the next `batch` images that load; only loadImage's errors (read, decode, too large) skip an image
      const chunk: string[] = [];
      const loaded: Image[] = [];
      const t0 = performance.now();
      while (chunk.length < batch && next < files.length) {
        const file = files[next++];
        try {
          loaded.push(loadImage(file));
        } catch (e) {
          const s: SkippedImage = { file, reason: imageFailureReason(e, file) };
          skipped.push(s);
          log(`warning: ${describeSkipped(s)}`);
          continue;
        }
        chunk.push(file);
      }
      if (chunk.length === 0) break;
      const loadMs = performance.now() - t0;
      const r = await detectImages(gpu, net, loaded, opts, decoder);
      for (let b = 0; b < chunk.length; b++) {
        const file = chunk[b];
        const { placement: pl, objects } = r.images[b];
        const res: ImageResult = { file, width: pl.imageWidth, height: pl.imageHeight, objects, placement: pl };
        log(`${file}: ${objects.length} objects, predicted in ${((r.forwardMs / chunk.length)).toFixed(1)} ms (load + resize ${((loadMs + r.prepareMs) / chunk.length).toFixed(1)} ms)`);
        for (const line of describeObjects(objects)) log(`  ${line}`);
        if (opts.out) {
          let base = path.basename(file, path.extname(file));
          for (let k = 1; usedNames.has(base); k++) base = `${path.basename(file, path.extname(file))}_${k}`;
          usedNames.add(base);
          const rgba = imageToRgba(loaded[b]);
          drawDetections(rgba, objects.map((o) => ({ ...o.pixels, classId: o.classId, score: o.score, label: `${o.name} ${o.score.toFixed(2)}` })), { classes });
          res.outImage = path.join(opts.out, `${base}.png`);
          writePng(res.outImage, rgba);
          res.outJson = path.join(opts.out, `${base}.json`);
          writeFileAtomic(res.outJson, JSON.stringify(resultJson(res), null, 1) + '\n');
          if (opts.saveTxt) {
            res.outTxt = path.join(opts.out, 'labels', `${base}.txt`);
            writeFileAtomic(res.outTxt, labelLines(objects, pl.imageWidth, pl.imageHeight).join(''));
          }
        }
        results.push(res);
      }
    }
  } finally {
    decoder.dispose();
  }
  return Object.assign(results, { skipped });
}

/** The JSON written per image: source file, image size, and each object's class, score and pixel box (`serve` answers the same). */
export function resultJson(r: ImageResult): object {
  return {
    image: r.file,
    width: r.width,
    height: r.height,
    detections: objectsJson(r.objects),
  };
}

/** YOLO label lines "class cx cy w h score\n", normalised to the image, boxes clipped to it. */
export function labelLines(objects: readonly FoundObject[], width: number, height: number): string[] {
  return objects.map((o) => {
    const p = o.pixels;
    const f = (v: number) => v.toFixed(6);
    return `${o.classId} ${f((p.x1 + p.x2) / 2 / width)} ${f((p.y1 + p.y2) / 2 / height)} ${f((p.x2 - p.x1) / width)} ${f((p.y2 - p.y1) / height)} ${f(o.score)}\n`;
  });
}

/**
 * The `detect` command: checks every entry of the source (warnings for those that name no image file,
 * all before anything runs), loads the network (cfg + weights) and runs detectWithNetwork over the rest;
 * ends with the line `detect: N images, K skipped`. The result's `skipped` lists the entries and images
 * that did not run (the CLI exits 1 when there are any). Throws when no image is left to run, or none of
 * them could be read.
 */
export async function detect(opts: DetectCommandOptions): Promise<DetectResults> {
  const log = opts.log ?? (() => {});
  const loader: NetworkLoader = opts.loader ?? ((gpu, cfg, w) => loadDetectNetwork(gpu, cfg, w, opts.log, { width: opts.img, height: opts.img, precision: opts.precision }));
  const src = collectSources(opts.source);
  for (const s of src.skipped) log(`warning: ${describeSkipped(s)}${s.listed ? '; skipped' : ''}`);
  if (src.files.length === 0) throw new Error(`detect: no image to run in ${opts.source}: none of its ${src.skipped.length} entries is an image file (first: ${describeSkipped(src.skipped[0])})`);
  const names = opts.names ? readNames(opts.names) : undefined;
  const gpu = opts.gpu ?? (await Gpu.create({ log: opts.log }));
  let res: DetectResults;
  try {
    const net = await loader(gpu, opts.cfg, opts.weights);
    try {
      res = await detectWithNetwork(gpu, net, src.files, { ...opts, names });
    } finally {
      net.dispose?.();
    }
  } finally {
    if (!opts.gpu) gpu.dispose();
  }
  const skipped = [...src.skipped, ...res.skipped];
  log(`detect: ${res.length} images, ${skipped.length} skipped${skipped.length ? ' (see warnings above)' : ''}`);
  if (res.length === 0) throw new Error(`detect: none of the ${skipped.length} images could be read (first: ${describeSkipped(skipped[0])})`);
  return Object.assign(res, { skipped });
}
