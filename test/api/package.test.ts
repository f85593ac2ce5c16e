/**
 * The package surface: importing the entry point creates nothing (no Dawn, no device, no globals); the
 * exports map points at the built files; the `files` list keeps tests, fixtures and sources out.
 * (scripts/check-pack.sh / `make check-pack` installs the real tarball in a fresh project.)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packageRoot } from '../../src/util/paths.js';

const root = packageRoot();

test('import has no side effects: no Dawn loaded, no globals, no device', () => {
  const code = `
    const before = new Set(Object.keys(globalThis));
    const m = await import(${JSON.stringify(path.join(root, 'src/index.ts'))});
    const added = Object.keys(globalThis).filter((k) => !before.has(k));
    console.log(JSON.stringify({ dawn: typeof globalThis.GPUBufferUsage !== 'undefined', added, exports: Object.keys(m).sort() }));`;
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', code], { encoding: 'utf8', cwd: root });
  assert.is(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as { dawn: boolean; added: string[]; exports: string[] };
  assert.is(o.dawn, false, 'Dawn (webgpu) is loaded only by createEngine');
  assert.equal(o.added, []);
  for (const name of ['createEngine', 'Engine', 'loadDarknet', 'Model', 'train', 'evaluate', 'benchKernels', 'CfgError', 'WeightsError', 'DatasetError', 'GpuError', 'TrainError']) {
    assert.ok(o.exports.includes(name), `exports ${name}`);
  }
});

test('package.json: exports map with types, files list without tests / fixtures / sources', () => {
  const pj = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.match(pj.version, /^\d+\.\d+\.\d+(-[\w.]+)?$/);
  assert.equal(pj.exports['.'], { types: './dist/src/index.d.ts', import: './dist/src/index.js', default: './dist/src/index.js' });
  assert.is(pj.exports['./browser'].types, './dist/src/browser.d.ts');
  for (const f of pj.files as string[]) assert.not.match(f, /^(test|fixtures|src|data|runs|scratch)\b|\.map$/, f);
  assert.ok((pj.files as string[]).some((f) => f.startsWith('kernels/')), 'kernels shipped');
  assert.ok(fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8').includes(`## ${pj.version}`), 'CHANGELOG has this version');
});

test.run();
