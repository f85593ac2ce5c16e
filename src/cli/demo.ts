/**
 * `yolo-wgsl demo`: the bundled main job (docs/demo.md).
 *
 *   1. generate   the deterministic synthetic shapes dataset (src/data/synth.ts) into data/synth/
 *                 (train + val; a second run with the same parameters reuses the files)
 *   2. train      fixtures/cfg/demo.cfg from scratch (seeded init) with `train` (src/cli/train.ts runTrain:
 *                 the YOLOv5 loss, the cfg's optimizer, schedule and augmentation) into runs/demo/train/
 *   3. val        the final weights on the val split (src/cli/val.ts runVal + networkDetector; Ultralytics
 *                 protocol: yolov5 val.py's mAP@0.5) into runs/demo/val/
 *   4. picture    detections on the first val images (src/cli/detect.ts detectWithNetwork) as annotated PNGs
 *                 in runs/demo/detect/ and one grid, runs/demo/detections.png
 *   5. the last line of the output is `mAP@0.5 <value>`
 */
import fs from 'node:fs';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { generateSynth, type SynthDifficultyName } from '../data/synth.js';
import { loadImage } from '../data/image.js';
import { imageToRgba, makeRgba, writePng } from '../viz/draw.js';
import { formatTable } from '../eval/metrics.js';
import { runTrain } from './train.js';
import { networkDetector, runVal } from '../api/val.js';
import { detectWithNetwork, loadDetectNetwork, readNames } from './detect.js';

export interface MainDemoOptions {
  /** Output folder (default runs/demo; emptied first). */
  out?: string;
  /** Dataset folder (default data/synth). */
  data?: string;
  /** The cfg (default fixtures/cfg/demo.cfg). */
  cfg?: string;
  trainCount?: number;
  valCount?: number;
  /** Synthetic image size in pixels (default 96). */
  size?: number;
  /** Synthetic dataset difficulty (default standard). */
  difficulty?: SynthDifficultyName;
  /** Network input size (default: the cfg's). */
  img?: number;
  /** Training iterations (default: the cfg's max_batches). */
  maxBatches?: number;
  /** Images per iteration (default: the cfg's batch). */
  batch?: number;
  /** Loss (default yolov5: it trained faster than the Darknet [yolo] loss here, docs/demo.md). */
  loss?: 'darknet' | 'yolov5';
  seed?: number;
  /** Val images drawn in the detection picture (default 8). */
  pictures?: number;
  /** Loader worker threads (default: the loader's). */
  workers?: number;
  log?: (line: string) => void;
  gpu?: Gpu;
  cwd?: string;
}

export interface MainDemoResult {
  map50: number;
  map50_95: number;
  precision: number;
  recall: number;
  iterations: number;
  seconds: { data: number; train: number; val: number; total: number };
  runDir: string;
  weights: string;
  /** The grid picture and the annotated images. */
  picture: string;
  images: string[];
}

/** Lays the images out `cols` to a row on a dark background with a 2-pixel gap. */
function gridPicture(files: readonly string[], cols: number): ReturnType<typeof makeRgba> {
  const ims = files.map((f) => imageToRgba(loadImage(f)));
  const cw = Math.max(...ims.map((m) => m.width));
  const ch = Math.max(...ims.map((m) => m.height));
  const gap = 2;
  const rows = Math.ceil(ims.length / cols);
  const grid = makeRgba(cols * cw + (cols + 1) * gap, rows * ch + (rows + 1) * gap, [32, 32, 32]);
  ims.forEach((m, k) => {
    const x0 = gap + (k % cols) * (cw + gap);
    const y0 = gap + Math.floor(k / cols) * (ch + gap);
    for (let y = 0; y < m.height; y++) {
      const s = y * m.width * 4;
      grid.data.set(m.data.subarray(s, s + m.width * 4), ((y0 + y) * grid.width + x0) * 4);
    }
  });
  return grid;
}

/** The bundled main job (see the file comment); the last log line is `mAP@0.5 <value>`. */
export async function demo(opts: MainDemoOptions = {}): Promise<MainDemoResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cwd = opts.cwd ?? process.cwd();
  const abs = (p: string) => path.resolve(cwd, p);
  const out = abs(opts.out ?? 'runs/demo');
  const dataDir = abs(opts.data ?? 'data/synth');
  const cfg = abs(opts.cfg ?? 'fixtures/cfg/demo.cfg');
  const t0 = performance.now();

  // 1. data
  log(`demo: synthetic shapes dataset in ${dataDir}`);
  const synth = generateSynth({ out: dataDir, trainCount: opts.trainCount ?? 2000, valCount: opts.valCount ?? 100, size: opts.size ?? 96, seed: opts.seed ?? 1, difficulty: opts.difficulty, log });
  log(`demo: ${synth.train} train + ${synth.val} val images, ${synth.boxes} boxes${synth.cached ? ' (already there)' : ''} in ${(synth.ms / 1000).toFixed(1)} s`);
  const t1 = performance.now();

  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const ownGpu = !opts.gpu;
  const gpu = opts.gpu ?? (await Gpu.create({ log }));
  try {
    // 2. train (validation once, at the end, below)
    const tr = await runTrain({
      cfg, data: synth.data, img: opts.img, batch: opts.batch, subdivisions: 1, maxBatches: opts.maxBatches, loss: opts.loss ?? 'yolov5',
      out, name: 'train', existOk: true, valEvery: 0, seed: opts.seed ?? 0, workers: opts.workers,
      progress: 'lines', logEvery: 25, log, gpu, cwd,
    });
    if (tr.stopped === 'aborted') throw new Error('demo: training was interrupted');
    const weights = path.join(tr.runDir, 'weights', 'final.weights');
    if (!fs.existsSync(weights)) throw new Error(`demo: training wrote no ${weights}`);
    const t2 = performance.now();

    // 3. val, 4. picture
    const net = await loadDetectNetwork(gpu, cfg, weights, log, { width: opts.img, height: opts.img });
    try {
      const lines: string[] = [];
      const r = await runVal({ data: synth.data, split: 'val', protocol: 'ultralytics', out: path.join(out, 'val'), detector: networkDetector(gpu, net, { batch: 8 }), log: (l) => lines.push(l), cwd });
      const s = r.summary;
      for (const l of [...lines.filter((x) => x.startsWith('warning')), ...formatTable(s)]) log(l);
      const t3 = performance.now();

      const n = Math.max(1, Math.min(opts.pictures ?? 8, r.images.length));
      const files = r.images.slice(0, n).map((im) => im.file);
      const res = await detectWithNetwork(gpu, net, files, { conf: 0.25, iou: 0.45, out: path.join(out, 'detect'), names: readNames(synth.names), batch: 8 });
      const drawn = res.map((x) => x.outImage!).filter(Boolean);
      const picture = path.join(out, 'detections.png');
      writePng(picture, gridPicture(drawn, Math.min(4, drawn.length)));

      const total = (performance.now() - t0) / 1000;
      const seconds = { data: (t1 - t0) / 1000, train: (t2 - t1) / 1000, val: (t3 - t2) / 1000, total };
      log(`demo: ${tr.iteration} iterations (${tr.seen} images) in ${seconds.train.toFixed(0)} s; val P ${s.precision.toFixed(3)} R ${s.recall.toFixed(3)} mAP@0.5:0.95 ${s.map50_95.toFixed(3)} on ${s.numImages} images`);
      log(`demo: detections of ${drawn.length} val images in ${picture}; total ${Math.floor(total / 60)} min ${Math.round(total % 60)} s`);
      log(`mAP@0.5 ${s.map50.toFixed(4)}`);
      return { map50: s.map50, map50_95: s.map50_95, precision: s.precision, recall: s.recall, iterations: tr.iteration, seconds, runDir: tr.runDir, weights, picture, images: drawn };
    } finally {
      net.dispose?.();
    }
  } finally {
    if (ownGpu) gpu.dispose();
  }
}
