import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding this package's package.json (works from src/ via tsx and from dist/ after tsc). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'yolo-wgsl') return (root = dir);
      } catch { /* keep walking */ }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`yolo-wgsl: package root not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The kernels/ folder shipped with the package (override: YOLO_WGSL_KERNELS). */
export function kernelsDir(): string {
  return process.env.YOLO_WGSL_KERNELS ?? path.join(packageRoot(), 'kernels');
}
