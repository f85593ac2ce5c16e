/**
 * The bad-input corpus, generated: each builder writes one hostile or broken input into a case folder
 * and returns its path. Built from the bundled yolo-mini cfg and fixtures/images, so nothing here needs
 * ../shared or the network.
 */
import fs from 'node:fs';
import path from 'node:path';
import { main, reportError } from '../../src/cli/main.js';
import { Network } from '../../src/darknet/network.js';
import { encodeWeights, weightsFileSize } from '../../src/darknet/weights.js';
import { encodeNpy } from '../../src/util/npy.js';
import { packageRoot } from '../../src/util/paths.js';
import { writeDataset } from '../eval/synthetic.js';
import { forgedPng } from '../../fixtures/images/make-images.js';

export const ROOT = packageRoot();
export const MINI_CFG = path.join(ROOT, 'fixtures/cfg/yolo-mini.cfg');
export const GOOD_PNG = path.join(ROOT, 'fixtures/images/rgb-13x9.png');
export const GOOD_JPG = path.join(ROOT, 'fixtures/images/smooth-40x24.jpg');

/** One case's folder: inputs are written here, outputs go to `out`. */
export class CaseDir {
  readonly out: string;
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.out = path.join(dir, 'out');
  }

  file(name: string, data: string | Uint8Array): string {
    const f = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, data);
    return f;
  }

  /** yolo-mini.cfg with `edit` applied to its text. */
  cfg(edit: (text: string) => string = (t) => t, name = 'net.cfg'): string {
    return this.file(name, edit(fs.readFileSync(MINI_CFG, 'utf8')));
  }

  /** Seeded yolo-mini weights, optionally broken by `edit` (the bytes, a copy). */
  weights(edit: (bytes: Uint8Array, net: Network) => Uint8Array = (b) => b, name = 'net.weights'): string {
    const net = Network.fromFile(MINI_CFG);
    net.initWeights(3);
    return this.file(name, edit(encodeWeights(net).slice(), net));
  }

  /** A small dataset (yolo-mini's 3 classes) with one val image; returns its .data and yaml files. */
  dataset(): { data: string; yaml: string; root: string } {
    const root = path.join(this.dir, 'ds');
    const im = { name: 'a', width: 64, height: 48, objects: [{ classId: 0, x1: 8, y1: 8, x2: 40, y2: 30 }] };
    return { ...writeDataset(root, { train: [im], val: [{ ...im, name: 'b' }] }, ['circle', 'square', 'triangle']), root };
  }
}

/** The byte offset of layer `index`'s first stored value in a .weights file of `net` (0.2.x header). */
export function layerOffset(net: Network, index: number): number {
  let off = 20;
  for (const l of net.layers) {
    if (l.index === index) return off;
    for (const p of l.params) off += 4 * p.count;
  }
  throw new Error(`no layer ${index}`);
}

/** Writes `v` as float32 at `count` places from byte `off`. */
export function poison(bytes: Uint8Array, off: number, v: number, count = 1): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) dv.setFloat32(off + 4 * i, v, true);
  return bytes;
}

export { weightsFileSize };

/** A PNG of under 100 bytes whose IHDR declares width x height (a decompression bomb's header). */
export const bombPng = (width: number, height: number): Buffer => forgedPng(width, height);

/** An .npy file of float32 zeros with this shape. */
export function npy(shape: number[]): Uint8Array {
  return encodeNpy(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
}

/** Every file under `dir` (relative paths, sorted); [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

/** Runs the CLI in this process: the exit code the bin would give and everything it printed. */
export async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const orig = { log: console.log, error: console.error, warn: console.warn };
  const cap = (...a: unknown[]) => void lines.push(a.map(String).join(' '));
  console.log = console.error = console.warn = cap;
  const env = { ...process.env };
  const before = process.exitCode;
  process.exitCode = undefined;
  let code = 0;
  try {
    await main(args);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    code = reportError(e, args);
  } finally {
    Object.assign(console, orig);
    process.exitCode = before;
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
  }
  return { code, out: lines.join('\n') };
}

