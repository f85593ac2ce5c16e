/**
 * The detection server's counters (GET /metrics): requests, answers by status, latency percentiles of the
 * detections served, queue depth, batches by size. Plain JSON, or Prometheus' text format (version 0.0.4)
 * with `?format=prom`.
 */

/** Latencies kept for the percentiles: the last this many answered detections. */
export const LATENCY_WINDOW = 4096;

export interface LatencySummary {
  /** Detections answered with 200 in the window (the last LATENCY_WINDOW). */
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ServeMetricsSnapshot {
  uptimeS: number;
  /** Every HTTP request received (any path). */
  requests: number;
  /** POST /detect requests received. */
  detectRequests: number;
  /** Answers sent, by HTTP status. */
  responses: Record<string, number>;
  /** Answers with a 4xx (client) and a 5xx (server) status. */
  errors: { client: number; server: number };
  /** Milliseconds from a /detect request's arrival to its 200 answer. */
  latencyMs: LatencySummary;
  /** Requests admitted and waiting for the GPU (read, checked, not yet in a batch). */
  queueDepth: number;
  /** Requests admitted and not answered yet: reading their body, queued, or in a running batch. */
  inFlight: number;
  /** Batches running now (at most maxConcurrent). */
  runningBatches: number;
  /** Batches run (one forward each) and the images in them. */
  batches: number;
  images: number;
  /** Batches run, by their number of images. */
  batchSizes: Record<string, number>;
  /** Mean images per batch (0 before the first). */
  meanBatchSize: number;
}

/** p in [0, 1] of sorted values: the nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export class ServeMetrics {
  private readonly t0 = performance.now();
  requests = 0;
  detectRequests = 0;
  readonly responses: Record<string, number> = {};
  private readonly window = new Float64Array(LATENCY_WINDOW);
  private windowed = 0;
  /** All 200 latencies ever: Prometheus' summary _sum and _count. */
  private latencySum = 0;
  private latencyCount = 0;
  batches = 0;
  images = 0;
  readonly batchSizes = new Map<number, number>();

  answered(status: number): void {
    this.responses[status] = (this.responses[status] ?? 0) + 1;
  }

  latency(ms: number): void {
    this.window[this.windowed++ % LATENCY_WINDOW] = ms;
    this.latencySum += ms;
    this.latencyCount++;
  }

  batch(size: number): void {
    this.batches++;
    this.images += size;
    this.batchSizes.set(size, (this.batchSizes.get(size) ?? 0) + 1);
  }

  snapshot(live: { queueDepth: number; inFlight: number; runningBatches: number }): ServeMetricsSnapshot {
    const xs = Array.from(this.window.subarray(0, Math.min(this.windowed, LATENCY_WINDOW))).sort((a, b) => a - b);
    const r = (v: number) => +v.toFixed(2);
    let client = 0;
    let server = 0;
    for (const [s, n] of Object.entries(this.responses)) {
      if (+s >= 500) server += n;
      else if (+s >= 400) client += n;
    }
    return {
      uptimeS: +((performance.now() - this.t0) / 1000).toFixed(1),
      requests: this.requests,
      detectRequests: this.detectRequests,
      responses: { ...this.responses },
      errors: { client, server },
      latencyMs: {
        count: xs.length, p50: r(percentile(xs, 0.5)), p90: r(percentile(xs, 0.9)), p99: r(percentile(xs, 0.99)),
        max: r(xs.length ? xs[xs.length - 1] : 0), mean: r(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0),
      },
      ...live,
      batches: this.batches,
      images: this.images,
      batchSizes: Object.fromEntries([...this.batchSizes].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
      meanBatchSize: this.batches ? +(this.images / this.batches).toFixed(3) : 0,
    };
  }

  /** The snapshot in Prometheus' text exposition format; `maxBatch` sets the batch-size buckets. */
  prometheus(s: ServeMetricsSnapshot, maxBatch: number): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    const p = 'yolo_wgsl_serve_';
    metric(`${p}requests_total`, 'counter', 'HTTP requests received.', [`${p}requests_total ${s.requests}`]);
    metric(`${p}detect_requests_total`, 'counter', 'POST /detect requests received.', [`${p}detect_requests_total ${s.detectRequests}`]);
    metric(`${p}responses_total`, 'counter', 'Answers sent, by HTTP status.', Object.entries(s.responses).map(([k, v]) => `${p}responses_total{code="${k}"} ${v}`));
    const sec = (ms: number) => String(+(ms / 1000).toFixed(6));
    metric(`${p}detect_latency_seconds`, 'summary', `Arrival to 200 answer of /detect (quantiles over the last ${LATENCY_WINDOW}).`, [
      ...([['0.5', s.latencyMs.p50], ['0.9', s.latencyMs.p90], ['0.99', s.latencyMs.p99]] as const).map(([q, v]) => `${p}detect_latency_seconds{quantile="${q}"} ${sec(v)}`),
      `${p}detect_latency_seconds_sum ${sec(this.latencySum)}`,
      `${p}detect_latency_seconds_count ${this.latencyCount}`,
    ]);
    metric(`${p}queue_depth`, 'gauge', 'Requests waiting for the GPU.', [`${p}queue_depth ${s.queueDepth}`]);
    metric(`${p}in_flight`, 'gauge', 'Requests admitted and not answered yet.', [`${p}in_flight ${s.inFlight}`]);
    metric(`${p}running_batches`, 'gauge', 'Batches running now.', [`${p}running_batches ${s.runningBatches}`]);
    const bounds: number[] = [];
    for (let b = 1; b < maxBatch; b *= 2) bounds.push(b);
    bounds.push(maxBatch);
    const cum = (le: number) => [...this.batchSizes].filter(([k]) => k <= le).reduce((a, [, v]) => a + v, 0);
    metric(`${p}batch_size`, 'histogram', 'Images per batch (one forward each).', [
      ...bounds.map((b) => `${p}batch_size_bucket{le="${b}"} ${cum(b)}`),
      `${p}batch_size_bucket{le="+Inf"} ${s.batches}`,
      `${p}batch_size_sum ${s.images}`,
      `${p}batch_size_count ${s.batches}`,
    ]);
    return `${out.join('\n')}\n`;
  }
}
