/** `yolo-wgsl bench kernels`: wires the CLI to bench/kernels.ts. */
import { Gpu } from '../gpu/device.js';

export async function runBenchKernels(opts: { size: number; iters?: number; json?: string; quick?: boolean; variants?: string[]; passes?: string[]; layers?: number[] }): Promise<void> {
  const { benchKernels, formatKernelBench } = await import('../../bench/kernels.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await benchKernels(gpu, {
      size: opts.size, iters: opts.iters, json: opts.json, quick: opts.quick, variants: opts.variants,
      passes: opts.passes as ('fwd' | 'bwd_data' | 'bwd_weights')[] | undefined, layers: opts.layers, log: (l: string) => console.log(l),
    });
    console.log(formatKernelBench(r));
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

/** `yolo-wgsl bench chart --network X.json --peers Y.json --png out.png`: bench/chart.ts from saved results. */
export async function runBenchChart(o: { network?: string; peers?: string; png: string }): Promise<void> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { writeBenchChart } = await import('../../bench/chart.js');
  const read = (f?: string) => (f ? JSON.parse(fs.readFileSync(f, 'utf8')) : null);
  fs.mkdirSync(path.dirname(path.resolve(o.png)), { recursive: true });
  writeBenchChart(o.png, read(o.network), read(o.peers));
  console.log(`wrote ${o.png}`);
}
