#!/usr/bin/env bash
# Installs Mesa 25 lavapipe (Vulkan on the CPU) into a project-local folder, .mesa/, without touching the
# system: apt-get download with a private apt configuration that reuses this machine's own Debian mirror,
# then dpkg -x. Dawn rejects the stock bookworm lavapipe (Mesa 22.3); Mesa 25 from bookworm-backports gives
# a core WebGPU adapter with shader-f16, subgroups and timestamp queries, 3-6x faster than GL on llvmpipe.
# When anything here is unavailable the script says so and exits 0: the runtime then falls back to Dawn's
# OpenGL ES backend on llvmpipe, which works on the stock image.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${YOLO_WGSL_MESA:-$root/.mesa}"
icd="$dest/lvp_icd.json"
say() { echo "setup-mesa: $*"; }
if [ -f "$icd" ] && [ -f "$dest/ok" ]; then say "lavapipe already in $dest"; exit 0; fi
if [ "$(uname -s)" != Linux ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  say "not a Debian-family Linux: skipping lavapipe (a real GPU or the GL fallback will be used)"; exit 0
fi
. /etc/os-release 2>/dev/null
codename="${VERSION_CODENAME:-}"
if [ "${ID:-}" != debian ] || [ -z "$codename" ]; then
  say "not Debian (${ID:-unknown}): skipping lavapipe; the GL fallback will be used"; exit 0
fi
arch="$(dpkg --print-architecture)"
# The machine's own Debian mirror (deb822 or one-line sources), default deb.debian.org.
mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)"
[ -n "$mirror" ] || mirror="$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
apt="$dest/apt"
rm -rf "$dest/root" "$dest/debs"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dest/debs" "$dest/root"
printf 'deb %s %s-backports main\ndeb %s %s main\n' "$mirror" "$codename" "$mirror" "$codename" >"$apt/sources.list"
O=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Default-Release=$codename-backports"
   -o APT::Sandbox::User=root -o Debug::NoLocking=1)
say "fetching Mesa from $mirror ($codename-backports) into $dest"
if ! apt-get "${O[@]}" -qq update >"$dest/apt.log" 2>&1; then
  say "apt-get update failed (see $dest/apt.log): skipping lavapipe; the GL fallback will be used"; exit 0
fi
ver="$(apt-cache "${O[@]}" policy mesa-vulkan-drivers | awk '/Candidate:/{print $2}')"
case "$ver" in
  2[5-9].*|[3-9][0-9].*) ;;
  *) say "no Mesa >= 25 for $codename (candidate: ${ver:-none}): skipping lavapipe; the GL fallback will be used"; exit 0 ;;
esac
( cd "$dest/debs" && apt-get "${O[@]}" -qq download mesa-vulkan-drivers libvulkan1 libdrm2 ) >>"$dest/apt.log" 2>&1 || {
  say "download failed (see $dest/apt.log): skipping lavapipe; the GL fallback will be used"; exit 0; }
for f in "$dest"/debs/*.deb; do dpkg -x "$f" "$dest/root"; done
lib="$(dirname "$(find "$dest/root" -name libvulkan_lvp.so | head -1)")"
if [ ! -f "$lib/libvulkan_lvp.so" ]; then say "libvulkan_lvp.so not found in the packages"; exit 0; fi
cat >"$icd" <<JSON
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$lib/libvulkan_lvp.so", "api_version": "1.4.305" } }
JSON
ln -sfn "$lib" "$dest/lib"
echo "$ver" >"$dest/version"
touch "$dest/ok"
say "installed Mesa $ver lavapipe ($arch) in $dest"
