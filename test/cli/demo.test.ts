import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tapeDemo } from '../../src/cli/demo.js';

test('tapeDemo: a short training run on the GPU lowers the loss', async () => {
  const lines: string[] = [];
  const r = await tapeDemo({ steps: 20, log: (l) => lines.push(l) });
  assert.ok(r.lastLoss < r.firstLoss / 4, `loss ${r.firstLoss} -> ${r.lastLoss}`);
  assert.ok(lines.some((l) => l.startsWith('demo: loss')));
  const order = lines.filter((l) => l.includes('  step')).map((l) => Number(/step\s+(\d+)/.exec(l)![1]));
  assert.equal(order, [...order].sort((a, b) => a - b), 'progress lines in step order');
});

test.run();
