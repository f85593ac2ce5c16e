/**
 * `export --format onnx` (src/export/onnx): the exported model, run in onnxruntime-node (CPU), against this
 * engine's forward on the same input, within 1e-4 of max|value| per output:
 * - yolov3-tiny, yolov4-tiny, yolov7-tiny, yolov3, yolov4 (../shared/darknet-cfg) at small sizes, and every
 *   bundled cfg (fixtures/cfg), with the cross-check's seeded weights (test/helpers/crosscheck.ts:
 *   initWeights(7), perturb(8));
 * - small networks that hold every other layer kind the engine builds (and each activation);
 * - `decode`: the `boxes` output against src/yolo/decode.ts decodeRows on the same input ([yolo] with
 *   scale_x_y, new_coords, [Gaussian_yolo], [region]);
 * - `dynamicBatch` run at batch 2; opset 18 (Mish as one op);
 * - a recurrent layer refused with its file:line; the CLI command writing through the atomic writer;
 * - the JSON descriptor the exporter encodes with still matches the vendored onnx.proto.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import protobuf from 'protobufjs';
import { getGpu } from '../helpers/gpu.js';
import { maxAbs, noteMissingShared, sharedDir } from '../helpers/check.js';
import { crosscheckInput, crosscheckNetwork, relErr } from '../helpers/crosscheck.js';
import { Network } from '../../src/darknet/network.js';
import { CfgError, parseCfg } from '../../src/darknet/cfg.js';
import { LAYER_KINDS, type LayerKind } from '../../src/darknet/registry.js';
import { saveWeights } from '../../src/darknet/weights.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { networkToOnnx, decodeOnnx, MAX_OPSET, type OnnxOptions } from '../../src/export/onnx/index.js';
import { ONNX_PROTO_JSON } from '../../src/export/onnx/proto.js';
import { decodeRows } from '../../src/yolo/decode.js';
import { headFromLayer, isHeadLayer } from '../../src/yolo/heads.js';
import { runExport } from '../../src/cli/export.js';
import { SettingError } from '../../src/util/validate.js';
import { packageRoot } from '../../src/util/paths.js';
import { MINI, mini } from './mini_nets.js';

const TOL = 1e-4;
const root = packageRoot();

type Ort = typeof import('onnxruntime-node');
let ortP: Promise<Ort | null> | undefined;
/** onnxruntime-node, or null (with a note) when it cannot load here. */
function getOrt(): Promise<Ort | null> {
  ortP ??= import('onnxruntime-node').then(
    (m) => ((m as Ort & { default?: Ort }).default ?? m) as Ort,
    (e: unknown) => {
      console.log(`  [skipped: onnxruntime-node does not load here (${(e as Error).message.split('\n')[0]})]`);
      return null;
    },
  );
  return ortP;
}

/** Every layer kind met by the comparisons below (checked against the registry at the end). */
const covered = new Set<string>();

/**
 * Exports `net`, runs it in ONNX Runtime and our forward on the same batch, and compares every output (the
 * default outputs, or `boxes` against decodeRows). Returns "name err" per output.
 */
async function compare(net: Network, opts: OnnxOptions = {}, batch = 1): Promise<string[]> {
  const ort = await getOrt();
  if (!ort) return [];
  const gpu = await getGpu();
  const model = networkToOnnx(net, { ...opts, dynamicBatch: opts.dynamicBatch ?? batch > 1 });
  const I = net.input;
  const shape = [batch, I.c, I.h, I.w];
  const xv = crosscheckInput(batch * I.c * I.h * I.w);
  const sess = await ort.InferenceSession.create(model.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
  const res = await sess.run({ [model.input.name]: new ort.Tensor('float32', xv, shape) });
  await sess.release();
  net.prepare(gpu, 'infer');
  const x = Tensor.from(gpu, shape, xv, 'input');
  const heads = net.heads().filter(isHeadLayer);
  const outs = net.forward(x, { keep: opts.decode ? heads.map((l) => l.sources[0]) : [] });
  const report: string[] = [];
  try {
    for (const o of model.outputs) {
      const got = res[o.name];
      assert.equal([...got.dims], o.dims.map((d) => (typeof d === 'number' ? d : batch)), `${o.name} dims`);
      let want: Float32Array;
      if (o.layer >= 0) want = await outs.get(o.layer)!.toArray();
      else want = await decodedRows(net, heads, outs, batch);
      const err = outputErr(o.name, got.data as Float32Array, want);
      report.push(`${o.name} ${err.toExponential(2)}`);
      assert.ok(err <= TOL, `${path.basename(net.file)} ${o.name}: max|ONNX - ours| = ${err.toExponential(3)} of max|value| > ${TOL}`);
    }
  } finally {
    for (const t of new Set(outs.values())) t.dispose();
    x.dispose();
    net.release();
  }
  for (const l of net.layers) covered.add(l.kind);
  return report;
}

/**
 * max|a − e| / max|e| over the values that are not Darknet's −FLT_MAX padding taps (a maxpool window made only
 * of padding outputs −FLT_MAX: those must be equal). Asserts that something non-zero was compared.
 */
function outputErr(name: string, a: Float32Array, e: Float32Array): number {
  const FLT_MAX = 3.4028234663852886e38;
  const ai: number[] = [];
  const ei: number[] = [];
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
  const total = per.reduce((s, v) => s + v.length, 0);
  const out = new Float32Array(total);
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

const t0 = () => performance.now();
const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;

// ------------------------------------------------------------------------------------ real cfgs

const SHARED: { cfg: string; size: number }[] = [
  { cfg: 'yolov3-tiny.cfg', size: 128 },
  { cfg: 'yolov4-tiny.cfg', size: 128 },
  { cfg: 'yolov7-tiny.cfg', size: 128 },
  // 62 and 64 million parameters: the smallest size their five stride-2 stages allow
  { cfg: 'yolov3.cfg', size: 64 },
  { cfg: 'yolov4.cfg', size: 64 },
];

for (const c of SHARED) {
  test(`${c.cfg} at ${c.size}x${c.size}: ONNX Runtime matches forward`, async () => {
    const shared = sharedDir();
    if (!shared) return noteMissingShared(`the ONNX export check of ${c.cfg}`);
    const t = t0();
    const net = crosscheckNetwork(path.join(shared, 'darknet-cfg', c.cfg), c.size);
    const r = await compare(net);
    if (r.length) console.log(`  ${c.cfg} ${net.input.w}x${net.input.h}: ${r.join(', ')} (relative to max|value|; ${ms(t)})`);
  });
}

const bundled = fs.readdirSync(path.join(root, 'fixtures/cfg')).filter((f) => f.endsWith('.cfg')).sort();
for (const f of bundled) {
  test(`bundled ${f}: ONNX Runtime matches forward`, async () => {
    const net = crosscheckNetwork(path.join(root, 'fixtures/cfg', f), 128);
    const r = await compare(net);
    if (r.length) console.log(`  ${f} ${net.input.w}x${net.input.h}: ${r.join(', ')}`);
  });
}

// ------------------------------------------------------------------------------------ every layer kind


for (const name of Object.keys(MINI)) {
  test(`layer kinds: the ${name} network, ONNX Runtime matches forward (batch 2)`, async () => {
    const r = await compare(mini(name), {}, 2);
    if (r.length) console.log(`  ${name}: ${r.join(', ')}`);
  });
}

test(`opsets 17, 18 (Mish as one op) and ${MAX_OPSET} match forward`, async () => {
  for (const opset of [17, 18, MAX_OPSET]) {
    const r = await compare(mini('layers'), { opset });
    if (r.length) console.log(`  layers, opset ${opset}: ${r.join(', ')}`);
  }
});

test('a recurrent layer is refused at its section line, saying why', () => {
  const cfg = '[net]\ninputs=4\n\n[connected]\noutput=4\nactivation=leaky\n\n[rnn]\noutput=4\nhidden=4\nactivation=leaky\n';
  const net = Network.build(parseCfg(cfg, 'rnn-mini.cfg'));
  net.initWeights(1);
  try {
    networkToOnnx(net);
    assert.unreachable('exported a recurrent layer');
  } catch (e) {
    assert.instance(e, CfgError);
    assert.is((e as CfgError).message, 'rnn-mini.cfg:8: [rnn] (layer 1) cannot be exported to ONNX: a recurrent layer carries its hidden state from one forward to the next (Darknet time_steps); an ONNX graph has no state between runs');
  }
  covered.add('rnn');
});

// ------------------------------------------------------------------------------------ decode, batch

const DECODE: { what: string; net: () => Network | null }[] = [
  { what: 'yolo-mini ([yolo])', net: () => crosscheckNetwork(path.join(root, 'fixtures/cfg/yolo-mini.cfg'), 96) },
  { what: 'gaussian-mini ([Gaussian_yolo])', net: () => crosscheckNetwork(path.join(root, 'fixtures/cfg/gaussian-mini.cfg'), 96) },
  { what: 'yolov4-tiny (scale_x_y 1.05)', net: () => sharedNet('yolov4-tiny.cfg', 96) },
  { what: 'yolov7-tiny (new_coords, scale_x_y 2)', net: () => sharedNet('yolov7-tiny.cfg', 96) },
  { what: 'yolov2-tiny ([region])', net: () => sharedNet('yolov2-tiny.cfg', 96) },
];

function sharedNet(cfg: string, size: number): Network | null {
  const shared = sharedDir();
  return shared ? crosscheckNetwork(path.join(shared, 'darknet-cfg', cfg), size) : null;
}

for (const c of DECODE) {
  test(`--decode: boxes [N, boxes, 5 + C] match src/yolo/decode.ts on ${c.what} (batch 2, dynamic batch)`, async () => {
    const net = c.net();
    if (!net) return noteMissingShared(`the --decode check of ${c.what}`);
    const r = await compare(net, { decode: true, dynamicBatch: true }, 2);
    if (r.length) console.log(`  ${c.what}: ${r.join(', ')}`);
  });
}

test('--decode refuses a head it cannot decode (a [region] tree) at its line', () => {
  const net = mini('region');
  assert.throws(() => networkToOnnx(net, { decode: true }), (e: Error) => e instanceof CfgError && /export-region\.cfg:\d+: \[region\] \(layer 8\) cannot be exported to ONNX: --decode: a \[region\] head with a class tree/.test(e.message));
});

test('--dynamic-batch: the input and outputs have batch N; the model runs at batch 2', async () => {
  const net = crosscheckNetwork(path.join(root, 'fixtures/cfg/yolo-mini.cfg'), 96);
  const m = networkToOnnx(net, { dynamicBatch: true });
  assert.equal(m.input.dims, ['N', 3, 96, 96]);
  assert.ok(m.outputs.every((o) => o.dims[0] === 'N'));
  assert.equal(networkToOnnx(net).input.dims, [1, 3, 96, 96]);
  const r = await compare(net, { dynamicBatch: true }, 2);
  if (r.length) console.log(`  yolo-mini batch 2: ${r.join(', ')}`);
});

// ------------------------------------------------------------------------------------ the command, the schema

test('export command: writes the model atomically, says what it wrote; refuses a bad opset and --img', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yolo-wgsl-export-'));
  try {
    const cfg = path.join(root, 'fixtures/cfg/yolo-mini.cfg');
    const net = Network.fromFile(cfg);
    net.initWeights(1);
    const weights = path.join(dir, 'mini.weights');
    saveWeights(net, weights);
    const out = path.join(dir, 'sub', 'mini.onnx');
    const lines: string[] = [];
    const r = await runExport({ cfg, weights, format: 'onnx', out, img: [96, 64], dynamicBatch: true, log: (l) => lines.push(l) });
    assert.equal(fs.readFileSync(out), Buffer.from(r.bytes));
    assert.equal(fs.readdirSync(path.dirname(out)), ['mini.onnx'], 'no temporary left');
    const m = decodeOnnx(fs.readFileSync(out)) as { ir_version: number; producer_name: string; opset_import: { version: number }[]; graph: { input: { name: string }[]; output: { name: string }[] } };
    assert.is(m.ir_version, 7);
    assert.is(m.producer_name, 'yolo-wgsl');
    assert.is(m.opset_import[0].version, 13);
    assert.equal(m.graph.input.map((i) => i.name), ['input']);
    assert.equal(m.graph.output.map((o) => o.name), r.outputs.map((o) => o.name));
    assert.match(lines[lines.length - 1] ?? '', /^wrote .*mini\.onnx: ONNX opset 13, [\d.]+ MB, \d+ nodes; input input \[N, 3, 64, 96\]; outputs yolo_13 \[N, 24, 4, 6\], yolo_20 \[N, 24, 8, 12\]$/);
    const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as Error);
    const e1 = await failure(runExport({ cfg, weights, format: 'onnx', out, opset: 9 }));
    assert.ok(e1 instanceof SettingError && /^--opset: /.test(e1.message), String(e1));
    const e2 = await failure(runExport({ cfg, weights, format: 'onnx', out, img: [96, 64, 3] }));
    assert.ok(e2 instanceof SettingError && /^--img /.test(e2.message), String(e2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the JSON descriptor the exporter encodes with is the vendored onnx.proto (scripts/gen-onnx-proto.mjs)', () => {
  const text = fs.readFileSync(path.join(root, 'src/export/onnx/onnx.proto'), 'utf8');
  const parsed = protobuf.parse(text, { keepCase: true }).root.toJSON();
  assert.equal(JSON.parse(JSON.stringify(ONNX_PROTO_JSON)), JSON.parse(JSON.stringify(parsed)));
});

test('every layer kind the engine builds was exported and compared above, or refused', async () => {
  if (!(await getOrt())) return;
  const refused: LayerKind[] = ['crnn', 'rnn', 'gru', 'lstm'];
  const missing = (Object.keys(LAYER_KINDS) as LayerKind[]).filter((k) => !covered.has(k) && !refused.includes(k));
  assert.equal(missing, [], `layer kinds never exported by this test: ${missing.join(', ')}`);
});

test.run();
