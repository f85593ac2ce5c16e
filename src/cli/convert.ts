/**
 * `yolo-wgsl convert`: COCO / Pascal VOC / labelme -> YOLO (labels, image lists, data.yaml, obj.data,
 * obj.names), and YOLO -> COCO instances JSON. The work is in src/data/convert/; this checks the option
 * combination, prints every skipped or odd annotation with its file and place (at most `maxWarnings` per
 * kind), and a summary line. The caller exits 1 when anything was skipped, as detect and val do.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  convertToYolo, countByKind, formatIssue, NothingToWriteError, plural, yoloToCoco, type ConvertFormat, type ConvertIssue, type ConvertResult, type IssueKind,
} from '../data/convert/convert.js';
import { DatasetError, type SplitName } from '../data/dataset.js';
import { SettingError } from '../util/validate.js';

export interface ConvertCommandOptions {
  from: string;
  to: string;
  out: string;
  /** coco: instances JSON files. */
  json?: string[];
  /** coco: the images folder of each --json (or one for all). */
  images?: string[];
  voc?: string[];
  labelme?: string[];
  /** yolo: the dataset description. */
  data?: string;
  /** yolo: the split to convert; others: the split of images whose source has none. */
  split?: string;
  /** A class names file (one per line): the class list and order. */
  names?: string;
  valFraction?: number;
  copyImages?: boolean;
  keepCrowd?: boolean;
  dropDifficult?: boolean;
  categoryOffset?: number;
  /** Warning lines printed per kind (default 20; 0: all). */
  maxWarnings?: number;
  log?: (line: string) => void;
}

export interface ConvertCommandResult {
  /** Issues that dropped a box or an image. */
  skipped: number;
  issues: ConvertIssue[];
  images: number;
  boxes: number;
}

/** Which options each direction takes (the rest are refused, so a misplaced one is not silently ignored). */
const APPLIES: Record<string, readonly (keyof ConvertCommandOptions)[]> = {
  coco: ['json', 'images', 'names', 'split', 'valFraction', 'copyImages', 'keepCrowd'],
  voc: ['voc', 'names', 'split', 'valFraction', 'copyImages', 'dropDifficult'],
  labelme: ['labelme', 'names', 'split', 'valFraction', 'copyImages'],
  yolo: ['data', 'split', 'categoryOffset'],
};
const FLAG: Partial<Record<keyof ConvertCommandOptions, string>> = {
  json: '--json', images: '--images', voc: '--voc', labelme: '--labelme', data: '--data', split: '--split', names: '--names', valFraction: '--val-fraction',
  copyImages: '--copy-images', keepCrowd: '--keep-crowd', dropDifficult: '--drop-difficult', categoryOffset: '--category-offset',
};

/** A names file: one class per line, trailing empty lines dropped; an empty or repeated name is an error at its line. */
export function readNames(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DatasetError(`cannot read names file: ${(e as Error).message}`, file);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) throw new DatasetError('names file has no class names', file);
  const seen = new Map<string, number>();
  lines.forEach((n, i) => {
    if (n === '') throw new DatasetError('empty class name', file, i + 1);
    if (seen.has(n)) throw new DatasetError(`class ${JSON.stringify(n)} repeated (first at line ${seen.get(n)})`, file, i + 1);
    seen.set(n, i + 1);
  });
  return lines;
}

function checkOptions(o: ConvertCommandOptions): void {
  const pair = `${o.from}->${o.to}`;
  if (!['coco->yolo', 'voc->yolo', 'labelme->yolo', 'yolo->coco'].includes(pair)) {
    throw new SettingError('--to', `convert --from ${o.from} --to ${o.to}: the conversions are --from coco|voc|labelme --to yolo, and --from yolo --to coco`);
  }
  const allowed = APPLIES[o.from];
  for (const [k, flag] of Object.entries(FLAG) as [keyof ConvertCommandOptions, string][]) {
    const v = o[k];
    const given = Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false;
    if (given && !allowed.includes(k)) throw new SettingError(flag, `${flag} does not apply to convert --from ${o.from} (it takes ${allowed.map((a) => FLAG[a]).join(', ')})`);
  }
  const need = (k: keyof ConvertCommandOptions, what: string) => {
    const v = o[k];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) throw new SettingError(FLAG[k]!, `convert --from ${o.from} needs ${FLAG[k]} (${what})`);
  };
  if (o.from === 'coco') {
    need('json', 'a COCO instances JSON; repeat for more splits');
    need('images', 'the folder the JSON\'s file_name values are relative to');
    if (o.images!.length !== 1 && o.images!.length !== o.json!.length) throw new SettingError('--images', `give one --images for all, or one per --json (${o.json!.length} --json, ${o.images!.length} --images)`);
  }
  if (o.from === 'voc') need('voc', 'a VOC folder with Annotations/ and JPEGImages/');
  if (o.from === 'labelme') need('labelme', 'a folder of labelme JSON files');
  if (o.from === 'yolo') need('data', 'the dataset: a Darknet .data or Ultralytics .yaml');
  if (o.split !== undefined && !['train', 'val', 'test'].includes(o.split)) throw new SettingError('--split', `--split must be train, val or test, got '${o.split}'`);
  if (o.split !== undefined && o.valFraction !== undefined) throw new SettingError('--split', '--split puts every image without a split of its own into one split; --val-fraction shares them out: give one of them');
}

/** Prints the issues (at most `max` per kind, 0: all), then returns nothing; the caller prints the summary. */
function printIssues(issues: readonly ConvertIssue[], max: number, log: (l: string) => void): void {
  const shown = new Map<IssueKind, number>();
  for (const i of issues) {
    const n = shown.get(i.kind) ?? 0;
    shown.set(i.kind, n + 1);
    if (max === 0 || n < max) log(formatIssue(i));
  }
  for (const [kind, n] of shown) if (max > 0 && n > max) log(`... ${plural(n - max, `more ${kind} line`)} not shown (--max-warnings 0 shows all)`);
}

/** Runs `convert` (see the file comment). */
export function runConvert(o: ConvertCommandOptions): ConvertCommandResult {
  const log = o.log ?? ((l: string) => console.log(l));
  checkOptions(o);
  const max = o.maxWarnings ?? 20;
  const tail = (issues: readonly ConvertIssue[]) => {
    const skipped = countByKind(issues, true), notes = countByKind(issues, false);
    const n = issues.filter((i) => i.skipped).length;
    return `${n ? `; ${n} skipped (${skipped})` : '; nothing skipped'}${notes ? `; notes: ${notes}` : ''}`;
  };
  if (o.from === 'yolo') {
    const r = yoloToCoco({ data: o.data!, out: o.out, split: o.split as SplitName | undefined, categoryOffset: o.categoryOffset });
    printIssues(r.issues, max, log);
    for (const f of r.files) log(`convert: ${f.file}: ${f.images} images, ${f.boxes} boxes (file_name relative to ${f.imagesDir})`);
    const images = r.files.reduce((a, f) => a + f.images, 0), boxes = r.files.reduce((a, f) => a + f.boxes, 0);
    log(`convert: ${images} images, ${boxes} boxes written${tail(r.issues)}`);
    return { skipped: r.skipped, issues: r.issues, images, boxes };
  }
  const json = o.json ?? [];
  let r: ConvertResult;
  try {
    r = convertToYolo({
      from: o.from as ConvertFormat,
      coco: json.map((j, k) => ({ json: j, images: (o.images ?? [])[o.images?.length === 1 ? 0 : k] })),
      voc: o.voc,
      labelme: o.labelme,
      out: o.out,
      names: o.names ? readNames(o.names) : undefined,
      valFraction: o.valFraction,
      split: o.split as SplitName | undefined,
      copyImages: o.copyImages,
      keepCrowd: o.keepCrowd,
      dropDifficult: o.dropDifficult,
    });
  } catch (e) {
    if (e instanceof NothingToWriteError) printIssues(e.issues, max, log);
    throw e;
  }
  printIssues(r.issues, max, log);
  for (const remark of r.remarks) log(`note: ${remark}`);
  const images = r.images.train + r.images.val + r.images.test;
  const per = (['train', 'val', 'test'] as const).filter((s) => r.images[s]).map((s) => `${s} ${r.images[s]}`).join(', ');
  log(`convert: ${r.names.length} classes (${path.basename(r.files.names)}), ${r.files.yaml}, ${r.files.data}; images ${o.copyImages ? 'copied' : 'linked'} into ${path.join(r.out, 'images')}`);
  log(`convert: ${images} images (${per}), ${r.boxes} boxes written${tail(r.issues)}`);
  return { skipped: r.skipped, issues: r.issues, images, boxes: r.boxes };
}
