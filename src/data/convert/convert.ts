/**
 * `convert`: dataset formats in and out of YOLO. COCO instances JSON, Pascal VOC folders and labelme JSON
 * are read (coco.ts, voc.ts, labelme.ts) into one form (source.ts) that one writer turns into a YOLO
 * dataset with Darknet and Ultralytics descriptions (writer.ts); `yoloToCoco` (coco.ts) goes back to COCO
 * instances JSON for pycocotools. docs/data.md "Converting datasets".
 */
import { readCoco, type CocoSource } from './coco.js';
import { readLabelme } from './labelme.js';
import { readVoc } from './voc.js';
import { checkEmptyOut, writeYoloDataset, type ConvertResult, type YoloWriteOptions } from './writer.js';
import type { SourceSet } from './source.js';

export { yoloToCoco, readCoco, type CocoSource, type YoloToCocoOptions, type YoloToCocoResult, type CocoSplitFile } from './coco.js';
export { readVoc, type VocReadOptions } from './voc.js';
export { readLabelme } from './labelme.js';
export { writeYoloDataset, countByKind, NothingToWriteError, type ConvertResult, type YoloWriteOptions } from './writer.js';
export { formatIssue, formatWhere, plural, SourceError, type ConvertIssue, type IssueKind, type SourceSet, type SourceImage, type SourceBox, type Where } from './source.js';

export type ConvertFormat = 'coco' | 'voc' | 'labelme';

export interface ConvertToYoloOptions extends Omit<YoloWriteOptions, 'from'> {
  from: ConvertFormat;
  /** coco: the instances JSON files and the folder of each one's images. */
  coco?: CocoSource[];
  /** voc: VOC folders (Annotations/, JPEGImages/, ImageSets/Main/). */
  voc?: string[];
  /** labelme: folders of labelme JSON files. */
  labelme?: string[];
  /** coco: keep iscrowd=1 boxes as ordinary boxes (default: skipped). */
  keepCrowd?: boolean;
  /** voc: skip difficult=1 objects (default: kept). */
  dropDifficult?: boolean;
}

/** Reads a COCO, VOC or labelme dataset and writes it as a YOLO dataset (writer.ts). */
export function convertToYolo(opts: ConvertToYoloOptions): ConvertResult {
  checkEmptyOut(opts.out);
  let set: SourceSet;
  let what: string[];
  if (opts.from === 'coco') {
    set = readCoco(opts.coco ?? [], { keepCrowd: opts.keepCrowd });
    what = (opts.coco ?? []).map((c) => c.json);
  } else if (opts.from === 'voc') {
    set = readVoc(opts.voc ?? [], { dropDifficult: opts.dropDifficult });
    what = opts.voc ?? [];
  } else {
    set = readLabelme(opts.labelme ?? []);
    what = opts.labelme ?? [];
  }
  return writeYoloDataset(set, { ...opts, from: `${opts.from} ${what.join(', ')}` });
}
