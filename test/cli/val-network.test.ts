import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { runVal, networkDetector } from '../../src/api/val.js';
import { loadDetectNetwork } from '../../src/cli/detect.js';
import { packageRoot } from '../../src/util/paths.js';
import { writeDataset, type SynthImage } from '../eval/synthetic.js';

test('val runs a network (bundled cfg, seeded weights) over a dataset split and scores it', async () => {
  const gpu = await getGpu();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-valnet-'));
  const val: SynthImage[] = [
    { name: 'a', width: 96, height: 80, objects: [{ classId: 0, x1: 10, y1: 10, x2: 50, y2: 50 }] },
    { name: 'b', width: 64, height: 64, objects: [{ classId: 2, x1: 5, y1: 5, x2: 40, y2: 60 }] },
  ];
  const { data } = writeDataset(root, { train: val, val }, ['circle', 'square', 'triangle']);
  const net = await loadDetectNetwork(gpu, path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), undefined);
  try {
    const out = path.join(root, 'out');
    const r = await runVal({ data, out, detector: networkDetector(gpu, net), conf: 0.001, iou: 0.6, log: () => {} });
    // random weights: many detections, and AP values that are valid numbers in [0, 1]
    assert.ok(r.summary.map50 >= 0 && r.summary.map50 <= 1);
    assert.ok(fs.existsSync(path.join(out, 'predictions.json')));
    const preds = JSON.parse(fs.readFileSync(path.join(out, 'predictions.json'), 'utf8')) as { image_id: string; bbox: number[] }[];
    assert.ok(preds.length > 0, 'the network produced detections at conf 0.001');
    assert.ok(preds.every((p) => ['a', 'b'].includes(String(p.image_id)) && p.bbox.length === 4));
  } finally {
    net.dispose?.();
  }
});

test.run();
