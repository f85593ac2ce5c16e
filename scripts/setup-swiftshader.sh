#!/usr/bin/env bash
# Installs Google's SwiftShader Vulkan driver (Vulkan on the CPU; subgroups of 4 where lavapipe has 8) into a
# project-local folder, .swiftshader/, without touching the system: Debian's chromium-common ships it
# (/usr/lib/chromium/libvk_swiftshader.so, which needs nothing but libc), so the package is fetched with
# `apt-get download` and only the driver, its manifest and Chromium's Vulkan loader are kept. When chromium
# is installed already, its files are copied instead. `YOLO_WGSL_BACKEND=swiftshader` then selects it
# (src/gpu/adapter.ts); `make test-swiftshader` runs the kernel tests on it.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${YOLO_WGSL_SWIFTSHADER:-$root/.swiftshader}"
say() { echo "setup-swiftshader: $*"; }
if [ -f "$dest/vk_swiftshader_icd.json" ] && [ -f "$dest/ok" ]; then say "SwiftShader already in $dest"; exit 0; fi
mkdir -p "$dest"
src=/usr/lib/chromium
if [ ! -f "$src/libvk_swiftshader.so" ]; then
  if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    say "not a Debian-family Linux and no $src/libvk_swiftshader.so: install Chromium's SwiftShader by hand and set YOLO_WGSL_SWIFTSHADER to its folder"; exit 1
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  say "fetching chromium-common (Debian) into a temporary folder"
  if ! ( cd "$tmp" && apt-get -qq -o APT::Sandbox::User=root download chromium-common ) >"$dest/apt.log" 2>&1; then
    say "apt-get download chromium-common failed (see $dest/apt.log; apt-get update first?)"; exit 1
  fi
  dpkg -x "$tmp"/chromium-common_*.deb "$tmp/root"
  src="$tmp/root/usr/lib/chromium"
  [ -f "$src/libvk_swiftshader.so" ] || { say "libvk_swiftshader.so not found in chromium-common"; exit 1; }
  dpkg-deb -f "$tmp"/chromium-common_*.deb Version >"$dest/version"
else
  say "using the installed chromium's SwiftShader ($src)"
  (dpkg-query -W -f '${Version}' chromium-common 2>/dev/null || echo unknown) >"$dest/version"
fi
cp "$src/libvk_swiftshader.so" "$dest/"
[ -f "$src/libvulkan.so.1" ] && cp "$src/libvulkan.so.1" "$dest/"
# the manifest's library path is relative to the manifest
printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "./libvk_swiftshader.so", "api_version": "1.0.5"}}\n' >"$dest/vk_swiftshader_icd.json"
touch "$dest/ok"
say "installed SwiftShader (chromium-common $(cat "$dest/version")) in $dest"
