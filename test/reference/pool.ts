/** Float64 references of Darknet's maxpool and local_avgpool (maxpool_layer.c) and global avgpool (avgpool_layer.c). */

export interface MaxpoolRefOptions {
  size: number;
  strideX: number;
  strideY: number;
  /** total padding (Darknet default size-1); window offset -padding/2 */
  padding: number;
}

const FLT_MAX = 3.4028234663852886e38;

/** forward_maxpool_layer: returns output, argmax indexes (global input index, -1 if none) and out shape. */
export function maxpoolRef(x: ArrayLike<number>, shape: readonly number[], o: MaxpoolRefOptions): { y: Float64Array; indexes: Int32Array; shape: number[] } {
  const [batch, c, h, w] = shape;
  const outH = Math.floor((h + o.padding - o.size) / o.strideY) + 1;
  const outW = Math.floor((w + o.padding - o.size) / o.strideX) + 1;
  const wOffset = -Math.floor(o.padding / 2);
  const hOffset = -Math.floor(o.padding / 2);
  const y = new Float64Array(batch * c * outH * outW);
  const indexes = new Int32Array(y.length);
  for (let b = 0; b < batch; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < outH; i++)
        for (let j = 0; j < outW; j++) {
          const outIndex = j + outW * (i + outH * (k + c * b));
          let max = -FLT_MAX;
          let maxI = -1;
          for (let n = 0; n < o.size; n++)
            for (let m = 0; m < o.size; m++) {
              const curH = hOffset + i * o.strideY + n;
              const curW = wOffset + j * o.strideX + m;
              const index = curW + w * (curH + h * (k + b * c));
              const valid = curH >= 0 && curH < h && curW >= 0 && curW < w;
              const val = valid ? x[index] : -FLT_MAX;
              maxI = val > max ? index : maxI;
              max = val > max ? val : max;
            }
          y[outIndex] = max;
          indexes[outIndex] = maxI;
        }
  return { y, indexes, shape: [batch, c, outH, outW] };
}

/** backward_maxpool_layer: dx[indexes[i]] += dy[i]. */
export function maxpoolBackwardRef(dy: ArrayLike<number>, indexes: Int32Array, inputSize: number): Float64Array {
  const dx = new Float64Array(inputSize);
  for (let i = 0; i < indexes.length; i++) if (indexes[i] >= 0) dx[indexes[i]] += dy[i];
  return dx;
}

/** forward_avgpool_layer: [N, C, H, W] -> [N, C] means. */
export function avgpoolRef(x: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const y = new Float64Array(N * C);
  for (let p = 0; p < N * C; p++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[p * hw + i];
    y[p] = s / hw;
  }
  return y;
}

export function avgpoolBackwardRef(dy: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [N, C, H, W] = shape;
  const hw = H * W;
  const dx = new Float64Array(N * C * hw);
  for (let i = 0; i < dx.length; i++) dx[i] = dy[Math.floor(i / hw)] / hw;
  return dx;
}

/**
 * forward_local_avgpool_layer: the maxpool window, each output the mean of its valid taps (Darknet's
 * `avg / counter`; a window with no valid tap is 0 here, 0/0 in Darknet). Also the exact backward of that
 * forward (dx gets dy / counter from every window covering it) for a given dy.
 */
export function localAvgpoolRef(x: ArrayLike<number>, shape: readonly number[], o: MaxpoolRefOptions, dy?: ArrayLike<number>): { y: Float64Array; dx: Float64Array; shape: number[] } {
  const [batch, c, h, w] = shape;
  const outH = Math.floor((h + o.padding - o.size) / o.strideY) + 1;
  const outW = Math.floor((w + o.padding - o.size) / o.strideX) + 1;
  const off = -Math.floor(o.padding / 2);
  const y = new Float64Array(batch * c * outH * outW);
  const dx = new Float64Array(batch * c * h * w);
  for (let b = 0; b < batch; b++)
    for (let k = 0; k < c; k++)
      for (let i = 0; i < outH; i++)
        for (let j = 0; j < outW; j++) {
          const outIndex = j + outW * (i + outH * (k + c * b));
          const taps: number[] = [];
          for (let n = 0; n < o.size; n++)
            for (let m = 0; m < o.size; m++) {
              const curH = off + i * o.strideY + n;
              const curW = off + j * o.strideX + m;
              if (curH >= 0 && curH < h && curW >= 0 && curW < w) taps.push(curW + w * (curH + h * (k + b * c)));
            }
          y[outIndex] = taps.length ? taps.reduce((a, t) => a + x[t], 0) / taps.length : 0;
          if (dy) for (const t of taps) dx[t] += dy[outIndex] / taps.length;
        }
  return { y, dx, shape: [batch, c, outH, outW] };
}
