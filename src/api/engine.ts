/**
 * The engine: one WebGPU device (src/gpu/device.ts Gpu) with its pipeline cache and buffer pool. Nothing
 * is created at import: `createEngine()` selects the adapter (Node: a real GPU, then Mesa lavapipe, then GL
 * llvmpipe, through Dawn; browser: navigator.gpu) and creates the device.
 */
import { Gpu } from '../gpu/device.js';
import type { AdapterDescription, BackendChoice } from '../gpu/adapter.js';

export interface EngineOptions {
  /**
   * Node: 'auto' (default: a real GPU, else lavapipe, else GL), 'gpu', 'lavapipe' or 'gl'; the env
   * YOLO_WGSL_BACKEND is used when this is not given. Browser: 'auto' only.
   */
  backend?: BackendChoice;
  /** Passed to requestAdapter ('high-performance' by default for a real GPU). */
  powerPreference?: GPUPowerPreference;
  /** Receives one line per adapter-selection step (default: silent). */
  log?: (line: string) => void;
  /** Validate after every dispatch (slow; names the failing kernel exactly). */
  debug?: boolean;
  /**
   * Node: how Dawn waits for the GPU. 'throttled' (default, or the env YOLO_WGSL_POLL) wraps the global
   * setImmediate so Dawn's native polling callbacks run once per timer tick after the first millisecond of a
   * wait (JavaScript callbacks are untouched); 'spin' keeps Dawn's busy loop, which holds a CPU core.
   */
  poll?: 'throttled' | 'spin';
}

/** What the engine runs on. */
export type AdapterInfo = AdapterDescription;

export class Engine {
  /** The device runtime, for expert use (tensors, kernels: src/tensor, src/gpu). */
  readonly gpu: Gpu;
  private disposed = false;

  /** Wraps an existing device (e.g. one shared by several engines' users); `createEngine` is the usual way. */
  constructor(gpu: Gpu) {
    this.gpu = gpu;
  }

  /** The adapter: backend, kind ('gpu' | 'lavapipe' | 'llvmpipe' | 'cpu'), names, features, limits, summary line. */
  get adapterInfo(): AdapterInfo {
    return this.gpu.info;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Destroys the device; models loaded on this engine can no longer run. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.gpu.dispose();
  }
}

/** Selects an adapter and creates the device. */
export async function createEngine(opts: EngineOptions = {}): Promise<Engine> {
  const gpu = await Gpu.create({ backend: opts.backend, powerPreference: opts.powerPreference, log: opts.log, debug: opts.debug, poll: opts.poll });
  return new Engine(gpu);
}
