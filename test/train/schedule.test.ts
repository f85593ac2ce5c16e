/**
 * Learning-rate schedules against Darknet's get_current_rate and yolov5 v7.0's warm-up + LambdaLR,
 * transcribed here in float64 independently of src/train/schedule.ts, at chosen iterations including
 * the boundaries (iteration == burn_in, == a step, one before / after, the SGDR restarts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { DarknetSchedule, UltralyticsSchedule, darknetHyper, darknetRate, resolveDarknetOptions, stretchDarknetSchedule, type DarknetScheduleOptions } from '../../src/train/schedule.js';

// ---------------------------------------------------------------- reference (AlexeyAB network.c)

interface RefNet {
  learning_rate: number; burn_in: number; power: number; policy: string; step: number; scale: number;
  steps: number[]; scales: number[]; gamma: number; max_batches: number; learning_rate_min: number;
  batches_per_cycle: number; batches_cycle_mult: number;
}

function refRate(net: RefNet, batch_num: number, rand = 0.5): number {
  if (batch_num < net.burn_in) return net.learning_rate * Math.pow(batch_num / net.burn_in, net.power);
  switch (net.policy) {
    case 'constant': return net.learning_rate;
    case 'step': return net.learning_rate * Math.pow(net.scale, Math.trunc(batch_num / net.step));
    case 'steps': {
      let rate = net.learning_rate;
      for (let i = 0; i < net.steps.length; ++i) {
        if (net.steps[i] > batch_num) return rate;
        rate *= net.scales[i];
      }
      return rate;
    }
    case 'exp': return net.learning_rate * Math.pow(net.gamma, batch_num);
    case 'poly': return net.learning_rate * Math.pow(1 - batch_num / net.max_batches, net.power);
    case 'random': return net.learning_rate * Math.pow(rand, net.power);
    case 'sigmoid': return net.learning_rate * (1 / (1 + Math.exp(net.gamma * (batch_num - net.step))));
    case 'sgdr': {
      let last_iteration_start = 0;
      let cycle_size = net.batches_per_cycle;
      while (last_iteration_start + cycle_size < batch_num) {
        last_iteration_start += cycle_size;
        cycle_size *= net.batches_cycle_mult;
      }
      return net.learning_rate_min + 0.5 * (net.learning_rate - net.learning_rate_min) * (1 + Math.cos((batch_num - last_iteration_start) * 3.14159265 / cycle_size));
    }
    default: throw new Error(net.policy);
  }
}

const base: RefNet = {
  learning_rate: 0.001, burn_in: 0, power: 4, policy: 'constant', step: 1, scale: 1, steps: [], scales: [], gamma: 1,
  max_batches: 0, learning_rate_min: 0.00001, batches_per_cycle: 0, batches_cycle_mult: 2,
};

function toOptions(n: RefNet): DarknetScheduleOptions {
  return {
    policy: n.policy as DarknetScheduleOptions['policy'], learningRate: n.learning_rate, burnIn: n.burn_in, power: n.power, maxBatches: n.max_batches,
    step: n.step, scale: n.scale, steps: n.steps, scales: n.scales, gamma: n.gamma, learningRateMin: n.learning_rate_min,
    sgdrCycle: n.batches_per_cycle || undefined, sgdrMult: n.batches_cycle_mult,
  };
}

function check(n: RefNet, iters: number[], label: string): void {
  const s = new DarknetSchedule(toOptions(n));
  for (const k of iters) {
    const want = refRate(n, k);
    const got = s.rate(k);
    assert.ok(Math.abs(got - want) <= 1e-15 + 1e-12 * Math.abs(want), `${label} at ${k}: ${got} vs ${want}`);
  }
}

test('darknet burn_in with power, then each policy; the boundary iteration takes the policy', () => {
  const n = { ...base, burn_in: 100, power: 4, policy: 'constant' };
  check(n, [0, 1, 50, 99, 100, 101, 5000], 'burn-in constant');
  const s = new DarknetSchedule(toOptions(n));
  assert.is(s.rate(50), 0.001 * 0.5 ** 4);
  assert.is(s.rate(100), 0.001);
  assert.ok(s.rate(99) < 0.001);
  check({ ...n, power: 1 }, [1, 37, 99, 100], 'burn-in power 1');
  check({ ...n, power: 2, policy: 'poly', max_batches: 1000 }, [1, 99, 100, 101, 500, 999, 1000], 'burn-in poly');
});

test('darknet steps: the rate drops AT the step (steps[i] > k stops the product)', () => {
  const n = { ...base, burn_in: 100, policy: 'steps', steps: [1600, 1800], scales: [0.1, 0.1], max_batches: 2000 };
  check(n, [1, 100, 1599, 1600, 1601, 1799, 1800, 1801, 2000], 'steps');
  const s = new DarknetSchedule(toOptions(n));
  assert.is(s.rate(1599), 0.001);
  assert.ok(Math.abs(s.rate(1600) - 0.0001) < 1e-18);
  assert.ok(Math.abs(s.rate(1800) - 0.00001) < 1e-19);
  // scales > 1 (a "warm restart" by steps) and repeated steps
  check({ ...base, policy: 'steps', steps: [10, 10, 20], scales: [2, 0.5, 0.1] }, [9, 10, 11, 19, 20, 21], 'steps x2');
});

test('darknet step, exp, sigmoid, poly, random', () => {
  check({ ...base, policy: 'step', step: 25, scale: 0.5 }, [0, 1, 24, 25, 26, 49, 50, 51, 100], 'step');
  check({ ...base, policy: 'exp', gamma: 0.999 }, [0, 1, 10, 1000, 5000], 'exp');
  check({ ...base, policy: 'sigmoid', gamma: 0.05, step: 300 }, [0, 1, 299, 300, 301, 1000], 'sigmoid');
  check({ ...base, policy: 'poly', power: 4, max_batches: 500 }, [0, 1, 250, 499, 500], 'poly');
  // random: lr·u^power with a seeded u; the state restores the sequence
  const r = new DarknetSchedule({ policy: 'random', learningRate: 0.01, power: 2, seed: 3 });
  const a = [r.rate(1), r.rate(2)];
  const st = r.state();
  const b = [r.rate(3), r.rate(4)];
  for (const v of [...a, ...b]) assert.ok(v >= 0 && v <= 0.01);
  const r2 = new DarknetSchedule({ policy: 'random', learningRate: 0.01, power: 2, seed: 3 });
  r2.restore(JSON.parse(JSON.stringify(st)) as Record<string, unknown>);
  assert.equal([r2.rate(3), r2.rate(4)], b);
});

test('darknet sgdr: restarts at the cycle ends (cycle x mult), default cycle = max_batches', () => {
  const n = { ...base, policy: 'sgdr', batches_per_cycle: 100, batches_cycle_mult: 2, learning_rate: 0.01, learning_rate_min: 0.0001 };
  // cycles [0,100], (100,300], (300,700]: the restart happens after k = start + size
  check(n, [0, 1, 50, 99, 100, 101, 200, 299, 300, 301, 699, 700, 701], 'sgdr');
  const s = new DarknetSchedule(toOptions(n));
  assert.ok(Math.abs(s.rate(0) - 0.01) < 1e-15);
  assert.ok(s.rate(100) < 0.0001 + 1e-9, 'end of the first cycle: at the minimum');
  assert.ok(s.rate(101) > 0.0099, 'restart');
  // with burn_in, and sgdr_cycle defaulting to max_batches (one cosine over the run)
  check({ ...n, burn_in: 20, batches_per_cycle: 1000, max_batches: 1000 }, [1, 19, 20, 21, 500, 999, 1000], 'sgdr burn-in');
  const d = resolveDarknetOptions({ policy: 'sgdr', learningRate: 0.01, maxBatches: 400, learningRateMin: 0.0001 });
  assert.is(d.sgdrCycle, 400);
  assert.is(d.sgdrMult, 2);
  // cosine (ours) equals sgdr with one cycle of max_batches, up to Darknet's 3.14159265
  const c = resolveDarknetOptions({ policy: 'cosine', learningRate: 0.01, maxBatches: 400, learningRateMin: 0.0001 });
  for (const k of [0, 100, 200, 399, 400]) assert.ok(Math.abs(darknetRate(c, k) - darknetRate(d, k)) < 1e-10, `cosine ${k}`);
});

test('darknet options: [net] keys and defaults (parse_net_options), errors', () => {
  const cfg = parseCfg('[net]\nwidth=32\nheight=32\nchannels=3\nbatch=8\nsubdivisions=2\nlearning_rate=0.002\nburn_in=10\nmax_batches=300\npolicy=steps\nsteps=200,250\nscales=.1,.1\nmomentum=0.95\n\n[convolutional]\nfilters=4\nsize=3\nactivation=leaky\n', 'h.cfg');
  const net = Network.build(cfg);
  const h = darknetHyper(net.net);
  assert.is(h.momentum, 0.95);
  assert.is(h.decay, 0.0001);
  assert.is(h.adam, null);
  assert.is(h.batch, 8);
  assert.is(h.subdivisions, 2);
  assert.equal(h.schedule.steps, [200, 250]);
  assert.is(h.schedule.power, 4);
  const s = new DarknetSchedule(h.schedule);
  assert.is(s.rate(5), 0.002 * 0.5 ** 4);
  assert.is(s.rate(199), 0.002);
  assert.throws(() => new DarknetSchedule({ policy: 'steps', learningRate: 0.1, steps: [5] }), /scales/);
  assert.throws(() => new DarknetSchedule({ policy: 'poly', learningRate: 0.1 }), /max_batches/);
  assert.throws(() => new DarknetSchedule({ policy: 'nope' as 'poly', learningRate: 0.1 }), /unknown learning-rate policy/);
  const adam = Network.build(parseCfg('[net]\nwidth=8\nheight=8\nchannels=1\nadam=1\nB1=0.8\n\n[convolutional]\nfilters=2\nsize=1\n', 'a.cfg'));
  assert.equal(darknetHyper(adam.net).adam, { beta1: 0.8, beta2: 0.999, eps: 0.000001 });
});

// ---------------------------------------------------------------- reference (yolov5 v7.0 train.py)

function npInterp(x: number, xp: [number, number], fp: [number, number]): number {
  if (x <= xp[0]) return fp[0];
  if (x >= xp[1]) return fp[1];
  return fp[0] + ((x - xp[0]) / (xp[1] - xp[0])) * (fp[1] - fp[0]);
}

test('ultralytics: warm-up (bias lr falls from 0.1, others rise from 0, momentum 0.8 -> 0.937), then lr0·lf(epoch)', () => {
  const hyp = { lr0: 0.01, lrf: 0.01, momentum: 0.937, warmup_epochs: 3, warmup_momentum: 0.8, warmup_bias_lr: 0.1 };
  const epochs = 10;
  const nb = 60;
  for (const cos of [false, true]) {
    const lf = cos
      ? (x: number) => ((1 - Math.cos((x * Math.PI) / epochs)) / 2) * (hyp.lrf - 1) + 1
      : (x: number) => (1 - x / epochs) * (1.0 - hyp.lrf) + hyp.lrf;
    const s = new UltralyticsSchedule({ lr0: hyp.lr0, lrf: hyp.lrf, epochs, batchesPerEpoch: nb, cosLr: cos, batchSize: 16 });
    const nw = Math.max(Math.round(hyp.warmup_epochs * nb), 100);
    assert.is(s.warmupBatches, 180);
    for (const ni of [0, 1, 59, 60, 90, 179, 180, 181, 300, 599]) {
      const epoch = Math.floor(ni / nb);
      const v = s.at({ iteration: ni + 1, epoch, batchInEpoch: ni % nb });
      let lr: number;
      let bias: number;
      let mom: number;
      if (ni <= nw) {
        lr = npInterp(ni, [0, nw], [0.0, hyp.lr0 * lf(epoch)]);
        bias = npInterp(ni, [0, nw], [hyp.warmup_bias_lr, hyp.lr0 * lf(epoch)]);
        mom = npInterp(ni, [0, nw], [hyp.warmup_momentum, hyp.momentum]);
      } else {
        lr = bias = hyp.lr0 * lf(epoch);
        mom = hyp.momentum;
      }
      const tag = `${cos ? 'cos' : 'linear'} ni=${ni}`;
      assert.ok(Math.abs(v.lr - lr) <= 1e-15, `${tag} lr ${v.lr} vs ${lr}`);
      assert.ok(Math.abs(v.biasLr! - bias) <= 1e-15, `${tag} bias lr ${v.biasLr} vs ${bias}`);
      assert.ok(Math.abs(v.momentum! - mom) <= 1e-15, `${tag} momentum ${v.momentum} vs ${mom}`);
    }
    // accumulate: max(1, round(interp(ni, [0, nw], [1, nbs / bs]))) -> 4 at the end of the warm-up
    assert.is(s.at({ iteration: 1, epoch: 0, batchInEpoch: 0 }).accumulate, 1);
    assert.is(s.at({ iteration: 600, epoch: 9, batchInEpoch: 59 }).accumulate, 4);
  }
  assert.throws(() => new UltralyticsSchedule({ epochs: 0, batchesPerEpoch: 3 }), /epochs/);
});

test('stretchDarknetSchedule: --max-batches 2300 on steps 920,1035 of 1150 moves the steps to 1840,2070; poly follows the new length; same length is a no-op', () => {
  const base: DarknetScheduleOptions = { policy: 'steps', learningRate: 0.005, burnIn: 100, maxBatches: 1150, steps: [920, 1035], scales: [0.1, 0.1] };
  const { schedule, note } = stretchDarknetSchedule(base, 2300);
  assert.equal(schedule.steps, [1840, 2070]);
  assert.is(schedule.maxBatches, 2300);
  assert.is(schedule.burnIn, 100);
  assert.match(note!, /steps 920,1035 -> 1840,2070/);
  const s = new DarknetSchedule(schedule);
  assert.is(s.rate(1839), 0.005);
  assert.ok(Math.abs(s.rate(1840) - 0.0005) < 1e-12);
  assert.equal(stretchDarknetSchedule(base, 1150), { schedule: base, note: null });
  const poly = stretchDarknetSchedule({ policy: 'poly', learningRate: 0.01, power: 4, maxBatches: 1000 }, 500).schedule;
  // poly: lr * (1 - k/max_batches)^power over the new length
  assert.ok(Math.abs(new DarknetSchedule(poly).rate(250) - 0.01 * 0.5 ** 4) < 1e-12);
});

test.run();
