/** Float64 reference of Darknet's route layer (route_layer.c, AlexeyAB groups/group_id). */

export interface RouteInput {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/** Output [N, sum C_i/groups, H, W]: per batch item, each input's part (size/groups at group_id) in order. */
export function concatRef(inputs: RouteInput[], groups = 1, groupId = 0): Float64Array {
  const N = inputs[0].shape[0];
  const sizes = inputs.map((t) => t.data.length / N);
  const outputs = sizes.reduce((a, s) => a + s / groups, 0);
  const out = new Float64Array(outputs * N);
  let offset = 0;
  inputs.forEach((t, k) => {
    const part = sizes[k] / groups;
    for (let j = 0; j < N; j++)
      for (let q = 0; q < part; q++) out[offset + j * outputs + q] = t.data[j * sizes[k] + part * groupId + q];
    offset += part;
  });
  return out;
}

/** Gradients of concatRef: for each input, dy's slice copied back, zero outside the group. */
export function concatBackwardRef(dy: ArrayLike<number>, inputs: RouteInput[], groups = 1, groupId = 0): Float64Array[] {
  const N = inputs[0].shape[0];
  const sizes = inputs.map((t) => t.data.length / N);
  const outputs = sizes.reduce((a, s) => a + s / groups, 0);
  let offset = 0;
  return inputs.map((t, k) => {
    const part = sizes[k] / groups;
    const dx = new Float64Array(t.data.length);
    for (let j = 0; j < N; j++)
      for (let q = 0; q < part; q++) dx[j * sizes[k] + part * groupId + q] += dy[offset + j * outputs + q];
    offset += part;
    return dx;
  });
}
