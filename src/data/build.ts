/**
 * Building one batch (decode + augment the images of one batch into an NCHW buffer) and the loader's epoch
 * order, with no file system or threads: src/data/loader.ts runs `buildBatchWith` in worker threads or its
 * own thread over files on disk (src/data/worker.ts `buildBatch`), src/data/memory.ts over images held in
 * memory (a browser). It is a pure function of (context, job, decoded images): the same batch wherever it is
 * built. Browser-safe (no Node import).
 */
import { Rng } from '../util/rng.js';
import type { Image } from './image.js';
import { augmentSample, drawMosaicParams, drawParams, mixSeed, mosaicSample, plainSample, type AugmentConfig, type AugmentParams, type MosaicParams, type Sample, type Target, type Truth } from './augment.js';

/** An image of the split and its truths (normalised to the image). */
export interface LoaderImage {
  file: string;
  truths: Truth[];
}

export interface BuildContext {
  images: LoaderImage[];
  /** Training augmentation, or null for the plain resize / letterbox of validation. */
  augment: AugmentConfig | null;
  /** Plain mode: letterbox instead of stretch. */
  letterBox: boolean;
  /** Decoded images kept per thread (bytes, least recently used dropped first; 0 = none). */
  cacheBytes: number;
}

export interface BatchJob {
  /** Unique per request (matches a worker's answer to its request). */
  id: number;
  seed: number;
  /** Global batch number (epoch * batchesPerEpoch + position). */
  g: number;
  epoch: number;
  position: number;
  /** Image indices of the batch's slots. */
  indices: number[];
  width: number;
  height: number;
}

export interface BuiltBatch {
  id: number;
  g: number;
  epoch: number;
  position: number;
  width: number;
  height: number;
  images: Float32Array;
  truths: Truth[][];
  files: string[];
  /** Images that could not be decoded (each replaced by the next image of the split). */
  warnings: string[];
  buildMs: number;
  /** performance.now() of the receiving thread when the batch arrived there. */
  readyAt?: number;
}

/** Stream tag of the per-image random numbers. */
const SLOT_STREAM = 0x5107;

/** The decoded image of a split's file (throws when it cannot be decoded). */
export type DecodeFile = (file: string) => Image;

function loadSample(ctx: BuildContext, decode: DecodeFile, index: number, warnings: string[]): { sample: Sample; file: string } {
  const n = ctx.images.length;
  for (let k = 0; k < n; k++) {
    const e = ctx.images[(index + k) % n];
    let image: Image;
    try {
      image = decode(e.file);
    } catch (err) {
      warnings.push(`warning: ${e.file}: ${(err as Error).message.replace(`${e.file}: `, '')}; replaced by the next image`);
      continue;
    }
    return { sample: { image, truths: e.truths }, file: e.file };
  }
  throw new Error(`none of the ${n} images of the split can be decoded`);
}

/** Builds one batch (see the file comment). Slot i's randomness comes from Rng(mixSeed(job.seed, stream, g, i)). */
export function buildBatchWith(ctx: BuildContext, job: BatchJob, decode: DecodeFile): BuiltBatch {
  const t0 = performance.now();
  if (ctx.augment?.contrastive) return contrastiveBatch(ctx, job, decode, t0);
  const { width: W, height: H } = job;
  const B = job.indices.length;
  const per = 3 * W * H;
  const images = new Float32Array(B * per);
  const truths: Truth[][] = [];
  const files: string[] = [];
  const warnings: string[] = [];
  const n = ctx.images.length;
  for (let slot = 0; slot < B; slot++) {
    const rng = new Rng(mixSeed(job.seed, SLOT_STREAM, job.g, slot));
    const target: Target = { data: images, offset: slot * per, width: W, height: H };
    const main = loadSample(ctx, decode, job.indices[slot], warnings);
    files.push(main.file);
    const cfg = ctx.augment;
    if (!cfg) {
      truths.push(plainSample(main.sample, W, H, ctx.letterBox, target));
    } else if (cfg.mosaic && rng.next() < cfg.mosaicProb) {
      const others = [0, 1, 2].map(() => loadSample(ctx, decode, rng.int(n), warnings).sample);
      truths.push(mosaicSample([main.sample, ...others], rng, cfg, W, H, target));
    } else {
      truths.push(augmentSample(main.sample, rng, cfg, W, H, target));
    }
  }
  return { id: job.id, g: job.g, epoch: job.epoch, position: job.position, width: W, height: H, images, truths, files, warnings, buildMs: performance.now() - t0 };
}

/**
 * A batch for the [contrastive] loss (AugmentConfig.contrastive, AlexeyAB load_data_detection with
 * contrastive=1): slot 2k+1 is slot 2k's image (the same mosaic images, for a mosaic) augmented again, with
 * its own crop and flip only with jitFlip and its own HSV change only with color (else its partner's; a
 * mosaic draws its own cut point, as Darknet's cut_x / cut_y per image). Every box gets a track id, the
 * same for the same box of the same file in the batch (Darknet: its index in the label file plus a hash of
 * the file's name). Slot i draws from the same Rng stream as buildBatch.
 */
function contrastiveBatch(ctx: BuildContext, job: BatchJob, decode: DecodeFile, t0: number): BuiltBatch {
  const { width: W, height: H } = job;
  const cfg = ctx.augment!;
  const pair = cfg.contrastive!;
  const B = job.indices.length;
  const per = 3 * W * H;
  const images = new Float32Array(B * per);
  const truths: Truth[][] = [];
  const files: string[] = [];
  const warnings: string[] = [];
  const n = ctx.images.length;
  const ids = new Map<string, number>();
  const tracked = (l: { sample: Sample; file: string }): Sample => ({
    image: l.sample.image,
    truths: l.sample.truths.map((t, k) => {
      const key = `${k}/${l.file}`;
      if (!ids.has(key)) ids.set(key, ids.size);
      return { ...t, track: ids.get(key)! };
    }),
  });
  /** The second image of a pair: its own draws, then its partner's crop / flip and HSV where not redrawn. */
  const share = (own: AugmentParams, partner: AugmentParams): AugmentParams => ({
    ...own,
    ...(pair.jitFlip ? {} : { pleft: partner.pleft, pright: partner.pright, ptop: partner.ptop, pbot: partner.pbot, flip: partner.flip }),
    ...(pair.color ? {} : { dhue: partner.dhue, dsat: partner.dsat, dexp: partner.dexp }),
  });
  interface Drawn { samples: Sample[]; file: string; params?: AugmentParams; mosaic?: MosaicParams }
  let prev: Drawn | null = null;
  for (let slot = 0; slot < B; slot++) {
    const rng = new Rng(mixSeed(job.seed, SLOT_STREAM, job.g, slot));
    const target: Target = { data: images, offset: slot * per, width: W, height: H };
    const partner: Drawn | null = slot % 2 === 1 ? prev : null;
    let samples: Sample[];
    let file: string;
    if (partner) {
      samples = partner.samples;
      file = partner.file;
    } else {
      const main = loadSample(ctx, decode, job.indices[slot], warnings);
      samples = [tracked(main)];
      file = main.file;
      if (cfg.mosaic && rng.next() < cfg.mosaicProb) {
        samples.push(...[0, 1, 2].map(() => tracked(loadSample(ctx, decode, rng.int(n), warnings))));
      }
    }
    files.push(file);
    if (samples.length === 4) {
      const own = drawMosaicParams(rng, cfg, samples.map((s) => s.image), W, H);
      const mp: MosaicParams = partner?.mosaic ? { ...own, parts: own.parts.map((p, q) => share(p, partner.mosaic!.parts[q])) } : own;
      truths.push(mosaicSample(samples, rng, cfg, W, H, target, mp));
      prev = { samples, file, mosaic: mp };
    } else {
      const im = samples[0].image;
      const own = drawParams(rng, cfg, im.width, im.height, W, H);
      const p: AugmentParams = partner?.params ? share(own, partner.params) : own;
      truths.push(augmentSample(samples[0], rng, cfg, W, H, target, p));
      prev = { samples, file, params: p };
    }
  }
  return { id: job.id, g: job.g, epoch: job.epoch, position: job.position, width: W, height: H, images, truths, files, warnings, buildMs: performance.now() - t0 };
}

/** Epoch e's visiting order of n images. */
export function epochOrder(seed: number, epoch: number, n: number, shuffle: boolean): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new Rng(mixSeed(seed, 0xe90c, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
