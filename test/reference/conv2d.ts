/**
 * Float64 CPU reference of 2-D convolution (NCHW input, OIHW weights [Cout, Cin/groups, kH, kW]) with
 * stride, symmetric zero padding, dilation, groups and optional bias, and its exact gradients.
 * Straight loops, no cleverness: this is what the WGSL kernels are checked against.
 */

export interface RefConvParams {
  stride?: number | [number, number];
  pad?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

export interface RefGeom {
  B: number; Cin: number; H: number; W: number;
  Cout: number; Cg: number; Mg: number; G: number;
  kH: number; kW: number; sy: number; sx: number; py: number; px: number; dy: number; dx: number;
  OH: number; OW: number;
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

export function refGeom(xShape: readonly number[], wShape: readonly number[], p: RefConvParams = {}): RefGeom {
  const [B, Cin, H, W] = xShape;
  const [Cout, Cg, kH, kW] = wShape;
  const G = p.groups ?? 1;
  const [sy, sx] = pair(p.stride, 1);
  const [py, px] = pair(p.pad, 0);
  const [dy, dx] = pair(p.dilation, 1);
  if (Cg * G !== Cin || Cout % G !== 0) throw new Error('refGeom: bad channels/groups');
  const OH = Math.floor((H + 2 * py - dy * (kH - 1) - 1) / sy) + 1;
  const OW = Math.floor((W + 2 * px - dx * (kW - 1) - 1) / sx) + 1;
  return { B, Cin, H, W, Cout, Cg, Mg: Cout / G, G, kH, kW, sy, sx, py, px, dy, dx, OH, OW };
}

/**
 * Visits every (output, weight, input) triple that contributes: f(yIndex, wIndex, xIndex).
 * Shared by forward and both gradients so they describe the same function.
 */
function visit(g: RefGeom, f: (yi: number, wi: number, xi: number) => void): void {
  for (let b = 0; b < g.B; b++)
    for (let co = 0; co < g.Cout; co++) {
      const grp = Math.floor(co / g.Mg);
      for (let oy = 0; oy < g.OH; oy++)
        for (let ox = 0; ox < g.OW; ox++) {
          const yi = ((b * g.Cout + co) * g.OH + oy) * g.OW + ox;
          for (let c = 0; c < g.Cg; c++) {
            const ci = grp * g.Cg + c;
            for (let ky = 0; ky < g.kH; ky++) {
              const iy = oy * g.sy - g.py + ky * g.dy;
              if (iy < 0 || iy >= g.H) continue;
              for (let kx = 0; kx < g.kW; kx++) {
                const ix = ox * g.sx - g.px + kx * g.dx;
                if (ix < 0 || ix >= g.W) continue;
                f(yi, ((co * g.Cg + c) * g.kH + ky) * g.kW + kx, ((b * g.Cin + ci) * g.H + iy) * g.W + ix);
              }
            }
          }
        }
    }
}

export function conv2dRef(x: ArrayLike<number>, xShape: readonly number[], w: ArrayLike<number>, wShape: readonly number[], b: ArrayLike<number> | null, p: RefConvParams = {}): { y: Float64Array; shape: number[] } {
  const g = refGeom(xShape, wShape, p);
  const y = new Float64Array(g.B * g.Cout * g.OH * g.OW);
  visit(g, (yi, wi, xi) => { y[yi] += w[wi] * x[xi]; });
  if (b) {
    const ohw = g.OH * g.OW;
    for (let i = 0; i < y.length; i++) y[i] += b[Math.floor(i / ohw) % g.Cout];
  }
  return { y, shape: [g.B, g.Cout, g.OH, g.OW] };
}

/** Gradients of loss = sum(y * dy) with respect to x, w and b. */
export function conv2dGradRef(x: ArrayLike<number>, xShape: readonly number[], w: ArrayLike<number>, wShape: readonly number[], dyv: ArrayLike<number>, p: RefConvParams = {}): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const g = refGeom(xShape, wShape, p);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(g.Cout);
  visit(g, (yi, wi, xi) => {
    dx[xi] += w[wi] * dyv[yi];
    dw[wi] += x[xi] * dyv[yi];
  });
  const ohw = g.OH * g.OW;
  for (let i = 0; i < dyv.length; i++) db[Math.floor(i / ohw) % g.Cout] += dyv[i];
  return { dx, dw, db };
}
