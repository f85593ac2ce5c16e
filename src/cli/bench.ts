/** `yolo-wgsl bench kernels`: wires the CLI to bench/kernels.ts. */
import { Gpu } from '../gpu/device.js';

export async function runBenchKernels(opts: { size: number; iters?: number; json?: string; md?: string; quick?: boolean; variants?: string[]; passes?: string[]; layers?: number[] }): Promise<void> {
  const { benchKernels, formatKernelBench } = await import('../../bench/kernels.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await benchKernels(gpu, {
      size: opts.size, iters: opts.iters, json: opts.json, quick: opts.quick, variants: opts.variants,
      passes: opts.passes as ('fwd' | 'bwd_data' | 'bwd_weights')[] | undefined, layers: opts.layers, log: (l: string) => console.log(l),
    });
    const md = formatKernelBench(r);
    console.log(md);
    if (opts.md) {
      await writeText(opts.md, `# bench kernels (size ${opts.size})\n\n${md}\n`);
      console.log(`wrote ${opts.md}`);
    }
  } finally {
    gpu.dispose();
  }
}

const list = (v?: string): string[] | undefined => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
const nums = (v?: string): number[] | undefined => list(v)?.map((x) => {
  const n = Number(x);
  if (!Number.isFinite(n)) throw new Error(`not a number: '${x}'`);
  return n;
});

/** `<dir>/<what>-<adapter kind>-<cfg name>.{json,md}` when `out` (a folder) is given; explicit json/md win. */
function outFiles(what: string, gpu: Gpu, cfg: string, o: { out?: string; json?: string; md?: string }): { json?: string; md?: string } {
  if (!o.out) return { json: o.json, md: o.md };
  const base = `${o.out.replace(/\/+$/, '')}/${what}-${gpu.info.kind}-${cfg.split('/').pop()!.replace(/\.cfg$/, '')}`;
  return { json: o.json ?? `${base}.json`, md: o.md ?? `${base}.md` };
}

async function writeText(file: string, text: string): Promise<void> {
  const { writeFileAtomic } = await import('../util/fs.js');
  const fs = await import('node:fs');
  const path = await import('node:path');
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, text.endsWith('\n') ? text : `${text}\n`);
}

export interface BenchNetworkCli {
  cfg: string;
  weights?: string;
  sizes?: string;
  batches?: string;
  trainSizes?: string;
  trainBatches?: string;
  loss?: string;
  sweepBatches?: string;
  sweepSizes?: string;
  iters?: number;
  minIters?: number;
  budget?: number;
  quick?: boolean;
  json?: string;
  md?: string;
  out?: string;
}

/** `yolo-wgsl bench network`: bench/network.ts; prints the markdown report, writes JSON / markdown when asked. */
export async function runBenchNetwork(o: BenchNetworkCli): Promise<void> {
  const { benchNetwork, formatNetworkBench, writeResultJson } = await import('../../bench/network.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const files = outFiles('network', gpu, o.cfg, o);
    const r = await benchNetwork({
      cfg: o.cfg, weights: o.weights, gpu, sizes: nums(o.sizes), inferBatches: nums(o.batches), trainSizes: nums(o.trainSizes),
      trainBatches: o.trainBatches === '' ? [] : nums(o.trainBatches), loss: o.loss as 'darknet' | undefined,
      sweepBatches: o.sweepBatches === '' ? [] : nums(o.sweepBatches), sweepSizes: o.sweepSizes === '' ? [] : nums(o.sweepSizes),
      iters: o.iters, minIters: o.minIters, budgetSeconds: o.budget, quick: o.quick, log: (l: string) => console.log(l),
    });
    const md = formatNetworkBench(r);
    console.log('');
    console.log(md);
    if (files.json) writeResultJson(files.json, r);
    if (files.md) await writeText(files.md, `# bench network: ${o.cfg}\n\n${md}\n`);
    for (const f of [files.json, files.md]) if (f) console.log(`wrote ${f}`);
  } finally {
    gpu.dispose();
  }
}

export interface BenchPeersCli {
  cfg: string;
  weights?: string;
  sizes?: string;
  batch?: number;
  trainSize?: number;
  trainBatches?: string;
  engines?: string;
  yoloLoss?: boolean;
  iters?: number;
  minIters?: number;
  budget?: number;
  tolerance?: number;
  quick?: boolean;
  json?: string;
  md?: string;
  out?: string;
}

/** `yolo-wgsl bench peers`: bench/peers.ts. */
export async function runBenchPeers(o: BenchPeersCli): Promise<void> {
  const { benchPeers, formatPeersBench } = await import('../../bench/peers.js');
  const { writeResultJson } = await import('../../bench/network.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const files = outFiles('peers', gpu, o.cfg, o);
    const r = await benchPeers({
      cfg: o.cfg, weights: o.weights, gpu, inferSizes: nums(o.sizes), inferBatch: o.batch, trainSize: o.trainSize,
      trainBatches: o.trainBatches === '' ? [] : nums(o.trainBatches), engines: list(o.engines) as never, yoloLoss: o.yoloLoss,
      iters: o.iters, minIters: o.minIters, budgetSeconds: o.budget, tolerance: o.tolerance, quick: o.quick, log: (l: string) => console.log(l),
    });
    const md = formatPeersBench(r);
    console.log('');
    console.log(md);
    if (files.json) writeResultJson(files.json, r);
    if (files.md) await writeText(files.md, `# bench peers: ${o.cfg}\n\n${md}\n`);
    for (const f of [files.json, files.md]) if (f) console.log(`wrote ${f}`);
  } finally {
    gpu.dispose();
  }
}

/**
 * `yolo-wgsl bench chart`: bench/chart.ts from saved results: --network X.json and/or --peers Y.json and
 * --png out.png; or --out DIR --cfg CFG: the newest DIR/peers-<adapter>-<cfg>.json, the network result of
 * the same adapter and cfg, written to DIR/bench-<adapter>-<cfg>.png.
 */
export async function runBenchChart(o: { network?: string; peers?: string; png?: string; out?: string; cfg?: string }): Promise<void> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { writeBenchChart } = await import('../../bench/chart.js');
  let { network, peers, png } = o;
  if (o.out && !network && !peers) {
    if (!o.cfg) throw new Error('bench chart --out DIR needs --cfg (the cfg the results are for)');
    const name = o.cfg.split('/').pop()!.replace(/\.cfg$/, '');
    const newest = (prefix: string) => fs.readdirSync(o.out!).filter((f) => f.startsWith(`${prefix}-`) && f.endsWith(`-${name}.json`))
      .map((f) => path.join(o.out!, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
    peers = newest('peers');
    const adapter = peers ? path.basename(peers).slice('peers-'.length, -`-${name}.json`.length) : undefined;
    const net = adapter ? path.join(o.out, `network-${adapter}-${name}.json`) : newest('network');
    network = net && fs.existsSync(net) ? net : undefined;
    const tag = adapter ?? (network ? path.basename(network).slice('network-'.length, -`-${name}.json`.length) : 'none');
    png ??= path.join(o.out, `bench-${tag}-${name}.png`);
  }
  if (!png) throw new Error('bench chart needs --png FILE (or --out DIR --cfg CFG)');
  if (!network && !peers) throw new Error('bench chart: no results to draw (give --network and/or --peers, or --out DIR --cfg CFG after bench network/peers --out DIR)');
  const read = (f?: string) => (f ? JSON.parse(fs.readFileSync(f, 'utf8')) : null);
  fs.mkdirSync(path.dirname(path.resolve(png)), { recursive: true });
  writeBenchChart(png, read(network), read(peers));
  console.log(`wrote ${png}${network ? ` (network: ${network})` : ''}${peers ? ` (peers: ${peers})` : ''}`);
}

/** `bench profile`: device time per kernel of one forward or training step (bench/profile.ts). */
export async function runBenchProfile(opts: { cfg: string; img?: number; batch?: number; train?: boolean; loss?: 'darknet' | 'yolov5' | 'sumsq'; steps?: number; json?: string; byGrid?: boolean }): Promise<void> {
  const { profileNetwork, formatProfile } = await import('../../bench/profile.js');
  const { writeFileAtomic } = await import('../util/fs.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await profileNetwork(gpu, { cfg: opts.cfg, img: opts.img, batch: opts.batch, train: opts.train, loss: opts.loss, steps: opts.steps, byGrid: opts.byGrid });
    console.log(formatProfile(r));
    if (opts.json) writeFileAtomic(opts.json, `${JSON.stringify(r, null, 2)}\n`);
  } finally {
    gpu.dispose();
  }
}
