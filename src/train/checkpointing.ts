/**
 * The trainer's checkpoints (the file pair format and its atomic writes are src/train/checkpoint.ts):
 *
 *   snapshot   host copies of the raw parameters (into the network's layer.data) and of the EMA, every value
 *              checked finite: a checkpoint never holds a NaN
 *   weights    the .weights bytes: the EMA values when the EMA is on (what is evaluated and deployed), else
 *              the raw parameters; `seen` = images seen
 *   save       `last` / `best` pairs, numbered `iter_<n>.weights` copies (Darknet's _<n>.weights backups),
 *              `final.weights` (a copy of the last `last.weights` of a completed run)
 *   state      what a resumed run needs (TrainState): collected at an update boundary, restored into a
 *              freshly built network, optimizer, EMA, schedule, loader and RNGs
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Network } from '../darknet/network.js';
import { decodeWeights, encodeWeights } from '../darknet/weights.js';
import type { Rng } from '../util/rng.js';
import { writeFileAtomic } from '../util/fs.js';
import { firstNonFinite } from '../util/validate.js';
import type { Optimizer } from './optim.js';
import type { LrSchedule } from './schedule.js';
import type { ModelEma } from './ema.js';
import { readCheckpoint, locateCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { TrainError, type BatchSource, type CheckpointSink, type EpochSummary, type TrainState } from './types.js';

/** EMA values by parameter key (`<layer index>.<param name>`), read back for a checkpoint or an evaluation. */
export type EmaValues = Map<string, Float32Array>;

/** Saves a run's checkpoints into `dir` (none: nothing is saved) and remembers the last good `last`. */
export class Checkpointer {
  /** the `last` checkpoint written in this run */
  lastSaved: { iteration: number; file: string } | null = null;

  constructor(
    readonly dir: string | CheckpointSink | undefined,
    private readonly net: Network,
    private readonly log: (line: string) => void,
  ) {}

  /** The end of a non-finite error message: where the last good checkpoint is. */
  lastGoodNote(): string {
    return this.lastSaved ? `; the last good checkpoint is ${this.lastSaved.file} (iteration ${this.lastSaved.iteration})` : this.dir ? '; no checkpoint was written in this run' : '';
  }

  /** Host copies: raw parameters into the network's layer.data, EMA values by key. Checks finiteness. */
  async snapshot(ema: ModelEma | null, iteration: number): Promise<EmaValues | null> {
    await this.net.pullParams();
    for (const l of this.net.layers) {
      for (const [name, a] of Object.entries(l.data ?? {})) {
        const i = firstNonFinite(a);
        if (i >= 0) throw new TrainError('non-finite', `parameter ${l.index}.${name}[${i}] is ${a[i]} after iteration ${iteration}: training stopped${this.lastSaved ? `; the last good checkpoint is ${this.lastSaved.file} (iteration ${this.lastSaved.iteration})` : ''}`, iteration);
      }
    }
    if (!ema) return null;
    const e = await ema.read();
    for (const [k, a] of e) {
      const i = firstNonFinite(a);
      if (i >= 0) throw new TrainError('non-finite', `EMA of ${k}[${i}] is ${a[i]} after iteration ${iteration}`, iteration);
    }
    return e;
  }

  /** The .weights bytes: the EMA values (if any) in place of the raw host parameters. */
  encodeWeights(ema: EmaValues | null, seen: number): Uint8Array {
    return withEma(this.net, ema, () => encodeWeights(this.net, { seen: BigInt(seen) }));
  }

  /** Writes the pairs `names` (`last`, `best`). */
  async save(names: string[], weights: Uint8Array, state: TrainState, iteration: number): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    if (typeof dir !== 'string') {
      for (const name of names) {
        await dir.save(name as 'last' | 'best', weights, state, iteration);
        if (name === 'last') this.lastSaved = { iteration, file: dir.describe?.(name) ?? `<${name}>` };
      }
      return;
    }
    for (const name of names) {
      const { generation, files } = writeCheckpoint(dir, name, weights, state);
      if (name === 'last') this.lastSaved = { iteration, file: files.weights };
      this.log(`saved ${files.weights} (+ ${path.basename(files.state)}, generation ${generation}, iteration ${iteration})`);
    }
  }

  /** Keeps a numbered copy `iter_<n>.weights` (Darknet's _<n>.weights backups). */
  keep(weights: Uint8Array, iteration: number): void {
    if (!this.dir) return;
    if (typeof this.dir !== 'string') return this.handOver(this.dir.keep?.(weights, iteration), `keep ${iteration}`);
    const f = path.join(this.dir, `iter_${iteration}.weights`);
    writeFileAtomic(f, weights);
    this.log(`saved ${f}`);
  }

  /** `final.weights`: a copy of `last.weights` at the end of a completed run. */
  saveFinal(): void {
    if (!this.dir) return;
    if (typeof this.dir !== 'string') return this.handOver(this.dir.final?.(), 'final');
    const file = path.join(this.dir, 'final.weights');
    writeFileAtomic(file, fs.readFileSync(path.join(this.dir, 'last.weights')));
    this.log(`saved ${file}`);
  }

  /** A sink's keep / final run on (the trainer does not wait for them); a failure is logged. */
  private handOver(r: void | Promise<void> | undefined, what: string): void {
    if (r instanceof Promise) r.catch((e: unknown) => this.log(`warning: checkpoint sink ${what}: ${(e as Error).message}`));
  }
}

/** Runs fn with the EMA values (if any) in place of the raw host parameters. */
function withEma<R>(net: Network, ema: EmaValues | null, fn: () => R): R {
  if (!ema) return fn();
  const saved: [Record<string, Float32Array>, string, Float32Array][] = [];
  for (const l of net.layers) {
    if (!l.data) continue;
    for (const p of l.params) {
      const v = ema.get(`${l.index}.${p.name}`);
      if (v) {
        saved.push([l.data, p.name, l.data[p.name]]);
        l.data[p.name] = v;
      }
    }
  }
  try {
    return fn();
  } finally {
    for (const [d, k, v] of saved) d[k] = v;
  }
}

// ------------------------------------------------------------------------------------------ resume state

/** The pieces of a run whose state a checkpoint holds. */
export interface RunParts {
  net: Network;
  opt: Optimizer;
  ema: ModelEma | null;
  schedule: LrSchedule;
  loader: BatchSource<unknown>;
  rngs?: Record<string, Rng>;
  extraState?: () => unknown;
}

/** Where the run stands at the last update boundary. */
export interface RunPosition {
  iteration: number;
  epoch: number;
  seen: number;
  /** loader state and batchInEpoch at the last update boundary */
  boundary: { loader: unknown; batchInEpoch: number };
  best: TrainState['best'];
  history: EpochSummary[];
}

/** The state file's content: counters, optimizer and EMA state (GPU reads), raw parameters when the .weights hold the EMA. */
export async function collectState(parts: RunParts, at: RunPosition, ema: EmaValues | null): Promise<TrainState> {
  const net = parts.net;
  const rawParams = ema
    ? net.layers.flatMap((l) => l.params.filter((p) => ema.has(`${l.index}.${p.name}`)).map((p) => ({ key: `${l.index}.${p.name}`, data: Float32Array.from(l.data![p.name]) })))
    : null;
  return {
    version: 1,
    iteration: at.iteration,
    epoch: at.epoch,
    batchInEpoch: at.boundary.batchInEpoch,
    seen: at.seen,
    optimizer: await parts.opt.exportState(),
    ema: parts.ema ? await parts.ema.exportState() : null,
    rawParams,
    schedule: parts.schedule.state(),
    loader: at.boundary.loader,
    rngs: Object.fromEntries(Object.entries(parts.rngs ?? {}).map(([k, r]) => [k, r.state])),
    best: at.best,
    history: at.history,
    extra: parts.extraState?.() ?? null,
    network: { file: net.file, input: { ...net.input }, params: net.paramCount },
  };
}

/**
 * Opens the checkpoint to resume from (a folder, a .state/.weights file, or a loaded checkpoint) and loads
 * its weights into `net` (not yet prepared): the .weights, then the raw parameters when those are the EMA.
 */
export function openResume(resume: string | LoadedCheckpoint<TrainState>, net: Network, log: (line: string) => void): LoadedCheckpoint<TrainState> {
  let ck: LoadedCheckpoint<TrainState> | null;
  if (typeof resume === 'string') {
    const loc = locateCheckpoint(resume);
    ck = readCheckpoint<TrainState>(loc.dir, loc.name);
    if (!ck) throw new TrainError('config', `resume: no checkpoint '${loc.name}' in ${loc.dir}`);
  } else ck = resume;
  if (ck.fellBack) log(`resume: the newest files were not a consistent pair (${ck.rejected.join('; ')}); using ${ck.stateFile}`);
  const s = ck.state;
  if (s.version !== 1) throw new TrainError('config', `resume: state version ${String(s.version)} is not supported`);
  decodeWeights(net, ck.weights, ck.weightsFile);
  if (s.rawParams) {
    const byKey = new Map(s.rawParams.map((r) => [r.key, r.data]));
    for (const l of net.layers) {
      if (!l.data) continue;
      for (const p of l.params) {
        const d = byKey.get(`${l.index}.${p.name}`);
        if (d) {
          if (d.length !== p.count) throw new TrainError('config', `resume: raw parameter ${l.index}.${p.name} has ${d.length} values, the network ${p.count}`);
          l.data[p.name] = d;
        }
      }
    }
  }
  return ck;
}

/** Restores the optimizer, EMA, schedule, loader position and RNGs of a state (the counters are the trainer's). */
export function restoreState(parts: RunParts, s: TrainState, log: (line: string) => void): void {
  parts.opt.importState(s.optimizer);
  if (s.ema && parts.ema) parts.ema.importState(s.ema);
  else if (parts.ema) {
    // resuming a run without EMA: start the average at the current weights
    parts.ema.reset(0);
    log('resume: the checkpoint has no EMA; the average starts from the resumed weights');
  }
  parts.schedule.restore(s.schedule);
  if (s.loader !== undefined && s.loader !== null) parts.loader.restore(s.loader);
  for (const [k, v] of Object.entries(s.rngs ?? {})) {
    const r = parts.rngs?.[k];
    if (r) r.state = v;
  }
}

/** Reads the newest consistent checkpoint from a user path (folder, .state or .weights file). */
export function loadTrainCheckpoint(p: string): LoadedCheckpoint<TrainState> {
  const loc = locateCheckpoint(p);
  const ck = readCheckpoint<TrainState>(loc.dir, loc.name);
  if (!ck) throw new TrainError('config', `no checkpoint '${loc.name}' in ${loc.dir}`);
  return ck;
}
