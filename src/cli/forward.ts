/**
 * `yolo-wgsl forward --cfg X --weights W --input <image|.npy> --out DIR [--layers all]`: runs the network
 * and writes NumPy files so outputs compare directly with other frameworks:
 *   layer_<i>_input.npy  for every [yolo]/[region]/[detection] layer i (0-based, cfg order after [net]):
 *                        that layer's raw input, NCHW float32 (the head convolution's output);
 *   layer_<i>.npy        with --layers all, every layer's output.
 * An .npy input (NCHW float32) is used exactly as given, no preprocessing; its batch and size define the
 * network's. An image is resized as detect does (the cfg's letter_box, or --letterbox).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { Network } from '../darknet/network.js';
import { loadWeights } from '../darknet/weights.js';
import { readNpyF32, writeNpy } from '../util/npy.js';
import { loadImage, prepareImage } from '../data/image.js';

export interface ForwardCliOptions {
  cfg: string;
  weights?: string;
  input: string;
  out: string;
  /** 'heads' (default) or 'all'. */
  layers?: 'heads' | 'all';
  letterbox?: boolean;
  log?: (line: string) => void;
  gpu?: Gpu;
}

export interface ForwardCliResult {
  files: string[];
  inputShape: number[];
}

export async function runForward(opts: ForwardCliOptions): Promise<ForwardCliResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  let data: Float32Array;
  let shape: number[];
  if (opts.input.toLowerCase().endsWith('.npy')) {
    const npy = readNpyF32(opts.input);
    if (npy.shape.length !== 4) throw new Error(`${opts.input}: expected an NCHW array, got shape [${npy.shape.join(', ')}]`);
    const probe = Network.fromFile(opts.cfg);
    if (npy.shape[1] !== probe.input.c) {
      throw new Error(`${opts.input}: the array has ${npy.shape[1]} channels (shape [${npy.shape.join(', ')}], NCHW), but ${opts.cfg} takes channels=${probe.input.c}`);
    }
    data = npy.data;
    shape = [...npy.shape];
  } else {
    const probe = Network.fromFile(opts.cfg);
    const im = loadImage(opts.input);
    const prepared = prepareImage(im, probe.input.w, probe.input.h, opts.letterbox ?? probe.net.letterBox);
    data = prepared.image.data;
    shape = [1, prepared.image.channels, prepared.image.height, prepared.image.width];
  }
  const net = Network.fromFile(opts.cfg, { batch: shape[0], channels: shape[1], height: shape[2], width: shape[3] });
  for (const w of net.warnings) log(`warning: ${w.file}:${w.line}: ${w.message}`);
  if (opts.weights) loadWeights(net, opts.weights);
  else {
    log(`warning: no --weights: seeded random weights`);
    net.initWeights(1);
  }
  const gpu = opts.gpu ?? (await Gpu.create({ log }));
  const files: string[] = [];
  try {
    // float32 whatever the tune picked: these dumps are compared with other engines' float32 outputs
    net.prepare(gpu, 'infer', { precision: 'f32' });
    const heads = net.heads();
    const feeds = heads.map((l) => l.sources[0]);
    const all = opts.layers === 'all';
    const keep = all ? net.layers.map((l) => l.index) : feeds.filter((j) => j >= 0);
    const x = Tensor.from(gpu, shape, data, 'input');
    const outs = net.forward(x, { keep });
    fs.mkdirSync(opts.out, { recursive: true });
    const write = async (name: string, t: Tensor) => {
      const file = path.join(opts.out, name);
      writeNpy(file, [...t.shape], await t.toArray());
      files.push(file);
    };
    for (const [k, l] of heads.entries()) {
      const j = feeds[k];
      await write(`layer_${l.index}_input.npy`, j < 0 ? x : outs.get(j)!);
    }
    if (all) for (const l of net.layers) await write(`layer_${l.index}.npy`, outs.get(l.index)!);
    const seen = new Set<Tensor>();
    for (const t of outs.values()) if (!seen.has(t) && t !== x) (seen.add(t), t.dispose());
    x.dispose();
    log(`forward: ${files.length} file(s) in ${opts.out} (input [${shape.join(', ')}], ${heads.length} head(s))`);
  } finally {
    net.dispose();
    if (!opts.gpu) gpu.dispose();
  }
  return { files, inputShape: shape };
}
