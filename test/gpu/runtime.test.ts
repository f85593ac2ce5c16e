import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { Gpu } from '../../src/gpu/device.js';
import { GpuError } from '../../src/gpu/errors.js';
import { sizeClass } from '../../src/gpu/pool.js';
import { allKernelSpecs } from '../../src/gpu/catalog.js';
import { parseBackend } from '../../src/gpu/adapter.js';
import { Tensor, fill, scale } from '../../src/tensor/index.js';

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

test('adapter is reported with backend, kind and requested limits', async () => {
  const gpu = await getGpu();
  assert.ok(['gpu', 'lavapipe', 'llvmpipe', 'cpu'].includes(gpu.info.kind));
  assert.ok(gpu.info.summary.length > 10);
  // the device was created with the adapter's limits, not the WebGPU defaults
  assert.is(gpu.device.limits.maxStorageBufferBindingSize, gpu.info.limits.maxStorageBufferBindingSize);
  assert.is(gpu.device.limits.maxComputeWorkgroupStorageSize, gpu.info.limits.maxComputeWorkgroupStorageSize);
});

test('every kernel entry point in kernels/ compiles', async () => {
  const gpu = await getGpu();
  const specs = allKernelSpecs();
  assert.ok(specs.length >= 7, `found ${specs.length} entry points`);
  for (const s of specs) await gpu.compile(s);
});

test('every kernel entry point fits WebGPU\'s default limits (8 storage buffers per stage: what a page gets)', async () => {
  const gpu = await getGpu();
  if (gpu.info.featureLevel !== 'core') {
    // compatibility mode has lower defaults (workgroups of 128); the engine asks such adapters for their own
    console.log(`  [skipped: the default-limits check needs a core-level adapter; ${gpu.info.summary} is not]`);
    return;
  }
  const d = await Gpu.create({ backend: parseBackend(process.env.YOLO_WGSL_BACKEND), defaultLimits: true, tuning: false });
  try {
    assert.is(d.limits.maxStorageBuffersPerShaderStage, 8, 'the device has the default limit');
    assert.ok(gpu.limits.maxStorageBuffersPerShaderStage >= 8);
    for (const s of allKernelSpecs()) await d.compile(s);
  } finally {
    d.dispose();
  }
});

test('a WGSL compile error is a GpuError naming the kernel and the line', async () => {
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-kernels-'));
  fs.writeFileSync(path.join(dir, 'broken_test.wgsl'), 'struct Params { n: u32, }\n@group(0) @binding(0) var<uniform> P: Params;\n@compute @workgroup_size(64)\nfn main() { let x: f32 = undefined_thing; }\n');
  const prev = process.env.YOLO_WGSL_KERNELS;
  process.env.YOLO_WGSL_KERNELS = dir;
  try {
    const e = await rejects(gpu.compile({ file: 'broken_test', entry: 'main' }));
    assert.instance(e, GpuError);
    const g = e as GpuError;
    assert.is(g.kind, 'compile');
    assert.is(g.kernel, 'broken_test.wgsl:main');
    assert.match(g.message, /broken_test\.wgsl:main/);
    assert.match(g.message, /line 4/);
    assert.match(g.message, /undefined_thing/);
  } finally {
    if (prev === undefined) delete process.env.YOLO_WGSL_KERNELS;
    else process.env.YOLO_WGSL_KERNELS = prev;
  }
});

test('a missing template define is an error naming the kernel', async () => {
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-kernels-'));
  fs.writeFileSync(path.join(dir, 'templ_test.wgsl'), 'const T: u32 = {{TILE}}u;\n');
  process.env.YOLO_WGSL_KERNELS = dir;
  try {
    assert.throws(() => gpu.kernel({ file: 'templ_test', entry: 'main' }), /templ_test\.wgsl:main.*\{\{TILE\}\}/);
  } finally {
    delete process.env.YOLO_WGSL_KERNELS;
  }
});

test('a validation error at dispatch surfaces at sync as a GpuError naming the kernel', async () => {
  const gpu = await getGpu();
  const t = Tensor.from(gpu, [4], [1, 2, 3, 4]);
  // 'axpy' reads binding 1 and writes binding 3; leaving out binding 1 is invalid
  gpu.dispatch({ file: 'elementwise', entry: 'axpy', constants: { WG: 256 } }, { n: 4, alpha: 1, beta: 0 }, { 3: t }, [1]);
  const e = await rejects(gpu.sync());
  assert.instance(e, GpuError);
  assert.is((e as GpuError).kind, 'validation');
  assert.match((e as GpuError).kernel, /elementwise\.wgsl:axpy/);
  // the device stays usable afterwards
  fill(t, 5);
  assert.equal([...(await t.toArray())], [5, 5, 5, 5]);
  t.dispose();
});

test('a tensor above maxStorageBufferBindingSize is refused with its shape', async () => {
  const gpu = await getGpu();
  const max = gpu.limits.maxStorageBufferBindingSize;
  const side = Math.ceil(Math.sqrt(max / 4 / 3)) + 1;
  assert.throws(() => new Tensor(gpu, [1, 4, side, side], 'activations'), (e: unknown) =>
    e instanceof GpuError && e.kind === 'limits' && e.message.includes(`[1, 4, ${side}, ${side}]`) && /maxStorageBufferBindingSize/.test(e.message));
});

test('too many workgroups in one dimension is refused before Dawn sees it', async () => {
  const gpu = await getGpu();
  const t = new Tensor(gpu, [4]);
  assert.throws(() => gpu.dispatch({ file: 'elementwise', entry: 'fill', constants: { WG: 256 } }, { n: 4, alpha: 0, beta: 0 }, { 3: t }, [70000]), /maxComputeWorkgroupsPerDimension/);
  // gpu.grid folds large counts into 2-D
  const [x, y] = gpu.grid(300_000 * 256, 256);
  assert.ok(x <= 65535 && y > 1 && x * y >= 300_000);
  t.dispose();
});

test('large fills use the 2-D grid correctly', async () => {
  const gpu = await getGpu();
  // 70000 workgroups of 1 invocation would not fit one dimension; force it with WG=1
  const n = 70001;
  const t = new Tensor(gpu, [n]);
  const groups = gpu.grid(n, 1);
  assert.ok(groups[1] > 1);
  gpu.dispatch({ file: 'elementwise', entry: 'fill', constants: { WG: 1 } }, { n, alpha: 2.5, beta: 0 }, { 3: t }, groups);
  const v = await t.toArray();
  assert.ok(v.every((x) => x === 2.5), 'every element written exactly');
  t.dispose();
});

test('pipeline cache: one pipeline per kernel + specialization', async () => {
  const gpu = await getGpu();
  const before = gpu.pipelineCount;
  const a = gpu.kernel({ file: 'activation', entry: 'fwd', constants: { WG: 64, ACT: 3 } });
  const b = gpu.kernel({ file: 'activation', entry: 'fwd', constants: { WG: 64, ACT: 3 } });
  const c = gpu.kernel({ file: 'activation', entry: 'fwd', constants: { WG: 64, ACT: 4 } });
  assert.is(a, b);
  assert.is.not(a, c);
  assert.is(gpu.pipelineCount, before + 2);
  assert.is(Gpu.kernelName({ file: 'activation', entry: 'fwd', constants: { WG: 64, ACT: 4 } }), 'activation.wgsl:fwd[WG=64,ACT=4]');
});

test('buffer pool reuses buffers by size class; many dispatches share one submit', async () => {
  const gpu = await getGpu();
  assert.is(sizeClass(1), 256);
  assert.is(sizeClass(1000), 1024);
  assert.is(sizeClass(1500), 1536);
  assert.ok(sizeClass(100_000) >= 100_000 && sizeClass(100_000) < 100_000 * 1.34);
  const t = new Tensor(gpu, [300]);
  const buf = t.buffer;
  t.dispose();
  const u = new Tensor(gpu, [290]);
  assert.is(u.buffer, buf, 'same size class reuses the released buffer');
  await gpu.sync();
  const submits = gpu.submits;
  for (let i = 0; i < 50; i++) fill(u, i);
  assert.is(gpu.submits, submits, 'nothing submitted while recording');
  const v = await u.toArray();
  assert.is(v[0], 49);
  assert.is(gpu.submits, submits + 1, 'one submit for 50 dispatches and the readback');
  u.dispose();
  assert.throws(() => u.buffer, /used after dispose/);
});

test('bind groups are reused across flushes, with the uniforms of each dispatch and new buffers after a trim', async () => {
  const gpu = await getGpu();
  const a = Tensor.from(gpu, [1000], Float32Array.from({ length: 1000 }, (_, i) => i));
  const round = async (alpha: number) => {
    await gpu.sync(); // each round starts at uniform slot 0
    const b = scale(a, alpha);
    const v = await b.toArray();
    b.dispose();
    return [v[0], v[1], v[999]];
  };
  assert.equal(await round(2), [0, 2, 1998]);
  const { hits, misses } = gpu.bindGroups;
  // the same kernel, slot and buffers (the pool hands b's buffer back), new uniform values
  assert.equal(await round(3), [0, 3, 2997]);
  assert.is(gpu.bindGroups.hits, hits + 1, 'the second round found its bind group');
  assert.is(gpu.bindGroups.misses, misses);
  // the pool's buffers destroyed: the next output buffer is a new buffer, so a new bind group
  const keep = gpu.pool.maxCached;
  gpu.pool.maxCached = 0;
  try {
    gpu.pool.trim();
    await gpu.sync();
    assert.equal(await round(5), [0, 5, 4995]);
    assert.is(gpu.bindGroups.misses, misses + 1);
  } finally {
    gpu.pool.maxCached = keep;
  }
  a.dispose();
});

test('buffer pool: a buffer let go of past the cache limit outlives the submit of the commands that use it', async () => {
  // A tensor disposed right after the dispatch that reads it, with the pool's cache full: the pool used to
  // destroy the buffer at once, and the submit failed ("used in submit while destroyed"; profiling several
  // networks in one process hit it). Trimmed buffers likewise.
  const gpu = await getGpu();
  const keep = gpu.pool.maxCached;
  gpu.pool.maxCached = 0;
  try {
    const a = Tensor.from(gpu, [1000], Float32Array.from({ length: 1000 }, (_, i) => i));
    const b = scale(a, 2);
    a.dispose();
    const c = Tensor.from(gpu, [1000], new Float32Array(1000).fill(1));
    const d = scale(c, 3);
    c.dispose();
    gpu.pool.trim();
    assert.equal([...(await b.toArray()).slice(0, 3)], [0, 2, 4]);
    assert.is((await d.toArray())[999], 3);
    b.dispose();
    d.dispose();
  } finally {
    gpu.pool.maxCached = keep;
  }
});

test('a lost device is reported as a GpuError on the next use', async () => {
  const gpu = await getGpu();
  const other = await Gpu.create({ backend: parseBackend(gpu.info.kind === 'llvmpipe' ? 'gl' : gpu.info.kind === 'lavapipe' ? 'lavapipe' : 'auto') });
  const t = new Tensor(other, [8]);
  other.device.destroy(); // not via dispose(): the runtime sees an unexpected loss
  await other.device.lost;
  await new Promise((r) => setTimeout(r, 0));
  assert.throws(() => fill(t, 1), (e: unknown) => e instanceof GpuError && e.kind === 'device-lost' && /destroyed/.test(e.message));
});

test('backend names are validated', () => {
  assert.is(parseBackend('vulkan'), 'lavapipe');
  assert.is(parseBackend('GL'), 'gl');
  assert.throws(() => parseBackend('metalx'), /unknown backend 'metalx'/);
});

test.run();
