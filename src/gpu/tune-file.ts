/**
 * Node persistence of the tuning table (src/gpu/tune.ts):
 *   - the user's cache: `<dir>/tune-<adapter key>.json`, dir = $YOLO_WGSL_CACHE_DIR, else
 *     $XDG_CACHE_HOME/yolo-wgsl, else ~/.cache/yolo-wgsl. YOLO_WGSL_CACHE_DIR=off keeps everything in
 *     memory. Written atomically (temp file + rename), merged with what is on disk at save time.
 *   - defaults shipped with the package: kernels/tune/<adapter kind>.json (lavapipe, llvmpipe, ...), the
 *     result of `yolo-wgsl tune` on a machine of that kind; used when the cache has no entry.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AdapterDescription } from './adapter.js';
import { tuneTable, type TuneTable } from './tune.js';
import { cacheDir, kernelsDir } from '../util/paths.js';
import { writeFileAtomic } from '../util/fs.js';

export const TUNE_FILE_VERSION = 1;

interface TuneFile {
  version: number;
  adapter: string;
  summary?: string;
  entries: Record<string, { pick: string; ms?: Record<string, number> }>;
}

/** The cache folder, or null when caching on disk is off (src/util/paths.ts cacheDir). */
export function tuneCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  return cacheDir(env);
}

export function tuneCacheFile(table: TuneTable, env: NodeJS.ProcessEnv = process.env): string | null {
  const dir = tuneCacheDir(env);
  return dir ? path.join(dir, `tune-${table.adapterKey}.json`) : null;
}

export function tuneDefaultsFile(kind: AdapterDescription['kind']): string {
  return path.join(kernelsDir(), 'tune', `${kind}.json`);
}

function readTuneFile(file: string): TuneFile | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(text) as TuneFile;
    if (j.version !== TUNE_FILE_VERSION || typeof j.entries !== 'object' || !j.entries) return null;
    return j;
  } catch (e) {
    // a damaged cache is not fatal: it is ignored (and replaced by the next save)
    process.emitWarning(`yolo-wgsl: ignoring unreadable tuning cache ${file}: ${(e as Error).message}`);
    return null;
  }
}

export interface LoadTuningResult {
  table: TuneTable;
  cacheFile: string | null;
  fromCache: number;
  fromDefaults: number;
}

/**
 * Fills the device's table from the shipped defaults for its adapter kind and the user's cache file for
 * this exact adapter (cache entries win). Safe to call more than once.
 */
export function loadTuning(gpu: { readonly info: AdapterDescription }, opts: { cacheFile?: string | null; defaults?: boolean } = {}): LoadTuningResult {
  const table = tuneTable(gpu);
  const cacheFile = opts.cacheFile === undefined ? tuneCacheFile(table) : opts.cacheFile;
  let fromCache = 0, fromDefaults = 0;
  if (cacheFile) {
    const f = readTuneFile(cacheFile);
    if (f && f.adapter === table.adapterKey) fromCache = table.merge(f.entries, 'cache', true);
  }
  if (opts.defaults !== false) {
    const f = readTuneFile(tuneDefaultsFile(gpu.info.kind));
    if (f) fromDefaults = table.merge(f.entries, 'default', false);
  }
  return { table, cacheFile, fromCache, fromDefaults };
}

/**
 * Writes the measured (and earlier cached) entries to the cache file, merged with what another process may
 * have saved meanwhile; atomic. Returns the file, or null when caching is off.
 */
export function saveTuning(gpu: { readonly info: AdapterDescription }, opts: { cacheFile?: string | null } = {}): string | null {
  const table = tuneTable(gpu);
  const file = opts.cacheFile === undefined ? tuneCacheFile(table) : opts.cacheFile;
  if (!file) return null;
  const old = readTuneFile(file);
  const entries = { ...(old && old.adapter === table.adapterKey ? old.entries : {}), ...table.toJSON(['measured', 'cache']) };
  const body: TuneFile = { version: TUNE_FILE_VERSION, adapter: table.adapterKey, summary: gpu.info.summary, entries };
  writeFileAtomic(file, `${JSON.stringify(body, null, 1)}\n`);
  table.dirty = 0;
  return file;
}

/** Writes the table's measured entries into the shipped defaults for this adapter kind (kernels/tune/<kind>.json), merged with the file's other entries. */
export function writeTuneDefaults(gpu: { readonly info: AdapterDescription }, file = tuneDefaultsFile(gpu.info.kind)): string {
  const table = tuneTable(gpu);
  // merged into what the file already ships (other networks' shapes stay; re-measured ones are replaced)
  const old = readTuneFile(file);
  const entries = { ...(old?.entries ?? {}), ...table.toJSON(['measured', 'cache']) };
  const body: TuneFile = { version: TUNE_FILE_VERSION, adapter: gpu.info.kind, summary: gpu.info.summary, entries };
  writeFileAtomic(file, `${JSON.stringify(body, null, 1)}\n`);
  return file;
}
