/**
 * Bind groups reused across dispatches (Gpu.dispatch).
 *
 * Dawn's createBindGroup costs ~16 us of main-thread time per call through the node binding (lavapipe,
 * measured), a third of what the host spends on a dispatch. A training step or a forward repeats the same
 * dispatches with the same buffers in the same uniform slots every time: the uniform ring restarts at slot 0
 * after each submit and the buffer pool hands the same buffers back in the same order. So after the first step
 * nearly every bind group is found here. On demo.cfg's training step (117 dispatches) every one was, after
 * warm-up (docs/performance.md, session 13).
 *
 * Key: the kernel, its uniform slot, and each binding's buffer (by identity), offset and size. A buffer is never
 * bound again once destroyed and a new buffer gets a new identity, so an entry that refers to a destroyed
 * buffer is never returned. But a cached bind group keeps its buffers alive, so it must not outlive them by
 * much: a tensor a caller forgets to dispose would otherwise never be freed by the garbage collector. The Gpu
 * passes the pool's count of created buffers as the `epoch`, and the cache starts over whenever it changes: in a
 * steady loop the pool creates nothing (demo.cfg's training: nothing after the first step), and a loop that
 * leaks tensors makes the pool create buffers, so its bind groups do not pile up. `cap` bounds the rest: past
 * it everything is dropped and rebuilt as needed.
 */

/** A binding's resource as the bind group entry names it (GPUBufferBinding, with the buffer required). */
export interface BufferResource {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export class BindGroupCache {
  private ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private groups = new WeakMap<GPUBindGroupLayout, Map<string, GPUBindGroup>>();
  private count = 0;
  /** The last epoch() value. */
  private seen = -1;
  /** Lookups that found a bind group, and those that created one (tests, benches). */
  hits = 0;
  misses = 0;

  constructor(readonly cap = 4096) {}

  /** Starts over when `n` differs from the value of the previous call (see the file comment). */
  epoch(n: number): void {
    if (n === this.seen) return;
    this.seen = n;
    this.clear();
  }

  /**
   * The bind group of `layout` that binds uniform slot `slot` at binding 0 and `bindings` ([binding number,
   * resource]) after it; made by `create` when not cached.
   */
  get(layout: GPUBindGroupLayout, slot: number, bindings: readonly (readonly [number, BufferResource])[], create: () => GPUBindGroup): GPUBindGroup {
    let key = String(slot);
    for (const [i, r] of bindings) key += `|${i}:${this.id(r.buffer)}:${r.offset ?? 0}:${r.size ?? -1}`;
    const found = this.groups.get(layout)?.get(key);
    if (found) {
      this.hits++;
      return found;
    }
    this.misses++;
    const bg = create();
    if (this.count >= this.cap) this.clear();
    let map = this.groups.get(layout);
    if (!map) this.groups.set(layout, (map = new Map()));
    map.set(key, bg);
    this.count++;
    return bg;
  }

  /** Drops every cached bind group. */
  clear(): void {
    this.groups = new WeakMap();
    this.count = 0;
  }

  private id(b: GPUBuffer): number {
    let v = this.ids.get(b);
    if (v === undefined) this.ids.set(b, (v = this.nextId++));
    return v;
  }
}
