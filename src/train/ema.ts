/**
 * Exponential moving average of the model's parameters on the GPU (Ultralytics yolov5 v7.0
 * utils/torch_utils.py ModelEMA): after every optimizer update
 *
 *   updates += 1;  d = decay · (1 − exp(−updates / tau));  ema = d · ema + (1 − d) · x
 *
 * for every float tensor of the model's state (trainable parameters and the batchnorm running statistics),
 * one dispatch of kernels/ema.wgsl per tensor, or, for sources packed in an arena (src/tensor/arena.ts: the
 * trainer packs the network's), one dispatch per arena over a mirror of it (update_flat, the same f32
 * expression). The ramp makes the average follow the model closely early on (d ≈ 0.0005 at the first update
 * with the defaults decay 0.9999, tau 2000). The EMA starts as a copy of the model. Used for evaluation and
 * for the saved weights; its state (updates and tensors) goes into checkpoints.
 */
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { TensorArena } from '../tensor/arena.js';
import { clone } from '../tensor/ops/elementwise.js';

const WG = 256;

export interface EmaOptions {
  /** default 0.9999 */
  decay?: number;
  /** ramp time constant in updates (default 2000) */
  tau?: number;
  /** updates already applied (resume) */
  updates?: number;
}

export interface EmaSource {
  name: string;
  tensor: Tensor;
  /**
   * The tensor never changes during the run (a frozen parameter, src/train/freeze.ts): its average is not
   * updated and stays equal to it (d·x + (1 − d)·x need not round back to x in float32).
   */
  fixed?: boolean;
}

export interface EmaState {
  updates: number;
  decay: number;
  tau: number;
  tensors: { name: string; data: Float32Array }[];
}

/** ema = d·ema + (1 − d)·x in place (not recorded). */
export function emaUpdate(ema: Tensor, x: Tensor, d: number): void {
  if (ema.size !== x.size) throw new Error(`ema: ${ema.describe()} does not match ${x.describe()}`);
  const gpu = ema.gpu;
  gpu.dispatch({ file: 'ema', entry: 'update', constants: { WG } }, { n: ema.size, d, one_minus_d: 1 - d }, { 1: ema, 2: x }, gpu.grid(ema.size, WG));
}

/** ema = d·ema + (1 − d)·x over the chunks of a chunk table (n rows) of two arenas of one layout. */
export function emaUpdateFlat(ema: Tensor, x: Tensor, chunks: Tensor, n: number, d: number): void {
  const gpu = ema.gpu;
  gpu.dispatch({ file: 'ema', entry: 'update_flat' }, { n, d, one_minus_d: 1 - d }, { 1: ema, 2: x, 3: chunks }, gpu.grid(n, 1));
}

export class ModelEma {
  readonly decay: number;
  readonly tau: number;
  updates: number;
  readonly sources: readonly EmaSource[];
  /** The averaged tensors, in `sources` order. */
  readonly tensors: Tensor[];
  /** Sources packed in an arena: the EMA's mirror of it and the chunk table of its non-fixed sources. */
  private readonly flat: { arena: TensorArena; mirror: TensorArena; chunks: Tensor | null; n: number }[] = [];

  constructor(sources: readonly EmaSource[], opts: EmaOptions = {}) {
    this.decay = opts.decay ?? 0.9999;
    this.tau = opts.tau ?? 2000;
    this.updates = opts.updates ?? 0;
    if (!(this.decay >= 0 && this.decay < 1)) throw new Error(`ema: decay ${this.decay} must be in [0, 1)`);
    if (!(this.tau > 0)) throw new Error(`ema: tau ${this.tau} must be > 0`);
    const names = new Set<string>();
    for (const s of sources) {
      if (names.has(s.name)) throw new Error(`ema: source name '${s.name}' listed twice`);
      names.add(s.name);
    }
    this.sources = [...sources];
    this.tensors = Tape.untracked(() => {
      // a mirror per arena the sources are packed in, its views holding the averages; a clone otherwise
      const mirrors = new Map<TensorArena, TensorArena>();
      const out = this.sources.map((s) => {
        const arena = TensorArena.of(s.tensor);
        if (!arena) {
          const t = clone(s.tensor);
          t.name = `ema:${s.name}`;
          return t;
        }
        let m = mirrors.get(arena);
        if (!m) {
          m = arena.mirror(`${arena.name}.ema`);
          m.gpu.copy(arena.all, 0, m.all, 0, arena.length * 4);
          mirrors.set(arena, m);
        }
        return m.viewOf(s.tensor, `ema:${s.name}`);
      });
      for (const [arena, mirror] of mirrors) {
        const moving = this.sources.filter((s) => !s.fixed && TensorArena.of(s.tensor) === arena).map((s) => s.tensor);
        const rows = arena.chunkTable(moving);
        const chunks = rows.length ? new Tensor(arena.gpu, [rows.length], 'ema.chunks') : null;
        if (chunks) arena.gpu.upload(chunks, rows);
        this.flat.push({ arena, mirror, chunks, n: rows.length / 4 });
      }
      return out;
    });
  }

  /** The decay used at update number `updates` (1-based). */
  decayAt(updates: number): number {
    return this.decay * (1 - Math.exp(-updates / this.tau));
  }

  /** One EMA step from the sources' current values (call after each optimizer update). */
  update(): void {
    this.updates++;
    const d = this.decayAt(this.updates);
    Tape.untracked(() => {
      this.sources.forEach((s, i) => {
        if (!s.fixed && !TensorArena.of(s.tensor)) emaUpdate(this.tensors[i], s.tensor, d);
      });
      for (const f of this.flat) if (f.chunks) emaUpdateFlat(f.mirror.all, f.arena.all, f.chunks, f.n, d);
    });
  }

  /** The averaged values read back, by source name. */
  async read(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [i, s] of this.sources.entries()) out.set(s.name, await this.tensors[i].toArray());
    return out;
  }

  async exportState(): Promise<EmaState> {
    const tensors: EmaState['tensors'] = [];
    for (const [i, s] of this.sources.entries()) tensors.push({ name: s.name, data: await this.tensors[i].toArray() });
    return { updates: this.updates, decay: this.decay, tau: this.tau, tensors };
  }

  /** Restores exported state (same sources by name and size; decay and tau stay this object's). */
  importState(s: EmaState): void {
    if (s.tensors.length !== this.sources.length) throw new Error(`ema: state has ${s.tensors.length} tensors, this EMA ${this.sources.length}`);
    s.tensors.forEach((e, i) => {
      const src = this.sources[i];
      if (e.name !== src.name) throw new Error(`ema: state tensor ${i} is '${e.name}', expected '${src.name}'`);
      if (e.data.length !== src.tensor.size) throw new Error(`ema: state tensor '${e.name}' has ${e.data.length} values, expected ${src.tensor.size}`);
      this.tensors[i].write(e.data);
    });
    this.updates = s.updates;
  }

  /** Copies the sources' current values into the average (restart from the model). */
  reset(updates = 0): void {
    this.updates = updates;
    this.sources.forEach((s, i) => s.tensor.gpu.copy(s.tensor, 0, this.tensors[i], 0, s.tensor.bytes));
  }

  dispose(): void {
    for (const t of this.tensors) t.dispose();
    for (const f of this.flat) f.chunks?.dispose();
    this.flat.length = 0;
  }
}
