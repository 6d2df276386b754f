#!/usr/bin/env bash
# Builds the Debian package of the whole openMosixview suite: scripts/install.sh stages
# the programs, man pages, completions, systemd units and documents under /usr, and
# dpkg-deb packs them. Prints the .deb's path. See docs/install.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/build-deb.sh [--profile release|debug] [--no-build] [--out DIR]

  --profile NAME  the cargo profile to package [release]; debug is for tests (it reuses
                  the binaries scripts/test.sh builds, and packs fast)
  --no-build      package the binaries already built
  --out DIR       where the .deb goes [target/deb]
EOF
}

profile=release
build=()
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs release or debug}; shift 2 ;;
    --no-build) build=(--no-build); shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-deb.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps strip; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-deb.sh: $tool is missing (apt-get install dpkg-dev binutils)" >&2
    exit 1
  fi
done

cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
out=${out:-$target/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

package=openmosixview
# The workspace's version ([workspace.package] in Cargo.toml).
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "build-deb.sh: no version in Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)

stage=$target/deb/stage-$profile
rm -rf "$stage"
mkdir -p "$stage"
scripts/install.sh --prefix /usr --destdir "$stage" --profile "$profile" --strip "${build[@]}" >/dev/null

docdir=$stage/usr/share/doc/$package
install -m 0644 dist/debian/copyright "$docdir/copyright"

# Libraries the binaries link (from their ELF headers, with Debian's minimal versions).
shl=$(mktemp -d)
trap 'rm -rf "$shl"' EXIT
mkdir -p "$shl/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$shl/debian/control"
elf_args=()
for f in "$stage"/usr/bin/*; do elf_args+=("-e$f"); done
shlibs=$(cd "$shl" && dpkg-shlibdeps -O "${elf_args[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }
# Libraries the windows load at run time (dlopen, so not in the ELF headers): winit's
# X11 (Xlib, Xlib-xcb, Xcursor, XInput2) and xkbcommon, and OpenGL through GLX or EGL
# (glow). Checked with strace under Xvfb (docs/install.md). On a Wayland desktop winit
# also loads Wayland's client libraries; without them it uses X11 (XWayland), so they
# are recommended, not required.
gui_libs="libx11-6, libx11-xcb1, libxcursor1, libxi6, libxkbcommon0, libxkbcommon-x11-0, libgl1, libegl1"
wayland_libs="libwayland-client0, libwayland-cursor0, libwayland-egl1"

mkdir -p "$stage/DEBIAN"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: openMosixview developers <openmosixview@example.invalid>
Installed-Size: $installed_kb
Depends: $shlibs, $gui_libs, openssh-client
Recommends: $wayland_libs, openssh-server, criu (>= 4.1)
Suggests: tini, iproute2, xvfb
Section: admin
Priority: optional
Description: cluster administration suite in the spirit of openMosixview
 Every node of a Linux cluster at a glance (openmosixview), processes managed on
 any node (openmosixprocs), running processes moved between nodes with CRIU
 (openmosixmigmon: drag a process onto a penguin), and the cluster's history kept
 in SQLite by a collector (openmosixcollector) and browsed in openmosixanalyzer and
 openmosixhistory. The nodes are driven over SSH by a small agent (openmosix-agent);
 openmosix is the command line.
 .
 Nodes need only SSH access and this package (or just the agent binary). Process
 migration needs criu 4.1 or newer on the nodes: Debian 12's criu 3.17 fails on
 newer kernels (docs/install.md says how to get 4.1).
EOF
echo "/etc/default/openmosix" >"$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
  install -m 0755 "dist/debian/$s" "$stage/DEBIAN/$s"
done

# The same sources give the same package: dpkg-deb clamps file times to this.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
deb=$out/${package}_${version}_${arch}.deb
if [ "$profile" = release ]; then compress=(-Zxz); else compress=(-Zgzip -z1); fi
dpkg-deb --root-owner-group "${compress[@]}" --build "$stage" "$deb" >/dev/null

# The package holds what the desktop needs: a launcher per window program, the icon in
# every size, the AppStream entry.
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
expected=()
for f in assets/applications/*.desktop; do expected+=("./usr/share/applications/$(basename "$f")"); done
for f in assets/icons/hicolor/*/apps/*; do expected+=("./usr/share/icons/${f#assets/icons/}"); done
for f in assets/metainfo/*.metainfo.xml; do expected+=("./usr/share/metainfo/$(basename "$f")"); done
for f in "${expected[@]}"; do
  if ! grep -qxF "$f" <<<"$contents"; then
    echo "build-deb.sh: $deb lacks $f" >&2
    exit 1
  fi
done
echo "$deb"
