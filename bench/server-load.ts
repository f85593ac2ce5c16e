/**
 * A load test of `yolo-wgsl serve` (src/serve/server.ts): starts the server as a child process on 127.0.0.1,
 * sends a bounded number of requests from concurrent clients, either mixing good images (fixtures/images)
 * with bad requests (garbage bytes, a 20000x20000 PNG bomb, a bad query value, a body over --max-bytes) or
 * good images only (--mix good), and reports whether every good request got 200 with the detections of a
 * lone request of the same image, every bad one its 4xx, throughput, latency percentiles, the batches the
 * server formed (GET /metrics), and the server's RSS (/proc/<pid>/status VmRSS, else GET /health) sampled
 * over the run: at the start (after a warm-up), its maximum and at the end.
 *
 *   node --import tsx bench/server-load.ts [--requests 200] [--clients 4 | 1,4,16] [--mix mixed|good]
 *        [--cfg fixtures/cfg/yolo-mini.cfg] [--weights W] [--names N] [--max-bytes 1048576] [--conf 0.05]
 *        [--max-det 100] [--max-batch 8] [--batch-wait-ms 5] [--md FILE]
 *
 * Several --clients values run one after another on the same server (after one warm-up) and end with a
 * markdown table (throughput, p50 / p99 latency, mean batch size per client count; docs/serve.md); --md
 * also writes it to FILE. The load average (uptime) is printed before and after: the numbers are only
 * comparable on an idle machine.
 *
 * Without --weights the server runs the cfg with seeded random weights (deterministic detections): with the
 * default cfg every box scores about 0.26, so each good answer holds --max-det detections. test/examples/server.test.ts runs a
 * reduced version (loadTest) and asserts on its report.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { forgedPng } from '../fixtures/images/make-images.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------- the server process

export interface ServerHandle {
  url: string;
  pid: number;
  /** The adapter summary the server printed. */
  device: string;
  /** Its output so far (stdout and stderr, the last 64 KiB). */
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `yolo-wgsl serve` (src/cli/main.ts through tsx), or with `script` another server program such as
 * examples/server.ts, with `args` plus --host 127.0.0.1 --port 0, and waits for `listening on URL (device)`.
 */
export function startServer(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; script?: string } = {}): Promise<ServerHandle> {
  const program = opts.script ? [path.resolve(root, opts.script)] : [path.join(root, 'src/cli/main.ts'), 'serve'];
  const child: ChildProcess = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ...program, '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: opts.cwd ?? root, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env,
  });
  let out = '';
  const add = (d: Buffer) => {
    out += d;
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stderr!.on('data', add);
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${out}`));
    }, opts.timeoutMs ?? 120_000);
    void closed.then((code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`server exited (${code}): ${out}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      add(d);
      const m = started ? null : /listening on (http:\/\/127\.0\.0\.1:\d+) \((.*)\)/.exec(out);
      if (m) {
        started = true;
        clearTimeout(timer);
        resolve({
          url: m[1], pid: child.pid!, device: m[2], output: () => out,
          stop: () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            return closed;
          },
        });
      }
    });
  });
}

/** Resident memory of a process in bytes (/proc/<pid>/status VmRSS; undefined where there is no /proc). */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- requests

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/**
 * One HTTP request. The result is the response, also when the server closes the connection while the body
 * is still being sent (an early 413 / 400): errors after a complete response are ignored. `chunked` sends the
 * body in 16 KiB chunks without a Content-Length.
 */
export function request(url: string, o: { method?: string; body?: Uint8Array; headers?: Record<string, string>; agent?: http.Agent | false; chunked?: boolean } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let settled = false;
    const fail = (e: Error) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    };
    const headers = { ...(o.body && !o.chunked ? { 'content-length': String(o.body.length) } : {}), ...o.headers };
    const req = http.request(url, { method: o.method ?? (o.body ? 'POST' : 'GET'), headers, agent: o.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    if (o.chunked && o.body) {
      const body = o.body;
      let at = 0;
      const more = () => {
        while (at < body.length && !req.destroyed) {
          const piece = body.subarray(at, (at += 16384));
          if (!req.write(piece)) return void req.once('drain', more);
        }
        if (!req.destroyed) req.end();
      };
      more();
    } else req.end(o.body);
  });
}

export const json = <T = Record<string, unknown>>(r: HttpResult): T => JSON.parse(r.body) as T;

// ---------------------------------------------------------------- bad inputs

/** A PNG of under 100 bytes whose header declares width x height (8-bit RGB). */
export function bombPng(width = 20000, height = 20000): Buffer {
  return forgedPng(width, height);
}

/** The fixture images (fixtures/images/*.png|jpg) as bytes, by file name. */
export function fixtureImages(): { name: string; bytes: Buffer }[] {
  const dir = path.join(root, 'fixtures/images');
  return fs.readdirSync(dir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((name) => ({ name, bytes: fs.readFileSync(path.join(dir, name)) }));
}

// ---------------------------------------------------------------- comparing detections

/** One detection as the server answers it (the JSON `yolo-wgsl detect` writes per image). */
export interface ServedDetection {
  class_id: number;
  name: string;
  score: number;
  objectness: number;
  bbox_xyxy: number[];
  bbox_cxcywh_norm: number[];
}

/** A detection of the library's model.detect: { box: { x1, y1, x2, y2 }, classId, name, score }. */
interface LibraryDetection {
  box: { x1: number; y1: number; x2: number; y2: number };
  classId: number;
  name: string;
  score: number;
}

/**
 * Why a server's detections differ from the expected ones (null when they agree): the same count, and in
 * order the same class and name, scores within `tol.score` and pixel corners within `tol.px` (the server
 * prints scores to 6 decimals and corners to 2). `want` may be the server's JSON or the library's Detection[].
 */
export function detectionsDiffer(got: readonly ServedDetection[], want: readonly (ServedDetection | LibraryDetection)[], tol = { score: 2e-6, px: 0.006 }): string | null {
  if (got.length !== want.length) return `${got.length} detections, expected ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    const [cls, box] = 'box' in w ? [w.classId, [w.box.x1, w.box.y1, w.box.x2, w.box.y2]] : [w.class_id, w.bbox_xyxy];
    if (g.class_id !== cls || g.name !== w.name) return `#${i}: class ${g.class_id} ${g.name}, expected ${cls} ${w.name}`;
    if (!(Math.abs(g.score - w.score) <= tol.score)) return `#${i}: score ${g.score}, expected ${w.score}`;
    const d = Math.max(...box.map((v, k) => Math.abs(v - g.bbox_xyxy[k])));
    if (!(d <= tol.px)) return `#${i}: box ${g.bbox_xyxy.join(',')}, expected ${box.join(',')} (${d.toFixed(4)} px apart)`;
  }
  return null;
}

// ---------------------------------------------------------------- the load test

export type BadKind = 'garbage' | 'bomb' | 'badquery' | 'oversized';
/** The status each bad kind must get. */
export const BAD_STATUS: Record<BadKind, number> = { garbage: 400, bomb: 413, badquery: 400, oversized: 413 };
/** Six good requests, then one of each bad kind, over and over. */
const PATTERN: (BadKind | 'good')[] = ['good', 'good', 'garbage', 'good', 'bomb', 'good', 'badquery', 'good', 'oversized', 'good'];

export interface LoadOptions {
  server: Pick<ServerHandle, 'url' | 'pid'>;
  requests: number;
  clients: number;
  /** 'mixed' (default): good requests with bad ones between (PATTERN); 'good': good requests only. */
  mix?: 'mixed' | 'good';
  /** Must be the server's --max-bytes: the oversized requests send one byte more. */
  maxBytes: number;
  /** Score threshold of the good requests (default 0.05). */
  conf?: number;
  /** maxDet of the good requests (default 100). */
  maxDet?: number;
  images?: { name: string; bytes: Buffer }[];
  /**
   * The detections expected per image name, as the server's JSON or the library's Detection[] (default:
   * those of a lone request to the server, before the load).
   */
  expected?: Map<string, readonly (ServedDetection | LibraryDetection)[]>;
  /** RSS sampling period (default 100 ms). */
  sampleMs?: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** The server's batching over a run (the difference of GET /metrics before and after). */
export interface BatchStats {
  batches: number;
  images: number;
  /** Batches by size. */
  sizes: Record<string, number>;
  mean: number;
}

export interface LoadReport {
  requests: number;
  clients: number;
  seconds: number;
  good: { sent: number; ok: number; mismatched: number; otherStatus: number; detections: number };
  bad: { sent: number; asExpected: number; byKind: Record<BadKind, { sent: number; statuses: Record<string, number> }> };
  /** Requests that got no response at all (connection errors). */
  errors: string[];
  /** Up to 10 descriptions of wrong answers. */
  failures: string[];
  latencyMs: { good: Percentiles; bad: Percentiles };
  /** Good requests answered per second (all requests / seconds with --mix good). */
  goodPerSecond: number;
  batching: BatchStats;
  rss: { start: number; max: number; end: number; samples: number; source: 'proc' | 'health' };
}

function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] };
}

interface MetricsJson {
  batches: number;
  images: number;
  batchSizes: Record<string, number>;
}

async function serverMetrics(url: string): Promise<MetricsJson> {
  const r = await request(`${url}/metrics`, { agent: false });
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body}`);
  return json<MetricsJson>(r);
}

function batchDelta(a: MetricsJson, b: MetricsJson): BatchStats {
  const sizes: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.batchSizes)) {
    const d = v - (a.batchSizes[k] ?? 0);
    if (d > 0) sizes[k] = d;
  }
  const batches = b.batches - a.batches;
  const images = b.images - a.images;
  return { batches, images, sizes, mean: batches ? images / batches : 0 };
}

export async function loadTest(o: LoadOptions): Promise<LoadReport> {
  const conf = o.conf ?? 0.05;
  const images = o.images ?? fixtureImages();
  const detectUrl = `${o.server.url}/detect?conf=${conf}&iou=0.45&maxDet=${o.maxDet ?? 100}`;
  const bomb = bombPng();
  const garbage = Buffer.from('this is not an image, just some bytes '.repeat(20));
  const oversized = Buffer.alloc(o.maxBytes + 1, 0x55);
  // lone requests: warm-up, and the detections each image must get under load
  const expected = new Map<string, readonly (ServedDetection | LibraryDetection)[]>();
  for (const im of images) {
    const r = await request(detectUrl, { body: im.bytes, agent: false });
    if (r.status !== 200) throw new Error(`lone request of ${im.name}: ${r.status} ${r.body}`);
    expected.set(im.name, o.expected?.get(im.name) ?? json<{ detections: ServedDetection[] }>(r).detections);
  }
  const health = async () => json<{ rss: number }>(await request(`${o.server.url}/health`, { agent: false })).rss;
  const source = rssOf(o.server.pid) !== undefined ? 'proc' : 'health';
  const sample = async () => (source === 'proc' ? rssOf(o.server.pid) ?? NaN : await health());
  const rss: number[] = [await sample()];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await new Promise((r) => setTimeout(r, o.sampleMs ?? 100));
      if (sampling) rss.push(await sample());
    }
  })();

  const report: LoadReport = {
    requests: o.requests, clients: o.clients, seconds: 0,
    good: { sent: 0, ok: 0, mismatched: 0, otherStatus: 0, detections: 0 },
    bad: { sent: 0, asExpected: 0, byKind: { garbage: { sent: 0, statuses: {} }, bomb: { sent: 0, statuses: {} }, badquery: { sent: 0, statuses: {} }, oversized: { sent: 0, statuses: {} } } },
    errors: [], failures: [],
    latencyMs: { good: percentiles([]), bad: percentiles([]) },
    goodPerSecond: 0,
    batching: { batches: 0, images: 0, sizes: {}, mean: 0 },
    rss: { start: 0, max: 0, end: 0, samples: 0, source },
  };
  const goodMs: number[] = [];
  const badMs: number[] = [];
  const fail = (s: string) => {
    if (report.failures.length < 10) report.failures.push(s);
  };
  let next = 0;
  const m0 = await serverMetrics(o.server.url);
  const t0 = performance.now();
  const client = async (c: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = next++; i < o.requests; i = next++) {
        const kind = o.mix === 'good' ? 'good' : PATTERN[i % PATTERN.length];
        try {
          if (kind === 'good') {
            const im = images[(i + c) % images.length];
            report.good.sent++;
            const r = await request(detectUrl, { body: im.bytes, agent });
            goodMs.push(r.ms);
            if (r.status !== 200) {
              report.good.otherStatus++;
              fail(`#${i} ${im.name}: ${r.status} ${r.body.trim()}`);
            } else {
              const dets = json<{ detections: ServedDetection[] }>(r).detections;
              report.good.detections += dets.length;
              const why = detectionsDiffer(dets, expected.get(im.name)!);
              if (!why) report.good.ok++;
              else {
                report.good.mismatched++;
                fail(`#${i} ${im.name}: detections differ from the lone request's: ${why}`);
              }
            }
          } else {
            report.bad.sent++;
            const k = report.bad.byKind[kind];
            k.sent++;
            const r = kind === 'garbage' ? await request(detectUrl, { body: garbage, agent })
              : kind === 'bomb' ? await request(detectUrl, { body: bomb, agent })
                : kind === 'badquery' ? await request(`${o.server.url}/detect?conf=abc`, { body: images[0].bytes, agent })
                  : await request(detectUrl, { body: oversized, agent: false });
            badMs.push(r.ms);
            k.statuses[r.status] = (k.statuses[r.status] ?? 0) + 1;
            if (r.status === BAD_STATUS[kind]) report.bad.asExpected++;
            else fail(`#${i} ${kind}: ${r.status} ${r.body.trim()}`);
          }
        } catch (e) {
          report.errors.push(`#${i} ${kind}: ${(e as Error).message}`);
        }
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  report.seconds = (performance.now() - t0) / 1000;
  report.batching = batchDelta(m0, await serverMetrics(o.server.url));
  sampling = false;
  await sampler;
  rss.push(await sample());
  report.rss = { start: rss[0], max: Math.max(...rss), end: rss[rss.length - 1], samples: rss.length, source };
  report.latencyMs = { good: percentiles(goodMs), bad: percentiles(badMs) };
  report.goodPerSecond = report.good.ok / report.seconds;
  return report;
}

export function formatLoad(r: LoadReport, device?: string): string {
  const MB = (n: number) => (n / 2 ** 20).toFixed(1);
  const ms = (p: Percentiles) => `p50 ${p.p50.toFixed(1)}  p90 ${p.p90.toFixed(1)}  p99 ${p.p99.toFixed(1)}  max ${p.max.toFixed(1)}`;
  const kinds = (Object.keys(r.bad.byKind) as BadKind[]).map((k) => `${k} ${r.bad.byKind[k].sent} -> ${Object.entries(r.bad.byKind[k].statuses).map(([s, n]) => `${n}x ${s}`).join(', ') || '-'}`).join('; ');
  const sizes = Object.entries(r.batching.sizes).map(([k, v]) => `${v}x${k}`).join(' ');
  return [
    ...(device ? [`device: ${device}`] : []),
    `requests ${r.requests} from ${r.clients} clients in ${r.seconds.toFixed(1)} s (${(r.requests / r.seconds).toFixed(1)} req/s; ${r.goodPerSecond.toFixed(1)} good images/s)`,
    `good ${r.good.sent}: ${r.good.ok} x 200 with the lone request's detections, ${r.good.mismatched} different, ${r.good.otherStatus} other status (${r.good.detections} detections in all)`,
    ...(r.bad.sent ? [`bad ${r.bad.sent}: ${r.bad.asExpected} with the expected 4xx (${kinds})`] : []),
    `no response: ${r.errors.length}`,
    `latency ms: good ${ms(r.latencyMs.good)}${r.bad.sent ? `; bad ${ms(r.latencyMs.bad)}` : ''}`,
    `batches ${r.batching.batches} for ${r.batching.images} images (mean ${r.batching.mean.toFixed(2)}; by size: ${sizes || '-'})`,
    `server rss MB (${r.rss.source}, ${r.rss.samples} samples): start ${MB(r.rss.start)}  max ${MB(r.rss.max)}  end ${MB(r.rss.end)}`,
    ...r.failures.map((f) => `  failure: ${f}`),
    ...r.errors.slice(0, 10).map((f) => `  error: ${f}`),
  ].join('\n');
}

/** A markdown table of load runs: clients, requests, seconds, throughput, p50 / p90 / p99, mean batch. */
export function loadTable(rs: readonly LoadReport[]): string {
  const rows = rs.map((r) => `| ${r.clients} | ${r.requests} | ${r.seconds.toFixed(1)} | ${r.goodPerSecond.toFixed(1)} | ${r.latencyMs.good.p50.toFixed(0)} | ${r.latencyMs.good.p90.toFixed(0)} | ${r.latencyMs.good.p99.toFixed(0)} | ${r.batching.mean.toFixed(2)} | ${r.good.ok}/${r.good.sent} |`);
  return ['| clients | requests | seconds | images/s | p50 ms | p90 ms | p99 ms | mean batch | right answers |', '|---:|---:|---:|---:|---:|---:|---:|---:|---:|', ...rows].join('\n');
}

// ---------------------------------------------------------------- command line

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      requests: { type: 'string', default: '200' }, clients: { type: 'string', default: '4' }, mix: { type: 'string', default: 'mixed' },
      cfg: { type: 'string', default: path.join(root, 'fixtures/cfg/yolo-mini.cfg') }, weights: { type: 'string' },
      names: { type: 'string', default: path.join(root, 'fixtures/cfg/yolo-mini.names') },
      'max-bytes': { type: 'string', default: String(1 << 20) }, conf: { type: 'string', default: '0.05' },
      'max-det': { type: 'string', default: '100' }, 'max-batch': { type: 'string', default: '8' }, 'batch-wait-ms': { type: 'string', default: '5' },
      md: { type: 'string' },
    },
    strict: true,
  });
  const int = (k: 'requests' | 'max-bytes' | 'max-det' | 'max-batch' | 'batch-wait-ms', min: number, max: number) => {
    const n = Number(a[k]);
    if (!/^[0-9]+$/.test(a[k]!) || n < min || n > max) throw new Error(`--${k} must be an integer in [${min}, ${max}], got ${JSON.stringify(a[k])}`);
    return n;
  };
  const requests = int('requests', 1, 100_000);
  const clients = a.clients!.split(',').map((c) => {
    const n = Number(c);
    if (!/^[0-9]+$/.test(c) || n < 1 || n > 256) throw new Error(`--clients must be integers in [1, 256], comma-separated, got ${JSON.stringify(a.clients)}`);
    return n;
  });
  if (a.mix !== 'mixed' && a.mix !== 'good') throw new Error(`--mix must be mixed or good, got ${JSON.stringify(a.mix)}`);
  const maxBytes = int('max-bytes', 1, 1 << 30);
  const maxDet = int('max-det', 1, 10000);
  const conf = Number(a.conf);
  if (!(conf >= 0 && conf <= 1)) throw new Error(`--conf must be a number in [0, 1], got ${JSON.stringify(a.conf)}`);
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(', ');
  console.log(`load average at start (uptime): ${load()} on ${os.cpus().length} cores`);
  const server = await startServer(['--cfg', a.cfg!, ...(a.weights ? ['--weights', a.weights] : []), '--names', a.names!, '--max-bytes', String(maxBytes),
    '--max-batch', String(int('max-batch', 1, 256)), '--batch-wait-ms', String(int('batch-wait-ms', 0, 60000)), '--max-queue', String(Math.max(64, 2 * Math.max(...clients)))]);
  try {
    const limits = /limits: .*/.exec(server.output())?.[0];
    if (limits) console.log(`server ${limits}`);
    const reports: LoadReport[] = [];
    let ok = true;
    for (const c of clients) {
      const r = await loadTest({ server, requests, clients: c, mix: a.mix as 'mixed' | 'good', maxBytes, conf, maxDet });
      console.log(`\n${formatLoad(r, reports.length ? undefined : server.device)}`);
      console.log(`load average now (uptime): ${load()}`);
      ok &&= r.good.ok === r.good.sent && r.bad.asExpected === r.bad.sent && r.errors.length === 0;
      reports.push(r);
    }
    const table = loadTable(reports);
    console.log(`\n${table}`);
    if (a.md) fs.writeFileSync(a.md, `device: ${server.device}\n${limits ?? ''}\n\n${table}\n`);
    console.log(`load average at end (uptime): ${load()}`);
    console.log(ok ? 'server-load: ok' : 'server-load: FAILED');
    process.exitCode = ok ? 0 : 1;
  } finally {
    await server.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(`server-load: ${(e as Error).message}`);
    process.exit(1);
  });
}
