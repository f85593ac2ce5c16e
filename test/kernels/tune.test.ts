import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { adapterKey, tuneTable, TuneTable } from '../../src/gpu/tune.js';
import { loadTuning, saveTuning, tuneCacheDir, tuneCacheFile, writeTuneDefaults } from '../../src/gpu/tune-file.js';
import { autoConvAlgo, autoConvChoice, chooseConvAlgo, conv2dForward, convGeom, convPickName, convTuneKey, parseConvPick, pointwiseSupported } from '../../src/tensor/ops/conv2d.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/check.js';
import { autotuneConv, CONV_TUNE_CANDIDATES, convTuneCandidates } from '../../src/tensor/ops/conv_tune.js';
import { Network } from '../../src/darknet/network.js';
import { networkConvCases } from '../../src/darknet/tune.js';
import { packageRoot } from '../../src/util/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-tune-'));

test('tune: cache folder from the environment; adapter keys are file-name safe', () => {
  assert.is(tuneCacheDir({ YOLO_WGSL_CACHE_DIR: '/x/y' }), '/x/y');
  assert.is(tuneCacheDir({ YOLO_WGSL_CACHE_DIR: 'off' }), null);
  assert.is(tuneCacheDir({ XDG_CACHE_HOME: '/c' }), path.join('/c', 'yolo-wgsl'));
  const k = adapterKey({ kind: 'gpu', backend: 'vulkan', vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB/HBM3', description: '' });
  assert.is(k, 'gpu-vulkan-nvidia-hopper-nvidia-h100-80gb-hbm3');
  assert.is(tuneCacheFile(new TuneTable(k), { YOLO_WGSL_CACHE_DIR: '/t' }), `/t/tune-${k}.json`);
});

test('tune: conv2d auto follows a measured entry for its exact shape and pass, else the heuristic', async () => {
  const gpu = await getGpu();
  const g = convGeom([1, 5, 11, 13], [7, 5, 3, 3], { pad: 1 });
  const h = chooseConvAlgo(gpu.info.kind, g, 'fwd');
  assert.is(autoConvAlgo(gpu, g, 'fwd'), h);
  const other = h === 'direct' ? 'gemm_reg' : 'direct';
  tuneTable(gpu).set('conv2d', convTuneKey(g, 'fwd'), other, { [other]: 1 });
  try {
    assert.is(autoConvAlgo(gpu, g, 'fwd'), other);
    assert.is(autoConvAlgo(gpu, g, 'bwd_data'), chooseConvAlgo(gpu.info.kind, g, 'bwd_data'), 'other passes unaffected');
    const g2 = convGeom([2, 5, 11, 13], [7, 5, 3, 3], { pad: 1 });
    assert.is(autoConvAlgo(gpu, g2, 'fwd'), chooseConvAlgo(gpu.info.kind, g2, 'fwd'), 'another batch is another shape');
  } finally {
    tuneTable(gpu).clear();
  }
});

test('tune: gemm_reg tilings and tile blocks as picks: parsed, validated, followed by auto, same numbers as the default tiling', async () => {
  assert.equal(parseConvPick('gemm_reg@16x2x64'), { algo: 'gemm_reg', reg: { maxTM: 16, TN: 2, WG: 64 } });
  assert.equal(parseConvPick('tile@32x1x4'), { algo: 'tile', tile: { TM: 32, TR: 1, TN: 4 } });
  assert.equal(parseConvPick('direct'), { algo: 'direct' });
  assert.equal(parseConvPick('tile'), { algo: 'tile' });
  for (const bad of ['auto', 'gemm_reg@3x2x64', 'gemm_reg@16x2x7', 'gemm_reg@16x0x64', 'winograd', 'winograd2', 'tile@64x2x4', 'tile@12x2x4', 'tile@16x4x8', 'tile@16x0x4']) assert.is(parseConvPick(bad), null, bad);
  assert.is(convPickName({ algo: 'gemm_reg', reg: { maxTM: 8, TN: 8, WG: 32 } }), 'gemm_reg@8x8x32');
  assert.is(convPickName({ algo: 'tile', tile: { TM: 16, TR: 4, TN: 2 } }), 'tile@16x4x2');
  const gpu = await getGpu();
  const xs = [2, 6, 9, 7], ws = [20, 6, 3, 3];
  const g = convGeom(xs, ws, { pad: 1 });
  const x = Tensor.from(gpu, xs, Float32Array.from({ length: 2 * 6 * 9 * 7 }, (_, i) => Math.sin(i)));
  const w = Tensor.from(gpu, ws, Float32Array.from({ length: 20 * 6 * 9 }, (_, i) => Math.cos(i)));
  try {
    const ref = await conv2dForward(x, w, null, { pad: 1 }, 'gemm_reg').toArray();
    for (const pick of ['gemm_reg@16x2x64', 'gemm_reg@8x8x32', 'gemm_reg@32x1x64', 'tile@16x4x2', 'tile@32x1x4']) {
      tuneTable(gpu).set('conv2d', convTuneKey(g, 'fwd'), pick);
      assert.equal(autoConvChoice(gpu, g, 'fwd'), parseConvPick(pick));
      assertClose(await conv2dForward(x, w, null, { pad: 1 }).toArray(), ref, { atol: 1e-5, rtol: 1e-5 }, pick);
    }
  } finally {
    tuneTable(gpu).clear();
    x.dispose();
    w.dispose();
  }
});

test('tune: autotuneConv times every algorithm, records the fastest; save + load round trip; cache wins over defaults', async () => {
  const gpu = await getGpu();
  const table = tuneTable(gpu);
  try {
    const cases = [
      { x: [1, 4, 10, 10], w: [8, 4, 3, 3], p: { pad: 1 }, pass: 'fwd' as const, label: 'a' },
      { x: [1, 4, 10, 10], w: [8, 4, 3, 3], p: { pad: 1 }, pass: 'bwd_weights' as const, label: 'b' },
      { x: [1, 4, 10, 10], w: [8, 4, 3, 3], p: { pad: 1 }, pass: 'fwd' as const, label: 'dup' },
    ];
    const rows = await autotuneConv(gpu, cases, { samples: 2 });
    assert.is(rows.length, 3);
    for (const [i, r] of rows.slice(0, 2).entries()) {
      assert.not.ok(r.cached);
      // every candidate for the forward (both Winograd tiles included: 4 -> 8 channels); for dw the tile blocks
      // (the forward's) and winograd (a forward) are not timed, plain tile is
      const want = convTuneCandidates(convGeom(cases[i].x, cases[i].w, cases[i].p), cases[i].pass, undefined, gpu);
      assert.equal(Object.keys(r.ms).sort(), [...want].sort());
      assert.is(want.length, cases[i].pass === 'fwd' ? CONV_TUNE_CANDIDATES.length : CONV_TUNE_CANDIDATES.filter((a) => (!a.startsWith('tile') || a === 'tile') && !a.startsWith('winograd')).length);
      const best = Math.min(...Object.values(r.ms));
      assert.is(r.ms[r.pick], best, 'pick = fastest');
      assert.ok(best > 0);
      assert.is(table.get('conv2d', r.key)?.pick, r.pick);
    }
    assert.ok(rows[2].cached && rows[2].key === rows[0].key, 'a duplicate shape is measured once');
    // measured entries are kept: a second call runs nothing
    const again = await autotuneConv(gpu, cases.slice(0, 1));
    assert.ok(again[0].cached);

    const file = path.join(tmp, 'cache.json');
    assert.is(saveTuning(gpu, { cacheFile: file }), file);
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.is(saved.adapter, table.adapterKey);
    assert.equal(Object.keys(saved.entries).sort(), [`conv2d:${rows[0].key}`, `conv2d:${rows[1].key}`].sort());

    // defaults for the adapter kind: used where the cache has nothing, overridden where it has
    const defaults = path.join(tmp, 'defaults.json');
    const fake = `conv2d:${convTuneKey(convGeom([3, 3, 8, 8], [4, 3, 1, 1]), 'fwd')}`;
    fs.writeFileSync(defaults, JSON.stringify({ version: 1, adapter: gpu.info.kind, entries: { [fake]: { pick: 'direct' }, [`conv2d:${rows[0].key}`]: { pick: 'not-this' } } }));
    table.clear();
    const before = process.env.YOLO_WGSL_KERNELS;
    // loadTuning reads defaults from <kernels>/tune/<kind>.json
    const kernels = path.join(tmp, 'kernels');
    fs.mkdirSync(path.join(kernels, 'tune'), { recursive: true });
    fs.copyFileSync(defaults, path.join(kernels, 'tune', `${gpu.info.kind}.json`));
    process.env.YOLO_WGSL_KERNELS = kernels;
    try {
      const r = loadTuning(gpu, { cacheFile: file });
      assert.is(r.fromCache, 2);
      assert.is(r.fromDefaults, 1, 'the default for a cached key is not used');
      assert.is(table.get('conv2d', rows[0].key)?.pick, rows[0].pick);
      assert.is(table.get('conv2d', rows[0].key)?.source, 'cache');
      assert.is(table.get('conv2d', fake.slice('conv2d:'.length))?.source, 'default');
      const shipped = writeTuneDefaults(gpu, path.join(tmp, 'shipped.json'));
      assert.equal(Object.keys(JSON.parse(fs.readFileSync(shipped, 'utf8')).entries).length, 2, 'defaults are not re-shipped');
    } finally {
      if (before === undefined) delete process.env.YOLO_WGSL_KERNELS;
      else process.env.YOLO_WGSL_KERNELS = before;
    }
    // a damaged cache file is ignored, not fatal
    fs.writeFileSync(file, '{ not json');
    table.clear();
    assert.is(loadTuning(gpu, { cacheFile: file, defaults: false }).fromCache, 0);
  } finally {
    table.clear();
  }
});

test('tune: no tile blocks for a 1x1 forward that conv2d_pw.wgsl computes (one kernel, no block); blocks elsewhere', async () => {
  const gpu = await getGpu();
  const pw = convGeom([1, 16, 13, 13], [32, 16, 1, 1], {});
  const tiles = (c: string[]) => c.filter((a) => a.startsWith('tile'));
  const withGpu = convTuneCandidates(pw, 'fwd', undefined, gpu);
  if (pointwiseSupported(gpu, pw, 'f32')) assert.equal(tiles(withGpu), ['tile'], 'conv2d_pw: plain tile only');
  else assert.ok(tiles(withGpu).length > 1, 'no conv2d_pw here: the tile blocks');
  assert.ok(tiles(convTuneCandidates(pw, 'fwd')).length > 1, 'without the adapter: every block');
  assert.ok(tiles(convTuneCandidates(convGeom([1, 16, 13, 13], [32, 16, 3, 3], { pad: 1 }), 'fwd', undefined, gpu)).length > 1, '3x3: every block');
});

test('tune: network cases: forward per conv layer; training adds dw everywhere and dx except on the input layer', () => {
  const net = Network.fromFile(path.join(packageRoot(), 'fixtures/cfg/demo.cfg'));
  const convs = net.layers.filter((l) => l.kind === 'convolutional').length;
  const infer = networkConvCases(net, { batch: 2 });
  assert.is(infer.length, convs);
  assert.ok(infer.every((c) => c.pass === 'fwd' && c.x[0] === 2));
  const train = networkConvCases(net, { batch: 2, train: true });
  assert.is(train.length, 3 * convs - 1);
  assert.equal(train.filter((c) => c.label === 'layer 0').map((c) => c.pass), ['fwd', 'bwd_weights']);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
