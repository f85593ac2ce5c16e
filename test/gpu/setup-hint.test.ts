/**
 * The GL fallback's one-line hint (src/gpu/setup-hint.ts): with the local lavapipe hidden (YOLO_WGSL_MESA
 * pointing at an empty folder), the first createEngine() of a machine says once how to get lavapipe; a
 * second engine in the process and a second process (the marker in the user cache) stay silent; with the
 * cache off, once per process; never when lavapipe is in use, when GL was asked for, or with
 * YOLO_WGSL_SETUP_HINT=0. Each case is a separate node process, as a user's program would be.
 * scripts/check-pack.sh checks the same from the packed tarball in a fresh project.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setupHint, setupMesaPossible } from '../../src/gpu/setup-hint.js';
import { localMesa } from '../../src/gpu/adapter.js';
import { packageRoot } from '../../src/util/paths.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-hint-'));
const noMesa = path.join(tmp, 'no-mesa');
fs.mkdirSync(noMesa);
const HINT = /running on OpenGL ES \(llvmpipe\), the slow CPU fallback; .*setup-mesa.* installs Mesa lavapipe into .*, a CPU adapter 3-6x faster/;

/** A program that creates (and disposes) `engines` engines; its stdout lists the adapters, stderr the rest. */
function run(env: Record<string, string>, engines = 2, backend = 'auto'): { adapters: string[]; hints: number; err: string } {
  const code = `import { createEngine } from ${JSON.stringify(path.join(root, 'src/api/engine.ts'))};
for (let i = 0; i < ${engines}; i++) { const e = await createEngine({ backend: '${backend}' }); console.log('adapter ' + e.adapterInfo.kind); e.dispose(); }`;
  const file = path.join(tmp, 'engines.mts');
  fs.writeFileSync(file, code);
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(YOLO_WGSL_|VK_ICD_FILENAMES|VK_DRIVER_FILES)/.test(k)) clean[k] = v;
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd: tmp, env: { ...clean, ...env }, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  const err = r.stderr.split('\n').filter((l) => !/^Warning: maxDynamic/.test(l)).join('\n');
  return { adapters: r.stdout.trim().split('\n').map((l) => l.replace('adapter ', '')), hints: (err.match(/setup-mesa/g) ?? []).length, err };
}

test('setupHint: only for the llvmpipe fallback chosen by auto with no lavapipe installed, where setup-mesa works', () => {
  const possible = setupMesaPossible();
  assert.is(setupHint({ kind: 'llvmpipe' }, { choice: 'auto', mesaInstalled: false }) !== null, possible);
  if (possible) assert.match(setupHint({ kind: 'llvmpipe' }, { choice: 'auto', mesaInstalled: false })!, HINT);
  assert.is(setupHint({ kind: 'llvmpipe' }, { choice: 'gl', mesaInstalled: false }), null, 'GL asked for');
  assert.is(setupHint({ kind: 'llvmpipe' }, { choice: 'auto', mesaInstalled: true }), null, 'lavapipe installed (it failed: doctor says why)');
  assert.is(setupHint({ kind: 'lavapipe' }, { choice: 'auto', mesaInstalled: false }), null);
  assert.is(setupHint({ kind: 'gpu' }, { choice: 'auto', mesaInstalled: false }), null);
});

test('lavapipe hidden: the hint once per machine (marker in the cache), once per process with the cache off; none with lavapipe, GL asked for, or YOLO_WGSL_SETUP_HINT=0', () => {
  if (!setupMesaPossible()) {
    console.log('[skipped: setup-mesa cannot install lavapipe on this OS (not Debian), so there is no hint to give]');
    return;
  }
  const cache = path.join(tmp, 'cache');
  const first = run({ YOLO_WGSL_MESA: noMesa, YOLO_WGSL_CACHE_DIR: cache });
  if (first.adapters[0] !== 'llvmpipe') {
    assert.is(first.hints, 0, `${first.adapters[0]} needs no hint: ${first.err}`);
    console.log(`[skipped: auto picks ${first.adapters[0]} here even without lavapipe, so the GL hint cannot show]`);
    return;
  }
  assert.equal(first.adapters, ['llvmpipe', 'llvmpipe']);
  assert.is(first.hints, 1, `exactly one hint for two engines:\n${first.err}`);
  assert.match(first.err, HINT);
  assert.is(first.err.split('\n').filter((l) => HINT.test(l)).length, 1, 'one line');
  assert.ok(fs.existsSync(path.join(cache, 'setup-mesa-hint')), 'the marker');
  const again = run({ YOLO_WGSL_MESA: noMesa, YOLO_WGSL_CACHE_DIR: cache }, 1);
  assert.is(again.hints, 0, `said on this machine before:\n${again.err}`);
  const off = run({ YOLO_WGSL_MESA: noMesa, YOLO_WGSL_CACHE_DIR: 'off' });
  assert.is(off.hints, 1, `no cache: once per process:\n${off.err}`);
  const quiet = run({ YOLO_WGSL_MESA: noMesa, YOLO_WGSL_CACHE_DIR: path.join(tmp, 'cache-quiet'), YOLO_WGSL_SETUP_HINT: '0' }, 1);
  assert.is(quiet.hints, 0, quiet.err);
  const gl = run({ YOLO_WGSL_CACHE_DIR: path.join(tmp, 'cache-gl') }, 1, 'gl');
  assert.equal([gl.adapters, gl.hints], [['llvmpipe'], 0], gl.err);
  if (localMesa()) {
    const lvp = run({ YOLO_WGSL_CACHE_DIR: path.join(tmp, 'cache-lvp') }, 1);
    assert.equal([lvp.adapters, lvp.hints], [['lavapipe'], 0], lvp.err);
  } else console.log('[skipped: no local lavapipe (make deps) for the case where it is in use]');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
