import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, sampleIndices } from '../helpers/check.js';
import type { RowsRef } from '../reference/softmax.js';
import { softmaxTreeBackwardRef, softmaxTreeRef } from '../reference/tree.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { softmaxTree } from '../../src/tensor/ops/softmax.js';
import { groupTable, parseTree } from '../../src/darknet/tree.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const FWD = { atol: 1e-7, rtol: 2e-6 };
const BWD = { atol: 1e-6, rtol: 1e-5 };

const small = parseTree(fs.readFileSync(path.join(packageRoot(), 'fixtures/tree/small.tree'), 'utf8'), 'small.tree');
// two roots, single-class groups and a deeper chain
const chain = parseTree('a -1\nb -1\nc 0\nd 2\ne 2\nf 1\ng 3\nh 3\ni 3\n', 'chain.tree');

const cases: { name: string; shape: number[]; rows: RowsRef; tree: typeof small }[] = [
  // [softmax] tree=: contiguous rows of 13 classes, temperature 0.5
  { name: '[softmax] rows, temperature 0.5', shape: [3, 13, 1, 1], rows: { rows: 3, n: 13, s2: 13, temperature: 0.5 }, tree: small },
  // [region] tree=: the classes (entries 5.. of 5+13) of 2 anchors on a 2x3 grid, stride H*W; x..obj copied
  { name: '[region] strided classes', shape: [2, 2 * 18, 2, 3], rows: { rows: 2 * 2 * 6, n: 13, stride: 6, offset: 5 * 6, c0: 6, s0: 1, c1: 2, s1: 18 * 6, s2: 2 * 18 * 6 }, tree: small },
  { name: '[softmax] chain tree', shape: [2, 9, 1, 1], rows: { rows: 2, n: 9, s2: 9 }, tree: chain },
];

for (const c of cases) {
  test(`softmax tree ${c.name}: forward vs float64, backward vs analytic and finite differences`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(5);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = randomArray(rng, n, -4, 4);
    const x = Tensor.param(gpu, c.shape, xv);
    const tape = newTape();
    const y = tape.record(() => softmaxTree(x, c.rows, groupTable(c.tree)));
    assertClose(await y.toArray(), softmaxTreeRef(xv, c.rows, c.tree), FWD, 'softmax tree forward');
    const dyv = randomArray(rng, n, -1, 1);
    const dy = Tensor.from(gpu, c.shape, dyv);
    tape.backward(y, dy);
    const gx = await x.grad!.toArray();
    assertClose(gx, softmaxTreeBackwardRef(xv, dyv, c.rows, c.tree), BWD, 'softmax tree backward vs analytic');
    const xs = f64(xv);
    const idx = sampleIndices(n, 40);
    assertClose(idx.map((i) => gx[i]), finiteDiff(() => dot(softmaxTreeRef(xs, c.rows, c.tree), dyv), xs, idx, 1e-5), { atol: 1e-5, rtol: 1e-4 }, 'softmax tree backward vs finite differences');
    for (const t of [x, y, dy, x.grad!]) t.dispose();
    tape.dispose();
  });
}

test.run();
