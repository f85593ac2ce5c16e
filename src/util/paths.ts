/**
 * Where things are on disk, in one place: the package root and its kernels/, the user cache folder (conv
 * tuning, an installed package's Mesa) and the folders searched for the project-local Mesa lavapipe.
 */
import fs from 'node:fs';
import os from 'node:os';
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

/**
 * The user cache folder: $YOLO_WGSL_CACHE_DIR, else $XDG_CACHE_HOME/yolo-wgsl, else ~/.cache/yolo-wgsl;
 * null when caching on disk is off (YOLO_WGSL_CACHE_DIR=off or 0). Holds the conv tuning cache
 * (src/gpu/tune-file.ts) and, for an installed package, mesa/ (`yolo-wgsl setup-mesa`).
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const d = env.YOLO_WGSL_CACHE_DIR;
  if (d === 'off' || d === '0') return null;
  if (d) return path.resolve(d);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'yolo-wgsl');
}

/**
 * Folders searched for the local Mesa 25 lavapipe, in order: $YOLO_WGSL_MESA alone when it is set; else the
 * package's .mesa/ (`make deps` in a checkout) and mesa/ in the user cache (`yolo-wgsl setup-mesa`, which is
 * where an installed package puts it: $YOLO_WGSL_CACHE_DIR, else $XDG_CACHE_HOME/yolo-wgsl, else
 * ~/.cache/yolo-wgsl).
 */
export function mesaDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.YOLO_WGSL_MESA) return [path.resolve(env.YOLO_WGSL_MESA)];
  const dirs = [path.join(packageRoot(), '.mesa')];
  const cache = cacheDir(env);
  if (cache) dirs.push(path.join(cache, 'mesa'));
  return dirs;
}

/** Where `yolo-wgsl setup-mesa` installs by default: $YOLO_WGSL_MESA, the checkout's .mesa/, or the user cache. */
export function mesaInstallDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.YOLO_WGSL_MESA) return path.resolve(env.YOLO_WGSL_MESA);
  const root = packageRoot();
  const installed = root.split(path.sep).includes('node_modules');
  const cache = cacheDir(env);
  return installed && cache ? path.join(cache, 'mesa') : path.join(root, '.mesa');
}
