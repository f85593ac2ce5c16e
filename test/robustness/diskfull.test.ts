/**
 * A disk that fills up while the engine writes: a checkpoint pair, detect's JSON and PNG, forward's .npy
 * files, a weights save. After each failed write:
 *   - the error is a WriteError naming the file being written ("no space left on device");
 *   - nothing is left under that name (an earlier version of it stays as it was) and no temporary remains;
 *   - every other file in the folder is complete (parses in full).
 * Two disks: a real one (a small tmpfs, where this process may mount one: root on Linux, as in CI) and an
 * injected one (src/util/fs.ts setWriteHook: the writes stop with ENOSPC after N bytes), which runs
 * everywhere. The same scenarios run on both.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { Network } from '../../src/darknet/network.js';
import { encodeWeights, saveWeights, weightsFileSize } from '../../src/darknet/weights.js';
import { readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { parseNpy } from '../../src/util/npy.js';
import { setWriteHook, WriteError } from '../../src/util/fs.js';
import { GOOD_PNG, MINI_CFG, filesUnder, runCli } from './corpus.js';

const FREE = 96 * 1024; // bytes left on the disk when a scenario starts

function miniNet(seed = 3): Network {
  const net = Network.fromFile(MINI_CFG);
  net.initWeights(seed);
  return net;
}

/** Every file written in `dir` (not in `old`, the files before, or changed) is whole: it parses as what its name says. */
function assertComplete(dir: string, old: ReadonlyMap<string, Buffer>): void {
  const size = weightsFileSize(miniNet());
  for (const f of filesUnder(dir)) {
    const p = path.join(dir, f);
    const b = fs.readFileSync(p);
    if (old.get(f)?.equals(b)) continue;
    if (f.endsWith('.json')) JSON.parse(b.toString('utf8'));
    else if (f.endsWith('.png')) PNG.sync.read(b);
    else if (f.endsWith('.npy')) parseNpy(b, p);
    else if (f.endsWith('.weights')) assert.is(b.length, size, `${f} has the full size`);
  }
}

interface Scenario {
  name: string;
  /** Written while the disk still has room (e.g. an earlier checkpoint that must survive). */
  before?: (dir: string) => Promise<void> | void;
  /** The write that runs out of space: throws, or (the CLI) returns the output with exit code 1. */
  write: (dir: string) => Promise<void>;
  /** What must hold afterwards, besides the common checks. */
  after?: (dir: string) => void;
}

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args);
  // the CLI reports the WriteError's message; rethrow it as the scenario's error
  if (r.code !== 1) throw new Error(`expected exit code 1, got ${r.code}:\n${r.out}`);
  const m = /WriteError: (cannot write (.+?): .*)$/m.exec(r.out);
  if (!m) throw new Error(`no WriteError in:\n${r.out}`);
  throw new WriteError(m[2], 'ENOSPC', new Error(m[1]));
}

const SCENARIOS: Scenario[] = [
  {
    name: 'checkpoint pair',
    before: (dir) => void writeCheckpoint(dir, 'last', new Uint8Array(8 * 1024).fill(1), { step: 1 }),
    write: async (dir) => void writeCheckpoint(dir, 'last', encodeWeights(miniNet()), { step: 2 }),
    after: (dir) => {
      const ck = readCheckpoint<{ step: number }>(dir, 'last');
      assert.ok(ck, 'the earlier checkpoint is still there');
      assert.is(ck!.state.step, 1, 'the earlier checkpoint, whole');
      assert.is(ck!.fellBack, false, 'the earlier pair is still the current pair');
      assert.is(ck!.weights.length, 8 * 1024);
    },
  },
  {
    name: 'weights save over an existing file',
    before: (dir) => fs.writeFileSync(path.join(dir, 'model.weights'), 'old'),
    write: async (dir) => saveWeights(miniNet(), path.join(dir, 'model.weights')),
    after: (dir) => assert.is(fs.readFileSync(path.join(dir, 'model.weights'), 'utf8'), 'old', 'the old file is untouched'),
  },
  {
    name: 'detect: drawn PNG and JSON',
    // seeded random weights at conf 0.001: hundreds of detections, a JSON larger than the free space
    write: (dir) => cli(['detect', '--cfg', MINI_CFG, '--source', GOOD_PNG, '--out', dir, '--conf', '0.001', '--img', '416']),
  },
  {
    name: 'forward: every layer as .npy',
    write: (dir) => cli(['forward', '--cfg', MINI_CFG, '--input', GOOD_PNG, '--out', dir, '--layers', 'all']),
  },
];

async function check(s: Scenario, dir: string, fill: () => void): Promise<void> {
  await s.before?.(dir);
  const old = new Map(filesUnder(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
  fill();
  let err: unknown = null;
  try {
    await s.write(dir);
  } catch (e) {
    err = e;
  }
  assert.instance(err, WriteError, `${s.name}: a WriteError (got ${String(err)})`);
  const we = err as WriteError;
  assert.match(we.message, /no space left on device/, we.message);
  assert.ok(path.resolve(we.file).startsWith(path.resolve(dir)), `${s.name}: the error names the file: ${we.message}`);
  const rel = path.relative(dir, we.file);
  if (old.has(rel)) assert.equal(fs.readFileSync(we.file), old.get(rel), `${s.name}: ${rel} as it was`);
  else assert.not.ok(fs.existsSync(we.file), `${s.name}: nothing under ${rel}`);
  assert.equal(filesUnder(dir).filter((f) => f.endsWith('.tmp') || f.includes('.tmp')), [], `${s.name}: no temporaries`);
  assertComplete(dir, old);
  s.after?.(dir);
}

/** The injected disk: FREE bytes, then ENOSPC (the write that crosses the limit writes what fits). */
function fullDisk(free: number): () => void {
  let left = free;
  return () =>
    void setWriteHook((_target, fd, data, offset, length) => {
      if (left <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const n = fs.writeSync(fd, data, offset, Math.min(length, left));
      left -= n;
      return n;
    });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-diskfull-'));

for (const s of SCENARIOS) {
  test(`disk full (injected ENOSPC after ${FREE / 1024} KiB): ${s.name}`, async () => {
    const dir = path.join(tmp, `inj-${s.name.replace(/\W+/g, '-')}`);
    fs.mkdirSync(dir, { recursive: true });
    try {
      await check(s, dir, fullDisk(FREE));
    } finally {
      setWriteHook(null);
    }
  });
}

/** Mounts a tmpfs of `bytes` at `dir`; false where this process may not (not root, not Linux, a container). */
function mountTmpfs(dir: string, bytes: number): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

for (const s of SCENARIOS) {
  test(`disk full (a real ${4} MiB tmpfs with ${FREE / 1024} KiB left): ${s.name}`, async () => {
    const dir = path.join(tmp, `fs-${s.name.replace(/\W+/g, '-')}`);
    fs.mkdirSync(dir, { recursive: true });
    if (!mountTmpfs(dir, 4 << 20)) {
      console.log(`  [skipped: cannot mount a tmpfs here (needs root on Linux); the injected-ENOSPC run of '${s.name}' covers it]`);
      return;
    }
    try {
      const fill = () => {
        // the filler takes all but FREE bytes of the mounted disk
        const st = fs.statfsSync(dir);
        const avail = st.bavail * st.bsize;
        fs.writeFileSync(path.join(dir, '..filler'), new Uint8Array(Math.max(0, avail - FREE)));
      };
      await check(s, dir, () => {
        fill();
      });
    } finally {
      execFileSync('umount', [dir], { stdio: 'ignore' });
    }
  });
}

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
