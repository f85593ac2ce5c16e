/**
 * `convert`: dataset formats in and out of YOLO. COCO instances JSON, Pascal VOC folders and labelme JSON
 * are read (coco.ts, voc.ts, labelme.ts) into one form (source.ts), planned once (plan.ts: classes, splits,
 * label text) and written as a YOLO dataset with Darknet and Ultralytics descriptions (writer.ts);
 * `yoloToCoco` (to_coco.ts) goes back to COCO instances JSON for pycocotools. docs/data.md "Converting
 * datasets". The same readers and plan convert files held in memory (memory.ts: a browser page).
 */
import { readCoco, type CocoSource } from './coco.js';
import { readLabelme } from './labelme.js';
import { nodeSourceIO } from './node_io.js';
import { readVoc } from './voc.js';
import { checkEmptyOut, writeYoloDataset, type ConvertResult, type YoloWriteOptions } from './writer.js';
import type { SourceSet } from './source.js';

export { readCoco, type CocoSource, type CocoReadOptions } from './coco.js';
export { yoloToCoco, type YoloToCocoOptions, type YoloToCocoResult, type CocoSplitFile } from './to_coco.js';
export { readVoc, type VocReadOptions } from './voc.js';
export { readLabelme } from './labelme.js';
export { nodeSourceIO } from './node_io.js';
export { writeYoloDataset, countByKind, NothingToWriteError, type ConvertResult, type YoloWriteOptions } from './writer.js';
export { planYoloDataset, type YoloPlan, type YoloPlanOptions, type PlannedImage } from './plan.js';
export {
  formatIssue, formatWhere, plural, SourceError,
  type ConvertIssue, type IssueKind, type SourceSet, type SourceImage, type SourceBox, type Where, type SourceIO,
} from './source.js';

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
    set = readCoco(opts.coco ?? [], { io: nodeSourceIO, keepCrowd: opts.keepCrowd });
    what = (opts.coco ?? []).map((c) => c.json);
  } else if (opts.from === 'voc') {
    set = readVoc(opts.voc ?? [], { io: nodeSourceIO, dropDifficult: opts.dropDifficult });
    what = opts.voc ?? [];
  } else {
    set = readLabelme(opts.labelme ?? [], { io: nodeSourceIO });
    what = opts.labelme ?? [];
  }
  return writeYoloDataset(set, { ...opts, from: `${opts.from} ${what.join(', ')}` });
}
