/**
 * Export through the library API: a Darknet cfg + weights as an ONNX model (src/export/onnx) or a TF.js
 * GraphModel folder (src/export/tfjs), the `export` command's code. No device is needed: the graph is built from the parsed layers and the host parameters.
 */
import { loadNetwork, type Bytes, type CfgSource } from './model.js';
import { networkToOnnx, MAX_OPSET, MIN_OPSET, type OnnxTensorInfo } from '../export/onnx/index.js';
import { networkToTfjs, type TfjsTensorInfo } from '../export/tfjs/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { checkNumber } from '../util/validate.js';
import { packageRoot } from '../util/paths.js';
import { readdirSync, rmSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ExportOnnxOptions {
  /** The .cfg: a path, its text (a string containing a newline), or its bytes. */
  cfg: CfgSource;
  /** Darknet .weights: a path or the bytes. Without it the model holds seeded random weights (logged). */
  weights?: string | Bytes;
  /** Write the model here (atomically); without it only `bytes` is returned. */
  out?: string;
  /** ONNX opset, 13 (default) to 25; from 18 Mish is one op. */
  opset?: number;
  /** A symbolic batch dimension 'N' instead of 1. */
  dynamicBatch?: boolean;
  /** Network input size (default: the cfg's [net] width / height). */
  width?: number;
  height?: number;
  /**
   * One output `boxes` [N, boxes, 4 + 1 + C] of decoded boxes (centre x, y, width, height in input pixels,
   * objectness, objectness × class probability: src/yolo/decode.ts before thresholds and NMS) instead of the
   * raw head tensors.
   */
  decode?: boolean;
  /** Seed of the random weights when none are given (default 1). */
  seed?: number;
  /** cfg warnings and informational lines (default: silent). */
  log?: (line: string) => void;
}

export interface ExportOnnxResult {
  /** The serialized ONNX ModelProto. */
  bytes: Uint8Array;
  /** Where it was written (when `out` was given). */
  file?: string;
  opset: number;
  /** `input` [batch, c, h, w]: NCHW float32, RGB in [0, 1], as the engine's forward takes it. */
  input: OnnxTensorInfo;
  /**
   * The head outputs (`yolo_30`, ...: each [yolo] / [Gaussian_yolo] / [region] / [detection] layer's output as
   * the engine's forward returns it; a network without heads: its last layer), or `boxes` with `decode`.
   */
  outputs: (OnnxTensorInfo & { layer: number })[];
  nodes: number;
  /** Bytes of the parameters in the model. */
  weightBytes: number;
}

let version: string | undefined;
/** The package's version (producer_version of the model), '' when package.json cannot be read. */
function packageVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version ?? '');
    } catch {
      version = '';
    }
  }
  return version;
}

/**
 * Builds the network of `cfg` with `weights` and converts it to ONNX (BN folded; every layer kind mapped,
 * recurrent layers refused). Throws CfgError (a layer that has no ONNX form, at its section's line),
 * WeightsError, SettingError (an opset out of range) or WriteError.
 */
export async function exportOnnx(opts: ExportOnnxOptions): Promise<ExportOnnxResult> {
  const opset = checkNumber('opset', opts.opset ?? 13, { min: MIN_OPSET, max: MAX_OPSET, int: true });
  const net = await loadNetwork({ cfg: opts.cfg, weights: opts.weights, width: opts.width, height: opts.height, seed: opts.seed, log: opts.log });
  const m = networkToOnnx(net, { opset, dynamicBatch: opts.dynamicBatch, decode: opts.decode, version: packageVersion() });
  if (opts.out) writeFileAtomic(opts.out, m.bytes);
  return { bytes: m.bytes, file: opts.out, opset: m.opset, input: m.input, outputs: m.outputs, nodes: m.nodes, weightBytes: m.weightBytes };
}

export interface ExportTfjsOptions {
  /** The .cfg: a path, its text (a string containing a newline), or its bytes. */
  cfg: CfgSource;
  /** Darknet .weights: a path or the bytes. Without it the model holds seeded random weights (logged). */
  weights?: string | Bytes;
  /** Write the folder here (model.json and group1-shardKofN.bin, each atomically); without it only `files` is returned. */
  out?: string;
  /** Network input size (default: the cfg's [net] width / height). */
  width?: number;
  height?: number;
  /** One output `boxes` [N, boxes, 4 + 1 + C] of decoded boxes, as ExportOnnxOptions.decode. */
  decode?: boolean;
  /** Seed of the random weights when none are given (default 1). */
  seed?: number;
  /** cfg warnings and informational lines (default: silent). */
  log?: (line: string) => void;
}

export interface ExportTfjsResult {
  /** The folder's files by name: `model.json` (format graph-model) and the weight shards. */
  files: Map<string, Uint8Array>;
  /** The folder written (when `out` was given). */
  dir?: string;
  /** `input` [-1, h, w, c]: NHWC float32, RGB in [0, 1] (the forward's input transposed); -1 is the free batch. */
  input: TfjsTensorInfo;
  /** The head outputs, NCHW as the engine's forward returns them (`yolo_30`, ...), or `boxes` with `decode`. */
  outputs: (TfjsTensorInfo & { layer: number })[];
  nodes: number;
  /** Bytes of the constants (parameters, shapes) in the shards. */
  weightBytes: number;
}

/**
 * Builds the network of `cfg` with `weights` and converts it to a TF.js GraphModel folder (load it with
 * `tf.loadGraphModel('.../model.json')`). BN folded; recurrent, [local] and class-tree layers refused.
 * The shards are written first and model.json last; shards of an earlier export to the folder that the new
 * model.json does not list are removed. Throws CfgError, WeightsError or WriteError.
 */
export async function exportTfjs(opts: ExportTfjsOptions): Promise<ExportTfjsResult> {
  const net = await loadNetwork({ cfg: opts.cfg, weights: opts.weights, width: opts.width, height: opts.height, seed: opts.seed, log: opts.log });
  const m = networkToTfjs(net, { decode: opts.decode, version: packageVersion() });
  if (opts.out) {
    const dir = opts.out;
    for (const [name, bytes] of m.files) if (name !== 'model.json') writeFileAtomic(path.join(dir, name), bytes);
    writeFileAtomic(path.join(dir, 'model.json'), m.files.get('model.json')!);
    for (const f of readdirSync(dir)) if (/^group1-shard\d+of\d+\.bin$/.test(f) && !m.files.has(f)) rmSync(path.join(dir, f), { force: true });
  }
  return { files: m.files, dir: opts.out, input: m.input, outputs: m.outputs, nodes: m.nodes, weightBytes: m.weightBytes };
}
