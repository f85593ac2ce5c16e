/**
 * Dynamic batching: requests that arrive while the GPU is busy (or within `waitMs` of each other) run as
 * one batch, one forward. A bounded FIFO queue; a batch takes the oldest request and every queued request
 * with the same key (the same detection options, which one forward and decode share), up to `maxBatch`.
 * It starts when it is full, when its oldest request has waited `waitMs`, and only while fewer than
 * `maxConcurrent` batches run.
 */

/** Why `submit` gave up on a request: its signal aborted while it was queued or while its batch ran. */
export class BatchAbort extends Error {
  override name = 'BatchAbort';
  constructor(readonly stage: 'queue' | 'run', readonly reason: unknown) {
    super(`aborted while ${stage === 'queue' ? 'queued' : 'running'}`);
  }
}

/** The queue is full: `submit` refuses at once. */
export class QueueFull extends Error {
  override name = 'QueueFull';
}

export interface BatcherOptions<J, R> {
  /** Largest batch. */
  maxBatch: number;
  /** How long the oldest queued request may wait for more to fill its batch, in milliseconds. */
  waitMs: number;
  /** Batches running at once. */
  maxConcurrent: number;
  /** Requests queued at most (waiting, not running). */
  maxQueue: number;
  /** Requests with equal keys may share a batch. */
  key: (job: J) => string;
  /** Runs one batch: one settled result per job, in order (a job's own failure does not fail the rest). */
  run: (jobs: J[]) => Promise<PromiseSettledResult<R>[]>;
  /** Called when a batch starts, with its size. */
  onBatch?: (size: number) => void;
}

interface Entry<J, R> {
  job: J;
  key: string;
  t: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
  done: boolean;
  detach: () => void;
}

export class Batcher<J, R> {
  private readonly queue: Entry<J, R>[] = [];
  private runningBatches = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: BatcherOptions<J, R>) {}

  /** Requests waiting in the queue. */
  get depth(): number {
    return this.queue.length;
  }

  /** Batches running now. */
  get running(): number {
    return this.runningBatches;
  }

  /**
   * Queues a job; resolves with its result. Rejects with QueueFull at once when the queue is full, with a
   * BatchAbort when `signal` aborts first (stage 'queue': it was taken out of the queue; 'run': its batch
   * goes on in the background), or with the job's own error.
   */
  submit(job: J, signal?: AbortSignal): Promise<R> {
    if (this.queue.length >= this.o.maxQueue) return Promise.reject(new QueueFull(`queue full (${this.o.maxQueue} waiting)`));
    return new Promise<R>((resolve, reject) => {
      const e: Entry<J, R> = {
        job, key: this.o.key(job), t: performance.now(), done: false,
        resolve: (r) => { if (!e.done) { e.done = true; e.detach(); resolve(r); } },
        reject: (x) => { if (!e.done) { e.done = true; e.detach(); reject(x); } },
        detach: () => {},
      };
      if (signal) {
        if (signal.aborted) return reject(new BatchAbort('queue', signal.reason));
        const onAbort = () => {
          const i = this.queue.indexOf(e);
          if (i >= 0) this.queue.splice(i, 1);
          e.reject(new BatchAbort(i >= 0 ? 'queue' : 'run', signal.reason));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        e.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(e);
      this.pump();
    });
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.runningBatches === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.runningBatches < this.o.maxConcurrent && this.queue.length > 0) {
      const head = this.queue[0];
      const batch: Entry<J, R>[] = [];
      for (const e of this.queue) {
        if (e.key === head.key) batch.push(e);
        if (batch.length === this.o.maxBatch) break;
      }
      const waited = performance.now() - head.t;
      if (batch.length < this.o.maxBatch && waited < this.o.waitMs) {
        this.timer = setTimeout(() => this.pump(), Math.max(0, this.o.waitMs - waited));
        return;
      }
      for (const e of batch) this.queue.splice(this.queue.indexOf(e), 1);
      this.start(batch);
    }
    if (this.queue.length === 0 && this.runningBatches === 0) for (const r of this.idleWaiters.splice(0)) r();
  }

  private start(batch: Entry<J, R>[]): void {
    this.runningBatches++;
    this.o.onBatch?.(batch.length);
    const finish = () => {
      this.runningBatches--;
      this.pump();
    };
    let results: Promise<PromiseSettledResult<R>[]>;
    try {
      results = this.o.run(batch.map((e) => e.job));
    } catch (err) {
      results = Promise.reject(err);
    }
    results.then(
      (rs) => batch.forEach((e, i) => {
        const r = rs[i];
        if (!r) e.reject(new Error(`batch run gave ${rs.length} results for ${batch.length} jobs`));
        else if (r.status === 'fulfilled') e.resolve(r.value);
        else e.reject(r.reason);
      }),
      (err) => batch.forEach((e) => e.reject(err)),
    ).finally(finish);
  }
}
