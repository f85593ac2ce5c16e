/**
 * The network and input behind fixtures/golden/darknet_xnor.json: fixtures/cfg/xnor-mini.cfg with the
 * seeded initialization (initWeights(SEED)) and seeded biases / BN scales and statistics (the [batchnorm]
 * layers included), and a deterministic input. The golden's generator wrote these weights with saveWeights
 * and the input as raw float32 for AlexeyAB Darknet (see the golden's meta).
 */
import path from 'node:path';
import { Network } from '../../src/darknet/network.js';
import { packageRoot } from '../../src/util/paths.js';
import { perturb } from '../helpers/perturb.js';

export const XNOR_MINI_CFG = path.join(packageRoot(), 'fixtures/cfg/xnor-mini.cfg');
export const XNOR_MINI_SEED = 21;

export function xnorMiniNetwork(): Network {
  const net = Network.fromFile(XNOR_MINI_CFG);
  net.initWeights(XNOR_MINI_SEED);
  perturb(net, XNOR_MINI_SEED + 1);
  return net;
}

/** NCHW [1, 3, 12, 16] in [0, 1), exactly representable values. */
export function xnorMiniInput(): { shape: [number, number, number, number]; data: Float32Array } {
  const C = 3;
  const H = 12;
  const W = 16;
  const data = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[(c * H + y) * W + x] = ((x * 7 + y * 13 + c * 61 + ((x * y) % 11)) % 256) / 256;
  return { shape: [1, C, H, W], data };
}
