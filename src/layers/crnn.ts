/**
 * [crnn] (Darknet parse_crnn / make_crnn_layer / forward_crnn_layer): a convolutional recurrent layer made of
 * three [convolutional] parts of the same size, stride, padding, groups, activation and batch_normalize:
 *   input   c -> hidden      on the step's input x_t
 *   self    hidden -> hidden on the previous state h_{t-1}
 *   output  hidden -> output on h_t = input(x_t) + self(h_{t-1})  (+ h_{t-1} with shortcut=1)
 * and the layer outputs output(h_t). Time steps and the carried state: src/layers/recurrent.ts.
 *
 * Keys: output (1), hidden (1), size (3), stride (1), pad (0: if non-zero, padding = size/2), padding (0),
 * groups (1), dilation (1), activation (logistic), batch_normalize (0), shortcut (0). Darknet asserts that the
 * state keeps the input's spatial size (input_layer->outputs == output_layer->inputs): a size / stride /
 * padding that changes it is a CfgError here. Refused when non-zero: xnor; dilation above 1.
 * .weights order: the three parts, each as a [convolutional] (biases, [scales, rolling_mean,
 * rolling_variance], weights). BFLOPs: the sum of the three convolutions'.
 */
import { type BuildContext, idiv, readActivation, refuseNonzero } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { add } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import { RecurrentLayer, type PartRunner, type StepResult } from './recurrent.js';
import type { Layer } from '../darknet/layer.js';

export class CrnnLayer extends RecurrentLayer {
  readonly kind = 'crnn';
  readonly hidden: number;
  readonly outputFilters: number;
  readonly size: number;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;
  readonly activation: Activation;
  /** shortcut=1: h_t also adds h_{t-1} (Darknet l.shortcut). */
  readonly shortcut: boolean;
  protected readonly carryInTraining = false;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    ctx.requireImage();
    refuseNonzero(ctx, { xnor: 'XNOR recurrent convolutions (xnor)' });
    this.size = s.intMin('size', 1, 3);
    this.stride = s.intMin('stride', 1, 1);
    if (s.intMin('dilation', 1, 1) !== 1) throw s.error('dilation', `dilated recurrent convolutions are not supported (dilation=${s.str('dilation')})`);
    let padding = s.intMin('padding', 0, 0);
    if (s.int('pad', 0)) padding = idiv(this.size, 2);
    this.padding = padding;
    this.outputFilters = s.intMin('output', 1, 1);
    this.hidden = s.intMin('hidden', 1, 1);
    this.groups = s.intMin('groups', 1, 1);
    this.activation = readActivation(ctx, 'logistic');
    this.shortcut = s.flag('shortcut');
    const { c, h, w } = ctx.input;
    for (const [what, v] of [['input channels', c], ['hidden', this.hidden], ['output', this.outputFilters]] as const) {
      if (v % this.groups !== 0) throw s.error('groups', `${what} ${v} is not divisible by groups=${this.groups}`);
    }
    const outH = idiv(h + 2 * padding - this.size, this.stride) + 1;
    const outW = idiv(w + 2 * padding - this.size, this.stride) + 1;
    if (outH !== h || outW !== w) {
      throw s.error('size', `size=${this.size} stride=${this.stride} padding ${padding} turn the ${w} x ${h} input into ${outW} x ${outH}: the hidden state must keep the input's size (Darknet asserts input_layer->outputs == output_layer->inputs)`);
    }
    const geom = { stride: this.stride, pad: padding, groups: this.groups };
    const k = this.size;
    this.convPart('input', this.hidden, [this.hidden, c / this.groups, k, k], geom, this.activation);
    this.convPart('self', this.hidden, [this.hidden, this.hidden / this.groups, k, k], geom, this.activation);
    this.convPart('output', this.outputFilters, [this.outputFilters, this.hidden / this.groups, k, k], geom, this.activation);
    this.output = { c: this.outputFilters, h, w };
  }

  override bflops(): number {
    // make_convolutional_layer: 2 * nweights * out_h * out_w / 1e9 each (float), summed in float
    const hw = this.output.h * this.output.w;
    let t = 0;
    for (const p of this.parts) t = Math.fround(t + Math.fround((2.0 * p.n * p.fanIn * hw) / 1e9));
    return t;
  }

  override describe(): { type: string; filters: string; size: string } {
    const f = this.groups > 1 ? `${this.hidden}/${this.outputFilters}/${this.groups}` : `${this.hidden}/${this.outputFilters}`;
    return { type: 'crnn', filters: f, size: `${this.size} x ${this.size}/${this.stride}` };
  }

  protected stateShapes(): number[][] {
    return [[this.hidden, this.input.h, this.input.w]];
  }

  protected step(x: Tensor, [h]: Tensor[], run: PartRunner, tmp: <T extends Tensor>(t: T) => T): StepResult {
    const a = run('input', x);
    const b = run('self', h);
    // forward_crnn_layer: state = (shortcut ? old state : 0) + input_layer.output + self_layer.output
    const next = this.shortcut ? tmp(add(tmp(add(h, a)), b)) : tmp(add(a, b));
    return { out: run('output', next), state: [next] };
  }

  override shareParamsOf(other: Layer): void {
    this.shareParts(other);
  }
}

export const build = (ctx: BuildContext): CrnnLayer => new CrnnLayer(ctx);
