/**
 * Tensor: a float32 GPU buffer from the device's pool plus a shape. Layout is row-major (NCHW for images).
 * An inference tensor may instead store float16 (`dtype` 'f16', docs/kernels.md "f16 storage"): 2 bytes a
 * value, the buffer padded to 4 bytes; it is written from and read back as float32 numbers (src/tensor/f16.ts).
 * Tensors created while a Tape is recording are owned by that tape unless kept (see Tape.keep).
 * A tensor can also be a view: a range of a larger buffer (src/tensor/arena.ts packs parameters into one
 * buffer so the optimizer and the EMA update them all in one dispatch). A view binds as {buffer, offset, size}
 * (`offset`, `bindSize`), so kernels see only its range, and copies and reads add its offset.
 */
import type { Gpu } from '../gpu/device.js';
import { GpuError } from '../gpu/errors.js';
import type { TapeNode } from './tape.js';
import { Tape } from './tape.js';
import { fromHalf, toHalf } from './f16.js';

let nextId = 1;

/** Element storage: float32, or float16 for inference (the adapter needs the `shader-f16` feature). */
export type DType = 'f32' | 'f16';

/** Bytes `size` values of `dtype` take in a buffer (f16: padded to a multiple of 4, copies need it). */
export function storageBytes(size: number, dtype: DType): number {
  return dtype === 'f16' ? Math.ceil(size / 2) * 4 : size * 4;
}

/** The owner of a view's storage: told when a view lets go of it (src/tensor/arena.ts). */
export interface ViewStorage {
  unref(): void;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  /** Element storage ('f16' only for inference tensors; see DType). */
  readonly dtype: DType;
  private _buffer: GPUBuffer | null;
  /** Byte offset of the data in `buffer` and the bytes bound (views only; 0 / undefined: the whole buffer). */
  private _offset = 0;
  private _bindSize: number | undefined;
  private _storage: ViewStorage | null = null;
  /** Whether gradients flow to this tensor (parameters, and outputs of recorded ops that depend on them). */
  requiresGrad = false;
  /** Accumulated gradient of a leaf that requires grad (after Tape.backward). */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor, if any. */
  node: TapeNode | null = null;
  name: string;

  /** `view`: see Tensor.view (no pooled buffer, not adopted by a tape). `dtype`: the element storage. */
  constructor(readonly gpu: Gpu, shape: readonly number[], name = '', view?: { buffer: GPUBuffer; offset: number; bindSize: number; storage: ViewStorage }, dtype: DType = 'f32') {
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.name = name;
    this.dtype = dtype;
    if (dtype === 'f16' && !gpu.hasFeature('shader-f16')) {
      throw new GpuError('limits', name, `an f16 tensor ${name ? `'${name}' ` : ''}needs the adapter feature shader-f16, which ${gpu.info.summary} lacks`);
    }
    const bytes = Math.max(4, storageBytes(this.size, dtype));
    const maxBinding = gpu.limits.maxStorageBufferBindingSize ?? Infinity;
    const maxBuffer = gpu.limits.maxBufferSize ?? Infinity;
    if (bytes > maxBinding || bytes > maxBuffer) {
      const which = bytes > maxBinding ? `maxStorageBufferBindingSize ${maxBinding}` : `maxBufferSize ${maxBuffer}`;
      throw new GpuError('limits', name, `tensor ${name ? `'${name}' ` : ''}of shape ${shapeStr(shape)} needs ${bytes} bytes, above the adapter's ${which} (${gpu.info.kind}); use a smaller batch or input size`);
    }
    if (view) {
      if (view.bindSize < this.bytes) throw new Error(`tensor ${this.describe()}: a view of ${view.bindSize} bytes cannot hold ${this.bytes}`);
      this._buffer = view.buffer;
      this._offset = view.offset;
      this._bindSize = view.bindSize;
      this._storage = view.storage;
      return;
    }
    this._buffer = gpu.pool.acquire(bytes, name || undefined);
    Tape.current?.adopt(this);
  }

  get buffer(): GPUBuffer {
    if (!this._buffer) throw new Error(`tensor ${this.describe()} was used after dispose()`);
    return this._buffer;
  }

  get disposed(): boolean {
    return this._buffer === null;
  }

  /** Byte offset of the values in `buffer` (non-zero only for a view). */
  get offset(): number {
    return this._offset;
  }

  /** Bytes a binding of this tensor covers: undefined binds the whole buffer (a pooled tensor). */
  get bindSize(): number | undefined {
    return this._bindSize;
  }

  /** Whether this tensor is a view into storage it does not own (an arena). */
  get isView(): boolean {
    return this._storage !== null;
  }

  /** The owner of a view's storage (src/tensor/arena.ts TensorArena), or null. */
  get storage(): ViewStorage | null {
    return this._storage;
  }

  /**
   * Makes this tensor a view of `buffer` at `offset` (bytes; aligned to the adapter's
   * minStorageBufferOffsetAlignment) binding `bindSize` bytes, owned by `storage`. With `copy`, the current
   * values are copied there first (in stream order). The tensor's own pooled buffer goes back to the pool;
   * its identity (id, name, grad, requiresGrad) stays, so whoever holds it sees the new storage.
   */
  rebind(buffer: GPUBuffer, offset: number, bindSize: number, storage: ViewStorage, copy: boolean): void {
    if (bindSize < this.bytes) throw new Error(`tensor ${this.describe()}: a view of ${bindSize} bytes cannot hold ${this.bytes}`);
    const old = this.buffer;
    if (copy) this.gpu.copy(this, 0, { buffer, offset }, 0, this.bytes);
    if (this._storage) this._storage.unref();
    else this.gpu.pool.release(old);
    this._buffer = buffer;
    this._offset = offset;
    this._bindSize = bindSize;
    this._storage = storage;
  }

  /** A new tensor viewing `bindSize` bytes of `buffer` at `offset`, owned by `storage` (not adopted by a tape). */
  static view(gpu: Gpu, shape: readonly number[], buffer: GPUBuffer, offset: number, bindSize: number, storage: ViewStorage, name = ''): Tensor {
    return new Tensor(gpu, shape, name, { buffer, offset, bindSize, storage });
  }

  /** Bytes of the values in the buffer (f16: padded to a multiple of 4). */
  get bytes(): number {
    return storageBytes(this.size, this.dtype);
  }

  describe(): string {
    return `${this.name ? `'${this.name}' ` : ''}#${this.id} ${shapeStr(this.shape)}${this.dtype === 'f16' ? ' f16' : ''}`;
  }

  /** Returns the buffer to the pool. Safe to call twice. */
  dispose(): void {
    if (this._buffer) {
      if (this._storage) this._storage.unref();
      else this.gpu.pool.release(this._buffer);
      this._buffer = null;
      this._storage = null;
    }
    this.node = null;
  }

  /** Reads the values back (flushes pending work); an f16 tensor's values come back as float32. */
  async toArray(): Promise<Float32Array> {
    if (this.dtype === 'f16') return fromHalf(new Uint16Array(await this.gpu.read(this, this.size * 2), 0, this.size));
    const ab = await this.gpu.read(this, this.size * 4);
    return new Float32Array(ab);
  }

  /** Uploads values (length must equal size) in stream order; an f16 tensor stores them rounded to nearest even. */
  write(data: ArrayLike<number>): this {
    if (data.length !== this.size) throw new Error(`tensor ${this.describe()}: write of ${data.length} values, expected ${this.size}`);
    if (this.dtype === 'f16') {
      this.gpu.upload(this, toHalf(data));
      return this;
    }
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    this.gpu.upload(this, f);
    return this;
  }

  static empty(gpu: Gpu, shape: readonly number[], name = '', dtype: DType = 'f32'): Tensor {
    return new Tensor(gpu, shape, name, undefined, dtype);
  }

  /** A new tensor with x's device and dtype (an op's output), of `shape` (default x's). */
  static like(x: Tensor, shape: readonly number[] = x.shape, name = ''): Tensor {
    return new Tensor(x.gpu, shape, name, undefined, x.dtype);
  }

  static from(gpu: Gpu, shape: readonly number[], data: ArrayLike<number>, name = '', dtype: DType = 'f32'): Tensor {
    const t = new Tensor(gpu, shape, name, undefined, dtype);
    return t.write(data);
  }

  /** A parameter: a leaf tensor that requires grad and is never owned by a tape. */
  static param(gpu: Gpu, shape: readonly number[], data: ArrayLike<number>, name = ''): Tensor {
    const t = Tape.untracked(() => Tensor.from(gpu, shape, data, name));
    t.requiresGrad = true;
    return t;
  }
}
