/**
 * Runs the kernel bench from the command line:
 *   node --import tsx bench/run-kernels.ts [--size N] [--json FILE] [--iters N] [--min-iters N] [--budget SECONDS]
 *                                          [--variants a,b] [--passes fwd,bwd_data] [--layers 0,2] [--quick] [--no-peak]
 * The adapter follows YOLO_WGSL_BACKEND (auto | gpu | lavapipe | gl). --quick: size 96 (unless given) and
 * benchKernels' quick mode (fewer repeats, only the best matmul config at the larger size).
 */
import { execFileSync } from 'node:child_process';
import { Gpu } from '../src/gpu/device.js';
import { benchKernels, formatKernelBench, writeJson, type KernelBenchOptions } from '../src/perf/kernels.js';
import type { ConvPass } from '../src/tensor/ops/conv2d.js';

function parseArgs(argv: string[]): KernelBenchOptions & { quick: boolean } {
  const o: KernelBenchOptions & { quick: boolean } = { quick: false };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--size') o.size = Number(next());
    else if (a === '--json') o.json = next();
    else if (a === '--iters') o.iters = Number(next());
    else if (a === '--min-iters') o.minIters = Number(next());
    else if (a === '--budget') o.budgetSeconds = Number(next());
    else if (a === '--variants') o.variants = list(next());
    else if (a === '--passes') o.passes = list(next()) as ConvPass[];
    else if (a === '--layers') o.layers = list(next()).map(Number);
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-peak') o.peak = false;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node --import tsx bench/run-kernels.ts [--size N] [--json FILE] [--iters N] [--min-iters N] [--budget SECONDS] [--variants a,b] [--passes fwd,bwd_data,bwd_weights] [--layers 0,2] [--quick] [--no-peak]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.quick) o.size ??= 96;
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const git = (args: string[]) => {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trimEnd();
  } catch {
    return '';
  }
};
// The kernels measured: the commit plus whatever tracked kernel/op files differ from it, taken before the
// run (the runtime reads a kernel file when its first pipeline is compiled; other engineers may commit or
// edit kernels while a long run is under way).
const commit = git(['rev-parse', '--short', 'HEAD']).trim();
const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'kernels', 'src/tensor/ops']).split('\n').filter(Boolean).map((l) => l.slice(3));
const gpu = await Gpu.create({ log: (l) => console.log(l) });
try {
  const { json, quick, ...rest } = opts;
  const r = await benchKernels(gpu, { ...rest, quick, log: (l) => console.log(l) });
  if (json) writeJson(json, { ...r, git: { commit, dirty, note: 'HEAD and modified kernel/op files when the run started' } });
  console.log('');
  console.log(formatKernelBench(r));
  if (commit) console.log(`(git ${commit}${dirty.length ? `, modified: ${dirty.join(' ')}` : ''}${json ? `; JSON in ${json}` : ''})`);
} finally {
  gpu.dispose();
}
