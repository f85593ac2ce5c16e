/**
 * TF.js's wasm backend (4.22) has no Conv2DBackpropFilter kernel, so conv2d has no weight gradient there and
 * no training step runs. This registers one, composed of the wasm backend's own kernels (so it runs at that
 * backend's speed, XNNPACK convolution underneath):
 *
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} xpad[b, oh·s + kh, ow·s + kw, ci] · dy[b, oh, ow, co]
 *
 * is a convolution of xT = transpose(xpad, [3, 1, 2, 0]) ([ci, Hp, Wp, B]: channels as the batch) with the
 * filter dyT = transpose(dy, [1, 2, 0, 3]) ([OH, OW, B, co]), dilation s (the forward stride), 'valid';
 * its [ci, ≥k, ≥k, co] output, sliced to k x k and transposed to [k, k, ci, co], is the filter gradient.
 * NHWC only, dilation 1 (TF.js's conv2d gradient refuses dilations > 1 anyway).
 */
type TF = typeof import('@tensorflow/tfjs-core');
type TensorInfo = import('@tensorflow/tfjs-core').TensorInfo;

interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: { disposeData(id: unknown): unknown };
  attrs: Record<string, unknown>;
}

/** Registers Conv2DBackpropFilter for the 'wasm' backend unless it already has one. Returns whether it registered. */
export function registerWasmConv2DBackpropFilter(tf: TF): boolean {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return false;
  const k = (name: string) => {
    const kernel = tf.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`the wasm backend has no ${name} kernel`);
    return kernel.kernelFunc as unknown as (a: KernelArgs) => TensorInfo;
  };
  const transpose = k('Transpose');
  const padV2 = k('PadV2');
  const conv2d = k('Conv2D');
  const slice = k('Slice');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ((args: KernelArgs) => {
      const { inputs, backend, attrs } = args;
      const x = inputs.x;
      const dy = inputs.dy;
      const filterShape = attrs.filterShape as [number, number, number, number];
      const strides = attrs.strides as number | [number, number];
      const dataFormat = (attrs.dataFormat as string | undefined) ?? 'NHWC';
      if (dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm, bench/peers/wasm-kernels.ts): NHWC only');
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number], filterShape, strides, 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined,
      );
      const [kh, kw] = [filterShape[0], filterShape[1]];
      const temps: TensorInfo[] = [];
      const run = (f: (a: KernelArgs) => TensorInfo, inp: Record<string, TensorInfo>, at: Record<string, unknown>) => {
        const t = f({ inputs: inp, backend, attrs: at });
        temps.push(t);
        return t;
      };
      try {
        const p = info.padInfo;
        // enough rows/columns for the last window, at least the forward's padding
        const needH = (info.outHeight - 1) * info.strideHeight + kh;
        const needW = (info.outWidth - 1) * info.strideWidth + kw;
        const bottom = Math.max(0, needH - x.shape[1] - p.top);
        const right = Math.max(0, needW - x.shape[2] - p.left);
        const xp = p.top || bottom || p.left || right ? run(padV2, { x }, { paddings: [[0, 0], [p.top, bottom], [p.left, right], [0, 0]], constantValue: 0 }) : x;
        const xT = run(transpose, { x: xp }, { perm: [3, 1, 2, 0] });
        const dyT = run(transpose, { x: dy }, { perm: [1, 2, 0, 3] });
        const g = run(conv2d, { x: xT, filter: dyT }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth], dimRoundingMode: undefined });
        const gs = g.shape[1] === kh && g.shape[2] === kw ? g : run(slice, { x: g }, { begin: [0, 0, 0, 0], size: [g.shape[0], kh, kw, g.shape[3]] });
        const out = transpose({ inputs: { x: gs }, backend, attrs: { perm: [1, 2, 0, 3] } });
        return out;
      } finally {
        for (const t of temps) backend.disposeData(t.dataId);
      }
    }) as never,
  });
  return true;
}
