/**
 * What the browser end-to-end tests (test/examples/browser.test.ts, browser-train.test.ts) share: finding a
 * Chromium, serving the checkout's examples/ and fixtures/ (plus named files) on 127.0.0.1, launching headless
 * Chromium with WebGPU on SwiftShader, and picking a comparison threshold between well-separated scores.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
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

/** Headless Chromium with WebGPU on SwiftShader (a CPU adapter, as on a machine without a GPU). */
export async function launchChromium(exe: string): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: exe, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'] });
}

/** A threshold halfway between the k-th and (k+1)-th best of well-separated scores (a threshold on a tie would compare rounding). */
export function thresholdAfter(scores: number[], k: number): number {
  const s = [...scores].sort((a, b) => b - a);
  let i = Math.min(k, s.length - 1);
  while (i < s.length - 1 && s[i - 1] - s[i] < 1e-4) i++;
  return Number(((s[i - 1] + s[i]) / 2).toFixed(6)); // as typed into the page: 6 decimals, still between the two
}
