/**
 * The browser bundle and page: the bundle holds no Node-only module; and, where Chromium is installed
 * (`make deps` installs Debian's where it may: scripts/setup-chromium.sh), examples/browser/index.html run
 * headless on Chromium's WebGPU (SwiftShader on a machine without a GPU) loads a model from URL parameters,
 * takes an image from its file input and one dropped onto it, detects the same objects as the Node engine on
 * the same image and weights, shows its timings, and is photographed (into docs/images/browser.png with
 * YOLO_WGSL_UPDATE_SCREENSHOT=1; else into a temporary folder, so that `make test` leaves the checkout as it was).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Engine, loadDarknet } from '../../src/index.js';
import { packageRoot } from '../../src/util/paths.js';
import { generateSynth } from '../../src/data/synth.js';
import { findChromium, launchChromium, serveCheckout, thresholdAfter } from '../helpers/browser.js';

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
  // only the file helpers of shared modules import (stubbed) Node built-ins (the trainer's checkpoint files:
  // trainOnFiles saves none)
  for (const [mod, from] of Object.entries(b.stubbed)) {
    for (const f of from) assert.ok(/src\/(darknet\/cfg|darknet\/tree|darknet\/weights|data\/image|util\/fs|gpu\/tune-file|train\/checkpoint|train\/checkpointing)\.ts$/.test(f), `${mod} imported by ${f}`);
  }
});

type PageDetection = { box: { x1: number; y1: number; x2: number; y2: number }; classId: number; name: string; score: number };
type PageState = {
  done: boolean; ready?: boolean; error: string | null; adapter: string; images: number; detections: PageDetection[] | null;
  image: { name: string | null; width: number; height: number; conf: number } | null;
  model: { cfg: string; weights: string | null } | null;
  timings: Record<'library' | 'engine' | 'model' | 'first' | 'last' | 'mean' | 'decode', number | null>;
};

/** Each node detection has its browser twin: same class, score within 1e-3, box within 0.05 px. Returns the largest score difference. */
function sameDetections(got: PageDetection[], expected: PageDetection[], what: string): number {
  assert.is(got.length, expected.length, `${what}: as many detections`);
  const left = [...got];
  let worst = 0;
  for (const e of expected) {
    const i = left.findIndex((d) => d.classId === e.classId && d.name === e.name && Math.abs(d.score - e.score) < 1e-3
      && (['x1', 'y1', 'x2', 'y2'] as const).every((c) => Math.abs(d.box[c] - e.box[c]) < 0.05));
    assert.ok(i >= 0, `${what}: no browser detection matches ${JSON.stringify(e)}`);
    worst = Math.max(worst, Math.abs(left[i].score - e.score));
    left.splice(i, 1);
  }
  return worst;
}

test('browser page on headless Chromium WebGPU: picked and dropped images, same detections as the Node engine, screenshot', async () => {
  const { exe, why, envMissing } = await findChromium();
  assert.not.ok(envMissing, `YOLO_WGSL_CHROMIUM=${envMissing}: no such file`);
  if (!exe) {
    console.log(`  [skipped: browser end-to-end: ${why}; set YOLO_WGSL_CHROMIUM to use another Chromium or Chrome]`);
    return;
  }
  await build();
  const engine = new Engine(await getGpu());
  const cfg = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
  // seeded weights on a synthetic shapes image at the network's size (PNG: decoded exactly by both)
  const synth = generateSynth({ out: path.join(tmp, 'synth'), trainCount: 1, valCount: 1, size: 128, seed: 11 });
  const imgDir = path.join(path.dirname(synth.data), 'images', 'val');
  const imageFile = fs.existsSync(imgDir) ? path.join(imgDir, fs.readdirSync(imgDir).find((f) => f.endsWith('.png'))!) : findPng(path.dirname(synth.data));
  const model = await loadDarknet({ cfg, names: path.join(root, 'fixtures/cfg/yolo-mini.names'), engine, seed: 5 });
  const weights = path.join(tmp, 'yolo-mini.seed5-random.weights'); // the name shows in the screenshot
  await model.save(weights);
  // random weights score everything alike: ~30 detections for the comparison, the best 5 for the picture
  const all = (await model.detect(imageFile, { conf: 0.001, iou: 0.45, maxDet: 5000 })).map((d) => d.score);
  const conf = thresholdAfter(all, 30);
  const expected = await model.detect(imageFile, { conf, iou: 0.45 });
  const conf5 = thresholdAfter(expected.map((d) => d.score), 5);
  const expected5 = await model.detect(imageFile, { conf: conf5, iou: 0.45 });
  model.dispose();
  assert.ok(expected.length > 5 && expected5.length > 0, 'the node engine finds something to compare');

  const files: Record<string, string> = { '/bundle.js': bundle, '/bundle.js.map': `${bundle}.map`, [`/${path.basename(weights)}`]: weights };
  const { server, port } = await serveCheckout(files);
  const browser = await launchChromium(exe);
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const pageState = () => page.evaluate(() => {
      const s = (window as unknown as { __yolo: PageState }).__yolo;
      return { ...s, detections: s.detections?.map((d) => ({ box: d.box, classId: d.classId, name: d.name, score: d.score })) ?? null };
    }) as Promise<PageState>;
    // waits until the page has detected on `n` images in all and is idle
    const detected = async (n: number) => {
      await page.waitForFunction((k) => { const s = (window as unknown as { __yolo?: PageState }).__yolo; return s?.done === true && (s.error !== null || s.images >= k); }, n, { timeout: 240_000 });
      const s = await pageState();
      assert.is(s.error, null, `page error: ${s.error}\n${logs.join('\n')}`);
      assert.is(s.images, n, 'one detection run per image or setting');
      return s;
    };
    // 1. the model from URL parameters (as a link to a hosted model would)
    const q = new URLSearchParams({ bundle: '/bundle.js', cfg: '/fixtures/cfg/yolo-mini.cfg', weights: `/${path.basename(weights)}`, names: '/fixtures/cfg/yolo-mini.names', conf: String(conf), iou: '0.45' });
    await page.goto(`http://127.0.0.1:${port}/examples/browser/index.html?${q}`);
    await page.waitForFunction(() => { const s = (window as unknown as { __yolo?: PageState }).__yolo; return s?.done === true && (s.ready === true || s.error !== null); }, null, { timeout: 240_000 });
    let s = await pageState();
    assert.is(s.error, null, `page error: ${s.error}\n${logs.join('\n')}`);
    assert.equal(s.model && [s.model.cfg, s.model.weights], ['yolo-mini.cfg', path.basename(weights)]);
    // 2. an image picked with the file input
    await page.setInputFiles('#image', imageFile);
    s = await detected(1);
    console.log(`  [browser: ${s.adapter}; ${s.detections!.length} detections, node: ${expected.length}]`);
    let worst = sameDetections(s.detections!, expected, `picked image, conf ${conf.toFixed(5)}`);
    assert.equal(s.image && [s.image.name, s.image.width, s.image.height], [path.basename(imageFile), 128, 128]);
    // 3. a higher conf typed in: the page detects again
    await page.fill('#conf', String(conf5));
    await page.locator('#conf').blur(); // a number input's change event: on leaving it
    s = await detected(2);
    worst = Math.max(worst, sameDetections(s.detections!, expected5, `conf ${conf5.toFixed(5)}`));
    // 4. the same image dropped onto the page (a DataTransfer with a File, as a drag from the desktop gives)
    const b64 = fs.readFileSync(imageFile).toString('base64');
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, b64);
    s = await detected(3);
    assert.is(s.image?.name, 'dropped.png');
    worst = Math.max(worst, sameDetections(s.detections!, expected5, 'dropped image'));
    console.log(`  [conf ${conf.toFixed(5)}: ${expected.length} detections matched, conf ${conf5.toFixed(5)}: ${expected5.length} (picked, then dropped); max score difference ${worst.toExponential(2)}]`);
    // 5. the timings a person sees
    const t = s.timings;
    for (const k of ['library', 'engine', 'model', 'first', 'last', 'mean', 'decode'] as const) assert.ok(t[k] !== null && t[k]! >= 0, `timing ${k}: ${t[k]}`);
    const shown = await page.locator('#timings').innerText();
    assert.match(shown, /first detection\s+[\d.]+ ms/);
    assert.match(shown, /mean of the next 2\s+[\d.]+ ms/, shown);
    console.log(`  [timings in Chromium: library ${t.library!.toFixed(0)} ms, engine ${t.engine!.toFixed(0)} ms, model ${t.model!.toFixed(0)} ms, first detection ${t.first!.toFixed(0)} ms, then ${t.mean!.toFixed(0)} ms per image]`);
    const canvas = await page.evaluate(() => { const c = document.getElementById('canvas') as HTMLCanvasElement; return [c.width, c.height]; });
    assert.ok(canvas[0] > 128 && canvas[1] > 128, 'drawn on the canvas, enlarged');
    assert.is(await page.locator('#dets tr').count(), expected5.length, 'one row per detection');
    // 6. the screenshot in the docs
    const shot = process.env.YOLO_WGSL_UPDATE_SCREENSHOT === '1' ? path.join(root, 'docs/images/browser.png') : path.join(tmp, 'browser.png');
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    const bytes = fs.statSync(shot).size;
    assert.ok(bytes > 10_000 && bytes < 300_000, `screenshot ${bytes} bytes`);
    // 7. a broken cfg dropped onto the page: the error names the file, line and key
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['[net]\nwidth=64\nheight=64\nchannels=3\n\n[convolutional]\nfilters=abc\nsize=3\n'], 'bad.cfg'));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => (window as unknown as { __yolo: PageState }).__yolo.error !== null, null, { timeout: 60_000 });
    assert.match(await page.locator('#status').innerText(), /CfgError: bad\.cfg:7: \[convolutional\] key 'filters': expected an integer, got 'abc'/);
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
