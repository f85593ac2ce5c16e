/**
 * `yolo-wgsl bench ...`: wires the CLI to the benches. kernels, network and profile are part of the package
 * (src/perf/); peers and chart compare against TF.js and ONNX Runtime (devDependencies) and live in the
 * checkout's bench/, which the package does not ship: they are reached only through loadCheckoutBench.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gpu } from '../gpu/device.js';
import { checkPrecision } from '../darknet/precision.js';

/** The options `bench peers` passes to bench/peers.ts benchPeers. */
export interface CheckoutPeersRun {
  cfg: string;
  weights?: string;
  gpu?: Gpu;
  inferSizes?: number[];
  inferBatch?: number;
  trainSize?: number;
  trainBatches?: number[];
  engines?: string[];
  yoloLoss?: boolean;
  iters?: number;
  minIters?: number;
  budgetSeconds?: number;
  tolerance?: number;
  quick?: boolean;
  /** An AlexeyAB Darknet binary: Darknet on the demo training job and at inference (bench/peers/darknet.ts). */
  darknet?: string;
  /** Training iterations of the demo job (Darknet and yolo-wgsl). */
  darknetIters?: number;
  log?: (line: string) => void;
}

/**
 * What the CLI uses of the checkout-only modules bench/peers.ts and bench/chart.ts, typed here so that
 * neither tsc nor the package build follows an import into bench/ (test/arch/imports.test.ts checks that
 * bench/ still provides this shape).
 */
export interface CheckoutBench {
  peers: {
    benchPeers(opts: CheckoutPeersRun): Promise<unknown>;
    formatPeersBench(result: unknown): string;
  };
  chart: {
    writeBenchChart(file: string, network: unknown, peers: unknown): void;
  };
}

/**
 * The one way from src/ into the checkout's bench/ (test/arch/imports.test.ts allows no other): bench/<what>
 * beside src/ (sources through tsx) or dist/bench/<what>.js beside dist/src/ (`make build`). An installed
 * package has neither, and says so instead of failing on a module path. `from`: the URL the bench/ folder is
 * found from (tests).
 */
export async function loadCheckoutBench<K extends keyof CheckoutBench>(what: K, from: string = import.meta.url): Promise<CheckoutBench[K]> {
  const url = new URL(`../../bench/${what}.js`, from);
  const file = fileURLToPath(url);
  if (!fs.existsSync(file) && !fs.existsSync(file.replace(/\.js$/, '.ts'))) {
    throw new Error(`bench ${what} needs a checkout (bench/ with its devDependencies${what === 'peers' ? ': TF.js, onnxruntime-node' : ''}), which the npm package does not ship: `
      + `clone the yolo-wgsl repository, run \`make deps\` there, then \`node bin/yolo-wgsl.js bench ${what} ...\` `
      + `(not found: ${path.relative(process.cwd(), file) || file}; in a checkout whose dist/ lacks bench/, \`make build\` compiles it)`);
  }
  return (await import(url.href)) as CheckoutBench[K];
}

/** `yolo-wgsl bench kernels`: src/perf/kernels.ts. */
export async function runBenchKernels(opts: { size: number; iters?: number; json?: string; md?: string; quick?: boolean; variants?: string[]; passes?: string[]; layers?: number[]; peak?: boolean }): Promise<void> {
  const { benchKernels, formatKernelBench } = await import('../perf/kernels.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const r = await benchKernels(gpu, {
      size: opts.size, iters: opts.iters, json: opts.json, quick: opts.quick, variants: opts.variants,
      passes: opts.passes as ('fwd' | 'bwd_data' | 'bwd_weights')[] | undefined, layers: opts.layers, peak: opts.peak, log: (l: string) => console.log(l),
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
  /** A fast case repeats until its samples add up to this many seconds (NetworkBenchOptions.minSeconds). */
  minSeconds?: number;
  quick?: boolean;
  json?: string;
  md?: string;
  out?: string;
  /** Measure the device peak first (default true). */
  peak?: boolean;
  /** Inference precision: auto (default), f32, f16 (src/darknet/precision.ts). */
  precision?: string;
}

/** `yolo-wgsl bench network`: src/perf/network.ts; prints the markdown report, writes JSON / markdown when asked. */
export async function runBenchNetwork(o: BenchNetworkCli): Promise<void> {
  const { benchNetwork, formatNetworkBench, writeResultJson } = await import('../perf/network.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const files = outFiles('network', gpu, o.cfg, o);
    const r = await benchNetwork({
      cfg: o.cfg, weights: o.weights, gpu, sizes: nums(o.sizes), inferBatches: nums(o.batches), trainSizes: nums(o.trainSizes),
      trainBatches: o.trainBatches === '' ? [] : nums(o.trainBatches), loss: o.loss as 'darknet' | undefined,
      sweepBatches: o.sweepBatches === '' ? [] : nums(o.sweepBatches), sweepSizes: o.sweepSizes === '' ? [] : nums(o.sweepSizes),
      iters: o.iters, minIters: o.minIters, budgetSeconds: o.budget, minSeconds: o.minSeconds, quick: o.quick, peak: o.peak, log: (l: string) => console.log(l),
      precision: o.precision === undefined ? undefined : checkPrecision(o.precision, '--precision'),
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
  darknet?: string;
  darknetIters?: number;
}

/** `yolo-wgsl bench peers`: bench/peers.ts (a checkout only: loadCheckoutBench). */
export async function runBenchPeers(o: BenchPeersCli): Promise<void> {
  const { benchPeers, formatPeersBench } = await loadCheckoutBench('peers');
  const { writeResultJson } = await import('../perf/network.js');
  const gpu = await Gpu.create({ log: (l) => console.log(l) });
  try {
    const files = outFiles('peers', gpu, o.cfg, o);
    const r = await benchPeers({
      cfg: o.cfg, weights: o.weights, gpu, inferSizes: nums(o.sizes), inferBatch: o.batch, trainSize: o.trainSize,
      trainBatches: o.trainBatches === '' ? [] : nums(o.trainBatches), engines: list(o.engines), yoloLoss: o.yoloLoss,
      iters: o.iters, minIters: o.minIters, budgetSeconds: o.budget, tolerance: o.tolerance, quick: o.quick, darknet: o.darknet, darknetIters: o.darknetIters,
      log: (l: string) => console.log(l),
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
 * `yolo-wgsl bench chart`: bench/chart.ts (a checkout only: loadCheckoutBench) from saved results:
 * --network X.json and/or --peers Y.json and --png out.png; or --out DIR --cfg CFG: the newest
 * DIR/peers-<adapter>-<cfg>.json, the network result of the same adapter and cfg, written to
 * DIR/bench-<adapter>-<cfg>.png.
 */
export async function runBenchChart(o: { network?: string; peers?: string; png?: string; out?: string; cfg?: string }): Promise<void> {
  const { writeBenchChart } = await loadCheckoutBench('chart');
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

/** `bench profile`: device time per kernel of one forward or training step (src/perf/profile.ts). */
export async function runBenchProfile(opts: { cfg: string; img?: number; batch?: number; train?: boolean; loss?: 'darknet' | 'yolov5' | 'sumsq'; steps?: number; json?: string; byGrid?: boolean }): Promise<void> {
  const { profileNetwork, formatProfile } = await import('../perf/profile.js');
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
