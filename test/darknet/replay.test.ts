/**
 * Network.recordForward / ForwardReplay (src/darknet/replay.ts) and Gpu.record / replay underneath: a replay
 * computes the forward's bits for whatever its input holds, its buffers are no one else's (tensors made after
 * the recording keep their values through runs), and it hands them back on dispose. Needs no ../shared.
 */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { pickWinograd } from '../helpers/winograd.js';
import { Network } from '../../src/darknet/network.js';
import { ReplayedForwards } from '../../src/darknet/replay.js';
import { recurrentMiniNetwork } from '../layers/recurrent_mini.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { newTape } from '../../src/tensor/index.js';
import { tuneTable } from '../../src/gpu/tune.js';
import { packageRoot } from '../../src/util/paths.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const MINI = path.join(packageRoot(), 'fixtures/cfg/yolo-mini.cfg');
const S = 64;
const B = 2;

async function read(m: ReadonlyMap<number, Tensor>): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  for (const [k, t] of m) out.set(k, await t.toArray());
  return out;
}

/** A plain forward's outputs (read, then disposed). */
async function forward(net: Network, x: Tensor): Promise<Map<number, Float32Array>> {
  const o = net.forward(x);
  const r = await read(o);
  for (const t of new Set(o.values())) t.dispose();
  return r;
}

function sameBits(a: Map<number, Float32Array>, b: Map<number, Float32Array>, what: string): void {
  assert.equal([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same outputs`);
  for (const [k, v] of a) assert.ok(v.every((e, i) => Object.is(e, b.get(k)![i])), `${what}: layer ${k} has the same bits`);
}

for (const winograd of [false, true]) {
  test(`recordForward (yolo-mini ${S}x${S} batch ${B}${winograd ? ', every 3x3 conv through Winograd' : ''}): run() gives the forward's bits for each new input; tensors made after it keep their values; dispose hands the buffers back`, async () => {
    const gpu = await getGpu();
    const net = Network.fromFile(MINI, { width: S, height: S, batch: B });
    net.initWeights(4);
    const picked = winograd ? pickWinograd(net, gpu) : [];
    try {
      net.prepare(gpu, 'infer', { precision: 'auto' });
      const imgs = [1, 2, 3].map((s) => randomArray(new Rng(s), B * 3 * S * S, 0, 1));
      const x = Tensor.from(gpu, [B, 3, S, S], imgs[0]);
      // another network whose dispatches write other uniforms into the same slots between runs
      const small = net.resized(32, 32);
      const xs = Tensor.from(gpu, [B, 3, 32, 32], randomArray(new Rng(7), B * 3 * 32 * 32, 0, 1));
      const want = [] as Map<number, Float32Array>[];
      for (const img of imgs) {
        x.write(img);
        want.push(await forward(net, x));
      }
      x.write(imgs[0]);
      const before = gpu.dispatches;
      await gpu.sync();
      const replay = net.recordForward(x);
      const perForward = (gpu.dispatches - before) / 2; // the unrecorded forward, then the recorded one
      assert.is(replay.dispatches, perForward, 'every dispatch of a forward recorded');
      assert.ok(!winograd || picked.length > 0);
      sameBits(await read(replay.outputs), want[0], 'the recorded forward');
      // tensors made now must not be the replay's buffers: fill them, run, check them
      const sizes = [...new Set([...replay.outputs.values()].map((t) => t.size)), 4096, 16384, 65536, B * 3 * S * S];
      const others = sizes.flatMap((n, i) => [0, 1].map((j) => Tensor.from(gpu, [n], new Float32Array(n).fill(i * 10 + j + 0.5))));
      for (const [i, img] of [1, 2, 0, 1].map((k) => [k, imgs[k]] as const)) {
        x.write(img);
        const d0 = gpu.dispatches;
        sameBits(await read(replay.run()), want[i], `run ${i}`);
        assert.is(gpu.dispatches - d0, perForward);
        // a plain forward between runs: its own buffers; then another network's uniforms in the ring
        x.write(imgs[2]);
        sameBits(await forward(net, x), want[2], 'a plain forward between runs');
        await forward(small, xs);
      }
      for (const [n, t] of others.entries()) {
        const v = await t.toArray();
        const fill = Math.floor(n / 2) * 10 + (n % 2) + 0.5;
        assert.ok(v.every((e) => e === fill), `a tensor made after the recording (${t.size} values) kept its values`);
        t.dispose();
      }
      // disposing a view leaves the replay whole
      [...replay.outputs.values()][0].dispose();
      x.write(imgs[1]);
      replay.run();
      const again = await read(new Map([...replay.outputs].filter(([, t]) => !t.disposed)));
      for (const [k, v] of again) assert.ok(v.every((e, i) => Object.is(e, want[1].get(k)![i])), `after a view's dispose: layer ${k}`);
      const reserved = gpu.pool.reserved;
      assert.ok(reserved > 0, 'the replay holds its free intermediates');
      // parameters prepared again (f32 then auto: other buffers): the replay refuses to run
      const stale = net.recordForward(x);
      net.release();
      net.prepare(gpu, 'infer', { precision: 'auto' });
      assert.throws(() => stale.run(), /parameters were prepared again since the recording; record again/);
      stale.dispose();
      replay.dispose();
      replay.dispose();
      assert.is(gpu.pool.reserved, 0, 'dispose hands them back');
      assert.throws(() => replay.run(), /run\(\) after dispose\(\)/);
      net.release();
      const released = net.recordForward.bind(net);
      assert.throws(() => released(x), /not prepared/);
      net.prepare(gpu, 'infer', { precision: 'auto' });
      sameBits(await forward(net, x), want[1], 'a plain forward after dispose');
      x.dispose();
      xs.dispose();
      small.dispose();
    } finally {
      net.dispose();
      tuneTable(gpu).clear();
    }
  });
}

test('recordForward and Gpu.record / replay refuse what they cannot do: a recording tape, collectKernels, a recording inside a recording, a released recording; a throwing recording hands its buffers back', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(MINI, { width: S, height: S, batch: 1 });
  net.initWeights(5);
  net.prepare(gpu, 'infer', { precision: 'f32' });
  const x = Tensor.from(gpu, [1, 3, S, S], randomArray(new Rng(9), 3 * S * S, 0, 1));
  try {
    const tape = newTape();
    assert.throws(() => tape.record(() => net.recordForward(x)), /recordForward under a recording tape/);
    tape.dispose();
    assert.throws(() => gpu.collectKernels(() => gpu.record(() => 0)), /not inside collectKernels/);
    assert.throws(() => gpu.record(() => gpu.record(() => 0)), /not inside another recording/);
    const reserved = gpu.pool.reserved;
    assert.throws(() => gpu.record(() => {
      Tensor.from(gpu, [1024], new Float32Array(1024)).dispose();
      throw new Error('boom');
    }), /boom/);
    assert.is(gpu.pool.reserved, reserved, 'the failed recording held nothing back');
    const { recording } = gpu.record(() => Tensor.from(gpu, [8], new Float32Array(8)).dispose());
    assert.throws(() => gpu.collectKernels(() => gpu.replay(recording)), /Gpu.replay: not inside collectKernels/);
    assert.throws(() => gpu.record(() => gpu.replay(recording)), /Gpu.replay: not inside a recording/);
    gpu.replay(recording);
    recording.release();
    assert.throws(() => gpu.replay(recording), /the recording was released/);
    await gpu.sync();
  } finally {
    x.dispose();
    net.dispose();
  }
});

/** The network as ReplayedForwards sees it, counting its forward and recordForward calls. */
function counted(net: Network) {
  const calls = { forward: 0, record: 0 };
  const proxy = {
    get preparation() {
      return net.preparation;
    },
    layers: net.layers,
    forward: (x: Tensor, o: { keep?: number[] }) => (calls.forward++, net.forward(x, o)),
    recordForward: (x: Tensor, o: { keep?: number[]; warmUp?: boolean }) => (calls.record++, net.recordForward(x, o)),
  };
  return { proxy, calls };
}

/** The keep layers' outputs read, then disposed (they are the caller's). */
async function readOwn(ts: Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of ts) out.push(await t.toArray());
  for (const t of ts) t.dispose();
  return out;
}

test('ReplayedForwards (yolo-mini, the head convolutions kept): a batch size replays from its third forward with the forward\'s bits; at most two recordings, the least recently used dropped; the outputs are the caller\'s; a new preparation records again; release() hands everything back', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(MINI, { width: S, height: S, batch: 1 });
  net.initWeights(6);
  const picked = pickWinograd(net, gpu);
  try {
    assert.ok(picked.length > 0, 'some 3x3 convs go through Winograd');
    net.prepare(gpu, 'infer', { precision: 'auto' });
    const keep = net.layers.filter((l) => l.kind === 'yolo').map((l) => l.sources[0]);
    const input = (b: number, seed: number) => Tensor.from(gpu, [b, 3, S, S], randomArray(new Rng(seed), b * 3 * S * S, 0, 1));
    /** What a plain forward of the same input gives (read, then disposed). */
    const plain = async (x: Tensor) => {
      const o = net.forward(x, { keep });
      const r = [] as Float32Array[];
      for (const j of keep) r.push(await o.get(j)!.toArray());
      for (const t of new Set(o.values())) t.dispose();
      return r;
    };
    const same = (a: Float32Array[], b: Float32Array[], what: string) => {
      assert.is(a.length, b.length, what);
      a.forEach((v, k) => assert.ok(v.length === b[k].length && v.every((e, i) => Object.is(e, b[k][i])), `${what}: output ${k} has the plain forward's bits`));
    };
    const { proxy, calls } = counted(net);
    const rf = new ReplayedForwards(proxy, keep);
    const reserved0 = gpu.pool.reserved;
    // batch 1: plain, recorded, replayed (a new image each time)
    for (const [call, recorded, forwards, records] of [[0, [], 1, 0], [1, [1], 1, 1], [2, [1], 1, 1], [3, [1], 1, 1]] as const) {
      const x = input(1, 10 + call);
      const got = rf.forward(x);
      assert.equal(rf.recorded, [...recorded], `call ${call}: recorded sizes`);
      assert.equal([calls.forward, calls.record], [forwards, records], `call ${call}: plain forwards and recordings so far`);
      same(await readOwn(got), await plain(x), `batch 1, call ${call}`);
      x.dispose();
    }
    // two calls in flight before either is read: each keeps its own outputs
    const xa = input(1, 20);
    const xb = input(1, 21);
    const a = rf.forward(xa);
    const b = rf.forward(xb);
    same(await readOwn(a), await plain(xa), 'the first of two overlapping calls');
    same(await readOwn(b), await plain(xb), 'the second of two overlapping calls');
    // batch 2 and 3 recorded too: batch 1, the least recently used, is dropped
    for (const bs of [2, 2, 3, 3, 2]) {
      const x = input(bs, 30 + bs);
      same(await readOwn(rf.forward(x)), await plain(x), `batch ${bs}`);
      x.dispose();
    }
    assert.equal(rf.recorded, [3, 2], 'two recordings kept, most recently used last');
    // batch 1 again: dropped, so it is seen and recorded anew
    same(await readOwn(rf.forward(xa)), await plain(xa), 'batch 1 after its recording was dropped');
    assert.equal(rf.recorded, [2, 1]);
    // the Winograd choice changes (precision f32 over the same buffers): plain forwards, then recorded again
    net.prepare(gpu, 'infer', { precision: 'f32' });
    for (const [call, recorded] of [[0, [2]], [1, [2, 1]], [2, [2, 1]]] as const) {
      same(await readOwn(rf.forward(xb)), await plain(xb), `after prepare at f32, call ${call}`);
      assert.equal(rf.recorded, [...recorded], `after prepare at f32, call ${call}: recorded sizes`);
    }
    rf.release();
    assert.equal(rf.recorded, []);
    assert.is(gpu.pool.reserved, reserved0, 'release() hands the recordings\' buffers back');
    // the byte budget: room for batch 1's recording only, then for none
    for (const b of [1, 1]) for (const t of rf.forward(input(b, 40))) t.dispose();
    const b1 = rf.heldBytes;
    assert.ok(b1 > 0, 'batch 1 recorded');
    rf.release();
    const budget = counted(net);
    const small = new ReplayedForwards(budget.proxy, keep, 2, b1);
    for (const bs of [1, 1, 2, 2, 2, 1]) {
      const x = input(bs, 50 + bs);
      same(await readOwn(small.forward(x)), await plain(x), `budget for one: batch ${bs}`);
      x.dispose();
    }
    assert.equal(small.recorded, [1], 'batch 2\'s recording alone holds more than the budget: dropped');
    assert.is(budget.calls.record, 2, 'batch 2 was not recorded again');
    small.release();
    const none = new ReplayedForwards(net, keep, 2, 1024);
    for (let i = 0; i < 4; i++) same(await readOwn(none.forward(xa)), await plain(xa), `budget for none, call ${i}`);
    assert.equal(none.recorded, []);
    assert.is(gpu.pool.reserved, reserved0, 'recordings over the budget handed their buffers back');
    xa.dispose();
    xb.dispose();
  } finally {
    net.dispose();
    tuneTable(gpu).clear();
  }
});

test('ReplayedForwards and recordForward leave a network with recurrent state alone: plain forwards, no recording (recordForward refuses, naming the layer)', async () => {
  const gpu = await getGpu();
  const net = recurrentMiniNetwork('gru');
  try {
    net.prepare(gpu, 'infer');
    const I = net.input;
    const x = Tensor.from(gpu, [2, I.c, I.h, I.w], randomArray(new Rng(3), 2 * I.c * I.h * I.w, 0, 1));
    assert.throws(() => net.recordForward(x), /layer 1 \[gru\] carries its state from one forward to the next/);
    const rf = new ReplayedForwards(net, [net.layers.length - 1]);
    for (let i = 0; i < 3; i++) for (const t of rf.forward(x)) t.dispose();
    assert.equal(rf.recorded, [], 'nothing recorded');
    x.dispose();
  } finally {
    net.dispose();
  }
});

test('Gpu.replay joins the open batch when it holds only copies and uploads, and leaves its last submit open: upload, replay and readback make one submit', async () => {
  const gpu = await getGpu();
  const net = Network.fromFile(MINI, { width: S, height: S, batch: 1 });
  net.initWeights(8);
  net.prepare(gpu, 'infer', { precision: 'f32' });
  const img = randomArray(new Rng(4), 3 * S * S, 0, 1);
  const x = Tensor.from(gpu, [1, 3, S, S], img);
  try {
    const want = await forward(net, x);
    const replay = net.recordForward(x);
    await gpu.sync();
    const before = gpu.submits;
    x.write(img);
    replay.run();
    const got = await read(replay.outputs);
    sameBits(got, want, 'the replay between an upload and a readback');
    assert.is(gpu.submits - before, 1 + [...replay.outputs.keys()].length - 1, 'the upload, the replay and the first readback in one submit; each further readback its own');
    replay.dispose();
  } finally {
    x.dispose();
    net.dispose();
  }
});

test.run();
