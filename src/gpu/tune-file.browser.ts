/**
 * Browser stand-in for tune-file.ts (swapped in by scripts/build-browser.mjs): a page has no cache folder,
 * so the table starts empty (conv2d `auto` uses its heuristic) unless the page fills it, e.g. with
 * `tuneTable(gpu).merge(entries, 'default', false)` from a JSON it fetched.
 */
import { tuneTable, type TuneTable } from './tune.js';

export interface LoadTuningResult {
  table: TuneTable;
  cacheFile: string | null;
  fromCache: number;
  fromDefaults: number;
}

export function loadTuning(gpu: Parameters<typeof tuneTable>[0]): LoadTuningResult {
  return { table: tuneTable(gpu), cacheFile: null, fromCache: 0, fromDefaults: 0 };
}
