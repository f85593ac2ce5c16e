/**
 * The layer registry: cfg section type -> layer factory (one file per kind in src/layers/), the layer types
 * derived from it (AnyLayer: the union of every layer class, keyed by `kind`), the Darknet section types the
 * engine refuses (with the reason), and the keys Darknet reads that have no effect in this engine (reported
 * once as warnings).
 *
 * Adding a layer kind: src/layers/<kind>.ts (a Layer subclass with `readonly kind = '<kind>'` and
 * `export const build = (ctx: BuildContext): <Kind>Layer => ...`), one line here (import + LAYER_KINDS entry),
 * its op in src/tensor/ops/<op>.ts (+ kernels/<op>.wgsl) and a test; AnyLayer picks the class up.
 */
import type { BuildContext, LayerFactory } from './layer.js';
import { build as convolutional } from '../layers/convolutional.js';
import { build as maxpool, buildLocalAvgpool as localAvgpool } from '../layers/maxpool.js';
import { build as avgpool } from '../layers/avgpool.js';
import { build as route } from '../layers/route.js';
import { build as shortcut } from '../layers/shortcut.js';
import { build as upsample } from '../layers/upsample.js';
import { build as yolo } from '../layers/yolo.js';
import { build as region } from '../layers/region.js';
import { build as reorg } from '../layers/reorg.js';
import { build as reorg3d } from '../layers/reorg3d.js';
import { build as dropout } from '../layers/dropout.js';
import { build as connected } from '../layers/connected.js';
import { build as detection } from '../layers/detection.js';
import { build as softmax } from '../layers/softmax.js';
import { build as sam } from '../layers/sam.js';
import { build as scaleChannels } from '../layers/scale_channels.js';
import { build as local } from '../layers/local.js';
import { build as crop } from '../layers/crop.js';
import { build as cost } from '../layers/cost.js';
import { build as gaussianYolo } from '../layers/gaussian_yolo.js';
import { build as batchnorm } from '../layers/batchnorm.js';
import { build as crnn } from '../layers/crnn.js';
import { build as rnn } from '../layers/rnn.js';
import { build as gru } from '../layers/gru.js';
import { build as lstm } from '../layers/lstm.js';
import { build as contrastive } from '../layers/contrastive.js';

export const LAYER_KINDS = {
  convolutional, maxpool, avgpool, route, shortcut, upsample, yolo, region, reorg, reorg3d, dropout, connected,
  detection, softmax, sam, scale_channels: scaleChannels, local, crop, cost, local_avgpool: localAvgpool,
  Gaussian_yolo: gaussianYolo, batchnorm, crnn, rnn, gru, lstm, contrastive,
} satisfies Record<string, LayerFactory>;

/** A section type the engine builds. */
export type LayerKind = keyof typeof LAYER_KINDS;
/**
 * Every layer class, as a union keyed by `kind` (Network.layers): `if (l.kind === 'connected')` narrows `l`
 * to ConnectedLayer, no cast needed. Derived from LAYER_KINDS, so a registered kind joins it.
 */
export type AnyLayer = ReturnType<(typeof LAYER_KINDS)[LayerKind]>;
/** The layer class of one kind: LayerOf<'yolo'> is YoloLayer. */
export type LayerOf<K extends LayerKind> = Extract<AnyLayer, { kind: K }>;
/** The detection head classes (`head = true`: [yolo], [Gaussian_yolo], [region], [detection]); Network.heads() lists them. */
export type HeadLayer = Extract<AnyLayer, { head: true }>;

// A factory whose layer's `kind` is not its registry key makes this line a type error naming the key.
type KindMismatch = { [K in LayerKind]: LayerOf<K> extends never ? K : never }[LayerKind];
const kindsMatch: [KindMismatch] extends [never] ? true : KindMismatch = true;
void kindsMatch;

/** The factory of a section type, or undefined when the engine does not build it. */
export function layerFactory(type: string): ((ctx: BuildContext) => AnyLayer) | undefined {
  return Object.hasOwn(LAYER_KINDS, type) ? LAYER_KINDS[type as LayerKind] : undefined;
}

/** Section types Darknet knows but this engine does not implement. */
export const REFUSED_SECTIONS: Record<string, string> = {
  normalization: 'local response normalization ([normalization]/[lrn])',
  conv_lstm: 'convolutional LSTM layers ([conv_lstm])',
  history: '[history] layers',
  implicit: 'YOLOR implicit layers ([implicit])',
  activation: 'standalone [activation] layers',
  empty: '[empty]/[silence] layers',
  deconvolutional: 'deconvolution layers',
};

/** Keys Darknet reads in these sections that change nothing in this engine (display, CUDA streams, ...). */
export const HARMLESS_KEYS: Record<string, Record<string, string>> = {
  convolutional: {
    stream: 'CUDA stream selection',
    wait_stream: 'CUDA stream selection',
    angle: 'only used by deformable (sway/rotate/stretch) layers',
  },
  maxpool: { out_channels: 'only used with maxpool_depth', stream: 'CUDA stream selection', wait_stream: 'CUDA stream selection' },
  route: { stream: 'CUDA stream selection', wait_stream: 'CUDA stream selection' },
  yolo: { show_details: 'console output' },
};

/** Darknet's per-layer keys (parse_network_cfg_custom), read for every section into Layer.common. */
export const COMMON_KEYS = ['clip', 'onlyforward', 'dont_update', 'burnin_update', 'stopbackward', 'train_only_bn', 'dontload', 'dontloadscales', 'learning_rate'] as const;
