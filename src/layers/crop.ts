/**
 * [crop] (Darknet parse_crop / forward_crop_layer): at inference the centred crop_width x crop_height window
 * of the input, mapped to [-1, 1] by x*2 - 1 unless noadjust=1. Training-time augmentation keys (flip,
 * angle, saturation, exposure, shift: a random crop/flip in Darknet) are kept in `options` for the data
 * pipeline; this layer always takes the centred window, in 'train' mode too (Darknet's train-time forward
 * takes a random window and flip). So its backward is the transpose of that fixed window: dx = scale * dy
 * inside it, 0 outside (src/tensor/ops/crop.ts). Darknet's backward_crop_layer is empty (no gradient
 * below a crop); the two agree where [crop] reads the network input, as in YOLOv1.
 */
import { Layer, type BuildContext, type ForwardContext } from '../darknet/layer.js';
import { centerCrop } from '../tensor/ops/crop.js';
import type { Tensor } from '../tensor/tensor.js';

export class CropLayer extends Layer {
  readonly kind = 'crop';
  readonly cropHeight: number;
  readonly cropWidth: number;
  readonly noadjust: boolean;
  readonly options: { flip: boolean; angle: number; saturation: number; exposure: number; shift: number };

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    ctx.requireImage();
    this.cropHeight = s.intMin('crop_height', 1, 1);
    this.cropWidth = s.intMin('crop_width', 1, 1);
    this.noadjust = s.flag('noadjust');
    this.options = { flip: s.flag('flip'), angle: s.float('angle', 0), saturation: s.float('saturation', 1), exposure: s.float('exposure', 1), shift: s.float('shift', 0) };
    const { c, h, w } = ctx.input;
    if (this.cropHeight > h || this.cropWidth > w) throw s.error(this.cropHeight > h ? 'crop_height' : 'crop_width', `a ${this.cropWidth} x ${this.cropHeight} crop does not fit the ${w} x ${h} input`);
    this.output = { c, h: this.cropHeight, w: this.cropWidth };
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: 'crop', filters: '', size: '' };
  }

  forward([x]: Tensor[], _ctx: ForwardContext): Tensor {
    return centerCrop(x, this.cropHeight, this.cropWidth, this.noadjust ? 1 : 2, this.noadjust ? 0 : -1);
  }
}

export const build = (ctx: BuildContext): CropLayer => new CropLayer(ctx);
