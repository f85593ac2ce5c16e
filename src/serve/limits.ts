/**
 * The detection server's limits, their defaults and ranges: one table for the library
 * (createDetectionServer) and the CLI (`yolo-wgsl serve`, src/cli/options.ts). No imports: the CLI reads it
 * at start-up for every command.
 */
import type { NumberRule } from '../util/validate.js';

export interface ServeLimits {
  /** Largest request body, bytes. */
  maxBytes: number;
  /** Largest image, width x height as its header declares it. */
  maxPixels: number;
  /** Batches decoded and run at once. */
  maxConcurrent: number;
  /** Requests waiting beyond those running. */
  maxQueue: number;
  /** Requests per batch (one forward). */
  maxBatch: number;
  /** How long the oldest queued request waits for others to join its batch, ms. */
  batchWaitMs: number;
  /** Time limit of a request from its arrival, ms. */
  timeoutMs: number;
}

export const SERVE_LIMIT_RULES: Readonly<Record<Exclude<keyof ServeLimits, 'maxPixels'>, NumberRule & { default: number }>> = {
  maxBytes: { min: 1, max: 2 ** 30, int: true, default: 8 * 2 ** 20 },
  maxConcurrent: { min: 1, max: 64, int: true, default: 1 },
  maxQueue: { min: 0, max: 100_000, int: true, default: 64 },
  maxBatch: { min: 1, max: 256, int: true, default: 8 },
  batchWaitMs: { min: 0, max: 60_000, default: 5 },
  timeoutMs: { min: 1, max: 24 * 3600_000, int: true, default: 30_000 },
};

export const PORT_RULE: NumberRule = { min: 0, max: 65535, int: true };
