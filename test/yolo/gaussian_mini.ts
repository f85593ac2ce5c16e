/**
 * The network and input behind fixtures/golden/darknet_gaussian_yolo.json: fixtures/cfg/gaussian-mini.cfg
 * with the seeded initialization (initWeights(SEED)) and seeded biases / BN statistics (so that objectness
 * and the uncertainties spread), and a deterministic input image. The golden's generator wrote these
 * weights with saveWeights and the input as raw float32 for AlexeyAB Darknet (see the golden's meta).
 */
import path from 'node:path';
import { Network } from '../../src/darknet/network.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';

export const GAUSSIAN_MINI_CFG = path.join(packageRoot(), 'fixtures/cfg/gaussian-mini.cfg');
export const GAUSSIAN_MINI_SEED = 14;

/** The cfg built at its own size, seeded, with biases in [-1, 1] ([-3, 3] before a head) and BN scales / statistics spread. */
export function gaussianMiniNetwork(): Network {
  const net = Network.fromFile(GAUSSIAN_MINI_CFG);
  net.initWeights(GAUSSIAN_MINI_SEED);
  const rng = new Rng(GAUSSIAN_MINI_SEED + 1);
  for (const l of net.layers) {
    const d = l.data;
    if (!d) continue;
    // the head convolutions' biases spread wider: objectness, classes and sigmas from ~0.05 to ~0.95
    const r = net.layers[l.index + 1]?.head ? 3 : 1;
    if (d.biases) d.biases = randomArray(rng, d.biases.length, -r, r);
    if (d.scales) d.scales = randomArray(rng, d.scales.length, 0.5, 1.5);
    if (d.rolling_mean) d.rolling_mean = randomArray(rng, d.rolling_mean.length, -0.3, 0.3);
    if (d.rolling_variance) d.rolling_variance = randomArray(rng, d.rolling_variance.length, 0.5, 1.5);
  }
  return net;
}

/** NCHW [1, 3, 48, 64] in [0, 1): smooth gradients plus a bright square, exactly representable values. */
export function gaussianMiniInput(): { shape: [number, number, number, number]; data: Float32Array } {
  const C = 3;
  const H = 48;
  const W = 64;
  const data = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inSquare = x >= 20 && x < 44 && y >= 12 && y < 30;
        const v = inSquare ? 224 + 8 * c : (x * 3 + y * 5 + c * 61 + ((x * y) % 17)) % 256;
        data[(c * H + y) * W + x] = v / 256;
      }
    }
  }
  return { shape: [1, C, H, W], data };
}
