/**
 * Learning-rate schedules.
 *
 * Darknet (AlexeyAB src/network.c get_current_rate, options from parser.c parse_net_options). `k` is
 * Darknet's batch_num = seen / (batch·subdivisions): during update number k (1-based) the rate is that of
 * k, because `seen` is advanced before the update. With lr = learning_rate:
 *
 *   k < burn_in          lr · (k / burn_in)^power                (any policy; power default 4)
 *   constant             lr
 *   step                 lr · scale^floor(k / step)
 *   steps                lr · Π scales[i] over steps[i] <= k      (steps[i] > k stops the product)
 *   exp                  lr · gamma^k
 *   poly                 lr · (1 − k / max_batches)^power
 *   sigmoid              lr / (1 + exp(gamma · (k − step)))
 *   random               lr · u^power, u uniform in [0, 1) (seeded here; Darknet uses rand())
 *   sgdr                 cycles: start s = 0, size c = sgdr_cycle (default max_batches); while s + c < k:
 *                        s += c, c *= sgdr_mult (default 2); then
 *                        lr_min + ½ (lr − lr_min) (1 + cos((k − s) · 3.14159265 / c))   (lr_min default 1e-5)
 *   cosine (ours)        lr_min + ½ (lr − lr_min) (1 + cos(π · min(k, max_batches) / max_batches)):
 *                        one cosine cycle over the whole run (= sgdr with sgdr_cycle = max_batches)
 *
 * Darknet computes in float (the ratio (float)k / burn_in, the returned rate); these functions compute in
 * float64 and the optimizer rounds the rate to float32 when it uploads it.
 *
 * Ultralytics (yolov5 v7.0 train.py), per epoch e (0-based) of E, nb batches per epoch:
 *   lf(e) = (1 − e/E)(1 − lrf) + lrf                     (linear)
 *   lf(e) = ((1 − cos(e π / E)) / 2)(lrf − 1) + 1        (cos_lr: one_cycle(1, lrf, E))
 *   lr = lr0 · lf(e); warm-up over nw = max(round(warmup_epochs · nb), 100) batches: at integrated batch
 *   ni = i + nb·e <= nw the bias group's lr goes linearly from warmup_bias_lr to lr0·lf(e), the other
 *   groups' from 0, momentum from warmup_momentum to momentum, and accumulate = max(1,
 *   round(interp(ni, [0, nw], [1, nbs / batch_size]))).
 */
import { Rng } from '../util/rng.js';
import type { NetConfig } from '../darknet/layer.js';

/** Where the trainer is when it asks for the rate of the update it is about to apply. */
export interface SchedulePosition {
  /** The update being applied, 1-based (Darknet's batch_num during that update). */
  iteration: number;
  /** Epoch, 0-based (completed epochs). */
  epoch: number;
  /** Loader batch index inside the epoch, 0-based (the last batch of this update). */
  batchInEpoch: number;
}

/** Hyperparameters for one update. `biasLr` / `momentum` are set only where the schedule changes them. */
export interface ScheduleValues {
  lr: number;
  /** Rate of the bias group when it differs from `lr` (Ultralytics warm-up). */
  biasLr?: number;
  /** SGD momentum for this update (Ultralytics warm-up); absent: the optimizer's own. */
  momentum?: number;
  /** Batches to accumulate per update as Ultralytics would (informational; the trainer uses subdivisions). */
  accumulate?: number;
}

export interface LrSchedule {
  readonly kind: string;
  at(pos: SchedulePosition): ScheduleValues;
  /** JSON-able state (only what is not a function of the position: RNG state for `random`). */
  state(): Record<string, unknown>;
  restore(s: Record<string, unknown>): void;
  describe(): string;
}

// ------------------------------------------------------------------------------------------ Darknet

export const DARKNET_POLICIES = ['constant', 'step', 'steps', 'exp', 'poly', 'sigmoid', 'random', 'sgdr', 'cosine'] as const;
export type DarknetPolicy = (typeof DARKNET_POLICIES)[number];

export interface DarknetScheduleOptions {
  policy: DarknetPolicy;
  /** learning_rate (Darknet default 0.001) */
  learningRate: number;
  /** burn_in (default 0) */
  burnIn?: number;
  /** power (default 4: burn-in, poly, random) */
  power?: number;
  /** max_batches (poly, cosine, sgdr's default cycle) */
  maxBatches?: number;
  /** step (step, sigmoid; default 1) */
  step?: number;
  /** scale (step; default 1) */
  scale?: number;
  /** steps / scales (steps; sgdr parses them too but its rate ignores them) */
  steps?: number[];
  scales?: number[];
  /** gamma (exp, sigmoid; default 1) */
  gamma?: number;
  /** learning_rate_min (sgdr, cosine; default 1e-5) */
  learningRateMin?: number;
  /** sgdr_cycle (default max_batches), sgdr_mult (default 2) */
  sgdrCycle?: number;
  sgdrMult?: number;
  /** seed of the `random` policy (default 1) */
  seed?: number;
}

/** The options with Darknet's defaults filled in, checked. */
export function resolveDarknetOptions(o: DarknetScheduleOptions): Required<DarknetScheduleOptions> {
  if (!DARKNET_POLICIES.includes(o.policy)) throw new Error(`unknown learning-rate policy '${o.policy}' (one of ${DARKNET_POLICIES.join(', ')})`);
  const maxBatches = o.maxBatches ?? 0;
  const r: Required<DarknetScheduleOptions> = {
    policy: o.policy,
    learningRate: o.learningRate,
    burnIn: o.burnIn ?? 0,
    power: o.power ?? 4,
    maxBatches,
    step: o.step ?? 1,
    scale: o.scale ?? 1,
    steps: o.steps ?? [],
    scales: o.scales ?? [],
    gamma: o.gamma ?? 1,
    learningRateMin: o.learningRateMin ?? 1e-5,
    sgdrCycle: o.sgdrCycle ?? maxBatches,
    sgdrMult: o.sgdrMult ?? 2,
    seed: o.seed ?? 1,
  };
  if (!(r.learningRate >= 0)) throw new Error(`learning_rate must be >= 0, got ${r.learningRate}`);
  if (!Number.isInteger(r.burnIn) || r.burnIn < 0) throw new Error(`burn_in must be an integer >= 0, got ${r.burnIn}`);
  if (r.policy === 'steps') {
    if (!r.steps.length) throw new Error('policy=steps needs steps= (and scales=) in [net] (Darknet: "STEPS policy must have steps and scales in cfg file")');
    if (!o.scales?.length) throw new Error('policy=steps needs scales= in [net] (Darknet: "STEPS policy must have steps and scales in cfg file")');
  }
  if (r.scales.length && r.scales.length < r.steps.length) throw new Error(`[net] has ${r.steps.length} steps but only ${r.scales.length} scales`);
  if (r.policy === 'steps' || r.policy === 'sgdr') {
    // Darknet reads one scale per step (1 when scales= is absent)
    r.scales = r.steps.map((_, i) => r.scales[i] ?? 1);
  }
  if ((r.policy === 'step' || r.policy === 'sigmoid') && !(Number.isInteger(r.step) && r.step >= 1)) throw new Error(`step must be an integer >= 1 for policy=${r.policy}, got ${r.step}`);
  if ((r.policy === 'poly' || r.policy === 'cosine') && !(r.maxBatches > 0)) throw new Error(`policy=${r.policy} needs max_batches > 0`);
  if (r.policy === 'sgdr') {
    if (!(Number.isInteger(r.sgdrCycle) && r.sgdrCycle >= 1)) throw new Error(`policy=sgdr needs sgdr_cycle (or max_batches) >= 1, got ${r.sgdrCycle}`);
    if (!(Number.isInteger(r.sgdrMult) && r.sgdrMult >= 1)) throw new Error(`sgdr_mult must be an integer >= 1, got ${r.sgdrMult}`);
  }
  return r;
}

/**
 * Darknet's rate at batch_num k (float64). `uniform` supplies u for the `random` policy.
 * `o` must come from resolveDarknetOptions.
 */
export function darknetRate(o: Required<DarknetScheduleOptions>, k: number, uniform: () => number = Math.random): number {
  const lr = o.learningRate;
  if (k < o.burnIn) return lr * (k / o.burnIn) ** o.power;
  switch (o.policy) {
    case 'constant':
      return lr;
    case 'step':
      return lr * o.scale ** Math.floor(k / o.step);
    case 'steps': {
      let rate = lr;
      for (let i = 0; i < o.steps.length; i++) {
        if (o.steps[i] > k) return rate;
        rate *= o.scales[i];
      }
      return rate;
    }
    case 'exp':
      return lr * o.gamma ** k;
    case 'poly':
      return lr * (1 - k / o.maxBatches) ** o.power;
    case 'sigmoid':
      return lr * (1 / (1 + Math.exp(o.gamma * (k - o.step))));
    case 'random':
      return lr * uniform() ** o.power;
    case 'sgdr': {
      let start = 0;
      let size = o.sgdrCycle;
      while (start + size < k) {
        start += size;
        size *= o.sgdrMult;
      }
      // Darknet's constant, not Math.PI
      return o.learningRateMin + 0.5 * (lr - o.learningRateMin) * (1 + Math.cos(((k - start) * 3.14159265) / size));
    }
    case 'cosine': {
      const t = Math.min(k, o.maxBatches) / o.maxBatches;
      return o.learningRateMin + 0.5 * (lr - o.learningRateMin) * (1 + Math.cos(Math.PI * t));
    }
  }
}

/** A Darknet policy as an LrSchedule (position: the iteration only). */
export class DarknetSchedule implements LrSchedule {
  readonly kind = 'darknet';
  readonly options: Required<DarknetScheduleOptions>;
  private rng: Rng;

  constructor(opts: DarknetScheduleOptions) {
    this.options = resolveDarknetOptions(opts);
    this.rng = new Rng(this.options.seed);
  }

  rate(iteration: number): number {
    return darknetRate(this.options, iteration, () => this.rng.next());
  }

  at(pos: SchedulePosition): ScheduleValues {
    return { lr: this.rate(pos.iteration) };
  }

  state(): Record<string, unknown> {
    return { kind: this.kind, policy: this.options.policy, rng: this.rng.state };
  }

  restore(s: Record<string, unknown>): void {
    if (s.kind !== this.kind || s.policy !== this.options.policy) throw new Error(`schedule state of ${String(s.kind)}/${String(s.policy)} does not fit darknet/${this.options.policy}`);
    if (typeof s.rng === 'number') this.rng.state = s.rng;
  }

  describe(): string {
    const o = this.options;
    const parts = [`policy=${o.policy}`, `learning_rate=${o.learningRate}`];
    if (o.burnIn) parts.push(`burn_in=${o.burnIn}`, `power=${o.power}`);
    if (o.policy === 'steps') parts.push(`steps=${o.steps.join(',')}`, `scales=${o.scales.join(',')}`);
    if (o.policy === 'step') parts.push(`step=${o.step}`, `scale=${o.scale}`);
    if (o.policy === 'exp') parts.push(`gamma=${o.gamma}`);
    if (o.policy === 'sigmoid') parts.push(`gamma=${o.gamma}`, `step=${o.step}`);
    if (o.policy === 'poly' || o.policy === 'random') parts.push(`power=${o.power}`);
    if (o.policy === 'sgdr') parts.push(`sgdr_cycle=${o.sgdrCycle}`, `sgdr_mult=${o.sgdrMult}`, `learning_rate_min=${o.learningRateMin}`);
    if (o.policy === 'cosine') parts.push(`learning_rate_min=${o.learningRateMin}`);
    if (o.maxBatches) parts.push(`max_batches=${o.maxBatches}`);
    return parts.join(' ');
  }
}

/** Darknet's training hyperparameters of a [net] section (defaults as parse_net_options). */
export interface DarknetHyper {
  schedule: DarknetScheduleOptions;
  momentum: number;
  decay: number;
  /** adam=1: Adam with B1, B2, eps (Darknet defaults .9, .999, .000001) */
  adam: { beta1: number; beta2: number; eps: number } | null;
  maxBatches: number;
  batch: number;
  subdivisions: number;
}

/** Reads the [net] training keys (NetConfig.train) with Darknet's defaults. */
export function darknetHyper(net: NetConfig): DarknetHyper {
  const t = net.train;
  const num = (k: string, d: number): number => (typeof t[k] === 'number' ? (t[k] as number) : d);
  const list = (k: string): number[] | undefined => (Array.isArray(t[k]) ? (t[k] as number[]) : typeof t[k] === 'number' ? [t[k] as number] : undefined);
  const policy = (typeof t.policy === 'string' ? t.policy : 'constant') as DarknetPolicy;
  const maxBatches = num('max_batches', 0);
  const schedule: DarknetScheduleOptions = {
    policy,
    learningRate: num('learning_rate', 0.001),
    burnIn: num('burn_in', 0),
    power: num('power', 4),
    maxBatches,
    step: num('step', 1),
    scale: num('scale', 1),
    steps: list('steps'),
    scales: list('scales'),
    gamma: num('gamma', 1),
    learningRateMin: num('learning_rate_min', 0.00001),
    sgdrCycle: num('sgdr_cycle', maxBatches),
    sgdrMult: num('sgdr_mult', 2),
  };
  return {
    schedule,
    momentum: num('momentum', 0.9),
    decay: num('decay', 0.0001),
    adam: num('adam', 0) ? { beta1: num('B1', 0.9), beta2: num('B2', 0.999), eps: num('eps', 0.000001) } : null,
    maxBatches,
    batch: net.batch,
    subdivisions: net.subdivisions,
  };
}

// ------------------------------------------------------------------------------------------ Ultralytics

export interface UltralyticsScheduleOptions {
  /** initial learning rate (hyp lr0, default 0.01) */
  lr0?: number;
  /** final lr fraction (hyp lrf, default 0.01) */
  lrf?: number;
  epochs: number;
  /** loader batches per epoch (nb) */
  batchesPerEpoch: number;
  /** cosine instead of linear (train.py --cos-lr) */
  cosLr?: boolean;
  /** hyp warmup_epochs (default 3), warmup_momentum (0.8), warmup_bias_lr (0.1), momentum (0.937) */
  warmupEpochs?: number;
  warmupMomentum?: number;
  warmupBiasLr?: number;
  momentum?: number;
  /** nominal batch size (64) and the loader batch size, for `accumulate` */
  nbs?: number;
  batchSize?: number;
  /** warm-up changes momentum (SGD); yolov5 leaves Adam's betas alone */
  warmupMomentumEnabled?: boolean;
}

/** numpy.interp on two points, clamped. */
function interp(x: number, x0: number, x1: number, y0: number, y1: number): number {
  if (x <= x0) return y0;
  if (x >= x1) return y1;
  return y0 + ((x - x0) * (y1 - y0)) / (x1 - x0);
}

/** Python's round() (half to even) for the accumulate count. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export class UltralyticsSchedule implements LrSchedule {
  readonly kind = 'ultralytics';
  readonly o: Required<UltralyticsScheduleOptions>;

  constructor(opts: UltralyticsScheduleOptions) {
    this.o = {
      lr0: opts.lr0 ?? 0.01,
      lrf: opts.lrf ?? 0.01,
      epochs: opts.epochs,
      batchesPerEpoch: opts.batchesPerEpoch,
      cosLr: opts.cosLr ?? false,
      warmupEpochs: opts.warmupEpochs ?? 3,
      warmupMomentum: opts.warmupMomentum ?? 0.8,
      warmupBiasLr: opts.warmupBiasLr ?? 0.1,
      momentum: opts.momentum ?? 0.937,
      nbs: opts.nbs ?? 64,
      batchSize: opts.batchSize ?? 64,
      warmupMomentumEnabled: opts.warmupMomentumEnabled ?? true,
    };
    if (!(Number.isInteger(this.o.epochs) && this.o.epochs >= 1)) throw new Error(`epochs must be an integer >= 1, got ${this.o.epochs}`);
    if (!(Number.isInteger(this.o.batchesPerEpoch) && this.o.batchesPerEpoch >= 1)) throw new Error(`batches per epoch must be an integer >= 1, got ${this.o.batchesPerEpoch}`);
  }

  /** The lambda lf(epoch). */
  lf(epoch: number): number {
    const { epochs, lrf } = this.o;
    if (this.o.cosLr) return ((1 - Math.cos((epoch * Math.PI) / epochs)) / 2) * (lrf - 1) + 1;
    return (1 - epoch / epochs) * (1.0 - lrf) + lrf;
  }

  /** Warm-up length in batches: max(round(warmup_epochs · nb), 100). */
  get warmupBatches(): number {
    return Math.max(roundHalfEven(this.o.warmupEpochs * this.o.batchesPerEpoch), 100);
  }

  at(pos: SchedulePosition): ScheduleValues {
    const o = this.o;
    const ni = pos.batchInEpoch + o.batchesPerEpoch * pos.epoch;
    const nw = this.warmupBatches;
    const base = o.lr0 * this.lf(pos.epoch);
    const accFinal = Math.max(roundHalfEven(o.nbs / o.batchSize), 1);
    if (ni <= nw) {
      const v: ScheduleValues = {
        lr: interp(ni, 0, nw, 0, base),
        biasLr: interp(ni, 0, nw, o.warmupBiasLr, base),
        accumulate: Math.max(1, roundHalfEven(interp(ni, 0, nw, 1, o.nbs / o.batchSize))),
      };
      if (o.warmupMomentumEnabled) v.momentum = interp(ni, 0, nw, o.warmupMomentum, o.momentum);
      return v;
    }
    const v: ScheduleValues = { lr: base, biasLr: base, accumulate: accFinal };
    if (o.warmupMomentumEnabled) v.momentum = o.momentum;
    return v;
  }

  state(): Record<string, unknown> {
    return { kind: this.kind };
  }

  restore(s: Record<string, unknown>): void {
    if (s.kind !== this.kind) throw new Error(`schedule state of ${String(s.kind)} does not fit ultralytics`);
  }

  describe(): string {
    const o = this.o;
    return `ultralytics ${o.cosLr ? 'cosine' : 'linear'} lr0=${o.lr0} lrf=${o.lrf} epochs=${o.epochs} warmup=${this.warmupBatches} batches (bias lr ${o.warmupBiasLr}, momentum ${o.warmupMomentum}->${o.momentum})`;
  }
}

/** A constant rate (tests, fine-tuning). */
export class ConstantSchedule implements LrSchedule {
  readonly kind = 'constant';
  constructor(readonly lr: number) {}
  at(): ScheduleValues {
    return { lr: this.lr };
  }
  state(): Record<string, unknown> {
    return { kind: this.kind };
  }
  restore(): void {}
  describe(): string {
    return `constant lr=${this.lr}`;
  }
}

/**
 * The cfg's schedule stretched to a run of `maxBatches` updates (`train --max-batches` or `--epochs` overriding
 * the cfg's max_batches): max_batches (poly, cosine, sgdr), steps (steps policy) and an sgdr_cycle left at its
 * default follow the new length in proportion; burn_in and the rates stay. Darknet has no such override (it
 * trains max_batches from the cfg); without stretching, `--max-batches 2300` on a cfg with steps at 80 %/90 %
 * of 1150 would spend half the run at a hundredth of the rate. Returns the schedule and a note of the change
 * (null when nothing changed).
 */
export function stretchDarknetSchedule(s: DarknetScheduleOptions, maxBatches: number): { schedule: DarknetScheduleOptions; note: string | null } {
  const from = s.maxBatches ?? 0;
  if (!(maxBatches > 0) || from <= 0 || maxBatches === from) return { schedule: s, note: null };
  const k = maxBatches / from;
  const steps = s.steps?.map((v) => Math.max(1, Math.round(v * k)));
  const sgdrCycle = s.sgdrCycle === undefined || s.sgdrCycle === from ? maxBatches : s.sgdrCycle;
  const out: DarknetScheduleOptions = { ...s, maxBatches, steps, sgdrCycle };
  const parts = [`max_batches ${from} -> ${maxBatches}`];
  if (s.policy === 'steps' && steps?.length) parts.push(`steps ${s.steps!.join(',')} -> ${steps.join(',')}`);
  return { schedule: out, note: `schedule stretched to ${maxBatches} updates: ${parts.join(', ')}` };
}
