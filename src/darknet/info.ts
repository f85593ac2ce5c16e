/**
 * Darknet-style network summary: one row per layer (index, type, filters, size/stride, input -> output,
 * BFLOPs) and Darknet's "Total BFLOPS" (the float32 sum of the positive per-layer BFLOPs, printed %5.3f).
 */
import type { Network } from './network.js';
import { shapeText } from './layer.js';

export interface InfoRow {
  index: number;
  type: string;
  filters: string;
  size: string;
  input: string;
  output: string;
  /** Darknet's per-layer BFLOPs (0 where Darknet computes none). */
  bflops: number;
  params: number;
}

export interface NetworkInfo {
  file: string;
  width: number;
  height: number;
  channels: number;
  batch: number;
  rows: InfoRow[];
  totalBflops: number;
  params: number;
  warnings: string[];
}

export function networkInfo(net: Network): NetworkInfo {
  const rows = net.layers.map((l): InfoRow => {
    const d = l.describe();
    return { index: l.index, type: d.type, filters: d.filters, size: d.size, input: l.kind === 'route' ? '' : shapeText(l.input), output: shapeText(l.output), bflops: l.bflops(), params: l.paramCount };
  });
  return {
    file: net.file, width: net.input.w, height: net.input.h, channels: net.input.c, batch: net.batch,
    rows, totalBflops: net.totalBflops, params: net.paramCount,
    warnings: net.warnings.map((w) => `${w.file}:${w.line}: ${w.message}`),
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** Darknet's "%5.3f" of a float value. */
export function bflopsText(v: number): string {
  return lpad(v.toFixed(3), 5);
}

/** The table as text: the parameter count, then a last line "Total BFLOPs X" (X as Darknet prints it, %5.3f). */
export function formatInfo(info: NetworkInfo): string {
  const out: string[] = [];
  out.push(`${info.file}: input ${info.width} x ${info.height} x ${info.channels}, batch ${info.batch}`);
  out.push(`${lpad('layer', 5)}  ${pad('type', 10)} ${lpad('filters', 9)}  ${pad('size/strd(dil)', 15)} ${lpad('input', 16)}    ${lpad('output', 16)}  ${lpad('BFLOPs', 7)}`);
  for (const r of info.rows) {
    const bf = r.bflops > 0 ? `${bflopsText(r.bflops)} BF` : '';
    out.push(`${lpad(String(r.index), 5)}  ${pad(r.type, 10)} ${lpad(r.filters, 9)}  ${pad(r.size, 15)} ${lpad(r.input, 16)} -> ${lpad(r.output, 16)}  ${bf}`);
  }
  out.push(`Parameters ${info.params.toLocaleString('en-US')}`);
  out.push(`Total BFLOPs ${bflopsText(info.totalBflops)}`);
  for (const w of info.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}
