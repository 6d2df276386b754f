#!/usr/bin/env bash
# Renders the suite's icon (assets/icons/hicolor/scalable/apps/openmosixview.svg, drawn by
# hand) to the PNG sizes of the hicolor theme, beside it under assets/icons/hicolor/.
# Below 32 px the parts marked class="detail" are left out: they would only blur.
# Needs rsvg-convert (Debian package librsvg2-bin). The PNGs are committed; run this
# after editing the SVG; gui/tests/desktop_entries.rs checks they are the SVG's.
# See docs/install.md.
#
#   scripts/render-icons.sh [--out DIR]   (DIR instead of assets/icons/hicolor)
set -euo pipefail

SIZES=(16 22 24 32 48 64 128 256 512)

out=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "render-icons.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$out" ]; then
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
fi

cd "$(dirname "$0")/.."
if ! command -v rsvg-convert >/dev/null; then
  echo "render-icons.sh: rsvg-convert is missing (apt-get install librsvg2-bin)" >&2
  exit 1
fi
icons=assets/icons/hicolor
svg=$icons/scalable/apps/openmosixview.svg
small=$(mktemp --suffix=.svg)
trap 'rm -f "$small"' EXIT
sed '/class="detail"/d' "$svg" >"$small"
out=${out:-$icons}
for size in "${SIZES[@]}"; do
  if [ "$size" -lt 32 ]; then source=$small; else source=$svg; fi
  mkdir -p "$out/${size}x$size/apps"
  rsvg-convert --width "$size" --height "$size" --output "$out/${size}x$size/apps/openmosixview.png" "$source"
done
echo "rendered ${#SIZES[@]} sizes of $svg into $out"
