/** The bench entry points through the library API, on tiny shapes (numbers, not speed, are checked). */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { benchNetwork, formatNetworkBench } from '../../src/index.js';
import { packageRoot } from '../../src/util/paths.js';

test('benchNetwork (exported by the API): one inference and one training case of yolo-mini at 64', async () => {
  const gpu = await getGpu();
  const r = await benchNetwork({
    cfg: path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), gpu, sizes: [64], inferBatches: [1], trainBatches: [1],
    sweepBatches: [], sweepSizes: [], iters: 1, minIters: 1, budgetSeconds: 1,
  });
  assert.equal(r.errors, []);
  assert.is(r.infer.length, 1);
  assert.is(r.train.length, 1);
  assert.ok(r.infer[0].ms > 0 && Number.isFinite(r.infer[0].ms));
  assert.ok(Number.isFinite(r.train[0].loss_value));
  assert.ok(r.params > 10000);
  assert.match(formatNetworkBench(r), /64/);
});

test.run();
