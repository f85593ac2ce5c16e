/**
 * [gru] (Darknet parse_gru / make_gru_layer / forward_gru_layer): a gated recurrent layer made of six linear
 * [connected] parts (no activation; batch_normalize as the layer's), x_t the step's input, h the state:
 *   z  = logistic(input_z(x_t) + state_z(h))
 *   r  = logistic(input_r(x_t) + state_r(h))
 *   hh = logistic(input_h(x_t) + state_h(h * r))   (logistic: gru_layer.c is built without USET, so not tanh)
 *   h' = z * h + (1 - z) * hh                     (weighted_sum_cpu(state, h, z)), the output and next state
 * output x 1 x 1 values, and not an image (make_gru_layer sets no out_w/out_h/out_c). The state carries
 * over training forwards too (forward_gru_layer never resets it). Time steps and the state:
 * src/layers/recurrent.ts. Darknet's CPU backward_gru_layer is empty (only its GPU path trains); here the
 * tape differentiates the forward above.
 *
 * Keys: output (1), batch_normalize (0).
 * .weights order: input_z, input_r, input_h, state_z, state_r, state_h, each as a [connected] (biases,
 * weights, [scales, rolling_mean, rolling_variance]; weights transposed in legacy files). No BFLOPs in Darknet.
 */
import type { BuildContext } from '../darknet/layer.js';
import { activation } from '../tensor/ops/activation.js';
import { add, mul, sub } from '../tensor/ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import { RecurrentLayer, type PartRunner, type StepResult } from './recurrent.js';

export class GruLayer extends RecurrentLayer {
  readonly kind = 'gru';
  readonly outputsN: number;
  protected readonly carryInTraining = true;

  constructor(ctx: BuildContext) {
    super(ctx);
    const n = (this.outputsN = ctx.section.intMin('output', 1, 1));
    const state = { c: n, h: 1, w: 1 };
    for (const g of ['z', 'r', 'h']) this.connectedPart(`input_${g}`, n, ctx.input, 'linear');
    for (const g of ['z', 'r', 'h']) this.connectedPart(`state_${g}`, n, state, 'linear');
    this.output = { c: n, h: 1, w: 1 };
    this.outputIsImage = false;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'gru', filters: `${this.outputsN}`, size: '' };
  }

  protected stateShapes(): number[][] {
    return [[this.outputsN, 1, 1]];
  }

  protected step(x: Tensor, [h]: Tensor[], run: PartRunner, tmp: <T extends Tensor>(t: T) => T): StepResult {
    const gate = (g: string) => tmp(activation(tmp(add(run(`input_${g}`, x), run(`state_${g}`, h))), 'logistic'));
    const z = gate('z');
    const r = gate('r');
    const hh = tmp(activation(tmp(add(run('input_h', x), run('state_h', tmp(mul(h, r))))), 'logistic'));
    // z*h + (1-z)*hh as hh + z*(h - hh)
    const out = tmp(add(hh, tmp(mul(z, tmp(sub(h, hh))))));
    return { out, state: [out] };
  }
}

export const build = (ctx: BuildContext): GruLayer => new GruLayer(ctx);
