/**
 * Measured kernel choices per adapter (burn's kernel/conv/tune in spirit): a table from
 * `<family>:<shape key>` to the variant that was fastest on this adapter, with the times that decided it.
 *
 * The table lives beside the device (one per Gpu, no global state) and is consulted by the ops' `auto`
 * choice (src/tensor/ops/conv2d.ts): a measured entry wins over the shipped defaults, which win over the
 * built-in heuristic. Filling it is explicit (src/tensor/ops/conv_tune.ts `autotuneConv`, `yolo-wgsl tune`);
 * persisting it is node-only (src/gpu/tune-file.ts: one JSON file per adapter in the user's cache folder,
 * plus defaults shipped in kernels/tune/<adapter kind>.json). This module itself touches no file system, so
 * the browser bundle can carry it.
 */
import type { AdapterDescription } from './adapter.js';

export interface TuneEntry {
  /** The chosen variant. */
  pick: string;
  /** Median milliseconds per variant measured (absent: not measured, e.g. from defaults). */
  ms?: Record<string, number>;
  /** Where the entry came from. */
  source: 'measured' | 'cache' | 'default';
}

export class TuneTable {
  private readonly entries = new Map<string, TuneEntry>();
  /** Entries measured in this process and not yet saved. */
  dirty = 0;

  constructor(readonly adapterKey: string) {}

  get(family: string, key: string): TuneEntry | undefined {
    return this.entries.get(`${family}:${key}`);
  }

  /** Records a measurement (replaces what was there). */
  set(family: string, key: string, pick: string, ms?: Record<string, number>): void {
    this.entries.set(`${family}:${key}`, { pick, ms, source: 'measured' });
    this.dirty++;
  }

  /** Takes an entry out (returned: `put` restores it as it was). */
  delete(family: string, key: string): TuneEntry | undefined {
    const k = `${family}:${key}`;
    const e = this.entries.get(k);
    this.entries.delete(k);
    return e;
  }

  /** Puts an entry back as it was (its source included). */
  put(family: string, key: string, e: TuneEntry): void {
    this.entries.set(`${family}:${key}`, e);
  }

  /** Adds entries read from a file; `overwrite` false keeps what is already known (defaults under cache). */
  merge(entries: Record<string, { pick: string; ms?: Record<string, number> }>, source: 'cache' | 'default', overwrite: boolean): number {
    let n = 0;
    for (const [k, e] of Object.entries(entries)) {
      if (!e || typeof e.pick !== 'string') continue;
      if (!overwrite && this.entries.has(k)) continue;
      this.entries.set(k, { pick: e.pick, ms: e.ms, source });
      n++;
    }
    return n;
  }

  /** Entries of a source (all when omitted), as a plain object for JSON. */
  toJSON(source?: TuneEntry['source'] | readonly TuneEntry['source'][]): Record<string, { pick: string; ms?: Record<string, number> }> {
    const want = source === undefined ? null : new Set(typeof source === 'string' ? [source] : source);
    const out: Record<string, { pick: string; ms?: Record<string, number> }> = {};
    for (const k of [...this.entries.keys()].sort()) {
      const e = this.entries.get(k)!;
      if (want && !want.has(e.source)) continue;
      out[k] = e.ms ? { pick: e.pick, ms: e.ms } : { pick: e.pick };
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.dirty = 0;
  }
}

/** A stable identity of an adapter for its tuning file: kind, backend, vendor, architecture, device. */
export function adapterKey(info: Pick<AdapterDescription, 'kind' | 'backend' | 'vendor' | 'architecture' | 'device' | 'description'>): string {
  const raw = [info.kind, info.backend, info.vendor, info.architecture, info.device || info.description].filter(Boolean).join('-');
  return raw.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 120) || 'unknown';
}

const tables = new WeakMap<object, TuneTable>();

/** The tuning table of a device (created empty on first use). */
export function tuneTable(gpu: { readonly info: AdapterDescription }): TuneTable {
  let t = tables.get(gpu);
  if (!t) {
    t = new TuneTable(adapterKey(gpu.info));
    tables.set(gpu, t);
  }
  return t;
}
