/**
 * Checkpoint pairs: state codec round trip, a crash injected after every step of a save, corrupted and
 * mismatched files, and a child process SIGKILLed at random moments while it saves in a loop: the newest
 * consistent pair always loads and equals a generation that was saved (never a torn or mixed one).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointFiles, decodeState, encodeState, latestGeneration, locateCheckpoint, readCheckpoint, writeCheckpoint } from '../../src/train/checkpoint.js';
import { contentOf } from './fixtures/ckpt-content.js';
import { Rng } from '../../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmpdir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `yw-ckpt-${tag}-`));

type Content = ReturnType<typeof contentOf>['state'];

function assertGeneration(ck: ReturnType<typeof readCheckpoint<Content>>, g: number, label: string): void {
  assert.ok(ck, `${label}: a checkpoint loads`);
  assert.is(ck!.generation, g, `${label}: generation`);
  const want = contentOf(g);
  assert.ok(Buffer.from(ck!.weights).equals(Buffer.from(want.weights)), `${label}: weights bytes of generation ${g}`);
  assert.is(ck!.state.iteration, want.state.iteration, `${label}: state iteration`);
  assert.is(ck!.state.note, want.state.note);
  assert.is(ck!.state.seen, want.state.seen);
  assert.ok(Buffer.from(ck!.state.m.buffer).equals(Buffer.from(want.state.m.buffer)), `${label}: state tensor m`);
  assert.ok(Buffer.from(ck!.state.v.buffer).equals(Buffer.from(want.state.v.buffer)), `${label}: state tensor v`);
}

test('state codec: nested JSON, Float32Array blobs, bigint, non-finite numbers; corruption is detected', () => {
  const a = Float32Array.from([1.5, -0, NaN, Infinity, 3e-39]);
  const s = { it: 3, nested: { a, list: [new Float32Array(0), { b: Float32Array.from([7]) }], big: 2n ** 70n, inf: -Infinity, none: null }, name: 'x' };
  const bytes = encodeState(s, { generation: 4, weights: { bytes: 10, sha256: 'ab' } });
  const d = decodeState<typeof s>(bytes);
  assert.is(d.generation, 4);
  assert.equal(d.weights, { bytes: 10, sha256: 'ab' });
  assert.ok(Buffer.from(d.state.nested.a.buffer).equals(Buffer.from(a.buffer)), 'blob bytes (incl. -0, NaN) exact');
  assert.is(d.state.nested.big, 2n ** 70n);
  assert.is(d.state.nested.inf, -Infinity);
  assert.is(d.state.nested.none, null);
  assert.is((d.state.nested.list[1] as { b: Float32Array }).b[0], 7);
  const bad = Uint8Array.from(bytes);
  bad[bad.length - 1] ^= 1;
  assert.throws(() => decodeState(bad), /SHA-256/);
  assert.throws(() => decodeState(bytes.subarray(0, bytes.length - 4)), /torn|expected/);
  assert.throws(() => encodeState({ x: new Int32Array(2) }, { generation: 1, weights: null }), /Int32Array/);
});

test('a crash after any step of a save leaves the previous or the new pair loadable, never a mix', () => {
  const steps = ['temps-written', 'prev-weights', 'prev-state', 'weights', 'state'] as const;
  for (const [i, step] of steps.entries()) {
    const dir = tmpdir('step');
    for (const g of [1, 2]) writeCheckpoint(dir, 'last', contentOf(g).weights, contentOf(g).state);
    assert.is(latestGeneration(dir, 'last'), 2);
    const c3 = contentOf(3);
    assert.throws(() => writeCheckpoint(dir, 'last', c3.weights, c3.state, { onStep: (s) => { if (s === step) throw new Error(`crash at ${s}`); } }), /crash/);
    const ck = readCheckpoint<Content>(dir, 'last');
    // the new pair is complete only once its state is renamed into place (the last step)
    assertGeneration(ck, i === steps.length - 1 ? 3 : 2, `crash at ${step}`);
    assert.ok(fs.existsSync(checkpointFiles(dir, 'last').weights), 'last.weights exists at every step');
    // a later save goes on from there and leaves no temporaries
    writeCheckpoint(dir, 'last', contentOf(4).weights, contentOf(4).state, { generation: 4 });
    assertGeneration(readCheckpoint<Content>(dir, 'last'), 4, `save after crash at ${step}`);
    assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('corrupt or mismatched files fall back to the previous consistent pair; none at all is an error', () => {
  const dir = tmpdir('corrupt');
  const f = checkpointFiles(dir, 'last');
  assert.is(readCheckpoint(dir, 'last'), null);
  for (const g of [1, 2]) writeCheckpoint(dir, 'last', contentOf(g).weights, contentOf(g).state);
  // a flipped byte in the current weights: its state no longer matches -> generation 1
  const w = fs.readFileSync(f.weights);
  w[5000] ^= 0xff;
  fs.writeFileSync(f.weights, w);
  let ck = readCheckpoint<Content>(dir, 'last');
  assertGeneration(ck, 1, 'corrupt weights');
  assert.ok(ck!.fellBack);
  assert.match(ck!.rejected.join(), /generation 2/);
  // a truncated previous state as well: nothing consistent is left
  fs.writeFileSync(f.prevState, fs.readFileSync(f.prevState).subarray(0, 100));
  assert.throws(() => readCheckpoint(dir, 'last'), /no consistent checkpoint 'last'/);
  // locate: folder, folder/weights, a .state or .prev.weights file
  const run = tmpdir('run');
  fs.mkdirSync(path.join(run, 'weights'));
  for (const g of [5, 6]) writeCheckpoint(path.join(run, 'weights'), 'last', contentOf(g).weights, contentOf(g).state);
  assert.equal(locateCheckpoint(run), { dir: path.join(run, 'weights'), name: 'last' });
  assert.equal(locateCheckpoint(path.join(run, 'weights', 'last.prev.weights')), { dir: path.join(run, 'weights'), name: 'last' });
  assert.throws(() => locateCheckpoint(path.join(run, 'nope')), /does not exist/);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(run, { recursive: true, force: true });
});

/** Spawns the writer, waits until it has saved at least once (plus a random delay), SIGKILLs it. */
function runAndKill(dir: string, seed: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'ckpt-writer.ts'), dir, String(seed)], {
      env: { ...process.env, YOLO_WGSL_CKPT_WRITER: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let armed = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (!armed && /saved \d+/.test(out)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (d) => (err += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), 20000);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited ${code} ${signal}: ${err}`));
      const saved = [...out.matchAll(/saved (\d+)/g)].map((m) => Number(m[1]));
      resolve(saved.length ? saved[saved.length - 1] : -1);
    });
  });
}

test('SIGKILL at random moments during saves: the newest consistent pair equals a saved generation', async () => {
  const dir = tmpdir('kill');
  const rng = new Rng(2024);
  let prev = 0;
  let midSave = 0;
  for (let round = 0; round < 6; round++) {
    const lastPrinted = await runAndKill(dir, round + 1, Math.floor(rng.uniform(0, 250)));
    assert.ok(lastPrinted >= 1, 'the writer saved before the kill');
    const ck = readCheckpoint<Content>(dir, 'last');
    // what was acknowledged is durable; at most the save in flight may also have completed
    assert.ok(ck!.generation >= lastPrinted && ck!.generation <= lastPrinted + 1, `round ${round}: generation ${ck!.generation}, last acknowledged ${lastPrinted}`);
    assert.ok(ck!.generation > prev, 'generations advance across rounds');
    assertGeneration(ck, ck!.generation, `round ${round}`);
    if (ck!.fellBack || fs.readdirSync(dir).some((f) => f.endsWith('.tmp'))) midSave++;
    prev = ck!.generation;
  }
  if (process.env.YOLO_WGSL_TEST_VERBOSE) console.log(`kill test: ${midSave} of 6 kills landed inside a save`);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
