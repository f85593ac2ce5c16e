/**
 * img/s of training in a browser tab beside Node's, on this machine's CPU adapters (docs/browser.md,
 * "Measured"): examples/browser/train.html in headless Chromium on SwiftShader (Chromium's own software
 * adapter) and on Mesa lavapipe (Chromium's OpenGL ES WebGPU backend over ANGLE on Vulkan lavapipe,
 * ?adapter=compat: test/helpers/browser.ts launchChromium), and Node's trainOnFiles on lavapipe (Vulkan) and on
 * Dawn's GL backend (Mesa llvmpipe), on the same files and settings as test/examples/browser-train.test.ts
 * (yolo-mini at 64 px, burn_in=0, 16 + 4 generated images, 24 updates of 4, augmentation on, seed 4, val every
 * epoch). Samples are interleaved (A, B, C, D, A, B, ...) and each line says the load averages, as other jobs
 * may share the machine, and how far its losses are from Node lavapipe's.
 *
 *   node --import tsx scripts/bench-browser-train.ts [samples=3] [--only chromium-swiftshader,node-lavapipe,...]
 *
 * Per run: img/s as the trainer reports it (the median over updates 5-24; the page shows the same number),
 * and the wall time of updates 2-24 (validation included) as images per second.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEngine, loadDarknet, type Engine } from '../src/index.js';
import { trainOnFiles } from '../src/api/train_files.js';
import { generateSynth } from '../src/data/synth.js';
import { packageRoot } from '../src/util/paths.js';
import { findChromium, lavapipeIcd, launchChromium, serveCheckout } from '../test/helpers/browser.js';
import { readTree } from '../test/helpers/files.js';

const root = packageRoot();
const args = process.argv.slice(2);
const samples = Number(args.find((a) => /^\d+$/.test(a)) ?? 3);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-bench-browser-train-'));
const ITER = 24, BATCH = 4, SEED = 4;

type Run = { adapter: string; ips: number; wallIps: number; seconds: number; losses: number[] };
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const load = () => os.loadavg().map((v) => v.toFixed(2)).join(' ');

function summarize(adapter: string, rates: { iteration: number; imagesPerSec: number; seconds: number }[], losses: number[]): Run {
  const steady = rates.filter((r) => r.iteration >= 5).map((r) => r.imagesPerSec);
  const t1 = rates.find((r) => r.iteration === 1)!.seconds, tN = rates.find((r) => r.iteration === ITER)!.seconds;
  return { adapter, ips: median(steady), wallIps: ((ITER - 1) * BATCH) / (tN - t1), seconds: tN - t1, losses };
}

async function main(): Promise<void> {
  const synth = generateSynth({ out: path.join(tmp, 'shapes'), trainCount: 16, valCount: 4, size: 64, seed: 3 });
  const label = path.join(synth.out, 'labels/train/000002.txt');
  fs.appendFileSync(label, '7 0.5 0.5 0.2 0.2\n'); // the test's bad line
  const cfgText = fs.readFileSync(path.join(root, 'fixtures/cfg/yolo-mini.cfg'), 'utf8').replace('burn_in=100', 'burn_in=0');
  const cfgFile = path.join(tmp, 'mini.cfg');
  fs.writeFileSync(cfgFile, cfgText);
  const files = readTree(synth.out, path.basename(synth.out));

  const { exe, why } = await findChromium();
  const bundle = path.join(tmp, 'yolo-wgsl.js');
  if (exe) {
    const { buildBrowser } = (await import(path.join(root, 'scripts/build-browser.mjs'))) as { buildBrowser: (o: { outfile: string; minify?: boolean }) => Promise<unknown> };
    await buildBrowser({ outfile: bundle, minify: true });
  } else console.log(`no Chromium (${why}): Node only`);
  const { server, port } = await serveCheckout({ '/bundle.js': bundle, '/mini.cfg': cfgFile });

  const chromium = async (adapter: 'swiftshader' | 'lavapipe') => {
    const browser = await launchChromium(exe!, adapter);
    return {
      browser,
      async run(): Promise<Run> {
        const ctx = await browser.newContext();
        const tab = await ctx.newPage();
        const q = new URLSearchParams({ bundle: '/bundle.js', cfg: '/mini.cfg', size: '64', iterations: String(ITER), batch: String(BATCH), seed: String(SEED), save: '4', ...(adapter === 'lavapipe' ? { adapter: 'compat' } : {}) });
        await tab.goto(`http://127.0.0.1:${port}/examples/browser/train.html?${q}`);
        await tab.waitForFunction('window.__train?.ready === true || window.__train?.error != null', null, { timeout: 120_000 });
        await tab.setInputFiles('#folder', synth.out);
        await tab.waitForFunction('window.__train.dataset !== null || window.__train.error !== null', null, { timeout: 60_000 });
        await tab.click('#start');
        await tab.waitForFunction("['done', 'stopped', 'error'].includes(window.__train.phase)", null, { timeout: 600_000 });
        const s = (await tab.evaluate('window.__train')) as { error: string | null; adapter: string; rates: { iteration: number; imagesPerSec: number; seconds: number }[]; losses: { loss: number }[] };
        await ctx.close();
        if (s.error) throw new Error(`Chromium (${adapter}): ${s.error}`);
        return summarize(`Chromium ${adapter}: ${s.adapter}`, s.rates, s.losses.map((l) => l.loss));
      },
    };
  };
  const node = (backend: 'lavapipe' | 'gl') => {
    let engine: Engine | undefined;
    return {
      async run(): Promise<Run> {
        engine ??= await createEngine({ backend });
        const model = await loadDarknet({ engine, cfg: cfgText, cfgName: 'mini.cfg', width: 64, height: 64, seed: SEED + 1 });
        const rates: { iteration: number; imagesPerSec: number; seconds: number }[] = [];
        const losses: number[] = [];
        const t0 = performance.now();
        await trainOnFiles({ model, files, maxBatches: ITER, batch: BATCH, subdivisions: 1, seed: SEED, augment: true, valFraction: 0.1, onProgress: (p) => { rates.push({ iteration: p.iteration, imagesPerSec: p.imagesPerSec, seconds: (performance.now() - t0) / 1000 }); losses.push(p.loss); } }).done;
        model.dispose();
        return summarize(`Node ${backend}: ${engine.adapterInfo.summary}`, rates, losses);
      },
    };
  };

  const legs: [string, () => Promise<{ run: () => Promise<Run>; browser?: { close: () => Promise<void> } }>][] = [['node-lavapipe', async () => node('lavapipe')]];
  if (exe) legs.push(['chromium-swiftshader', () => chromium('swiftshader')]);
  if (exe && lavapipeIcd()) legs.push(['chromium-lavapipe', () => chromium('lavapipe')]);
  legs.push(['node-gl', async () => node('gl')]);
  const chosen = legs.filter(([k]) => !only || only.includes(k));
  const made = new Map<string, { run: () => Promise<Run>; browser?: { close: () => Promise<void> } }>();
  const all = new Map<string, Run[]>();
  try {
    for (let i = 0; i < samples; i++) {
      for (const [key, make] of chosen) {
        if (!made.has(key)) made.set(key, await make());
        const before = load();
        const r = await made.get(key)!.run();
        all.set(key, [...(all.get(key) ?? []), r]);
        const ref = all.get('node-lavapipe')?.[0]?.losses;
        const vs = ref && key !== 'node-lavapipe' ? `, max relative loss difference from Node lavapipe ${Math.max(...r.losses.map((l, k) => Math.abs(l - ref[k]) / Math.abs(ref[k]))).toExponential(1)}` : '';
        console.log(`${key.padEnd(21)} sample ${i + 1}: ${r.ips.toFixed(1)} img/s (trainer), ${r.wallIps.toFixed(1)} img/s (wall, updates 2-${ITER} with val: ${r.seconds.toFixed(1)} s); loss ${r.losses[0].toFixed(1)} -> ${r.losses[ITER - 1].toFixed(1)}${vs}; load ${before} -> ${load()}`);
      }
    }
  } finally {
    for (const m of made.values()) await m.browser?.close();
    server.close();
  }
  console.log('\nranges over the samples:');
  for (const [key, runs] of all) {
    const lo = (f: (r: Run) => number) => Math.min(...runs.map(f)).toFixed(1), hi = (f: (r: Run) => number) => Math.max(...runs.map(f)).toFixed(1);
    console.log(`  ${key.padEnd(21)} ${lo((r) => r.ips)}-${hi((r) => r.ips)} img/s (trainer), ${lo((r) => r.wallIps)}-${hi((r) => r.wallIps)} img/s (wall), ${lo((r) => r.seconds)}-${hi((r) => r.seconds)} s  [${runs[0].adapter}]`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

await main();
