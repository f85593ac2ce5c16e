/** One device for the whole test process (uvu imports every test file into one process). */
import { Gpu } from '../../src/gpu/device.js';

let gpu: Promise<Gpu> | undefined;

export function getGpu(): Promise<Gpu> {
  if (!gpu) {
    gpu = Gpu.create({
      // machine-independent: no measured conv choices from the user's cache (test/kernels/tune.test.ts
      // loads tables explicitly)
      tuning: false,
      log: process.env.YOLO_WGSL_TEST_VERBOSE ? (l) => console.log(l) : undefined,
    }).then((g) => {
      if (!process.env.YOLO_WGSL_TEST_QUIET_ADAPTER) {
        console.log(`[tests on ${g.info.summary}]`);
        process.env.YOLO_WGSL_TEST_QUIET_ADAPTER = '1';
      }
      return g;
    });
  }
  return gpu;
}
