/**
 * The TS <-> WGSL uniform contract (src/gpu/uniforms.ts): every kernel module's uniform struct parses
 * (compile-free), ops pass values by field name, and the packer refuses what does not match the struct with
 * a GpuError naming the kernel and the field. Packed bytes equal what the old positional packing wrote.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { GENERATED_INCLUDES, resolveIncludes, type KernelSpec } from '../../src/gpu/device.js';
import { GpuError } from '../../src/gpu/errors.js';
import { kernelSpecs, listKernelFiles } from '../../src/gpu/catalog.js';
import { readKernelFile } from '../../src/gpu/kernel-source.js';
import { packUniforms, parseModuleUniforms, stripComments, type UniformLayout, type Uniforms } from '../../src/gpu/uniforms.js';
import { BufferUsage, MapMode } from '../../src/gpu/usage.js';
import { ACTIVATIONS, ACT_CODE } from '../../src/tensor/ops/activation.js';
import { Tensor } from '../../src/tensor/index.js';

function moduleOf(file: string) {
  return parseModuleUniforms(resolveIncludes(readKernelFile(`${file}.wgsl`), `${file}.wgsl`), `${file}.wgsl`);
}

function throwsGpu(fn: () => unknown, kind: string, ...patterns: RegExp[]): GpuError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GpuError, String(e));
    const g = e as GpuError;
    assert.is(g.kind, kind, g.message);
    for (const p of patterns) assert.match(g.message, p);
    return g;
  }
  throw new Error('expected a GpuError');
}

/** Packs into fresh views; returns the struct's bytes. */
function pack(L: UniformLayout, params: Uniforms, kernel = 'test'): Uint8Array {
  const u32 = new Uint32Array(64);
  packUniforms(L, kernel, params, u32, new Int32Array(u32.buffer), new Float32Array(u32.buffer), 0);
  return new Uint8Array(u32.buffer, 0, L.size);
}

/** The positional packing dispatch did before the named form (plain numbers u32, tagged f32 / i32). */
function oldPack(values: (number | { f: number } | { i: number })[]): Uint8Array {
  const u32 = new Uint32Array(64);
  const f = new Float32Array(u32.buffer);
  const i32 = new Int32Array(u32.buffer);
  values.forEach((p, i) => {
    if (typeof p === 'number') u32[i] = p >>> 0;
    else if ('f' in p) f[i] = p.f;
    else i32[i] = p.i | 0;
  });
  return new Uint8Array(u32.buffer, 0, values.length * 4);
}

test('every kernel module: the uniform struct of each entry point parses (no compile)', () => {
  let entries = 0;
  for (const file of listKernelFiles()) {
    const m = moduleOf(file);
    assert.ok(m.variables.size >= 1, `${file}: a uniform at @group(0) @binding(0)`);
    for (const spec of kernelSpecs(file)) {
      const L = m.forEntry(spec.entry);
      assert.ok(L.fields.length > 0, `${file}:${spec.entry} reads its uniform struct`);
      assert.ok(L.bindingSize <= 256 && L.bindingSize % 16 === 0 && L.bindingSize >= L.size, `${file}:${spec.entry} binding size`);
      L.fields.forEach((f, i) => assert.is(f.offset, 4 * i, `${file} ${f.name}: scalars are packed 4 bytes apart`));
      entries++;
    }
  }
  assert.ok(entries >= 60, `${entries} entry points`);
});

test('the struct is found from the var<uniform> declaration: its variable and type names, per entry point', () => {
  const bn = moduleOf('batchnorm').forEntry('normalize');
  assert.is(bn.variable, 'U');
  assert.is(bn.struct, 'Params');
  assert.equal(bn.fields.map((f) => `${f.name}:${f.type}`), ['C:u32', 'HW:u32', 'M:u32', 'L:u32', 'P:u32', 'n:u32', 'keep:f32', 'mom:f32', 'eps:f32', 'planes:u32', 'ipp:u32', 'w4:u32']);
  // yolo_loss.wgsl has two uniforms at binding 0: the entry's call graph says which one it reads
  const yl = moduleOf('yolo_loss');
  assert.is(yl.forEntry('dn_neg').struct, 'Params');
  assert.is(yl.forEntry('dn_pos').variable, 'P');
  assert.is(yl.forEntry('scale_by').struct, 'Small');
  assert.is(yl.forEntry('finish').variable, 'Q');
  assert.equal(yl.forEntry('finish').fields.map((f) => f.type), ['u32', 'f32', 'f32']);
  // conv2d's struct comes from the included lib/conv_params.wgsl
  const conv = moduleOf('conv2d_direct').forEntry('fwd');
  assert.is(conv.fields.length, 36);
  assert.is(conv.fields[23].name, 't0');
  assert.equal(conv.fields.slice(27).map((f) => f.name), ['pool_h', 'pool_w', 'wrow', 'wcin', 'wflip', 'oplane', 'ooff', 'orow', 'ocol']);
});

test('parser: comments, nested comments and an unusual declaration order', () => {
  const text = `
    /* struct Params { x: vec4f, } /* nested */ still comment */
    @group(0) @binding(0) var<uniform> Knobs: Settings; // declared before its struct
    struct Settings {
      a: u32, // the count
      b: i32,
      c /* inline */ : f32,
    }
    @compute @workgroup_size(1) fn main() { let v = Knobs.a; }`;
  const L = parseModuleUniforms(text, 'inline.wgsl').forEntry('main');
  assert.is(L.variable, 'Knobs');
  assert.equal(L.fields.map((f) => `${f.name}:${f.type}@${f.offset}`), ['a:u32@0', 'b:i32@4', 'c:f32@8']);
  assert.is(L.size, 12);
  assert.is(L.bindingSize, 16);
  assert.not.match(stripComments('a // b /* c\nd /* e /* f */ g */ h'), /[bcefg]/);
});

test('parser: a field type the packer cannot lay out fails at load, naming the file, struct and field', () => {
  const head = '@group(0) @binding(0) var<uniform> P: Params;\n@compute @workgroup_size(1) fn main() { _ = P.n; }\n';
  throwsGpu(() => parseModuleUniforms(`struct Params { n: u32, dir: vec4f, }\n${head}`, 'vec_test.wgsl'), 'compile', /vec_test\.wgsl/, /field 'dir'/, /vec4f/, /Params/);
  throwsGpu(() => parseModuleUniforms(`struct Params { n: u32, w: array<f32, 4>, }\n${head}`, 'arr_test.wgsl'), 'compile', /arr_test\.wgsl/, /field 'w'/, /array<f32,4>/);
  throwsGpu(() => parseModuleUniforms(`struct Params { n: u32, @align(16) m: u32, }\n${head}`, 'align_test.wgsl'), 'compile', /align_test\.wgsl/, /@align/);
  throwsGpu(() => parseModuleUniforms(`${head}`, 'nostruct_test.wgsl'), 'compile', /nostruct_test\.wgsl/, /Params/);
  throwsGpu(() => parseModuleUniforms('@group(0) @binding(0) var<uniform> P: vec4f;\n', 'scalar_test.wgsl'), 'compile', /scalar_test\.wgsl/, /vec4f/);
});

test('dispatch: a kernel whose uniform struct cannot be laid out fails when it is loaded', async () => {
  const gpu = await getGpu();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-kernels-'));
  fs.writeFileSync(path.join(dir, 'badparams_test.wgsl'), 'struct Params { n: u32, v: vec2f, }\n@group(0) @binding(0) var<uniform> P: Params;\n@compute @workgroup_size(1)\nfn main() { _ = P.n; }\n');
  const prev = process.env.YOLO_WGSL_KERNELS;
  process.env.YOLO_WGSL_KERNELS = dir;
  try {
    throwsGpu(() => gpu.dispatch({ file: 'badparams_test', entry: 'main' }, { n: 1, v: 0 }, {}, [1]), 'compile', /badparams_test\.wgsl/, /field 'v'/);
  } finally {
    if (prev === undefined) delete process.env.YOLO_WGSL_KERNELS;
    else process.env.YOLO_WGSL_KERNELS = prev;
  }
});

test('dispatch: missing, unknown and ill-typed fields are GpuErrors naming the kernel and the field', async () => {
  const gpu = await getGpu();
  const t = new Tensor(gpu, [4]);
  const spec: KernelSpec = { file: 'elementwise', entry: 'fill', constants: { WG: 256 } };
  const dispatch = (p: Record<string, unknown>, groups: [number] = [1]) => () => gpu.dispatch(spec, p as Uniforms, { 3: t }, groups);
  const kernel = /elementwise\.wgsl:fill/;
  throwsGpu(dispatch({ n: 4, alpha: 1 }), 'params', kernel, /missing field 'beta'/);
  throwsGpu(dispatch({ n: 4, alpha: 1, beta: 0, gamma: 2 }), 'params', kernel, /unknown field 'gamma'/);
  throwsGpu(dispatch({ n: 4, alpha: 1, gamma: 2 }), 'params', kernel, /missing field 'beta'/, /unknown field 'gamma'/);
  throwsGpu(dispatch({ n: 1.5, alpha: 1, beta: 0 }), 'params', kernel, /field 'n' \(u32\) is 1\.5, not an integer/);
  throwsGpu(dispatch({ n: -1, alpha: 1, beta: 0 }), 'params', kernel, /field 'n' \(u32\) is -1: a u32 cannot be negative/);
  throwsGpu(dispatch({ n: NaN, alpha: 1, beta: 0 }), 'params', kernel, /field 'n' \(u32\) is NaN: an integer field needs a finite value/);
  throwsGpu(dispatch({ n: Infinity, alpha: 1, beta: 0 }), 'params', kernel, /field 'n'.*finite/);
  throwsGpu(dispatch({ n: 2 ** 32, alpha: 1, beta: 0 }), 'params', kernel, /field 'n'.*u32 maximum/);
  throwsGpu(dispatch({ n: 4, alpha: '1', beta: 0 }), 'params', kernel, /field 'alpha' \(f32\) is string "1", not a number/);
  throwsGpu(dispatch({ n: true, alpha: 1, beta: 0 }), 'params', kernel, /field 'n'/);
  // checked even when nothing runs
  throwsGpu(dispatch({ n: 0, alpha: 1 }, [0]), 'params', kernel, /missing field 'beta'/);
  // a refused dispatch records nothing: the device goes on
  const before = gpu.dispatches;
  gpu.dispatch(spec, { n: 4, alpha: 2.5, beta: 0 }, { 3: t }, [1]);
  assert.is(gpu.dispatches, before + 1);
  assert.equal([...(await t.toArray())], [2.5, 2.5, 2.5, 2.5]);
  t.dispose();
});

test('packer: i32 fields take negative integers; f32 fields any number', () => {
  const L = parseModuleUniforms('struct S { a: i32, b: f32, c: u32, }\n@group(0) @binding(0) var<uniform> P: S;\n', 'i32_test.wgsl').forEntry('main');
  const bytes = pack(L, { a: -7, b: -0.25, c: 0xffffffff });
  const v = new DataView(bytes.buffer);
  assert.is(v.getInt32(0, true), -7);
  assert.is(v.getFloat32(4, true), -0.25);
  assert.is(v.getUint32(8, true), 0xffffffff);
  throwsGpu(() => pack(L, { a: 0.5, b: 0, c: 0 }, 'i32_test.wgsl:main'), 'params', /i32_test\.wgsl:main/, /field 'a' \(i32\) is 0\.5, not an integer/);
  throwsGpu(() => pack(L, { a: 2 ** 31, b: 0, c: 0 }), 'params', /field 'a'.*i32 range/);
  assert.is(new DataView(pack(L, { a: 0, b: Infinity, c: 0 }).buffer).getFloat32(4, true), Infinity);
});

test('packed bytes equal the old positional packing (yolo_loss, conv2d, yolo_decode, optim)', async () => {
  const gpu = await getGpu();
  // yolo_loss dn_neg: 22 mixed u32 / f32 values, as loss_darknet.ts used to send them
  const yl = gpu.uniformLayout({ file: 'yolo_loss', entry: 'dn_neg' });
  assert.equal(
    pack(yl, { n: 768, A: 3, H: 16, W: 16, C: 80, netW: 416, netH: 416, flavor: 1, iouLoss: 4, newCoords: 0, scaleXY: 1.05, ignoreThresh: 0.7, objNorm: 1, maxDelta: 3.4028234663852886e38, offAnch: 0, offImg: 6, offTruth: 9, offSlot: 41, offBox: 113, zero: 0, cells: 768, objSmooth: 1 }),
    oldPack([768, 3, 16, 16, 80, { f: 416 }, { f: 416 }, 1, 4, 0, { f: 1.05 }, { f: 0.7 }, { f: 1 }, { f: 3.4028234663852886e38 }, 0, 6, 9, 41, 113, 0, 768, 1]),
  );
  // conv2d: the first 27 named fields are the old positional words 0..26 (word 27, pad0 = 0, is gone);
  // pool_h, pool_w (the tile kernel's fused maxpool, issue 15), wrow, wcin, wflip (its weight addressing) and
  // oplane, ooff, orow, ocol (its destination) came after them
  const conv = gpu.uniformLayout({ file: 'conv2d_reg', entry: 'fwd', defines: { TM: 4, TN: 4, ENABLE: '', SG: 1, SGARG: '', SGLANE: '0u', SHUFFLE: 'noshuffle' }, constants: { WG: 64 } });
  const old = [2, 3, 13, 11, 8, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 3, 8, 16, 8, 1, 0, 0, 65535, 1, 1, 16, 0];
  const named = { B: 2, Cin: 3, H: 13, W: 11, Cout: 8, OH: 7, OW: 6, KH: 3, KW: 3, SY: 2, SX: 2, PY: 1, PX: 1, DY: 1, DX: 1, G: 1, Cg: 3, Mg: 8, Ctot: 16, Coff: 8, S: 1, chunk: 0, n: 0, t0: 65535, act: 1, has_bias: 1, kt: 16 };
  assert.equal(pack(conv, { ...named, pool_h: 0, pool_w: 0, wrow: 27, wcin: 9, wflip: 0, oplane: 42, ooff: 0, orow: 6, ocol: 1 }).slice(0, 27 * 4), oldPack(old).slice(0, 27 * 4));
  // yolo_decode rows and optim adam (f32 fields in the middle and at the end)
  const dec = gpu.uniformLayout({ file: 'yolo_decode', entry: 'rows' });
  assert.equal(
    pack(dec, { B: 2, A: 3, C: 80, H: 13, W: 13, net_w: 416, net_h: 416, scale_xy: 1, thresh: -3.4028234663852886e38, head: 0, cap: 0, rec: 10 }),
    oldPack([2, 3, 80, 13, 13, { f: 416 }, { f: 416 }, { f: 1 }, { f: -3.4028234663852886e38 }, 0, 0, 10]),
  );
  const adam = gpu.uniformLayout({ file: 'optim', entry: 'adam', constants: { WG: 256 } });
  assert.equal(
    pack(adam, { n: 1000, lr: 1e-3, momentum: 0, dampening: 0, decay: 5e-4, gscale: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step_size: 1e-3 / 0.1, inv_sqrt_bc2: 1 / Math.sqrt(0.001), flags: 4 }),
    oldPack([1000, { f: 1e-3 }, { f: 0 }, { f: 0 }, { f: 5e-4 }, { f: 1 }, { f: 0.9 }, { f: 0.999 }, { f: 1e-8 }, { f: 1e-3 / 0.1 }, { f: 1 / Math.sqrt(0.001) }, 4]),
  );
  // the bound size is what it was: ceil(fields / 4) * 16 bytes
  for (const L of [yl, conv, dec, adam]) assert.is(L.bindingSize, Math.ceil(L.fields.length / 4) * 16);
});

test('activation codes: one TS table, generated into the WGSL the kernels include', () => {
  const gen = GENERATED_INCLUDES['generated/act_codes.wgsl']();
  for (const a of ACTIVATIONS) assert.match(gen, new RegExp(`const ACT_${a.toUpperCase()}: u32 = ${ACT_CODE[a]}u;`));
  assert.equal(ACTIVATIONS.map((a) => ACT_CODE[a]), ACTIVATIONS.map((_, i) => i));
  const act = resolveIncludes(readKernelFile('activation.wgsl'), 'activation.wgsl');
  assert.ok(act.includes(gen), 'activation.wgsl gets the generated constants through lib/act.wgsl');
  // no WGSL file spells an activation code as a number any more
  for (const file of ['lib/act.wgsl', 'activation.wgsl', 'shortcut.wgsl', 'conv2d_direct.wgsl']) {
    assert.not.match(stripComments(readKernelFile(file)), /case [0-9]u/, file);
    assert.not.match(readKernelFile(file), /[0-5] (linear|leaky|logistic|relu|mish|swish)\b/, file);
  }
});

test('one sigmoid (and softplus) per numerics, named for it: sigmoid_darknet / sigmoid_stable in lib/sigmoid.wgsl', () => {
  for (const file of listKernelFiles()) {
    const code = stripComments(resolveIncludes(readKernelFile(`${file}.wgsl`), `${file}.wgsl`));
    for (const name of ['sigmoid', 'logistic', 'softplus', 'sigmoid_darknet', 'sigmoid_stable', 'softplus_darknet', 'softplus_stable']) {
      const defs = code.match(new RegExp(`\\bfn\\s+${name}\\s*\\(`, 'g'))?.length ?? 0;
      assert.ok(defs <= (name.includes('_') ? 1 : 0), `${file}: ${defs} definitions of ${name}`);
    }
  }
  const lib = readKernelFile('lib/sigmoid.wgsl');
  assert.match(lib, /fn sigmoid_darknet/);
  assert.match(lib, /fn sigmoid_stable/);
});

test('BufferUsage / MapMode hold the values of the WebGPU globals', async () => {
  await getGpu(); // loads Dawn, which defines the globals
  for (const [k, v] of Object.entries(BufferUsage)) assert.is(v, (GPUBufferUsage as unknown as Record<string, number>)[k], `GPUBufferUsage.${k}`);
  for (const [k, v] of Object.entries(MapMode)) assert.is(v, (GPUMapMode as unknown as Record<string, number>)[k], `GPUMapMode.${k}`);
});

test.run();
