/**
 * A Darknet network as an ONNX model: the inference graph of the engine's own forward (src/layers/ in ONNX
 * operators, one mapping per layer kind: layers.ts), BN folded, the parameters the network holds on the host
 * (loaded .weights or initWeights), serialized with protobufjs from ONNX's schema (graph.ts).
 *
 * Input `input` [N, c, h, w] (float32, NCHW, values as the engine's forward takes them: RGB in [0, 1]).
 * Outputs, by default, the network's output layers (Network.outputLayers: the detection heads, else the last
 * layer), each as the engine's forward returns it, named `<kind>_<layer index>` (`yolo_30`): for [yolo]
 * Darknet's l.output (logistic x, y, objectness, classes with scale_x_y; w, h raw), the tensor OpenCV's and
 * Darknet's decoders read. With `decode`: one output `boxes` [N, boxes, 4 + 1 + C] (decode.ts).
 */
import type { Network } from '../../darknet/network.js';
import type { AnyLayer } from '../../darknet/registry.js';
import { OnnxGraph, type Dim } from './graph.js';
import { mapLayer, type MapContext } from './layers.js';
import { decodeHeads } from './decode.js';

export { MIN_OPSET, MAX_OPSET, decodeOnnx } from './graph.js';
export { LAYER_MAPS } from './layers.js';

export interface OnnxOptions {
  /** ONNX opset (default 13; MIN_OPSET..MAX_OPSET). 18+ writes Mish as one op. */
  opset?: number;
  /** A symbolic batch dimension 'N' (default: the network's batch, 1). */
  dynamicBatch?: boolean;
  /** One output of decoded boxes instead of the head tensors. */
  decode?: boolean;
  /** The producer_version written into the model (default: unset). */
  version?: string;
}

export interface OnnxTensorInfo {
  name: string;
  /** [batch, ...]: the batch is 'N' with dynamicBatch. */
  dims: Dim[];
}

export interface OnnxModel {
  /** The serialized ModelProto. */
  bytes: Uint8Array;
  opset: number;
  input: OnnxTensorInfo;
  /** In graph output order; `layer` is the layer whose output it is (-1 for `boxes`). */
  outputs: (OnnxTensorInfo & { layer: number })[];
  /** Node count and initializer bytes. */
  nodes: number;
  weightBytes: number;
}

/**
 * The ONNX model of `net` at its built input size. Needs host parameters (loadWeights or initWeights).
 * Throws a CfgError at the section of a layer that has no ONNX form (recurrent layers), or, with `decode`,
 * of a head that cannot be decoded.
 */
export function networkToOnnx(net: Network, opts: OnnxOptions = {}): OnnxModel {
  const g = new OnnxGraph(opts.opset ?? 13);
  const batch: Dim = opts.dynamicBatch ? 'N' : net.batch;
  const I = net.input;
  const input = g.input('input', [batch, I.c, I.h, I.w]);
  const m: MapContext = { g, net, params: new Map() };
  const names: string[] = [];
  const src = (j: number) => (j < 0 ? input : names[j]);
  for (const l of net.layers) {
    g.scope = `l${l.index}.`;
    names.push(mapLayer(l, l.sources.map(src), m));
  }
  g.scope = '';
  const outputs: OnnxModel['outputs'] = [];
  if (opts.decode) {
    const heads = net.heads();
    if (!heads.length) throw new Error(`${net.file}: --decode needs detection heads ([yolo], [Gaussian_yolo], [region]); this network has none`);
    const d = decodeHeads(g, heads, (l: AnyLayer) => src(l.sources[0]), { width: I.w, height: I.h });
    const dims = [batch, d.boxes, 5 + d.classes];
    g.output(d.name, 'boxes', dims);
    outputs.push({ name: 'boxes', dims, layer: -1 });
  } else {
    for (const i of net.outputLayers()) {
      const l = net.layers[i];
      const name = `${l.kind}_${i}`;
      const dims = [batch, l.output.c, l.output.h, l.output.w];
      g.output(names[i], name, dims);
      outputs.push({ name, dims, layer: i });
    }
  }
  const bytes = g.encode({
    producer: 'yolo-wgsl',
    version: opts.version ?? '',
    doc: `Darknet ${net.file} at ${I.w}x${I.h}${opts.decode ? ', decoded boxes' : ''}`,
    props: { source_cfg: net.file, input_layout: 'NCHW float32 RGB in [0, 1]' },
  });
  return { bytes, opset: g.opset, input: { name: input, dims: [batch, I.c, I.h, I.w] }, outputs, nodes: g.nodeCount, weightBytes: g.weightBytes };
}
