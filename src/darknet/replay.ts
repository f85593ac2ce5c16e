/**
 * A recorded inference forward (Network.recordForward): run() issues the forward's commands again, on the
 * same buffers, without the JavaScript that made them (the layers, the ops, the uniforms, the bind-group
 * lookups): the host's time per forward drops to the submit's. For repeated inference at one shape: a video,
 * a benchmark, a server's fixed batch. Measured on lavapipe: docs/performance.md, session 14.
 *
 * Write the next image into `input` (Tensor.write, or a copy into it) before run(); read `outputs` after
 * (they are overwritten by the next run). The replay owns the buffers of its intermediates and outputs (Gpu.record:
 * the pool gives them to no one else until dispose()); `outputs` are views of them, whose dispose() leaves the
 * replay whole. Valid while the network stays prepared as it was when recorded and `input` lives: run() refuses
 * once the parameters were prepared again or released (record again).
 */
import type { Gpu, Recording } from '../gpu/device.js';
import { clone } from '../tensor/ops/elementwise.js';
import { Tape } from '../tensor/tape.js';
import { Tensor, type ViewStorage } from '../tensor/tensor.js';

/** The views' storage: the replay's; a view's dispose() does not touch it. */
const REPLAY_STORAGE: ViewStorage = { unref() {} };

export class ForwardReplay {
  /** The forward's outputs by layer index (views of the replay's buffers; a layer returned twice is one view). */
  readonly outputs: ReadonlyMap<number, Tensor>;
  private disposed = false;

  /**
   * `results`: what the recorded forward returned (the replay disposes them with itself). `stale`: why the
   * recorded commands no longer fit what they bind (the network's parameters prepared again), or null.
   */
  constructor(private readonly gpu: Gpu, private readonly recording: Recording, private readonly results: Map<number, Tensor>, readonly input: Tensor, private readonly stale: () => string | null = () => null) {
    const views = new Map<Tensor, Tensor>();
    const outputs = new Map<number, Tensor>();
    for (const [k, t] of results) {
      let v = views.get(t);
      if (!v) {
        v = Tensor.view(gpu, t.shape, t.buffer, t.offset, t.bindSize ?? t.buffer.size - t.offset, REPLAY_STORAGE, t.name);
        views.set(t, v);
      }
      outputs.set(k, v);
    }
    this.outputs = outputs;
  }

  /** Dispatches the recorded forward: `outputs` then hold the network's outputs for what `input` holds now. */
  run(): ReadonlyMap<number, Tensor> {
    const why = this.unusable;
    if (why) throw new Error(`ForwardReplay: ${why}`);
    this.gpu.replay(this.recording);
    return this.outputs;
  }

  /** Why run() would refuse (disposed; the input disposed; the parameters prepared again or released), or null. */
  get unusable(): string | null {
    if (this.disposed) return 'run() after dispose()';
    if (this.input.disposed) return `its input ${this.input.describe()} was disposed`;
    return this.stale();
  }

  /** Bytes of the buffers the replay holds (its intermediates and outputs). */
  get bytes(): number {
    return this.recording.bytes;
  }

  /** Dispatches recorded by the forward (the ones run() issues). */
  get dispatches(): number {
    return this.recording.dispatches;
  }

  /** Hands the replay's buffers back to the pool. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of new Set(this.outputs.values())) v.dispose();
    // the input can be one of the results (an identity network): it stays the caller's
    for (const t of new Set(this.results.values())) if (t !== this.input) t.dispose();
    this.recording.release();
  }
}

/** What ReplayedForwards needs of a network (src/darknet/network.ts Network fits). */
export interface ReplayableNetwork {
  /** Changes with each prepare() that changes something; null when not prepared (Network.preparation). */
  readonly preparation: object | null;
  readonly layers: readonly { readonly carriesState: boolean }[];
  forward(x: Tensor, opts: { keep?: number[] }): Map<number, Tensor>;
  recordForward(x: Tensor, opts: { keep?: number[]; warmUp?: boolean }): ForwardReplay;
}

/**
 * The inference forwards of one network for a caller that asks again and again at a few batch sizes (detection:
 * Model.detect, the `detect`, `val` and `serve` commands, validation during training), replayed once a size
 * repeats. The first forward at a batch size (under the network's current preparation) runs as usual; the
 * second is recorded (Network.recordForward without its warm-up: the first forward was it); later ones copy
 * the input into the recording's and replay it. forward() returns the outputs of the `keep` layers in `keep`
 * order, each a tensor the caller owns and disposes (after a replay, copies of its outputs, which the next
 * replay overwrites), so that calls may overlap. Each recording holds the buffers of one forward at its batch
 * size: at most `max` recordings are kept, holding `maxBytes` together, the least recently used disposed
 * first; a batch size whose recording alone holds more is not recorded again (under this preparation).
 * Plain forwards only for a network whose layers carry state between forwards, under a tape, in a profile,
 * in debug mode (YOLO_WGSL_DEBUG) and in a dry run.
 */
export class ReplayedForwards {
  /** Batch size -> the preparation a plain forward at that size ran under. */
  private readonly seen = new Map<number, object>();
  /** Batch size -> its recording and the input it reads, the most recently used last. */
  private readonly replays = new Map<number, { replay: ForwardReplay; input: Tensor }>();
  /** Batch size -> the preparation under which its recording held more than maxBytes. */
  private readonly tooLarge = new Map<number, object>();

  /** Whether a layer carries state between forwards (the layers are the network's for good). */
  private readonly stateful: boolean;

  constructor(private readonly net: ReplayableNetwork, private readonly keep: readonly number[], private readonly max = 2, private readonly maxBytes = 512 * 1024 * 1024) {
    if (!(Number.isInteger(max) && max >= 0)) throw new RangeError(`ReplayedForwards: max must be a non-negative integer, got ${max}`);
    this.stateful = net.layers.some((l) => l.carriesState);
  }

  /** The `keep` layers' outputs for x [B, c, h, w], in `keep` order (the caller disposes them; x stays its own). */
  forward(x: Tensor): Tensor[] {
    const gpu = x.gpu;
    const B = x.shape[0];
    const prep = this.net.preparation;
    let entry = this.replays.get(B);
    if (entry?.replay.unusable) {
      this.drop(B);
      entry = undefined;
    }
    const replayable = this.max > 0 && prep !== null && gpu.canRecord && !Tape.current && !this.stateful;
    if (!replayable || (!entry && (this.seen.get(B) !== prep || this.tooLarge.get(B) === prep))) {
      const outs = this.net.forward(x, { keep: [...this.keep] });
      if (prep && !gpu.collectingKernels) this.seen.set(B, prep);
      return ownOutputs(outs, this.keep, x);
    }
    if (entry) {
      this.replays.delete(B);
      this.replays.set(B, entry);
      gpu.copy(x, 0, entry.input, 0, x.bytes);
      entry.replay.run();
    } else {
      const input = new Tensor(gpu, x.shape, 'replay.input');
      try {
        gpu.copy(x, 0, input, 0, x.bytes);
        entry = { replay: this.net.recordForward(input, { keep: [...this.keep], warmUp: false }), input };
      } catch (e) {
        input.dispose();
        throw e;
      }
      this.replays.set(B, entry);
    }
    const outs = entry.replay.outputs;
    const own = this.keep.map((j) => clone(outs.get(j)!));
    if (entry.replay.bytes > this.maxBytes) {
      this.tooLarge.set(B, prep);
      this.drop(B);
    }
    for (const b of this.replays.keys()) if (this.replays.size > this.max || this.heldBytes > this.maxBytes) this.drop(b);
    return own;
  }

  /** Bytes the recordings hold together. */
  get heldBytes(): number {
    let n = 0;
    for (const e of this.replays.values()) n += e.replay.bytes + e.input.buffer.size;
    return n;
  }

  /** Batch sizes with a recording, least recently used first (tests). */
  get recorded(): number[] {
    return [...this.replays.keys()];
  }

  /** Disposes the recordings (their buffers back to the pool); forward() records again when sizes repeat. */
  release(): void {
    for (const b of [...this.replays.keys()]) this.drop(b);
    this.seen.clear();
    this.tooLarge.clear();
  }

  private drop(b: number): void {
    const e = this.replays.get(b);
    if (!e) return;
    this.replays.delete(b);
    e.replay.dispose();
    e.input.dispose();
  }
}

/**
 * The `keep` outputs of a forward as tensors of the caller's own, in `keep` order: the others disposed, a layer
 * kept twice (or two layers sharing one tensor) copied, the input itself copied (it stays the caller's).
 */
function ownOutputs(outs: Map<number, Tensor>, keep: readonly number[], x: Tensor): Tensor[] {
  const kept = keep.map((j) => outs.get(j)!);
  for (const t of new Set(outs.values())) if (!kept.includes(t) && t !== x) t.dispose();
  return kept.map((t, i) => (t === x || kept.indexOf(t) !== i ? clone(t) : t));
}
