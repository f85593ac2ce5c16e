/**
 * Dawn's node binding (the `webgpu` package) waits for GPU work by polling: while any asynchronous operation
 * is pending (mapAsync, onSubmittedWorkDone, popErrorScope, createComputePipelineAsync) it re-schedules a
 * native callback with the global `setImmediate` that processes Dawn's events, i.e. a busy loop on the main
 * thread. On a CPU adapter (lavapipe, llvmpipe, SwiftShader) that loop takes a core from the threads that run
 * the shaders: a demo.cfg training step on 2 cores took 446 ms with it and 337 ms without it.
 *
 * `throttleDawnPolling` wraps the global `setImmediate` so that a native callback (Dawn's; JavaScript
 * callbacks pass through untouched) runs immediately during the first `spinMs` of a wait and after that once
 * per timer tick (~1 ms). A wait then costs at most ~1 ms of latency and almost no CPU. Installed once per
 * process by adapter selection; `YOLO_WGSL_POLL=spin` (or `SelectOptions.poll: 'spin'`) keeps Dawn's loop.
 */
import { promisify } from 'node:util';

export type PollMode = 'throttled' | 'spin';

let installed: { original: typeof setImmediate } | null = null;

/** Installs the throttle (idempotent). Returns whether it is active. */
export function throttleDawnPolling(mode: PollMode = 'throttled', spinMs = 1): boolean {
  if (mode === 'spin') return installed !== null;
  if (installed) return true;
  const original = globalThis.setImmediate;
  let waitStart = 0;
  let last = -Infinity;
  const wrapper = function (this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]) {
    if (typeof fn !== 'function' || !isNative(fn)) return original(fn, ...args);
    const now = performance.now();
    if (now - last > 2) waitStart = now; // no native poll for a while: a new wait starts
    last = now;
    if (now - waitStart < spinMs) return original(fn, ...args);
    return setTimeout(fn, 0, ...args) as unknown as NodeJS.Immediate;
  } as unknown as typeof setImmediate;
  const custom = (original as unknown as Record<symbol, unknown>)[promisify.custom];
  if (custom) Object.defineProperty(wrapper, promisify.custom, { value: custom });
  globalThis.setImmediate = wrapper;
  installed = { original };
  return true;
}

/** Restores the global setImmediate (tests). */
export function restoreDawnPolling(): void {
  if (installed) globalThis.setImmediate = installed.original;
  installed = null;
}

const nativeCache = new WeakMap<(...a: unknown[]) => void, boolean>();
function isNative(fn: (...a: unknown[]) => void): boolean {
  let v = nativeCache.get(fn);
  if (v === undefined) {
    v = Function.prototype.toString.call(fn).includes('[native code]');
    nativeCache.set(fn, v);
  }
  return v;
}

export function parsePollMode(v: string | undefined): PollMode {
  if (v === undefined || v === '' || v === 'throttled') return 'throttled';
  if (v === 'spin') return 'spin';
  throw new Error(`YOLO_WGSL_POLL must be 'throttled' or 'spin', got '${v}'`);
}
