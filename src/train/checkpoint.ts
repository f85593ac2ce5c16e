/**
 * Training checkpoints: a pair of files per name (`last`, `best`) in one folder:
 *
 *   <name>.weights   Darknet .weights (loadable by Darknet and OpenCV; header `seen` = images seen)
 *   <name>.state     everything else needed to resume: one binary file, a JSON header and float32 blobs
 *
 * and the previous complete pair, `<name>.prev.weights` / `<name>.prev.state`.
 *
 * State file layout (little-endian):
 *   bytes 0-7   "YWTSTATE"
 *   u32         format version (1)
 *   u32         J = byte length of the JSON header
 *   J bytes     JSON: { generation, createdAt, weights: { bytes, sha256 }, blobs: [{ offset, length }],
 *               blobsBytes, blobsSha256, state }   (`state`: the caller's object, every Float32Array replaced
 *               by { "$f32": i } and every bigint by { "$bigint": "..." })
 *   padding to a multiple of 8, then the blobs (float32 arrays back to back; offsets relative to here)
 *
 * Atomicity. A save of generation g+1 (the folder holding the pair g, and g−1 as prev):
 *   1. write both new files under temporary names, fsync each
 *   2. hard-link <name>.weights to a temporary name and rename it over <name>.prev.weights (a copy where
 *      links are not available); the same for <name>.state -> <name>.prev.state
 *   3. rename the new weights over <name>.weights, then the new state over <name>.state; fsync the folder
 * Each rename is atomic, so at every instant some state file names a weights file that holds exactly the
 * bytes it recorded (by SHA-256): after step 2 the prev pair is g; during step 3 the current state is still
 * g (its weights survive as prev), after it the current pair is g+1. `<name>.weights` exists throughout.
 * Loading takes the newest state (by generation) whose recorded weights hash matches one of the two weights
 * files and whose own blobs hash checks: a torn, mismatched or half-written pair is never used.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileSynced } from '../util/fs.js';

const MAGIC = 'YWTSTATE';
const VERSION = 1;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface CheckpointFiles {
  weights: string;
  state: string;
  prevWeights: string;
  prevState: string;
}

export function checkpointFiles(dir: string, name: string): CheckpointFiles {
  return {
    weights: path.join(dir, `${name}.weights`),
    state: path.join(dir, `${name}.state`),
    prevWeights: path.join(dir, `${name}.prev.weights`),
    prevState: path.join(dir, `${name}.prev.state`),
  };
}

export const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

// ------------------------------------------------------------------------------------------ state codec

interface StateHeader {
  format: 'yolo-wgsl-train-state';
  generation: number;
  createdAt: string;
  weights: { bytes: number; sha256: string } | null;
  blobs: { offset: number; length: number }[];
  blobsBytes: number;
  blobsSha256: string;
  state: unknown;
}

function f32Bytes(a: Float32Array): Uint8Array {
  if (os.endianness() === 'LE') return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(4 * i, a[i], true);
  return out;
}

function bytesF32(b: Uint8Array, offset: number, length: number): Float32Array {
  const out = new Float32Array(length);
  if (os.endianness() === 'LE') new Uint8Array(out.buffer).set(b.subarray(offset, offset + 4 * length));
  else {
    const dv = new DataView(b.buffer, b.byteOffset + offset, 4 * length);
    for (let i = 0; i < length; i++) out[i] = dv.getFloat32(4 * i, true);
  }
  return out;
}

/** Replaces Float32Arrays by blob references and bigints by strings (throws on other typed arrays, NaN keys...). */
function extract(v: unknown, blobs: Float32Array[], where: string): unknown {
  if (v instanceof Float32Array) {
    blobs.push(v);
    return { $f32: blobs.length - 1 };
  }
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (ArrayBuffer.isView(v)) throw new CheckpointError(`state: ${where} is a ${v.constructor.name}; only Float32Array is stored as binary`);
  if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
  if (Array.isArray(v)) return v.map((x, i) => extract(x, blobs, `${where}[${i}]`));
  if (v && typeof v === 'object') {
    if (v instanceof Map || v instanceof Set) throw new CheckpointError(`state: ${where} is a ${v.constructor.name}; use plain objects and arrays`);
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = extract(x, blobs, `${where}.${k}`);
    return o;
  }
  return v;
}

function restore(v: unknown, blobs: Float32Array[]): unknown {
  if (Array.isArray(v)) return v.map((x) => restore(x, blobs));
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.$f32 === 'number') {
      const b = blobs[o.$f32];
      if (!b) throw new CheckpointError(`state: blob ${o.$f32} is missing`);
      return b;
    }
    if (keys.length === 1 && typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (keys.length === 1 && typeof o.$num === 'string') return Number(o.$num);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = restore(x, blobs);
    return out;
  }
  return v;
}

/** Encodes a state object (plain JSON values, Float32Array, bigint) with its generation and weights hash. */
export function encodeState(state: unknown, meta: { generation: number; weights: { bytes: number; sha256: string } | null; createdAt?: string }): Uint8Array {
  const blobs: Float32Array[] = [];
  const body = extract(state, blobs, 'state');
  const refs: StateHeader['blobs'] = [];
  let off = 0;
  for (const b of blobs) {
    refs.push({ offset: off, length: b.length });
    off += b.byteLength;
  }
  const blobBytes = new Uint8Array(off);
  blobs.forEach((b, i) => blobBytes.set(f32Bytes(b), refs[i].offset));
  const header: StateHeader = {
    format: 'yolo-wgsl-train-state',
    generation: meta.generation,
    createdAt: meta.createdAt ?? new Date().toISOString(),
    weights: meta.weights,
    blobs: refs,
    blobsBytes: off,
    blobsSha256: sha256(blobBytes),
    state: body,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const start = Math.ceil((16 + json.length) / 8) * 8;
  const out = new Uint8Array(start + off);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, VERSION, true);
  dv.setUint32(12, json.length, true);
  out.set(json, 16);
  out.set(blobBytes, start);
  return out;
}

export interface DecodedState<S = unknown> {
  generation: number;
  createdAt: string;
  weights: { bytes: number; sha256: string } | null;
  state: S;
}

function readHeader(bytes: Uint8Array, name: string): { header: StateHeader; start: number } {
  if (bytes.length < 16 || Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== MAGIC) throw new CheckpointError(`${name}: not a yolo-wgsl state file (bad magic)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== VERSION) throw new CheckpointError(`${name}: state format version ${version}, this build reads ${VERSION}`);
  const jlen = dv.getUint32(12, true);
  if (16 + jlen > bytes.length) throw new CheckpointError(`${name}: truncated (header of ${jlen} bytes, file of ${bytes.length})`);
  let header: StateHeader;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(16, 16 + jlen)).toString('utf8')) as StateHeader;
  } catch (e) {
    throw new CheckpointError(`${name}: unreadable header: ${(e as Error).message}`);
  }
  if (header.format !== 'yolo-wgsl-train-state') throw new CheckpointError(`${name}: unknown format '${String(header.format)}'`);
  return { header, start: Math.ceil((16 + jlen) / 8) * 8 };
}

/** Decodes and verifies (length, blobs hash) a state file's bytes. */
export function decodeState<S = unknown>(bytes: Uint8Array, name = '<state>'): DecodedState<S> {
  const { header, start } = readHeader(bytes, name);
  if (bytes.length !== start + header.blobsBytes) throw new CheckpointError(`${name}: ${bytes.length} bytes, expected ${start + header.blobsBytes} (torn write?)`);
  const blobBytes = bytes.subarray(start);
  if (sha256(blobBytes) !== header.blobsSha256) throw new CheckpointError(`${name}: tensor data does not match its recorded SHA-256 (corrupt)`);
  const blobs = header.blobs.map((r) => {
    if (r.offset + 4 * r.length > header.blobsBytes) throw new CheckpointError(`${name}: blob past the end of the file`);
    return bytesF32(blobBytes, r.offset, r.length);
  });
  return { generation: header.generation, createdAt: header.createdAt, weights: header.weights, state: restore(header.state, blobs) as S };
}

/** The generation recorded in a state file (header only), or null when unreadable. */
export function stateGeneration(file: string): number | null {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(16);
      if (fs.readSync(fd, head, 0, 16, 0) < 16) return null;
      if (head.subarray(0, 8).toString('latin1') !== MAGIC) return null;
      const jlen = head.readUInt32LE(12);
      const json = Buffer.alloc(jlen);
      if (fs.readSync(fd, json, 0, jlen, 16) < jlen) return null;
      const h = JSON.parse(json.toString('utf8')) as StateHeader;
      return typeof h.generation === 'number' ? h.generation : null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------------ pair write

/** Test hook: called between the steps of a save (fault injection: throw or stall here). */
export type SaveStepHook = (step: 'temps-written' | 'prev-weights' | 'prev-state' | 'weights' | 'state') => void;

export interface WriteOptions {
  /** Generation number (default: one more than the newest found in the folder for this name). */
  generation?: number;
  onStep?: SaveStepHook;
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not supported on every platform (Windows); renames are still atomic
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Replaces `to` by a second name of `from`'s content (hard link, else a synced copy), atomically. */
function preserve(from: string, to: string, tmp: string): void {
  if (!fs.existsSync(from)) return;
  fs.rmSync(tmp, { force: true });
  try {
    fs.linkSync(from, tmp);
  } catch {
    writeFileSynced(tmp, fs.readFileSync(from), to);
  }
  fs.renameSync(tmp, to);
  // rename() between two names of one inode does nothing (POSIX): drop the temporary name then
  fs.rmSync(tmp, { force: true });
}

/** Removes temporaries left by an interrupted save of `name` (only files this module names). */
export function removeStaleTemps(dir: string, name: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `.${name}.`;
  for (const e of entries) if (e.startsWith(prefix) && e.endsWith('.tmp')) fs.rmSync(path.join(dir, e), { force: true });
}

/** The newest generation among the state files of `name` (0 when none). */
export function latestGeneration(dir: string, name: string): number {
  const f = checkpointFiles(dir, name);
  return Math.max(0, stateGeneration(f.state) ?? 0, stateGeneration(f.prevState) ?? 0);
}

/**
 * Writes the pair (weights bytes, state object) for `name` atomically (see the file comment). Returns the
 * generation written.
 */
export function writeCheckpoint(dir: string, name: string, weights: Uint8Array, state: unknown, opts: WriteOptions = {}): { generation: number; files: CheckpointFiles } {
  if (!/^[\w.-]+$/.test(name)) throw new CheckpointError(`checkpoint name '${name}' must be letters, digits, '_', '-' or '.'`);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir, name);
  const generation = opts.generation ?? latestGeneration(dir, name) + 1;
  const files = checkpointFiles(dir, name);
  const tag = `${process.pid}.${generation}`;
  const tmp = (what: string) => path.join(dir, `.${name}.${what}.${tag}.tmp`);
  const stateBytes = encodeState(state, { generation, weights: { bytes: weights.length, sha256: sha256(weights) } });
  const tw = tmp('weights');
  const ts = tmp('state');
  try {
    writeFileSynced(tw, weights, files.weights);
    writeFileSynced(ts, stateBytes, files.state);
    opts.onStep?.('temps-written');
    preserve(files.weights, files.prevWeights, tmp('prev-weights'));
    opts.onStep?.('prev-weights');
    preserve(files.state, files.prevState, tmp('prev-state'));
    opts.onStep?.('prev-state');
    fs.renameSync(tw, files.weights);
    opts.onStep?.('weights');
    fs.renameSync(ts, files.state);
    opts.onStep?.('state');
  } catch (e) {
    for (const t of [tw, ts, tmp('prev-weights'), tmp('prev-state')]) fs.rmSync(t, { force: true });
    throw e;
  }
  fsyncDir(dir);
  return { generation, files };
}

// ------------------------------------------------------------------------------------------ load

export interface LoadedCheckpoint<S = unknown> {
  generation: number;
  createdAt: string;
  state: S;
  weights: Uint8Array;
  stateFile: string;
  weightsFile: string;
  /** True when the newest files were not a consistent pair and an older one was used. */
  fellBack: boolean;
  /** Why newer candidates were rejected (empty when the current pair was used). */
  rejected: string[];
}

function tryRead(file: string): Uint8Array | null {
  try {
    return fs.readFileSync(file);
  } catch {
    return null;
  }
}

/**
 * The newest consistent pair of `name` in `dir`, or null when there is no state file at all. Throws a
 * CheckpointError listing what was wrong when state files exist but none has its weights.
 */
export function readCheckpoint<S = unknown>(dir: string, name: string): LoadedCheckpoint<S> | null {
  const f = checkpointFiles(dir, name);
  const rejected: string[] = [];
  const states: { file: string; dec: DecodedState<S> }[] = [];
  let any = false;
  for (const file of [f.state, f.prevState]) {
    const bytes = tryRead(file);
    if (!bytes) continue;
    any = true;
    try {
      states.push({ file, dec: decodeState<S>(bytes, file) });
    } catch (e) {
      rejected.push((e as Error).message);
    }
  }
  if (!any) return null;
  states.sort((a, b) => b.dec.generation - a.dec.generation);
  const weights = new Map<string, { bytes: Uint8Array; hash: string } | null>();
  const weightsOf = (file: string) => {
    if (!weights.has(file)) {
      const b = tryRead(file);
      weights.set(file, b ? { bytes: b, hash: sha256(b) } : null);
    }
    return weights.get(file)!;
  };
  for (const [i, s] of states.entries()) {
    const want = s.dec.weights;
    // the same-named weights first, then the other one
    const order = s.file === f.state ? [f.weights, f.prevWeights] : [f.prevWeights, f.weights];
    const hit = want && order.find((w) => {
      const x = weightsOf(w);
      return x !== null && x.bytes.length === want.bytes && x.hash === want.sha256;
    });
    if (hit) {
      return {
        generation: s.dec.generation,
        createdAt: s.dec.createdAt,
        state: s.dec.state,
        weights: weightsOf(hit)!.bytes,
        stateFile: s.file,
        weightsFile: hit,
        fellBack: i > 0 || rejected.length > 0 || s.file !== f.state || hit !== f.weights,
        rejected,
      };
    }
    rejected.push(`${s.file} (generation ${s.dec.generation}): no weights file holds the ${want?.bytes ?? '?'} bytes it recorded`);
  }
  throw new CheckpointError(`no consistent checkpoint '${name}' in ${dir}: ${rejected.join('; ')}`);
}

/**
 * Finds a checkpoint from a user path: a folder (checked as is, then its weights/ subfolder) with
 * `name`.state, or a `.state` / `.weights` file (its name without `.prev` and the extension is the name).
 */
export function locateCheckpoint(p: string, name = 'last'): { dir: string; name: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new CheckpointError(`resume: ${p} does not exist`);
  }
  if (st.isDirectory()) {
    for (const d of [p, path.join(p, 'weights')]) {
      const f = checkpointFiles(d, name);
      if (fs.existsSync(f.state) || fs.existsSync(f.prevState)) return { dir: d, name };
    }
    throw new CheckpointError(`resume: no ${name}.state in ${p} or ${path.join(p, 'weights')}`);
  }
  const base = path.basename(p).replace(/\.(state|weights)$/, '').replace(/\.prev$/, '');
  return { dir: path.dirname(p), name: base };
}
