/**
 * The ONNX model the peers bench runs in onnxruntime-node: the shipped exporter (src/export/onnx,
 * `yolo-wgsl export --format onnx`), batch dimension symbolic, outputs the heads' Darknet l.output, BN folded
 * as the engine folds it. Also the host helpers the TF.js peer model shares (bench/peers/tfjs.ts).
 */
import type { Network } from '../../src/darknet/network.js';
import type { LayerOf } from '../../src/darknet/registry.js';
import { CfgError } from '../../src/darknet/cfg.js';
import { foldBn } from '../../src/layers/common.js';
import { networkToOnnx } from '../../src/export/onnx/index.js';
import { poolPads, yoloCoefficients } from '../../src/export/common.js';

export class UnsupportedLayerError extends Error {
  override name = 'UnsupportedLayerError';
}

/** Host data of a conv layer for inference: BN-folded weights (OIHW) and bias. */
export function foldedConv(l: LayerOf<'convolutional'>): { w: Float32Array; b: Float32Array } {
  const d = (l.share ?? l).data;
  if (!d) throw new Error(`layer ${l.index}: no parameters (load weights or initWeights first)`);
  if (!l.batchNormalize) return { w: d.weights, b: d.biases };
  return foldBn(d.weights, l.filters, d.biases, d.scales, d.rolling_mean, d.rolling_variance);
}

/** Darknet maxpool padding as explicit (before, after) per axis: floor(padding/2) before, the rest to reach the output size. */
export const maxpoolPads = poolPads;

/** The [yolo] head activation as three per-channel vectors: out = x*raw + sigmoid(x)*act + bias. */
export function yoloChannelMasks(l: LayerOf<'yolo'>): { raw: Float32Array; act: Float32Array; bias: Float32Array; anyBias: boolean } {
  const o = l.options;
  if (o.newCoords) throw new UnsupportedLayerError(`layer ${l.index} [yolo]: new_coords=1 is not supported by the TF.js peer model`);
  const k = yoloCoefficients(l);
  return { raw: k.R, act: k.A, bias: k.B, anyBias: k.anyB };
}

export interface OnnxModel {
  bytes: Uint8Array;
  input: string;
  outputs: { name: string; layer: number; shape: number[] }[];
}

/**
 * The ONNX model (opset 13) of a network at its built input size, batch dimension symbolic ('N'), outputs the
 * network's output layers in layer order. A layer the exporter refuses throws UnsupportedLayerError.
 */
export function buildOnnxModel(net: Network): OnnxModel {
  let m;
  try {
    m = networkToOnnx(net, { dynamicBatch: true });
  } catch (e) {
    if (e instanceof CfgError) throw new UnsupportedLayerError(e.message);
    throw e;
  }
  return { bytes: m.bytes, input: m.input.name, outputs: m.outputs.map((o) => ({ name: o.name, layer: o.layer, shape: o.dims.slice(1) as number[] })) };
}
