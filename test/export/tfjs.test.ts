/**
 * `export --format tfjs` (src/export/tfjs): the GraphModel folder, loaded by TF.js's own loader
 * (tf.loadGraphModel through an IOHandler that reads the folder's files and hands model.json to
 * tf.io.getModelArtifactsForJSON, as the http / file handlers do) and run on the CPU backend, against this
 * engine's forward on the same input (NCHW for ours, NHWC for TF.js), within 1e-4 of max|value| per output:
 * - yolov3-tiny, yolov4-tiny, yolov7-tiny (../shared/darknet-cfg) at 96, and the bundled cfgs (fixtures/cfg),
 *   with the cross-check's seeded weights (test/helpers/crosscheck.ts: initWeights(7), perturb(8));
 * - small networks holding every other layer kind the engine builds, and every activation (batch 2);
 * - `decode`: the `boxes` output against src/yolo/decode.ts decodeRows;
 * - a recurrent layer refused at its cfg line; the CLI command writing the folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { crosscheckInput, crosscheckNetwork, relErr } from '../helpers/crosscheck.js';
import { perturb } from '../helpers/perturb.js';
import { Network } from '../../src/darknet/network.js';
import { CfgError, parseCfg } from '../../src/darknet/cfg.js';
import { LAYER_KINDS, type LayerKind } from '../../src/darknet/registry.js';
import { loadWeights, saveWeights } from '../../src/darknet/weights.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { networkToTfjs, type TfjsModel } from '../../src/export/tfjs/index.js';
import { decodeRows } from '../../src/yolo/decode.js';
import { headFromLayer, isHeadLayer } from '../../src/yolo/heads.js';
import { runExport } from '../../src/cli/export.js';
import { packageRoot } from '../../src/util/paths.js';
import { MINI, mini } from './mini_nets.js';

const TOL = 1e-4;
const root = packageRoot();

/** An IOHandler over a folder's files (a Map, or read from disk): model.json and the shards it lists. */
function folderHandler(read: (name: string) => Uint8Array): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(new TextDecoder().decode(read('model.json'))) as tf.io.ModelJSON;
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const parts: Uint8Array[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) parts.push(read(p));
        }
        const all = new Uint8Array(parts.reduce((t, p) => t + p.length, 0));
        let o = 0;
        for (const p of parts) {
          all.set(p, o);
          o += p.length;
        }
        return [specs, all.buffer];
      });
    },
  };
}

const fromFiles = (files: Map<string, Uint8Array>) => folderHandler((n) => {
  const f = files.get(n);
  if (!f) throw new Error(`no ${n} in the export`);
  return f;
});

/** NCHW -> NHWC (host). */
function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) out[((b * h + y) * w + xx) * c + ch] = x[((b * c + ch) * h + y) * w + xx];
  return out;
}

let ready: Promise<unknown> | undefined;

/** Every layer kind met by the comparisons below (checked against the registry at the end). */
const covered = new Set<string>();

/**
 * Exports `net` (or takes `model`, its export), runs it in TF.js (CPU backend) and our forward on the same
 * batch and compares every output (`boxes` against decodeRows). Returns "name err" per output.
 */
async function compare(net: Network, opts: { decode?: boolean; layers?: number[] } = {}, batch = 1, model?: TfjsModel, handler?: tf.io.IOHandler): Promise<string[]> {
  ready ??= tf.setBackend('cpu').then(() => tf.ready());
  await ready;
  const gpu = await getGpu();
  const m = model ?? networkToTfjs(net, opts);
  const I = net.input;
  const shape = [batch, I.c, I.h, I.w];
  const xv = crosscheckInput(batch * I.c * I.h * I.w);
  const gm = await tf.loadGraphModel(handler ?? fromFiles(m.files));
  const xt = tf.tensor4d(nchwToNhwc(xv, batch, I.c, I.h, I.w), [batch, I.h, I.w, I.c]);
  const names = m.outputs.map((o) => o.name);
  const got = gm.execute({ [m.input.name]: xt }, names);
  const res = Array.isArray(got) ? got : [got];
  const data = await Promise.all(res.map((t) => t.data() as Promise<Float32Array>));
  const shapes = res.map((t) => t.shape);
  tf.dispose([xt, ...res]);
  gm.dispose();
  net.prepare(gpu, 'infer');
  const x = Tensor.from(gpu, shape, xv, 'input');
  const heads = net.heads().filter(isHeadLayer);
  const outs = net.forward(x, { keep: opts.decode ? heads.map((l) => l.sources[0]) : opts.layers ?? [] });
  const report: string[] = [];
  try {
    m.outputs.forEach((o, k) => {
      assert.equal(shapes[k], o.shape.map((d) => (d < 0 ? batch : d)), `${o.name} shape`);
    });
    for (let k = 0; k < m.outputs.length; k++) {
      const o = m.outputs[k];
      const want = o.layer >= 0 ? await outs.get(o.layer)!.toArray() : await decodedRows(net, heads, outs, batch);
      const err = outputErr(o.name, data[k], want);
      report.push(`${o.name} ${err.toExponential(2)}`);
      assert.ok(err <= TOL, `${path.basename(net.file)} ${o.name}: max|TF.js - ours| = ${err.toExponential(3)} of max|value| > ${TOL}`);
    }
  } finally {
    for (const t of new Set(outs.values())) t.dispose();
    x.dispose();
    net.release();
  }
  for (const l of net.layers) covered.add(l.kind);
  return report;
}

/** max|a − e| / max|e| over the values that are not Darknet's −FLT_MAX padding taps (those must be equal). */
function outputErr(name: string, a: Float32Array, e: Float32Array): number {
  const FLT_MAX = 3.4028234663852886e38;
  const ai: number[] = [];
  const ei: number[] = [];
  assert.is(a.length, e.length, `${name}: length`);
  for (let i = 0; i < e.length; i++) {
    if (Math.abs(e[i]) >= FLT_MAX) assert.is(a[i], e[i], `${name}[${i}]: Darknet's padding value`);
    else {
      ai.push(a[i]);
      ei.push(e[i]);
    }
  }
  assert.ok(maxAbs(ei) > 0, `${name}: nothing non-zero to compare`);
  return relErr(ai, ei);
}

/** src/yolo/decode.ts decodeRows of every head, boxes times the input size, heads concatenated per image. */
async function decodedRows(net: Network, heads: ReturnType<Network['heads']>, outs: Map<number, Tensor>, batch: number): Promise<Float32Array> {
  const size = { width: net.input.w, height: net.input.h };
  const per: Float32Array[] = [];
  for (const l of heads) {
    if (!isHeadLayer(l)) throw new Error('not a decodable head');
    const rows = decodeRows(outs.get(l.sources[0])!, headFromLayer(l).spec, size);
    const v = await rows.toArray();
    rows.dispose();
    const K = rows.shape[2];
    for (let i = 0; i < v.length; i += K) {
      v[i] *= size.width;
      v[i + 1] *= size.height;
      v[i + 2] *= size.width;
      v[i + 3] *= size.height;
    }
    per.push(v);
  }
  const out = new Float32Array(per.reduce((t, v) => t + v.length, 0));
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (const v of per) {
      const n = v.length / batch;
      out.set(v.subarray(b * n, (b + 1) * n), o);
      o += n;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ real cfgs

for (const cfg of ['yolov3-tiny.cfg', 'yolov4-tiny.cfg', 'yolov7-tiny.cfg']) {
  test(`${cfg} at 96x96: TF.js GraphModel matches forward`, async () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared(`the TF.js export check of ${cfg}`);
    const t = performance.now();
    const net = crosscheckNetwork(path.join(shared, 'darknet-cfg', cfg), 96);
    const r = await compare(net);
    console.log(`  ${cfg} ${net.input.w}x${net.input.h}: ${r.join(', ')} (relative to max|value|; ${(performance.now() - t).toFixed(0)} ms)`);
  });
}

const bundled = fs.readdirSync(path.join(root, 'fixtures/cfg')).filter((f) => f.endsWith('.cfg')).sort();
for (const f of bundled) {
  test(`bundled ${f}: TF.js GraphModel matches forward`, async () => {
    const net = crosscheckNetwork(path.join(root, 'fixtures/cfg', f), 96);
    const r = await compare(net);
    console.log(`  ${f} ${net.input.w}x${net.input.h}: ${r.join(', ')}`);
  });
}

// ------------------------------------------------------------------------------------ other layer kinds


for (const name of Object.keys(MINI)) {
  test(`layer kinds: the ${name} network, TF.js matches forward (batch 2)`, async () => {
    const net = mini(name);
    // every layer an output: each mapping checked on its own
    const r = await compare(net, { layers: net.layers.map((l) => l.index) }, 2);
    console.log(`  ${name}: ${r.length} layers, worst ${r.reduce((w, s) => (Number(s.split(' ')[1]) > Number(w.split(' ')[1]) ? s : w))}`);
  });
}

test('a recurrent layer is refused at its section line, saying why; --decode refuses a [region] tree', () => {
  const net = mini('rnn', '[net]\ninputs=4\n\n[connected]\noutput=4\nactivation=leaky\n\n[rnn]\noutput=4\nhidden=4\nactivation=leaky\n');
  try {
    networkToTfjs(net);
    assert.unreachable('exported a recurrent layer');
  } catch (e) {
    assert.instance(e, CfgError);
    assert.match((e as CfgError).message, /export-rnn\.cfg:8: \[rnn\] \(layer 1\) cannot be exported to TF\.js: a recurrent layer carries its hidden state from one forward to the next/);
  }
  assert.throws(() => networkToTfjs(mini('region'), { decode: true }), (e: Error) => e instanceof CfgError && /export-region\.cfg:\d+: \[region\] \(layer 8\) cannot be exported to TF\.js: --decode: a \[region\] head with a class tree/.test(e.message));
});

// ------------------------------------------------------------------------------------ decode

const DECODE: { what: string; net: () => Network | null }[] = [
  { what: 'gaussian-mini ([Gaussian_yolo])', net: () => crosscheckNetwork(path.join(root, 'fixtures/cfg/gaussian-mini.cfg'), 64) },
  { what: 'yolov7-tiny (new_coords, scale_x_y 2)', net: () => sharedNet('yolov7-tiny.cfg', 64) },
  { what: 'yolov4-tiny (scale_x_y 1.05)', net: () => sharedNet('yolov4-tiny.cfg', 64) },
  { what: 'the mini [region] network', net: () => mini('region', MINI.region.split('[route]')[0]) },
];

function sharedNet(cfg: string, size: number): Network | null {
  const shared = sharedDir();
  return shared ? crosscheckNetwork(path.join(shared, 'darknet-cfg', cfg), size) : null;
}

for (const c of DECODE) {
  test(`--decode: boxes [N, boxes, 5 + C] match src/yolo/decode.ts on ${c.what} (batch 2)`, async () => {
    const net = c.net();
    if (!net) return noteMissingShared(`the TF.js --decode check of ${c.what}`);
    const r = await compare(net, { decode: true }, 2);
    console.log(`  ${c.what}: ${r.join(', ')}`);
  });
}

// ------------------------------------------------------------------------------------ the command

test('export --format tfjs: writes the folder (shards, then model.json), loads from disk, matches forward', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-tfjs-'));
  try {
    const cfg = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
    const net = Network.fromFile(cfg);
    net.initWeights(1);
    perturb(net, 2);
    const weights = path.join(dir, 'mini.weights');
    saveWeights(net, weights);
    const out = path.join(dir, 'web', 'model');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'group1-shard9of9.bin'), 'stale');
    const lines: string[] = [];
    const r = await runExport({ cfg, weights, format: 'tfjs', out, img: [96, 64], log: (l) => lines.push(l) });
    assert.equal(fs.readdirSync(out).sort(), [...r.files.keys()].sort(), 'the files written, no temporary or stale shard left');
    const json = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')) as { format: string; weightsManifest: { paths: string[] }[]; signature: { outputs: Record<string, unknown> } };
    assert.is(json.format, 'graph-model');
    assert.equal(Object.keys(json.signature.outputs), r.outputs.map((o) => o.name));
    assert.match(lines[lines.length - 1] ?? '', /^wrote .*model: TF\.js GraphModel, 2 files, [\d.]+ MB, \d+ nodes; input input \[-1, 64, 96, 3\] \(NHWC\); outputs yolo_13 \[-1, 24, 4, 6\], yolo_20 \[-1, 24, 8, 12\]$/);
    const built = Network.fromFile(cfg, { width: 96, height: 64 });
    loadWeights(built, weights);
    const rep = await compare(built, {}, 1, { ...r, nodes: r.nodes, weightBytes: r.weightBytes }, folderHandler((n) => fs.readFileSync(path.join(out, n))));
    console.log(`  yolo-mini 96x64 from disk: ${rep.join(', ')}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every layer kind the engine builds was exported and compared above, or refused', () => {
  const refused: LayerKind[] = ['crnn', 'rnn', 'gru', 'lstm'];
  const missing = (Object.keys(LAYER_KINDS) as LayerKind[]).filter((k) => !covered.has(k) && !refused.includes(k));
  assert.equal(missing, [], `layer kinds never exported by this test: ${missing.join(', ')}`);
});

test.run();
