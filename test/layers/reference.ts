/**
 * A float64 reference of every layer kind's forward, from the layer's options, its host parameters and
 * the actual values of its inputs: used to check each layer of a built network in isolation.
 */
import type { AnyLayer } from '../../src/darknet/registry.js';
import type { Activation } from '../../src/tensor/ops/activation.js';
import { conv2dRef } from '../reference/conv2d.js';
import { act } from '../reference/activation.js';
import { maxpoolRef, avgpoolRef, localAvgpoolRef } from '../reference/pool.js';
import { concatRef } from '../reference/concat.js';
import { shortcutRef } from '../reference/shortcut.js';
import { upsampleRef, upsampleSumRef } from '../reference/upsample.js';
import { reorgExtraRef, reorgRef } from '../reference/reorg.js';
import { headActivationRef } from '../reference/yolo_act.js';
import { softmaxRowsRef } from '../reference/softmax.js';
import { softmaxTreeRef } from '../reference/tree.js';
import { scaleChannelsRef } from '../reference/scale_channels.js';
import { localRef } from '../reference/local.js';
import { cropRef } from '../reference/crop.js';
import { gaussianActivationRef } from '../reference/gaussian_yolo.js';
import { binarizeInputRef, binarizeWeightsRef } from '../reference/binarize.js';
import { bnApplyRef } from '../reference/batchnorm.js';
import { recurrentRef } from '../reference/recurrent.js';

export interface Val {
  data: ArrayLike<number>;
  shape: number[];
}

const actAll = (y: Float64Array, a: Activation) => y.map((v) => act(v, a));

/** Darknet's BN at inference (normalize_cpu + scale_bias + add_bias) after a conv without bias. */
function bnOrBias(y: Float64Array, n: number, per: number, d: Record<string, Float32Array>, bn: boolean): Float64Array {
  for (let i = 0; i < y.length; i++) {
    const o = Math.floor(i / per) % n;
    y[i] = bn ? ((y[i] - d.rolling_mean[o]) / (Math.sqrt(d.rolling_variance[o]) + 1e-6)) * d.scales[o] + d.biases[o] : y[i] + d.biases[o];
  }
  return y;
}

/** `l.kind` narrows `l` to its layer class (AnyLayer): no casts. */
export function layerRef(l: AnyLayer, ins: Val[]): Float64Array {
  const [x] = ins;
  switch (l.kind) {
    case 'convolutional': {
      const c = l;
      const d = c.owner.data!;
      const wShape = [c.filters, c.input.c / c.groups, c.size, c.size];
      const p = c.padding * c.dilation;
      // xnor / binary: binary weights (sign * mean|w| per filter) and, xnor, binary inputs (x > 0 ? 1 : -1)
      const w = c.xnor || c.binary ? binarizeWeightsRef(d.weights, c.filters) : d.weights;
      const xin = c.xnor ? binarizeInputRef(x.data) : x.data;
      const { y, shape } = conv2dRef(xin, x.shape, w, wShape, null, { stride: [c.strideY, c.strideX], pad: p, dilation: c.dilation, groups: c.groups });
      return actAll(bnOrBias(y, c.filters, shape[2] * shape[3], d, c.batchNormalize), c.activation);
    }
    case 'connected': {
      const c = l;
      const d = c.data!;
      const K = c.inputsN;
      const B = x.shape[0];
      const y = new Float64Array(B * c.outputsN);
      for (let b = 0; b < B; b++) for (let o = 0; o < c.outputsN; o++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x.data[b * K + k] * d.weights[o * K + k];
        y[b * c.outputsN + o] = s;
      }
      return actAll(bnOrBias(y, c.outputsN, 1, d, c.batchNormalize), c.activation);
    }
    case 'maxpool': {
      const m = l;
      return maxpoolRef(x.data, x.shape, { size: m.size, strideX: m.strideX, strideY: m.strideY, padding: m.padding }).y;
    }
    case 'avgpool':
      return avgpoolRef(x.data, x.shape);
    case 'local_avgpool':
      return localAvgpoolRef(x.data, x.shape, { size: l.size, strideX: l.strideX, strideY: l.strideY, padding: l.padding }).y;
    case 'route': {
      const r = l;
      return concatRef(ins, r.groups, r.groupId);
    }
    case 'shortcut':
      return shortcutRef(ins[0].data, ins[0].shape, ins[1].data, ins[1].shape, l.activation);
    case 'upsample': {
      const u = l;
      if (u.stride > 0) return upsampleRef(x.data, x.shape, u.stride, u.scale);
      const s = -u.stride;
      return upsampleSumRef(x.data, [x.shape[0], x.shape[1], x.shape[2] / s, x.shape[3] / s], s, u.scale);
    }
    case 'reorg':
    case 'reorg3d': {
      if (l.extra) return reorgExtraRef(x.data, x.shape[0], l.extra);
      const c = l.call();
      return reorgRef(x.data, c.W, c.H, c.C, x.shape[0], c.stride, c.forward);
    }
    case 'yolo': {
      const o = l.options;
      const E = o.classes + 5;
      return headActivationRef(x.data, x.shape, { entries: E, xyLogistic: !o.newCoords, xyScale: o.scaleXY, xyBias: -0.5 * (o.scaleXY - 1), actFrom: o.newCoords ? E : 4, actTo: E });
    }
    case 'Gaussian_yolo':
      return gaussianActivationRef(x.data, x.shape, l.options.classes, l.options.scaleXY);
    case 'region': {
      const o = l.options;
      const E = o.coords + 1 + o.classes;
      const tree = o.tree?.ok ? o.tree.value : null;
      const softmax = o.softmax || tree !== null;
      const a = headActivationRef(x.data, x.shape, { entries: E, xyLogistic: true, actFrom: o.coords, actTo: softmax ? o.coords + 1 : E });
      if (!softmax) return a;
      const hw = x.shape[2] * x.shape[3];
      const rows = { rows: x.shape[0] * o.num * hw, n: o.classes, stride: hw, offset: (o.coords + 1) * hw, c0: hw, s0: 1, c1: o.num, s1: E * hw, s2: o.num * E * hw };
      return tree ? softmaxTreeRef(a, rows, tree) : softmaxRowsRef(a, rows);
    }
    case 'detection': {
      const o = l.options;
      const per = x.data.length / x.shape[0];
      if (!o.softmax) return Float64Array.from(x.data as ArrayLike<number>);
      return softmaxRowsRef(x.data, { rows: x.shape[0] * o.side * o.side, n: o.classes, c0: o.side * o.side, s0: o.classes, s2: per });
    }
    case 'softmax': {
      const s = l;
      const per = x.data.length / x.shape[0];
      if (s.tree?.ok) return softmaxTreeRef(x.data, { rows: x.shape[0], n: per, s2: per, temperature: s.temperature }, s.tree.value);
      const n = per / s.groups;
      return softmaxRowsRef(x.data, { rows: x.shape[0] * s.groups, n, c0: s.groups, s0: n, s2: per, temperature: s.temperature });
    }
    case 'sam': {
      const y = new Float64Array(ins[0].data.length);
      for (let i = 0; i < y.length; i++) y[i] = act(ins[0].data[i] * ins[1].data[i], l.activation);
      return y;
    }
    case 'scale_channels': {
      const s = l;
      return actAll(scaleChannelsRef(ins[0].data, ins[1].data, ins[1].shape, s.scaleWh), s.activation);
    }
    case 'local': {
      const c = l;
      const d = c.data!;
      return actAll(localRef(x.data, x.shape, d.weights, d.biases, { filters: c.filters, size: c.size, stride: c.stride, pad: c.pad, outH: c.output.h, outW: c.output.w }), c.activation);
    }
    case 'crop': {
      const c = l;
      return cropRef(x.data, x.shape, c.cropHeight, c.cropWidth, c.noadjust);
    }
    case 'batchnorm': {
      const d = l.owner.data!;
      return bnApplyRef(x.data, x.shape, d.scales, d.biases, d.rolling_mean, d.rolling_variance, 'darknet');
    }
    case 'crnn':
    case 'rnn':
    case 'gru':
    case 'lstm':
      // one time step from the zero state: a fresh network's first forward (test/reference/recurrent.ts for more)
      return recurrentRef(l, x.data, x.shape).y;
    case 'dropout':
    case 'cost':
    case 'contrastive':
      return Float64Array.from(x.data as ArrayLike<number>);
    default: {
      // a kind added to the registry without a reference here is a type error
      const unknown: never = l;
      throw new Error(`no reference for layer kind ${(unknown as { kind: string }).kind}`);
    }
  }
}
