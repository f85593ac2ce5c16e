/**
 * [Gaussian_yolo] (AlexeyAB parse_gaussian_yolo / make_gaussian_yolo_layer / forward_gaussian_yolo_layer,
 * Gaussian YOLOv3, Choi et al. ICCV 2019): a [yolo] head that also predicts the uncertainty (a sigma in
 * (0, 1)) of each box coordinate. Its input is the head convolution's output [B, n*(9+classes), H, W]
 * (n = anchors in `mask`); channel a*(9+classes)+k = anchor mask[a], entry k:
 *   0 x, 1 sigma_x, 2 y, 3 sigma_y, 4 w, 5 sigma_w, 6 h, 7 sigma_h, 8 objectness, 9.. classes.
 * The forward produces Darknet's l.output (kernels/gaussian_yolo.wgsl): logistic on every entry but w and h,
 * then x, y (not their sigmas) scaled by scale_x_y with bias -0.5*(scale_x_y-1). The box decodes as [yolo]
 * ((i + x)/W, (j + y)/H, e^w·anchor_w/net_w, e^h·anchor_h/net_h); a class score is
 * objectness · probability · (1 − mean of the four sigmas) (get_gaussian_yolo_detections), in src/yolo.
 * Refused: yolo_point other than center (left_top / right_bottom move the box and the targets), map=.
 * The loss keys are kept in `options`; the training loss is src/yolo/loss_gaussian.ts (Darknet's, on the head
 * input, as the [yolo] loss).
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { Tensor } from '../tensor/tensor.js';
import { Tape } from '../tensor/tape.js';
import { readHeadOptions, type HeadOptions } from './yolo.js';

/** Entries per anchor before the classes: x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h, objectness. */
export const GAUSSIAN_BOX_ENTRIES = 9;

export interface GaussianYoloOptions extends HeadOptions {
  /** Weight of the uncertainty (sigma) deltas (Darknet uc_normalizer, default 1). */
  ucNormalizer: number;
}

export class GaussianYoloLayer extends Layer {
  readonly kind = 'Gaussian_yolo';
  /** A detection head (Network.heads()). */
  override readonly head = true;
  readonly options: GaussianYoloOptions;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    const shared = readHeadOptions(ctx);
    // Darknet: anything but left_top / right_bottom is center
    const point = s.str('yolo_point', 'center');
    if (point === 'left_top' || point === 'right_bottom') {
      throw s.error('yolo_point', `'${point}' (the box point at a corner: get_gaussian_yolo_box and the targets shift by w/2, h/2) is not supported; only center`);
    }
    this.options = { ...shared, ucNormalizer: s.float('uc_normalizer', 1) };
    const { mask, classes } = shared;
    const want = mask.length * (classes + GAUSSIAN_BOX_ENTRIES);
    if (ctx.input.c !== want) {
      throw s.error(undefined, `expects ${mask.length} anchors x (9 + ${classes} classes) = ${want} input channels (x, y, w, h, their 4 uncertainties, objectness, classes), the previous layer outputs ${ctx.input.c} (set filters=${want} in the [convolutional] before it)`);
    }
  }

  /** Anchors of this head (mask order), (w, h) pairs. */
  get maskAnchors(): [number, number][] {
    return this.options.mask.map((m) => [this.options.anchors[2 * m], this.options.anchors[2 * m + 1]]);
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'Gaussian_yolo', filters: '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return gaussianHeadActivation(x, this.options.classes + GAUSSIAN_BOX_ENTRIES, this.options.scaleXY);
  }
}

const WG = 256;

/**
 * Darknet's [Gaussian_yolo] l.output from the head input (kernels/gaussian_yolo.wgsl), recorded on the tape
 * with its backward (the logistic derivative; scale_x_y on x, y; 1 on w, h).
 */
export function gaussianHeadActivation(x: Tensor, entries: number, scaleXY: number): Tensor {
  if (x.shape.length !== 4) throw new Error(`gaussianHeadActivation: expected NCHW, got ${x.describe()}`);
  const [, C, H, W] = x.shape;
  if (C % entries !== 0) throw new Error(`gaussianHeadActivation: ${C} channels are not a multiple of ${entries} entries per anchor`);
  const gpu = x.gpu;
  const p = { n: x.size, hw: H * W, E: entries, scale: scaleXY, bias: -0.5 * (scaleXY - 1) };
  const y = new Tensor(gpu, x.shape);
  gpu.dispatch({ file: 'gaussian_yolo', entry: 'fwd', constants: { WG } }, p, { 1: x, 2: y }, gpu.grid(x.size, WG));
  Tape.push({
    op: 'gaussianHeadActivation', inputs: [x], outputs: [y], saved: [x],
    backward: ([g]) => {
      const dx = new Tensor(gpu, x.shape);
      gpu.dispatch({ file: 'gaussian_yolo', entry: 'bwd', constants: { WG } }, p, { 1: x, 2: dx, 3: g! }, gpu.grid(x.size, WG));
      return [dx];
    },
  });
  return y;
}

export const build = (ctx: BuildContext): GaussianYoloLayer => new GaussianYoloLayer(ctx);
