/**
 * [rnn] (Darknet parse_rnn / make_rnn_layer / forward_rnn_layer): a recurrent layer made of three
 * [connected] parts with the layer's activation and batch_normalize:
 *   input   inputs -> hidden  on the step's input x_t (the previous layer's outputs, flattened)
 *   self    hidden -> hidden  on the previous state h_{t-1} (activation logistic with logistic=1)
 *   output  hidden -> output  on h_t = input(x_t) + self(h_{t-1})  (+ h_{t-1} with shortcut=1)
 * and the layer outputs output(h_t), output x 1 x 1. Time steps and the carried state: src/layers/recurrent.ts.
 *
 * Keys: output (1), hidden (1), activation (logistic), batch_normalize (0), logistic (0; 1: the self part
 * uses logistic; 2, loggy, is refused), shortcut (0).
 * .weights order: the three parts, each as a [connected] (biases, weights, [scales, rolling_mean,
 * rolling_variance]; weights transposed in legacy files). Darknet computes no BFLOPs for it.
 */
import { type BuildContext, readActivation } from '../darknet/layer.js';
import type { Activation } from '../tensor/ops/activation.js';
import { add } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import { RecurrentLayer, type PartRunner, type StepResult } from './recurrent.js';

export class RnnLayer extends RecurrentLayer {
  readonly kind = 'rnn';
  readonly hidden: number;
  readonly outputsN: number;
  readonly activation: Activation;
  /** The self part's activation (logistic with logistic=1, else the layer's). */
  readonly selfActivation: Activation;
  /** shortcut=1: h_t also adds h_{t-1} (Darknet l.shortcut). */
  readonly shortcut: boolean;
  protected readonly carryInTraining = false;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.outputsN = s.intMin('output', 1, 1);
    this.hidden = s.intMin('hidden', 1, 1);
    this.activation = readActivation(ctx, 'logistic');
    const log = s.intRange('logistic', 0, 2, 0);
    if (log === 2) throw s.error('logistic', "logistic=2 makes the self part use Darknet's loggy activation, which is not supported");
    this.selfActivation = log === 1 ? 'logistic' : this.activation;
    this.shortcut = s.flag('shortcut');
    const hid = { c: this.hidden, h: 1, w: 1 };
    this.connectedPart('input', this.hidden, ctx.input, this.activation);
    this.connectedPart('self', this.hidden, hid, this.selfActivation);
    this.connectedPart('output', this.outputsN, hid, this.activation);
    this.output = { c: this.outputsN, h: 1, w: 1 };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'rnn', filters: `${this.hidden}/${this.outputsN}`, size: '' };
  }

  protected stateShapes(): number[][] {
    return [[this.hidden, 1, 1]];
  }

  protected step(x: Tensor, [h]: Tensor[], run: PartRunner, tmp: <T extends Tensor>(t: T) => T): StepResult {
    const a = run('input', x);
    const b = run('self', h);
    // forward_rnn_layer: state = (shortcut ? old state : 0) + input_layer.output + self_layer.output
    const next = this.shortcut ? tmp(add(tmp(add(h, a)), b)) : tmp(add(a, b));
    return { out: run('output', next), state: [next] };
  }
}

export const build = (ctx: BuildContext): RnnLayer => new RnnLayer(ctx);
