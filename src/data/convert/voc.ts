/**
 * Pascal VOC folders (VOCdevkit/VOC2007, VOC2012, or any folder laid out the same way):
 * `Annotations/<id>.xml`, `JPEGImages/<id>.jpg`, and optionally `ImageSets/Main/{train,val,test}.txt`.
 *
 * - XML is parsed by fast-xml-parser (validated first, so a malformed file is reported with its line and
 *   column and skipped; entities of a DOCTYPE are not expanded). Each `<object>` is reported by its line.
 * - Boxes follow Darknet's `scripts/voc_label.py` `convert()`: VOC corners are 1-based pixels, and
 *   `x = (xmin + xmax)/2 - 1`, `w = xmax - xmin` (so the pixel corners are `xmin - 1 .. xmax - 1`), normalised
 *   by the `<size>` of the XML (the image header when the XML has none). voc_label.py writes a box reaching
 *   outside the image as is; here it is clipped (the writer), which the dataset scanner needs.
 * - `difficult=1` objects are kept, with a note (`dropDifficult` skips them, as voc_label.py does): in YOLO
 *   labels they are ordinary objects.
 * - The class list is not in the files: the sorted names found (for VOC's 20 classes that is voc.names'
 *   order), or a names list given (an object of another class is skipped).
 * - Splits: an id in ImageSets/Main/train.txt goes to train, val.txt to val, test.txt to test (trainval.txt
 *   counts as train when train.txt and val.txt are absent). When the lists exist, only the ids they name
 *   are converted, as voc_label.py does (VOC2012 has annotations for images outside the detection sets),
 *   and the others are counted in one note; without lists every annotation is converted and the writer
 *   assigns the splits.
 * - The image is JPEGImages/<filename> of the XML, else JPEGImages/<id>.jpg (.jpeg, .png).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  lineCol, num, plural, probeImage, type ConvertIssue, type IssueKind, type SourceImage, type SourceIO, type SourceSet, type SplitName, type Where,
} from './source.js';

export interface VocReadOptions {
  /** The files: nodeSourceIO (node_io.ts) on disk, memorySourceIO (memory.ts) in memory. */
  io: SourceIO;
  /** Skip difficult=1 objects (default: keep them, with a note). */
  dropDifficult?: boolean;
}

/** id -> split from ImageSets/Main, or null when the folder has no split lists. */
function readSplitLists(io: SourceIO, dir: string, issues: ConvertIssue[]): Map<string, SplitName> | null {
  const main = io.path.join(dir, 'ImageSets', 'Main');
  const read = (name: string): string[] | null => {
    const file = io.path.join(main, `${name}.txt`);
    let text: string;
    try {
      text = io.readText(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') issues.push({ kind: 'malformed', where: { file }, message: `cannot read: ${(e as Error).message}`, skipped: false });
      return null;
    }
    return text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]).filter((id) => id !== '' && !id.startsWith('#'));
  };
  const train = read('train'), val = read('val'), test = read('test');
  const trainval = !train && !val ? read('trainval') : null;
  if (!train && !val && !test && !trainval) return null;
  const out = new Map<string, SplitName>();
  for (const [ids, split] of [[trainval, 'train'], [train, 'train'], [val, 'val'], [test, 'test']] as const) for (const id of ids ?? []) out.set(id, split);
  return out;
}

const PARSER = new XMLParser({ captureMetaData: true, isArray: (name) => name === 'object', parseTagValue: false, ignoreAttributes: true, processEntities: true });
const META = XMLParser.getMetaDataSymbol() as unknown as symbol;
const isObj = (v: unknown): v is Record<string | symbol, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : undefined);

/** Reads Pascal VOC folders (see the file comment). Never throws for a bad file: it is reported and skipped. */
export function readVoc(dirs: readonly string[], opts: VocReadOptions): SourceSet {
  const { io } = opts;
  const path = io.path;
  const issues: ConvertIssue[] = [];
  const report = (kind: IssueKind, where: Where, message: string, skipped = true) => issues.push({ kind, where, message, skipped });
  const images: SourceImage[] = [];
  for (const dir of dirs) {
    const annDir = path.join(dir, 'Annotations');
    let xmls: string[];
    try {
      xmls = io.list(annDir).map((e) => e.name).filter((f) => f.toLowerCase().endsWith('.xml')).sort();
    } catch (e) {
      report('malformed', { file: annDir }, `not a VOC folder: cannot list Annotations/ (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      continue;
    }
    const lists = readSplitLists(io, dir, issues);
    let unlisted = 0;
    for (const x of xmls) {
      const id = x.slice(0, -4);
      const file = path.join(annDir, x);
      if (lists && !lists.has(id)) {
        unlisted++;
        continue;
      }
      let xml: string;
      try {
        xml = io.readText(file);
      } catch (e) {
        report('malformed', { file }, `cannot read: ${(e as Error).message}; skipped`);
        continue;
      }
      const valid = XMLValidator.validate(xml);
      if (valid !== true) {
        report('malformed', { file, line: valid.err.line, col: valid.err.col }, `not well-formed XML: ${valid.err.msg}; skipped`);
        continue;
      }
      let ann: unknown;
      try {
        ann = (PARSER.parse(xml) as Record<string, unknown>).annotation;
      } catch (e) {
        // well-formed but past the parser's limits (nesting depth, entity expansion)
        report('malformed', { file }, `cannot parse: ${(e as Error).message}; skipped`);
        continue;
      }
      if (!isObj(ann)) {
        report('malformed', { file }, 'no <annotation> element; skipped');
        continue;
      }
      const lineOf = (node: unknown): number | undefined => {
        const m = isObj(node) ? (node[META] as { startIndex?: number } | undefined) : undefined;
        return m?.startIndex !== undefined ? lineCol(xml, m.startIndex).line : undefined;
      };
      const objects = Array.isArray(ann.object) ? ann.object : [];
      // the image: <filename> in JPEGImages, else <id>.jpg/.jpeg/.png
      const jpeg = path.join(dir, 'JPEGImages');
      const named = text(ann.filename);
      const candidates = [...(named ? [path.basename(named.replace(/\\/g, '/'))] : []), `${id}.jpg`, `${id}.jpeg`, `${id}.png`].map((n) => path.join(jpeg, n));
      const imageFile = candidates.find((c) => io.exists(c)) ?? candidates[0];
      const probe = probeImage(io, imageFile);
      if (!probe.ok) {
        report('missing-image', { file }, `${probe.why}; skipped with ${plural(objects.length, 'object')}`);
        continue;
      }
      const size = isObj(ann.size) ? ann.size : {};
      let width = num(size.width), height = num(size.height);
      if (width !== undefined && height !== undefined && width > 0 && height > 0) {
        if (width !== probe.width || height !== probe.height) report('size-mismatch', { file, line: lineOf(ann.size) }, `<size> says ${width}x${height}, the image is ${probe.width}x${probe.height}: boxes are normalised by <size>, as voc_label.py does`, false);
      } else [width, height] = [probe.width, probe.height];
      const image: SourceImage = { split: lists?.get(id), file: imageFile, name: `${id}${path.extname(imageFile)}`, width, height, boxes: [], where: { file } };
      objects.forEach((o: unknown, k: number) => {
        const where: Where = { file, line: lineOf(o) };
        const name = isObj(o) ? text(o.name) : undefined;
        const what = `object ${k + 1}${name ? ` "${name}"` : ''}`;
        if (!isObj(o) || !name) return report('malformed', where, `${what} has no <name>; skipped`);
        const bb = isObj(o.bndbox) ? o.bndbox : null;
        const c = bb ? [num(bb.xmin), num(bb.ymin), num(bb.xmax), num(bb.ymax)] : [];
        if (c.length !== 4 || c.some((v) => v === undefined)) return report('malformed', where, `${what} has no <bndbox> with numeric xmin, ymin, xmax, ymax; skipped`);
        if (num(o.difficult) === 1) {
          if (opts.dropDifficult) return report('difficult', where, `${what} is difficult=1; skipped (--drop-difficult)`);
          report('difficult', where, `${what} is difficult=1; kept (--drop-difficult skips it)`, false);
        }
        const [xmin, ymin, xmax, ymax] = c as number[];
        // Darknet voc_label.py convert(): centre (min + max)/2 - 1, size max - min
        image.boxes.push({ label: name, x1: xmin - 1, y1: ymin - 1, x2: xmax - 1, y2: ymax - 1, where });
      });
      images.push(image);
    }
    if (unlisted) report('unlisted', { file: path.join(dir, 'ImageSets', 'Main') }, `${unlisted} annotations of Annotations/ are in no split list here; not converted (as voc_label.py)`, false);
  }
  return { images, issues };
}
