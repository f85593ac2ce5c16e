import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cfgAnchorsValue, formatAnchors, kmeansIou, meanBestIou, runAnchors, setCfgAnchors } from '../../src/cli/anchors.js';
import { writeDataset, type SynthImage } from '../eval/synthetic.js';

/** Three box shapes (10x10, 30x20, 60x80 px in 100x100 images), four of each, spread over images. */
function clusteredImages(): SynthImage[] {
  const shapes = [[10, 10], [30, 20], [60, 80]];
  const images: SynthImage[] = [];
  for (let i = 0; i < 4; i++) {
    images.push({
      name: `im${i}`,
      width: 100,
      height: 100,
      objects: shapes.map(([w, h], k) => ({ classId: k % 2, x1: 5 + i, y1: 5 + k, x2: 5 + i + w, y2: 5 + k + h })),
    });
  }
  images.push({ name: 'empty', width: 100, height: 100, objects: [] });
  return images;
}

test('k-means with the IoU distance recovers the three box shapes; anchors sorted by area; avg IoU 100 %', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-anchors-'));
  try {
    const { data, yaml } = writeDataset(path.join(dir, 'ds'), { train: clusteredImages(), val: clusteredImages().slice(0, 1) }, ['a', 'b']);
    for (const seed of [1, 2, 3]) {
      const lines: string[] = [];
      const r = runAnchors({ data, num: 3, width: 100, height: 100, seed, log: (l) => lines.push(l) });
      assert.is(r.boxes, 12);
      assert.is(r.images, 5);
      assert.equal(r.counts, [8, 4]);
      const rounded = r.anchors.map(([w, h]) => [Math.round(w * 1e4) / 1e4, Math.round(h * 1e4) / 1e4]);
      if (JSON.stringify(rounded) === JSON.stringify([[10, 10], [30, 20], [60, 80]])) {
        assert.ok(Math.abs(r.avgIou - 100) < 1e-3, `avg IoU ${r.avgIou}`);
        assert.is(r.text, ' 10, 10,  30, 20,  60, 80');
        assert.match(lines.join('\n'), /anchors =  10, 10,  30, 20,  60, 80/);
        assert.match(lines.join('\n'), /avg IoU = 100\.00 %/);
      } else {
        // a seed whose two initial centres fell in one cluster: still sorted by area, lower IoU
        assert.ok(r.avgIou < 100);
      }
      const areas = r.anchors.map(([w, h]) => w * h);
      assert.equal([...areas].sort((a, b) => a - b), areas, 'sorted by area');
    }
    // seed 1 is deterministic and finds the clusters (the YAML form gives the same)
    const y = runAnchors({ data: yaml, num: 3, width: 100, height: 100, log: () => {} });
    assert.is(y.text, ' 10, 10,  30, 20,  60, 80');
    // network size scales the boxes; small widths print with 4 decimals as Darknet does
    const small = runAnchors({ data, num: 3, width: 10, height: 10, log: () => {} });
    assert.is(small.text, '1.0000,1.0000, 3.0000,2.0000, 6.0000,8.0000');
    assert.throws(() => runAnchors({ data, num: 13, log: () => {} }), /12 boxes for 13 clusters/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kmeansIou / meanBestIou on hand data: one cluster = the mean box; identical boxes give IoU 100', () => {
  const one = kmeansIou([[10, 10], [20, 30]], 1);
  assert.equal(one.centers, [[15, 20]]);
  assert.ok(Math.abs(meanBestIou([[10, 10], [10, 10]], [[10, 10]]) - 100) < 1e-9);
  // IoU of 10x10 and 20x20 corner-aligned: 100/400
  assert.ok(Math.abs(meanBestIou([[10, 10]], [[20, 20]]) - 25) < 1e-4);
  assert.throws(() => kmeansIou([[1, 1]], 2), /1 boxes for 2 clusters/);
  assert.is(formatAnchors([[12.5, 13.5]], 416), ' 12, 14', 'printf %3.0f rounds half to even');
  assert.is(cfgAnchorsValue([[10, 13], [16, 30]], 416), '10,13,  16,30');
});

test('anchors written into every [yolo] of a copy of the cfg (anchors= and num=), masks checked, atomically', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-anchors-cfg-'));
  try {
    const cfg = [
      '[net]',
      'width=416',
      '',
      '[convolutional]',
      'filters=21',
      '',
      '[yolo]',
      'mask = 3,4,5',
      'anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319',
      'classes=2',
      'num=6',
      '# anchors = keep this comment',
      '',
      '[route]',
      'layers = -4',
      '',
      '[yolo]',
      'mask = 0,1,2',
      'classes=2',
    ].join('\n');
    const r = setCfgAnchors(cfg, '1,2,  3,4,  5,6', 3, 'x.cfg');
    assert.is(r.sections, 2);
    const lines = r.text.split('\n');
    assert.is(lines[8], 'anchors = 1,2,  3,4,  5,6');
    assert.is(lines[10], 'num=3');
    assert.is(lines[11], '# anchors = keep this comment');
    assert.is(lines[16], '[yolo]');
    assert.is(lines[17], 'anchors = 1,2,  3,4,  5,6', 'added after the header when absent');
    assert.is(lines[18], 'num=3');
    assert.is(lines[19], 'mask = 0,1,2');
    assert.equal(r.remarks, ['x.cfg:8: mask uses anchor 3 but num=3; adjust the masks']);
    // through runAnchors
    const { data } = writeDataset(path.join(dir, 'ds'), { train: clusteredImages(), val: [] }, ['a', 'b']);
    const src = path.join(dir, 'in.cfg');
    fs.writeFileSync(src, cfg);
    const out = path.join(dir, 'out', 'new.cfg');
    const lines2: string[] = [];
    const res = runAnchors({ data, num: 3, width: 100, height: 100, cfg: src, cfgOut: out, log: (l) => lines2.push(l) });
    assert.is(res.cfgOut, out);
    const written = fs.readFileSync(out, 'utf8');
    assert.match(written, /\[yolo\]\nmask = 3,4,5\nanchors = 10,10,  30,20,  60,80\nclasses=2\nnum=3\n/);
    assert.is(fs.readFileSync(src, 'utf8'), cfg, 'the source cfg is untouched');
    assert.match(lines2.join('\n'), /warning: .*in\.cfg:8: mask uses anchor 3/);
    assert.equal(fs.readdirSync(path.dirname(out)), ['new.cfg'], 'no temporary file left');
    assert.throws(() => runAnchors({ data, num: 3, cfgOut: out, log: () => {} }), /cfgOut needs cfg/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
