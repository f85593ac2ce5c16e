/** Errors raised by the GPU runtime. Every one names the kernel (or the tensor) it concerns. */

export class GpuError extends Error {
  /** The kernel (WGSL file + entry point) the error concerns, or '' for device-level errors. */
  readonly kernel: string;
  /**
   * 'compile' | 'validation' | 'out-of-memory' | 'device-lost' | 'internal' | 'limits' | 'no-adapter' |
   * 'params' (the uniform values a dispatch was given do not match the kernel's uniform struct: a missing or
   * unknown field, or a value its type cannot hold; thrown at once by Gpu.dispatch)
   */
  readonly kind: string;
  constructor(kind: string, kernel: string, message: string) {
    super(kernel ? `${kind} error in kernel ${kernel}: ${message}` : `${kind} error: ${message}`);
    this.name = 'GpuError';
    this.kind = kind;
    this.kernel = kernel;
  }
}
