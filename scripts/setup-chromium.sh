#!/usr/bin/env bash
# Installs Debian's chromium (a system package) so that test/examples/browser.test.ts can run
# examples/browser/index.html in headless Chromium's WebGPU. Unlike setup-mesa.sh this changes the system,
# so it only acts when the machine allows it without a question: apt-get present, Debian, running as root
# or with passwordless sudo. YOLO_WGSL_NO_CHROMIUM=1 opts out. It never fails `make deps`: when no browser
# can be had it says why, exits 0, and leaves the reason in .chromium/status, which the browser test prints
# in its "[skipped: …]" line (and the test runner counts in its summary line).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.chromium"
mkdir -p "$dest"
say() { echo "setup-chromium: $*"; }
# ok <path>: a browser is there; skip <why>: none, and why
ok() { printf 'ok %s\n' "$1" >"$dest/status"; say "Chromium: $1${2:+ ($2)}"; exit 0; }
skip() { printf 'skip %s\n' "$1" >"$dest/status"; say "$1: the browser test will be skipped"; exit 0; }
version() { "$1" --version 2>/dev/null | head -1; }

# the same places test/examples/browser.test.ts looks
for p in "${YOLO_WGSL_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
  if [ -n "$p" ] && [ -x "$p" ]; then ok "$p" "$(version "$p")"; fi
done
[ "${YOLO_WGSL_NO_CHROMIUM:-0}" = 1 ] && skip "no Chromium, and YOLO_WGSL_NO_CHROMIUM=1 forbids installing it"
if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null; then
  skip "no Chromium and no apt-get here (install Chromium or Chrome and set YOLO_WGSL_CHROMIUM)"
fi
. /etc/os-release 2>/dev/null
# Ubuntu's chromium is a snap wrapper, which does not run in containers or CI images
if [ "${ID:-}" != debian ]; then
  skip "no Chromium, and ${ID:-this system} is not Debian (install Chromium or Chrome and set YOLO_WGSL_CHROMIUM)"
fi
if [ "$(id -u)" = 0 ]; then
  run=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  skip "no Chromium, and installing it needs root or passwordless sudo (run: sudo apt-get install chromium)"
fi
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o DPkg::Lock::Timeout=120 -o Dpkg::Use-Pty=0)
pkgs=(chromium fonts-liberation)
say "installing Debian's ${pkgs[*]} with apt-get (log: $dest/apt.log)"
: >"$dest/apt.log"
if ! "${run[@]}" "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >>"$dest/apt.log" 2>&1; then
  # stale or missing package lists: refresh them once and retry
  "${run[@]}" "${apt[@]}" update >>"$dest/apt.log" 2>&1
  if ! "${run[@]}" "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >>"$dest/apt.log" 2>&1; then
    err="$(grep -E '^(E|W): ' "$dest/apt.log" | tail -1 | tr -d '[]')"
    skip "no Chromium: apt-get install chromium failed${err:+ ($err)}, see .chromium/apt.log"
  fi
fi
[ -x /usr/bin/chromium ] || skip "no Chromium: apt-get installed chromium but /usr/bin/chromium is missing"
ok /usr/bin/chromium "$(version /usr/bin/chromium), installed now"
