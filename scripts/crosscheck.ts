/**
 * Cross-checks whole networks against the reference engines, layer by layer: every cfg given (default: every
 * cfg of ../shared/darknet-cfg) is built at a small input size with seeded weights (test/helpers/crosscheck.ts:
 * initWeights + perturb, so that BN statistics and biases are not trivial), run once here, and compared with
 *   - AlexeyAB Darknet, when --darknet-dump names a driver built against its objects (network_predict, then
 *     every layer's l.output), and
 *   - pjreddie's Darknet (Debian's darknet package: libdarknet.so of 2018), when --pjreddie-dump names the same
 *     driver built against it: the reference for pjreddie's semantics (resnet's strided [shortcut]), and
 *   - OpenCV DNN's Darknet importer (python3 with cv2), for the cfgs it reads, on the layers it names.
 * The drivers are ~30-line C programs kept outside this repository; docs/darknet.md "Cross-checking every
 * cfg" gives them and the build commands. The error of a layer is max|ours - theirs| / max|theirs|.
 * `--golden FILE` also writes, for each cfg, samples of every layer from the first reference that read it
 * (fixtures/golden/corpus_refs.json; test/darknet/corpus_refs.test.ts checks them without the oracles).
 * Not part of `make test`.
 *
 *   node --import tsx scripts/crosscheck.ts [--darknet-dump P] [--pjreddie-dump P] [--opencv] [--size 96]
 *        [--json OUT] [--golden OUT] [--verbose] [cfg ...]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Network } from '../src/darknet/network.js';
import { saveWeights } from '../src/darknet/weights.js';
import { Gpu } from '../src/gpu/device.js';
import { Tensor } from '../src/tensor/tensor.js';
import { sharedDir } from '../test/helpers/check.js';
import { XCHECK_TOL, asOurs, crosscheckInput, crosscheckNetwork, relErr, sampleIndices, type Reference } from '../test/helpers/crosscheck.js';

const args = process.argv.slice(2);
const opt = (k: string): string | undefined => {
  const i = args.indexOf(k);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const flag = (k: string): boolean => {
  const i = args.indexOf(k);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
};
const dumps: [Reference, string][] = [];
const dk = opt('--darknet-dump');
if (dk) dumps.push(['darknet', dk]);
const pj = opt('--pjreddie-dump');
if (pj) dumps.push(['pjreddie', pj]);
const size = Number(opt('--size') ?? 96);
const jsonOut = opt('--json');
const goldenOut = opt('--golden');
const useOpenCv = flag('--opencv');
const verbose = flag('--verbose');
let cfgs = args;
if (!cfgs.length) {
  const shared = sharedDir();
  if (!shared) throw new Error('no cfgs given and ../shared is absent');
  const dir = path.join(shared, 'darknet-cfg');
  cfgs = fs.readdirSync(dir).filter((f) => f.endsWith('.cfg')).sort().map((f) => path.join(dir, f));
}

/** The cfg text with [net] width/height/batch/subdivisions set (what the references read). */
function resizedCfg(text: string, w: number, h: number): string {
  let inNet = false;
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t.startsWith('[')) {
      if (inNet) out.push(`width=${w}`, `height=${h}`, 'batch=1', 'subdivisions=1');
      inNet = ['[net]', '[network]'].includes(t.replace(/\s/g, ''));
      out.push(line);
      continue;
    }
    if (inNet && /^(width|height|batch|subdivisions)\s*=/.test(t)) continue;
    out.push(line);
  }
  return out.join('\n');
}

/** A driver's output: per layer int32 {index, type, c, h, w, n} then n float32. */
function readDump(file: string): Map<number, Float32Array> {
  const b = fs.readFileSync(file);
  const m = new Map<number, Float32Array>();
  for (let o = 0; o + 24 <= b.length; ) {
    const idx = b.readInt32LE(o);
    const n = b.readInt32LE(o + 20);
    o += 24;
    m.set(idx, new Float32Array(b.buffer.slice(b.byteOffset + o, b.byteOffset + o + 4 * n)));
    o += 4 * n;
  }
  return m;
}

const OPENCV_PY = `
import os, sys, numpy as np, cv2
cfg, weights, inp, out, c, h, w = sys.argv[1:8]
net = cv2.dnn.readNetFromDarknet(cfg, weights)
net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
net.enableFusion(False)  # in-place fused layers cannot be read as outputs
net.setInput(np.fromfile(inp, dtype=np.float32).reshape(1, int(c), int(h), int(w)))
# OpenCV 4.6 darknet_io names a layer's blocks <kind>_<Darknet index>, but its activation <act>_<index + 1>;
# its [yolo]/[region] outputs are decoded boxes, not Darknet's l.output: those are left out.
ACT = {'leaky', 'relu', 'mish', 'swish', 'logistic', 'tanh', 'elu', 'selu', 'hswish', 'sigmoid', 'gelu'}
SKIP = {'yolo', 'region', 'permute', 'detection'}
last = {}
for n in net.getLayerNames():
    t = n.rsplit('_', 1)
    if len(t) != 2 or not t[1].isdigit(): continue
    k = int(t[1]) - (1 if t[0] in ACT else 0)
    last[k] = None if t[0] in SKIP else n
keys = [k for k in sorted(last) if last[k]]
os.makedirs(out, exist_ok=True)
for k, r in zip(keys, net.forward([last[k] for k in keys])):
    np.asarray(r, dtype=np.float32).tofile(os.path.join(out, str(k)))
`;

interface Row { cfg: string; size: string; layers: number; darknet?: string; pjreddie?: string; opencv?: string; note?: string }
interface GoldenLayer { i: number; n: number; maxAbs: number; meanAbs: number; idx: number[]; val: number[] }
interface GoldenCfg { cfg: string; width: number; height: number; reference: Reference; worst: number; layers: GoldenLayer[] }

const errText = (e: unknown): string => String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').pop()?.slice(0, 120) ?? '';

async function main(): Promise<void> {
  const gpu = await Gpu.create({ tuning: false });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'yw-xcheck-'));
  const py = path.join(tmp, 'ocv.py');
  fs.writeFileSync(py, OPENCV_PY);
  const rows: Row[] = [];
  const golden: GoldenCfg[] = [];
  console.log(`cross-check on ${gpu.info.summary}; tolerance ${XCHECK_TOL} of max|value| per layer`);
  for (const cfg of cfgs) {
    const name = path.basename(cfg, '.cfg');
    const row: Row = { cfg: name, size: '', layers: 0 };
    rows.push(row);
    let net: Network;
    try {
      net = crosscheckNetwork(cfg, size);
    } catch (e) {
      row.note = `refused: ${(e as Error).message.split('\n')[0].slice(0, 120)}`;
      console.log(`${name}: ${row.note}`);
      continue;
    }
    if (!net.inputIsImage) {
      row.note = 'not an image network (see its own golden)';
      console.log(`${name}: ${row.note}`);
      continue;
    }
    const { c: C, h: H, w: W } = net.input;
    row.size = `${W}x${H}x${C}`;
    row.layers = net.layers.length;
    const cfgFile = path.join(tmp, `${name}.cfg`);
    fs.writeFileSync(cfgFile, resizedCfg(fs.readFileSync(cfg, 'utf8'), W, H));
    const wFile = path.join(tmp, `${name}.weights`);
    saveWeights(net, wFile);
    const input = crosscheckInput(C * H * W);
    const inFile = path.join(tmp, 'input.bin');
    fs.writeFileSync(inFile, Buffer.from(input.buffer));
    const ours = new Map<number, Float32Array>();
    try {
      net.prepare(gpu, 'infer');
      const x = Tensor.from(gpu, [1, C, H, W], input, 'input');
      const outs = net.forward(x, { keep: net.layers.map((l) => l.index) });
      for (const [i, t] of outs) ours.set(i, await t.toArray());
      for (const t of new Set(outs.values())) if (t !== x) t.dispose();
      x.dispose();
    } catch (e) {
      row.note = `forward failed: ${(e as Error).message.slice(0, 160)}`;
      console.log(`${name}: ${row.note}`);
      net.dispose();
      continue;
    }
    net.dispose();
    let goldenDone = false;
    const compare = (theirs: Map<number, Float32Array>, who: Reference): string => {
      let worst = 0;
      let worstAt = -1;
      let n = 0;
      const keep: GoldenLayer[] = [];
      for (const [i, raw] of theirs) {
        const l = net.layers[i];
        const a = ours.get(i);
        const e = l && raw.length ? asOurs(l, raw, who) : null;
        if (!a || !e || a.length !== e.length) continue;
        n++;
        const r = relErr(a, e);
        if (verbose && !(r <= XCHECK_TOL)) console.log(`  ${who} layer ${i} ${l.section.label}: ${r.toExponential(2)}`);
        if (!(r <= worst)) [worst, worstAt] = [r, i];
        let mx = 0;
        let sum = 0;
        for (const v of e) [mx, sum] = [Math.max(mx, Math.abs(v)), sum + Math.abs(v)];
        const idx = sampleIndices(e.length);
        keep.push({ i, n: e.length, maxAbs: mx, meanAbs: sum / e.length, idx, val: idx.map((k) => e[k]) });
      }
      if (goldenOut && !goldenDone && who !== 'opencv' && n > 0 && worst <= 2 * XCHECK_TOL) {
        golden.push({ cfg: name, width: W, height: H, reference: who, worst, layers: keep });
        goldenDone = true;
      }
      return `${n} layers, worst ${worst.toExponential(1)}${worstAt >= 0 ? ` (layer ${worstAt} ${net.layers[worstAt].section.label})` : ''}${worst <= XCHECK_TOL ? '' : ' ABOVE TOLERANCE'}`;
    };
    for (const [who, exe] of dumps) {
      const out = path.join(tmp, `${who}.bin`);
      try {
        execFileSync(exe, [cfgFile, wFile, inFile, out], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
        row[who as 'darknet' | 'pjreddie'] = compare(readDump(out), who);
      } catch (e) {
        row[who as 'darknet' | 'pjreddie'] = `failed: ${errText(e)}`;
      }
    }
    const xnor = net.layers.some((l) => l.kind === 'convolutional' && (l.xnor || l.binary));
    if (useOpenCv && xnor) row.opencv = 'left out: its importer ignores xnor=/binary= (see test/layers/xnor.test.ts)';
    else if (useOpenCv) {
      const out = path.join(tmp, 'ocv');
      fs.rmSync(out, { recursive: true, force: true });
      try {
        execFileSync('/usr/bin/python3', [py, cfgFile, wFile, inFile, out, String(C), String(H), String(W)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
        const m = new Map<number, Float32Array>();
        for (const f of fs.readdirSync(out)) {
          const b = fs.readFileSync(path.join(out, f));
          m.set(Number(f), new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
        }
        row.opencv = compare(m, 'opencv');
      } catch (e) {
        const msg = String((e as { stderr?: Buffer }).stderr ?? e);
        row.opencv = `not read: ${(/error: \([^)]*\) ([^\n]*)/.exec(msg)?.[1] ?? errText(e)).slice(0, 100)}`;
      }
    }
    fs.rmSync(wFile, { force: true });
    console.log(`${name} ${row.size}: darknet ${row.darknet ?? '-'}; pjreddie ${row.pjreddie ?? '-'}; opencv ${row.opencv ?? '-'}`);
  }
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ device: gpu.info.summary, tolerance: XCHECK_TOL, rows }, null, 1));
  if (goldenOut) {
    const meta = {
      what: 'per cfg of ../shared/darknet-cfg: every layer output of one forward at the size given, seeded weights and input as test/helpers/crosscheck.ts makes them; kept: max|value|, mean|value| and 8 samples per layer, from the first reference that matched within 2e-4',
      made_by: `scripts/crosscheck.ts ${process.argv.slice(2).join(' ')}`,
      references: {
        darknet: 'AlexeyAB/darknet 59596d7880f6504768df41d6daa586f5cb2b932f, CPU build (GPU=0 AVX=1 OPENMP=1), with relu6 added to activate() as its CUDA kernel computes it (its CPU activate() has no RELU6 case and returns 0); driver: network_predict, then each l.output',
        pjreddie: "Debian darknet 0.0.0+git20180914.61c9d02e (pjreddie), libdarknet.so; driver: network_predict, then each l.output",
      },
    };
    fs.writeFileSync(goldenOut, JSON.stringify({ meta, cfgs: golden }));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  gpu.dispose();
}

await main();
