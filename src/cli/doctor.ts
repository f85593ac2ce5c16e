/** `yolo-wgsl doctor`: adapter report, compile every kernel, tiny numeric self-check. */
import { Gpu } from '../gpu/device.js';
import { allKernelSpecs } from '../gpu/catalog.js';
import { GpuError } from '../gpu/errors.js';
import { localMesa, parseBackend } from '../gpu/adapter.js';
import { markSetupHintShown, setupHint } from '../gpu/setup-hint.js';
import { Tensor, activation, newTape } from '../tensor/index.js';
import { CONV_ALGOS, conv2dForward, type ConvAlgo } from '../tensor/ops/conv2d.js';
import { conv2dWinograd, winogradWeights } from '../tensor/ops/conv2d_winograd.js';
import { Rng, randomArray } from '../util/rng.js';

export interface DoctorResult {
  ok: boolean;
  adapter?: Gpu['info'];
  kernels: { name: string; ok: boolean; ms: number; error?: string }[];
  selfCheck?: { ok: boolean; maxError: number; detail: string };
  /** How to get a faster adapter, where there is one to get (the GL fallback without lavapipe). */
  hint?: string;
}

export async function doctor(opts: { backend?: string; log?: (l: string) => void } = {}): Promise<DoctorResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const result: DoctorResult = { ok: false, kernels: [] };
  let gpu: Gpu;
  const backend = parseBackend(opts.backend ?? process.env.YOLO_WGSL_BACKEND);
  markSetupHintShown(); // the report says it below, every time
  try {
    gpu = await Gpu.create({ backend, log });
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
    // the slow GL fallback where `setup-mesa` would give lavapipe (the hint createEngine gives once)
    const hint = setupHint(i, { choice: backend, mesaInstalled: process.platform === 'linux' && localMesa() !== undefined });
    if (hint) {
      result.hint = hint.replace(/^yolo-wgsl: /, '');
      log(`speed        ${result.hint}`);
    }
    // the subgroup size the kernels' subgroupShuffle sharing is specialized for (kernels/conv2d_reg.wgsl, matmul.wgsl regsg)
    const ai = (gpu.device as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
    // llvmpipe's 512-bit vectors (LP_NATIVE_VECTOR_WIDTH=512) give 16-lane subgroups, whose shuffles LLVM compiles badly
    const wide = i.kind === 'lavapipe' && (ai?.subgroupMinSize ?? 0) > 8 ? ': LP_NATIVE_VECTOR_WIDTH > 256, where yolov3-tiny runs 26x slower than at the default 256 (for testing subgroup sizes only; docs/gpu.md)' : '';
    if (gpu.hasFeature('subgroups')) log(`subgroups    size ${ai?.subgroupMinSize === ai?.subgroupMaxSize ? `${ai?.subgroupMinSize ?? '?'} (fixed)` : `${ai?.subgroupMinSize ?? '?'}-${ai?.subgroupMaxSize ?? '?'} (varies: kernels share nothing through subgroups)`}${wide}`);
    else log('subgroups    none (kernels share nothing through subgroups)');
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

/**
 * A small conv2d (every algorithm) and a leaky forward/backward on the GPU vs closed-form float64 results:
 * catches adapters that compile kernels but compute them wrongly.
 */
async function selfCheck(gpu: Gpu): Promise<NonNullable<DoctorResult['selfCheck']>> {
  try {
    const rng = new Rng(3);
    const [C, H, W, O] = [4, 6, 5, 4]; // channels a multiple of 4: Winograd takes it too
    const xs = randomArray(rng, C * H * W, -1, 1);
    const ws = randomArray(rng, O * C * 9, -1, 1);
    const bs = randomArray(rng, O, -1, 1);
    const ref = new Float64Array(O * H * W);
    for (let o = 0; o < O; o++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          let acc = bs[o];
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const iy = y + ky - 1;
                const ix = x + kx - 1;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W) acc += xs[(c * H + iy) * W + ix] * ws[((o * C + c) * 3 + ky) * 3 + kx];
              }
          ref[(o * H + y) * W + x] = acc > 0 ? acc : 0.1 * acc;
        }
    const x = Tensor.from(gpu, [1, C, H, W], xs);
    const w = Tensor.from(gpu, [O, C, 3, 3], ws);
    const b = Tensor.from(gpu, [O], bs);
    let maxError = 0;
    const algos = [...CONV_ALGOS.filter((a) => a !== 'auto'), 'winograd', 'winograd2'];
    // Winograd F(4x4, 3x3) and F(2x2, 3x3)
    const u = winogradWeights(w);
    const u2 = winogradWeights(w, undefined, 2);
    for (const algo of algos) {
      const y = algo.startsWith('winograd') ? conv2dWinograd(x, algo === 'winograd' ? u : u2, b, { pad: 1 }, 'leaky') : conv2dForward(x, w, b, { pad: 1 }, algo as ConvAlgo, 'leaky');
      const v = await y.toArray();
      v.forEach((val, i) => (maxError = Math.max(maxError, Math.abs(val - ref[i]))));
      y.dispose();
    }
    u.dispose();
    u2.dispose();
    // a 1x1 conv through the tile algorithm: conv2d_pw.wgsl where the adapter has fixed-size subgroups
    const w1s = randomArray(rng, O * C, -1, 1);
    const w1 = Tensor.from(gpu, [O, C, 1, 1], w1s);
    const y1 = await conv2dForward(x, w1, b, {}, 'tile', 'leaky').toArray();
    for (let o = 0; o < O; o++) {
      for (let p = 0; p < H * W; p++) {
        let acc = bs[o];
        for (let c = 0; c < C; c++) acc += xs[c * H * W + p] * w1s[o * C + c];
        maxError = Math.max(maxError, Math.abs(y1[o * H * W + p] - (acc > 0 ? acc : 0.1 * acc)));
      }
    }
    w1.dispose();
    const lx = [-2, -0.5, 0.25, 3, -1e-3, 7];
    const xl = Tensor.param(gpu, [2, 3], lx);
    const tape = newTape();
    const yl = tape.record(() => activation(xl, 'leaky'));
    tape.backward(yl);
    const [yv, gv] = [await yl.toArray(), await xl.grad!.toArray()];
    lx.forEach((v, i) => {
      maxError = Math.max(maxError, Math.abs(yv[i] - (v > 0 ? v : 0.1 * v)), Math.abs(gv[i] - (v > 0 ? 1 : 0.1)));
    });
    for (const t of [x, w, b, xl, yl, xl.grad!]) t.dispose();
    tape.dispose();
    const ok = maxError < 1e-4;
    return { ok, maxError, detail: `conv2d 3x3 + leaky (${algos.join(', ')}), 1x1 (tile), and leaky backward vs float64, max error ${maxError.toExponential(2)}` };
  } catch (e) {
    return { ok: false, maxError: Infinity, detail: (e as Error).message };
  }
}
