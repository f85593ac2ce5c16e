/** Darknet-style info table and total BFLOPs (must equal Darknet's at 416x416). */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { runInfo } from '../../src/cli/info.js';
import { bflopsText } from '../../src/darknet/info.js';

// Darknet (AlexeyAB) "Total BFLOPS" at width=height=416.
const DARKNET_BFLOPS: Record<string, string> = {
  'yolov3-tiny': '5.571',
  'yolov4-tiny': '6.910',
  yolov3: '65.879',
  'yolov7-tiny': '5.802',
  yolov4: '60.137',
};

for (const [name, want] of Object.entries(DARKNET_BFLOPS)) {
  test(`Total BFLOPS of ${name} at 416x416 is Darknet's ${want}`, () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared('the cfg corpus');
    const lines: string[] = [];
    const info = runInfo({ cfg: path.join(shared, 'darknet-cfg', `${name}.cfg`), width: 416, height: 416, log: (l) => lines.push(l) });
    assert.is(bflopsText(info.totalBflops).trim(), want);
    const text = lines.join('\n');
    assert.is(text.trimEnd().split('\n').pop(), `Total BFLOPs ${want}`, 'the table ends with the total');
    assert.is(info.width, 416);
    assert.is(info.rows.length, info.rows[info.rows.length - 1].index + 1);
  });
}

test('info rows: yolov3-tiny layer table', () => {
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the cfg corpus');
  const lines: string[] = [];
  const info = runInfo({ cfg: path.join(shared, 'darknet-cfg', 'yolov3-tiny.cfg'), width: 416, height: 416, batch: 2, log: (l) => lines.push(l) });
  const r0 = info.rows[0];
  assert.equal([r0.type, r0.filters, r0.size, r0.input, r0.output, bflopsText(r0.bflops)], ['conv', '16', '3 x 3/1', '416 x 416 x 3', '416 x 416 x 16', '0.150']);
  const mp = info.rows[11];
  assert.equal([mp.type, mp.size, mp.input, mp.output], ['max', '2 x 2/1', '13 x 13 x 512', '13 x 13 x 512']);
  assert.equal(info.rows.filter((r) => r.type === 'yolo').map((r) => r.index), [16, 23]);
  assert.is(info.params, 8858734);
  assert.is(info.batch, 2);
  assert.match(lines[0], 'input 416 x 416 x 3, batch 2');
});

test.run();
