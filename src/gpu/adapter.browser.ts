/**
 * Adapter selection in a browser: the page's `navigator.gpu` (or a GPU object passed in). The browser bundle
 * (scripts/build-browser.mjs) puts this module in place of adapter.ts, so the bundle holds neither Dawn (the
 * `webgpu` package) nor any Node module. Same exports as adapter.ts for what device.ts and the API use.
 */
import type { AdapterDescription, BackendChoice, SelectOptions, SelectedAdapter } from './adapter.js';
import { GpuError } from './errors.js';

export type { AdapterDescription, BackendChoice, SelectOptions, SelectedAdapter } from './adapter.js';
export const BACKEND_CHOICES: BackendChoice[] = ['auto', 'gpu', 'lavapipe', 'gl'];

export const LIMIT_KEYS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ', 'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage', 'maxUniformBufferBindingSize', 'minStorageBufferOffsetAlignment', 'minUniformBufferOffsetAlignment',
  'maxBindGroups', 'maxBindingsPerBindGroup',
];

/** In a browser only 'auto' (the page's adapter) is meaningful; the Node backends are refused by name. */
export function parseBackend(v: string | undefined): BackendChoice {
  const s = (v ?? 'auto').toLowerCase();
  if (s !== 'auto' && s !== 'gpu') throw new GpuError('no-adapter', '', `backend '${v}' is not available in a browser (navigator.gpu picks the adapter): use 'auto'`);
  return s;
}

const CPU_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

export async function selectAdapter(opts: SelectOptions & { gpu?: GPU } = {}): Promise<SelectedAdapter> {
  const log = opts.log ?? (() => {});
  parseBackend(opts.backend);
  const gpu = opts.gpu ?? (typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GPU }).gpu : undefined);
  if (!gpu) throw new GpuError('no-adapter', '', 'this browser exposes no WebGPU (navigator.gpu is undefined): use a browser with WebGPU enabled, over https or localhost');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference, ...(opts.featureLevel ? { featureLevel: opts.featureLevel } : {}) } as GPURequestAdapterOptions);
  if (!adapter) throw new GpuError('no-adapter', '', 'navigator.gpu.requestAdapter() returned no adapter (WebGPU is blocked or no GPU is usable)');
  const i = adapter.info ?? ({ vendor: '', architecture: '', device: '', description: '' } as GPUAdapterInfo);
  const text = `${i.vendor} ${i.architecture} ${i.device} ${i.description}`;
  const limits: Record<string, number> = {};
  const L = adapter.limits as unknown as Record<string, number>;
  for (const k of LIMIT_KEYS) if (typeof L[k] === 'number') limits[k] = L[k];
  const kind: AdapterDescription['kind'] = CPU_NAMES.test(text) ? 'cpu' : 'gpu';
  const name = i.description || i.device || i.architecture || i.vendor || 'browser adapter';
  // asked for compatibility, the browser may still give a core adapter: those have core-features-and-limits
  const featureLevel = opts.featureLevel === 'compatibility' && !adapter.features.has('core-features-and-limits' as GPUFeatureName) ? 'compatibility' : 'core';
  const info: AdapterDescription = {
    backend: 'browser', kind, vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    featureLevel, features: [...adapter.features].map(String).sort(), limits,
    summary: `${name} (navigator.gpu; vendor ${i.vendor || '?'}), ${featureLevel} feature level`,
  };
  log(`device: using ${info.summary}`);
  return { adapter, info, instance: gpu };
}
