/** `yolo-wgsl doctor`: adapter report, compile every kernel, tiny numeric self-check. */
import { Gpu } from '../gpu/device.js';
import { allKernelSpecs } from '../gpu/catalog.js';
import { GpuError } from '../gpu/errors.js';
import { parseBackend } from '../gpu/adapter.js';
import { Tensor, activation, newTape } from '../tensor/index.js';

export interface DoctorResult {
  ok: boolean;
  adapter?: Gpu['info'];
  kernels: { name: string; ok: boolean; ms: number; error?: string }[];
  selfCheck?: { ok: boolean; maxError: number; detail: string };
}

export async function doctor(opts: { backend?: string; log?: (l: string) => void } = {}): Promise<DoctorResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const result: DoctorResult = { ok: false, kernels: [] };
  let gpu: Gpu;
  try {
    gpu = await Gpu.create({ backend: parseBackend(opts.backend ?? process.env.YOLO_WGSL_BACKEND), log });
  } catch (e) {
    log(`doctor: FAILED: ${(e as Error).message}`);
    return result;
  }
  try {
    const i = gpu.info;
    result.adapter = i;
    log('');
    log(`adapter      ${i.kind}  (${i.backend} backend, ${i.featureLevel} feature level)`);
    log(`vendor       ${i.vendor || '-'}   architecture ${i.architecture || '-'}`);
    log(`description  ${i.description || i.device || '-'}`);
    log(`features     ${i.features.join(' ') || '-'}`);
    const L = i.limits;
    const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
    log(`limits       maxBufferSize ${mib(L.maxBufferSize)}, maxStorageBufferBindingSize ${mib(L.maxStorageBufferBindingSize)}, ` +
      `workgroup storage ${L.maxComputeWorkgroupStorageSize} B, invocations/workgroup ${L.maxComputeInvocationsPerWorkgroup}, ` +
      `storage buffers/stage ${L.maxStorageBuffersPerShaderStage}`);
    log('');
    const specs = allKernelSpecs();
    const t0 = performance.now();
    for (const spec of specs) {
      const name = Gpu.kernelName(spec);
      const s = performance.now();
      try {
        await gpu.compile(spec);
        result.kernels.push({ name, ok: true, ms: performance.now() - s });
      } catch (e) {
        const msg = e instanceof GpuError ? e.message : String(e);
        result.kernels.push({ name, ok: false, ms: performance.now() - s, error: msg });
        log(`  FAILED ${msg}`);
      }
    }
    const bad = result.kernels.filter((k) => !k.ok).length;
    const files = new Set(specs.map((s) => s.file)).size;
    log(`kernels      ${specs.length - bad}/${specs.length} entry points in ${files} files compiled (${(performance.now() - t0).toFixed(0)} ms)`);
    result.selfCheck = await selfCheck(gpu);
    log(`self-check   ${result.selfCheck.ok ? 'ok' : 'FAILED'}: ${result.selfCheck.detail}`);
    result.ok = bad === 0 && result.selfCheck.ok;
    log(result.ok ? 'doctor: ok' : 'doctor: FAILED');
  } finally {
    gpu.dispose();
  }
  return result;
}

/** Leaky forward/backward on a few values vs closed-form results. */
async function selfCheck(gpu: Gpu): Promise<NonNullable<DoctorResult['selfCheck']>> {
  try {
    const xs = [-2, -0.5, 0.25, 3, -1e-3, 7];
    const x = Tensor.param(gpu, [2, 3], xs);
    const tape = newTape();
    const y = tape.record(() => activation(x, 'leaky'));
    tape.backward(y);
    const [yv, gv] = [await y.toArray(), await x.grad!.toArray()];
    let maxError = 0;
    xs.forEach((v, i) => {
      maxError = Math.max(maxError, Math.abs(yv[i] - (v > 0 ? v : 0.1 * v)), Math.abs(gv[i] - (v > 0 ? 1 : 0.1)));
    });
    tape.dispose();
    x.dispose();
    y.dispose();
    const ok = maxError < 1e-6;
    return { ok, maxError, detail: `leaky forward/backward on the GPU, max error ${maxError.toExponential(2)}` };
  } catch (e) {
    return { ok: false, maxError: Infinity, detail: (e as Error).message };
  }
}
