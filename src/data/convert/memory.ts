/**
 * `convert` on files held in memory (name -> bytes: a folder picked or dropped in a browser page): a folder
 * that holds a COCO instances JSON, a Pascal VOC tree or labelme JSON files instead of YOLO labels becomes
 * the YOLO dataset `yolo-wgsl convert --from <format> --to yolo --out DIR` would write into DIR, as files in
 * memory: `images/<split>/<name>` (the image's bytes), `labels/<split>/<stem>.txt` (byte for byte the label
 * files the command writes: the same readers, coco.ts / voc.ts / labelme.ts, through `memorySourceIO`, and
 * the same plan, plan.ts) and `obj.names` (the class list from the annotations). Every skipped or odd
 * annotation is reported as the command prints it (`formatIssue`: file, line or JSON path, why).
 *
 * Which format (`detectFormat`): the command is told (`--from`); here the files say it, by what each
 * reader needs. YOLO when some image has a label `.txt` by the dataset rule (`…/images/…` -> `…/labels/…`,
 * else beside it); else COCO when a `.json` holds an `images` list (its images folder: the folder under which
 * most of its `file_name`s are found, the nearest to the JSON on a tie; its split from the JSON's name, else
 * its folder's: Roboflow's `valid/_annotations.coco.json`); else VOC when there are `Annotations/*.xml` (the
 * VOC folder: the one holding Annotations/); else labelme when a `.json` holds a `shapes` list (the labelme
 * folder: the folder holding every file, so `train/` and `val/` under it are the splits). Browser-safe.
 */
import { imageDimensions } from '../image.js';
import { extName, isImageName, labelCandidates } from '../labels.js';
import { readCoco, type CocoSource } from './coco.js';
import { readLabelme } from './labelme.js';
import { countByKind, planYoloDataset, type YoloPlan } from './plan.js';
import { plural, safeRelative, splitFromName, type ConvertIssue, type SourceIO, type SourcePath, type SourceSet, type SplitName } from './source.js';
import { readVoc } from './voc.js';

export type DatasetFormat = 'yolo' | 'coco' | 'voc' | 'labelme';

/** What `detectFormat` found: the format and the inputs `convert` would be given for it. */
export interface DetectedFormat {
  format: DatasetFormat;
  /** One line: what was found where. */
  what: string;
  coco?: CocoSource[];
  voc?: string[];
  labelme?: string[];
}

export interface ConvertFilesOptions {
  /** The class list in order (as `--names`): other classes are skipped. Default: the annotations'. */
  names?: readonly string[];
  /** Images without a split of their own: this share goes to val, by a hash of the name (default 0.1, as `--val-fraction`). */
  valFraction?: number;
  /** COCO: keep iscrowd=1 boxes (as `--keep-crowd`). */
  keepCrowd?: boolean;
  /** VOC: skip difficult=1 objects (as `--drop-difficult`). */
  dropDifficult?: boolean;
}

/** A dataset converted in memory. */
export interface FilesConversion {
  format: Exclude<DatasetFormat, 'yolo'>;
  what: string;
  /** The YOLO dataset: images/<split>/…, labels/<split>/….txt, obj.names (the layout of `convert --out`). */
  files: Map<string, Uint8Array>;
  /** The class list (written to obj.names). */
  names: string[];
  /** Images per split, boxes, everything reported (the command's lines: `formatIssue`), skips among them. */
  counts: Record<SplitName, number>;
  boxes: number;
  issues: ConvertIssue[];
  skipped: number;
  /** A summary line, as the command's last: `4 images (train 3, val 1), 9 boxes; 2 skipped (…); notes: …`. */
  summary: string;
}

// ---------------------------------------------------------------- the files as a SourceIO

const enoent = (what: string, p: string): Error => Object.assign(new Error(`ENOENT: no such ${what}: '${p}'`), { code: 'ENOENT' });

/** Posix paths over names relative to the map's root ('' is the root; `..` above it stays). */
function normalize(p: string): string {
  const out: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else out.push(s);
  }
  return out.join('/');
}

export const memoryPath: SourcePath = {
  sep: '/',
  join: (...parts) => normalize(parts.filter((s) => s !== '').join('/')),
  resolve: (...parts) => {
    let at = 0;
    parts.forEach((s, i) => { if (s.startsWith('/')) at = i; });
    return normalize(parts.slice(at).join('/'));
  },
  relative: (from, to) => {
    const a = normalize(from).split('/').filter(Boolean), b = normalize(to).split('/').filter(Boolean);
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return [...a.slice(n).map(() => '..'), ...b.slice(n)].join('/');
  },
  dirname: (p) => {
    const n = normalize(p);
    const i = n.lastIndexOf('/');
    return i < 0 ? '' : n.slice(0, i);
  },
  basename: (p, ext) => {
    const n = normalize(p);
    const b = n.slice(n.lastIndexOf('/') + 1);
    return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b;
  },
  extname: (p) => extName(normalize(p)),
};

/** Bytes of base64 text as Node's Buffer.from(text, 'base64') reads it: both alphabets, other characters skipped, the first `=` ends it. */
export function decodeBase64(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let n = 0, acc = 0, bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let v: number;
    if (c >= 65 && c <= 90) v = c - 65;
    else if (c >= 97 && c <= 122) v = c - 71;
    else if (c >= 48 && c <= 57) v = c + 4;
    else if (c === 43 || c === 45) v = 62; // + -
    else if (c === 47 || c === 95) v = 63; // / _
    else if (c === 61) break; // =
    else continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.slice(0, n);
}

/** The converters' view of files in memory (keys: `/` paths relative to the picked folder's parent). */
export function memorySourceIO(files: ReadonlyMap<string, Uint8Array>): SourceIO {
  const dirs = new Map<string, Map<string, { dir: boolean; file: boolean }>>([['', new Map()]]);
  for (const key of files.keys()) {
    const parts = normalize(key).split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) dirs.set(dir, new Map());
      const last = i === parts.length - 1;
      const e = dirs.get(dir)!.get(parts[i]) ?? { dir: false, file: false };
      if (last) e.file = true;
      else e.dir = true;
      dirs.get(dir)!.set(parts[i], e);
    }
  }
  const bytes = (file: string): Uint8Array => {
    const b = files.get(normalize(file));
    if (!b) throw enoent('file', file);
    return b;
  };
  const decoder = new TextDecoder();
  return {
    path: memoryPath,
    readText: (file) => decoder.decode(bytes(file)),
    list: (dir) => {
      const d = dirs.get(normalize(dir));
      if (!d) throw enoent('directory', dir);
      return [...d].map(([name, e]) => ({ name, ...e }));
    },
    exists: (p) => files.has(normalize(p)) || dirs.has(normalize(p)),
    isFile: (p) => files.has(normalize(p)),
    isDir: (p) => dirs.has(normalize(p)),
    imageSize: (file) => {
      let dims;
      try {
        dims = imageDimensions(bytes(file), file);
      } catch (e) {
        throw new Error((e as Error).message.replace(`${file}: `, ''));
      }
      if (!dims) throw new Error('not a PNG or JPEG file');
      return dims;
    },
    base64: decodeBase64,
  };
}

// ---------------------------------------------------------------- which format

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function parseJson(bytes: Uint8Array): unknown {
  let text = new TextDecoder().decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The folder holding every key ('' when they have no common folder). */
function commonFolder(keys: readonly string[]): string {
  let common: string[] | null = null;
  for (const k of keys) {
    const parts = k.split('/').slice(0, -1);
    if (!common) common = parts;
    else {
      let n = 0;
      while (n < common.length && n < parts.length && common[n] === parts[n]) n++;
      common = common.slice(0, n);
    }
  }
  return (common ?? []).join('/');
}

/** The folder of a COCO JSON's images: where most of its file_names are (the nearest to the JSON on a tie). */
function cocoImagesFolder(json: string, fileNames: string[], folders: readonly string[], files: ReadonlyMap<string, Uint8Array>): string {
  const near = memoryPath.dirname(json);
  const names = fileNames.map(safeRelative).filter((n): n is string => n !== null).slice(0, 200);
  let best = near, hits = 0, dist = 0;
  for (const f of folders) {
    let h = 0;
    for (const n of names) if (files.has(memoryPath.join(f, n))) h++;
    const d = memoryPath.relative(near, f).split('/').filter(Boolean).length;
    if (h > hits || (h === hits && h > 0 && d < dist)) [best, hits, dist] = [f, h, d];
  }
  return best;
}

/** Which dataset format the files hold, and the inputs `convert` would take for it (see the file comment). */
export function detectFormat(input: ReadonlyMap<string, Uint8Array>): DetectedFormat {
  const files = new Map<string, Uint8Array>();
  for (const [k, v] of input) files.set(normalize(k), v);
  const keys = [...files.keys()].sort(byName);
  const images = keys.filter(isImageName);
  const labeled = images.filter((im) => labelCandidates(im).some((c) => files.has(c)));
  if (labeled.length) return { format: 'yolo', what: `YOLO labels (${plural(labeled.length, 'labelled image')} of ${images.length})` };
  const jsons = keys.filter((k) => k.toLowerCase().endsWith('.json'));
  const folders = [...new Set(keys.flatMap((k) => k.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))))].concat('').sort(byName);
  const coco: CocoSource[] = [];
  const labelme: string[] = [];
  for (const j of jsons) {
    const doc = parseJson(files.get(j)!);
    if (isObj(doc) && Array.isArray(doc.images)) {
      const fileNames = doc.images.map((im) => (isObj(im) && typeof im.file_name === 'string' ? im.file_name : '')).filter(Boolean);
      const split = splitFromName(j) ?? splitFromName(memoryPath.dirname(j));
      coco.push({ json: j, images: cocoImagesFolder(j, fileNames, folders, files), ...(split ? { split } : {}) });
    } else if (isObj(doc) && Array.isArray(doc.shapes)) labelme.push(j);
  }
  if (coco.length) {
    const where = coco.map((c) => `${c.json} (images in ${c.images || '.'}/${c.split ? `, ${c.split}` : ''})`).join(', ');
    return { format: 'coco', what: `COCO instances JSON ${where}`, coco };
  }
  const voc = [...new Set(keys.filter((k) => /(^|\/)Annotations\/[^/]+\.[xX][mM][lL]$/.test(k)).map((k) => memoryPath.dirname(memoryPath.dirname(k))))];
  if (voc.length) return { format: 'voc', what: `Pascal VOC ${voc.map((d) => `${d || '.'}/`).join(', ')} (Annotations/, JPEGImages/${voc.some((d) => files.has(memoryPath.join(d, 'ImageSets/Main/train.txt')) || files.has(memoryPath.join(d, 'ImageSets/Main/val.txt'))) ? ', ImageSets/Main/' : ''})`, voc };
  if (labelme.length) {
    const dir = commonFolder(keys);
    return { format: 'labelme', what: `labelme JSON (${plural(labelme.length, 'file')} under ${dir || '.'}/)`, labelme: [dir] };
  }
  return { format: 'yolo', what: images.length ? `no labels (${plural(images.length, 'image')}, no label .txt, COCO, VOC or labelme annotation)` : 'no images' };
}

// ---------------------------------------------------------------- converting

/**
 * The files as a YOLO dataset (see the file comment), or null when they are one already (or hold no
 * annotation of another format). Throws SourceError (a COCO file that contradicts another) or
 * NothingToWriteError (every image skipped; its `issues` say why), as the command does.
 */
export function convertFiles(input: ReadonlyMap<string, Uint8Array>, opts: ConvertFilesOptions = {}): FilesConversion | null {
  const files = new Map<string, Uint8Array>();
  for (const [k, v] of input) files.set(normalize(k), v);
  const found = detectFormat(files);
  if (found.format === 'yolo') return null;
  const io = memorySourceIO(files);
  let set: SourceSet;
  if (found.format === 'coco') set = readCoco(found.coco!, { io, keepCrowd: opts.keepCrowd });
  else if (found.format === 'voc') set = readVoc(found.voc!, { io, dropDifficult: opts.dropDifficult });
  else set = readLabelme(found.labelme!, { io });
  const plan: YoloPlan = planYoloDataset(set, { names: opts.names, valFraction: opts.valFraction, from: found.what });
  const out = new Map<string, Uint8Array>();
  const enc = new TextEncoder();
  for (const p of plan.images) {
    const bytes = p.source.file === null ? p.source.embedded ?? new Uint8Array() : files.get(p.source.file)!;
    out.set(`images/${p.split}/${p.name}`, bytes);
    out.set(`labels/${p.split}/${p.labelName}`, enc.encode(p.labelText));
  }
  out.set('obj.names', enc.encode(`${plan.names.map((n) => n.replace(/[\r\n]+/g, ' ')).join('\n')}\n`));
  const total = plan.counts.train + plan.counts.val + plan.counts.test;
  const per = (['train', 'val', 'test'] as const).filter((s) => plan.counts[s]).map((s) => `${s} ${plan.counts[s]}`).join(', ');
  const skipped = countByKind(plan.issues, true), notes = countByKind(plan.issues, false);
  const summary = `${plural(total, 'image')} (${per}), ${plural(plan.boxes, 'box', 'boxes')}${plan.skipped ? `; ${plan.skipped} skipped (${skipped})` : '; nothing skipped'}${notes ? `; notes: ${notes}` : ''}`;
  return { format: found.format, what: found.what, files: out, names: plan.names, counts: plan.counts, boxes: plan.boxes, issues: plan.issues, skipped: plan.skipped, summary };
}
