/**
 * [lstm] (Darknet parse_lstm / make_lstm_layer / forward_lstm_layer): a long short-term memory layer made of
 * eight linear [connected] parts (no activation; batch_normalize as the layer's), x_t the step's input, h
 * and c the state:
 *   f = logistic(wf(h) + uf(x_t))   i = logistic(wi(h) + ui(x_t))
 *   g = tanh(wg(h) + ug(x_t))       o = logistic(wo(h) + uo(x_t))
 *   c' = f * c + i * g              h' = o * tanh(c')   (h' the output, output x 1 x 1)
 * h and c carry over training forwards too (forward_lstm_layer never resets them). Time steps and the state:
 * src/layers/recurrent.ts. Backward is the tape's exact gradient of this forward (Darknet's
 * backward_lstm_layer carries dc_cpu over from the previous call and takes the first step's previous state
 * from step 1, so its deltas differ from the true gradient).
 *
 * Keys: output (1), batch_normalize (0).
 * .weights order: wf, wi, wg, wo, uf, ui, ug, uo, each as a [connected] (biases, weights, [scales,
 * rolling_mean, rolling_variance]; weights transposed in legacy files). No BFLOPs in Darknet.
 */
import type { BuildContext } from '../darknet/layer.js';
import { activation, type Activation } from '../tensor/ops/activation.js';
import { add, mul } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import { RecurrentLayer, type PartRunner, type StepResult } from './recurrent.js';

const GATES: [string, Activation][] = [['f', 'logistic'], ['i', 'logistic'], ['g', 'tanh'], ['o', 'logistic']];

export class LstmLayer extends RecurrentLayer {
  readonly kind = 'lstm';
  readonly outputsN: number;
  protected readonly carryInTraining = true;

  constructor(ctx: BuildContext) {
    super(ctx);
    const n = (this.outputsN = ctx.section.intMin('output', 1, 1));
    for (const [g] of GATES) this.connectedPart(`w${g}`, n, { c: n, h: 1, w: 1 }, 'linear');
    for (const [g] of GATES) this.connectedPart(`u${g}`, n, ctx.input, 'linear');
    this.output = { c: n, h: 1, w: 1 };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'lstm', filters: `${this.outputsN}`, size: '' };
  }

  /** h, then c. */
  protected stateShapes(): number[][] {
    return [[this.outputsN, 1, 1], [this.outputsN, 1, 1]];
  }

  protected step(x: Tensor, [h, c]: Tensor[], run: PartRunner, tmp: <T extends Tensor>(t: T) => T): StepResult {
    const [f, i, g, o] = GATES.map(([k, a]) => tmp(activation(tmp(add(run(`w${k}`, h), run(`u${k}`, x))), a)));
    const c2 = tmp(add(tmp(mul(f, c)), tmp(mul(i, g))));
    const h2 = tmp(mul(o, tmp(activation(c2, 'tanh'))));
    return { out: h2, state: [h2, c2] };
  }
}

export const build = (ctx: BuildContext): LstmLayer => new LstmLayer(ctx);
