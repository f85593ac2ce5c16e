/**
 * AlexeyAB's [contrastive] loss in detector mode and the embedding gather of the detections
 * (kernels/contrastive.wgsl). Darknet: softmax_layer.c forward_contrastive_layer (with a [yolo] layer),
 * blas.c cosine_similarity / P_constrastive_f_det / grad_contrastive_loss_positive_f / _negative_f,
 * yolo_layer.c get_embedding.
 *
 * A sample is one (image b, anchor a, cell) of an embedding tensor [B, C, H, W] whose entry m is channel
 * a*E + m. The loss samples are the cells Darknet's [yolo] labelled with a track id, in Darknet's order
 * ((b*n + a)*H*W + cell ascending), with their class and time step (src/yolo/loss_contrastive.ts builds them).
 */
import { Tensor } from '../tensor.js';
import { Tape } from '../tape.js';
import { zeros } from './elementwise.js';

const WG = 64;
/** Words per sample in the table (kernels/contrastive.wgsl ROW). */
const ROW = 6;

export interface EmbeddingSample {
  b: number;
  a: number;
  /** y*W + x */
  cell: number;
  /** The track id (Darknet l.labels), >= 0; the class (l.class_ids) and the time step (b / (batch / steps)). */
  label?: number;
  cls?: number;
  step?: number;
}

export interface ContrastiveParams {
  temperature: number;
  clsNormalizer: number;
  /** The clip of the deltas (FLT_MAX: none). */
  maxDelta: number;
  /** contrastive_neg_max */
  negMax: number;
}

function table(samples: readonly EmbeddingSample[]): Float32Array {
  const t = new Float32Array(Math.max(1, samples.length) * ROW);
  const u = new Uint32Array(t.buffer);
  const i = new Int32Array(t.buffer);
  samples.forEach((s, k) => {
    u[k * ROW] = s.b;
    u[k * ROW + 1] = s.a;
    u[k * ROW + 2] = s.cell;
    i[k * ROW + 3] = s.label ?? 0;
    i[k * ROW + 4] = s.cls ?? 0;
    u[k * ROW + 5] = s.step ?? 0;
  });
  return t;
}

function check(emb: Tensor, E: number, samples: readonly EmbeddingSample[], what: string): { C: number; HW: number } {
  if (emb.shape.length !== 4) throw new Error(`${what}: expected an NCHW embedding tensor, got ${emb.describe()}`);
  const [B, C, H, W] = emb.shape;
  if (!(Number.isInteger(E) && E >= 1)) throw new Error(`${what}: embedding size ${E}`);
  for (const s of samples) {
    if (!(s.b >= 0 && s.b < B && s.cell >= 0 && s.cell < H * W && s.a >= 0 && (s.a + 1) * E <= C)) {
      throw new Error(`${what}: sample (b ${s.b}, anchor ${s.a}, cell ${s.cell}) is outside ${emb.describe()} with embeddings of ${E}`);
    }
  }
  return { C, HW: H * W };
}

const noLoss = { T: 1, clsNorm: 1, maxDelta: 0, negMax: 0 };

/** [K, E]: the embeddings of `samples` (Darknet get_embedding). Not recorded on the tape. */
export function gatherEmbeddings(emb: Tensor, E: number, samples: readonly EmbeddingSample[]): Tensor {
  const { C, HW } = check(emb, E, samples, 'gatherEmbeddings');
  const K = samples.length;
  const gpu = emb.gpu;
  return Tape.untracked(() => {
    const z = new Tensor(gpu, [K, E], 'embeddings');
    if (K === 0) return z;
    const tab = Tensor.from(gpu, [K * ROW], table(samples), 'embedding-rows');
    gpu.dispatch({ file: 'contrastive', entry: 'gather', constants: { WG } }, { n: K * E, K, E, C, HW, ...noLoss }, { 1: emb, 2: tab, 3: z }, gpu.grid(K * E, WG));
    tab.dispose();
    return z;
  });
}

export interface ContrastiveDeltas {
  /** Darknet's l.delta of the layer (emb's shape: -dL/demb by Darknet's convention), zero off the samples. */
  delta: Tensor;
  /** [5, K] per-sample sums, row 3 = Σ delta² (Darknet's cost is the total); the other rows 0. */
  partials: Tensor;
}

/**
 * The deltas Darknet's forward_contrastive_layer writes (detector mode) for the labelled `samples` of `emb`:
 * cosine similarities of the pairs of one class and time step, P of each pair, the positive and negative
 * gradients, times cls_normalizer, clipped at max_delta. Not recorded (the loss records one node).
 */
export function contrastiveDeltas(emb: Tensor, E: number, samples: readonly EmbeddingSample[], p: ContrastiveParams): ContrastiveDeltas {
  const { C, HW } = check(emb, E, samples, 'contrastiveDeltas');
  if (!(p.temperature > 0)) throw new Error(`contrastiveDeltas: temperature ${p.temperature} must be > 0`);
  samples.forEach((s, k) => {
    if (!(Number.isInteger(s.label) && s.label! >= 0 && Number.isInteger(s.cls) && s.cls! >= 0)) throw new Error(`contrastiveDeltas: sample ${k} needs a label (track id) and class >= 0`);
  });
  const K = samples.length;
  const gpu = emb.gpu;
  const maxBytes = gpu.limits.maxStorageBufferBindingSize ?? 134217728;
  if (K * K * 4 > maxBytes) {
    throw new Error(`contrastiveDeltas: ${K} labelled samples make a ${K} x ${K} similarity matrix of ${K * K * 4} bytes, above this device's ${maxBytes}-byte buffer limit (fewer truths per batch, or a smaller mini-batch)`);
  }
  return Tape.untracked(() => {
    const delta = zeros(gpu, emb.shape, 'contrastive.delta');
    const partials = zeros(gpu, [5, Math.max(1, K)], 'contrastive.partials');
    if (K === 0) return { delta, partials };
    const tab = Tensor.from(gpu, [K * ROW], table(samples), 'contrastive.samples');
    const z = new Tensor(gpu, [K, E], 'contrastive.z');
    const sim = new Tensor(gpu, [K, K], 'contrastive.sim');
    const ex = new Tensor(gpu, [K, K], 'contrastive.exp');
    const col = new Tensor(gpu, [K], 'contrastive.col');
    const out = new Tensor(gpu, [K, E], 'contrastive.out');
    const u = (n: number) => ({ n, K, E, C, HW, T: p.temperature, clsNorm: p.clsNormalizer, maxDelta: Math.min(p.maxDelta, 3.4028234663852886e38), negMax: Math.max(0, p.negMax) });
    const k = (entry: string) => ({ file: 'contrastive', entry, constants: { WG } });
    gpu.dispatch(k('gather'), u(K * E), { 1: emb, 2: tab, 3: z }, gpu.grid(K * E, WG));
    gpu.dispatch(k('sims'), u(K * K), { 2: tab, 3: z, 4: sim, 5: ex }, gpu.grid(K * K, WG));
    gpu.dispatch(k('colsum'), u(K), { 5: ex, 6: col }, gpu.grid(K, WG));
    gpu.dispatch(k('deltas'), u(K * E), { 2: tab, 3: z, 4: sim, 5: ex, 6: col, 7: out, 8: delta }, gpu.grid(K * E, WG));
    gpu.dispatch(k('cost'), u(K), { 7: out, 9: partials }, gpu.grid(K, WG));
    for (const t of [tab, z, sim, ex, col, out]) t.dispose();
    return { delta, partials };
  });
}
