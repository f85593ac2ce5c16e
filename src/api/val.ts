/**
 * Evaluation (the `val` command's core, also the library's evaluate() and training-time validation): scores detections against a dataset split's labels with one evaluation protocol
 * (docs/evaluation.md) and writes the table, plots and JSON.
 *
 * Detections come from a COCO results file (`predictions`: [{image_id, category_id, bbox [x,y,w,h] px,
 * score}]) or, later, from a network: `runVal` takes an optional `detector` (a function that returns
 * the detections of a batch of images), and everything after it (`scoreImages`) is the same code. The
 * image id of a dataset image is its file stem (an all-digit stem is also matched as a number, as
 * Ultralytics writes ids: 000000000139.jpg <-> 139); category_id = class index + categoryOffset (default 0).
 *
 * Unreadable images never stop a run: the scan drops those it cannot read (missing, not PNG/JPEG, bad
 * header), and the detector answers `{ skipped }` for one it cannot decode (truncated, corrupt, too
 * large). Both are excluded from scoring with a warning naming each, listed in the result's `skipped`
 * and in metrics.json (`skipped_images`); the mAP then covers the scored images only (docs/evaluation.md).
 *
 * Output folder (`out`): metrics.json, confusion_matrix.txt, PR_curve.png, F1_curve.png (P_curve.png and
 * R_curve.png with the ultralytics protocol), confusion_matrix.png, val_batch0_labels.jpg and
 * val_batch0_pred.jpg (src/eval/plots.ts), and predictions.json when a detector produced the detections.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatasetError, boxesInPixels, describeScan, formatProblem, loadDataset, scanSplit, type LabeledImage, type SplitName } from '../data/dataset.js';
import { cocoSummaryLines } from '../eval/coco.js';
import { fromCocoDetections, imageIdForFile, imageKey, toCocoDetections } from '../eval/cocojson.js';
import { ConfusionMatrix } from '../eval/confusion.js';
import { scoreDetections, formatTable, PROTOCOL_TITLES, summaryJson, summaryLine, type EvalSummary } from '../eval/metrics.js';
import { writeEvalPlots, writeValMosaics } from '../eval/plots.js';
import { isProtocol, type EvalImage, type GroundTruth, type Prediction, type Protocol } from '../eval/types.js';
import { writeFileAtomic } from '../util/fs.js';
import type { Gpu } from '../gpu/device.js';
import { loadImage, type Image } from '../data/image.js';
import { HeadDecoder } from '../yolo/decode.js';
import { describeSkipped, detectImages, imageFailureReason, type DetectNetwork, type SkippedImage } from './detector.js';

export type { SkippedImage } from './detector.js';

/** A dataset image as val sees it. */
export interface ValImage {
  file: string;
  /** COCO image id (the stem; a number when all digits). */
  id: number | string;
  width: number;
  height: number;
  gts: GroundTruth[];
}

/** A detector's answer for an image it could not read or decode: why (the image is then not scored). */
export interface UnreadImage {
  skipped: string;
}

/**
 * Produces detections for images (pixel corners in each original image, any score order), one entry per
 * image in order: its detections, or `{ skipped: why }` for an image that could not be read or decoded.
 * The network path plugs in here: load, letterbox/resize, forward, decode with `conf`, NMS with `iou`,
 * map back.
 */
export type Detector = (images: readonly ValImage[], opts: { conf: number; iou: number }) => Promise<(Prediction[] | UnreadImage)[]> | (Prediction[] | UnreadImage)[];

export interface ValOptions {
  /** COCO-format detections file (required unless a detector is given). */
  predictions?: string;
  /** Dataset description: Darknet .data or Ultralytics .yaml. */
  data: string;
  /** Evaluation protocol (default 'coco'). */
  protocol?: Protocol;
  /** Output folder for metrics.json, plots and the confusion matrix. */
  out?: string;
  /** Also write the metrics JSON to this file. */
  json?: string;
  /** Detections scoring below this are dropped before scoring (default 0.001, like yolov5 val.py --conf-thres). */
  conf?: number;
  /** NMS IoU threshold for a detector (default 0.6, like val.py --iou-thres); unused when scoring a file. */
  iou?: number;
  /** The split to score (default 'val'). */
  split?: SplitName;
  /** category_id = class index + categoryOffset (default 0). */
  categoryOffset?: number;
  /** Explicit category_id per class index (e.g. COCO's 80 -> 91 ids); wins over categoryOffset. */
  categoryIds?: readonly number[];
  /** Confusion matrix thresholds (default 0.25 / 0.45, Ultralytics). */
  confusionConf?: number;
  confusionIou?: number;
  /** Runs a network instead of reading `predictions`. */
  detector?: Detector;
  log?: (line: string) => void;
  cwd?: string;
}

export interface ValResult {
  summary: EvalSummary;
  confusion: ConfusionMatrix;
  /** The images scored (the split's images less `skipped`). */
  images: ValImage[];
  /**
   * Images of the split that were not scored: unreadable at the dataset scan (missing, not PNG/JPEG, bad
   * header) or when the detector read them (undecodable, truncated). The CLI exits 1 when there are any.
   */
  skipped: SkippedImage[];
  /** Files written. */
  files: string[];
  /** Warnings (dataset problems, unknown image ids, bad entries). */
  warnings: string[];
}

/** Dataset images with ground truth in pixels and their COCO ids; duplicate stems are an error. */
export function valImagesFrom(labeled: readonly LabeledImage[]): ValImage[] {
  const seen = new Map<string, string>();
  return labeled.map((im) => {
    const id = imageIdForFile(im.file);
    const key = imageKey(id);
    const prev = seen.get(key);
    if (prev) throw new DatasetError(`image id "${id}" is ambiguous: ${prev} and ${im.file} have the same file stem (COCO image ids are file stems)`);
    seen.set(key, im.file);
    return { file: im.file, id, width: im.width, height: im.height, gts: boxesInPixels(im) };
  });
}

/** Scores detections (one list per image, in `images` order): the protocol summary and the confusion matrix. */
export function scoreImages(images: readonly ValImage[], dets: readonly (readonly Prediction[])[], opts: { protocol: Protocol; names: readonly string[]; conf?: number; confusionConf?: number; confusionIou?: number }): { summary: EvalSummary; confusion: ConfusionMatrix; evalImages: EvalImage[] } {
  const conf = opts.conf ?? 0.001;
  const nc = opts.names.length;
  const evalImages: EvalImage[] = images.map((im, i) => ({ id: im.id, width: im.width, height: im.height, gts: im.gts, dets: (dets[i] ?? []).filter((d) => d.score >= conf) }));
  const summary = scoreDetections(evalImages, { protocol: opts.protocol, numClasses: nc, names: opts.names });
  const confusion = new ConfusionMatrix(nc, { conf: opts.confusionConf, iouThres: opts.confusionIou }).processImages(evalImages);
  return { summary, confusion, evalImages };
}

/** The `val` command. */
export async function runVal(opts: ValOptions): Promise<ValResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const protocol = opts.protocol ?? 'coco';
  if (!isProtocol(protocol)) throw new Error(`unknown protocol "${protocol}" (coco, ultralytics, voc, voc07)`);
  if (!opts.predictions && !opts.detector) throw new Error('val: pass --predictions (a COCO-format detections json) or --cfg/--weights to run a network');
  const warnings: string[] = [];
  const warn = (l: string) => {
    warnings.push(l);
    log(l.startsWith('warning: ') ? l : `warning: ${l}`);
  };
  const spec = loadDataset(opts.data, opts.cwd);
  for (const w of spec.warnings) warn(w);
  const split = opts.split ?? 'val';
  const scan = scanSplit(spec, split, { log: warn, cwd: opts.cwd });
  for (const l of describeScan(scan, spec.names).filter((x) => !x.startsWith('  '))) log(`${split}: ${l}`);
  const listed = valImagesFrom(scan.images);
  // images the scan dropped (its warnings named them): not scored either
  const skipped: SkippedImage[] = scan.problems.filter((p) => p.kind === 'image').map((p) => ({ file: p.file, reason: p.reason.replace(/; skipped$/, '') }));

  let images = listed;
  let dets: Prediction[][];
  let source: string;
  if (opts.detector) {
    const raw = await opts.detector(listed, { conf: opts.conf ?? 0.001, iou: opts.iou ?? 0.6 });
    if (raw.length !== listed.length) throw new Error(`detector returned ${raw.length} lists for ${listed.length} images`);
    // An image the detector could not read is excluded from scoring (with its labels), as the scan
    // excludes the images it cannot read: counting it as an image without detections would charge the
    // model with its labels as misses, i.e. lower recall and AP for a data fault, not for the model. The
    // mAP then covers the scored images only, and the warnings and the summary line say so.
    const fromScan = skipped.length;
    images = [];
    dets = [];
    raw.forEach((d, i) => {
      if (Array.isArray(d)) {
        images.push(listed[i]);
        dets.push(d);
      } else {
        const s: SkippedImage = { file: listed[i].file, reason: d.skipped };
        skipped.push(s);
        const n = listed[i].gts.length;
        warn(`${describeSkipped(s)} (not scored${n ? `, nor its ${n} labelled object${n === 1 ? '' : 's'}` : ''})`);
      }
    });
    if (images.length === 0) throw new DatasetError(`none of the ${listed.length} images of the ${split} split could be read (first: ${describeSkipped(skipped[fromScan])})`);
    source = 'the network';
  } else {
    const file = opts.predictions!;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`predictions ${file}: ${(e as Error).message}`);
    }
    const keys = new Set(images.map((im) => imageKey(im.id)));
    const imp = fromCocoDetections(text, { categoryOffset: opts.categoryOffset, categoryIds: opts.categoryIds, knownKeys: keys, numClasses: spec.nc, source: file });
    for (const p of imp.problems.slice(0, 20)) warn(`${p}; ignored`);
    if (imp.problems.length > 20) warn(`${file}: ${imp.problems.length - 20} more bad entries ignored`);
    if (imp.unknownImages.length) warn(`${file}: ${imp.unknownImages.length} image ids are not in the ${split} split (first: ${JSON.stringify(imp.unknownImages[0])}); their detections are ignored (image ids are file stems)`);
    dets = images.map((im) => imp.byImage.get(imageKey(im.id)) ?? []);
    const used = dets.reduce((a, d) => a + d.length, 0);
    const conf = opts.conf ?? 0.001;
    const below = dets.reduce((a, d) => a + d.filter((x) => x.score < conf).length, 0);
    if (below) warn(`${file}: ${below} of its detections score below the confidence threshold ${conf} (--conf) and are not scored`);
    if (imp.total > 0 && used === 0) warn(`${file}: none of its ${imp.total} detections names an image of the ${split} split`);
    source = file;
  }
  const { summary, confusion } = scoreImages(images, dets, { protocol, names: spec.names, conf: opts.conf, confusionConf: opts.confusionConf, confusionIou: opts.confusionIou });
  if (skipped.length) warn(`the mAP covers the ${images.length} scored images only: ${skipped.length} unreadable image${skipped.length === 1 ? ' is' : 's are'} excluded from scoring together with their labels (not counted as images without detections)`);
  log(`scoring ${summary.detections} detections from ${source} on ${images.length} images (${summary.instances} objects)${skipped.length ? `, ${skipped.length} skipped` : ''}`);
  log(`protocol: ${PROTOCOL_TITLES[protocol]}`);
  for (const l of formatTable(summary)) log(l);
  if (summary.excludedClasses.length) log(`classes with detections but no ground truth (excluded): ${summary.excludedClasses.map((k) => spec.names[k]).join(', ')}`);
  if (protocol === 'coco' && summary.coco) for (const l of cocoSummaryLines(summary.coco.stats)) log(l);
  log(summaryLine(summary));
  if (spec.nc <= 10) for (const l of confusion.toText(spec.names).split('\n')) log(l);

  const files: string[] = [];
  const json = {
    ...summaryJson(summary),
    data: opts.data,
    split,
    predictions: opts.predictions ?? null,
    confusion_matrix: { conf: confusion.conf, iou: confusion.iouThres, rows: 'predicted (last: background)', cols: 'true (last: background)', matrix: confusion.matrix.map((r) => Array.from(r)) },
    dataset: scan.counts,
    problems: scan.problems.map(formatProblem),
    scored_images: images.length,
    skipped_images: skipped.map((s) => ({ file: s.file, reason: s.reason })),
  };
  const text = `${JSON.stringify(json, null, 2)}\n`;
  if (opts.out) {
    const w = (name: string, data: string) => {
      const f = path.join(opts.out!, name);
      writeFileAtomic(f, data);
      files.push(f);
    };
    w('metrics.json', text);
    w('confusion_matrix.txt', `${confusion.toText(spec.names)}\n`);
    files.push(...writeEvalPlots(opts.out, summary, confusion));
    files.push(...writeValMosaics(opts.out, images, dets, spec.names));
    if (opts.detector) w('predictions.json', `${JSON.stringify(toCocoDetections(images.map((im, i) => ({ id: im.id, dets: dets[i] })), { categoryOffset: opts.categoryOffset, categoryIds: opts.categoryIds }))}\n`);
    log(`results written to ${opts.out}`);
  }
  if (opts.json) {
    writeFileAtomic(opts.json, text);
    files.push(opts.json);
  }
  if (skipped.length) log(`val: ${images.length} images scored, ${skipped.length} skipped (see warnings above); the mAP covers the scored images only`);
  return { summary, confusion, images, skipped, files, warnings };
}

/**
 * The network path: a Detector over a loaded network (src/cli/detect.ts): resize/letterbox as the cfg says,
 * forward, fused decode at `conf`, the cfg's NMS at `iou`, boxes mapped back to each original image.
 */
export function networkDetector(gpu: Gpu, net: DetectNetwork, o: { batch?: number; maxDet?: number; letterbox?: boolean } = {}): Detector {
  return async (images, { conf, iou }) => {
    const batch = Math.max(1, Math.floor(o.batch ?? 1));
    const decoder = new HeadDecoder(gpu, net.heads, { width: net.width, height: net.height });
    const out: (Prediction[] | UnreadImage)[] = new Array(images.length);
    try {
      for (let next = 0; next < images.length; ) {
        // the next `batch` images that load; an image loadImage fails on (read, decode, too large) is
        // answered { skipped } and its place in the batch goes to the next image
        const index: number[] = [];
        const loaded: Image[] = [];
        while (index.length < batch && next < images.length) {
          const i = next++;
          try {
            loaded.push(loadImage(images[i].file));
          } catch (e) {
            out[i] = { skipped: imageFailureReason(e, images[i].file) };
            continue;
          }
          index.push(i);
        }
        if (index.length === 0) break;
        const r = await detectImages(gpu, net, loaded, { conf, iou, maxDet: o.maxDet ?? 300, letterbox: o.letterbox, embeddings: false }, decoder);
        r.images.forEach((res, k) => {
          out[index[k]] = res.objects.map((d) => ({ x1: d.pixels.x1, y1: d.pixels.y1, x2: d.pixels.x2, y2: d.pixels.y2, classId: d.classId, score: d.score }));
        });
      }
    } finally {
      decoder.dispose();
    }
    return out;
  };
}
