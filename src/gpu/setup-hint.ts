/**
 * The hint an installed package gives where it runs slowly: on Linux without a GPU, adapter selection falls
 * back to Dawn's OpenGL ES on llvmpipe until `yolo-wgsl setup-mesa` installs Mesa 25 lavapipe (Vulkan on
 * the CPU, 3-6x faster). The first createEngine() or CLI run on such a machine says so on stderr, in one
 * line: once per process, and once per machine through a marker file in the user cache folder
 * (src/util/paths.ts cacheDir: <cache>/setup-mesa-hint); where the cache is off or cannot be written, once
 * per process. `yolo-wgsl doctor` reports it every time. YOLO_WGSL_SETUP_HINT=0 silences it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cacheDir, mesaInstallDir, packageRoot } from '../util/paths.js';
import type { AdapterDescription, BackendChoice } from './adapter.js';

export const SETUP_HINT_ENV = 'YOLO_WGSL_SETUP_HINT';
const MARKER = 'setup-mesa-hint';

/** Whether `yolo-wgsl setup-mesa` can install lavapipe here (scripts/setup-mesa.sh: Debian with apt). */
export function setupMesaPossible(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const os = fs.readFileSync('/etc/os-release', 'utf8');
    return /^ID="?debian"?$/m.test(os) && /^VERSION_CODENAME=\S/m.test(os);
  } catch {
    return false;
  }
}

/**
 * The hint for an adapter chosen by `auto` (null when there is nothing to say): the GL fallback on
 * llvmpipe, with no local lavapipe installed, where setup-mesa can install one.
 */
export function setupHint(info: Pick<AdapterDescription, 'kind'>, o: { choice: BackendChoice; mesaInstalled: boolean }): string | null {
  if (o.choice !== 'auto' || info.kind !== 'llvmpipe' || o.mesaInstalled || !setupMesaPossible()) return null;
  const installed = packageRoot().split(path.sep).includes('node_modules');
  const how = installed ? '`npx yolo-wgsl setup-mesa`' : '`make deps` (or `yolo-wgsl setup-mesa`)';
  return `yolo-wgsl: running on OpenGL ES (llvmpipe), the slow CPU fallback; ${how} installs Mesa lavapipe into ${mesaInstallDir()}, a CPU adapter 3-6x faster (nothing system-wide)`;
}

let shown = false;

/** Marks the hint as given in this process (doctor prints it in its own report). */
export function markSetupHintShown(): void {
  shown = true;
}

/**
 * Prints the hint (see setupHint) once per process and, through the marker file in the user cache
 * folder, once per machine. Returns whether it printed.
 */
export function showSetupHint(info: Pick<AdapterDescription, 'kind'>, o: { choice: BackendChoice; mesaInstalled: boolean }, print: (line: string) => void = (l) => console.error(l)): boolean {
  if (shown || process.env[SETUP_HINT_ENV] === '0') return false;
  const hint = setupHint(info, o);
  if (!hint) return false;
  shown = true;
  const cache = cacheDir();
  if (cache) {
    const marker = path.join(cache, MARKER);
    if (fs.existsSync(marker)) return false; // said on this machine before
    try {
      fs.mkdirSync(cache, { recursive: true });
      fs.writeFileSync(marker, `${new Date().toISOString()} ${hint}\n`);
    } catch {
      /* a read-only cache: once per process */
    }
  }
  print(hint);
  return true;
}
