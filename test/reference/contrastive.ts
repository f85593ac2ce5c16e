/**
 * Float64 transcription of AlexeyAB's [contrastive] deltas in detector mode (softmax_layer.c
 * forward_contrastive_layer; blas.c cosine_similarity, P_constrastive_f_det, grad_contrastive_loss_positive_f,
 * grad_contrastive_loss_negative_f), on the labelled samples only (Darknet's loops skip the others): the pair
 * list in Darknet's order, P of each pair by its own loop over the list, the gradients with their quirks.
 */
export interface RefSample {
  /** embedding */
  z: ArrayLike<number>;
  label: number;
  cls: number;
  step: number;
}

export interface RefParams {
  temperature: number;
  clsNormalizer: number;
  maxDelta: number;
  negMax: number;
}

/** The delta of each sample (samples in Darknet's sample order). */
export function contrastiveDeltasRef(s: readonly RefSample[], p: RefParams): Float64Array[] {
  const K = s.length;
  const E = s[0]?.z.length ?? 0;
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let mul = 0, da = 0, db = 0;
    for (let m = 0; m < E; m++) (mul += a[m] * b[m], da += a[m] * a[m], db += b[m] * b[m]);
    const d = Math.sqrt(da) * Math.sqrt(db);
    return d > 0 ? mul / d : 0;
  };
  // contrast_p: every (i, j) of one class and time step, i-major
  const pairs: { i: number; j: number; sim: number; exp: number; P: number }[] = [];
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
    if (i === j || s[i].cls !== s[j].cls || s[i].step !== s[j].step) continue;
    const sim = cos(s[i].z, s[j].z);
    pairs.push({ i, j, sim, exp: Math.exp(sim / p.temperature), P: 0 });
  }
  for (const q of pairs) {
    let den = 0;
    for (const r of pairs) if (r.i !== q.i && r.j === q.j) den += r.exp;
    let P = den !== 0 ? q.exp / den : 0.9999;
    if (P > 1) P = 0.9999;
    q.P = P;
  }
  const find = (i: number, j: number) => pairs.find((q) => q.i === i && q.j === j);
  return s.map((si, i) => {
    const d = new Float64Array(E);
    const len = Math.sqrt(Array.from(si.z).reduce((a, v) => a + v * v, 0));
    const N = s.filter((sj) => sj.label === si.label).length;
    if (N > 1 && len > 0) {
      const mult = 1 / ((N - 1) * p.temperature * len);
      for (let j = 0; j < K; j++) {
        if (i === j || s[j].label !== si.label) continue;
        const q = find(i, j);
        if (!q) continue;
        for (let m = 0; m < E; m++) d[m] -= mult * (q.sim * si.z[m] - s[j].z[m]) * (1 - q.P);
      }
      let neg = 0;
      outer: for (let j = 0; j < K; j++) {
        if (i === j || s[j].label !== si.label) continue;
        for (let k = 0; k < K; k++) {
          if (k === i || k === j || s[k].label === si.label || s[j].cls !== s[k].cls) continue;
          neg++;
          const q = find(i, k);
          if (!q) continue;
          for (let m = 0; m < E; m++) d[m] -= mult * (s[k].z[m] - q.sim * si.z[m]) * q.P;
          if (neg >= p.negMax) break outer;
        }
      }
    }
    return d.map((v) => Math.min(p.maxDelta, Math.max(-p.maxDelta, v * p.clsNormalizer)));
  });
}
