/** Where the local Mesa lavapipe is searched and installed (src/gpu/adapter.ts, src/cli/setup-mesa.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { localMesa, mesaDirs, mesaInstallDir } from '../../src/gpu/adapter.js';
import { setupMesa } from '../../src/cli/setup-mesa.js';
import { packageRoot } from '../../src/util/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-mesa-'));
function fakeMesa(dir: string, version: string): void {
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'lvp_icd.json'), '{}');
  fs.writeFileSync(path.join(dir, 'version'), `${version}\n`);
  fs.writeFileSync(path.join(dir, 'ok'), '');
}

test('mesaDirs: YOLO_WGSL_MESA alone when set, else the checkout .mesa/ then the user cache mesa/', () => {
  assert.equal(mesaDirs({ YOLO_WGSL_MESA: path.join(tmp, 'x') }), [path.join(tmp, 'x')]);
  assert.equal(mesaDirs({ YOLO_WGSL_CACHE_DIR: path.join(tmp, 'cache') }), [path.join(packageRoot(), '.mesa'), path.join(tmp, 'cache', 'mesa')]);
  assert.equal(mesaDirs({ YOLO_WGSL_CACHE_DIR: 'off' }), [path.join(packageRoot(), '.mesa')]);
  // a checkout (not under node_modules) installs into its own .mesa/
  assert.is(mesaInstallDir({ YOLO_WGSL_CACHE_DIR: path.join(tmp, 'cache') }), path.join(packageRoot(), '.mesa'));
  assert.is(mesaInstallDir({ YOLO_WGSL_MESA: path.join(tmp, 'y') }), path.join(tmp, 'y'));
});

test('localMesa: the first folder with lvp_icd.json and the ok marker wins; half-installed folders are skipped', () => {
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  fs.mkdirSync(a, { recursive: true });
  fs.writeFileSync(path.join(a, 'lvp_icd.json'), '{}'); // no `ok`: an interrupted install
  fakeMesa(b, '25.0.7');
  const m = localMesa([path.join(tmp, 'none'), a, b]);
  assert.ok(m);
  assert.is(m!.dir, b);
  assert.is(m!.version, '25.0.7');
  assert.is(m!.icd, path.join(b, 'lvp_icd.json'));
  assert.is(localMesa([a]), undefined);
});

test('setup-mesa: an installed folder is reported ready without downloading anything', async () => {
  const d = path.join(tmp, 'ready');
  fakeMesa(d, '25.0.7');
  const lines: string[] = [];
  assert.ok(await setupMesa({ dir: d, log: (l) => lines.push(l) }));
  assert.ok(lines.some((l) => l.includes(`lavapipe already in ${d}`)), lines.join('\n'));
  // not one of the searched folders: says how to point the engine at it
  assert.ok(lines.some((l) => l.includes(`set YOLO_WGSL_MESA=${d}`)), lines.join('\n'));
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
