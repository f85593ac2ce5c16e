#!/usr/bin/env bash
# Real networks train at real sizes (docs/performance.md "Real networks training on lavapipe"):
# writes copies of yolov3-tiny, yolov4-tiny and yolov7-tiny from the shared Darknet cfgs with 3 classes
# (classes=3 in each [yolo], filters=(classes+5)*len(mask) in the conv before it), burn_in=5 (the cfgs'
# burn_in=1000 would keep the rate near 0 for a short run) and random=0 (one input size, for timing),
# generates the demo's synthetic shapes data (circle/square/triangle, 128 px; 160 train, 40 val) and trains
# each from a seeded start (Darknet loss by default), batch 8, 40 updates, val after each epoch.
#
#   scripts/real-cfgs.sh [OUT (default /tmp/real-cfgs)]
#   env: ITERS (40), BATCH (8), SIZES ("v3=256 v4=256 v7=256"), ONLY (e.g. v7), LOSS (darknet | yolov5),
#        SHARED (default ../shared or YOLO_WGSL_SHARED)
#   e.g. ITERS=20 ONLY=v7 LOSS=yolov5 scripts/real-cfgs.sh   (yolov7-tiny's heads are in YOLOv5 form)
# Nothing is written inside the checkout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/real-cfgs}"
shared="${SHARED:-${YOLO_WGSL_SHARED:-$root/../shared}}"
iters="${ITERS:-40}"
batch="${BATCH:-8}"
sizes="${SIZES:-v3=256 v4=256 v7=256}"
loss="${LOSS:-darknet}"
mkdir -p "$out"

node - "$shared/darknet-cfg" "$out" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [src, out] = process.argv.slice(2);
const classes = 3;
for (const [tag, name] of [['v3', 'yolov3-tiny'], ['v4', 'yolov4-tiny'], ['v7', 'yolov7-tiny']]) {
  const lines = fs.readFileSync(path.join(src, `${name}.cfg`), 'utf8').split(/\r?\n/);
  // sections: [start line, name]
  const heads = [];
  lines.forEach((l, i) => { const m = /^\s*\[([^\]]+)\]/.exec(l); if (m) heads.push({ i, name: m[1].trim() }); });
  const end = (k) => (k + 1 < heads.length ? heads[k + 1].i : lines.length);
  const set = (k, key, value) => {
    for (let j = heads[k].i + 1; j < end(k); j++) if (new RegExp(`^\\s*${key}\\s*=`).test(lines[j])) { lines[j] = `${key}=${value}`; return; }
    lines.splice(heads[k].i + 1, 0, `${key}=${value}`);
    for (const h of heads) if (h.i > heads[k].i) h.i++;
  };
  const get = (k, key) => { for (let j = heads[k].i + 1; j < end(k); j++) { const m = new RegExp(`^\\s*${key}\\s*=\\s*(.*)$`).exec(lines[j]); if (m) return m[1].trim(); } return undefined; };
  for (let k = 0; k < heads.length; k++) {
    if (heads[k].name !== 'yolo') continue;
    const mask = (get(k, 'mask') ?? '').split(',').filter((s) => s.trim() !== '').length || Number(get(k, 'num'));
    set(k, 'classes', classes);
    set(k, 'random', 0);
    if (heads[k - 1].name !== 'convolutional') throw new Error(`${name}: the section before [yolo] at line ${heads[k].i + 1} is [${heads[k - 1].name}]`);
    set(k - 1, 'filters', (classes + 5) * mask);
  }
  set(0, 'burn_in', 5);
  fs.writeFileSync(path.join(out, `${tag}.cfg`), lines.join('\n'));
  console.log(`wrote ${path.join(out, `${tag}.cfg`)} (${name}, ${classes} classes)`);
}
EOF

# the demo's classes and image size, fewer images (a short study)
node --import tsx -e "
const { generateSynth } = await import('$root/src/data/synth.ts');
const r = await generateSynth({ out: '$out/synth', trainCount: 160, valCount: 40, seed: 1 });
console.log('data', r.data, r.train, 'train', r.val, 'val', r.boxes, 'boxes', r.cached ? '(cached)' : '');
"

cd "$root"
node bin/yolo-wgsl.js doctor 2>&1 | grep -E '^(device|adapter)' || true
for kv in $sizes; do
  tag="${kv%%=*}"; img="${kv#*=}"
  if [ -n "${ONLY:-}" ] && [ "$ONLY" != "$tag" ]; then continue; fi
  echo "== $tag img $img batch $batch iterations $iters loss $loss; $(uptime)"
  start=$(date +%s)
  node bin/yolo-wgsl.js train --cfg "$out/$tag.cfg" --data "$out/synth/synth.data" --img "$img" --batch "$batch" --subdivisions 1 \
    --max-batches "$iters" --loss "$loss" --no-multi-scale --seed 1 --log-every 5 --val-every 1 --out "$out/runs" --name "$tag-$img-$loss" --exist-ok \
    --progress lines 2>&1 | tee "$out/$tag-$img-$loss.log"
  echo "== $tag done in $(( $(date +%s) - start )) s; $(uptime)"
done
