/** Float64 references of Darknet's softmax (blas.c softmax) over strided rows, and its gradient. */
export interface RowsRef {
  rows: number;
  n: number;
  stride?: number;
  offset?: number;
  c0?: number;
  s0?: number;
  c1?: number;
  s1?: number;
  s2?: number;
  temperature?: number;
}

export function rowBase(r: RowsRef, row: number): number {
  const c0 = r.c0 ?? 1;
  const c1 = r.c1 ?? 1;
  return (r.offset ?? 0) + (row % c0) * (r.s0 ?? 0) + (Math.floor(row / c0) % c1) * (r.s1 ?? 0) + Math.floor(row / (c0 * c1)) * (r.s2 ?? 0);
}

/** Copies x, then softmax(x / T) on every row (values outside the rows unchanged). */
export function softmaxRowsRef(x: ArrayLike<number>, r: RowsRef): Float64Array {
  const y = Float64Array.from(x as ArrayLike<number>);
  const T = r.temperature ?? 1;
  const st = r.stride ?? 1;
  for (let row = 0; row < r.rows; row++) {
    const b = rowBase(r, row);
    let largest = -Infinity;
    for (let j = 0; j < r.n; j++) largest = Math.max(largest, x[b + j * st]);
    let sum = 0;
    for (let j = 0; j < r.n; j++) sum += Math.exp(x[b + j * st] / T - largest / T);
    for (let j = 0; j < r.n; j++) y[b + j * st] = Math.exp(x[b + j * st] / T - largest / T) / sum;
  }
  return y;
}

/** dx = J^T dy of softmaxRowsRef (identity outside the rows). */
export function softmaxRowsBackwardRef(x: ArrayLike<number>, dy: ArrayLike<number>, r: RowsRef): Float64Array {
  const y = softmaxRowsRef(x, r);
  const dx = Float64Array.from(dy as ArrayLike<number>);
  const T = r.temperature ?? 1;
  const st = r.stride ?? 1;
  for (let row = 0; row < r.rows; row++) {
    const b = rowBase(r, row);
    let dot = 0;
    for (let j = 0; j < r.n; j++) dot += dy[b + j * st] * y[b + j * st];
    for (let j = 0; j < r.n; j++) dx[b + j * st] = (y[b + j * st] * (dy[b + j * st] - dot)) / T;
  }
  return dx;
}
