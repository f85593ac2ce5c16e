/**
 * `yolo-wgsl setup-mesa [--dir D]`: runs scripts/setup-mesa.sh (shipped with the package) into D, by default
 * $YOLO_WGSL_MESA, the checkout's .mesa/ or, for an installed package, the user cache's mesa/ — the folders
 * adapter selection searches (src/gpu/adapter.ts mesaDirs). The script unpacks Debian's bookworm-backports
 * Mesa 25 lavapipe without touching the system, and exits 0 with a message where it cannot (not Debian, no
 * mirror): the GL fallback is then used.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { localMesa, mesaDirs, mesaInstallDir } from '../gpu/adapter.js';
import { packageRoot } from '../util/paths.js';

export async function setupMesa(opts: { dir?: string; log?: (l: string) => void } = {}): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = path.resolve(opts.dir ?? mesaInstallDir());
  const script = path.join(packageRoot(), 'scripts', 'setup-mesa.sh');
  if (!fs.existsSync(script)) throw new Error(`setup-mesa: ${script} is missing from this installation`);
  const r = spawnSync('bash', [script], { env: { ...process.env, YOLO_WGSL_MESA: dir }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  for (const l of `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')) if (l.trim()) log(l);
  if (r.status !== 0) {
    log(`setup-mesa: the script failed (exit ${r.status ?? r.signal})`);
    return false;
  }
  const found = localMesa([dir]);
  if (!found) {
    log(`setup-mesa: no lavapipe in ${dir}; the GL fallback will be used`);
    return true;
  }
  const searched = mesaDirs();
  if (!searched.includes(dir)) log(`setup-mesa: ${dir} is not searched by default (${searched.join(', ')}): set YOLO_WGSL_MESA=${dir}`);
  else log(`setup-mesa: lavapipe ${found.version} ready in ${dir}; \`yolo-wgsl doctor\` shows the adapter`);
  return true;
}
