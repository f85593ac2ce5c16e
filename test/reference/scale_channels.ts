/** Float64 reference of Darknet's forward_scale_channels_layer (scale_channels_layer.c). */
export function scaleChannelsRef(s: ArrayLike<number>, f: ArrayLike<number>, fShape: readonly number[], scaleWh: boolean): Float64Array {
  const [, C, H, W] = fShape;
  const channelSize = H * W;
  const batchSize = C * H * W;
  const out = new Float64Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const inputIndex = scaleWh ? (i % channelSize) + Math.floor(i / batchSize) * channelSize : Math.floor(i / channelSize);
    out[i] = s[inputIndex] * f[i];
  }
  return out;
}
