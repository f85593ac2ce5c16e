/**
 * The GPU runtime: one GPUDevice with a pipeline cache (kernel + specialization), a buffer pool, command
 * batching (many dispatches per encoder and per compute pass, one submit per flush), asynchronous readback,
 * and error reporting that names the kernel.
 */
import { GpuError } from './errors.js';
import { BindGroupCache } from './bind-cache.js';
import { BufferPool, type HeldBuffers } from './pool.js';
// Node: Dawn through the `webgpu` package; the browser bundle swaps in adapter.browser.ts (navigator.gpu)
// and kernel-source.browser.ts (the WGSL files inlined), see scripts/build-browser.mjs.
import { selectAdapter, type AdapterDescription, type SelectOptions, type SelectedAdapter } from './adapter.js';
import { readKernelFile } from './kernel-source.js';
import { loadTuning } from './tune-file.js';
import { packUniforms, parseModuleUniforms, type ModuleUniforms, type UniformLayout, type Uniforms } from './uniforms.js';
import { BufferUsage, MapMode } from './usage.js';
import { activationCodesWgsl } from '../tensor/ops/act_codes.js';

export type { UniformLayout, UniformField, UniformType, Uniforms } from './uniforms.js';

/** A compute kernel: an entry point of kernels/<file>.wgsl, specialized by template defines and overrides. */
export interface KernelSpec {
  /** File name in kernels/ without `.wgsl`. */
  file: string;
  entry: string;
  /** `{{NAME}}` template substitutions (compile-time sizes such as register tiles). */
  defines?: Record<string, string | number>;
  /** WGSL `override` constants (workgroup size, flags). */
  constants?: Record<string, number>;
}

export interface Kernel {
  name: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** The uniform struct at @binding(0) its entry point reads, laid out (what dispatch packs). */
  uniforms: UniformLayout;
  /** Compiled with ST=f16 (its buffers hold f16 values; f16 tensors may only be bound to such kernels). */
  f16: boolean;
}

interface Profiler {
  qs: GPUQuerySet;
  cap: number;
  /** Kernel of each dispatch recorded since the last resolve (query pair i). */
  names: string[];
  reads: Promise<void>[];
  totals: Map<string, { ms: number; n: number }>;
  byGrid: boolean;
}


/**
 * Kernel-library files the loader generates instead of reading (`// #include "generated/..."`): constants
 * whose one source is a TS table, so no number is copied into WGSL by hand.
 */
export const GENERATED_INCLUDES: Readonly<Record<string, () => string>> = {
  'generated/act_codes.wgsl': activationCodesWgsl,
};

/**
 * Anything that wraps a storage buffer (a Tensor does). `offset` (bytes) places a view's values in the
 * buffer (copies and reads add it); `bindSize` set: bindings cover [offset, offset + bindSize) only.
 */
export interface HasBuffer { buffer: GPUBuffer; offset?: number; bindSize?: number; dtype?: 'f32' | 'f16'; describe?(): string }
export type Binding = GPUBuffer | HasBuffer;

const UNIFORM_SLOT = 256;
const UNIFORM_RING_SLOTS = 1024;

/** One command of a recording (Gpu.record). */
type RecordedOp =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; x: number; y: number; z: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; bytes: number }
  | { kind: 'upload'; dst: GPUBuffer; dstOffset: number; data: Uint8Array };

/** The commands of one submit of a recording, the uniform bytes they read, and their kernels (for errors). */
interface RecordedBatch { ops: RecordedOp[]; uniforms: ArrayBuffer; kernels: string[] }

/**
 * The commands a stretch of work issued (Gpu.record), to issue again without the JavaScript that made them
 * (Gpu.replay): pipelines, bind groups, workgroup counts, copies and the uniform bytes, per submit. `held`:
 * the buffers the work took from the pool, which stay the recording's (BufferPool.beginHold); release() hands
 * the free ones back.
 */
export class Recording {
  private released = false;
  constructor(private readonly gpu: Gpu, readonly batches: readonly RecordedBatch[], readonly held: HeldBuffers) {}

  get dispatches(): number {
    return this.batches.reduce((n, b) => n + b.ops.filter((o) => o.kind === 'dispatch').length, 0);
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Bytes of the buffers the recording holds (in use by its results or free for its replays). */
  get bytes(): number {
    let n = 0;
    for (const b of this.held.owned) n += b.size;
    return n;
  }

  /** Hands the recording's free buffers back to the pool; it cannot be replayed after. Safe to call twice. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.gpu.pool.giveBack(this.held);
  }
}

export interface GpuOptions extends SelectOptions {
  /** Validate after every dispatch (slow, exact kernel attribution). Default: YOLO_WGSL_DEBUG=1. */
  debug?: boolean;
  /**
   * Reads a file of the kernels folder by its relative name ('conv2d_direct.wgsl', 'lib/act.wgsl').
   * Default: the kernels/ shipped with the package (Node), or the copies inlined in the browser bundle.
   */
  kernelSource?: (file: string) => string;
  /**
   * Load the measured kernel choices for this adapter (src/gpu/tune-file.ts: the user's cache, then the
   * defaults shipped for the adapter kind); default true. Tests pass false for a machine-independent device.
   */
  tuning?: boolean;
  /**
   * Create the device with WebGPU's default limits (8 storage buffers per shader stage, ...), what a web page
   * gets unless it asks for more, instead of the adapter's; `limits` then reports the device's. Default
   * false. The tests compile every kernel this way, so that none needs more than the defaults.
   */
  defaultLimits?: boolean;
}

export class Gpu {
  readonly pool: BufferPool;
  /** Dispatches recorded since the device was created (for tests and benches). */
  dispatches = 0;
  submits = 0;
  /** @internal The bind groups dispatch reuses (src/gpu/bind-cache.ts); its hits and misses are for tests and benches. */
  readonly bindGroups = new BindGroupCache();
  private pipelines = new Map<string, Kernel>();
  private sources = new Map<string, string>();
  private modules = new Map<string, ModuleUniforms>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batchKernels: string[] = [];
  private uniformRing: GPUBuffer;
  private uniformData = new ArrayBuffer(UNIFORM_SLOT * UNIFORM_RING_SLOTS);
  private uniformU32 = new Uint32Array(this.uniformData);
  private uniformF32 = new Float32Array(this.uniformData);
  private uniformI32 = new Int32Array(this.uniformData);
  private uniformSlot = 0;
  private scratchU32 = new Uint32Array(UNIFORM_SLOT / 4);
  private scratchI32 = new Int32Array(this.scratchU32.buffer);
  private scratchF32 = new Float32Array(this.scratchU32.buffer);
  private staging: GPUBuffer[] = [];
  private readPool: GPUBuffer[] = [];
  private pending: Promise<GpuError | null>[] = [];
  private lost: GpuError | null = null;
  private uncaptured: GpuError | null = null;
  private readonly debug: boolean;
  private disposed = false;
  private collecting: Map<string, KernelSpec> | null = null;
  private prof: Profiler | null = null;
  private rec: { batches: RecordedBatch[]; ops: RecordedOp[]; kernels: string[] } | null = null;

  private readonly readKernel: (file: string) => string;

  private constructor(readonly device: GPUDevice, readonly info: AdapterDescription, debug: boolean, private readonly instance: GPU, readKernel: (file: string) => string) {
    this.debug = debug;
    this.readKernel = readKernel;
    this.pool = new BufferPool(device);
    this.uniformRing = device.createBuffer({ size: this.uniformData.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, label: 'uniform-ring' });
    device.lost.then((li) => {
      if (!this.disposed) this.lost = new GpuError('device-lost', this.batchKernels.join(', '), `${li.reason}: ${li.message}`);
    });
    const onError = (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (!this.uncaptured) this.uncaptured = this.toGpuError(err, this.batchKernels);
    };
    const d = device as unknown as { addEventListener?: (t: string, f: (e: Event) => void) => void; onuncapturederror?: unknown };
    if (typeof d.addEventListener === 'function') d.addEventListener('uncapturederror', onError);
    else d.onuncapturederror = onError;
  }

  /** Selects an adapter (real GPU, then lavapipe, then GL llvmpipe) and creates the device with its limits. */
  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    return Gpu.fromAdapter(await selectAdapter(opts), opts);
  }

  /** Creates the device on an adapter already chosen (its `instance` stays referenced by the Gpu). */
  static async fromAdapter(selected: SelectedAdapter, opts: GpuOptions = {}): Promise<Gpu> {
    const { adapter, instance } = selected;
    let info = selected.info;
    const requiredLimits: Record<string, number> = {};
    const L = adapter.limits as unknown as Record<string, number>;
    if (!opts.defaultLimits) for (const k of Object.keys(info.limits)) requiredLimits[k] = L[k];
    const wanted: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: `yolo-wgsl ${info.kind}` });
    } catch (e) {
      throw new GpuError('no-adapter', '', `requestDevice failed on ${info.summary}: ${(e as Error).message}`);
    }
    if (opts.defaultLimits) {
      const D = device.limits as unknown as Record<string, number>;
      info = { ...info, limits: Object.fromEntries(Object.keys(info.limits).map((k) => [k, D[k]])) };
    }
    const debug = opts.debug ?? (typeof process !== 'undefined' && process.env?.YOLO_WGSL_DEBUG === '1');
    const gpu = new Gpu(device, info, debug, instance, opts.kernelSource ?? readKernelFile);
    if (opts.tuning !== false) {
      const t = loadTuning(gpu);
      if (t.fromCache + t.fromDefaults > 0) opts.log?.(`device: conv tuning: ${t.fromCache} measured shapes (${t.cacheFile}), ${t.fromDefaults} shipped defaults`);
    }
    return gpu;
  }

  get limits(): Record<string, number> {
    return this.info.limits;
  }

  hasFeature(f: string): boolean {
    return this.device.features.has(f);
  }

  // ------------------------------------------------------------------ kernels

  /** The WGSL text of kernels/<file>.wgsl with defines substituted. */
  source(spec: KernelSpec): string {
    if (spec.defines?.ST === 'f16' && !this.hasFeature('shader-f16')) {
      throw new GpuError('limits', Gpu.kernelName(spec), `the f16 variant needs the adapter feature shader-f16, which ${this.info.summary} lacks`);
    }
    return expandTemplate(this.load(spec.file), spec);
  }

  /**
   * Loads a kernel module once: reads it, resolves its includes, and parses its uniform structs (a struct
   * the packer cannot lay out fails here, naming the file and field).
   */
  private load(file: string): string {
    let text = this.sources.get(file);
    if (text === undefined) {
      try {
        text = this.readKernel(`${file}.wgsl`);
      } catch (e) {
        throw new GpuError('compile', `${file}.wgsl`, `cannot read the kernel: ${(e as Error).message}`);
      }
      text = resolveIncludes(text, `${file}.wgsl`, new Set(), this.readKernel);
      this.modules.set(file, parseModuleUniforms(text, `${file}.wgsl`));
      this.sources.set(file, text);
    }
    return text;
  }

  /** The uniform struct an entry point reads at @binding(0), laid out (parsed once per module, cached). */
  uniformLayout(spec: KernelSpec): UniformLayout {
    this.load(spec.file);
    const l = this.modules.get(spec.file)!.forEntry(spec.entry);
    if (l.bindingSize > UNIFORM_SLOT) throw new GpuError('limits', Gpu.kernelName(spec), `uniform struct ${l.struct} takes ${l.size} bytes, above the ${UNIFORM_SLOT}-byte slot of the uniform ring`);
    return l;
  }

  static kernelName(spec: KernelSpec): string {
    const d = spec.defines ? Object.entries(spec.defines).map(([k, v]) => `${k}=${v}`) : [];
    const c = spec.constants ? Object.entries(spec.constants).map(([k, v]) => `${k}=${v}`) : [];
    const extra = [...d, ...c].join(',');
    return `${spec.file}.wgsl:${spec.entry}${extra ? `[${extra}]` : ''}`;
  }

  /** The compiled pipeline for a spec, from the cache or compiled now (errors reported at the next sync). */
  kernel(spec: KernelSpec): Kernel {
    const name = Gpu.kernelName(spec);
    let k = this.pipelines.get(name);
    if (k) return k;
    this.checkAlive();
    const code = this.source(spec);
    const uniforms = this.uniformLayout(spec);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: name });
    const pipeline = this.device.createComputePipeline({
      layout: 'auto',
      label: name,
      compute: { module, entryPoint: spec.entry, constants: spec.constants },
    });
    const check = this.device.popErrorScope().then(async (err) => {
      if (!err) return null;
      return new GpuError('compile', name, await compileMessage(module, err.message));
    });
    this.pending.push(check);
    k = { name, pipeline, layout: pipeline.getBindGroupLayout(0), uniforms, f16: spec.defines?.ST === 'f16' };
    this.pipelines.set(name, k);
    return k;
  }

  /** Compiles a kernel now and throws a GpuError naming it if WGSL or pipeline creation fails. */
  async compile(spec: KernelSpec): Promise<Kernel> {
    const name = Gpu.kernelName(spec);
    const cached = this.pipelines.get(name);
    if (cached) {
      await this.sync();
      return cached;
    }
    this.checkAlive();
    const code = this.source(spec);
    const uniforms = this.uniformLayout(spec);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: name });
    const moduleErr = await this.device.popErrorScope();
    if (moduleErr) throw new GpuError('compile', name, await compileMessage(module, moduleErr.message));
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.device.createComputePipelineAsync({ layout: 'auto', label: name, compute: { module, entryPoint: spec.entry, constants: spec.constants } });
    } catch (e) {
      throw new GpuError('compile', name, await compileMessage(module, (e as Error).message));
    }
    const k = { name, pipeline, layout: pipeline.getBindGroupLayout(0), uniforms, f16: spec.defines?.ST === 'f16' };
    this.pipelines.set(name, k);
    return k;
  }

  /**
   * Runs `fn` as a dry run: every dispatch it makes only records its kernel (nothing is encoded or run;
   * buffers it allocates are real). Returns the distinct kernels not yet compiled, for precompile().
   */
  collectKernels(fn: () => void): KernelSpec[] {
    if (this.collecting) throw new Error('collectKernels: already collecting');
    const found = new Map<string, KernelSpec>();
    this.collecting = found;
    try {
      fn();
    } finally {
      this.collecting = null;
    }
    return [...found.values()];
  }

  /** True inside collectKernels (a dry run: dispatches only record their kernel; layers keep no state from it). */
  get collectingKernels(): boolean {
    return this.collecting !== null;
  }

  /** Whether record() may run now (not inside collectKernels, a profile, debug mode or another recording). */
  get canRecord(): boolean {
    return !(this.collecting || this.prof || this.debug || this.rec);
  }

  /**
   * Runs `fn` (it records and submits as usual) and keeps the commands it issued (Recording), for replay().
   * The buffers it takes from the pool stay the recording's (BufferPool.beginHold), so that no one else
   * writes them between replays; the ones it already held (weights, inputs) must outlive the recording. `fn`
   * must issue the same commands whatever the data (no readback, no data-dependent shapes). Not inside
   * collectKernels, a profile or debug mode (a flush per dispatch), nor another recording.
   */
  record<T>(fn: () => T): { result: T; recording: Recording } {
    if (!this.canRecord) {
      throw new Error(`Gpu.record: not inside ${this.rec ? 'another recording' : this.collecting ? 'collectKernels' : this.prof ? 'a profile' : 'debug mode (YOLO_WGSL_DEBUG)'}`);
    }
    this.flush();
    this.rec = { batches: [], ops: [], kernels: [] };
    this.pool.beginHold();
    let result: T;
    try {
      result = fn();
      this.flush();
    } catch (e) {
      this.rec = null;
      new Recording(this, [], this.pool.endHold()).release();
      throw e;
    }
    const rec = this.rec;
    this.rec = null;
    return { result, recording: new Recording(this, rec.batches, this.pool.endHold()) };
  }

  /**
   * Issues a recording's commands again, in stream order after everything recorded so far (see record). They
   * join the open batch when it holds no dispatch yet (copies and uploads: the next input), and the last
   * recorded submit stays open, so that what follows (reading the outputs) joins it: a replay between an
   * upload and a readback costs the submits the recording had, not two more.
   */
  replay(r: Recording): void {
    this.checkAlive();
    if (r.isReleased) throw new Error('Gpu.replay: the recording was released');
    if (this.rec || this.collecting || this.prof) throw new Error(`Gpu.replay: not inside ${this.rec ? 'a recording' : this.collecting ? 'collectKernels' : 'a profile'}`);
    // the recorded dispatches bind uniform slots from 0: a batch that took slots already goes first
    if (this.uniformSlot > 0) this.flush();
    r.batches.forEach((b, i) => {
      if (i > 0) this.flush();
      for (const o of b.ops) {
        if (o.kind === 'dispatch') {
          const pass = this.beginPass();
          pass.setPipeline(o.pipeline);
          pass.setBindGroup(0, o.bindGroup);
          pass.dispatchWorkgroups(o.x, o.y, o.z);
          this.dispatches++;
        } else if (o.kind === 'copy') this.getEncoder().copyBufferToBuffer(o.src, o.srcOffset, o.dst, o.dstOffset, o.bytes);
        else {
          const stage = this.device.createBuffer({ size: o.data.byteLength, usage: BufferUsage.COPY_SRC, mappedAtCreation: true, label: 'upload' });
          new Uint8Array(stage.getMappedRange()).set(o.data);
          stage.unmap();
          this.getEncoder().copyBufferToBuffer(stage, 0, o.dst, o.dstOffset, o.data.byteLength);
          this.staging.push(stage);
        }
      }
      // the batch's uniforms, as recorded, in the slots its bind groups read
      new Uint8Array(this.uniformData).set(new Uint8Array(b.uniforms));
      this.uniformSlot = b.uniforms.byteLength / UNIFORM_SLOT;
      this.batchKernels.push(...b.kernels);
    });
  }

  /** A command encoder for one submit, under the two error scopes submitBatch closes. */
  private openBatch(label: string): GPUCommandEncoder {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    return this.device.createCommandEncoder({ label });
  }

  /**
   * Uploads the first `uniformBytes` of `uniforms` into the ring, submits `enc` (openBatch) and closes its
   * error scopes; an error they caught names `kernels` (reported by the next sync or read).
   */
  private submitBatch(enc: GPUCommandEncoder, uniforms: ArrayBuffer, uniformBytes: number, kernels: string[]): void {
    if (uniformBytes > 0) this.device.queue.writeBuffer(this.uniformRing, 0, uniforms, 0, uniformBytes);
    this.device.queue.submit([enc.finish()]);
    this.submits++;
    const val = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.pending.push(Promise.all([val, oom]).then(([v, o]) => (v ? this.toGpuError(v, kernels) : o ? this.toGpuError(o, kernels) : null)));
  }

  /**
   * Compiles kernels ahead of their first dispatch, all requested at once through
   * createComputePipelineAsync (Dawn may build them on worker threads); the first dispatch then finds them
   * in the cache. Throws a GpuError naming the first kernel that fails.
   */
  async precompile(specs: readonly KernelSpec[]): Promise<{ kernels: number; ms: number }> {
    const t0 = performance.now();
    const todo = specs.filter((s) => !this.pipelines.has(Gpu.kernelName(s)));
    await Promise.all(todo.map((s) => this.compile(s)));
    return { kernels: todo.length, ms: performance.now() - t0 };
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // ------------------------------------------------------------------ dispatch

  /**
   * Records one dispatch. `params` are the values of the uniform struct at @binding(0) by field name
   * (`{ n, alpha, beta }`), each written as the type the WGSL struct declares (u32, i32, f32): the struct is
   * the contract, parsed when the module is loaded (src/gpu/uniforms.ts). A missing or unknown field, or a
   * value its type cannot hold (a negative or fractional u32, ...), throws a GpuError('params') naming the
   * kernel and field. `bindings[i]` goes to @binding(i + 1), or use an object {binding: buffer}.
   * During collectKernels nothing is checked.
   */
  dispatch(spec: KernelSpec | Kernel, params: Uniforms, bindings: Binding[] | Record<number, Binding>, workgroups: [number, number?, number?]): void {
    if (this.collecting) {
      if (!('pipeline' in spec)) this.collecting.set(Gpu.kernelName(spec), spec);
      return;
    }
    const k = 'pipeline' in spec ? spec : this.kernel(spec);
    this.checkAlive();
    if (!k.f16) checkStorage(k.name, bindings);
    const [x, y = 1, z = 1] = workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new GpuError('limits', k.name, `dispatch of ${x}x${y}x${z} workgroups exceeds maxComputeWorkgroupsPerDimension ${maxWg}`);
    }
    if (x === 0 || y === 0 || z === 0) {
      // nothing runs, but the values are still checked (into a scratch slot)
      this.packParams(k, params, this.scratchU32, this.scratchI32, this.scratchF32, 0);
      return;
    }
    // A full profile resolves (and submits) before this dispatch takes its uniform slot: a slot taken first
    // would be reused by the next batch and overwritten before this dispatch ran (wrong uniforms: loops
    // with garbage trip counts).
    if (this.prof && this.prof.names.length >= this.prof.cap) this.profileResolve();
    if (this.uniformSlot >= UNIFORM_RING_SLOTS) this.flush();
    const slot = this.uniformSlot;
    this.packParams(k, params, this.uniformU32, this.uniformI32, this.uniformF32, (slot * UNIFORM_SLOT) / 4);
    this.uniformSlot++;
    if (this.debug) this.device.pushErrorScope('validation');
    const resources = Array.isArray(bindings)
      ? bindings.map((b, i) => [i + 1, resourceOf(b)] as const)
      : Object.entries(bindings).map(([i, b]) => [Number(i), resourceOf(b)] as const);
    this.bindGroups.epoch(this.pool.created); // bind groups do not outlive buffers the pool stopped reusing
    const bindGroup = this.bindGroups.get(k.layout, slot, resources, () => {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformRing, offset: slot * UNIFORM_SLOT, size: k.uniforms.bindingSize } }];
      for (const [binding, resource] of resources) entries.push({ binding, resource });
      return this.device.createBindGroup({ layout: k.layout, entries, label: k.name });
    });
    if (this.prof) {
      this.profiledDispatch(k, bindGroup, x, y, z);
      return;
    }
    const pass = this.beginPass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.rec) {
      this.rec.ops.push({ kind: 'dispatch', pipeline: k.pipeline, bindGroup, x, y, z });
      this.rec.kernels.push(k.name);
    }
    this.batchKernels.push(k.name);
    this.dispatches++;
    if (this.debug) {
      this.flush();
      const name = k.name;
      this.pending.push(this.device.popErrorScope().then((e) => (e ? this.toGpuError(e, [name]) : null)));
    }
  }

  private packParams(k: Kernel, params: Uniforms, u32: Uint32Array, i32: Int32Array, f32: Float32Array, base: number): void {
    packUniforms(k.uniforms, k.name, params, u32, i32, f32, base);
  }

  /** Splits n invocations over a 2-D grid of workgroups of size wg (kernels read gid.x + gid.y * nwg.x * wg). */
  grid(n: number, wg: number): [number, number] {
    const groups = Math.ceil(n / wg);
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (groups <= maxWg) return [Math.max(groups, 1), 1];
    const y = Math.ceil(groups / maxWg);
    return [Math.ceil(groups / y), y];
  }

  // ------------------------------------------------------------------ profiling

  /**
   * Starts timing every dispatch on the device's clock (needs the 'timestamp-query' feature: lavapipe and
   * real GPUs have it, GL compat does not). Each dispatch then gets its own compute pass with timestamp
   * writes, which adds a little overhead per dispatch; stopProfile() returns the totals per kernel, or with
   * `byGrid` per kernel and workgroup grid (which tells the layers of one kernel apart).
   */
  startProfile(opts: { byGrid?: boolean } = {}): void {
    if (!this.hasFeature('timestamp-query')) throw new GpuError('limits', '', `profiling needs the timestamp-query feature, which ${this.info.summary} lacks`);
    if (this.prof) return;
    this.flush();
    const cap = 1024;
    this.prof = { qs: this.device.createQuerySet({ type: 'timestamp', count: 2 * cap, label: 'profile' }), cap, names: [], reads: [], totals: new Map(), byGrid: opts.byGrid ?? false };
  }

  /** Stops profiling; per kernel (name without its specialization): total device ms and dispatch count. */
  async stopProfile(): Promise<Map<string, { ms: number; n: number }>> {
    const p = this.prof;
    if (!p) return new Map();
    this.profileResolve();
    this.prof = null;
    this.flush();
    await Promise.all(p.reads);
    p.qs.destroy();
    return p.totals;
  }

  private profiledDispatch(k: Kernel, bindGroup: GPUBindGroup, x: number, y: number, z: number): void {
    const p = this.prof!;
    const i = p.names.length; // < p.cap: dispatch() resolved a full profile first
    const pass = this.getEncoder().beginComputePass({ timestampWrites: { querySet: p.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    this.pass = null;
    const base = k.name.replace(/\[.*$/, '');
    p.names.push(p.byGrid ? `${base} ${x}x${y}x${z}` : base);
    this.batchKernels.push(k.name);
    this.dispatches++;
  }

  /** Resolves the recorded timestamps into a buffer and reads them back asynchronously into the totals. */
  private profileResolve(): void {
    const p = this.prof!;
    const n = p.names.length;
    if (!n) return;
    const names = p.names;
    p.names = [];
    const bytes = 16 * n;
    const resolved = this.device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC, label: 'profile.resolve' });
    const read = this.device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST, label: 'profile.read' });
    const enc = this.getEncoder();
    enc.resolveQuerySet(p.qs, 0, 2 * n, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, read, 0, bytes);
    this.flush();
    p.reads.push(read.mapAsync(MapMode.READ).then(() => {
      const t = new BigUint64Array(read.getMappedRange());
      names.forEach((name, i) => {
        const ns = Number(t[2 * i + 1] - t[2 * i]);
        const e = p.totals.get(name) ?? { ms: 0, n: 0 };
        e.ms += ns / 1e6;
        e.n++;
        p.totals.set(name, e);
      });
      read.unmap();
      read.destroy();
      resolved.destroy();
    }));
  }

  private beginPass(): GPUComputePassEncoder {
    this.encoder ??= this.openBatch('batch');
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  /** The open batch's encoder, outside a compute pass (for copies). */
  private getEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return (this.encoder ??= this.openBatch('batch'));
  }

  /** Copies bytes between buffers in stream order. */
  copy(src: Binding, srcOffset: number, dst: Binding, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const s = bufferOf(src);
    const d = bufferOf(dst);
    const so = offsetOf(src) + srcOffset;
    const dO = offsetOf(dst) + dstOffset;
    this.getEncoder().copyBufferToBuffer(s, so, d, dO, bytes);
    this.rec?.ops.push({ kind: 'copy', src: s, srcOffset: so, dst: d, dstOffset: dO, bytes });
  }

  /** Uploads data into a buffer in stream order (after every dispatch recorded so far). */
  upload(dst: Binding, data: ArrayBufferView, dstOffset = 0): void {
    const bytes = data.byteLength;
    if (bytes === 0) return;
    const padded = Math.ceil(bytes / 4) * 4;
    const stage = this.device.createBuffer({ size: padded, usage: BufferUsage.COPY_SRC, mappedAtCreation: true, label: 'upload' });
    new Uint8Array(stage.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
    stage.unmap();
    this.getEncoder().copyBufferToBuffer(stage, 0, bufferOf(dst), offsetOf(dst) + dstOffset, padded);
    this.staging.push(stage);
    if (this.rec) {
      const copy = new Uint8Array(padded);
      copy.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.rec.ops.push({ kind: 'upload', dst: bufferOf(dst), dstOffset: offsetOf(dst) + dstOffset, data: copy });
    }
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) {
      this.pool.collect(); // nothing recorded: no command can use what the pool let go of
      return;
    }
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const uniformBytes = this.uniformSlot * UNIFORM_SLOT;
    this.submitBatch(this.encoder, this.uniformData, uniformBytes, this.batchKernels);
    if (this.rec) {
      this.rec.batches.push({ ops: this.rec.ops, kernels: this.rec.kernels, uniforms: this.uniformData.slice(0, uniformBytes) });
      this.rec.ops = [];
      this.rec.kernels = [];
    }
    this.pool.collect(); // destroying after submit is allowed: the submitted work keeps them until it ran
    this.encoder = null;
    this.batchKernels = [];
    this.uniformSlot = 0;
    if (this.staging.length) {
      const s = this.staging;
      this.staging = [];
      // Destroying after submit is allowed: the copy already holds the data in queue order.
      for (const b of s) b.destroy();
    }
  }

  /** Flushes, waits for the GPU and throws the first error any recorded work produced. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Throws the first GPU error reported so far (compile, validation, out-of-memory, lost). */
  async checkErrors(): Promise<void> {
    const pend = this.pending;
    this.pending = [];
    const errs = await Promise.all(pend);
    const first = errs.find((e) => e);
    if (first) throw first;
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw e;
    }
    this.checkAlive();
  }

  /** Reads `bytes` from a buffer (flushes first). */
  async read(src: Binding, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const padded = Math.ceil(bytes / 4) * 4;
    let stage = this.readPool.findIndex((b) => b.size >= padded && b.size <= padded * 4 + 4096);
    const buf = stage >= 0 ? this.readPool.splice(stage, 1)[0] : this.device.createBuffer({ size: padded, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST, label: 'readback' });
    this.getEncoder().copyBufferToBuffer(bufferOf(src), offsetOf(src) + offset, buf, 0, padded);
    this.flush();
    try {
      await buf.mapAsync(MapMode.READ, 0, padded);
    } catch (e) {
      await this.checkErrors();
      throw new GpuError('internal', '', `readback failed: ${(e as Error).message}`);
    }
    const out = buf.getMappedRange(0, padded).slice(0, bytes);
    buf.unmap();
    if (this.readPool.length < 8) this.readPool.push(buf);
    else buf.destroy();
    await this.checkErrors();
    return out;
  }

  private checkAlive(): void {
    if (this.lost) throw this.lost;
    if (this.disposed) throw new GpuError('device-lost', '', 'the device was disposed');
  }

  private toGpuError(err: GPUError, kernels: string[]): GpuError {
    const kind = err.constructor?.name === 'GPUOutOfMemoryError' || /out of memory|OutOfMemory/i.test(err.message) ? 'out-of-memory' : err.constructor?.name === 'GPUInternalError' ? 'internal' : 'validation';
    // Dawn quotes the labels of the objects involved; every pipeline and bind group is labelled with its kernel.
    const named = [...new Set([...kernels, ...this.pipelines.keys()])].filter((k) => err.message.includes(`"${k}"`));
    const kernel = named.length ? named[0] : [...new Set(kernels)].join(', ');
    return new GpuError(kind, kernel, err.message.trim());
  }

  /** Destroys the device; later calls throw. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.trim();
    this.pool.collect();
    for (const b of this.readPool) b.destroy();
    this.device.destroy();
  }
}

/**
 * An f16 tensor bound to a kernel compiled without ST=f16 would be read as float32 garbage: refused, naming
 * the kernel and the binding (an op without an f16 variant must get f32 inputs: Network.forward casts them).
 */
function checkStorage(kernel: string, bindings: Binding[] | Record<number, Binding>): void {
  for (const [i, b] of Object.entries(bindings)) {
    if ('buffer' in b && b.dtype === 'f16') {
      const slot = Array.isArray(bindings) ? Number(i) + 1 : Number(i);
      throw new GpuError('params', kernel, `binding ${slot} is an f16 tensor ${b.describe?.() ?? ''}, but this kernel is the f32 variant (no ST=f16 define)`);
    }
  }
}

function bufferOf(b: Binding): GPUBuffer {
  return 'buffer' in b ? b.buffer : b;
}

/** The byte offset of a binding's values in its buffer (a view's; 0 otherwise). */
function offsetOf(b: Binding): number {
  return 'buffer' in b ? b.offset ?? 0 : 0;
}

/** The bind-group resource: the whole buffer, or a view's range. */
function resourceOf(b: Binding): GPUBufferBinding {
  if (!('buffer' in b) || b.bindSize === undefined) return { buffer: bufferOf(b) };
  return { buffer: b.buffer, offset: b.offset ?? 0, size: b.bindSize };
}

/**
 * WGSL has no includes: a line `// #include "lib/x.wgsl"` appends kernels/lib/x.wgsl to the end of the
 * source (module-scope declarations may come in any order), so line numbers in compile errors still match
 * the kernel's own file. Each file is included once. A name in GENERATED_INCLUDES (`generated/...`) is
 * generated from its TS table instead of read.
 */
export function resolveIncludes(text: string, name: string, seen = new Set<string>(), read: (file: string) => string = readKernelFile): string {
  const extra: string[] = [];
  for (const m of text.matchAll(/^\s*\/\/\s*#include\s+"([\w./-]+)"\s*$/gm)) {
    const inc = m[1];
    if (seen.has(inc)) continue;
    seen.add(inc);
    let body: string;
    try {
      body = Object.hasOwn(GENERATED_INCLUDES, inc) ? GENERATED_INCLUDES[inc]() : read(inc);
    } catch (e) {
      throw new GpuError('compile', name, `cannot read the included ${inc}: ${(e as Error).message}`);
    }
    extra.push(`\n// ---- included from ${inc}\n${resolveIncludes(body, name, seen, read)}`);
  }
  return extra.length ? text + extra.join('') : text;
}

/**
 * The storage type of the kernels that have an f16 variant (docs/kernels.md "f16 storage"): `{{ST}}` is the
 * element type of their activation / weight buffers, f32 unless a spec defines ST=f16 (storageDefines). The
 * one placeholder with a default: a spec that says nothing gets the f32 kernel, named as before.
 */
export const STORAGE_DEFAULTS: Readonly<Record<string, string>> = { ST: 'f32' };

/** The defines of a kernel's f16-storage variant for tensors of `dtype` (none for f32: the default). */
export function storageDefines(dtype: 'f32' | 'f16'): Record<string, string> {
  return dtype === 'f16' ? { ST: 'f16' } : {};
}

/**
 * Substitutes {{NAME}} placeholders; any left over is an error naming the kernel. ST=f16 also puts
 * `enable f16;` in front of the first line (same line: compile errors keep the file's line numbers).
 */
export function expandTemplate(text: string, spec: KernelSpec): string {
  const defs = spec.defines ?? {};
  const out = text.replace(/\{\{(\w+)\}\}/g, (all, name: string) => {
    if (name in defs) return String(defs[name]);
    if (name in STORAGE_DEFAULTS) return STORAGE_DEFAULTS[name];
    throw new GpuError('compile', Gpu.kernelName(spec), `template placeholder {{${name}}} has no define`);
  });
  return defs.ST === 'f16' ? `enable f16; ${out}` : out;
}

async function compileMessage(module: GPUShaderModule, fallback: string): Promise<string> {
  try {
    const info = await module.getCompilationInfo();
    const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `line ${m.lineNum}:${m.linePos}: ${m.message}`);
    if (msgs.length) return msgs.join('; ');
  } catch { /* fall back to the scope's message */ }
  return fallback.trim();
}
