import fs from 'node:fs';
import path from 'node:path';

/**
 * Every file under `dir` as bytes (a link to a file is read through), keyed by its path relative to `dir`, or
 * `<prefix>/<path inside>` given a prefix: a folder picked in a browser names its files `<folder>/<path inside>`.
 */
export function readTree(dir: string, prefix?: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(prefix === undefined ? path.relative(dir, p) : `${prefix}/${path.relative(dir, p)}`, new Uint8Array(fs.readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}
