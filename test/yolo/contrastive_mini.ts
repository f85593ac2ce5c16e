/**
 * The network, inputs and truths behind fixtures/golden/darknet_contrastive.json: fixtures/cfg/contrastive-mini.cfg
 * with the seeded initialization (initWeights(SEED)) and seeded biases (objectness and classes spread), a
 * batch of 4 deterministic images (two pairs, as Darknet's contrastive=1 loads them: image 2k+1 is image 2k
 * seen again, here mirrored) and their truths with track ids (the 6th value of Darknet's truth rows). The
 * golden's generator wrote these weights with saveWeights and the inputs / truths as raw float32 for
 * AlexeyAB Darknet (see the golden's meta).
 */
import path from 'node:path';
import { Network } from '../../src/darknet/network.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';
import type { Truth } from '../../src/yolo/targets.js';

export const CONTRASTIVE_MINI_CFG = path.join(packageRoot(), 'fixtures/cfg/contrastive-mini.cfg');
export const CONTRASTIVE_MINI_SEED = 23;

/** The cfg built at its own size, seeded, with biases in [-1, 1] ([-3, 3] before the head). */
export function contrastiveMiniNetwork(): Network {
  const net = Network.fromFile(CONTRASTIVE_MINI_CFG);
  net.initWeights(CONTRASTIVE_MINI_SEED);
  const rng = new Rng(CONTRASTIVE_MINI_SEED + 1);
  for (const l of net.layers) {
    const d = l.data;
    if (!d?.biases) continue;
    const r = net.layers[l.index + 1]?.head ? 3 : 1;
    d.biases = randomArray(rng, d.biases.length, -r, r);
  }
  return net;
}

const C = 3;
const H = 48;
const W = 64;

/** One image in [0, 1) (exactly representable values): smooth patterns and two bright squares that move with `k`. */
function image(k: number, mirror: boolean): Float32Array {
  const data = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x0 = 0; x0 < W; x0++) {
        const x = mirror ? W - 1 - x0 : x0;
        const sq1 = x >= 10 + 4 * k && x < 26 + 4 * k && y >= 12 && y < 28;
        const sq2 = x >= 38 && x < 56 && y >= 22 + 3 * k && y < 40 + 3 * k;
        const v = sq1 ? 224 + 8 * c : sq2 ? 40 + 50 * c : (x * (3 + k) + y * 5 + c * 61 + ((x * y) % (17 + k))) % 256;
        data[(c * H + y) * W + x0] = v / 256;
      }
    }
  }
  return data;
}

/** NCHW [4, 3, 48, 64]: image 1 is image 0 mirrored, image 3 is image 2 mirrored (Darknet's contrastive pairs). */
export function contrastiveMiniInput(): { shape: [number, number, number, number]; data: Float32Array } {
  const data = new Float32Array(4 * C * H * W);
  [image(0, false), image(0, true), image(2, false), image(2, true)].forEach((im, b) => data.set(im, b * C * H * W));
  return { shape: [4, C, H, W], data };
}

/** A truth with its track id (Darknet's truth row: x, y, w, h, class, track_id). */
export type TrackedTruth = Truth & { track: number };

const mirror = (t: TrackedTruth): TrackedTruth => ({ ...t, x: 1 - t.x });

/**
 * The truths of the 4 images. Every box's best anchor is in the head's mask (all 3 anchors); image 2's last
 * box falls in the cell and anchor of its first one (Darknet: the later truth's track id overwrites the label),
 * so track 20 only labels a cell in image 3.
 */
export function contrastiveMiniTruths(): TrackedTruth[][] {
  const a: TrackedTruth[] = [
    { x: 0.3, y: 0.4, w: 0.14, h: 0.22, cls: 0, track: 10 },
    { x: 0.7, y: 0.6, w: 0.3, h: 0.35, cls: 1, track: 11 },
    { x: 0.52, y: 0.26, w: 0.55, h: 0.6, cls: 0, track: 12 },
  ];
  const b: TrackedTruth[] = [
    { x: 0.21, y: 0.7, w: 0.12, h: 0.2, cls: 0, track: 20 },
    { x: 0.8, y: 0.3, w: 0.33, h: 0.3, cls: 0, track: 21 },
    { x: 0.45, y: 0.55, w: 0.6, h: 0.66, cls: 1, track: 22 },
    { x: 0.62, y: 0.15, w: 0.1, h: 0.2, cls: 0, track: 24 },
  ];
  const b3: TrackedTruth[] = [...b.slice(0, 3), { x: 0.23, y: 0.72, w: 0.13, h: 0.21, cls: 0, track: 23 }];
  return [a, a.map(mirror), b3, b.map(mirror)];
}
