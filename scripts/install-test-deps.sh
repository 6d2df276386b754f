#!/usr/bin/env bash
# Installs the system packages the tests need. Idempotent: installs only what is missing.
# Run as root on Debian 12 (the CI machine and a developer's machine alike).
set -euo pipefail

# Debian package -> a file it installs (to tell whether it is there).
declare -A NEED=(
  [openssh-server]=/usr/sbin/sshd
  [openssh-client]=/usr/bin/ssh
  [iproute2]=/usr/sbin/ip
  [tini]=/usr/bin/tini
  [util-linux]=/usr/bin/unshare
  [procps]=/usr/bin/ps
  [python3-minimal]=/usr/bin/python3
  [strace]=/usr/bin/strace
  [xvfb]=/usr/bin/Xvfb
  [imagemagick]=/usr/bin/import
  [libxkbcommon-x11-0]=/usr/lib/x86_64-linux-gnu/libxkbcommon-x11.so.0
  [libgl1-mesa-dri]=/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so
  [libegl1]=/usr/lib/x86_64-linux-gnu/libEGL.so.1
  [prometheus]=/usr/bin/prometheus  # promtool too; the collector metrics and Prometheus tests
  # The Debian package test (docgen/tests/deb_package.rs): building it, reading its man
  # pages, checking its units and completions, and the libraries the package depends on.
  [dpkg-dev]=/usr/bin/dpkg-shlibdeps
  [binutils]=/usr/bin/strip
  [man-db]=/usr/bin/man
  [systemd]=/usr/bin/systemd-analyze
  [zsh]=/usr/bin/zsh
  [fish]=/usr/bin/fish
  [x11-utils]=/usr/bin/xwininfo
  [libx11-xcb1]=/usr/lib/x86_64-linux-gnu/libX11-xcb.so.1
  [libxcursor1]=/usr/lib/x86_64-linux-gnu/libXcursor.so.1
  [libxi6]=/usr/lib/x86_64-linux-gnu/libXi.so.6
  [libgl1]=/usr/lib/x86_64-linux-gnu/libGL.so.1
  # The desktop's view of the suite (gui/tests/desktop_entries.rs, the package test):
  # validating the launchers and the AppStream entry, rendering the icon.
  [desktop-file-utils]=/usr/bin/desktop-file-validate
  [appstream]=/usr/bin/appstreamcli
  [librsvg2-bin]=/usr/bin/rsvg-convert
  [tmux]=/usr/bin/tmux  # the terminal tests (cli/tests/terminal.rs): send-keys, capture-pane
  [gcc]=/usr/bin/gcc  # the provisioning test builds a program whose library is missing
  # The real pointer (migmon/tests/pointer.rs, procs/tests/pointer.rs): X mouse and keys.
  [xdotool]=/usr/bin/xdotool
  # Every window under a real Wayland compositor (view/tests/wayland.rs): weston's
  # headless backend and its screenshooter.
  [weston]=/usr/bin/weston
)
missing=()
for pkg in "${!NEED[@]}"; do
  [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# sshd refuses to start without its privilege-separation folder.
mkdir -p /run/sshd
# Process migration needs criu >= 4.1 (Debian 12's 3.17 fails on newer kernels).
"$(dirname "$0")/install-criu.sh"
