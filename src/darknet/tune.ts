/**
 * Autotune of a whole network: every [convolutional] layer's shape at a batch size, forward for inference,
 * plus backward data and weights for training (no backward data for layers that read the network input),
 * measured by src/tensor/ops/conv_tune.ts into the device's tuning table.
 */
import type { Gpu } from '../gpu/device.js';
import { autotuneConv, type AutotuneOptions, type ConvTuneCase, type ConvTuneResult } from '../tensor/ops/conv_tune.js';
import type { ConvPass } from '../tensor/ops/conv2d.js';
import { ConvolutionalLayer } from '../layers/convolutional.js';
import type { Network } from './network.js';

export interface NetworkTuneOptions extends AutotuneOptions {
  /** Batch size the shapes are tuned for (default 1). */
  batch?: number;
  /** Also the backward passes (training); default false (inference only). */
  train?: boolean;
}

/** The conv cases of a network (see the file comment). */
export function networkConvCases(net: Network, o: { batch?: number; train?: boolean } = {}): ConvTuneCase[] {
  const B = o.batch ?? 1;
  const cases: ConvTuneCase[] = [];
  for (const l of net.layers) {
    if (!(l instanceof ConvolutionalLayer)) continue;
    const x = [B, l.input.c, l.input.h, l.input.w];
    const w = [l.filters, l.input.c / l.groups, l.size, l.size];
    const passes: ConvPass[] = o.train ? (l.sources.includes(-1) || l.index === 0 ? ['fwd', 'bwd_weights'] : ['fwd', 'bwd_data', 'bwd_weights']) : ['fwd'];
    for (const pass of passes) cases.push({ x, w, p: l.geom(), pass, label: `layer ${l.index}` });
  }
  return cases;
}

/** Measures every conv case of the network on this device (see autotuneConv); returns one row per case. */
export async function autotuneNetwork(gpu: Gpu, net: Network, o: NetworkTuneOptions = {}): Promise<ConvTuneResult[]> {
  return autotuneConv(gpu, networkConvCases(net, o), o);
}
