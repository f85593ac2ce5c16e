import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { demo } from '../../src/cli/demo.js';

// the main job end to end at a tiny scale: a few 48-pixel images, a few iterations (the value is not checked)
test('demo: generate -> train -> val -> picture -> `mAP@0.5 X`', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maindemo-'));
  try {
    const lines: string[] = [];
    const r = await demo({
      out: path.join(dir, 'runs/demo'), data: path.join(dir, 'data/synth'), trainCount: 8, valCount: 4, size: 48, img: 48,
      maxBatches: 3, batch: 4, pictures: 3, workers: 0, log: (l) => lines.push(l),
    });
    const last = lines[lines.length - 1];
    assert.match(last, /^mAP@0\.5 (0|1)\.\d{4}$/);
    assert.equal(Number(last.split(' ')[1]), +r.map50.toFixed(4));
    assert.ok(r.map50 >= 0 && r.map50 <= 1);
    assert.is(r.iterations, 3);
    for (const f of [r.weights, r.picture, ...r.images, path.join(dir, 'runs/demo/val/metrics.json'), path.join(dir, 'data/synth/synth.data')]) {
      assert.ok(fs.existsSync(f), `${f} exists`);
    }
    assert.is(r.images.length, 3);
    assert.equal([...fs.readFileSync(r.picture).subarray(1, 4)], [...Buffer.from('PNG')]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
