/**
 * The trainer's periodic evaluation: when it is due (every `evalEveryEpochs` epochs, default 1, and at the
 * run's last epoch end; every `evalEveryIterations` updates, default never), the inference network it runs
 * on (built once, given the raw or EMA host values before each evaluation), and the best fitness so far,
 * which picks the `best` checkpoint.
 */
import { Network } from '../darknet/network.js';
import type { EmaValues } from './checkpointing.js';
import { TrainError, type EvalResult, type TrainerOptions, type TrainState } from './types.js';

type ValidationOptions = Pick<TrainerOptions<unknown>, 'gpu' | 'evaluate' | 'evalEveryEpochs' | 'evalEveryIterations' | 'buildEvalNetwork'>;

export class Validation {
  /** the best fitness so far, the update and epoch that reached it */
  best: TrainState['best'] = null;
  private evalNet: Network | null = null;

  constructor(
    private readonly o: ValidationOptions,
    private readonly net: Network,
    private readonly log: (line: string) => void,
  ) {}

  /** Whether there is an evaluation at all. */
  get enabled(): boolean {
    return !!this.o.evaluate;
  }

  /** Due after update `iteration` (every `evalEveryIterations` updates; default 0: never). */
  dueAfterUpdate(iteration: number): boolean {
    const ee = this.o.evalEveryIterations ?? 0;
    return !!this.o.evaluate && ee > 0 && iteration % ee === 0;
  }

  /** Due at the end of an epoch (`epochsDone` epochs complete; every `evalEveryEpochs`, and at the run's end). */
  dueAtEpochEnd(epochsDone: number, finished: boolean): boolean {
    const ee = this.o.evalEveryEpochs ?? 1;
    return !!this.o.evaluate && ee > 0 && (epochsDone % ee === 0 || finished);
  }

  /**
   * Evaluates the network's host parameters (`ema` values in place of the raw ones when given) and keeps
   * the best finite fitness; `improved`: this one is the new best.
   */
  async run(ema: EmaValues | null, iteration: number, epoch: number): Promise<{ result: EvalResult; improved: boolean }> {
    const result = await this.evaluate(ema, iteration, epoch);
    let improved = false;
    if (!Number.isFinite(result.fitness)) this.log(`warning: evaluation at iteration ${iteration} gave fitness ${result.fitness}`);
    else if (!this.best || result.fitness > this.best.fitness) {
      this.best = { fitness: result.fitness, iteration, epoch };
      improved = true;
    }
    return { result, improved };
  }

  private async evaluate(ema: EmaValues | null, iteration: number, epoch: number): Promise<EvalResult> {
    if (!this.evalNet) {
      const I = this.net.input;
      this.evalNet = this.o.buildEvalNetwork?.() ?? Network.fromFile(this.net.file, { width: I.w, height: I.h, channels: I.c });
      if (this.evalNet.layers.length !== this.net.layers.length) throw new TrainError('config', 'the evaluation network does not have the training network\'s layers');
    }
    const en = this.evalNet;
    en.release();
    en.layers.forEach((l, i) => {
      const src = this.net.layers[i];
      if (!src.data) return;
      const d: Record<string, Float32Array> = { ...src.data };
      for (const p of src.params) {
        const v = ema?.get(`${src.index}.${p.name}`);
        if (v) d[p.name] = v;
      }
      l.data = d;
    });
    en.prepare(this.o.gpu, 'infer', { precision: 'f32' }); // training, its validation included, is float32
    return await this.o.evaluate!({ gpu: this.o.gpu, network: en, iteration, epoch });
  }

  /** Frees the evaluation network. */
  dispose(): void {
    this.evalNet?.dispose();
  }
}
