#!/usr/bin/env node
/**
 * The browser bundle of the library (src/browser.ts) as one ES module: dist/browser/yolo-wgsl.js (or the
 * path given as the first argument).
 *
 * - A module `X.ts` with a sibling `X.browser.ts` is replaced by it: adapter.browser.ts (navigator.gpu
 *   instead of Dawn), kernel-source.browser.ts (the WGSL inlined instead of read from kernels/),
 *   api/host.browser.ts (bytes and ImageBitmap instead of paths).
 * - Every kernels/**\/*.wgsl file is inlined as __YOLO_WGSL_KERNELS__.
 * - Node-only modules (node:*, pngjs, jpeg-js, yaml, webgpu) never enter the bundle: shared modules that
 *   import them for their file functions (cfg.ts readCfg, weights.ts loadWeights, image.ts loadImage) get a
 *   stub whose every property throws "... is not available in the browser" (like Vite's externalized
 *   built-ins); node:os gets only endianness(). The build prints which modules those imports came from and
 *   fails if any real Node-only package file was bundled.
 *
 * Usage: node scripts/build-browser.mjs [out.js] [--minify] [--meta meta.json]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outfile = path.resolve(args.find((a) => !a.startsWith('--') && !args[args.indexOf(a) - 1]?.startsWith('--meta')) ?? path.join(root, 'dist/browser/yolo-wgsl.js'));
const minify = args.includes('--minify');
const metaOut = args.includes('--meta') ? args[args.indexOf('--meta') + 1] : undefined;

export const NODE_ONLY = /^(node:.*|fs|path|os|url|module|crypto|worker_threads|pngjs|jpeg-js|yaml|webgpu)$/;

function kernelSources() {
  const dir = path.join(root, 'kernels');
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.wgsl')) out[path.relative(dir, p).split(path.sep).join('/')] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

const stubbedFrom = new Map();
const browserSwap = {
  name: 'yolo-wgsl-browser',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (a) => {
      const abs = path.resolve(a.resolveDir, a.path);
      const alt = abs.replace(/\.js$/, '.browser.ts');
      if (alt !== abs && fs.existsSync(alt)) return { path: alt };
      return undefined;
    });
    build.onResolve({ filter: NODE_ONLY }, (a) => {
      const from = path.relative(root, a.importer);
      if (!stubbedFrom.has(a.path)) stubbedFrom.set(a.path, new Set());
      stubbedFrom.get(a.path).add(from);
      return { path: a.path, namespace: 'node-only' };
    });
    build.onLoad({ filter: /.*/, namespace: 'node-only' }, (a) => {
      if (a.path === 'node:os' || a.path === 'os') {
        return { contents: 'module.exports = { endianness: () => (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? "LE" : "BE") };', loader: 'js' };
      }
      const msg = JSON.stringify(`yolo-wgsl: '${a.path}' is not available in the browser (pass bytes / ImageBitmap instead of paths)`);
      return {
        contents: `const fail = () => { throw new Error(${msg}); };
module.exports = new Proxy(function () {}, {
  get: (_t, k) => (k === '__esModule' || typeof k === 'symbol' ? undefined : fail()),
  apply: fail, construct: fail,
});`,
        loader: 'js',
      };
    });
  },
};

export async function buildBrowser(opts = {}) {
  stubbedFrom.clear();
  const r = await esbuild.build({
    entryPoints: [path.join(root, 'src/browser.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: opts.outfile ?? outfile,
    minify: opts.minify ?? minify,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    define: { __YOLO_WGSL_KERNELS__: JSON.stringify(kernelSources()) },
    plugins: [browserSwap],
  });
  const inputs = Object.keys(r.metafile.inputs);
  const leaked = inputs.filter((f) => /node_modules\/(pngjs|jpeg-js|yaml|webgpu|@napi-rs|@fontsource)\//.test(f));
  if (leaked.length) throw new Error(`Node-only package files in the browser bundle: ${leaked.join(', ')}`);
  const out = Object.entries(r.metafile.outputs).find(([f]) => f.endsWith('.js'));
  return {
    file: opts.outfile ?? outfile,
    bytes: out ? out[1].bytes : 0,
    inputs,
    stubbed: Object.fromEntries([...stubbedFrom].map(([k, v]) => [k, [...v].sort()])),
    metafile: r.metafile,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await buildBrowser();
  if (metaOut) fs.writeFileSync(metaOut, JSON.stringify(r.metafile, null, 1));
  console.log(`${path.relative(process.cwd(), r.file)}: ${(r.bytes / 1024).toFixed(0)} KiB from ${r.inputs.length} modules`);
  for (const [m, from] of Object.entries(r.stubbed)) console.log(`  stubbed ${m} (imported by ${from.join(', ')})`);
}
