import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { Network } from '../../src/darknet/network.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { packageRoot } from '../../src/util/paths.js';

test('precompile: a dry run collects the forward\'s kernels without dispatching; afterwards the forward compiles nothing new and computes the same', async () => {
  const gpu = await getGpu();
  // an input size no other test uses, so its kernels (sizes are uniforms, but tilings depend on shapes) are
  // as new as they can be in a shared process
  const net = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), { width: 96, height: 96 });
  net.initWeights(5);
  net.prepare(gpu, 'infer');
  try {
    const d0 = gpu.dispatches;
    const specs = gpu.collectKernels(() => {
      const x = Tensor.empty(gpu, [2, 3, 96, 96]);
      for (const t of net.forward(x).values()) t.dispose();
      x.dispose();
    });
    assert.is(gpu.dispatches, d0, 'nothing dispatched in the dry run');
    assert.ok(specs.length >= 1);
    assert.throws(() => gpu.collectKernels(() => gpu.collectKernels(() => {})), /already collecting/);

    const r = await net.precompile(gpu, { batch: 2 });
    assert.ok(r.kernels <= specs.length && r.ms >= 0);
    const again = await net.precompile(gpu, { batch: 2 });
    assert.is(again.kernels, 0, 'everything is cached now');

    const n0 = gpu.pipelineCount;
    const data = Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => ((i * 7919) % 255) / 255);
    const x = Tensor.from(gpu, [2, 3, 96, 96], data);
    const outs = net.forward(x);
    assert.is(gpu.pipelineCount, n0, 'no kernel compiled by the forward');
    const vals = await Promise.all([...outs.values()].map((t) => t.toArray()));
    for (const t of outs.values()) t.dispose();
    // the same forward on a fresh network instance (same weights) agrees: the dry run left no state behind
    const net2 = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg'), { width: 96, height: 96 });
    net2.initWeights(5);
    net2.prepare(gpu, 'infer');
    const outs2 = net2.forward(x);
    const vals2 = await Promise.all([...outs2.values()].map((t) => t.toArray()));
    vals.forEach((v, i) => assertClose(v, vals2[i], { atol: 0, rtol: 0 }, `output ${i}`));
    for (const t of outs2.values()) t.dispose();
    net2.dispose();
    x.dispose();
  } finally {
    net.dispose();
  }
});

test.run();
