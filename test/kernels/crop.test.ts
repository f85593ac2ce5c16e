import { test } from 'uvu';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { cropRef } from '../reference/crop.js';
import { Tensor } from '../../src/tensor/index.js';
import { centerCrop } from '../../src/tensor/ops/crop.js';
import { Rng, randomArray } from '../../src/util/rng.js';

for (const noadjust of [false, true]) {
  test(`crop (inference, noadjust=${noadjust ? 1 : 0}): centred window, odd margins, batch 2`, async () => {
    const gpu = await getGpu();
    const shape = [2, 3, 9, 8];
    const xv = randomArray(new Rng(4), 2 * 3 * 9 * 8, 0, 1);
    const x = Tensor.from(gpu, shape, xv);
    const y = centerCrop(x, 6, 5, noadjust ? 1 : 2, noadjust ? 0 : -1);
    assertClose(await y.toArray(), cropRef(xv, shape, 6, 5, noadjust), { atol: 1e-7, rtol: 0 }, 'crop');
    x.dispose();
    y.dispose();
  });
}

test.run();
