/** Networks through Winograd in tests: pick it for their convs as a tune would. */
import { convGeom, convTuneKey } from '../../src/tensor/ops/conv2d.js';
import { WINOGRAD_PICKS, winogradSupported, winogradTile, type WinogradTile } from '../../src/tensor/ops/conv2d_winograd.js';
import { tuneTable } from '../../src/gpu/tune.js';
import type { Network } from '../../src/darknet/network.js';
import type { ConvolutionalLayer } from '../../src/layers/convolutional.js';
import type { Gpu } from '../../src/gpu/device.js';

/**
 * Marks every conv of `net` that Winograd can take (winogradSupported at the network's shapes) as measured
 * faster with it in the adapter's tuning table, at the tile the untuned rule would take (winogradTile:
 * 'winograd' F(4x4) or 'winograd2' F(2x2)), so that a forward at precision 'auto' runs them all through it
 * (test shapes are below winogradPlan's size rule); returns their layer indices and tiles. Clear the table
 * after.
 */
export function pickWinograd(net: Network, gpu: Gpu): { index: number; tile: WinogradTile }[] {
  const picked: { index: number; tile: WinogradTile }[] = [];
  for (const l of net.layers) {
    if (l.kind !== 'convolutional') continue;
    const cl = l as ConvolutionalLayer;
    const { c, h, w } = cl.input;
    const g = convGeom([net.batch, c, h, w], [cl.filters, c / cl.groups, cl.size, cl.size], cl.geom());
    if (!winogradSupported(g)) continue;
    const tile = winogradTile(g);
    tuneTable(gpu).set('conv2d', convTuneKey(g, 'fwd'), [...WINOGRAD_PICKS].find(([, n]) => n === tile)![0]);
    picked.push({ index: l.index, tile });
  }
  return picked;
}
