#!/usr/bin/env bash
# Renders the suite's icon (assets/icons/hicolor/scalable/apps/openmosixview.svg, drawn by
# hand) to the PNG sizes of the hicolor theme, beside it under assets/icons/hicolor/.
# Below 32 px the parts marked class="detail" are left out: they would only blur.
# Needs rsvg-convert (Debian package librsvg2-bin). The PNGs are committed; run this
# after editing the SVG; gui/tests/desktop_entries.rs checks they are the SVG's.
# See docs/install.md.
#
#   scripts/render-icons.sh [--out DIR]   (DIR instead of assets/icons/hicolor)
#   scripts/render-icons.sh --picture     (also docs/screenshots/launcher.png: the icon at
#                                          every size, on light and dark, and a launcher;
#                                          needs ImageMagick)
set -euo pipefail

SIZES=(16 22 24 32 48 64 128 256 512)

out=
picture=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --picture) picture=1; shift ;;
    -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
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

# The picture for docs/install.md: a row of sizes on light, one on dark, and the main
# window's launcher as the desktop reads it.
if [ "$picture" = 1 ]; then
  tiles=$(mktemp -d)
  trap 'rm -f "$small"; rm -rf "$tiles"' EXIT
  row() { # BACKGROUND TEXT-COLOUR OUT
    local bg=$1 fg=$2 row_out=$3 row=()
    for size in 256 128 64 48 32 24 22 16; do
      convert -background "$bg" -fill "$fg" -font DejaVu-Sans -pointsize 13 \
        "$out/${size}x$size/apps/openmosixview.png" -gravity center \
        -extent "$((size + 24))x$((size + 8))" \
        \( -size "$((size + 24))x20" xc:"$bg" -gravity center -annotate +0+0 "$size px" \) \
        -append "$tiles/$size.png"
      row+=("$tiles/$size.png")
    done
    convert -background "$bg" -gravity south "${row[@]}" +append -bordercolor "$bg" \
      -border 12 -gravity west -extent 841x "$row_out"
  }
  row '#f2f2f2' '#333333' "$tiles/light.png"
  row '#2b2b2b' '#dddddd' "$tiles/dark.png"
  entry=assets/applications/openmosixview.desktop
  convert -background white -fill '#222222' -font DejaVu-Sans-Mono -pointsize 14 \
    label:"$(printf '%s\n\n' "$entry"; cat "$entry")" -bordercolor white -border 16 \
    "$tiles/text.png"
  convert -background white "$tiles/light.png" "$tiles/dark.png" "$tiles/text.png" \
    -gravity west -append -depth 8 -strip docs/screenshots/launcher.png
  echo "drew docs/screenshots/launcher.png"
fi
