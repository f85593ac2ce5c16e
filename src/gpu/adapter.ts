/**
 * Adapter selection: a real GPU first, then Mesa lavapipe (Vulkan on the CPU, project-local Mesa 25), then
 * Dawn's OpenGL ES backend on Mesa llvmpipe in compatibility mode. Each step says what it found in one line.
 * On request only (`swiftshader`): Google's SwiftShader Vulkan driver (another CPU adapter, subgroups of 4
 * where lavapipe has 8), to check that the kernels do not depend on one subgroup size (`make test-swiftshader`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { GpuError } from './errors.js';
import { mesaDirs, packageRoot } from '../util/paths.js';
import { parsePollMode, throttleDawnPolling, type PollMode } from './poll.js';
import { showSetupHint } from './setup-hint.js';

// The Mesa folders are paths like the others (src/util/paths.ts); re-exported for setup-mesa and tests.
export { mesaDirs, mesaInstallDir } from '../util/paths.js';

export type BackendChoice = 'auto' | 'gpu' | 'lavapipe' | 'gl' | 'swiftshader';
export const BACKEND_CHOICES: BackendChoice[] = ['auto', 'gpu', 'lavapipe', 'gl', 'swiftshader'];

export interface AdapterDescription {
  /** Dawn backend: 'vulkan' | 'metal' | 'd3d12' | 'opengles' ... */
  backend: string;
  /** 'gpu' for hardware, 'lavapipe' / 'llvmpipe' for the CPU adapters. */
  kind: 'gpu' | 'lavapipe' | 'llvmpipe' | 'cpu';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  featureLevel: 'core' | 'compatibility';
  features: string[];
  limits: Record<string, number>;
  /** One line for humans: "lavapipe (Vulkan, Mesa 25.0.7, llvmpipe (LLVM 15.0.6, 256 bits)), core". */
  summary: string;
}

export interface SelectedAdapter {
  adapter: GPUAdapter;
  info: AdapterDescription;
  /**
   * The Dawn instance (navigator.gpu) the adapter came from. It must stay referenced as long as the device
   * lives: if it is garbage-collected, Dawn's event processing touches a freed instance and crashes.
   */
  instance: GPU;
}

type DawnModule = { create: (opts: string[]) => GPU; globals: object };
let dawn: DawnModule | undefined;

async function loadDawn(): Promise<DawnModule> {
  if (!dawn) {
    const m = (await import('webgpu')) as unknown as DawnModule;
    Object.assign(globalThis, m.globals);
    dawn = m;
  }
  return dawn;
}

/** The first installed local Mesa (scripts/setup-mesa.sh) in `dirs`, or undefined when there is none. */
export function localMesa(dirs: readonly string[] = mesaDirs()): { icd: string; lib: string; version: string; dir: string } | undefined {
  for (const dir of dirs) {
    const icd = path.join(dir, 'lvp_icd.json');
    if (!fs.existsSync(icd) || !fs.existsSync(path.join(dir, 'ok'))) continue;
    let version = '';
    try { version = fs.readFileSync(path.join(dir, 'version'), 'utf8').trim(); } catch { /* optional */ }
    return { icd, lib: path.join(dir, 'lib'), version, dir };
  }
  return undefined;
}

/**
 * SwiftShader's Vulkan driver manifest: $YOLO_WGSL_SWIFTSHADER (the manifest or its folder), else
 * .swiftshader/ in the package (scripts/setup-swiftshader.sh), else Debian's chromium (/usr/lib/chromium).
 */
export function swiftshaderIcd(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const name = 'vk_swiftshader_icd.json';
  const given = env.YOLO_WGSL_SWIFTSHADER;
  const candidates = given ? [given.endsWith('.json') ? given : path.join(given, name)] : [path.join(packageRoot(), '.swiftshader', name), path.join('/usr/lib/chromium', name)];
  return candidates.find((f) => fs.existsSync(f));
}

function systemHasVulkanLoader(): boolean {
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];
  for (const extra of (process.env.LD_LIBRARY_PATH ?? '').split(':')) if (extra) dirs.push(extra);
  return dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

/**
 * Dawn loads `libvulkan.so.1` from the system or from the folder of `dawn.node`. The stock image has no
 * Vulkan loader, so the project-local one is linked beside dawn.node (idempotent; scripts/setup-mesa.sh
 * does it at install time, this repeats it after an `npm install` wiped it).
 */
function ensureVulkanLoader(mesaLib: string): boolean {
  if (systemHasVulkanLoader()) return true;
  try {
    const require = createRequire(import.meta.url);
    const dawnDir = path.join(path.dirname(require.resolve('webgpu')), 'dist', `${process.platform}-${process.arch}`);
    const link = path.join(dawnDir, 'libvulkan.so.1');
    if (fs.existsSync(link)) return true;
    const target = path.join(mesaLib, 'libvulkan.so.1');
    if (!fs.existsSync(target)) return false;
    fs.symlinkSync(target, link);
    return true;
  } catch {
    return false;
  }
}

/** Vulkan driver manifests other than lavapipe's (a real GPU's driver), or undefined when none is installed. */
function hardwareVulkanDrivers(): string[] {
  const env = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];
  const files: string[] = env && !env.includes('lvp_icd') ? env.split(':') : [];
  for (const d of dirs) {
    try {
      for (const f of fs.readdirSync(d)) if (f.endsWith('.json') && !/lvp|lavapipe|swiftshader/i.test(f)) files.push(path.join(d, f));
    } catch { /* absent */ }
  }
  return files;
}

const CPU_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

function describe(adapter: GPUAdapter, backend: string, featureLevel: 'core' | 'compatibility'): AdapterDescription {
  const i = adapter.info;
  const text = `${i.vendor} ${i.architecture} ${i.device} ${i.description}`;
  const isCpu = CPU_NAMES.test(text);
  const kind: AdapterDescription['kind'] = !isCpu ? 'gpu' : backend === 'vulkan' ? 'lavapipe' : backend.startsWith('opengl') ? 'llvmpipe' : 'cpu';
  const limits: Record<string, number> = {};
  const L = adapter.limits as unknown as Record<string, number>;
  for (const k of LIMIT_KEYS) if (typeof L[k] === 'number') limits[k] = L[k];
  const features = [...adapter.features].map(String).sort();
  const name = kind === 'gpu' ? (i.description || i.device || i.vendor) : kind;
  const summary = `${name} (${backend}; vendor ${i.vendor || '?'}, ${i.description || i.device || '?'}), ${featureLevel} feature level`;
  return { backend, kind, vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, featureLevel, features, limits, summary };
}

export const LIMIT_KEYS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage', 'maxUniformBufferBindingSize', 'minStorageBufferOffsetAlignment', 'minUniformBufferOffsetAlignment',
  'maxBindGroups', 'maxBindingsPerBindGroup',
];

function dawnBackendForGpu(): string | undefined {
  if (process.platform === 'darwin') return 'metal';
  if (process.platform === 'win32') return 'd3d12';
  return 'vulkan';
}

/** Parses YOLO_WGSL_BACKEND / --backend. Unknown values are an error, not a silent fallback. */
export function parseBackend(v: string | undefined): BackendChoice {
  const s = (v ?? 'auto').toLowerCase();
  const alias: Record<string, BackendChoice> = { vulkan: 'lavapipe', opengles: 'gl', opengl: 'gl', llvmpipe: 'gl', cpu: 'auto', hardware: 'gpu' };
  const b = (alias[s] ?? s) as BackendChoice;
  if (!BACKEND_CHOICES.includes(b)) {
    throw new GpuError('no-adapter', '', `unknown backend '${v}' (YOLO_WGSL_BACKEND / --backend): use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return b;
}

export interface SelectOptions {
  backend?: BackendChoice;
  powerPreference?: GPUPowerPreference;
  /** Receives one line per selection step. Default: nothing is printed. */
  log?: (line: string) => void;
  /**
   * How Dawn waits for the GPU (src/gpu/poll.ts): 'throttled' (default) polls once per timer tick after the
   * first millisecond of a wait; 'spin' keeps Dawn's busy loop. Default: YOLO_WGSL_POLL, else 'throttled'.
   */
  poll?: PollMode;
  /**
   * In a browser: the feature level to ask navigator.gpu for ('compatibility': e.g. Chromium's OpenGL ES
   * backend; the browser may still answer with a core adapter). In Node the backend decides (GL:
   * compatibility, else core).
   */
  featureLevel?: 'core' | 'compatibility';
}

/** Tries each candidate in order and returns the first adapter that works. */
export async function selectAdapter(opts: SelectOptions = {}): Promise<SelectedAdapter> {
  const choice = opts.backend ?? parseBackend(process.env.YOLO_WGSL_BACKEND);
  const log = opts.log ?? (() => {});
  const { create } = await loadDawn();
  throttleDawnPolling(opts.poll ?? parsePollMode(process.env.YOLO_WGSL_POLL));
  const tried: string[] = [];
  const mesa = process.platform === 'linux' ? localMesa() : undefined;

  // 1. A real GPU through the platform's native backend, core feature level.
  if (choice === 'auto' || choice === 'gpu') {
    const backend = dawnBackendForGpu();
    let found: SelectedAdapter | undefined;
    const noDriver = process.platform === 'linux' && (!systemHasVulkanLoader() || hardwareVulkanDrivers().length === 0);
    if (noDriver) log(`device: real GPU: none (no Vulkan ${systemHasVulkanLoader() ? 'GPU driver' : 'loader'} installed)`);
    else try {
      const gpu = create(backend ? [`backend=${backend}`] : []);
      const a = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance', featureLevel: 'core' } as GPURequestAdapterOptions);
      if (a) {
        const d = describe(a, backend ?? 'default', 'core');
        if (d.kind === 'gpu') found = { adapter: a, info: d, instance: gpu };
        else log(`device: real GPU: none (${backend} offers only ${d.description || d.kind})`);
      } else log(`device: real GPU: none (${backend}: no adapter)`);
    } catch (e) {
      log(`device: real GPU: none (${backend}: ${(e as Error).message.split('\n')[0]})`);
    }
    if (found) { log(`device: using real GPU ${found.info.summary}`); return found; }
    tried.push(`real GPU via ${backend}`);
  }

  // 2. Mesa lavapipe: Vulkan on the CPU from the project-local Mesa 25 (Dawn refuses stock Mesa 22.3).
  if ((choice === 'auto' || choice === 'lavapipe') && process.platform === 'linux') {
    if (!mesa) {
      log(`device: lavapipe: not installed in ${mesaDirs().join(' or ')} (run \`yolo-wgsl setup-mesa\`, or \`make deps\` in a checkout)`);
    } else if (!ensureVulkanLoader(mesa.lib)) {
      log('device: lavapipe: no Vulkan loader (libvulkan.so.1) could be linked for Dawn');
    } else {
      process.env.VK_DRIVER_FILES = mesa.icd;
      process.env.VK_ICD_FILENAMES = mesa.icd;
      try {
        const gpu = create(['backend=vulkan']);
        const a = await gpu.requestAdapter({ featureLevel: 'core' } as GPURequestAdapterOptions);
        if (a) {
          const d = describe(a, 'vulkan', 'core');
          d.kind = 'lavapipe';
          d.summary = `lavapipe (Vulkan on the CPU, Mesa ${mesa.version}; ${d.description}), core feature level`;
          log(`device: using ${d.summary}`);
          return { adapter: a, info: d, instance: gpu };
        }
        log(`device: lavapipe: Dawn offered no adapter for Mesa ${mesa.version}`);
      } catch (e) {
        log(`device: lavapipe: failed (${(e as Error).message.split('\n')[0]})`);
      }
    }
    tried.push('lavapipe');
  }

  // SwiftShader (only when asked for): Vulkan on the CPU, Google's driver (Chromium ships it).
  if (choice === 'swiftshader') {
    const icd = process.platform === 'linux' ? swiftshaderIcd() : undefined;
    if (!icd) {
      log(`device: SwiftShader: no vk_swiftshader_icd.json (${process.env.YOLO_WGSL_SWIFTSHADER ? `YOLO_WGSL_SWIFTSHADER=${process.env.YOLO_WGSL_SWIFTSHADER}` : 'run `bash scripts/setup-swiftshader.sh`, or set YOLO_WGSL_SWIFTSHADER to its folder'})`);
    } else if (!ensureVulkanLoader(mesa?.lib ?? path.dirname(icd)) && !ensureVulkanLoader(path.dirname(icd))) {
      log('device: SwiftShader: no Vulkan loader (libvulkan.so.1) could be linked for Dawn');
    } else {
      process.env.VK_DRIVER_FILES = icd;
      process.env.VK_ICD_FILENAMES = icd;
      try {
        const gpu = create(['backend=vulkan']);
        const a = await gpu.requestAdapter({ featureLevel: 'core' } as GPURequestAdapterOptions);
        if (a) {
          const d = describe(a, 'vulkan', 'core');
          d.kind = 'cpu';
          d.summary = `SwiftShader (Vulkan on the CPU; ${d.description || d.device}), core feature level`;
          log(`device: using ${d.summary}`);
          return { adapter: a, info: d, instance: gpu };
        }
        log(`device: SwiftShader: Dawn offered no adapter for ${icd}`);
      } catch (e) {
        log(`device: SwiftShader: failed (${(e as Error).message.split('\n')[0]})`);
      }
    }
    tried.push('SwiftShader');
  }

  // 3. Dawn's OpenGL ES backend on Mesa llvmpipe, compatibility feature level.
  if (choice === 'auto' || choice === 'gl') {
    if (process.platform === 'linux') process.env.EGL_PLATFORM = 'surfaceless';
    try {
      const gpu = create(['backend=opengles']);
      const a = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
      if (a) {
        const d = describe(a, 'opengles', a.features.has('core-features-and-limits') ? 'core' : 'compatibility');
        if (d.kind === 'cpu') d.kind = 'llvmpipe';
        log(`device: using ${d.summary}`);
        // the slow fallback where `setup-mesa` would give lavapipe: say so once (src/gpu/setup-hint.ts)
        showSetupHint(d, { choice, mesaInstalled: mesa !== undefined });
        return { adapter: a, info: d, instance: gpu };
      }
      log('device: OpenGL ES: no adapter');
    } catch (e) {
      log(`device: OpenGL ES: failed (${(e as Error).message.split('\n')[0]})`);
    }
    tried.push('OpenGL ES (llvmpipe)');
  }
  const hint = choice === 'gpu'
    ? 'No real GPU was found; leave out --backend gpu (or YOLO_WGSL_BACKEND=gpu) to fall back to the CPU adapters.'
    : choice === 'swiftshader'
      ? 'Run `bash scripts/setup-swiftshader.sh` (SwiftShader from Debian\'s chromium-common, into .swiftshader/), or point YOLO_WGSL_SWIFTSHADER at a folder with vk_swiftshader_icd.json.'
      : choice === 'lavapipe'
        ? 'Run `yolo-wgsl setup-mesa` (or `make deps` in a checkout) to install Mesa 25 lavapipe, or use --backend gl.'
        : 'On Linux without a GPU, install Mesa (libegl-mesa0, libgles2) for the GL fallback, or run `make deps` for lavapipe.';
  throw new GpuError('no-adapter', '', `no WebGPU adapter could be had (tried: ${tried.join(', ') || 'nothing'}; backend choice '${choice}'). ${hint}`);
}
