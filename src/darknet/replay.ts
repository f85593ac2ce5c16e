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
    if (this.disposed) throw new Error('ForwardReplay: run() after dispose()');
    if (this.input.disposed) throw new Error(`ForwardReplay: its input ${this.input.describe()} was disposed`);
    const why = this.stale();
    if (why) throw new Error(`ForwardReplay: ${why}`);
    this.gpu.replay(this.recording);
    return this.outputs;
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
