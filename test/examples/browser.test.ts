/**
 * The browser bundle and page: the bundle holds no Node-only module; and, where Chromium is installed
 * (/usr/bin/chromium, or YOLO_WGSL_CHROMIUM), examples/browser/index.html run headless on Chromium's WebGPU
 * (SwiftShader on a machine without a GPU) detects the same objects as the Node engine on the same image.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet } from '../../src/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { generateSynth } from '../../src/data/synth.js';

const root = packageRoot();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-browser-'));
const bundle = path.join(tmp, 'yolo-wgsl.js');

type Built = { bytes: number; inputs: string[]; stubbed: Record<string, string[]> };
let built: Built | undefined;
async function build(): Promise<Built> {
  if (!built) {
    const { buildBrowser } = (await import(path.join(root, 'scripts/build-browser.mjs'))) as { buildBrowser: (o: { outfile: string; minify?: boolean }) => Promise<Built> };
    built = await buildBrowser({ outfile: bundle, minify: false });
  }
  return built;
}

test('browser bundle: no Node-only module inside; the browser adapter, kernels and host are', async () => {
  const b = await build();
  assert.ok(b.inputs.some((f) => f.endsWith('src/gpu/adapter.browser.ts')), 'navigator.gpu adapter');
  assert.ok(b.inputs.some((f) => f.endsWith('src/gpu/kernel-source.browser.ts')), 'inlined kernels');
  assert.ok(b.inputs.some((f) => f.endsWith('src/api/host.browser.ts')), 'browser host');
  for (const f of b.inputs) {
    assert.not.match(f, /node_modules\/(pngjs|jpeg-js|yaml|webgpu|@napi-rs|@fontsource)\//, `${f} is Node-only`);
    assert.not.match(f, /src\/viz\//, `${f}: drawing (Skia through @napi-rs/canvas) is Node-only`);
    assert.not.match(f, /src\/(gpu\/adapter|gpu\/kernel-source|api\/host|util\/paths|data\/loader|data\/worker|data\/dataset)\.ts$/, `${f} must not be in the browser bundle`);
  }
  const text = fs.readFileSync(bundle, 'utf8');
  assert.not.match(text, /\brequire\(["'](node:)?(fs|path|worker_threads)["']\)/);
  assert.not.match(text, /from ["']webgpu["']/);
  assert.ok(text.includes('fn main') || text.includes('@compute'), 'WGSL inlined');
  // only the file helpers of shared modules import (stubbed) Node built-ins
  for (const [mod, from] of Object.entries(b.stubbed)) {
    for (const f of from) assert.ok(/src\/(darknet\/cfg|darknet\/tree|darknet\/weights|data\/image|util\/fs|gpu\/tune-file)\.ts$/.test(f), `${mod} imported by ${f}`);
  }
});

function chromiumPath(): string | undefined {
  for (const p of [process.env.YOLO_WGSL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && fs.existsSync(p)) return p;
  return undefined;
}

test('browser page on headless Chromium WebGPU: same detections as the Node engine', async () => {
  const exe = chromiumPath();
  if (!exe) {
    console.log('  [skipped: browser end-to-end needs Chromium (apt-get install chromium, or set YOLO_WGSL_CHROMIUM); it is absent here]');
    return;
  }
  await build();
  const engine = new Engine(await getGpu());
  const cfg = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
  // seeded weights with detections on a synthetic shapes image (PNG: decoded exactly by both)
  const synth = generateSynth({ out: path.join(tmp, 'synth'), trainCount: 1, valCount: 1, size: 96, seed: 11 });
  const imgDir = path.join(path.dirname(synth.data), 'images', 'val');
  const imageFile = fs.existsSync(imgDir) ? path.join(imgDir, fs.readdirSync(imgDir).find((f) => f.endsWith('.png'))!) : findPng(path.dirname(synth.data));
  const model = await loadDarknet({ cfg, names: path.join(root, 'fixtures/cfg/yolo-mini.names'), engine, seed: 5 });
  const weights = path.join(tmp, 'mini.weights');
  await model.save(weights);
  // a threshold halfway between two well-separated scores, ~20 detections above it (random weights score
  // everything alike; a threshold on a tie would compare rounding, not detections)
  const all = (await model.detect(imageFile, { conf: 0.001, iou: 0.45, maxDet: 5000 })).map((d) => d.score).sort((a, b) => b - a);
  let k = Math.min(30, all.length - 1);
  while (k < all.length - 1 && all[k - 1] - all[k] < 1e-4) k++;
  const conf = (all[k - 1] + all[k]) / 2;
  const expected = await model.detect(imageFile, { conf, iou: 0.45 });
  model.dispose();

  const files: Record<string, string> = { '/bundle.js': bundle, '/bundle.js.map': `${bundle}.map`, '/w.weights': weights, '/img.png': imageFile };
  const server = http.createServer((req, res) => {
    const u = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = files[u] ?? (/^\/(examples|fixtures)\//.test(u) && !u.includes('..') ? path.join(root, u) : undefined);
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = file.endsWith('.html') ? 'text/html' : file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type }).end(fs.readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'] });
  try {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const q = new URLSearchParams({ bundle: '/bundle.js', cfg: '/fixtures/cfg/yolo-mini.cfg', weights: '/w.weights', names: '/fixtures/cfg/yolo-mini.names', image: '/img.png', conf: String(conf), iou: '0.45' });
    await page.goto(`http://127.0.0.1:${port}/examples/browser/index.html?${q}`);
    await page.waitForFunction(() => (window as unknown as { __yolo?: { done: boolean } }).__yolo?.done === true, null, { timeout: 240_000 });
    const got = await page.evaluate(() => {
      const s = (window as unknown as { __yolo: { error: string | null; adapter: string; detections: { box: { x1: number; y1: number; x2: number; y2: number }; classId: number; name: string; score: number }[] } }).__yolo;
      return { error: s.error, adapter: s.adapter, detections: s.detections };
    });
    assert.is(got.error, null, `page error: ${got.error}\n${logs.join('\n')}`);
    console.log(`  [browser: ${got.adapter}; ${got.detections.length} detections, node: ${expected.length}]`);
    assert.ok(expected.length > 0, 'the node engine finds something to compare');
    assert.is(got.detections.length, expected.length, 'as many detections');
    // each node detection has its browser twin: same class, score within 1e-3, box within 0.05 px
    const left = [...got.detections];
    let worst = 0;
    for (const e of expected) {
      const i = left.findIndex((d) => d.classId === e.classId && d.name === e.name && Math.abs(d.score - e.score) < 1e-3
        && (['x1', 'y1', 'x2', 'y2'] as const).every((c) => Math.abs(d.box[c] - e.box[c]) < 0.05));
      assert.ok(i >= 0, `no browser detection matches ${JSON.stringify(e)}`);
      worst = Math.max(worst, Math.abs(left[i].score - e.score));
      left.splice(i, 1);
    }
    console.log(`  [conf ${conf.toFixed(5)}: ${expected.length} detections matched; max score difference ${worst.toExponential(2)}]`);
    const canvas = await page.evaluate(() => { const c = document.getElementById('canvas') as HTMLCanvasElement; return [c.width, c.height]; });
    assert.ok(canvas[0] > 1 && canvas[1] > 1, 'drawn on the canvas');
  } finally {
    await browser.close();
    server.close();
  }
});

function findPng(dir: string): string {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      try {
        return findPng(p);
      } catch { /* next */ }
    } else if (e.name.endsWith('.png')) return p;
  }
  throw new Error(`no PNG under ${dir}`);
}

test.run();
