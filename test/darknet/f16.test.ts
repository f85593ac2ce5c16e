/**
 * Inference at precision f16 (src/darknet/precision.ts, docs/kernels.md "f16 storage"): which layers run on
 * f16 storage, a whole network f16 against f32, a layer without an f16 variant between f16 layers (the casts
 * around it), the `auto` choice and its tune record, and the refusals.
 *
 * Whole-network tolerance: every f16 layer stores its output rounded to a half (<= 2^-11 relative with the
 * round-to-nearest lavapipe does; <= 2^-10 where WGSL's other neighbour is chosen), and a layer passes the
 * error it received on, scaled by its weights: the head convolutions' outputs of yolo-mini (8 stored layers
 * deep) are held to 4e-3 of their largest magnitude, about 8 half ulps (measured: 1.2e-3).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { localAvgpoolRef } from '../reference/pool.js';
import { Engine, loadDarknet, GpuError, type Detection } from '../../src/index.js';
import { main } from '../../src/cli/main.js';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { autotunePrecision, checkPrecision, precisionKey, resolvePrecision, PRECISION_FAMILY } from '../../src/darknet/precision.js';
import { Gpu } from '../../src/gpu/device.js';
import { tuneTable } from '../../src/gpu/tune.js';
import { loadTuning, saveTuning } from '../../src/gpu/tune-file.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { packageRoot } from '../../src/util/paths.js';

const root = packageRoot();
const MINI = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
const IMAGES = fs.readdirSync(path.join(root, 'fixtures/images')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => path.join(root, 'fixtures/images', f));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'yw-f16-'));

async function f16Gpu(): Promise<Gpu | null> {
  const gpu = await getGpu();
  if (gpu.hasFeature('shader-f16')) return gpu;
  console.log(`  [skipped: f16 inference: ${gpu.info.summary} has no shader-f16]`);
  return null;
}

/** A smooth deterministic input batch [B, c, h, w] in [0, 1]. */
function inputFor(gpu: Gpu, net: Network, B: number): Tensor {
  const I = net.input;
  const n = B * I.c * I.h * I.w;
  return Tensor.from(gpu, [B, I.c, I.h, I.w], Float32Array.from({ length: n }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.013) * Math.cos(i * 0.0007)));
}

/** Every dispatch's kernel name while `fn` runs (the device's dispatch, spied on and restored). */
function dispatched(gpu: Gpu, fn: () => void): string[] {
  const names: string[] = [];
  const orig = gpu.dispatch;
  gpu.dispatch = function (this: Gpu, ...args: Parameters<Gpu['dispatch']>) {
    const spec = args[0];
    names.push('pipeline' in spec ? spec.name : Gpu.kernelName(spec));
    return orig.apply(this, args);
  };
  try {
    fn();
  } finally {
    gpu.dispatch = orig;
  }
  return names;
}

// ---------------------------------------------------------------- which layers run on f16

/** The layer kinds with f16 kernels (Layer.inferStorage): docs/kernels.md lists the same. */
const F16_KINDS = ['convolutional', 'maxpool', 'route', 'shortcut', 'upsample', 'yolo', 'dropout'];

test('the common YOLO cfgs run every layer on f16 storage; the corpus lists the layer kinds that take the cast', () => {
  for (const f of ['demo.cfg', 'yolo-mini.cfg']) {
    const net = Network.fromFile(path.join(root, 'fixtures/cfg', f));
    assert.equal(net.layers.filter((l) => l.inferStorage('f16') !== 'f16').map((l) => `${l.index} ${l.kind}`), [], f);
  }
  const shared = sharedDir();
  if (!shared) return noteMissingShared('the f16 check of the corpus cfgs');
  const dir = path.join(shared, 'darknet-cfg');
  for (const f of ['yolov3-tiny.cfg', 'yolov4-tiny.cfg', 'yolov3.cfg', 'yolov4.cfg']) {
    const net = Network.fromFile(path.join(dir, f));
    assert.equal(net.layers.filter((l) => l.inferStorage('f16') !== 'f16').map((l) => `${l.index} ${l.kind}`), [], f);
  }
  // the rest of the corpus: which kinds run in f32 between casts (xnor / binary convs are f32 too)
  const cast = new Map<string, number>();
  let all = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cfg'))) {
    const net = Network.fromFile(path.join(dir, f));
    const kinds = net.layers.filter((l) => l.inferStorage('f16') === 'f32').map((l) => (l.kind === 'convolutional' ? 'convolutional (xnor / binary)' : l.kind));
    if (!kinds.length) all++;
    for (const k of new Set(kinds)) cast.set(k, (cast.get(k) ?? 0) + 1);
  }
  const list = [...cast.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (${n} cfgs)`);
  console.log(`  f16: ${all} corpus cfgs run every layer on f16 storage; the layers that take the cast: ${list.join(', ')}`);
  for (const k of F16_KINDS.filter((x) => x !== 'convolutional')) assert.not.ok(cast.has(k), `${k} has f16 kernels`);
  assert.ok(cast.has('convolutional (xnor / binary)') && cast.has('avgpool') && cast.has('softmax'), 'xnor convs, [avgpool], [softmax] take the cast');
});

// ---------------------------------------------------------------- a whole network

/** yolo-mini with seeded weights whose head convolutions are scaled up (confident, spread-out scores). */
async function miniWeights(gpu: Gpu): Promise<string> {
  const m = await loadDarknet({ cfg: MINI, engine: new Engine(gpu), seed: 7, precision: 'f32', precompile: false });
  for (const h of m.network.heads()) {
    const w = m.network.layers[h.sources[0]].data!.weights;
    for (let i = 0; i < w.length; i++) w[i] *= 40;
  }
  const file = path.join(tmp(), 'mini.weights');
  await m.save(file);
  m.dispose();
  return file;
}

const iou = (a: Detection['box'], b: Detection['box']) => {
  const iw = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const ih = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const u = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - iw * ih;
  return u > 0 ? (iw * ih) / u : 0;
};

test('yolo-mini f16 vs f32: head outputs within 4e-3 of their scale, the same detections above conf 0.5', async () => {
  const gpu = await f16Gpu();
  if (!gpu) return;
  const engine = new Engine(gpu);
  const weights = await miniWeights(gpu);
  const m32 = await loadDarknet({ cfg: MINI, weights, engine, precision: 'f32' });
  const m16 = await loadDarknet({ cfg: MINI, weights, engine, precision: 'f16' });
  assert.is(m32.precision, 'f32');
  assert.is(m16.precision, 'f16');
  const net = m16.network;
  const feeds = net.heads().map((l) => l.sources[0]);
  const x = inputFor(gpu, net, 2);
  const o32 = m32.forward(x, { keep: feeds });
  const o16 = m16.forward(x, { keep: feeds });
  assert.equal([...o16.keys()], [...o32.keys()]);
  for (const [k, t] of o16) {
    assert.is(t.dtype, 'f32', `layer ${k}: forward returns float32`);
    const a = await o32.get(k)!.toArray();
    const b = await t.toArray();
    const scale = maxAbs(a);
    assert.ok(scale > 0.5, `layer ${k} has a scale (${scale})`);
    const err = assertClose(b, a, { atol: 4e-3 * scale, rtol: 0 }, `layer ${k} (${net.layers[k].kind}) f16 vs f32`);
    assert.ok(err > 0, 'f16 differs from f32 at all');
  }
  for (const t of new Set([...o32.values(), ...o16.values()])) t.dispose();
  x.dispose();
  // detections: every one above conf + delta in either run is in the other (same class, IoU >= 0.99, score within delta)
  const conf = 0.5;
  const delta = 2e-3;
  const d32 = await m32.detectBatch(IMAGES, { conf });
  const d16 = await m16.detectBatch(IMAGES, { conf });
  let n = 0;
  for (let i = 0; i < IMAGES.length; i++) {
    for (const [from, to, what] of [[d32[i], d16[i], 'f32 -> f16'], [d16[i], d32[i], 'f16 -> f32']] as const) {
      for (const d of from.filter((e) => e.score >= conf + delta)) {
        n++;
        const m = to.find((e) => e.classId === d.classId && iou(e.box, d.box) >= 0.99 && Math.abs(e.score - d.score) <= delta);
        assert.ok(m, `${path.basename(IMAGES[i])} ${what}: no match for ${JSON.stringify(d)}`);
      }
    }
  }
  assert.ok(n >= 40, `${n} detections compared`);
  m32.dispose();
  m16.dispose();
});

// ---------------------------------------------------------------- layers without f16 kernels

const FALLBACK_CFG = `
[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[local_avgpool]
size=2
stride=2

[convolutional]
batch_normalize=1
xnor=1
filters=8
size=3
pad=1
activation=leaky

[reorg]
stride=2

[convolutional]
filters=16
size=1
activation=mish

[route]
layers=-1,-2

[convolutional]
filters=21
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=4,5, 8,9, 12,14
classes=2
num=3
`;

test('layers without f16 kernels ([local_avgpool], an xnor conv, [reorg]) run in f32 between casts, as in f32 mode', async () => {
  const gpu = await f16Gpu();
  if (!gpu) return;
  const net = Network.build(parseCfg(FALLBACK_CFG, 'fallback.cfg'));
  net.initWeights(5);
  const x = inputFor(gpu, net, 2);
  const all = net.layers.map((l) => l.index);
  net.prepare(gpu, 'infer', { precision: 'f32' });
  const ref = net.forward(x, { keep: all });
  const want = await Promise.all(all.map((i) => ref.get(i)!.toArray()));
  for (const t of new Set(ref.values())) t.dispose();
  net.prepare(gpu, 'infer', { precision: 'f16' });
  assert.is(net.inferPrecision, 'f16');
  net.prepare(gpu, 'infer');
  assert.is(net.inferPrecision, 'f16', 'a precision given to prepare stays the network\'s setting');
  assert.equal(net.layers.map((l) => l.inferStorage('f16')), ['f16', 'f32', 'f32', 'f32', 'f16', 'f16', 'f16', 'f16']);
  // the casts: the input into the first conv, its output out to [local_avgpool], [reorg]'s float32 output into
  // the 1x1 conv and into the [route] (once per f16 reader), the [yolo] output back to float32: nothing else
  const kernels = dispatched(gpu, () => {
    for (const t of new Set(net.forward(x).values())) t.dispose();
  });
  assert.equal(kernels.filter((k) => k.startsWith('cast.wgsl')).map((k) => k.replace(/4?\[.*/, '')), ['cast.wgsl:to_st', 'cast.wgsl:from_st', 'cast.wgsl:to_st', 'cast.wgsl:to_st', 'cast.wgsl:from_st']);
  // the four convs: the f16 variant but for the xnor one; the route and the head activation in f16 too
  assert.equal(kernels.filter((k) => k.startsWith('conv2d_')).map((k) => k.includes('ST=f16')), [true, false, true, true], kernels.join(' '));
  assert.ok(kernels.some((k) => /^yolo_act.wgsl:fwd4?\[ST=f16/.test(k)), kernels.join(' '));
  const outs = net.forward(x, { keep: all });
  const got = await Promise.all(all.map((i) => outs.get(i)!.toArray()));
  for (const t of new Set(outs.values())) t.dispose();
  // [local_avgpool] in f16 mode: exactly its float64 reference on the f16 conv output it was given (cast in exactly)
  const lap = localAvgpoolRef(got[0], [2, 8, 32, 32], { size: 2, strideX: 2, strideY: 2, padding: 1 });
  assertClose(got[1], lap.y, { atol: 1e-7, rtol: 1e-6 }, '[local_avgpool] on the f16 conv output');
  // and every layer, f16 mode vs f32 mode, within the f16 bound of the layers before it (xnor binarizes its
  // input: a value within an f16 error of 0 could flip sign, none does on this input)
  for (const i of all) assertClose(got[i], want[i], { atol: 4e-3 * maxAbs(want[i]), rtol: 0 }, `layer ${i} ${net.layers[i].kind} f16 vs f32`);
  x.dispose();
  net.release();
});

test('a conv whose folded weights exceed the half range keeps f32 weights and runs in f32 between casts', async () => {
  const gpu = await f16Gpu();
  if (!gpu) return;
  const net = Network.build(parseCfg(FALLBACK_CFG, 'big-weights.cfg'));
  net.initWeights(5);
  net.layers[4].data!.weights[3] = 1e5;
  net.prepare(gpu, 'infer', { precision: 'f16' });
  assert.equal(net.layers.map((l) => l.inferStorage('f16')), ['f16', 'f32', 'f32', 'f32', 'f32', 'f16', 'f16', 'f16']);
  assert.equal(net.parameters('infer').filter((p) => p.name === 'weights').map((p) => `${p.layer.index}:${p.tensor.dtype}`), ['0:f16', '2:f32', '4:f32', '6:f16']);
  // its output (beyond the half range too, which an f16 layer would have stored as infinity) is finite
  const x = inputFor(gpu, net, 1);
  const outs = net.forward(x, { keep: [4] });
  const y4 = await outs.get(4)!.toArray();
  assert.ok(y4.every(Number.isFinite) && maxAbs(y4) > 65504, `layer 4 max |y| ${maxAbs(y4)}`);
  for (const t of new Set(outs.values())) t.dispose();
  x.dispose();
  net.release();
});

// ---------------------------------------------------------------- auto, the tune, refusals

test('auto: f32 without a tune record; f16 where the table says f16 was faster; autotunePrecision records its pick', async () => {
  const gpu = await f16Gpu();
  if (!gpu) return;
  const net = Network.build(parseCfg(FALLBACK_CFG.replace('filters=16', 'filters=12'), 'auto.cfg'));
  net.initWeights(2);
  const key = precisionKey(net);
  assert.match(key, /^32x32x3:8L:[0-9a-f]{16}$/);
  assert.is.not(key, precisionKey(Network.build(parseCfg(FALLBACK_CFG, 'other.cfg'))));
  assert.is(precisionKey(Network.build(parseCfg(FALLBACK_CFG.replace('filters=16', 'filters=12'), 'renamed.cfg'))), key, 'the file name does not matter');
  const table = tuneTable(gpu);
  assert.is(table.get(PRECISION_FAMILY, key), undefined);
  net.prepare(gpu, 'infer');
  assert.is(net.inferPrecision, 'f32');
  table.set(PRECISION_FAMILY, key, 'f16', { f32: 2, f16: 1 });
  net.prepare(gpu, 'infer');
  assert.is(net.inferPrecision, 'f16');
  // f32 is timed as auto runs it without an f16 record (float32 storage, Winograd where it applies), although
  // the table says f16 while the tune runs
  const seen: string[] = [];
  const prepare = net.prepare.bind(net);
  net.prepare = ((g, m, o) => {
    prepare(g, m, o);
    seen.push(`${o?.precision}:${net.inferPrecision}`);
  }) as typeof net.prepare;
  const r = await autotunePrecision(gpu, net, { batch: 1, samples: 1, force: true });
  net.prepare = prepare;
  assert.equal([...new Set(seen)], ['auto:f32', 'f16:f16']);
  assert.is(r.cached, false);
  assert.ok(r.ms.f32! > 0 && r.ms.f16! > 0, JSON.stringify(r.ms));
  assert.is(r.pick, r.ms.f16! < 0.95 * r.ms.f32! ? 'f16' : 'f32');
  assert.is(table.get(PRECISION_FAMILY, key)!.pick, r.pick);
  net.prepare(gpu, 'infer');
  assert.is(net.inferPrecision, r.pick);
  assert.is((await autotunePrecision(gpu, net)).cached, true, 'a measured pick is kept');
  table.set(PRECISION_FAMILY, key, 'f32');
  net.release();
});

test('tune files: an old file (conv picks only) still loads, and a precision pick survives save and load', async () => {
  const fake = { info: { kind: 'lavapipe', backend: 'vulkan', vendor: 'test', architecture: '', device: 'f16-tune-file', description: 'f16 tune file test', summary: 'test adapter' } } as unknown as Gpu;
  const dir = tmp();
  const file = path.join(dir, 'tune.json');
  const table = tuneTable(fake);
  fs.writeFileSync(file, JSON.stringify({ version: 1, adapter: table.adapterKey, entries: { 'conv2d:fwd:B1:3x8x8:4x3x3:s1x1:p1x1:d1x1:g1': { pick: 'tile', ms: { tile: 1 } } } }));
  assert.is(loadTuning(fake, { cacheFile: file, defaults: false }).fromCache, 1);
  assert.is(table.get('conv2d', 'fwd:B1:3x8x8:4x3x3:s1x1:p1x1:d1x1:g1')!.pick, 'tile');
  table.set(PRECISION_FAMILY, '32x32x3:8L:0123456789abcdef', 'f16', { f32: 3, f16: 2 });
  saveTuning(fake, { cacheFile: file });
  table.clear();
  assert.is(loadTuning(fake, { cacheFile: file, defaults: false }).fromCache, 2);
  assert.equal(table.get(PRECISION_FAMILY, '32x32x3:8L:0123456789abcdef'), { pick: 'f16', ms: { f32: 3, f16: 2 }, source: 'cache' });
});

test('refusals: f16 in training, f16 without shader-f16 (naming the adapter), an unknown precision', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(MINI);
  net.initWeights(1);
  assert.throws(() => net.prepare(gpu, 'train', { precision: 'f16' }), /yolo-mini\.cfg: precision f16 is for inference only; training runs in f32/);
  // an adapter without the feature (a stand-in, and the real GL adapter where it can be created)
  const noF16 = { hasFeature: () => false, info: { summary: 'Test Adapter 9000 (no f16)', kind: 'cpu' } } as unknown as Gpu;
  assert.throws(() => resolvePrecision(noF16, net, 'f16'), (e: Error) => e instanceof GpuError && /precision f16 needs the adapter feature shader-f16, which Test Adapter 9000 \(no f16\) lacks/.test(e.message));
  assert.is(resolvePrecision(noF16, net, 'auto'), 'f32');
  assert.throws(() => Tensor.empty(noF16, [3], 'h', 'f16'), /an f16 tensor 'h' needs the adapter feature shader-f16, which Test Adapter 9000/);
  let gl: Gpu | null = null;
  try {
    gl = await Gpu.create({ backend: 'gl', tuning: false });
  } catch (e) {
    console.log(`  [the GL adapter could not be created here (${(e as Error).message.split('\n')[0]}): its refusal is not checked]`);
  }
  if (gl) {
    try {
      assert.not.ok(gl.hasFeature('shader-f16'), 'GL (compatibility) has no shader-f16');
      assert.throws(() => net.prepare(gl!, 'infer', { precision: 'f16' }), (e: Error) => e instanceof GpuError && e.message.includes(gl!.info.summary) && /shader-f16/.test(e.message));
      net.prepare(gl, 'infer', { precision: 'auto' });
      assert.is(net.inferPrecision, 'f32');
      net.release();
    } finally {
      gl.dispose();
    }
  }
  assert.throws(() => checkPrecision('f8'), /precision must be one of auto, f32, f16, got "f8"/);
  await loadDarknet({ cfg: MINI, engine: new Engine(gpu), precision: 'f8' as never }).then(
    () => assert.unreachable('loadDarknet with precision f8'),
    (e: Error) => assert.match(e.message, /precision must be one of auto, f32, f16, got "f8"/),
  );
  const e = await main(['detect', '--cfg', MINI, '--source', IMAGES[0], '--precision', 'f8']).then(() => null, (x: Error) => x);
  assert.ok(e && /precision/.test(e.message) && /f8/.test(e.message) && /auto, f32, f16|"auto", "f32", "f16"/.test(e.message), `detect --precision f8: ${e?.message}`);
});

test.run();
