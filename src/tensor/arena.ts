/**
 * Tensor arenas: many tensors as views of one GPU buffer (Tensor.rebind / Tensor.view), so that one dispatch
 * can update all of them. The trainer packs a network's parameters and batchnorm statistics
 * (`packTensors`); the optimizer (src/train/optim.ts) then updates every packed parameter in one dispatch
 * over mirrors of the same layout (gradients, momentum / Adam moments), and the EMA (src/train/ema.ts)
 * averages them in one more. Every other kernel binds a packed tensor as before, through its view's range.
 *
 * Layout: tensors in the order given, each at an offset aligned to the adapter's
 * minStorageBufferOffsetAlignment (and to 4 values, so vec4 kernels never straddle two tensors); the gaps
 * are zero. An arena never exceeds maxStorageBufferBindingSize (packTensors starts another when it would).
 * A chunk table (`chunkTable`) splits a set of its tensors into runs of at most CHUNK values, one workgroup
 * each, with the index of the tensor's per-tensor constants.
 *
 * One rule comes with it: WebGPU forbids a buffer bound writable and read-only in the same dispatch, so no
 * kernel may write one view of an arena while reading another view of the same arena. Parameters are only
 * read by the layers' kernels; what writes them (the flat updates, the running-statistics update) reads
 * other buffers.
 */
import type { Gpu } from '../gpu/device.js';
import { Tensor, type ViewStorage } from './tensor.js';
import { Tape } from './tape.js';
import { fill } from './ops/elementwise.js';

/** Values per workgroup of the flat kernels (256 invocations x vec4). */
export const CHUNK = 1024;

export interface ArenaSlot {
  /** Offset in values (a multiple of `TensorArena.align`). */
  offset: number;
  /** Values of the tensor. */
  size: number;
}

/** Offset alignment in values: the adapter's minimum storage-binding offset, at least one vec4. */
export function arenaAlign(gpu: Gpu): number {
  return Math.max(4, Math.ceil((gpu.limits.minStorageBufferOffsetAlignment ?? 256) / 4));
}

export class TensorArena implements ViewStorage {
  /** Slots by the tensor of the packed layout they belong to (for a mirror: the source arena's tensors). */
  readonly slots: ReadonlyMap<Tensor, ArenaSlot>;
  /** Values in the arena, padding included (a multiple of 4). */
  readonly length: number;
  /** The whole arena as one tensor (what the flat kernels bind). */
  readonly all: Tensor;
  private refs = 0;
  private buf: GPUBuffer | null;

  private constructor(readonly gpu: Gpu, slots: Map<Tensor, ArenaSlot>, length: number, readonly name: string) {
    this.slots = slots;
    this.length = length;
    this.buf = gpu.pool.acquire(length * 4, name);
    this.all = this.view([length], 0, length, `${name}:all`, false);
    Tape.untracked(() => fill(this.all, 0));
  }

  /** The layout of `tensors` packed in order: their slots and the total length in values. */
  static layout(gpu: Gpu, tensors: readonly Tensor[]): { slots: Map<Tensor, ArenaSlot>; length: number } {
    const align = arenaAlign(gpu);
    const slots = new Map<Tensor, ArenaSlot>();
    let at = 0;
    for (const t of tensors) {
      if (slots.has(t)) throw new Error(`arena: tensor ${t.describe()} listed twice`);
      slots.set(t, { offset: at, size: t.size });
      at += Math.ceil(Math.max(t.size, 1) / align) * align;
    }
    return { slots, length: Math.max(at, 4) };
  }

  /**
   * Moves `tensors` into a new arena (their values copied in stream order, their pooled buffers released):
   * afterwards each is a view of the arena. The arena lives until the last of them is disposed.
   */
  static pack(gpu: Gpu, tensors: readonly Tensor[], name = 'arena'): TensorArena {
    for (const t of tensors) if (t.isView) throw new Error(`arena: tensor ${t.describe()} is already a view`);
    const { slots, length } = TensorArena.layout(gpu, tensors);
    const arena = new TensorArena(gpu, slots, length, name);
    for (const [t, s] of slots) {
      arena.refs++;
      t.rebind(arena.buffer, s.offset * 4, arena.bindBytes(s), arena, true);
    }
    return arena;
  }

  /** A new zeroed arena with this one's layout (gradients, optimizer slots, EMA): views through viewOf. */
  mirror(name: string): TensorArena {
    return new TensorArena(this.gpu, new Map(this.slots), this.length, name);
  }

  get buffer(): GPUBuffer {
    if (!this.buf) throw new Error(`arena ${this.name} was used after its last tensor was disposed`);
    return this.buf;
  }

  /** A view of the slot of `t` (a tensor of this layout) in this arena, named `name`. */
  viewOf(t: Tensor, name = ''): Tensor {
    const s = this.slots.get(t);
    if (!s) throw new Error(`arena ${this.name}: tensor ${t.describe()} has no slot`);
    return this.view(t.shape, s.offset, s.size, name);
  }

  /** The arena a tensor is packed into, or null. */
  static of(t: Tensor): TensorArena | null {
    const s = t.storage;
    return s instanceof TensorArena ? s : null;
  }

  /** Holds the arena alive without a view (released by unref). */
  ref(): void {
    this.refs++;
  }

  unref(): void {
    if (--this.refs > 0 || !this.buf) return;
    this.gpu.pool.release(this.buf);
    this.buf = null;
  }

  /**
   * The workgroup table of a flat kernel over the slots of `tensors` (each in this layout): per chunk a vec4u
   * (first value, end value, index of the tensor in `tensors`, 0), chunks of at most CHUNK values, each
   * slot's end rounded up to whole vec4s (the padding up to it is zero and stays zero).
   */
  chunkTable(tensors: readonly Tensor[]): Uint32Array {
    const rows: number[] = [];
    tensors.forEach((t, k) => {
      const s = this.slots.get(t);
      if (!s) throw new Error(`arena ${this.name}: tensor ${t.describe()} has no slot`);
      const end = s.offset + Math.ceil(s.size / 4) * 4;
      for (let a = s.offset; a < end; a += CHUNK) rows.push(a, Math.min(a + CHUNK, end), k, 0);
    });
    return Uint32Array.from(rows);
  }

  /** Bytes a view of slot s binds: the slot up to the next aligned offset (whole vec4s). */
  private bindBytes(s: ArenaSlot): number {
    return Math.ceil(Math.max(s.size, 1) / 4) * 16;
  }

  /** A view; `counted` views hold the arena alive (the arena's own `all` does not). */
  private view(shape: readonly number[], offset: number, size: number, name: string, counted = true): Tensor {
    if (counted) this.refs++;
    return Tensor.view(this.gpu, shape, this.buffer, offset * 4, this.bindBytes({ offset, size }), this, name);
  }
}

/**
 * Packs tensors (in order) into as few arenas as the adapter's maxStorageBufferBindingSize allows; tensors
 * that are already views are left alone. Returns the arenas.
 */
export function packTensors(gpu: Gpu, tensors: readonly Tensor[], name = 'params'): TensorArena[] {
  const maxValues = Math.floor((gpu.limits.maxStorageBufferBindingSize ?? 2 ** 27) / 4);
  const align = arenaAlign(gpu);
  const arenas: TensorArena[] = [];
  let group: Tensor[] = [];
  let len = 0;
  const flush = () => {
    if (group.length) arenas.push(TensorArena.pack(gpu, group, `${name}${arenas.length ? `#${arenas.length}` : ''}`));
    group = [];
    len = 0;
  };
  for (const t of new Set(tensors)) {
    if (t.isView) continue;
    const n = Math.ceil(Math.max(t.size, 1) / align) * align;
    if (len + n > maxValues) flush();
    group.push(t);
    len += n;
  }
  flush();
  return arenas;
}
