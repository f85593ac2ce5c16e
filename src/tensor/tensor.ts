/**
 * Tensor: a float32 GPU buffer from the device's pool plus a shape. Layout is row-major (NCHW for images).
 * Tensors created while a Tape is recording are owned by that tape unless kept (see Tape.keep).
 */
import type { Gpu } from '../gpu/device.js';
import { GpuError } from '../gpu/errors.js';
import type { TapeNode } from './tape.js';
import { Tape } from './tape.js';

let nextId = 1;

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
  private _buffer: GPUBuffer | null;
  /** Whether gradients flow to this tensor (parameters, and outputs of recorded ops that depend on them). */
  requiresGrad = false;
  /** Accumulated gradient of a leaf that requires grad (after Tape.backward). */
  grad: Tensor | null = null;
  /** The recorded op that produced this tensor, if any. */
  node: TapeNode | null = null;
  name: string;

  constructor(readonly gpu: Gpu, shape: readonly number[], name = '') {
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.name = name;
    const bytes = Math.max(4, this.size * 4);
    const maxBinding = gpu.limits.maxStorageBufferBindingSize ?? Infinity;
    const maxBuffer = gpu.limits.maxBufferSize ?? Infinity;
    if (bytes > maxBinding || bytes > maxBuffer) {
      const which = bytes > maxBinding ? `maxStorageBufferBindingSize ${maxBinding}` : `maxBufferSize ${maxBuffer}`;
      throw new GpuError('limits', name, `tensor ${name ? `'${name}' ` : ''}of shape ${shapeStr(shape)} needs ${bytes} bytes, above the adapter's ${which} (${gpu.info.kind}); use a smaller batch or input size`);
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

  get bytes(): number {
    return this.size * 4;
  }

  describe(): string {
    return `${this.name ? `'${this.name}' ` : ''}#${this.id} ${shapeStr(this.shape)}`;
  }

  /** Returns the buffer to the pool. Safe to call twice. */
  dispose(): void {
    if (this._buffer) {
      this.gpu.pool.release(this._buffer);
      this._buffer = null;
    }
    this.node = null;
  }

  /** Reads the values back (flushes pending work). */
  async toArray(): Promise<Float32Array> {
    const ab = await this.gpu.read(this.buffer, this.size * 4);
    return new Float32Array(ab);
  }

  /** Uploads values (length must equal size) in stream order. */
  write(data: ArrayLike<number>): this {
    if (data.length !== this.size) throw new Error(`tensor ${this.describe()}: write of ${data.length} values, expected ${this.size}`);
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    this.gpu.upload(this.buffer, f);
    return this;
  }

  static empty(gpu: Gpu, shape: readonly number[], name = ''): Tensor {
    return new Tensor(gpu, shape, name);
  }

  static from(gpu: Gpu, shape: readonly number[], data: ArrayLike<number>, name = ''): Tensor {
    const t = new Tensor(gpu, shape, name);
    return t.write(data);
  }

  /** A parameter: a leaf tensor that requires grad and is never owned by a tape. */
  static param(gpu: Gpu, shape: readonly number[], data: ArrayLike<number>, name = ''): Tensor {
    const t = Tape.untracked(() => Tensor.from(gpu, shape, data, name));
    t.requiresGrad = true;
    return t;
  }
}
