/** Shared pieces of the trainer tests: tiny cfgs, a deterministic synthetic loader, a simple loss. */
import { parseCfg } from '../../src/darknet/cfg.js';
import { Network } from '../../src/darknet/network.js';
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor, Tape, add, mean, mse, sum } from '../../src/tensor/index.js';
import type { Batch, BatchSource, LossContext, LossResult, TrainLoss } from '../../src/train/types.js';
import type { Truth } from '../../src/yolo/targets.js';
import { Rng, randomArray } from '../../src/util/rng.js';

/** conv(BN)-maxpool-conv-[yolo] at 32x32, 1 class, 2 anchors: head [B, 12, 16, 16]. */
export function tinyCfg(opts: { bn?: boolean; batch?: number; subdivisions?: number; extra?: string } = {}): string {
  return `[net]
batch=${opts.batch ?? 4}
subdivisions=${opts.subdivisions ?? 1}
width=32
height=32
channels=3
momentum=0.9
decay=0.0005
learning_rate=0.02
burn_in=3
power=2
max_batches=100
policy=steps
steps=5,9
scales=.5,.5
${opts.extra ?? ''}

[convolutional]
${opts.bn === false ? '' : 'batch_normalize=1'}
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=12
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1
anchors=8,8, 16,16
classes=1
num=2
`;
}

export function tinyNetwork(opts: Parameters<typeof tinyCfg>[0] = {}, init = true): Network {
  const net = Network.build(parseCfg(tinyCfg(opts), 'tiny.cfg'));
  if (init) net.initWeights(1);
  return net;
}

/** The image of (epoch-independent) sample i: a pure function of i. */
export function sampleImage(i: number): Float32Array {
  return randomArray(new Rng(1000 + i), 3 * 32 * 32, 0, 1);
}

/**
 * `images` samples per epoch in a seeded per-epoch order, `batch` per mini-batch. One iteration of it is
 * one epoch (`endless`: one iteration runs through all epochs, as src/data/loader.ts does); state() is
 * {epoch, index} after the last batch handed out.
 */
export class SyntheticLoader implements BatchSource<Truth> {
  epoch = 0;
  index = 0;
  constructor(readonly images: number, readonly batch: number, readonly seed = 5, readonly endless = false) {
    if (images % batch) throw new Error('images must be a multiple of batch');
  }
  get batchesPerEpoch(): number {
    return this.images / this.batch;
  }
  order(epoch: number): number[] {
    const o = [...Array(this.images).keys()];
    const r = new Rng(this.seed * 7919 + epoch);
    for (let i = o.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [o[i], o[j]] = [o[j], o[i]];
    }
    return o;
  }
  state(): unknown {
    return { epoch: this.epoch, index: this.index };
  }
  restore(s: unknown): void {
    const x = s as { epoch: number; index: number };
    this.epoch = x.epoch;
    this.index = x.index;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Batch<Truth>> {
    do {
      if (this.index >= this.batchesPerEpoch) {
        this.epoch++;
        this.index = 0;
        if (!this.endless) return;
      }
      const order = this.order(this.epoch);
      while (this.index < this.batchesPerEpoch) {
        const ids = order.slice(this.index * this.batch, (this.index + 1) * this.batch);
        const images = new Float32Array(ids.length * 3 * 32 * 32);
        ids.forEach((id, k) => images.set(sampleImage(id), k * 3 * 32 * 32));
        this.index++;
        yield { images, shape: [ids.length, 3, 32, 32], truths: ids.map((id) => [{ cls: 0, x: ((id % 4) + 0.5) / 4, y: 0.5, w: 0.25, h: 0.25 }]) };
      }
    } while (this.endless || this.index < this.batchesPerEpoch);
    this.epoch++;
    this.index = 0;
  }
}

/**
 * MSE of the head outputs against a fixed target per image (a function of the truth's x): the mean over
 * an image's outputs, summed over images (Darknet's 'sum' convention). Items: `mse` (the loss) and `mean` (mean head output).
 */
export class MseLoss implements TrainLoss<Truth> {
  readonly reduction = 'sum' as const;
  private targets = new Map<string, Tensor>();
  /** iterations at which the target is NaN (to test the non-finite stop) */
  nanAt = new Set<number>();
  constructor(readonly gpu: Gpu) {}

  private target(shape: readonly number[], truths: readonly (readonly Truth[])[], nan: boolean): Tensor {
    const key = `${shape.join('x')}|${truths.map((t) => t[0]?.x ?? -1).join(',')}|${nan}`;
    let t = this.targets.get(key);
    if (!t) {
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const data = new Float32Array(shape[0] * per);
      truths.forEach((tr, i) => {
        const r = new Rng(Math.round((tr[0]?.x ?? 0) * 1000) + 17);
        for (let j = 0; j < per; j++) data[i * per + j] = nan && i === 0 && j === 0 ? NaN : r.uniform(0.2, 0.8);
      });
      t = Tape.untracked(() => Tensor.from(this.gpu, shape, data, 'target'));
      this.targets.set(key, t);
    }
    return t;
  }

  compute(heads: Tensor[], truths: readonly (readonly Truth[])[], ctx: LossContext): LossResult {
    let loss: Tensor | null = null;
    let m: Tensor | null = null;
    for (const h of heads) {
      const per = h.size / h.shape[0];
      const l = sum(mse(h, this.target(h.shape, truths, this.nanAt.has(ctx.iteration))), { scale: 1 / per });
      loss = loss ? add(loss, l) : l;
      m = mean(h);
    }
    return { loss: loss!, items: { mse: loss!, mean: m! } };
  }

  dispose(): void {
    for (const t of this.targets.values()) t.dispose();
    this.targets.clear();
  }
}
