/** Float64 reference of Darknet's forward_crop_layer with train = 0 (centred crop, input*scale + trans). */
export function cropRef(x: ArrayLike<number>, shape: readonly number[], outH: number, outW: number, noadjust: boolean): Float64Array {
  const [B, C, H, W] = shape;
  const dh = Math.trunc((H - outH) / 2);
  const dw = Math.trunc((W - outW) / 2);
  const scale = noadjust ? 1 : 2;
  const trans = noadjust ? 0 : -1;
  const out = new Float64Array(B * C * outH * outW);
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) {
          const index = j + dw + W * (i + dh + H * (c + C * b));
          out[count++] = x[index] * scale + trans;
        }
      }
    }
  }
  return out;
}

/** Float64 gradient of cropRef for an upstream gradient dy [B, C, outH, outW]: scale * dy in the window, 0 elsewhere. */
export function cropBackwardRef(dy: ArrayLike<number>, shape: readonly number[], outH: number, outW: number, noadjust: boolean): Float64Array {
  const [B, C, H, W] = shape;
  const dh = Math.trunc((H - outH) / 2);
  const dw = Math.trunc((W - outW) / 2);
  const scale = noadjust ? 1 : 2;
  const dx = new Float64Array(B * C * H * W);
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < outH; i++) {
        for (let j = 0; j < outW; j++) dx[j + dw + W * (i + dh + H * (c + C * b))] += dy[count++] * scale;
      }
    }
  }
  return dx;
}
