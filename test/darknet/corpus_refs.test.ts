/**
 * Corpus cfgs against the Darknets, without the oracles: fixtures/golden/corpus_refs.json holds, for cfgs of
 * ../shared/darknet-cfg that nothing else here checks against a reference (relu6, [crop], pjreddie's strided
 * [shortcut], [region], [detection], [local], softmax temperature, scale_channels, yolov7-tiny, ...), every
 * layer's max|value|, mean|value| and 8 samples of one forward on AlexeyAB Darknet (or pjreddie's, for its
 * own semantics), seeded weights and input as test/helpers/crosscheck.ts makes them. scripts/crosscheck.ts
 * wrote it (its meta says how) and checks all 125 cfgs when the oracles are installed (docs/darknet.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { noteMissingShared, sharedDir } from '../helpers/check.js';
import { XCHECK_TOL, crosscheckInput, crosscheckNetwork } from '../helpers/crosscheck.js';
import { packageRoot } from '../../src/util/paths.js';
import { Tensor } from '../../src/tensor/tensor.js';

interface GoldenLayer { i: number; n: number; maxAbs: number; meanAbs: number; idx: number[]; val: number[] }
interface GoldenCfg { cfg: string; width: number; height: number; reference: string; layers: GoldenLayer[] }
const golden = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'fixtures/golden/corpus_refs.json'), 'utf8')) as { cfgs: GoldenCfg[] };

for (const g of golden.cfgs) {
  test(`${g.cfg} ${g.width}x${g.height} vs ${g.reference} Darknet: every layer (max, mean, samples)`, async () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared(`${g.cfg}.cfg`);
    const gpu = await getGpu();
    const net = crosscheckNetwork(path.join(shared, 'darknet-cfg', `${g.cfg}.cfg`), g.width);
    const { c: C, h: H, w: W } = net.input;
    assert.equal([W, H], [g.width, g.height], 'input size');
    net.prepare(gpu, 'infer');
    const x = Tensor.from(gpu, [1, C, H, W], crosscheckInput(C * H * W), 'input');
    const outs = net.forward(x, { keep: g.layers.map((l) => l.i) });
    let worst = 0;
    try {
      for (const l of g.layers) {
        const a = await outs.get(l.i)!.toArray();
        const what = `${g.cfg} layer ${l.i} ${net.layers[l.i].section.label}`;
        assert.is(a.length, l.n, `${what}: size`);
        let mx = 0;
        let sum = 0;
        for (const v of a) [mx, sum] = [Math.max(mx, Math.abs(v)), sum + Math.abs(v)];
        const tol = XCHECK_TOL * Math.max(l.maxAbs, 1e-30);
        const errs = [Math.abs(mx - l.maxAbs), Math.abs(sum / a.length - l.meanAbs), ...l.idx.map((k, j) => Math.abs(a[k] - l.val[j]))];
        const e = Math.max(...errs) / Math.max(l.maxAbs, 1e-30);
        worst = Math.max(worst, e);
        assert.ok(Math.max(...errs) <= tol, `${what}: ${e.toExponential(2)} of max|value| ${l.maxAbs} > ${XCHECK_TOL} (max, mean|.|, samples: ${errs.map((v) => v.toExponential(1)).join(' ')})`);
      }
    } finally {
      for (const t of new Set(outs.values())) if (t !== x) t.dispose();
      x.dispose();
      net.dispose();
    }
    console.log(`  ${g.cfg}: ${g.layers.length} layers, worst ${worst.toExponential(1)} of max|value|`);
  });
}

test.run();
