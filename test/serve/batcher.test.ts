/**
 * src/serve/batcher.ts on its own (no GPU): batches by key up to maxBatch, the wait for a batch to fill,
 * one batch at a time under maxConcurrent 1, a job's own failure, aborts while queued and while running,
 * the bounded queue.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Batcher, BatchAbort, QueueFull } from '../../src/serve/batcher.js';

interface Job { id: number; key: string; fail?: boolean }

/** A batcher whose run records each batch's ids and takes `ms` (released by hand when ms < 0). */
function make(o: { maxBatch: number; waitMs: number; maxConcurrent?: number; maxQueue?: number; ms?: number }) {
  const batches: number[][] = [];
  const release: (() => void)[] = [];
  let running = 0;
  let maxRunning = 0;
  const b = new Batcher<Job, string>({
    maxBatch: o.maxBatch, waitMs: o.waitMs, maxConcurrent: o.maxConcurrent ?? 1, maxQueue: o.maxQueue ?? 100,
    key: (j) => j.key,
    run: async (jobs) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      batches.push(jobs.map((j) => j.id));
      await new Promise<void>((r) => (o.ms === undefined || o.ms < 0 ? release.push(r) : setTimeout(r, o.ms)));
      running--;
      return jobs.map((j) => (j.fail ? { status: 'rejected', reason: new Error(`job ${j.id} failed`) } : { status: 'fulfilled', value: `done ${j.id} in a batch of ${jobs.length}` }));
    },
  });
  return { b, batches, release, maxRunning: () => maxRunning };
}

test('requests that queue while a batch runs go together; keys never mix; maxBatch caps a batch', async () => {
  const { b, batches, release } = make({ maxBatch: 3, waitMs: 0 });
  const p = [b.submit({ id: 0, key: 'a' })];
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(batches, [[0]], 'a lone request starts at once (waitMs 0)');
  for (let i = 1; i <= 5; i++) p.push(b.submit({ id: i, key: i === 3 ? 'b' : 'a' }));
  assert.is(b.depth, 5);
  release.shift()!();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(batches, [[0], [1, 2, 4]], 'the oldest key first, up to maxBatch, skipping the other key');
  release.shift()!();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(batches, [[0], [1, 2, 4], [3]], 'then the oldest left: key b alone');
  release.shift()!();
  await new Promise((r) => setTimeout(r, 5));
  release.shift()!();
  assert.equal(await Promise.all(p), ['done 0 in a batch of 1', 'done 1 in a batch of 3', 'done 2 in a batch of 3', 'done 3 in a batch of 1', 'done 4 in a batch of 3', 'done 5 in a batch of 1']);
  assert.equal(batches, [[0], [1, 2, 4], [3], [5]]);
  await b.idle();
});

test('waitMs: the oldest request waits for the batch to fill, then goes with what there is', async () => {
  const { b, batches } = make({ maxBatch: 4, waitMs: 80, ms: 1 });
  const t0 = performance.now();
  const a = b.submit({ id: 0, key: 'k' });
  await new Promise((r) => setTimeout(r, 20));
  const c = b.submit({ id: 1, key: 'k' });
  await Promise.all([a, c]);
  const waited = performance.now() - t0;
  assert.equal(batches, [[0, 1]]);
  assert.ok(waited >= 75, `waited ${waited.toFixed(0)} ms for the batch to fill`);
  // a full batch does not wait
  const t1 = performance.now();
  await Promise.all([0, 1, 2, 3].map((i) => b.submit({ id: 10 + i, key: 'k' })));
  assert.equal(batches[1], [10, 11, 12, 13]);
  assert.ok(performance.now() - t1 < 60, 'a full batch starts at once');
});

test('maxConcurrent bounds the batches running; a job failure fails that job only', async () => {
  const { b, maxRunning } = make({ maxBatch: 2, waitMs: 0, maxConcurrent: 2, ms: 20 });
  const rs = await Promise.allSettled([0, 1, 2, 3, 4, 5, 6].map((i) => b.submit({ id: i, key: 'k', fail: i === 4 })));
  assert.is(maxRunning(), 2);
  assert.equal(rs.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.match(String((rs[4] as PromiseRejectedResult).reason), /job 4 failed/);
});

test('abort while queued leaves the queue (stage queue); while running, the batch goes on (stage run); a full queue refuses at once', async () => {
  const { b, batches, release } = make({ maxBatch: 1, waitMs: 0, maxQueue: 2 });
  const run = new AbortController();
  const queued = new AbortController();
  const p0 = b.submit({ id: 0, key: 'k' }, run.signal);
  const p1 = b.submit({ id: 1, key: 'k' }, queued.signal);
  const p2 = b.submit({ id: 2, key: 'k' });
  const full = await b.submit({ id: 3, key: 'k' }).catch((e) => e);
  assert.instance(full, QueueFull);
  queued.abort('late');
  const e1 = await p1.catch((e) => e);
  assert.instance(e1, BatchAbort);
  assert.equal([e1.stage, e1.reason], ['queue', 'late']);
  assert.is(b.depth, 1);
  run.abort('gone');
  const e0 = await p0.catch((e) => e);
  assert.equal([e0.stage, e0.reason], ['run', 'gone']);
  release.shift()!();
  await new Promise((r) => setTimeout(r, 5));
  release.shift()!();
  assert.is(await p2, 'done 2 in a batch of 1');
  assert.equal(batches, [[0], [2]], 'the aborted queued job never ran');
  await b.idle();
});

test.run();
