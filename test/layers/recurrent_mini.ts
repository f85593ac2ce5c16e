/**
 * The small recurrent networks of the recurrent-layer tests and of fixtures/golden/darknet_recurrent.json
 * (whose driver reads these cfgs and the .weights saveWeights writes from recurrentMiniNetwork): one cfg per
 * layer kind, two layers each (with and without batch_normalize, the kinds' other keys), [net] batch=2
 * time_steps=3 (Darknet's training batch 2*3 = 6 rows, b = 2 per step).
 *
 * [rnn], [gru], [lstm] read a 2x2x5 image through a global [avgpool] (5 values per row): AlexeyAB's
 * parse_network_cfg_custom divides by the number of layers whose input is wider and taller than 1
 * (avg_outputs / avg_counter), so a cfg without one (rnn.cfg, gru.cfg, lstm.train.cfg, crnn.train.cfg: a flat
 * `inputs=` network) dies of SIGFPE before any forward; the [avgpool] is that one layer.
 */
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import { Rng, randomArray } from '../../src/util/rng.js';

const NET = (shape: string, batch = 2, steps = 3) => `[net]
batch=${batch}
subdivisions=1
time_steps=${steps}
${shape}
`;
const IMAGE = 'width=5\nheight=4\nchannels=3';

const FLAT = `${NET('width=2\nheight=2\nchannels=5')}
[avgpool]
`;

export const RECURRENT_MINI: Record<'crnn' | 'rnn' | 'gru' | 'lstm', string> = {
  crnn: `${NET(IMAGE)}
[crnn]
batch_normalize=1
size=3
pad=1
hidden=6
output=4
activation=leaky

[crnn]
size=1
hidden=4
output=2
groups=2
shortcut=1
activation=logistic
`,
  rnn: `${FLAT}
[rnn]
batch_normalize=1
hidden=6
output=4
activation=leaky

[rnn]
hidden=3
output=3
logistic=1
shortcut=1
activation=leaky
`,
  gru: `${FLAT}
[gru]
batch_normalize=1
output=4

[gru]
output=3
`,
  lstm: `${FLAT}
[lstm]
batch_normalize=1
output=4

[lstm]
output=3
`,
};

/**
 * The backward cases (Darknet's deltas of one training forward + backward): linear activations, where
 * AlexeyAB's CPU backward_crnn_layer / backward_rnn_layer are exact. They are not in general: they copy
 * self_layer.delta into input_layer.delta after backward_convolutional_layer has multiplied it in place by
 * the activation's gradient and, with batch_normalize, by backward_batchnorm_layer (the GPU path copies
 * first: with BN, even one step from the zero state gives the input part the self part's BN delta, scaled
 * by 1/sqrt(0 + 1e-5)); every step's batchnorm backward reads the last step's mean and variance (l.mean /
 * l.variance are per layer, not per step); with shortcut=1 the output part's weight gradient reads a
 * recomputed state without the shortcut term. [crnn] more: the CPU backward_convolutional_layer writes its
 * input delta through col2im_cpu_ext, which zeroes the destination first, so the output part's delta
 * overwrites the self part's contribution from the next step (the gradient through the state is lost;
 * cuDNN's backward adds). So: [rnn] over 3 steps (BPTT), [crnn] one step; linear, no batchnorm.
 */
export const RECURRENT_BACKWARD: Record<'crnn_step' | 'rnn_bptt', string> = {
  crnn_step: `${NET(IMAGE, 2, 1)}
[crnn]
size=3
pad=1
hidden=3
output=4
activation=linear

[crnn]
size=1
hidden=2
output=2
activation=linear
`,
  rnn_bptt: `${FLAT}
[rnn]
hidden=4
output=3
activation=linear

[rnn]
hidden=3
output=2
activation=linear
`,
};

export type RecurrentMiniKind = keyof typeof RECURRENT_MINI | keyof typeof RECURRENT_BACKWARD;
const CFGS: Record<RecurrentMiniKind, string> = { ...RECURRENT_MINI, ...RECURRENT_BACKWARD };

/**
 * Seeded non-trivial parameters after initWeights: in layer order, parameter by parameter in .weights order
 * (a recurrent layer's parts too: 'input.biases' ...), biases in [-0.5, 0.5), BN scales in [0.5, 1.5),
 * rolling means in [-0.3, 0.3), rolling variances in [0.5, 1.5) from one Rng(seed) (the goldens depend on
 * this order).
 */
export function perturbParams(net: Network, seed: number): void {
  const rng = new Rng(seed);
  const ranges: Record<string, [number, number]> = { biases: [-0.5, 0.5], scales: [0.5, 1.5], rolling_mean: [-0.3, 0.3], rolling_variance: [0.5, 1.5] };
  for (const l of net.layers) {
    for (const p of l.params) {
      const r = ranges[p.name.slice(p.name.indexOf('.') + 1)];
      if (r) l.data![p.name] = randomArray(rng, p.count, r[0], r[1]);
    }
  }
}

/** The network of one kind with seeded parameters: initWeights(seed), then perturbParams(net, seed + 100). */
export function recurrentMiniNetwork(kind: RecurrentMiniKind, seed = 11): Network {
  const net = Network.build(parseCfg(CFGS[kind], `${kind}-mini.cfg`));
  net.initWeights(seed);
  perturbParams(net, seed + 100);
  return net;
}

/** Rows of one forward call: Darknet's batch * time_steps. */
export const miniRows = (net: Network): number => net.net.miniBatch * net.net.timeSteps;

/** The input: `calls` forward calls of miniRows rows each, uniform in [-1, 1) from Rng(seed). */
export function recurrentMiniInput(net: Network, calls = 2, seed = 5): Float32Array[] {
  const rng = new Rng(seed);
  const I = net.input;
  return Array.from({ length: calls }, () => randomArray(rng, miniRows(net) * I.c * I.h * I.w, -1, 1));
}

/** The output gradient of the backward cases: uniform in [-1, 1) from Rng(9), shaped like the last output. */
export function recurrentMiniGradient(net: Network): Float32Array {
  return randomArray(new Rng(9), miniRows(net) * net.layers[net.layers.length - 1].outputs, -1, 1);
}
