/**
 * The trainer's asynchronous loss readback and its non-finite check.
 *
 * During an update each mini-batch's loss and loss items are copied on the GPU into one small tensor
 * (`record`); when the update ends that tensor is read back without waiting (`endUpdate`), and the loop
 * goes on. Reads resolve in iteration order (a read waits for the one before it: readbacks may resolve out
 * of order, Dawn's GL backend does, progress may not); each resolved read checks the loss and its items for
 * NaN/±Inf, adds them to the epoch's means and reports a Progress. The loop keeps at most `maxInFlight`
 * reads outstanding (`waitBelow`) and waits for all of them (`drain`) before anything that must see every
 * earlier loss: an epoch summary, a checkpoint, the end. After a drain `throwIfNonFinite` stops the run
 * with the first update whose loss was not finite.
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { TrainError, type BatchSource, type LossResult, type Progress } from './types.js';

interface PendingRead {
  iteration: number;
  done: Promise<void>;
}

/** The update whose loss is read: where the run stood when it ended. */
export interface UpdateInfo {
  iteration: number;
  epoch: number;
  batchInEpoch: number;
  /** mini-batches and images in the update */
  subs: number;
  images: number;
  seen: number;
  lr: number;
  /** updates left in the run (NaN when unknown), for the ETA */
  remaining: number;
}

export class LossReadback {
  /** the update in progress: [loss, ...items] per mini-batch */
  private stats: Tensor | null = null;
  private itemNames: string[] | null = null;
  private pending: PendingRead[] = [];
  private chain: Promise<void> = Promise.resolve();
  private nonFinite: { iteration: number; epoch: number; what: string; value: number } | null = null;
  private epochAgg = { n: 0, loss: 0, items: [] as number[] };
  /** the last Progress reported */
  lastProgress: Progress | null = null;
  // timing
  private readonly t0 = performance.now();
  private tLast = 0;
  private secPerUpdate = NaN;
  private imagesPerSec = 0;

  constructor(private readonly o: { gpu: Gpu; loader: BatchSource<unknown>; onProgress?: (p: Progress) => void }) {}

  /**
   * Copies a mini-batch's loss and items (checked: [1] tensors, or one tensor with as many names as values,
   * the same names in every mini-batch) into slot `slot` of the update's `slots`.
   */
  record(loss: Tensor, r: LossResult, slot: number, slots: number): void {
    const gpu = this.o.gpu;
    // the item values, in one flat list of [1]-slices: (tensor, offset) per name
    const slices: [Tensor, number][] = [];
    let names: string[];
    if (r.items instanceof Tensor) {
      names = [...(r.itemNames ?? [...Array(r.items.size).keys()].map((i) => `item${i}`))];
      if (names.length !== r.items.size) throw new TrainError('config', `the loss names ${names.length} items for a tensor of ${r.items.size}`);
      names.forEach((_, j) => slices.push([r.items as Tensor, j]));
    } else {
      const rec = r.items ?? {};
      names = Object.keys(rec);
      for (const nm of names) {
        if (rec[nm].size !== 1) throw new TrainError('config', `loss item '${nm}' must be a [1] tensor, got ${rec[nm].describe()}`);
        slices.push([rec[nm], 0]);
      }
    }
    if (!this.itemNames) this.itemNames = names;
    else if (names.join() !== this.itemNames.join()) throw new TrainError('config', `the loss items changed from [${this.itemNames.join(', ')}] to [${names.join(', ')}]`);
    const k = 1 + names.length;
    if (!this.stats) this.stats = Tape.untracked(() => new Tensor(gpu, [slots * k], 'loss-stats'));
    const base = slot * k;
    gpu.copy(loss, 0, this.stats, base * 4, 4);
    slices.forEach(([t, off], j) => gpu.copy(t, off * 4, this.stats!, (base + 1 + j) * 4, 4));
  }

  /** Times an update (a running average of the seconds per update: images/s and the ETA). */
  timeUpdate(): void {
    const now = performance.now();
    if (this.tLast > 0) {
      const dt = (now - this.tLast) / 1000;
      this.secPerUpdate = Number.isNaN(this.secPerUpdate) ? dt : 0.9 * this.secPerUpdate + 0.1 * dt;
    }
    this.tLast = now;
  }

  /** Ends the update's record: reads it back asynchronously (`read` given) or frees it unread. */
  endUpdate(read: UpdateInfo | null): void {
    const stats = this.stats;
    this.stats = null;
    if (stats && read) this.read(stats, read);
    else stats?.dispose();
  }

  /** Frees the record of an unfinished update (abort, end of run). */
  discardUpdate(): void {
    this.stats?.dispose();
    this.stats = null;
  }

  private read(stats: Tensor, u: UpdateInfo): void {
    const { iteration, epoch, batchInEpoch, subs } = u;
    const names = this.itemNames ?? [];
    const k = 1 + names.length;
    const read = stats.toArray();
    stats.dispose();
    const secPerUpdate = this.secPerUpdate;
    const elapsed = (performance.now() - this.t0) / 1000;
    // in iteration order: readbacks may resolve out of order (Dawn's GL backend does), progress may not
    const done = Promise.all([read, this.chain.catch(() => undefined)]).then(([vals]) => {
      let loss = 0;
      const items = new Array<number>(names.length).fill(0);
      for (let s = 0; s < subs; s++) {
        loss += vals[s * k];
        names.forEach((_, j) => (items[j] += vals[s * k + 1 + j]));
      }
      loss /= subs;
      for (let j = 0; j < items.length; j++) items[j] /= subs;
      if (!this.nonFinite) {
        if (!Number.isFinite(loss)) this.nonFinite = { iteration, epoch, what: 'loss', value: loss };
        else {
          const j = items.findIndex((x) => !Number.isFinite(x));
          if (j >= 0) this.nonFinite = { iteration, epoch, what: `loss item '${names[j]}'`, value: items[j] };
        }
      }
      if (this.nonFinite) return;
      this.epochAgg.n++;
      this.epochAgg.loss += loss;
      items.forEach((x, j) => (this.epochAgg.items[j] = (this.epochAgg.items[j] ?? 0) + x));
      if (!Number.isNaN(secPerUpdate) && secPerUpdate > 0) this.imagesPerSec = u.images / secPerUpdate;
      const p: Progress = {
        iteration,
        epoch,
        batchInEpoch,
        batchesPerEpoch: this.o.loader.batchesPerEpoch,
        loss,
        lossItems: Object.fromEntries(names.map((nm, j) => [nm, items[j]])),
        lr: u.lr,
        seen: u.seen,
        imagesPerSec: this.imagesPerSec,
        eta: Number.isNaN(secPerUpdate) ? NaN : u.remaining * secPerUpdate,
        elapsed,
      };
      this.lastProgress = p;
      this.o.onProgress?.(p);
    });
    this.chain = done;
    this.pending.push({ iteration, done });
  }

  /** Waits until at most `limit` reads are outstanding. */
  async waitBelow(limit: number): Promise<void> {
    while (this.pending.length > limit) await this.pending.shift()!.done;
  }

  /** Waits for every outstanding read. */
  async drain(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    for (const x of p) await x.done;
    await this.chain;
  }

  /** Lets the last read settle, ignoring its failure (the end of a run that may be throwing). */
  async settle(): Promise<void> {
    await this.chain.catch(() => {});
  }

  /** TrainError('non-finite') naming the first update read with a non-finite loss or item; `lastGood` ends the message. */
  throwIfNonFinite(lastGood: () => string): void {
    const nf = this.nonFinite;
    if (!nf) return;
    throw new TrainError('non-finite', `${nf.what} is ${nf.value} at iteration ${nf.iteration} (epoch ${nf.epoch}): training stopped${lastGood()}`, nf.iteration);
  }

  /** The means of the epoch's updates read so far (loss per mini-batch, and each item). */
  epochMeans(): { loss: number; lossItems: Record<string, number> } {
    const names = this.itemNames ?? [];
    const n = Math.max(1, this.epochAgg.n);
    return { loss: this.epochAgg.loss / n, lossItems: Object.fromEntries(names.map((nm, j) => [nm, (this.epochAgg.items[j] ?? 0) / n])) };
  }

  /** Starts the next epoch's means. */
  resetEpoch(): void {
    this.epochAgg = { n: 0, loss: 0, items: [] };
  }
}
