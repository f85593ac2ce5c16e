/**
 * `yolo-wgsl partial --cfg C --weights W --out X.conv.N --layers N`: Darknet's `partial` (AlexeyAB darknet.c
 * partial(): parse the cfg, load_weights_upto(net, W, N), seen = 0, save_weights_upto(net, X, N)). The file
 * written holds layers 0..N-1 under Darknet's current header (0.2.5, `seen` 0, whatever W's header says;
 * [connected] weights of a transposed legacy file come out in the current layout), byte for byte what
 * Darknet writes for the same input (fixtures/golden/darknet_partial.json, test/darknet/partial.test.ts).
 * Unlike Darknet, a W that does not hold layers 0..N-1 whole is an error naming the layer, and N must not
 * exceed the cfg's layer count (Darknet copies them all).
 */
import path from 'node:path';
import { Network } from '../darknet/network.js';
import { DEFAULT_HEADER, encodeWeights, loadWeights } from '../darknet/weights.js';
import { writeFileAtomic } from '../util/fs.js';
import { checkNumber, RULES, SettingError } from '../util/validate.js';

export interface PartialOptions {
  cfg: string;
  weights: string;
  out: string;
  /** keep layers [0, layers) */
  layers: number;
  log?: (line: string) => void;
}

export interface PartialResult {
  out: string;
  /** bytes written */
  bytes: number;
  /** float32 values written */
  values: number;
}

/** Writes the cut file (atomically) and says what it holds. */
export function runPartial(o: PartialOptions): PartialResult {
  const log = o.log ?? ((l: string) => console.log(l));
  const n = checkNumber('--layers', o.layers, RULES.count);
  const net = Network.fromFile(o.cfg);
  for (const w of net.warnings) log(`warning: ${w.file}:${w.line}: ${w.message}`);
  const total = net.layers.length;
  if (n > total) throw new SettingError('--layers', `--layers ${n}: ${o.cfg} has ${total} layers (0–${total - 1}); give at most ${total}`);
  const h = loadWeights(net, o.weights, { upto: n });
  // Darknet's partial sets seen = 0 (and the iteration) before save_weights_upto, which writes its own version
  const bytes = encodeWeights(net, { ...DEFAULT_HEADER, seen: 0n }, { upto: n });
  writeFileAtomic(o.out, bytes);
  const values = (bytes.length - 20) / 4;
  const withParams = net.layers.filter((l) => l.index < n && l.params.length).length;
  log(`partial: layers ${n > 1 ? `0–${n - 1}` : n === 1 ? '0' : 'none'} of ${path.basename(o.cfg)} (${withParams} with parameters) from ${o.weights} (header ${h.major}.${h.minor}.${h.revision}, seen ${h.seen}) -> ${o.out}: ${bytes.length} bytes, ${values} values, header ${DEFAULT_HEADER.major}.${DEFAULT_HEADER.minor}.${DEFAULT_HEADER.revision} seen 0`);
  return { out: o.out, bytes: bytes.length, values };
}
