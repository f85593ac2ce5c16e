/**
 * Small networks with the layer kinds and options the real cfgs of the export tests lack, shared by
 * test/export/onnx.test.ts and tfjs.test.ts: built beside fixtures/tree (so tree=small.tree resolves), with
 * seeded, perturbed weights.
 */
import path from 'node:path';
import { Network } from '../../src/darknet/network.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { packageRoot } from '../../src/util/paths.js';
import { perturb } from '../helpers/perturb.js';

const treeDir = path.join(packageRoot(), 'fixtures/tree');
const sec = (type: string, keys: Record<string, string | number>) => `[${type}]\n${Object.entries(keys).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;

export const MINI: Record<string, string> = {
  // groups (and depthwise), dilation with stride, stride_x/stride_y, odd pool padding, both upsample directions,
  // route groups, shortcuts of other sizes, sam, scale_channels, the reorgs, crop, dropout, connected with BN,
  // softmax groups with temperature, cost, xnor; every activation
  layers: [
    sec('net', { width: 24, height: 20, channels: 3 }),
    sec('convolutional', { batch_normalize: 1, filters: 8, size: 3, stride: 1, pad: 1, activation: 'leaky' }),
    sec('convolutional', { filters: 8, size: 3, stride_x: 2, stride_y: 1, pad: 1, dilation: 2, groups: 2, activation: 'mish' }),
    sec('maxpool', { size: 3, stride: 2 }),
    sec('local_avgpool', { size: 2, stride: 1, padding: 1 }),
    sec('batchnorm', {}),
    sec('upsample', { stride: 2, scale: 0.5 }),
    sec('upsample', { stride: -2 }),
    sec('route', { layers: '4,6', groups: 2, group_id: 1 }),
    sec('convolutional', { filters: 12, size: 1, activation: 'relu6' }),
    sec('shortcut', { from: 2, activation: 'ramp' }),
    sec('shortcut', { from: 1, activation: 'tanh' }),
    sec('sam', { from: 9, activation: 'swish' }),
    sec('avgpool', {}),
    sec('convolutional', { filters: 12, size: 1, activation: 'logistic' }),
    sec('scale_channels', { from: 11 }),
    sec('convolutional', { filters: 1, size: 1, activation: 'logistic' }),
    sec('scale_channels', { from: 14, scale_wh: 1, activation: 'relu' }),
    sec('reorg', { stride: 2 }),
    sec('reorg', { stride: 2, reverse: 1 }),
    sec('reorg3d', { stride: 2 }),
    sec('crop', { crop_width: 2, crop_height: 4 }),
    sec('dropout', { probability: 0.3 }),
    sec('local', { filters: 6, size: 3, stride: 1, pad: 1, activation: 'leaky' }),
    sec('convolutional', { filters: 6, size: 3, stride: 1, pad: 1, groups: 6, activation: 'leaky' }),
    sec('convolutional', { filters: 6, size: 3, stride: 1, pad: 1, xnor: 1, activation: 'linear' }),
    sec('connected', { output: 20, batch_normalize: 1, activation: 'linear' }),
    sec('softmax', { groups: 2, temperature: 2 }),
    sec('cost', {}),
  ].join('\n'),
  // a shortcut from a smaller map (zeros between the samples), share_index, a maxpool whose padding exceeds the window
  sample: [
    sec('net', { width: 12, height: 8, channels: 2 }),
    sec('convolutional', { filters: 6, size: 3, stride: 2, pad: 1, activation: 'leaky' }),
    sec('upsample', { stride: 2 }),
    sec('convolutional', { filters: 4, size: 1, activation: 'linear' }),
    sec('shortcut', { from: 0 }),
    sec('convolutional', { batch_normalize: 1, filters: 4, size: 3, pad: 1, activation: 'leaky' }),
    sec('convolutional', { batch_normalize: 1, filters: 4, size: 3, pad: 1, share_index: -1, activation: 'leaky' }),
    sec('maxpool', { size: 2, stride: 2, padding: 5 }),
  ].join('\n'),
  // [region]: softmax classes, logistic classes, a class tree; reorg extra (go.cfg) into a tree softmax
  region: [
    sec('net', { width: 16, height: 16, channels: 3 }),
    sec('convolutional', { batch_normalize: 1, filters: 8, size: 3, stride: 2, pad: 1, activation: 'leaky' }),
    sec('convolutional', { filters: 2 * (5 + 4), size: 1, activation: 'linear' }),
    sec('region', { anchors: '1,1, 2,3', classes: 4, num: 2, softmax: 1 }),
    sec('route', { layers: 0 }),
    sec('convolutional', { filters: 2 * (5 + 4), size: 1, activation: 'linear' }),
    sec('region', { anchors: '1,1, 2,3', classes: 4, num: 2, softmax: 0 }),
    sec('route', { layers: 0 }),
    sec('convolutional', { filters: 2 * (5 + 13), size: 1, activation: 'linear' }),
    sec('region', { anchors: '1,1, 2,3', classes: 13, num: 2, softmax: 1, tree: 'small.tree' }),
  ].join('\n'),
  softmaxTree: [
    sec('net', { width: 4, height: 4, channels: 3 }),
    sec('convolutional', { filters: 12, size: 3, stride: 1, pad: 1, activation: 'leaky' }),
    sec('reorg', { extra: 1, stride: 1 }),
    sec('connected', { output: 13, activation: 'linear' }),
    sec('softmax', { tree: 'small.tree', temperature: 2 }),
  ].join('\n'),
  // YOLOv1: [detection] after [connected]; reorg extra (go.cfg)
  detection: [
    sec('net', { width: 8, height: 8, channels: 3 }),
    sec('convolutional', { filters: 4, size: 3, stride: 2, pad: 1, activation: 'leaky' }),
    sec('reorg', { extra: 1, stride: 1 }),
    sec('connected', { output: 2 * 2 * (5 * 2 + 3), activation: 'linear' }),
    sec('detection', { classes: 3, coords: 4, num: 2, side: 2, softmax: 1 }),
  ].join('\n'),
};

/** MINI[name] (or another cfg text under that name) built with weights initWeights(3) + perturb(4). */
export function mini(name: string, cfg = MINI[name]): Network {
  const net = Network.build(parseCfg(cfg, path.join(treeDir, `export-${name}.cfg`)));
  net.initWeights(3);
  perturb(net, 4);
  return net;
}
