import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../helpers/gpu.js';
import { assertClose, dot, f64, finiteDiff, type Tol } from '../helpers/check.js';
import { matmulRef } from '../reference/matmul.js';
import { Tensor, newTape } from '../../src/tensor/index.js';
import { matmul, matmulPanels, matmulSupported, fixedSubgroupSize, matmulConfigsFor, panelWidth, sgConfigsFor, MATMUL_CONFIGS, MATMUL_VARIANTS, configName, defaultTile } from '../../src/tensor/ops/matmul.js';
import { Rng, randomArray } from '../../src/util/rng.js';

// f32 accumulation of K products of values in [-1, 1] (fma, sequential in k) vs the float64 sum: the
// rounding error grows at most ~K * 2^-24 * sum|a||b| <= K^2 * 6e-8; in practice ~sqrt(K) * 6e-8 * K.
// We allow 1e-6 * K absolute (64: 6.4e-5; observed max ~3e-6) plus 1e-5 relative.
const tol = (K: number): Tol => ({ atol: 1e-6 * Math.max(K, 1), rtol: 1e-5 });

// odd sizes (edges in every tile dimension), plus sizes that take the vec4 path (K % 4 == 0, N % 4 == 0)
const SIZES: [number, number, number][] = [[1, 1, 1], [7, 13, 5], [33, 65, 17], [64, 64, 64], [9, 20, 12], [70, 36, 44]];

for (const cfg of MATMUL_CONFIGS) {
  test(`matmul ${configName(cfg)}: forward vs float64 reference on ${SIZES.map((s) => s.join('x')).join(', ')}`, async () => {
    const gpu = await getGpu();
    if (!matmulSupported(gpu, cfg)) {
      console.log(`  [skipped: ${configName(cfg)} needs subgroups of size ${cfg.tile.wgx}; this device: ${fixedSubgroupSize(gpu) ?? 'none'}]`);
      return;
    }
    const rng = new Rng(5);
    for (const [M, N, K] of SIZES) {
      const av = randomArray(rng, M * K);
      const bv = randomArray(rng, K * N);
      const a = Tensor.from(gpu, [M, K], av);
      const b = Tensor.from(gpu, [K, N], bv);
      const c = matmul(a, b, cfg);
      assert.equal(c.shape, [M, N]);
      assertClose(await c.toArray(), matmulRef(av, bv, M, N, K), tol(K), `${configName(cfg)} ${M}x${N}x${K}`);
      a.dispose(); b.dispose(); c.dispose();
    }
  });
}

// B in column panels (the Winograd products' transformed weights): the same sums as row-major B, so the same
// bits, for every 'sg' tile this device runs; rows not a multiple of the tile's, several panels, batch 3.
test('matmulPanels: B in column panels gives row-major matmul\'s bits (every sg tile here), and float64', async () => {
  const gpu = await getGpu();
  const cfgs = matmulConfigsFor(gpu).filter((c) => c.variant === 'sg');
  if (!cfgs.length) return void console.log(`  [skipped: no 'sg' tile runs on this device (subgroups: ${fixedSubgroupSize(gpu) ?? 'none'})]`);
  const rng = new Rng(17);
  for (const cfg of cfgs) {
    const P = panelWidth(cfg.tile);
    const batch = 3;
    for (const [M, K, np] of [[37, 20, 3], [5, 8, 1]] as const) {
      const N = np * P;
      const av = randomArray(rng, batch * M * K);
      const bv = randomArray(rng, batch * K * N);
      // bp[z][p][k][j] = b[z][k][p * P + j]
      const pv = new Float32Array(bv.length);
      for (let z = 0; z < batch; z++) for (let p = 0; p < np; p++) for (let k = 0; k < K; k++) for (let j = 0; j < P; j++) {
        pv[((z * np + p) * K + k) * P + j] = bv[(z * K + k) * N + p * P + j];
      }
      const a = Tensor.from(gpu, [batch, M, K], av);
      const b = Tensor.from(gpu, [batch, K, N], bv);
      const bp = Tensor.from(gpu, [batch, np, K, P], pv);
      const want = await matmul(a, b, cfg).toArray();
      const out = new Tensor(gpu, [batch, M, N]);
      matmulPanels(a, bp, out, cfg.tile);
      const got = await out.toArray();
      const at = got.findIndex((v, i) => !Object.is(v, want[i]));
      assert.is(at, -1, `${configName(cfg)} ${M}x${N}x${K}: panels differ from row-major at ${at}`);
      assertClose(got, matmulRef(av, bv, M, N, K, batch), tol(K), `${configName(cfg)} panels vs float64`);
      assert.throws(() => matmulPanels(a, b, out, cfg.tile), /B \[batch, N\/\d+, K, \d+\]/);
      for (const t of [a, b, bp, out]) t.dispose();
    }
  }
});

// The 'sg' tiles for this device's own subgroup size (lavapipe 8, SwiftShader 4: `make test-swiftshader`),
// batch 2: the subgroup-shuffle kernel may assume no subgroup size but the one the device reports.
test('matmul sg at the device subgroup size (sgConfigsFor): forward vs float64, batch 2', async () => {
  const gpu = await getGpu();
  const sg = fixedSubgroupSize(gpu);
  if (sg === undefined) return void console.log('  [skipped: no fixed subgroup size on this device]');
  const cfgs = sgConfigsFor(sg);
  assert.ok(cfgs.length > 0 && cfgs.every((c) => c.tile.wgx === sg && c.tile.tm % sg === 0 && matmulSupported(gpu, c)), JSON.stringify(cfgs));
  if (sg !== 8) for (const c of cfgs) assert.ok(matmulConfigsFor(gpu).some((d) => configName(d) === configName(c)), `${configName(c)} not swept`);
  const rng = new Rng(13);
  for (const cfg of cfgs) {
    for (const [M, N, K] of [[33, 20, 16], [64, 64, 64], [5, 8, 4]] as const) {
      const batch = 2;
      const av = randomArray(rng, batch * M * K);
      const bv = randomArray(rng, batch * K * N);
      const a = Tensor.from(gpu, [batch, M, K], av);
      const b = Tensor.from(gpu, [batch, K, N], bv);
      const c = matmul(a, b, cfg);
      assertClose(await c.toArray(), matmulRef(av, bv, M, N, K, batch), tol(K), `${configName(cfg)} ${M}x${N}x${K} batch ${batch}`);
      a.dispose(); b.dispose(); c.dispose();
    }
  }
});

// 'sg' runs its own kernel only for row-major operands with K, N multiples of 4 (else the 'reg' fallback);
// the [33, 20, 16] cases below take its kernel.
const VARIANTS_HERE = async () => {
  const gpu = await getGpu();
  return MATMUL_VARIANTS.filter((v) => matmulSupported(gpu, { variant: v, tile: defaultTile(v) }));
};

for (const variant of MATMUL_VARIANTS) {
  test(`matmul ${variant}: transposes, batch 2, alpha/beta accumulate`, async () => {
    const gpu = await getGpu();
    if (!(await VARIANTS_HERE()).includes(variant)) return void console.log(`  [skipped: ${variant} is not supported on this device]`);
    const rng = new Rng(9);
    for (const [M, N, K] of [[7, 13, 5], [33, 20, 16]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const batch = 2;
          const av = randomArray(rng, batch * M * K);
          const bv = randomArray(rng, batch * K * N);
          const a = Tensor.from(gpu, transA ? [batch, K, M] : [batch, M, K], av);
          const b = Tensor.from(gpu, transB ? [batch, N, K] : [batch, K, N], bv);
          const c = matmul(a, b, { variant, transA, transB });
          assert.equal(c.shape, [batch, M, N]);
          const label = `${variant} ${M}x${N}x${K} transA=${transA} transB=${transB}`;
          assertClose(await c.toArray(), matmulRef(av, bv, M, N, K, batch, { transA, transB }), tol(K), label);
          // accumulate into c: c = 0.5 * op(A) op(B) - 2 * c
          const c0 = await c.toArray();
          matmul(a, b, { variant, transA, transB, alpha: 0.5, beta: -2, out: c });
          assertClose(await c.toArray(), matmulRef(av, bv, M, N, K, batch, { transA, transB, alpha: 0.5, beta: -2, c0 }), tol(K), `${label} alpha/beta`);
          a.dispose(); b.dispose(); c.dispose();
        }
      }
    }
  });

  test(`matmul ${variant}: backward (dA, dB) vs float64 reference and finite differences, with transposes`, async () => {
    const gpu = await getGpu();
    if (!(await VARIANTS_HERE()).includes(variant)) return void console.log(`  [skipped: ${variant} is not supported on this device]`);
    const rng = new Rng(21);
    const [M, N, K] = [6, 9, 5];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const av = randomArray(rng, M * K);
        const bv = randomArray(rng, K * N);
        const gv = randomArray(rng, M * N);
        const a = Tensor.param(gpu, transA ? [K, M] : [M, K], av);
        const b = Tensor.param(gpu, transB ? [N, K] : [K, N], bv);
        const dc = Tensor.from(gpu, [M, N], gv);
        const tape = newTape();
        const c = tape.record(() => matmul(a, b, { variant, transA, transB }));
        tape.backward(c, dc);
        const label = `${variant} transA=${transA} transB=${transB}`;
        // dA = dC op(B)^T (stored transposed when transA), dB = op(A)^T dC (stored transposed when transB)
        const opB = (k: number, n: number) => (transB ? bv[n * K + k] : bv[k * N + n]);
        const opA = (m: number, k: number) => (transA ? av[k * M + m] : av[m * K + k]);
        const dA = new Float64Array(M * K);
        const dB = new Float64Array(K * N);
        for (let m = 0; m < M; m++) {
          for (let k = 0; k < K; k++) {
            let s = 0;
            for (let n = 0; n < N; n++) s += gv[m * N + n] * opB(k, n);
            dA[transA ? k * M + m : m * K + k] = s;
          }
        }
        for (let k = 0; k < K; k++) {
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let m = 0; m < M; m++) s += opA(m, k) * gv[m * N + n];
            dB[transB ? n * K + k : k * N + n] = s;
          }
        }
        const ga = await a.grad!.toArray();
        const gb = await b.grad!.toArray();
        assertClose(ga, dA, tol(N), `${label} dA`);
        assertClose(gb, dB, tol(M), `${label} dB`);
        // finite differences of sum(C * dC) in float64 (C is bilinear, so central differences are exact up to rounding)
        const a64 = f64(av);
        const b64 = f64(bv);
        const loss = () => dot(matmulRef(a64, b64, M, N, K, 1, { transA, transB }), gv);
        assertClose(ga, finiteDiff(loss, a64), { atol: 1e-5, rtol: 1e-4 }, `${label} dA vs finite differences`);
        assertClose(gb, finiteDiff(loss, b64), { atol: 1e-5, rtol: 1e-4 }, `${label} dB vs finite differences`);
        a.grad!.dispose(); b.grad!.dispose(); a.dispose(); b.dispose(); dc.dispose(); tape.dispose();
      }
    }
  });
}

test('matmul: shape errors name the operands; K = 0 gives zeros', async () => {
  const gpu = await getGpu();
  const a = Tensor.from(gpu, [2, 3], [1, 2, 3, 4, 5, 6]);
  const b = Tensor.from(gpu, [4, 2], new Float32Array(8));
  assert.throws(() => matmul(a, b), /inner dimensions differ/);
  assert.throws(() => matmul(a, a, { transB: true, variant: 'tiled', tile: { ...defaultTile('tiled'), tn: 6 } }), /tn % 4/);
  if (fixedSubgroupSize(gpu) !== 8) assert.throws(() => matmul(a, a, { transB: true, variant: 'sg' }), /subgroup/);
  const e1 = Tensor.from(gpu, [3, 0], []);
  const e2 = Tensor.from(gpu, [0, 2], []);
  const z = matmul(e1, e2, { variant: 'reg' });
  assert.equal([...(await z.toArray())], [0, 0, 0, 0, 0, 0]);
  for (const t of [a, b, e1, e2, z]) t.dispose();
});

test.run();
