/**
 * One chart of several training runs' validation mAP per iteration (their results.csv), for comparing
 * starts at equal iterations (docs/finetune.md: docs/images/finetune_map.png).
 *
 *   node --import tsx scripts/finetune-plot.ts --out map.png [--metric map50|map50_95] label=RUN_DIR ...
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { linePlot, seriesColor, type Series } from '../src/viz/plot.js';
import { writePng } from '../src/viz/draw.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, metric: { type: 'string', default: 'map50' }, title: { type: 'string' } },
});
if (!a.out || !positionals.length) {
  console.error('usage: finetune-plot.ts --out F.png [--metric map50|map50_95] label=RUN_DIR ...');
  process.exit(2);
}
const series: Series[] = positionals.map((p, k) => {
  const [label, dir] = p.includes('=') ? p.split('=', 2) : [path.basename(p), p];
  const [head, ...rows] = fs.readFileSync(path.join(dir, 'results.csv'), 'utf8').trim().split('\n');
  const cols = head.split(',');
  const ix = cols.indexOf('iteration'), iy = cols.indexOf(a.metric!);
  if (iy < 0) throw new Error(`${dir}/results.csv: no column ${a.metric} (${cols.join(', ')})`);
  const pts = rows.map((r) => r.split(',').map(Number)).filter((v) => Number.isFinite(v[iy]));
  return { label, x: pts.map((v) => v[ix]), y: pts.map((v) => v[iy]), color: seriesColor(k, Math.max(3, positionals.length)), width: 2 };
});
const metric = a.metric === 'map50' ? 'mAP@0.5' : a.metric === 'map50_95' ? 'mAP@0.5:0.95' : a.metric!;
writePng(a.out, linePlot(series, { width: 640, height: 400, title: a.title ?? `Validation ${metric} per iteration`, xlabel: 'iteration', ylabel: metric }));
console.log(`wrote ${a.out}`);
