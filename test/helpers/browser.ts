/**
 * What the browser end-to-end tests (test/examples/browser.test.ts, browser-train*.test.ts) and
 * scripts/bench-browser-train.ts share: finding a Chromium, serving the checkout's examples/ and fixtures/ (plus
 * named files) on 127.0.0.1, launching headless Chromium with WebGPU on a CPU adapter (SwiftShader, or Mesa
 * lavapipe under ANGLE), picking a comparison threshold between well-separated scores, and screenshots.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { localMesa } from '../../src/gpu/adapter.js';
import { packageRoot } from '../../src/util/paths.js';

const root = packageRoot();

/**
 * A Chromium to drive: YOLO_WGSL_CHROMIUM, Debian's (scripts/setup-chromium.sh installs it in `make deps`
 * where the machine allows), Chrome, or one that playwright-core downloaded (npx playwright-core install
 * chromium). Else why there is none: setup-chromium.sh leaves its reason in .chromium/status. `envMissing`:
 * YOLO_WGSL_CHROMIUM names no file.
 */
export async function findChromium(): Promise<{ exe?: string; why: string; envMissing?: string }> {
  const env = process.env.YOLO_WGSL_CHROMIUM;
  if (env) return fs.existsSync(env) ? { exe: env, why: '' } : { why: `YOLO_WGSL_CHROMIUM=${env}: no such file`, envMissing: env };
  const candidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  try {
    const { chromium } = await import('playwright-core');
    candidates.push(chromium.executablePath());
  } catch { /* no browser build for this platform */ }
  const exe = candidates.find((p) => fs.existsSync(p));
  if (exe) return { exe, why: '' };
  const status = path.join(root, '.chromium/status');
  const said = fs.existsSync(status) ? fs.readFileSync(status, 'utf8').trim().replace(/[[\]]/g, '') : '';
  const why = said.startsWith('skip ') ? said.slice(5)
    : said.startsWith('ok ') ? `no Chromium: ${said.slice(3)}, installed by make deps, is gone (rm -r .chromium; make deps)`
      : 'no Chromium, and make deps has not tried to install it (bash scripts/setup-chromium.sh)';
  return { why };
}

/** An http server on 127.0.0.1 (a free port) for `files` (URL path -> file) and the checkout's /examples/ and /fixtures/. */
export async function serveCheckout(files: Record<string, string>): Promise<{ server: http.Server; port: number }> {
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
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Headless Chromium with WebGPU on a CPU adapter, as on a machine without a GPU. 'swiftshader' (default):
 * Chromium's own software WebGPU adapter. 'lavapipe': the checkout's Mesa lavapipe (scripts/setup-mesa.sh;
 * throws when there is none) as Chromium's GPU: ANGLE on Vulkan (lavapipe, by VK_ICD_FILENAMES) and WebGPU
 * through Dawn's OpenGL ES backend on that ANGLE, an adapter of the compatibility feature level (a page asks
 * for it with featureLevel 'compatibility': train.html?adapter=compat). Chromium offers no WebGPU adapter on
 * Vulkan lavapipe directly (a CPU-type Vulkan device other than SwiftShader is never exposed).
 */
export async function launchChromium(exe: string, adapter: 'swiftshader' | 'lavapipe' = 'swiftshader'): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  if (adapter === 'swiftshader') {
    return chromium.launch({ executablePath: exe, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'] });
  }
  const mesa = lavapipeIcd();
  if (!mesa) throw new Error('no local Mesa lavapipe (bash scripts/setup-mesa.sh)');
  return chromium.launch({
    executablePath: exe, headless: true, env: { ...process.env, VK_ICD_FILENAMES: mesa },
    ignoreDefaultArgs: ['--use-angle=swiftshader-webgl', '--enable-unsafe-swiftshader'],
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=native', '--use-angle=vulkan', '--ignore-gpu-blocklist', '--use-webgpu-adapter=opengles', '--enable-webgpu-developer-features'],
  });
}

/** The local Mesa lavapipe's Vulkan manifest (scripts/setup-mesa.sh; the one Node's engine uses), if installed. */
export function lavapipeIcd(): string | undefined {
  return localMesa()?.icd;
}

/** A threshold halfway between the k-th and (k+1)-th best of well-separated scores (a threshold on a tie would compare rounding). */
export function thresholdAfter(scores: number[], k: number): number {
  const s = [...scores].sort((a, b) => b - a);
  let i = Math.min(k, s.length - 1);
  while (i < s.length - 1 && s[i - 1] - s[i] < 1e-4) i++;
  return Number(((s[i - 1] + s[i]) / 2).toFixed(6)); // as typed into the page: 6 decimals, still between the two
}

/**
 * A PNG of the page's top (a `clip` of it, or one element: a selector) for docs/browser.md: into docs/images/ with
 * YOLO_WGSL_UPDATE_SCREENSHOT=1, else into `dir` (a test's temporary folder). Fails when it is blank-small or
 * over 150 KB (docs images stay small).
 */
export async function screenshot(tab: import('playwright-core').Page, name: string, dir: string, what?: string | { x: number; y: number; width: number; height: number }): Promise<string> {
  const file = process.env.YOLO_WGSL_UPDATE_SCREENSHOT === '1' ? path.join(root, 'docs/images', name) : path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (typeof what === 'string') await tab.locator(what).screenshot({ path: file });
  else {
    await tab.evaluate(() => scrollTo(0, 0));
    await tab.screenshot({ path: file, clip: what });
  }
  const bytes = fs.statSync(file).size;
  if (!(bytes > 10_000 && bytes < 150_000)) throw new Error(`screenshot ${name}: ${bytes} bytes (expected 10-150 KB)`);
  return file;
}
