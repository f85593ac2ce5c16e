/**
 * `yolo-wgsl export --cfg C --weights W --format onnx --out model.onnx [--opset N] [--dynamic-batch]
 * [--img W [H]] [--decode]`: the network as an ONNX model (src/api/export.ts, src/export/onnx; docs/export.md).
 * `--format tfjs --out DIR`: a TF.js GraphModel folder (src/export/tfjs); --opset and --dynamic-batch are
 * ONNX's (a TF.js model's batch is always free).
 * Prints one line: the file, the opset, its size, the input and the outputs.
 */
import { exportOnnx, exportTfjs, type ExportOnnxResult, type ExportTfjsResult } from '../api/export.js';
import { MAX_OPSET, MIN_OPSET } from '../export/onnx/index.js';
import { checkNumber, RULES, SettingError } from '../util/validate.js';

export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;

export interface ExportCliOptions {
  cfg: string;
  weights: string;
  format: (typeof EXPORT_FORMATS)[number];
  out: string;
  opset?: number;
  dynamicBatch?: boolean;
  /** --img W [H]: one value for a square input. */
  img?: number[];
  decode?: boolean;
  log?: (line: string) => void;
}

const dims = (d: readonly (number | string)[]) => `[${d.join(', ')}]`;

export async function runExport(o: ExportCliOptions & { format: 'onnx' }): Promise<ExportOnnxResult>;
export async function runExport(o: ExportCliOptions & { format: 'tfjs' }): Promise<ExportTfjsResult>;
export async function runExport(o: ExportCliOptions): Promise<ExportOnnxResult | ExportTfjsResult>;
export async function runExport(o: ExportCliOptions): Promise<ExportOnnxResult | ExportTfjsResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) throw new SettingError('--format', `--format: '${o.format}' is not one of ${EXPORT_FORMATS.join(', ')}`);
  if (o.opset !== undefined) checkNumber('--opset', o.opset, { min: MIN_OPSET, max: MAX_OPSET, int: true });
  let width: number | undefined;
  let height: number | undefined;
  if (o.img) {
    if (o.img.length < 1 || o.img.length > 2) throw new SettingError('--img', `--img takes the input width and height (or one size for both), got ${o.img.length} values`);
    width = checkNumber('--img', o.img[0], RULES.size);
    height = checkNumber('--img', o.img[1] ?? o.img[0], RULES.size);
  }
  if (o.format === 'tfjs') {
    const t = await exportTfjs({ cfg: o.cfg, weights: o.weights, out: o.out, width, height, decode: o.decode, log });
    let bytes = 0;
    for (const b of t.files.values()) bytes += b.length;
    log(`wrote ${o.out}: TF.js GraphModel, ${t.files.size} files, ${(bytes / 1e6).toFixed(1)} MB, ${t.nodes} nodes; input ${t.input.name} ${dims(t.input.shape)} (NHWC); outputs ${t.outputs.map((x) => `${x.name} ${dims(x.shape)}`).join(', ')}`);
    return t;
  }
  const r = await exportOnnx({ cfg: o.cfg, weights: o.weights, out: o.out, opset: o.opset, dynamicBatch: o.dynamicBatch, width, height, decode: o.decode, log });
  const mb = (r.bytes.length / 1e6).toFixed(1);
  log(`wrote ${o.out}: ONNX opset ${r.opset}, ${mb} MB, ${r.nodes} nodes; input ${r.input.name} ${dims(r.input.dims)}; outputs ${r.outputs.map((x) => `${x.name} ${dims(x.dims)}`).join(', ')}`);
  return r;
}
