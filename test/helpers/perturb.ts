/** Test networks with non-trivial parameters. */
import type { Network } from '../../src/darknet/network.js';
import { Rng, randomArray } from '../../src/util/rng.js';

/**
 * Randomizes biases, BN scales and BN statistics of every layer (the seeded init leaves them trivial), in
 * layer order from one Rng(seed): biases in [-0.5, 0.5), scales in [0.5, 1.5), rolling means in
 * [-0.3, 0.3), rolling variances in [0.5, 1.5). fixtures/golden/darknet_xnor.json depends on this order.
 */
export function perturb(net: Network, seed: number): void {
  const rng = new Rng(seed);
  for (const l of net.layers) {
    const d = l.data;
    if (!d) continue;
    if (d.biases) d.biases = randomArray(rng, d.biases.length, -0.5, 0.5);
    if (d.scales) d.scales = randomArray(rng, d.scales.length, 0.5, 1.5);
    if (d.rolling_mean) d.rolling_mean = randomArray(rng, d.rolling_mean.length, -0.3, 0.3);
    if (d.rolling_variance) d.rolling_variance = randomArray(rng, d.rolling_variance.length, 0.5, 1.5);
  }
}
