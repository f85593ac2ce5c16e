/**
 * Detects objects in every PNG/JPEG image of a folder and writes one JSON file with all detections.
 *
 *   node --import tsx examples/detect-folder.ts --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights \
 *     --names coco.names --images photos/ --out detections.json [--conf 0.25] [--iou 0.45] [--batch 4]
 *
 * In your own project, import from 'yolo-wgsl' instead of '../src/index.js'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine, loadDarknet } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    cfg: { type: 'string' }, weights: { type: 'string' }, names: { type: 'string' }, images: { type: 'string' },
    out: { type: 'string', default: 'detections.json' }, conf: { type: 'string', default: '0.25' }, iou: { type: 'string', default: '0.45' },
    batch: { type: 'string', default: '4' },
  },
});
if (!a.cfg || !a.images) {
  console.error('usage: detect-folder.ts --cfg X.cfg [--weights X.weights] [--names X.names] --images DIR [--out detections.json]');
  process.exit(2);
}

const files = fs.readdirSync(a.images).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(a.images!, f));
const engine = await createEngine();
console.log(`device: ${engine.adapterInfo.summary}`);
const model = await loadDarknet({ engine, cfg: a.cfg, weights: a.weights, names: a.names });
try {
  const t0 = performance.now();
  const results = await model.detectBatch(files, { conf: Number(a.conf), iou: Number(a.iou), batch: Number(a.batch) });
  const ms = performance.now() - t0;
  const json = files.map((file, i) => ({ image: path.basename(file), detections: results[i] }));
  fs.writeFileSync(a.out!, `${JSON.stringify(json, null, 1)}\n`);
  const n = results.reduce((s, r) => s + r.length, 0);
  console.log(`${files.length} images, ${n} detections in ${ms.toFixed(0)} ms -> ${a.out}`);
} finally {
  model.dispose();
  engine.dispose();
}
