/**
 * The tree reductions' width check (test/kernels/batchnorm.test.ts, conv2d.test.ts, pool.test.ts): runs an op at
 * each width of src/tensor/ops/reduce.ts treeTuning (invocations per workgroup tree; the first width is the
 * reference) and asserts that every typed array the run returns is the same bit for bit at every width.
 * The width goes back to the adapter's choice afterwards, also when a run throws.
 */
import { assertClose } from './check.js';
import { treeTuning } from '../../src/tensor/ops/reduce.js';

export async function sameAtTreeWidths<T extends object>(widths: readonly number[], label: string, run: () => Promise<T>): Promise<T[]> {
  const runs: T[] = [];
  try {
    for (const w of widths) {
      treeTuning.width = w;
      runs.push(await run());
    }
  } finally {
    treeTuning.width = 0;
  }
  for (const [i, r] of runs.entries()) {
    for (const [k, v] of Object.entries(r)) {
      if (ArrayBuffer.isView(v)) assertClose(v as unknown as ArrayLike<number>, (runs[0] as Record<string, ArrayLike<number>>)[k], { atol: 0, rtol: 0 }, `${label} width ${widths[i]} vs ${widths[0]}: ${k}`);
    }
  }
  return runs;
}
