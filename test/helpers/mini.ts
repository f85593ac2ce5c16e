/** The bundled yolo-mini network for tests that need a whole model: its cfg, names and seeded weights. */
import path from 'node:path';
import { Engine, loadDarknet } from '../../src/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { getGpu } from './gpu.js';

export const MINI_CFG = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
export const MINI_NAMES = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.names');

const saved = new Map<string, Promise<string>>();

/** yolo-mini's seeded weights (seed 9) saved as `<dir>/mini.weights`, once per folder. */
export function miniWeights(dir: string): Promise<string> {
  let p = saved.get(dir);
  if (!p) {
    p = (async () => {
      const m = await loadDarknet({ cfg: MINI_CFG, engine: new Engine(await getGpu()), seed: 9 });
      const file = path.join(dir, 'mini.weights');
      await m.save(file);
      m.dispose();
      return file;
    })();
    saved.set(dir, p);
  }
  return p;
}
