/**
 * A TF.js model of a Darknet network, built from the engine's parsed layers and host parameters (so the
 * weights are the very arrays our engine uploads), NHWC as TF.js prefers.
 *
 * - Inference graph: conv with the BN-folded weights (src/layers/common.ts foldBn, as our 'infer' mode) +
 *   bias + activation, maxpool with Darknet's padding (explicit: floor(padding/2) before, the rest after;
 *   yolov3-tiny's stride-1 2x2 pool pads one column/row on the right/bottom), route (concat, with groups),
 *   nearest upsample, shortcut, and the [yolo] head activation (logistic on x, y, objectness, classes).
 *   Returns the [yolo] outputs (Darknet's l.output) in cfg order.
 * - Training graph: conv without bias, batch normalization with batch statistics in Darknet's formula
 *   (unbiased variance, (x - mean) / (sqrt(var) + 1e-6) * scales + biases; the running statistics are not
 *   updated), activation; the loss is Σ z² over the head inputs (the convolutions feeding [yolo]), the same
 *   simple loss bench/network.ts's 'sumsq' gives our engine. Trainable variables: conv weights, biases, BN
 *   scales.
 * Layers or options it cannot express throw UnsupportedLayerError.
 */
import type { Network } from '../../src/darknet/network.js';
import { UnsupportedLayerError, foldedConv, maxpoolPads, yoloChannelMasks } from './onnx.js';
import { headInputLayers } from '../../src/perf/network.js';

type TF = typeof import('@tensorflow/tfjs-core');
type T = import('@tensorflow/tfjs-core').Tensor;
type T4 = import('@tensorflow/tfjs-core').Tensor4D;
type Variable = import('@tensorflow/tfjs-core').Variable;
type Scalar = import('@tensorflow/tfjs-core').Scalar;

/** OIHW (ours) -> HWIO (TF.js conv2d filters). */
export function oihwToHwio(w: Float32Array, o: number, i: number, k: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let co = 0; co < o; co++) {
    for (let ci = 0; ci < i; ci++) {
      for (let kh = 0; kh < k; kh++) {
        for (let kw = 0; kw < k; kw++) out[((kh * k + kw) * i + ci) * o + co] = w[((co * i + ci) * k + kh) * k + kw];
      }
    }
  }
  return out;
}

/** NCHW -> NHWC (host). */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) out[((b * h + y) * w + xx) * c + ch] = x[((b * c + ch) * h + y) * w + xx];
  return out;
}

/** NHWC -> NCHW (host). */
export function nhwcToNchw(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch];
  return out;
}

export interface TfModel {
  /** [yolo] layer indices, in the order predict returns them. */
  heads: number[];
  /** Head-input layer indices (what the training loss reads). */
  headInputs: number[];
  /** Inference: NHWC input -> [yolo] outputs (NHWC), in `heads` order. Call inside tf.tidy. */
  predict(x: T4): T[];
  /** Training loss Σ z² over the head inputs (BN with batch statistics); only with `train`. */
  trainLoss(x: T4): Scalar;
  /** The trainable variables (only with `train`). */
  variables: Variable[];
  dispose(): void;
}

/** Builds the TF.js model of `net` (host parameters required). `train`: also the training graph and variables. */
export function buildTfModel(tf: TF, net: Network, opts: { train?: boolean } = {}): TfModel {
  const keep: T[] = [];
  const variables: Variable[] = [];
  const conv = new Map<number, { w: T4; b: T }>();
  const trainConv = new Map<number, { w: Variable; b: Variable; scales: Variable | null }>();
  const yolo = new Map<number, { raw: T; act: T; bias: T | null }>();
  // parameters, and the checks, first (so an unsupported layer throws before any work)
  for (const l of net.layers) {
    const where = `layer ${l.index} [${l.kind}]`;
    if (l.kind === 'convolutional') {
      const c = l;
      if (c.groups !== 1) throw new UnsupportedLayerError(`${where}: groups=${c.groups} (TF.js conv2d has no groups)`);
      if (!['linear', 'leaky', 'logistic', 'relu', 'mish', 'swish'].includes(c.activation)) throw new UnsupportedLayerError(`${where}: activation ${c.activation}`);
      const k = c.size;
      const cin = l.input.c;
      const f = foldedConv(l);
      const w = tf.tensor4d(oihwToHwio(f.w, c.filters, cin, k), [k, k, cin, c.filters]);
      const b = tf.tensor1d(f.b);
      keep.push(w, b);
      conv.set(l.index, { w, b });
      if (opts.train) {
        const owner = c.share ?? l;
        const d = owner.data!;
        // unnamed: TF.js names must be unique per process, and several models of one network coexist
        const variable = (t: T) => {
          const v = tf.variable(t, true);
          t.dispose();
          return v;
        };
        const tw = variable(tf.tensor4d(oihwToHwio(d.weights, c.filters, cin, k), [k, k, cin, c.filters]));
        const tb = variable(tf.tensor1d(d.biases));
        const ts = c.batchNormalize ? variable(tf.tensor1d(d.scales)) : null;
        variables.push(tw, tb, ...(ts ? [ts] : []));
        trainConv.set(l.index, { w: tw, b: tb, scales: ts });
      }
    } else if (l.kind === 'yolo') {
      const m = yoloChannelMasks(l);
      const y = { raw: tf.tensor1d(m.raw), act: tf.tensor1d(m.act), bias: m.anyBias ? tf.tensor1d(m.bias) : null };
      keep.push(y.raw, y.act, ...(y.bias ? [y.bias] : []));
      yolo.set(l.index, y);
    } else if (l.kind === 'upsample') {
      if (l.stride < 0) throw new UnsupportedLayerError(`${where}: downsampling (negative stride)`);
    } else if (l.kind === 'shortcut') {
      if (l.sources.length !== 2 || l.params.length) throw new UnsupportedLayerError(`${where}: only a plain two-input shortcut is supported`);
    } else if (!['maxpool', 'route'].includes(l.kind)) {
      throw new UnsupportedLayerError(`${where} is not supported by the peer models`);
    }
  }
  const heads = net.heads().filter((l) => l.kind === 'yolo').map((l) => l.index);
  if (!heads.length) throw new UnsupportedLayerError('the network has no [yolo] heads');
  const headInputs = headInputLayers(net);

  const act = (x: T, a: string): T => {
    switch (a) {
      case 'linear': return x;
      case 'leaky': return tf.leakyRelu(x, 0.1);
      case 'logistic': return tf.sigmoid(x);
      case 'relu': return tf.relu(x);
      case 'swish': return tf.mul(x, tf.sigmoid(x));
      case 'mish': return tf.mul(x, tf.tanh(tf.softplus(x)));
      default: throw new UnsupportedLayerError(`activation ${a}`);
    }
  };

  /** Runs the layers up to `last` (inclusive); train: the training graph. Returns every layer's output. */
  const run = (x: T4, train: boolean, last: number): T[] => {
    const outs: T[] = [];
    const src = (j: number) => (j < 0 ? x : outs[j]);
    for (const l of net.layers) {
      if (l.index > last) break;
      const inp = src(l.sources[0]) as T4;
      let y: T;
      if (l.kind === 'convolutional') {
        const c = l;
        const p = c.padding * c.dilation;
        if (!train) {
          const t = conv.get(l.index)!;
          y = act(tf.add(tf.conv2d(inp, t.w, [c.strideY, c.strideX], p, 'NHWC', c.dilation), t.b), c.activation);
        } else {
          const t = trainConv.get(l.index)!;
          const z = tf.conv2d(inp, t.w as unknown as T4, [c.strideY, c.strideX], p, 'NHWC', c.dilation);
          if (t.scales) {
            const [n, h, w] = z.shape;
            const m = n * h * w;
            const mean = tf.mean(z, [0, 1, 2]);
            const d = tf.sub(z, mean);
            const variance = tf.div(tf.sum(tf.square(d), [0, 1, 2]), Math.max(1, m - 1));
            y = tf.add(tf.mul(tf.div(d, tf.add(tf.sqrt(variance), 1e-6)), t.scales), t.b);
          } else y = tf.add(z, t.b);
          y = act(y, c.activation);
        }
      } else if (l.kind === 'maxpool') {
        const m = l;
        const [pt, pb] = maxpoolPads(l.input.h, l.output.h, m.size, m.strideY, m.padding);
        const [pl, pr] = maxpoolPads(l.input.w, l.output.w, m.size, m.strideX, m.padding);
        const pad = pt || pb || pl || pr ? ([[0, 0], [pt, pb], [pl, pr], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]) : 'valid';
        y = tf.maxPool(inp, [m.size, m.size], [m.strideY, m.strideX], pad);
      } else if (l.kind === 'route') {
        const r = l;
        const parts = l.sources.map((j) => {
          const t = src(j);
          if (r.groups === 1) return t;
          const c = t.shape[3]! / r.groups;
          return tf.slice(t, [0, 0, 0, r.groupId * c], [-1, -1, -1, c]);
        });
        y = parts.length === 1 ? parts[0] : tf.concat(parts, 3);
      } else if (l.kind === 'upsample') {
        const u = l;
        y = tf.image.resizeNearestNeighbor(inp, [l.output.h, l.output.w], false, false);
        if (u.scale !== 1) y = tf.mul(y, u.scale);
      } else if (l.kind === 'shortcut') {
        y = act(tf.add(src(l.sources[0]), src(l.sources[1])), l.activation);
      } else if (l.kind === 'yolo') {
        if (train) y = inp;
        else {
          const m = yolo.get(l.index)!;
          y = tf.add(tf.mul(inp, m.raw), tf.mul(tf.sigmoid(inp), m.act));
          if (m.bias) y = tf.add(y, m.bias);
        }
      } else throw new UnsupportedLayerError(`layer ${l.index} [${l.kind}]`);
      outs.push(y);
    }
    return outs;
  };

  const lastHead = Math.max(...heads);
  const lastHeadInput = Math.max(...headInputs);
  return {
    heads,
    headInputs,
    predict(x) {
      const outs = run(x, false, lastHead);
      return heads.map((i) => outs[i]);
    },
    trainLoss(x) {
      if (!opts.train) throw new Error('buildTfModel: built without { train: true }');
      const outs = run(x, true, lastHeadInput);
      const parts = headInputs.map((i) => tf.sum(tf.square(outs[i])));
      return (parts.length === 1 ? parts[0] : tf.addN(parts)) as Scalar;
    },
    variables,
    dispose() {
      for (const t of keep) t.dispose();
      for (const v of variables) v.dispose();
    },
  };
}
