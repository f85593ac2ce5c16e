#!/usr/bin/env bash
# check-pack: the package as a user gets it.
#   1. builds the library (tsc -p tsconfig.build.json) and the browser bundle into a staging copy (the
#      checkout's own dist/ is left alone: bin/yolo-wgsl.js would prefer a stale dist/ over the sources);
#   2. `npm pack` there (the package.json `files` list decides what goes in) and reviews the contents:
#      no fixtures, tests, sources maps, data or large files, nothing of the checkout's bench/ (the benches
#      the package ships are dist/src/perf/);
#   3. a fresh project in a temporary folder outside the repo: `npm install <tarball>`, the examples copied
#      with their import turned into 'yolo-wgsl', a strict tsc check against the package's types (plus
#      misuse that must not type-check), then runs them: import creates no device, detect on a folder,
#      a short fine-tune, the CLI's `info`, and `bench peers` refused with "needs a checkout";
#   4. the GL fallback's hint (src/gpu/setup-hint.ts): before `setup-mesa`, two engines in one program print
#      it exactly once, and a later CLI run (the marker in the user cache) not at all, doctor reports it;
#      after it, lavapipe runs and no hint is printed.
#   5. `yolo-wgsl serve` from the package: one detection over HTTP, a 415, /metrics, a clean SIGTERM.
# Needs the npm registry for the package's dependencies. Usage: scripts/check-pack.sh [--keep]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
NODE="${NODE:-node}"
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/yolo-wgsl-pack.XXXXXX")"
cleanup() { if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi; }
trap cleanup EXIT
STAGE="$WORK/stage"
PROJ="$WORK/project"
mkdir -p "$STAGE" "$PROJ"
step() { echo; echo "== $*"; }

step "build into $STAGE"
cp "$REPO/package.json" "$STAGE/"
for f in README.md CHANGELOG.md LICENSE; do [[ -f "$REPO/$f" ]] && cp "$REPO/$f" "$STAGE/"; done
mkdir -p "$STAGE/docs" && cp "$REPO/docs/api.md" "$STAGE/docs/"
cp -r "$REPO/bin" "$REPO/kernels" "$STAGE/"
mkdir -p "$STAGE/scripts" && cp "$REPO/scripts/setup-mesa.sh" "$STAGE/scripts/"
"$NODE" "$REPO/node_modules/typescript/bin/tsc" -p "$REPO/tsconfig.build.json" --outDir "$STAGE/dist"
"$NODE" "$REPO/scripts/build-browser.mjs" "$STAGE/dist/browser/yolo-wgsl.js" --minify

step "npm pack"
# --ignore-scripts: the staging copy is already built (package.json prepack builds in a checkout)
(cd "$STAGE" && npm pack --ignore-scripts --json --pack-destination "$WORK" > "$WORK/pack.json")
TARBALL="$WORK/$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].filename)' "$WORK/pack.json")"
"$NODE" - "$WORK/pack.json" <<'EOF'
const fs = require('fs');
const [p] = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const files = p.files.map((f) => f.path);
const bad = files.filter((f) => /^(test|fixtures|data|runs|scratch|src|bench|docs\/(?!api\.md))\/|\.map$|\.ts$(?<!\.d\.ts)|\.tsbuildinfo$|^dist\/(test|bench)\//.test(f));
const big = p.files.filter((f) => f.size > 1024 * 1024);
const need = ['package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/browser.d.ts', 'dist/browser/yolo-wgsl.js', 'kernels/conv2d_direct.wgsl', 'bin/yolo-wgsl.js', 'dist/src/cli/main.js', 'dist/src/perf/network.js', 'CHANGELOG.md', 'scripts/setup-mesa.sh'];
const missing = need.filter((f) => !files.includes(f));
console.log(`${p.filename}: ${p.files.length} files, ${(p.size / 1024).toFixed(0)} KiB packed, ${(p.unpackedSize / 1024).toFixed(0)} KiB unpacked`);
const tops = {};
for (const f of p.files) { const k = f.path.split('/').slice(0, 2).join('/'); tops[k] = (tops[k] ?? 0) + f.size; }
for (const [k, v] of Object.entries(tops).sort()) console.log(`  ${k.padEnd(28)} ${(v / 1024).toFixed(0).padStart(6)} KiB`);
if (bad.length || big.length || missing.length) {
  console.error(`bad files: ${bad.join(', ') || '-'}\nlarge files: ${big.map((f) => f.path).join(', ') || '-'}\nmissing: ${missing.join(', ') || '-'}`);
  process.exit(1);
}
EOF

step "fresh project $PROJ: npm install the tarball"
cd "$PROJ"
cat > package.json <<'EOF'
{ "name": "yolo-wgsl-consumer", "version": "1.0.0", "private": true, "type": "module" }
EOF
npm install --no-audit --no-fund --loglevel=error "$TARBALL" "@types/node@20" > "$WORK/npm-install.log" 2>&1 || { cat "$WORK/npm-install.log"; exit 1; }
echo "installed: $(node -p 'require("./node_modules/yolo-wgsl/package.json").version') ($(ls node_modules | wc -l) packages)"

mkdir -p src
for f in detect-folder finetune server; do
  sed "s|'../src/index.js'|'yolo-wgsl'|" "$REPO/examples/$f.ts" > "src/$f.ts"
done
cat > src/types-check.ts <<'EOF'
// Compile-time checks of the package's types (this file is type-checked, not run).
import { createEngine, loadDarknet, train, evaluate, CfgError, GpuError, type Detection, type TrainReport, type EvaluateResult, type ModelInfo } from 'yolo-wgsl';
import type { ImageInput } from 'yolo-wgsl/browser';

export async function typed(): Promise<void> {
  const engine = await createEngine({ backend: 'auto', powerPreference: 'high-performance' });
  const summary: string = engine.adapterInfo.summary;
  const model = await loadDarknet({ engine, cfg: 'a.cfg', weights: new Uint8Array(0), names: ['a'] });
  const dets: Detection[] = await model.detect({ data: new Uint8Array(12), width: 2, height: 2 }, { conf: 0.25, iou: 0.45, maxDet: 10 });
  const x1: number = dets[0].box.x1;
  const info: ModelInfo = model.info();
  const r: TrainReport = await train({ model, data: 'd.yaml', epochs: 1, onProgress: (p) => p.loss.toFixed(2), signal: new AbortController().signal });
  const e: EvaluateResult = await evaluate({ model, data: 'd.yaml' });
  const m: number = e.metrics.map50;
  const img: ImageInput = 'x.png';
  // @ts-expect-error conf is a number
  await model.detect('x.png', { conf: 'high' });
  // @ts-expect-error the cfg is required
  await loadDarknet({ weights: 'w' });
  // @ts-expect-error no such backend
  await createEngine({ backend: 'cuda' });
  try { /* */ } catch (err) { if (err instanceof CfgError) console.log(err.file, err.line, err.key); if (err instanceof GpuError) console.log(err.kernel); }
  void [summary, x1, info, r, m, img];
}
EOF
cat > tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "outDir": "out", "rootDir": "src", "types": ["node"], "skipLibCheck": false
  },
  "include": ["src/**/*.ts"]
}
EOF

step "tsc (strict, skipLibCheck false) against the package's types"
"$NODE" "$REPO/node_modules/typescript/bin/tsc" -p .
echo "types ok; examples compiled to out/"

step "import has no side effects (no Dawn, no device)"
"$NODE" --input-type=module -e "
const before = Object.keys(globalThis).length;
const m = await import('yolo-wgsl');
if (typeof globalThis.GPUBufferUsage !== 'undefined') throw new Error('importing yolo-wgsl loaded Dawn');
if (Object.keys(globalThis).length !== before) throw new Error('importing yolo-wgsl changed globalThis');
console.log('ok:', Object.keys(m).length, 'exports; no device, no globals after import');
"

mkdir -p data/images
cp "$REPO/fixtures/cfg/yolo-mini.cfg" "$REPO/fixtures/cfg/yolo-mini.names" data/
cp "$REPO"/fixtures/images/*.png "$REPO"/fixtures/images/*.jpg data/images/
# The installed package has no project-local Mesa: `yolo-wgsl setup-mesa` installs lavapipe into the user
# cache (here a cache folder of this check), where adapter selection finds it; without it the engine picks a
# real GPU, else Dawn's GL on llvmpipe.
export YOLO_WGSL_CACHE_DIR="$PWD/cache"
# Two engines in one program, then the CLI: the adapter of each and the hint lines (stderr) they gave.
cat > engines.mjs <<'EOF'
import { createEngine } from 'yolo-wgsl';
for (let i = 0; i < 2; i++) { const e = await createEngine(); console.log(`adapter ${e.adapterInfo.kind}`); e.dispose(); }
EOF
hints() { grep -c 'setup-mesa' "$1" || true; }
step "before setup-mesa: on the GL fallback, the first engine of the machine says once how to get lavapipe"
"$NODE" engines.mjs > hint1.out 2> hint1.err
ADAPTER="$(head -1 hint1.out | cut -d' ' -f2)"
if [[ "$ADAPTER" == llvmpipe ]] && grep -qx "ID=debian" /etc/os-release; then
  grep 'setup-mesa' hint1.err
  [[ "$(hints hint1.err)" == 1 ]] || { echo "expected the hint exactly once for two engines:"; cat hint1.err; exit 1; }
  grep -q 'npx yolo-wgsl setup-mesa' hint1.err || { echo "the hint does not name npx yolo-wgsl setup-mesa"; exit 1; }
  [[ -f cache/setup-mesa-hint ]] || { echo "no marker cache/setup-mesa-hint"; exit 1; }
  # a second run on this machine, through the CLI: said before (the marker), so silent
  npx --no-install yolo-wgsl detect --cfg data/yolo-mini.cfg --source data/images/rgb-13x9.png --out dets-gl > hint2.out 2> hint2.err
  [[ "$(hints hint2.err)" == 0 ]] || { echo "the hint again in a second run:"; cat hint2.err; exit 1; }
  npx --no-install yolo-wgsl doctor 2>&1 | grep -E "^speed" || { echo "doctor does not report the hint"; exit 1; }
  echo "hint: once for two engines; not again in the CLI run after it; doctor reports it"
else
  [[ "$(hints hint1.err)" == 0 ]] || { echo "a hint on $ADAPTER:"; cat hint1.err; exit 1; }
  echo "hint check skipped: $ADAPTER without lavapipe, not Debian or not the GL fallback (setup-mesa has nothing to offer; no hint was given)"
fi

step "run: yolo-wgsl setup-mesa into the user cache, then doctor"
npx --no-install yolo-wgsl setup-mesa
npx --no-install yolo-wgsl doctor 2>&1 | grep -E "^device: using|^doctor:"

step "after setup-mesa: no hint where lavapipe is in use (marker removed first)"
rm -f cache/setup-mesa-hint
"$NODE" engines.mjs > hint3.out 2> hint3.err
cat hint3.out
if grep -q 'adapter lavapipe' hint3.out; then
  [[ "$(hints hint3.err)" == 0 ]] || { echo "a hint although lavapipe is in use:"; cat hint3.err; exit 1; }
  echo "no hint on lavapipe"
else
  echo "lavapipe not in use here ($(head -1 hint3.out)): setup-mesa could not install it"
fi

step "run: detect on a folder"
"$NODE" out/detect-folder.js --cfg data/yolo-mini.cfg --names data/yolo-mini.names --images data/images --out dets.json --conf 0.05
"$NODE" -e "const j = require('./dets.json'); console.log(j.length, 'images in dets.json,', j.reduce((s, x) => s + x.detections.length, 0), 'detections'); if (j.length !== 5) process.exit(1)"

step "run: a short training (fine-tune 3 iterations on generated data, save)"
"$NODE" out/finetune.js --cfg data/yolo-mini.cfg --size 64 --iterations 3 --out tuned.weights
"$NODE" -e "const s = require('fs').statSync('tuned.weights').size; console.log('tuned.weights', s, 'bytes'); if (s < 1000) process.exit(1)"

step "run: the CLI from the package"
npx --no-install yolo-wgsl info --cfg data/yolo-mini.cfg | tail -2

step "run: yolo-wgsl serve from the package (POST an image, GET /metrics, SIGTERM)"
node_modules/.bin/yolo-wgsl serve --cfg data/yolo-mini.cfg --names data/yolo-mini.names --port 0 > serve.log 2>&1 &
SERVE_PID=$!
for _ in $(seq 120); do grep -q '^listening on' serve.log && break; kill -0 $SERVE_PID 2>/dev/null || break; sleep 1; done
URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*' serve.log | head -1)"
[[ -n "$URL" ]] || { cat serve.log; echo "serve did not start"; exit 1; }
"$NODE" --input-type=module -e "
import fs from 'node:fs';
const url = process.argv[1];
const r = await fetch(url + '/detect?conf=0.05', { method: 'POST', body: fs.readFileSync('data/images/smooth-40x24.jpg'), headers: { 'content-type': 'image/jpeg' } });
const j = await r.json();
if (r.status !== 200 || !(j.detections.length > 0)) throw new Error('detect: ' + r.status + ' ' + JSON.stringify(j).slice(0, 200));
const bad = await fetch(url + '/detect', { method: 'POST', body: 'not an image', headers: { 'content-type': 'text/plain' } });
if (bad.status !== 415) throw new Error('text/plain: ' + bad.status);
const m = await (await fetch(url + '/metrics')).json();
console.log('serve:', j.detections.length, 'detections for', j.image, j.width + 'x' + j.height + ';', 'metrics: responses', JSON.stringify(m.responses), 'batches', m.batches);
" "$URL"
kill -TERM $SERVE_PID
wait $SERVE_PID || { cat serve.log; echo "serve did not exit cleanly on SIGTERM"; exit 1; }
grep '^serve: stopped' serve.log

step "run: bench peers needs a checkout (bench/ is not in the package)"
if npx --no-install yolo-wgsl bench peers --cfg data/yolo-mini.cfg > peers.log 2>&1; then
  cat peers.log; echo "bench peers ran from the package"; exit 1
fi
grep "needs a checkout" peers.log

echo
echo "check-pack: ok ($(basename "$TARBALL"))"
