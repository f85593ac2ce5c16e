/**
 * A Darknet network as a TF.js GraphModel folder (tf.loadGraphModel): the inference graph of the engine's
 * own forward in TensorFlow ops (one mapping per layer kind: layers.ts), BN folded, the host parameters,
 * written as model.json + weight shards (graph.ts). A GraphModel rather than a LayersModel: Darknet's graph
 * (routes, shortcuts, Darknet's pool padding, head activations per channel) is plain ops, and Keras layers
 * would need custom layer classes registered in the user's page for most of it.
 *
 * Input `input` [N, h, w, c] (float32, NHWC as TF.js images are, values RGB in [0, 1]: the forward's input
 * transposed; N free). Outputs, by default, the network's output layers (Network.outputLayers), each
 * transposed back to NCHW [N, c, h, w] so it equals the engine's forward, named `<kind>_<layer index>`. With
 * `decode`: one output `boxes` [N, boxes, 4 + 1 + C] (decode.ts).
 */
import type { Network } from '../../darknet/network.js';
import type { AnyLayer } from '../../darknet/registry.js';
import { TfGraph } from './graph.js';
import { mapLayer, toNchw, type MapContext } from './layers.js';
import { decodeHeads } from './decode.js';

export { LAYER_MAPS } from './layers.js';
export { SHARD_BYTES } from './graph.js';

export interface TfjsOptions {
  /** One output of decoded boxes instead of the head tensors. */
  decode?: boolean;
  /** Also output these layers (NCHW, named `<kind>_<index>`), after the heads: for checking a network layer by layer. */
  layers?: readonly number[];
  /** The package version written into model.json's convertedBy. */
  version?: string;
}

export interface TfjsTensorInfo {
  name: string;
  /** -1 for the free batch. */
  shape: number[];
}

export interface TfjsModel {
  /** The folder's files by name: model.json and group1-shardKofN.bin. */
  files: Map<string, Uint8Array>;
  /** NHWC [-1, h, w, c]. */
  input: TfjsTensorInfo;
  /** In signature order; `layer` is the layer whose output it is (-1 for `boxes`). NCHW for layers. */
  outputs: (TfjsTensorInfo & { layer: number })[];
  nodes: number;
  weightBytes: number;
}

/**
 * The TF.js GraphModel of `net` at its built input size. Needs host parameters (loadWeights or
 * initWeights). Throws a CfgError at the section of a layer that has no TF.js form (recurrent, local,
 * class trees) or, with `decode`, of a head that cannot be decoded.
 */
export function networkToTfjs(net: Network, opts: TfjsOptions = {}): TfjsModel {
  const g = new TfGraph();
  const I = net.input;
  const inShape = [-1, I.h, I.w, I.c];
  const input = g.input('input', inShape);
  const m: MapContext = { g, net, params: new Map() };
  const names: string[] = [];
  const src = (j: number) => (j < 0 ? input : names[j]);
  for (const l of net.layers) {
    g.scope = `l${l.index}/`;
    names.push(mapLayer(l, l.sources.map(src), m));
  }
  g.scope = '';
  const outputs: TfjsModel['outputs'] = [];
  if (opts.decode) {
    const heads = net.heads();
    if (!heads.length) throw new Error(`${net.file}: --decode needs detection heads ([yolo], [Gaussian_yolo], [region]); this network has none`);
    const d = decodeHeads(g, heads, (l: AnyLayer) => src(l.sources[0]), { width: I.w, height: I.h });
    g.op('Identity', [d.name], {}, 'boxes');
    outputs.push({ name: 'boxes', shape: [-1, d.boxes, 5 + d.classes], layer: -1 });
  } else {
    const extra = (opts.layers ?? []).filter((i) => !net.outputLayers().includes(i));
    for (const i of [...net.outputLayers(), ...extra]) {
      if (!Number.isInteger(i) || i < 0 || i >= net.layers.length) throw new Error(`${net.file}: no layer ${i} to output`);
      const l = net.layers[i];
      const name = `${l.kind}_${i}`;
      g.op('Identity', [toNchw(g, names[i])], {}, name);
      outputs.push({ name, shape: [-1, l.output.c, l.output.h, l.output.w], layer: i });
    }
  }
  const version = opts.version ?? '';
  const files = g.files({ inputs: [{ name: input, shape: inShape }], outputs }, {
    generatedBy: `Darknet ${net.file} at ${I.w}x${I.h}${opts.decode ? ', decoded boxes' : ''}`,
    convertedBy: `yolo-wgsl${version ? ` ${version}` : ''}`,
    metadata: { source_cfg: net.file, input_layout: 'NHWC float32 RGB in [0, 1]', output_layout: opts.decode ? 'boxes [N, boxes, cx cy w h (input pixels), objectness, objectness x class probabilities]' : 'NCHW, as the engine forward' },
  });
  return { files, input: { name: input, shape: inShape }, outputs, nodes: g.nodeCount, weightBytes: g.weightBytes };
}
