/**
 * [dropout] (Darknet parse_dropout / forward_dropout_layer): identity at inference (Darknet's output
 * pointer is the previous layer's); in training each value is dropped with `probability` (.2) and the kept
 * ones scaled by 1/(1-p) (src/tensor/ops/dropout.ts; the mask is a function of the forward's seed and the
 * layer index).
 *
 * DropBlock (dropblock=1; AlexeyAB parse_dropout and forward_dropout_layer_gpu — its CPU forward drops single
 * values instead): at most one square per image and channel is zeroed and the image rescaled (dropBlock in
 * src/tensor/ops/dropout.ts). The square's side is dropblock_size_abs (pixels) or dropblock_size_rel (a
 * fraction of the map's width / height; abs wins when both are set, 7 when neither is), and both it and the
 * probability grow with training: multiplier = iteration / (0.85 · max_batches) until 85% of the run, then 1
 * (Darknet's get_current_iteration and max_batches, ForwardContext.progress; without one, full strength).
 */
import { Layer, type BuildContext, type ForwardContext, type TrainPosition } from '../darknet/layer.js';
import type { DType, Tensor } from '../tensor/tensor.js';
import { dropBlock, dropout } from '../tensor/ops/dropout.js';

export interface DropBlockConfig {
  enabled: boolean;
  /** dropblock_size_rel (0: unset) */
  sizeRel: number;
  /** dropblock_size_abs, truncated to an integer as Darknet reads it (0: unset) */
  sizeAbs: number;
}

export class DropoutLayer extends Layer {
  readonly kind = 'dropout';
  readonly probability: number;
  readonly dropblock: DropBlockConfig;

  constructor(ctx: BuildContext) {
    super(ctx);
    const s = ctx.section;
    this.probability = s.float('probability', 0.2);
    if (this.probability < 0 || this.probability >= 1) throw s.error('probability', `must be in [0, 1), got ${this.probability}`);
    const enabled = s.flag('dropblock');
    let sizeRel = s.float('dropblock_size_rel', 0);
    let sizeAbs = Math.trunc(s.float('dropblock_size_abs', 0));
    if (sizeRel < 0) throw s.error('dropblock_size_rel', `must be >= 0 (a fraction of the map's width and height), got ${sizeRel}`);
    if (sizeAbs < 0) throw s.error('dropblock_size_abs', `must be >= 0 (the block side in pixels), got ${sizeAbs}`);
    const { w, h, c } = ctx.input;
    if (sizeAbs > w || sizeAbs > h) {
      ctx.warn('dropblock_size_abs', `${sizeAbs} is bigger than the ${w} x ${h} map; Darknet uses ${Math.min(w, h)}`, 'dropblock-size');
      sizeAbs = Math.min(w, h);
    }
    if (enabled) {
      if (!ctx.inputIsImage || w <= 0 || h <= 0 || c <= 0) throw s.error('dropblock', `DropBlock needs an image input (w, h, c > 0); the previous layer outputs ${w} x ${h} x ${c}`);
      if (!sizeRel && !sizeAbs) sizeAbs = 7; // Darknet: "None of the parameters ... are set, will be used: dropblock_size_abs = 7"
      if (sizeRel && sizeAbs) sizeRel = 0; // Darknet: "Both parameters are set, only the parameter will be used: dropblock_size_abs"
    }
    this.dropblock = { enabled, sizeRel, sizeAbs };
    this.outputIsImage = ctx.inputIsImage;
  }

  override describe(): { type: string; filters: string; size: string } {
    return { type: this.dropblock.enabled ? 'dropblock' : 'dropout', filters: `p=${this.probability}`, size: '' };
  }

  /**
   * DropBlock's probability and block side at a training position (AlexeyAB forward_dropout_layer_gpu, in its
   * float32 arithmetic): multiplier = iteration / (max_batches · 0.85) while iteration < max_batches · 0.85,
   * else 1; p · multiplier; side = (int)(abs · multiplier) or (int)(rel · w · multiplier) by (int)(rel · h ·
   * multiplier), each in [1, map side], the smaller of the two.
   */
  dropBlockSchedule(progress?: TrainPosition): { p: number; blockSize: number; multiplier: number } {
    const f = Math.fround;
    let m = 1;
    if (progress && progress.maxBatches > 0 && progress.iteration < progress.maxBatches * 0.85) m = f(progress.iteration / f(progress.maxBatches * 0.85));
    const { sizeRel, sizeAbs } = this.dropblock;
    const { w, h } = this.input;
    let bw = Math.trunc(f(sizeAbs * m));
    let bh = bw;
    if (sizeRel) {
      bw = Math.trunc(f(f(sizeRel * w) * m));
      bh = Math.trunc(f(f(sizeRel * h) * m));
    }
    bw = Math.min(w, Math.max(1, bw));
    bh = Math.min(h, Math.max(1, bh));
    return { p: f(this.probability * m), blockSize: Math.min(bw, bh), multiplier: m };
  }

  /** The identity at inference: an f16 input passes through as it is. */
  override inferStorage(precision: DType): DType {
    return precision;
  }

  forward([x]: Tensor[], ctx: ForwardContext): Tensor {
    if (ctx.mode !== 'train' || this.probability === 0) return x;
    const seed = (Math.imul((ctx.seed ?? 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(this.index + 1, 0x27d4eb2d)) | 0;
    if (this.dropblock.enabled) {
      const { p, blockSize } = this.dropBlockSchedule(ctx.progress);
      return dropBlock(x, { p, blockSize, seed });
    }
    return dropout(x, this.probability, seed);
  }
}

export const build = (ctx: BuildContext): DropoutLayer => new DropoutLayer(ctx);
