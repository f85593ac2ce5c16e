/**
 * `yolo-wgsl detect`: images -> network input (stretch, or letterbox as the cfg's letter_box / --letterbox
 * says) -> network forward -> fused head decode + threshold on the GPU (only survivors read back) -> NMS
 * (the cfg's nms_kind) -> boxes in image pixels -> drawn PNGs and optional label files.
 *
 * The network comes through the `DetectNetwork` seam: anything that can run an NCHW batch and hand back
 * the raw inputs of its [yolo]/[region] layers. `NetworkLoader` builds one from cfg + weights; the default,
 * `loadDarknet`, builds it with src/darknet.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { HeadDecoder } from '../yolo/decode.js';
import { loadImage, sniffFormat, type Placement } from '../data/image.js';
import { drawDetections, imageToRgba, writePng } from '../viz/draw.js';
import { writeFileAtomic } from '../util/fs.js';
import { detectImages, fromDarknetNetwork, type DetectNetwork, type FoundObject } from '../api/detector.js';
import { loadNetwork } from '../api/model.js';

// The detection core lives in src/api/detector.ts (the library API uses the same code); these names stay
// importable from here.
export { fromDarknetNetwork, postprocess, type DarknetNetworkLike, type DetectNetwork, type FoundObject } from '../api/detector.js';

export type NetworkLoader = (gpu: Gpu, cfg: string, weights: string | undefined) => Promise<DetectNetwork>;

/**
 * The default loader: builds the cfg with src/darknet and loads the .weights (or, without weights, a seeded
 * random initialization, said in the log: its detections are meaningless but exercise the whole pipeline).
 */
export async function loadDarknet(gpu: Gpu, cfg: string, weights: string | undefined, log: (l: string) => void = () => {}, size?: { width?: number; height?: number }): Promise<DetectNetwork> {
  const net = await loadNetwork({ cfg, weights, width: size?.width, height: size?.height, log, missingWeights: `warning: no --weights: ${path.basename(cfg)} runs with seeded random weights (detections are meaningless)` });
  try {
    const dn = fromDarknetNetwork(net, gpu);
    // all inference kernels compiled now, concurrently, instead of one by one inside the first forward
    await net.precompile(gpu);
    return dn;
  } catch (e) {
    net.dispose();
    throw e;
  }
}

export interface DetectOptions {
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

/** The images of a source: one image file, the images of a folder (sorted), or the lines of a list file. */
export function listSources(source: string): string[] {
  if (!fs.existsSync(source)) throw new Error(`source ${source} does not exist`);
  const st = fs.statSync(source);
  if (st.isDirectory()) {
    const files = fs.readdirSync(source).filter((f) => IMAGE_EXT.has(path.extname(f).toLowerCase())).sort().map((f) => path.join(source, f));
    if (files.length === 0) throw new Error(`source folder ${source} has no .png/.jpg/.jpeg images`);
    return files;
  }
  const ext = path.extname(source).toLowerCase();
  if (IMAGE_EXT.has(ext)) return [source];
  const head = Buffer.alloc(8);
  const fd = fs.openSync(source, 'r');
  try {
    fs.readSync(fd, head, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (sniffFormat(head)) return [source];
  // a list file: one path per line, relative to the working folder or else to the list's folder
  const lines = fs.readFileSync(source, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) throw new Error(`list file ${source} names no images`);
  return lines.map((l, i) => {
    if (path.isAbsolute(l) || fs.existsSync(l)) return l;
    const rel = path.join(path.dirname(source), l);
    if (fs.existsSync(rel)) return rel;
    throw new Error(`${source}:${i + 1}: image ${l} not found`);
  });
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

/** Runs detection over already-built network and image files. */
export async function detectWithNetwork(gpu: Gpu, net: DetectNetwork, files: readonly string[], opts: Omit<DetectOptions, 'cfg' | 'weights' | 'source' | 'names'> & { names?: readonly string[] }): Promise<ImageResult[]> {
  const log = opts.log ?? (() => {});
  const batch = Math.max(1, Math.floor(opts.batch ?? 1));
  if (net.channels !== 3) throw new Error(`detect needs a 3-channel network input; the cfg has channels=${net.channels}`);
  const classes = Math.max(...net.heads.map((h) => h.classes));
  if (opts.names && opts.names.length < classes) log(`warning: ${opts.names.length} class names for ${classes} classes; the rest are shown by number`);
  const decoder = new HeadDecoder(gpu, net.heads, { width: net.width, height: net.height });
  const results: ImageResult[] = [];
  const usedNames = new Set<string>();
  try {
    for (let i0 = 0; i0 < files.length; i0 += batch) {
      const chunk = files.slice(i0, i0 + batch);
      const t0 = performance.now();
      const loaded = chunk.map((f) => loadImage(f));
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
  return results;
}

/** The JSON written per image: source file, image size, and each object's class, score and pixel box. */
export function resultJson(r: ImageResult): object {
  return {
    image: r.file,
    width: r.width,
    height: r.height,
    detections: r.objects.map((o) => ({
      class_id: o.classId,
      name: o.name,
      score: Number(o.score.toFixed(6)),
      objectness: Number(o.objectness.toFixed(6)),
      bbox_xyxy: [o.pixels.x1, o.pixels.y1, o.pixels.x2, o.pixels.y2].map((v) => Number(v.toFixed(2))),
      bbox_cxcywh_norm: [o.box.x, o.box.y, o.box.w, o.box.h].map((v) => Number(v.toFixed(6))),
    })),
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

/** The `detect` command: loads the network (cfg + weights) and runs detectWithNetwork over the source. */
export async function detect(opts: DetectOptions): Promise<ImageResult[]> {
  const loader: NetworkLoader = opts.loader ?? ((gpu, cfg, w) => loadDarknet(gpu, cfg, w, opts.log, { width: opts.img, height: opts.img }));
  const files = listSources(opts.source);
  const names = opts.names ? readNames(opts.names) : undefined;
  const gpu = opts.gpu ?? (await Gpu.create({ log: opts.log }));
  const net = await loader(gpu, opts.cfg, opts.weights);
  try {
    return await detectWithNetwork(gpu, net, files, { ...opts, names });
  } finally {
    net.dispose?.();
    if (!opts.gpu) gpu.dispose();
  }
}
