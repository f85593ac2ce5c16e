/** ModelEma on the GPU vs a float64 transcription of yolov5 v7.0 ModelEMA.update, and its state round trip. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose } from '../helpers/check.js';
import { Tensor } from '../../src/tensor/index.js';
import { ModelEma } from '../../src/train/ema.js';
import { Rng, randomArray } from '../../src/util/rng.js';

test('EMA follows the model with the decay ramp d = decay·(1 − exp(−updates/tau)) (float64 reference)', async () => {
  const gpu = await getGpu();
  const rng = new Rng(11);
  const sizes = [1, 300, 5000];
  const vals = sizes.map((n) => randomArray(rng, n, -2, 2));
  const src = sizes.map((n, i) => Tensor.from(gpu, [n], vals[i], `p${i}`));
  const ema = new ModelEma(src.map((t, i) => ({ name: `p${i}`, tensor: t })), { decay: 0.9999, tau: 20 });
  const ref = vals.map((v) => Float64Array.from(v));
  const decay = (x: number) => 0.9999 * (1 - Math.exp(-x / 20));
  let updates = 0;
  for (let step = 0; step < 12; step++) {
    // the "model" moves; the EMA follows
    for (const [i, v] of vals.entries()) {
      for (let j = 0; j < v.length; j++) v[j] = Math.fround(v[j] + rng.uniform(-0.5, 0.5));
      src[i].write(v);
    }
    ema.update();
    updates += 1;
    const d = decay(updates);
    for (const [i, r] of ref.entries()) for (let j = 0; j < r.length; j++) r[j] = r[j] * d + (1 - d) * vals[i][j];
  }
  assert.is(ema.updates, 12);
  assert.ok(Math.abs(ema.decayAt(1) - 0.9999 * (1 - Math.exp(-1 / 20))) < 1e-16);
  const got = await ema.read();
  for (const [i, r] of ref.entries()) assertClose(got.get(`p${i}`)!, r, { atol: 1e-6, rtol: 1e-6 }, `ema p${i}`);

  // state round trip into a fresh EMA, then one more identical update on both
  const st = await ema.exportState();
  const ema2 = new ModelEma(src.map((t, i) => ({ name: `p${i}`, tensor: t })), { decay: 0.9999, tau: 20 });
  ema2.importState(st);
  assert.is(ema2.updates, 12);
  ema.update();
  ema2.update();
  const a = await ema.read();
  const b = await ema2.read();
  for (const k of a.keys()) assert.equal(Buffer.from(a.get(k)!.buffer), Buffer.from(b.get(k)!.buffer), `${k} bitwise after resume`);
  assert.throws(() => ema2.importState({ ...st, tensors: st.tensors.slice(1) }), /state has 2 tensors/);
  ema.dispose();
  ema2.dispose();
  for (const t of src) t.dispose();
});

test.run();
