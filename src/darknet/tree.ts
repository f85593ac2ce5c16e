/**
 * Darknet's class hierarchy (YOLO9000, AlexeyAB / pjreddie src/tree.c): the files a cfg names with `tree=`
 * ([region], [softmax]) and `map=` ([region]), and the host-side tree walks.
 *
 * A tree file has one line per class, `name parent_index` (parent -1: a root). Darknet's read_tree groups
 * consecutive lines with the same parent: each group is one softmax (softmax_tree), `group[i]` is the group
 * of line i, `child[p]` the group of p's children (pjreddie sets it; AlexeyAB's read_tree leaves it unset and
 * its hierarchy_top_prediction would read NULL: the engine sets it as pjreddie does), `leaf[i]` says that no
 * line names i as its parent. The engine is stricter than sscanf: every line must be exactly a name and an
 * integer parent that is -1 or an earlier line (hierarchy_predictions multiplies in file order, so a later
 * parent would be read before it is final), blank lines are errors (Darknet would read them as classes).
 *
 * A map file (`map=`, coco9k.map) has one integer per line: the tree class of each dataset class id; the
 * [region] loss maps truth classes through it (Darknet's read_map). The detection-time `map` of Darknet's
 * get_region_detections comes from a .data file, not the cfg, and is not used here.
 *
 * Paths resolve as Darknet does (relative to the working directory) and then relative to the cfg's folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CfgError } from './cfg.js';
import type { BuildContext } from './layer.js';

export interface Tree {
  /** The file it was read from (as resolved). */
  readonly file: string;
  readonly n: number;
  readonly names: readonly string[];
  readonly parent: Int32Array;
  readonly child: Int32Array;
  readonly group: Int32Array;
  readonly leaf: Uint8Array;
  readonly groups: number;
  readonly groupOffset: Int32Array;
  readonly groupSize: Int32Array;
}

/** A malformed tree or map file: `line` is the file's line (1-based). */
export class TreeFileError extends Error {
  override name = 'TreeFileError';
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** Darknet fgetl: lines without '\n' / '\r'; a final newline does not start another line. */
function fileLines(text: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Parses a tree file (read_tree, with the checks above). */
export function parseTree(text: string, file: string): Tree {
  const lines = fileLines(text);
  if (lines.length === 0) throw new TreeFileError(file, 1, 'empty tree file (expected one "name parent_index" line per class)');
  const n = lines.length;
  const names: string[] = [];
  const parent = new Int32Array(n);
  lines.forEach((line, i) => {
    const t = line.trim().split(/\s+/);
    if (t.length !== 2 || t[0] === '' || !/^[+-]?\d+$/.test(t[1])) {
      throw new TreeFileError(file, i + 1, `expected "name parent_index", got '${line.trim()}'`);
    }
    const p = Number(t[1]);
    if (p < -1 || p >= i) {
      throw new TreeFileError(file, i + 1, p < -1 ? `parent index ${p} (a root is -1)` : `parent index ${p} is not an earlier line (class ${i} is this line, 0-based)`);
    }
    names.push(t[0]);
    parent[i] = p;
  });
  // read_tree: a new group starts where the parent differs from the previous line's (the first group is
  // empty when line 0 is not a root, as in Darknet)
  const offsets: number[] = [];
  const sizes: number[] = [];
  const group = new Int32Array(n);
  let last = -1;
  let size = 0;
  for (let i = 0; i < n; i++) {
    if (parent[i] !== last) {
      offsets.push(i - size);
      sizes.push(size);
      size = 0;
      last = parent[i];
    }
    group[i] = offsets.length;
    size++;
  }
  offsets.push(n - size);
  sizes.push(size);
  const child = new Int32Array(n).fill(-1);
  const leaf = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    if (parent[i] >= 0) {
      child[parent[i]] = group[i];
      leaf[parent[i]] = 0;
    }
  }
  return { file, n, names, parent, child, group, leaf, groups: offsets.length, groupOffset: Int32Array.from(offsets), groupSize: Int32Array.from(sizes) };
}

/** Parses a map file (read_map): one class index per line, each in [0, classes). */
export function parseClassMap(text: string, file: string, classes: number): Int32Array {
  const lines = fileLines(text);
  if (lines.length === 0) throw new TreeFileError(file, 1, 'empty map file (expected one class index per line)');
  return Int32Array.from(lines, (line, i) => {
    const v = line.trim();
    if (!/^[+-]?\d+$/.test(v)) throw new TreeFileError(file, i + 1, `expected a class index, got '${v}'`);
    const k = Number(v);
    if (k < 0 || k >= classes) throw new TreeFileError(file, i + 1, `class index ${k} is outside the ${classes} classes`);
    return k;
  });
}

/** The product of the probabilities from class c up to its root (get_hierarchy_probability), in float32 steps. */
export function hierarchyProbability(p: ArrayLike<number>, t: Tree, c: number): number {
  let v = 1;
  for (let k = c; k >= 0; k = t.parent[k]) v = Math.fround(v * p[k]);
  return v;
}

/**
 * The classifier target of one label (Darknet data.c fill_hierarchy): 1 for the label and its ancestors,
 * 0 for their siblings, and NaN for every class of a group that holds none of them (Darknet writes
 * SECRET_NUM there and its GPU path masks those entries out of the delta and the loss).
 */
export function hierarchyTarget(t: Tree, label: number): Float32Array {
  if (!(Number.isInteger(label) && label >= 0 && label < t.n)) throw new Error(`label ${label} is outside the tree's ${t.n} classes`);
  const y = new Float32Array(t.n);
  for (let k = label; k >= 0; k = t.parent[k]) y[k] = 1;
  for (let g = 0; g < t.groups; g++) {
    const o = t.groupOffset[g];
    let any = false;
    for (let i = 0; i < t.groupSize[g]; i++) any ||= y[o + i] !== 0;
    if (!any) y.fill(NaN, o, o + t.groupSize[g]);
  }
  return y;
}

/**
 * The tree as one u32 table for the kernels: parent[n] (i32 bits), child[n], group[n], group_offset[G],
 * group_size[G], in that order (offsets 0, n, 2n, 3n, 3n + G), as a Float32Array over the same bytes.
 */
export function treeTable(t: Tree): Float32Array {
  const f = new Float32Array(3 * t.n + 2 * t.groups);
  const i = new Int32Array(f.buffer);
  i.set(t.parent, 0);
  i.set(t.child, t.n);
  i.set(t.group, 2 * t.n);
  i.set(t.groupOffset, 3 * t.n);
  i.set(t.groupSize, 3 * t.n + t.groups);
  return f;
}

/** The (offset, size) of every group as u32 pairs, as a Float32Array over the same bytes (kernels/softmax_tree.wgsl). */
export function groupTable(t: Tree): Float32Array {
  const f = new Float32Array(2 * t.groups);
  const u = new Uint32Array(f.buffer);
  for (let g = 0; g < t.groups; g++) {
    u[2 * g] = t.groupOffset[g];
    u[2 * g + 1] = t.groupSize[g];
  }
  return f;
}

/** Where a file a cfg key names was looked for, and the first that exists (null: none). */
export interface CfgFileLookup {
  value: string;
  candidates: string[];
  found: string | null;
}

/** Darknet opens the path as given (relative to the working directory); the engine also tries the cfg's folder. */
export function lookupCfgFile(cfgFile: string, value: string): CfgFileLookup {
  let candidates: string[];
  try {
    candidates = path.isAbsolute(value) ? [value] : [...new Set([path.resolve(value), path.resolve(path.dirname(cfgFile), value)])];
    for (const c of candidates) if (fs.statSync(c, { throwIfNoEntry: false })?.isFile()) return { value, candidates, found: c };
  } catch {
    // no file system (the browser bundle): the file is absent
    candidates = [value];
  }
  return { value, candidates, found: null };
}

/** A tree= / map= file of a layer: the parsed content, or why it is absent. */
export type LayerFile<T> = { ok: true; value: T; file: string } | { ok: false; missing: string; cfg: string; line: number; label: string; key: string };

/** The content of a layer file, or a CfgError at the key's line saying that `what` needs the absent file. */
export function requireLayerFile<T>(f: LayerFile<T>, what: string): T {
  if (f.ok) return f.value;
  throw new CfgError(f.cfg, f.line, f.key, `${f.label} key '${f.key}': ${f.missing}; ${what} needs it`);
}

/**
 * Reads the file a layer's `key` names. Absent: a warning (the layer builds; shapes do not depend on it;
 * `needs` says what does) and `missing` says where it was looked for. Present but unreadable or malformed: a CfgError at the key's line
 * naming the file's line.
 */
export function readLayerFile<T>(ctx: BuildContext, key: string, what: string, parse: (text: string, file: string) => T, needs = 'forward, detect and train need it'): LayerFile<T> {
  const s = ctx.section;
  const v = s.str(key);
  const look = lookupCfgFile(s.file, v);
  if (!look.found) {
    const missing = `the ${what} file '${v}' was not found (looked for ${look.candidates.join(' and ')})`;
    ctx.warn(key, `${missing}: the network builds (shapes do not depend on it), ${needs}`, `missing-${key}`);
    return { ok: false, missing, cfg: s.file, line: s.entry(key)?.line ?? s.line, label: s.label, key };
  }
  let text: string;
  try {
    text = fs.readFileSync(look.found, 'utf8');
  } catch (e) {
    throw s.error(key, `cannot read the ${what} file ${look.found}: ${(e as Error).message}`);
  }
  try {
    return { ok: true, value: parse(text, look.found), file: look.found };
  } catch (e) {
    if (e instanceof TreeFileError) throw s.error(key, `${what} file ${e.message}`);
    throw e;
  }
}
