#!/usr/bin/env node
// Runs every test/**/*.test.ts with uvu in one process (one GPU device shared by all files) and ends with
// a plain summary line: "tests: N passed, N failed, N skipped". A test that cannot run here (it needs
// ../shared, say) prints "[skipped: why]" (test/helpers/check.ts noteMissingShared) and returns: uvu counts
// it as passed, so this summary moves it to "skipped" instead. When the browser page's test is skipped (no
// Chromium could be had: scripts/setup-chromium.sh), the summary line says so and why.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', process.argv[2] ?? '\\.test\\.ts$'];
const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? '0' } });
let out = '';
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
child.on('close', (code, signal) => {
  const text = strip(out);
  const num = (k) => Number((new RegExp(`${k}:\\s+(\\d+)`).exec(text) ?? [])[1] ?? 0);
  const total = num('Total');
  const passed = num('Passed');
  const uvuSkipped = num('Skipped');
  const notes = (text.match(/\[skipped: /g) ?? []).length;
  const failed = Math.max(0, total - passed - uvuSkipped);
  const skipped = uvuSkipped + notes;
  const shownPassed = Math.max(0, passed - notes);
  const why = signal ? ` (runner killed by ${signal})` : code && !failed ? ` (runner exited ${code})` : '';
  // the browser page's test is skipped only where no browser can be had: the summary says so, and why
  const browser = /\[skipped: browser end-to-end: ([^\]\n]*)\]/.exec(text);
  const browserWhy = browser ? `; the browser page was not tested: ${browser[1]}` : '';
  console.log(`tests: ${shownPassed} passed, ${failed} failed, ${skipped} skipped${why}${browserWhy}`);
  process.exit(code ?? 1);
});
