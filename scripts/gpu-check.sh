#!/usr/bin/env bash
# `make gpu-check`: everything to run the day a GPU is lent, in one go, within 9 minutes on one GPU, every
# output under one folder (default gpu-check-out/, ignored by git):
#
#   env.txt                  the machine: GPU (nvidia-smi), Vulkan driver manifests, node, git commit, load
#   NN-<step>.log            each step's full output
#   summary.md               one row per step: exit code, seconds, the step's key line; then the load average
#   bench/                   bench kernels / network / peers JSON + markdown, the chart (as bench/results/)
#   cache/                   the tuning cache `tune` writes (YOLO_WGSL_CACHE_DIR), used by the later steps
#   demo/, demo-data/        the demo's run folder and its synthetic dataset
#
# Steps: doctor; make test (type-check + every test); tune on yolov3-tiny (conv picks, and f32 vs f16 where the adapter has shader-f16: bench network then runs at the precision tune picked) (../shared/darknet-cfg or
# $YOLO_WGSL_SHARED, else the bundled yolo-mini); bench kernels --size 416; bench network and bench peers at
# their full defaults; the demo. Each step runs under its own timeout (`timeout`, then SIGKILL 10 s later),
# so one hang cannot eat the budget; a step past the whole budget (GPU_CHECK_BUDGET, default 540 s) is
# skipped and says so (9 minutes = 540 s: the per-step limits of the full run add up to 535 s). The script exits 0 when every step passed, else 1 (the summary says which).
#
# GPU_CHECK_QUICK=1: a reduced form for machines without a GPU (lavapipe on 2 cores): the same steps on small
# inputs (a subset of the tests, yolo-mini, --quick benches, a 20-iteration demo; budget 1500 s), to prove
# that the script works.
# Environment: GPU_CHECK_OUT (folder), GPU_CHECK_BUDGET (seconds), GPU_CHECK_DARKNET (a Darknet binary for
# bench peers --darknet), GPU_CHECK_STEPS (space-separated subset of: doctor test tune kernels network peers demo).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${GPU_CHECK_OUT:-gpu-check-out}"
quick="${GPU_CHECK_QUICK:-0}"
budget="${GPU_CHECK_BUDGET:-$([ "$quick" = 1 ] && echo 1500 || echo 540)}"
steps="${GPU_CHECK_STEPS:-doctor test tune kernels network peers demo}"
node="${NODE:-node}"
cli=("$node" --import tsx src/cli/main.ts)
rm -rf "$out"
mkdir -p "$out/bench" "$out/cache"
out="$(cd "$out" && pwd)"
export YOLO_WGSL_CACHE_DIR="$out/cache"
summary="$out/summary.md"
t_start=$(date +%s)

shared="${YOLO_WGSL_SHARED:-../shared}"
if [ -f "$shared/darknet-cfg/yolov3-tiny.cfg" ]; then big_cfg="$shared/darknet-cfg/yolov3-tiny.cfg"; else big_cfg="fixtures/cfg/yolo-mini.cfg"; fi
mini_cfg="fixtures/cfg/yolo-mini.cfg"

# ------------------------------------------------------------------------------ the machine
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname) $(uname -srm); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo "node: $("$node" --version 2>&1)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (modified files)')"
  echo "mode: $([ "$quick" = 1 ] && echo "GPU_CHECK_QUICK=1 (reduced); budget ${budget} s; cfg ${mini_cfg}" || echo "full; budget ${budget} s; cfg ${big_cfg}")"
  echo "YOLO_WGSL_BACKEND: ${YOLO_WGSL_BACKEND:-auto}"
  echo; echo "nvidia-smi:"; (command -v nvidia-smi >/dev/null && nvidia-smi 2>&1 | head -20) || echo "  (none)"
  echo; echo "Vulkan driver manifests:"; ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | sed 's/^/  /' || true
  echo "Vulkan loader: $(ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || echo 'none in /usr/lib (the .mesa/ one is linked beside dawn.node)')"
  echo "node_modules: $([ -d node_modules/webgpu ] && echo present || echo 'MISSING (make deps)')"
} >"$out/env.txt" 2>&1

printf '# gpu-check\n\n%s\n\n| step | result | seconds | key line | log |\n|---|---|---:|---|---|\n' "$(head -6 "$out/env.txt" | sed 's/^/    /')" >"$summary"
failed=0
n=0

# run STEP TIMEOUT_S KEY_REGEX CMD...: runs CMD with its own timeout, logs it, adds a summary row
run() {
  local name="$1" limit="$2" key="$3"; shift 3
  n=$((n + 1))
  local log; log="$(printf '%02d' "$n")-$name.log"
  case " $steps " in *" $name "*) ;; *) printf '| %s | not selected | | | |\n' "$name" >>"$summary"; return 0 ;; esac
  local now left; now=$(date +%s); left=$((budget - (now - t_start)))
  if [ "$left" -le 5 ]; then
    printf '| %s | SKIPPED: budget of %s s spent | | | |\n' "$name" "$budget" >>"$summary"; failed=1; return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "gpu-check: $name (timeout ${limit} s): $*"
  local t0 rc t1; t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$out/$log" 2>&1
  rc=$?
  t1=$(date +%s)
  local line; line="$(grep -aE "$key" "$out/$log" | tail -1 | tr '|' '/' | cut -c1-200)"
  [ -n "$line" ] || line="$(grep -av '^\s*$' "$out/$log" | tail -1 | tr '|' '/' | cut -c1-200)"
  local what=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then what="TIMEOUT after ${limit} s"; failed=1
  elif [ "$rc" -ne 0 ]; then what="FAILED (exit $rc)"; failed=1; fi
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$what" "$((t1 - t0))" "$line" "$log" >>"$summary"
  echo "gpu-check: $name: $what in $((t1 - t0)) s: $line"
}

if [ "$quick" = 1 ]; then
  run doctor 120 'doctor:|kernels ' "${cli[@]}" doctor --json "$out/doctor.json"
  run test 300 '^tests:' "$node" scripts/run-tests.mjs 'kernels/matmul|bench/peak'
  run tune 120 'tune: [0-9]+ cases' "${cli[@]}" tune --cfg "$mini_cfg" --img 64
  run kernels 240 'device peak:' "${cli[@]}" bench kernels --quick --size 64 --layers 0,13 --variants gemm_reg --passes fwd \
    --json "$out/bench/kernels-quick-64.json" --md "$out/bench/kernels-quick-64.md"
  run network 180 'infer .* b1( f16)?:' "${cli[@]}" bench network --cfg "$mini_cfg" --quick --sweep-batches '' --sweep-sizes '' --train-batches 1 --out "$out/bench"
  peers_extra=()
  [ -n "${GPU_CHECK_DARKNET:-}" ] && peers_extra=(--darknet "$GPU_CHECK_DARKNET" --darknet-iters 10)
  run peers 240 'speedup_vs|throughput' "${cli[@]}" bench peers --cfg "$mini_cfg" --quick --engines yolo-wgsl,tfjs-wasm --train-batches 1 --out "$out/bench" "${peers_extra[@]}"
  run demo 300 '^mAP@0.5' "${cli[@]}" demo --out "$out/demo" --data "$out/demo-data" --train-count 64 --val-count 16 --max-batches 20
else
  run doctor 30 'doctor:|kernels ' "${cli[@]}" doctor --json "$out/doctor.json"
  run test 165 '^tests:' make --no-print-directory test
  run tune 40 'tune: [0-9]+ cases' "${cli[@]}" tune --cfg "$big_cfg" --img 416
  run kernels 75 'device peak:' "${cli[@]}" bench kernels --size 416 --json "$out/bench/kernels-416.json" --md "$out/bench/kernels-416.md"
  # --min-seconds 0.3: fast cases (all of them on a GPU) sample 0.3 s each, not 1 s, within the step's 60 s
  run network 60 'infer 416x416 b1( f16)?:' "${cli[@]}" bench network --cfg "$big_cfg" --min-seconds 0.3 --out "$out/bench"
  peers_extra=()
  [ -n "${GPU_CHECK_DARKNET:-}" ] && peers_extra=(--darknet "$GPU_CHECK_DARKNET")
  run peers 90 'speedup_vs' "${cli[@]}" bench peers --cfg "$big_cfg" --out "$out/bench" "${peers_extra[@]}"
  run demo 75 '^mAP@0.5' "${cli[@]}" demo --out "$out/demo" --data "$out/demo-data"
fi
# the chart from whatever network/peers results there are (not a step: it takes a second)
"${cli[@]}" bench chart --out "$out/bench" --cfg "$([ "$quick" = 1 ] && echo "$mini_cfg" || echo "$big_cfg")" >"$out/chart.log" 2>&1 || true

t_end=$(date +%s)
{
  echo
  echo "total $((t_end - t_start)) s (budget ${budget} s); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo "result: $([ "$failed" = 0 ] && echo 'every step passed' || echo 'SOME STEPS FAILED, TIMED OUT OR WERE SKIPPED (see the rows above and their logs)')"
} >>"$summary"
echo "gpu-check: $(tail -1 "$summary") in $((t_end - t_start)) s; summary in $summary"
exit "$failed"
