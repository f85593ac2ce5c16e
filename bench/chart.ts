/**
 * One PNG from one bench run (src/viz/plot.ts linePlot at 100 dpi, four panels composed 2x2):
 *   1. inference at batch 1, log10 ms vs input size, every engine of the peers bench (+ our own size sweep
 *      from the network bench);
 *   2. training step, log10 ms vs batch, every engine with training (+ ours with the real YOLO loss);
 *   3. yolo-wgsl inference ms vs batch (network bench sweep): a straight line through the origin is linear;
 *   4. yolo-wgsl inference ms vs megapixels at batch 1 (network bench sweep).
 */
import { linePlot, seriesColor, type Series } from '../src/viz/plot.js';
import { makeRgba, writePng, type Color, type RgbaImage } from '../src/viz/draw.js';
import type { NetworkBenchResult } from '../src/perf/network.js';
import type { PeersBenchResult } from './peers.js';

const W = 760;
const H = 480;

function blit(dst: RgbaImage, src: RgbaImage, x0: number, y0: number): void {
  for (let y = 0; y < src.height; y++) {
    const s = y * src.width * 4;
    dst.data.set(src.data.subarray(s, s + src.width * 4), ((y0 + y) * dst.width + x0) * 4);
  }
}

function empty(title: string): RgbaImage {
  return linePlot([], { width: W, height: H, title: `${title} (no data)`, legend: false });
}

/** The 2x2 chart (see the file comment); either result may be missing. */
export function benchChart(network: NetworkBenchResult | null, peers: PeersBenchResult | null): RgbaImage {
  const panels: RgbaImage[] = [];
  const engines = peers ? peers.engines.filter((e) => e.available).map((e) => e.name) : [];
  const PALETTE: Record<string, Color> = {
    'yolo-wgsl': [0, 90, 210], 'yolo-wgsl-replay': [90, 170, 255], 'tfjs-webgpu': [220, 30, 30], 'tfjs-wasm': [240, 150, 0], 'tfjs-cpu': [140, 90, 40], 'ort-cpu': [0, 160, 60], 'ort-webgpu': [150, 60, 200], darknet: [20, 20, 20],
  };
  const color = (name: string): Color => PALETTE[name] ?? seriesColor(Math.max(0, engines.indexOf(name)), Math.max(engines.length, 1) + 1);
  const log10 = (v: number) => (v > 0 ? Math.log10(v) : NaN);

  // 1. inference vs size
  {
    const series: Series[] = [];
    if (peers) {
      const cases = peers.cases.filter((c) => c.what === 'infer').sort((a, b) => a.size - b.size);
      for (const e of engines) {
        const pts = cases.map((c) => [c.size, c.results.find((r) => r.engine === e)?.ms ?? NaN] as const).filter(([, ms]) => Number.isFinite(ms));
        if (pts.length) series.push({ label: e, x: pts.map((p) => p[0]), y: pts.map((p) => log10(p[1])), color: color(e), width: 3 });
      }
    }
    if (network?.sweep.pixels.length) {
      const p = network.sweep.pixels;
      series.push({ label: 'yolo-wgsl sweep', x: p.map((q) => q.size), y: p.map((q) => log10(q.ms)), color: [120, 120, 120], width: 1 });
    }
    const b = peers?.cases.find((c) => c.what === 'infer')?.batch ?? 1;
    // the device's FMA peak (src/perf/peak.ts) and the network's best inference as a fraction of it
    const pk = network?.peak;
    const bestInfer = network?.infer.reduce<NetworkBenchResult['infer'][number] | null>((p, c) => (!p || c.gflops > p.gflops ? c : p), null);
    const peakNote = pk ? `; peak ${pk.gflops.toFixed(1)} GFLOP/s${bestInfer ? `, best ${(100 * bestInfer.gflops / pk.gflops).toFixed(0)}%` : ''}` : '';
    panels.push(series.length ? linePlot(series, { width: W, height: H, title: `inference b${b}: log10 ms vs size${peakNote}`, xlabel: 'input size (px)', ylabel: 'log10 ms' }) : empty('inference vs size'));
  }
  // 2. training vs batch
  {
    const series: Series[] = [];
    if (peers) {
      const cases = peers.cases.filter((c) => c.what === 'train' && c.loss !== 'darknet').sort((a, b) => a.batch - b.batch);
      for (const e of engines) {
        const pts = cases.map((c) => [c.batch, c.results.find((r) => r.engine === e)?.ms ?? NaN] as const).filter(([, ms]) => Number.isFinite(ms));
        if (pts.length) series.push({ label: `${e} (sum sq.)`, x: pts.map((p) => p[0]), y: pts.map((p) => log10(p[1])), color: color(e), width: 3 });
      }
      const yl = peers.cases.filter((c) => c.loss === 'darknet').sort((a, b) => a.batch - b.batch).filter((c) => Number.isFinite(c.results[0]?.ms));
      if (yl.length) series.push({ label: 'yolo-wgsl (YOLO loss)', x: yl.map((c) => c.batch), y: yl.map((c) => log10(c.results[0].ms)), color: [120, 120, 120], width: 1 });
    }
    const s = peers?.cases.find((c) => c.what === 'train')?.size;
    panels.push(series.length ? linePlot(series, { width: W, height: H, title: `training step${s ? ` at ${s}` : ''}: log10 ms vs batch`, xlabel: 'batch', ylabel: 'log10 ms' }) : empty('training step vs batch'));
  }
  // 3. ours: ms vs batch
  {
    const p = network?.sweep.batch ?? [];
    const cpu = p.map((q) => q.cpu_ms ?? NaN);
    panels.push(p.length > 1
      ? linePlot([
        { label: 'wall ms', x: p.map((q) => q.batch), y: p.map((q) => q.ms), color: color('yolo-wgsl'), width: 3 },
        { label: 'process CPU ms', x: p.map((q) => q.batch), y: cpu, color: [120, 120, 120], width: 2 },
      ], {
        width: W, height: H, title: `yolo-wgsl inference at ${p[0].size}: ms vs batch`, xlabel: 'batch', ylabel: 'ms',
        xlim: [0, Math.max(...p.map((q) => q.batch))], ylim: [0, Math.max(...p.map((q) => q.ms), ...cpu.filter(Number.isFinite)) * 1.05],
      })
      : empty('ms vs batch'));
  }
  // 4. ours: ms vs megapixels
  {
    const p = network?.sweep.pixels ?? [];
    const mp = p.map((q) => (q.size * q.size) / 1e6);
    const cpu = p.map((q) => q.cpu_ms ?? NaN);
    panels.push(p.length > 1
      ? linePlot([
        { label: 'wall ms', x: mp, y: p.map((q) => q.ms), color: color('yolo-wgsl'), width: 3 },
        { label: 'process CPU ms', x: mp, y: cpu, color: [120, 120, 120], width: 2 },
      ], {
        width: W, height: H, title: 'yolo-wgsl inference b1: ms vs megapixels', xlabel: 'megapixels (size^2 / 1e6)', ylabel: 'ms',
        xlim: [0, Math.max(...mp)], ylim: [0, Math.max(...p.map((q) => q.ms), ...cpu.filter(Number.isFinite)) * 1.05],
      })
      : empty('ms vs pixels'));
  }
  const out = makeRgba(2 * W, 2 * H, [255, 255, 255]);
  panels.forEach((p, i) => blit(out, p, (i % 2) * W, Math.floor(i / 2) * H));
  return out;
}

/** Writes the chart PNG. */
export function writeBenchChart(file: string, network: NetworkBenchResult | null, peers: PeersBenchResult | null): void {
  writePng(file, benchChart(network, peers));
}
