#!/usr/bin/env bash
# Installs the openMosixview suite: its programs, their man pages and bash/zsh/fish
# completions (generated from each program's own clap definitions), the systemd units
# (collector, discovery agent, balancer), /etc/default/openmosix, the documentation, and
# the desktop's view of the windows (assets/: launchers, icon, AppStream metainfo).
# scripts/build-deb.sh stages the Debian package with it. See docs/install.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [OPTIONS]

Builds the suite and installs it (as root for the default prefix).

  --prefix DIR      where programs, pages, documents, launchers and icons go [/usr/local]
  --destdir DIR     write everything under DIR instead of / (a staging tree for packages);
                    nothing on the machine is touched, systemd is not told
  --profile NAME    the cargo profile whose binaries to install: release or debug [release]
  --no-build        install the binaries already built in the target folder
  --strip           strip the installed binaries (smaller; no debug symbols)
  --sysconfdir DIR  where default/openmosix goes [/etc]
  --unitdir DIR     where the systemd units go [/etc/systemd/system; /lib/systemd/system
                    with --prefix /usr]
  --uninstall       remove what an install with the same options wrote (an edited
                    default/openmosix is kept)
  -h, --help        this text

After a live install, start the services you want, e.g.
  systemctl enable --now openmosixcollector
EOF
}

# The programs of the suite, each a binary of the workspace.
PROGRAMS=(openmosixview openmosixprocs openmosixmigmon openmosixanalyzer openmosixhistory
  openmosixcollector openmosix openmosix-agent openmosix-testbed)
UNITS=(openmosixcollector.service openmosix-discover.service openmosix-balance.service)

prefix=/usr/local
destdir=
profile=release
build=1
strip=0
sysconfdir=/etc
unitdir=
uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a folder}; shift 2 ;;
    --profile) profile=${2:?--profile needs release or debug}; shift 2 ;;
    --no-build) build=0; shift ;;
    --strip) strip=1; shift ;;
    --sysconfdir) sysconfdir=${2:?--sysconfdir needs a folder}; shift 2 ;;
    --unitdir) unitdir=${2:?--unitdir needs a folder}; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) profile_dir=release ;;
  debug|dev) profile=dev; profile_dir=debug ;;
  *) echo "install.sh: --profile is release or debug, not $profile" >&2; exit 2 ;;
esac
case "$prefix" in
  /*) ;;
  *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;;
esac
if [ -z "$unitdir" ]; then
  if [ "$prefix" = /usr ]; then unitdir=/lib/systemd/system; else unitdir=/etc/systemd/system; fi
fi
if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir=$(cd "$destdir" && pwd)
fi

cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}

bindir=$prefix/bin
mandir=$prefix/share/man/man1
docdir=$prefix/share/doc/openmosixview
# Helpers for the nodes: install-criu.sh (criu 4.1 on Debian 12).
datadir=$prefix/share/openmosixview
bashdir=$prefix/share/bash-completion/completions
fishdir=$prefix/share/fish/vendor_completions.d
# Debian's zsh searches vendor-completions for packages, site-functions under /usr/local.
if [ "$prefix" = /usr ]; then zshdir=$prefix/share/zsh/vendor-completions; else zshdir=$prefix/share/zsh/site-functions; fi
defaults=$sysconfdir/default/openmosix
# The launchers, the icon in every size, the AppStream entry (assets/).
appsdir=$prefix/share/applications
icondir=$prefix/share/icons/hicolor
metainfodir=$prefix/share/metainfo
ICONS=$(cd assets/icons/hicolor && echo */apps/openmosixview.*)

# Whether this install talks to the running systemd (a live install on a systemd host).
live_systemd() {
  [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

# A live install refreshes the icon theme's cache where the theme keeps one (dpkg's
# triggers do it for the .deb). Desktops watch the launchers' folder themselves, and the
# launchers name no MIME types, so update-desktop-database has nothing to do.
refresh_desktop() {
  [ -z "$destdir" ] || return 0
  if command -v gtk-update-icon-cache >/dev/null && [ -e "$icondir/index.theme" ]; then
    gtk-update-icon-cache -q -t "$icondir" 2>/dev/null || true
  fi
}

if [ "$uninstall" = 1 ]; then
  if live_systemd; then
    for u in "${UNITS[@]}"; do systemctl disable --now "$u" 2>/dev/null || true; done
  fi
  for p in "${PROGRAMS[@]}"; do
    rm -f "$destdir$bindir/$p" "$destdir$bashdir/$p" "$destdir$zshdir/_$p" "$destdir$fishdir/$p.fish"
    rm -f "$destdir$mandir/$p".1.gz "$destdir$mandir/$p"-*.1.gz
  done
  for u in "${UNITS[@]}"; do rm -f "$destdir$unitdir/$u"; done
  rm -rf "$destdir$docdir" "$destdir$datadir"
  for f in assets/applications/*.desktop; do rm -f "$destdir$appsdir/$(basename "$f")"; done
  for f in $ICONS; do rm -f "$destdir$icondir/$f"; done
  for f in assets/metainfo/*.metainfo.xml; do rm -f "$destdir$metainfodir/$(basename "$f")"; done
  refresh_desktop
  # The settings file goes only while it is the one this script wrote.
  if [ -f "$destdir$defaults" ] && cmp -s "$destdir$defaults" dist/default/openmosix; then
    rm -f "$destdir$defaults"
  elif [ -f "$destdir$defaults" ]; then
    echo "kept $destdir$defaults (edited)"
  fi
  if live_systemd; then systemctl daemon-reload; fi
  echo "openMosixview suite removed from $destdir$prefix"
  exit 0
fi

if [ "$build" = 1 ]; then
  cargo build --profile "$profile" --workspace --bins
fi
for p in "${PROGRAMS[@]}"; do
  if [ ! -x "$target/$profile_dir/$p" ]; then
    echo "install.sh: $target/$profile_dir/$p is not built (run without --no-build)" >&2
    exit 1
  fi
done

# Pages and completions from the programs themselves (openmosix-docgen).
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
for p in "${PROGRAMS[@]}"; do
  "$target/$profile_dir/$p" --generate-docs "$gen" >/dev/null
done

install -d "$destdir$bindir" "$destdir$mandir" "$destdir$bashdir" "$destdir$zshdir" \
  "$destdir$fishdir" "$destdir$unitdir" "$destdir$docdir/screenshots" \
  "$destdir$sysconfdir/default"
for p in "${PROGRAMS[@]}"; do
  install -m 0755 "$target/$profile_dir/$p" "$destdir$bindir/$p"
  if [ "$strip" = 1 ]; then strip --strip-unneeded "$destdir$bindir/$p"; fi
  install -m 0644 "$gen/bash/$p" "$destdir$bashdir/$p"
  install -m 0644 "$gen/zsh/_$p" "$destdir$zshdir/_$p"
  install -m 0644 "$gen/fish/$p.fish" "$destdir$fishdir/$p.fish"
done
for page in "$gen"/man1/*.1; do
  # -n: no name or time stamp in the archive, so the package is reproducible.
  gzip -9n -c "$page" >"$destdir$mandir/$(basename "$page").gz"
  chmod 0644 "$destdir$mandir/$(basename "$page").gz"
done
for u in "${UNITS[@]}"; do
  sed -e "s|@BINDIR@|$bindir|g" -e "s|@SYSCONFDIR@|$sysconfdir|g" "dist/systemd/$u.in" \
    >"$destdir$unitdir/$u"
  chmod 0644 "$destdir$unitdir/$u"
done
# The admin's settings are never overwritten.
if [ ! -e "$destdir$defaults" ]; then
  install -m 0644 dist/default/openmosix "$destdir$defaults"
fi
install -m 0644 README.md docs/*.md "$destdir$docdir/"
install -D -m 0755 scripts/install-criu.sh "$destdir$datadir/install-criu.sh"
install -m 0644 docs/screenshots/*.png "$destdir$docdir/screenshots/"
install -d "$destdir$appsdir" "$destdir$metainfodir"
install -m 0644 assets/applications/*.desktop "$destdir$appsdir/"
install -m 0644 assets/metainfo/*.metainfo.xml "$destdir$metainfodir/"
for f in $ICONS; do install -D -m 0644 "assets/icons/hicolor/$f" "$destdir$icondir/$f"; done
refresh_desktop

if live_systemd; then
  systemctl daemon-reload
fi
# man's index covers the standard prefixes only.
if [ -z "$destdir" ] && { [ "$prefix" = /usr ] || [ "$prefix" = /usr/local ]; } && command -v mandb >/dev/null; then
  mandb -q 2>/dev/null || true
fi
echo "openMosixview suite installed in $destdir$prefix (units in $destdir$unitdir)"
