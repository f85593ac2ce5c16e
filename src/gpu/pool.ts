/**
 * Buffer pool by size class. Tensors take storage buffers from here and give them back on dispose, so a
 * training loop reuses the same few buffers every step instead of creating and destroying hundreds.
 *
 * Reuse is safe without waiting for the GPU: WebGPU executes submitted work in queue order, so a buffer
 * released after a dispatch was recorded and re-acquired by a later dispatch is only overwritten after the
 * earlier one ran. (Uploads go through the command encoder for the same reason; see Gpu.upload.)
 *
 * Destroying is not: a buffer that recorded but not yet submitted commands use must outlive the submit
 * ("used in submit while destroyed"). So buffers the pool lets go of (over its cache limit, or trimmed) wait in
 * `doomed` until the owner calls collect() right after a submit, or when nothing is recorded (Gpu.flush).
 */
import { BufferUsage } from './usage.js';

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Size classes: 256 B minimum, then powers of two and their 1.5 multiples (at most 33% slack). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.ceil(Math.log2(b));
  const mid = (p / 4) * 3;
  return b <= mid && mid % 4 === 0 ? mid : p;
}

/**
 * The buffers a recording (Gpu.record) took from the pool: every one it acquired, and the ones it let go of
 * again (free, for its own later acquisitions only). Owned by the recording until it hands them back.
 */
export interface HeldBuffers {
  owned: Set<GPUBuffer>;
  free: Map<number, GPUBuffer[]>;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private holding: HeldBuffers | null = null;
  /** Bytes that recordings own and do not use at the moment (not in the free lists, not handed out). */
  reserved = 0;
  /** Buffers let go of, destroyed by collect() (see the file comment). */
  private doomed: GPUBuffer[] = [];
  /** Bytes currently handed out. */
  inUse = 0;
  /** Bytes held in the free lists. */
  cached = 0;
  /** Highest inUse seen (reset with resetPeak). */
  peak = 0;
  /** Highest inUse + cached seen: the bytes the pool really had allocated on the device (reset with resetPeak). */
  peakHeld = 0;
  created = 0;

  /** maxCached: bytes of free buffers kept for reuse (mutable: the tests lower it). */
  constructor(private device: GPUDevice, public maxCached = 512 * 1024 * 1024) {}

  acquire(bytes: number, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    let buf = this.holding?.free.get(size)?.pop();
    if (buf) this.reserved -= size;
    else {
      buf = this.free.get(size)?.pop();
      if (buf) this.cached -= size;
      else {
        buf = this.device.createBuffer({ size, usage: STORAGE_USAGE, label: label ?? `pool${size}` });
        this.created++;
      }
    }
    this.holding?.owned.add(buf);
    this.inUse += size;
    if (this.inUse > this.peak) this.peak = this.inUse;
    if (this.inUse + this.cached + this.reserved > this.peakHeld) this.peakHeld = this.inUse + this.cached + this.reserved;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    this.inUse -= size;
    if (this.holding?.owned.has(buf)) {
      let list = this.holding.free.get(size);
      if (!list) this.holding.free.set(size, (list = []));
      list.push(buf);
      this.reserved += size;
      return;
    }
    if (this.cached + size > this.maxCached) {
      this.doomed.push(buf);
      return;
    }
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.cached += size;
  }

  /**
   * From now on every buffer acquired is held (HeldBuffers): released, it stays free for the acquisitions
   * that follow until endHold, and no one else gets it. Gpu.record uses it, so that the buffers its commands
   * use are still theirs when it replays them.
   */
  beginHold(): void {
    if (this.holding) throw new Error('buffer pool: already holding buffers for a recording');
    this.holding = { owned: new Set(), free: new Map() };
  }

  /** Ends holding: the held buffers, in use or free, stay the recording's (giveBack returns them). */
  endHold(): HeldBuffers {
    const h = this.holding;
    if (!h) throw new Error('buffer pool: not holding');
    this.holding = null;
    return h;
  }

  /** Takes back the free buffers of a recording (its in-use ones come back as their tensors are disposed). */
  giveBack(h: HeldBuffers): void {
    for (const list of h.free.values()) {
      for (const b of list.splice(0)) {
        this.reserved -= b.size;
        this.inUse += b.size; // release() subtracts it again
        h.owned.delete(b);
        this.release(b);
      }
    }
  }

  /** Lets go of every cached (free) buffer: destroyed at the next collect(). */
  trim(): void {
    for (const list of this.free.values()) this.doomed.push(...list);
    this.free.clear();
    this.cached = 0;
  }

  /** Destroys the buffers let go of; call when no recorded, unsubmitted command can use them. */
  collect(): void {
    for (const b of this.doomed.splice(0)) b.destroy();
  }

  resetPeak(): void {
    this.peak = this.inUse;
    this.peakHeld = this.inUse + this.cached;
  }
}
