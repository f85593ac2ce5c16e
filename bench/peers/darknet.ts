/**
 * AlexeyAB's Darknet as a peer of `bench peers` (`--darknet PATH`: a `darknet` binary built from
 * https://github.com/AlexeyAB/darknet, never vendored here; docs/performance.md says how to build it).
 * Darknet runs as a child process, so it is timed apart from the in-process round-robin:
 *
 * - **the demo training job**: fixtures/cfg/demo.cfg (batch 8, 96 px, its augmentation) on the demo's
 *   synthetic shapes (src/data/synth.ts, the demo's parameters) for `iterations` updates, for Darknet
 *   (`detector train`, the cfg copied with max_batches = iterations; a .data file, an absolute train list and
 *   a backup folder written beside it; the labels are the dataset's labels/ .txt files, which Darknet's
 *   images -> labels rule finds) and for yolo-wgsl's trainer (`runTrain`, exactly as `make demo` trains:
 *   the YOLOv5 loss, seed 0, no validation). Throughput = images per second between the first iteration
 *   past `skip` (start-up, pipeline compilation and the loader's first batches excluded) and the last, from
 *   the time each engine printed its iteration lines; the whole run's img/s (start-up included) is
 *   reported beside it.
 * - **inference**: `detector test` on the bench's cfg at each inference size, batch 1, with the same seeded
 *   weights (written as a .weights file), image paths fed on stdin; Darknet's own "Predicted in X
 *   milli-seconds" (network_predict only: BN folded at load, no image loading or NMS), the median after the
 *   first call. The outputs are not compared with ours (Darknet prints boxes, not the head tensors).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Gpu } from '../../src/gpu/device.js';

/** How to get a binary, for the "not run" reason and the docs. */
export const DARKNET_BUILD = 'git clone https://github.com/AlexeyAB/darknet && cd darknet && make GPU=0 CUDNN=0 OPENCV=0 AVX=1 OPENMP=1, then --darknet darknet/darknet';

export interface DarknetProbe {
  available: boolean;
  reason?: string;
  /** The build as Darknet prints it ("GPU isn't used", "Used AVX", ...), threads. */
  description: string;
}

/** Checks that `bin` runs and is Darknet (`darknet detector` prints its usage). */
export function probeDarknet(bin: string | undefined): DarknetProbe {
  const base = { available: false, description: 'AlexeyAB Darknet (CPU)' };
  if (!bin) return { ...base, reason: `no --darknet PATH given (build one: ${DARKNET_BUILD})` };
  const file = path.resolve(bin);
  if (!fs.existsSync(file)) return { ...base, reason: `--darknet ${bin}: no such file (build one: ${DARKNET_BUILD})` };
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    return { ...base, reason: `--darknet ${bin}: not executable` };
  }
  const r = spawnSync(file, ['detector'], { encoding: 'utf8', timeout: 20000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || !/usage:.*detector/.test(text)) {
    return { ...base, reason: `--darknet ${bin}: does not look like Darknet (\`${bin} detector\` printed: ${text.trim().split('\n').slice(-1)[0] || r.error?.message || 'nothing'})` };
  }
  const build = text.split('\n').map((l) => l.trim()).filter((l) => /^(GPU|Used|OpenCV|CUDNN)/i.test(l) || /isn't used/.test(l));
  const threads = process.env.OMP_NUM_THREADS ? `OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS}` : `OpenMP default threads (${os.cpus().length} CPUs)`;
  return { available: true, description: `AlexeyAB Darknet ${file}: ${build.join(', ') || 'build flags not printed'}; ${threads}` };
}

/** An iteration line's time (ms since the job started) and loss. */
export interface IterationPoint {
  iteration: number;
  t_ms: number;
  loss: number;
}

export interface DemoJobRun {
  engine: string;
  iterations: number;
  images: number;
  /** Wall seconds of the whole run (process start / trainer call to exit). */
  wall_s: number;
  /** iterations x batch / wall_s: start-up included. */
  img_per_s_total: number;
  /** Images per second from iteration `steady_from` to the last one. */
  img_per_s: number;
  steady_from: number;
  loss_first: number;
  loss_last: number;
  loadavg_start: number[];
  loadavg_end: number[];
  /** Ours only: seconds the training loop awaited the data loader's next batch, of its loop's wall seconds. */
  data_wait_s?: number;
  loop_s?: number;
  error?: string;
}

export interface DemoJobResult {
  cfg: string;
  batch: number;
  size: number;
  iterations: number;
  train_images: number;
  data: string;
  /** What each engine trains with. */
  notes: string[];
  runs: DemoJobRun[];
}

/** img/s between the first point at or past `from` and the last one (NaN when fewer than two). */
export function steadyRate(points: readonly IterationPoint[], batch: number, from: number): { rate: number; from: number } {
  const p = points.filter((q) => q.iteration >= from);
  if (p.length < 2) return { rate: NaN, from };
  const a = p[0];
  const b = p[p.length - 1];
  const dt = (b.t_ms - a.t_ms) / 1000;
  return { rate: dt > 0 ? ((b.iteration - a.iteration) * batch) / dt : NaN, from: a.iteration };
}

/** The iteration line Darknet prints after every update (detector.c train_detector). */
const DARKNET_ITER = /^\s*(\d+): ([-\w.+]+), ([-\w.+]+) avg loss, [-\w.+]+ rate, [\d.]+ seconds, (\d+) images/;

/** Parses Darknet's training output (escape sequences removed) into iteration points; `t` per line. */
export function parseDarknetIterations(lines: readonly { line: string; t_ms: number }[]): IterationPoint[] {
  const out: IterationPoint[] = [];
  for (const { line, t_ms } of lines) {
    // eslint-disable-next-line no-control-regex
    const m = DARKNET_ITER.exec(line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
    if (m) out.push({ iteration: Number(m[1]), t_ms, loss: Number(m[2]) });
  }
  return out;
}

/** Runs a child process, timestamping every stdout/stderr line; kills it after `timeoutMs`. */
function runTimed(bin: string, args: string[], o: { cwd: string; timeoutMs: number; stdin?: string; onLine?: (l: string) => void }): Promise<{ lines: { line: string; t_ms: number }[]; code: number | null; ms: number; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(bin, args, { cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: { line: string; t_ms: number }[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    const feed = () => {
      let rest = '';
      return (d: Buffer) => {
        const t = performance.now() - t0;
        rest += d.toString('utf8');
        const parts = rest.split(/\r?\n/);
        rest = parts.pop() ?? '';
        for (const line of parts) {
          lines.push({ line, t_ms: t });
          o.onLine?.(line);
        }
      };
    };
    child.stdout.on('data', feed());
    child.stderr.on('data', feed());
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ lines, code, ms: performance.now() - t0, timedOut });
    });
    child.stdin.on('error', () => {}); // Darknet may exit before reading everything
    child.stdin.end(o.stdin ?? '');
  });
}

/** A cfg copy with `key=value` set in [net] (replaced where present, else added after the section header). */
export function cfgWithNet(text: string, set: Record<string, string | number>): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\s*\[(net|network)\]\s*$/.test(l));
  if (start < 0) throw new Error('cfg has no [net] section');
  let end = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  if (end < 0) end = lines.length;
  const todo = new Map(Object.entries(set).map(([k, v]) => [k, String(v)]));
  for (let i = start + 1; i < end; i++) {
    const m = /^\s*([A-Za-z_]\w*)\s*=/.exec(lines[i]);
    if (m && todo.has(m[1])) {
      lines[i] = `${m[1]}=${todo.get(m[1])}`;
      todo.delete(m[1]);
    }
  }
  lines.splice(start + 1, 0, ...[...todo].map(([k, v]) => `${k}=${v}`));
  return lines.join('\n');
}

/** The demo's data for Darknet: an absolute train list, a .data file and a backup folder in `dir`. */
export function writeDarknetData(dir: string, synthDir: string, classes: number, names: string): string {
  fs.mkdirSync(path.join(dir, 'backup'), { recursive: true });
  const list = fs.readFileSync(path.join(synthDir, 'train.txt'), 'utf8').split('\n').filter(Boolean).map((l) => path.resolve(synthDir, l));
  fs.writeFileSync(path.join(dir, 'train.txt'), `${list.join('\n')}\n`);
  const data = path.join(dir, 'darknet.data');
  fs.writeFileSync(data, `classes = ${classes}\ntrain = ${path.join(dir, 'train.txt')}\nvalid = ${path.join(dir, 'train.txt')}\nnames = ${path.resolve(names)}\nbackup = ${path.join(dir, 'backup')}\n`);
  return data;
}

/** Darknet trains `cfg` on `data` for `iterations` updates (see the file comment). */
export async function darknetTrainJob(bin: string, o: { cfg: string; data: string; dir: string; iterations: number; batch: number; skip: number; timeoutMs: number; log?: (l: string) => void }): Promise<DemoJobRun> {
  const cfg = path.join(o.dir, 'darknet-demo.cfg');
  fs.writeFileSync(cfg, cfgWithNet(fs.readFileSync(o.cfg, 'utf8'), { max_batches: o.iterations }));
  const loadStart = os.loadavg();
  const every = Math.max(1, Math.round(o.iterations / 8));
  const r = await runTimed(path.resolve(bin), ['detector', 'train', o.data, cfg, '-dont_show'], {
    cwd: o.dir, timeoutMs: o.timeoutMs,
    onLine: (l) => {
      const p = parseDarknetIterations([{ line: l, t_ms: 0 }])[0];
      if (p && (p.iteration % every === 0 || p.iteration === 1)) o.log?.(`darknet demo job: iteration ${p.iteration}, loss ${p.loss.toPrecision(4)}`);
    },
  });
  const pts = parseDarknetIterations(r.lines);
  return jobRun('darknet', pts, r.ms, o.batch, o.skip, loadStart, r.timedOut ? `timed out after ${(o.timeoutMs / 1000).toFixed(0)} s` : r.code !== 0 && pts.length < o.iterations
    ? `exit code ${r.code}: ${r.lines.slice(-3).map((x) => x.line.trim()).join(' | ')}` : undefined);
}

/** A DemoJobRun from iteration points. */
export function jobRun(engine: string, pts: readonly IterationPoint[], wallMs: number, batch: number, skip: number, loadStart: number[], error?: string): DemoJobRun {
  const last = pts[pts.length - 1];
  const s = steadyRate(pts, batch, skip);
  const iterations = last?.iteration ?? 0;
  return {
    engine, iterations, images: iterations * batch, wall_s: wallMs / 1000, img_per_s_total: (iterations * batch) / (wallMs / 1000),
    img_per_s: s.rate, steady_from: s.from, loss_first: pts[0]?.loss ?? NaN, loss_last: last?.loss ?? NaN,
    loadavg_start: loadStart, loadavg_end: os.loadavg(), ...(error || !pts.length ? { error: error ?? 'no iteration lines' } : {}),
  };
}

/** yolo-wgsl's trainer on the same job, as `make demo` trains (src/cli/demo.ts): YOLOv5 loss, seed 0. */
export async function oursTrainJob(gpu: Gpu, o: { cfg: string; data: string; dir: string; iterations: number; batch: number; skip: number; log?: (l: string) => void }): Promise<DemoJobRun> {
  const { runTrain } = await import('../../src/cli/train.js');
  const pts: IterationPoint[] = [];
  const loadStart = os.loadavg();
  const t0 = performance.now();
  const every = Math.max(1, Math.round(o.iterations / 8));
  let error: string | undefined;
  let wait: { data_wait_s: number; loop_s: number } | undefined;
  try {
    const res = await runTrain({
      cfg: o.cfg, data: o.data, subdivisions: 1, maxBatches: o.iterations, loss: 'yolov5', out: o.dir, name: 'yolo-wgsl', existOk: true,
      valEvery: 0, seed: 0, progress: 'lines', logEvery: 1, gpu, cwd: o.dir,
      log: (l) => {
        const m = /\biter (\d+)\s+loss ([-\w.+]+)/.exec(l);
        if (!m) return;
        const p = { iteration: Number(m[1]), t_ms: performance.now() - t0, loss: Number(m[2]) };
        pts.push(p);
        if (p.iteration % every === 0 || p.iteration === 1) o.log?.(`yolo-wgsl demo job: iteration ${p.iteration}, loss ${p.loss.toPrecision(4)}`);
      },
    });
    wait = { data_wait_s: res.dataWaitMs / 1000, loop_s: res.loopMs / 1000 };
  } catch (e) {
    error = (e as Error).message.split('\n')[0];
  }
  return { ...jobRun('yolo-wgsl', pts, performance.now() - t0, o.batch, o.skip, loadStart, error), ...wait };
}

/** Darknet's inference time on `cfg` at `size`, batch 1 (see the file comment): first and median ms. */
export async function darknetInfer(bin: string, o: { cfg: string; weights: string; size: number; classes: number; image: string; dir: string; calls: number; timeoutMs: number }): Promise<{ first_ms: number; ms: number; ms_min: number; samples: number; error?: string }> {
  fs.mkdirSync(o.dir, { recursive: true });
  const cfg = path.join(o.dir, `infer-${o.size}.cfg`);
  fs.writeFileSync(cfg, cfgWithNet(fs.readFileSync(o.cfg, 'utf8'), { width: o.size, height: o.size, batch: 1, subdivisions: 1 }));
  const names = path.join(o.dir, 'infer.names');
  fs.writeFileSync(names, Array.from({ length: o.classes }, (_, i) => `class${i}`).join('\n') + '\n');
  const data = path.join(o.dir, 'infer.data');
  fs.writeFileSync(data, `classes = ${o.classes}\nnames = ${names}\n`);
  // test_detector loads the label font from data/labels relative to its working folder
  const labels = path.join(path.dirname(path.resolve(bin)), 'data', 'labels');
  const here = path.join(o.dir, 'data');
  if (fs.existsSync(labels) && !fs.existsSync(path.join(here, 'labels'))) {
    fs.mkdirSync(here, { recursive: true });
    fs.symlinkSync(labels, path.join(here, 'labels'));
  }
  const stdin = `${Array.from({ length: o.calls + 1 }, () => path.resolve(o.image)).join('\n')}\n`;
  const r = await runTimed(path.resolve(bin), ['detector', 'test', data, cfg, o.weights, '-dont_show', '-thresh', '0.999'], { cwd: o.dir, timeoutMs: o.timeoutMs, stdin });
  const ms = r.lines.map((l) => /Predicted in ([\d.]+) milli-seconds/.exec(l.line)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1]));
  const rest = ms.slice(1);
  const sorted = [...rest].sort((a, b) => a - b);
  const med = sorted.length ? (sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2) : NaN;
  const error = r.timedOut ? `timed out after ${(o.timeoutMs / 1000).toFixed(0)} s` : !rest.length ? `no timings printed (exit code ${r.code}: ${r.lines.slice(-2).map((x) => x.line.trim()).join(' | ')})` : undefined;
  return { first_ms: ms[0] ?? NaN, ms: med, ms_min: sorted[0] ?? NaN, samples: rest.length, ...(error ? { error } : {}) };
}
