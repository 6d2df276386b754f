#!/usr/bin/env bash
# Provides a working criu >= 4.1 (process migration) on Debian 12 without touching the
# host's libraries: Debian 12's criu 3.17 fails on newer kernels ("Unexpected rt vDSO area
# bounds"), so criu 4.1 and its libraries are taken from Debian 13 (trixie) — through a
# private apt configuration that never enters the system's sources — unpacked into
# $CRIU_PREFIX, and run through their own dynamic loader by a wrapper on PATH.
# Idempotent: does nothing when `criu check` already passes with criu >= 4.1.
# Run as root. Facts behind it: shared/notes/criu.md of the project.
set -euo pipefail

PREFIX=${CRIU_PREFIX:-/usr/local/lib/openmosix/criu}
WRAPPER=${CRIU_WRAPPER:-/usr/local/sbin/criu}

criu_ok() {
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p') || return 1
  [ -n "$v" ] || return 1
  # 4.1 or newer
  [ "$(printf '%s\n4.1\n' "$v" | sort -V | head -n1)" = "4.1" ] || return 1
  "$1" check >/dev/null 2>&1
}

if command -v criu >/dev/null 2>&1 && criu_ok "$(command -v criu)"; then
  echo "criu: $(criu --version | head -n1) works" >&2
  exit 0
fi

# The Debian archive this machine already uses, from its own apt sources.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "install-criu: cannot find the Debian archive in /etc/apt" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache::Archives=$work/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Get::List-Cleanup=false"
  -o "APT::Sandbox::User=root"
)
apt-get -qq "${apt_private[@]}" update
packages=(
  criu libcompel1 libc6 libprotobuf-c1 libnl-3-200 libnet1 libgnutls30t64 libnftables1
  libbsd0 libuuid1 libdrm2 libmnl0 libnftnl11 libxtables12 libjansson4 libgmp10
  libnettle8t64 libhogweed6t64 libp11-kit0 libtasn1-6 libunistring5 libidn2-0 libffi8 libmd0
  libcap2 libzstd1 libgcc-s1 libedit2 libtinfo6 libselinux1 libpcre2-8-0 libsystemd0
  liblzma5 liblz4-1 libaio1t64
)
(cd "$work/debs" && apt-get -qq "${apt_private[@]}" download "${packages[@]}")

rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$PREFIX.new"
done
rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"

mkdir -p "$(dirname "$WRAPPER")"
cat > "$WRAPPER.new" <<WRAP
#!/bin/sh
# criu from Debian 13, run with its own libraries (written by scripts/install-criu.sh)
lib=$PREFIX/usr/lib/x86_64-linux-gnu
exec "\$lib/ld-linux-x86-64.so.2" --library-path "\$lib" $PREFIX/usr/sbin/criu "\$@"
WRAP
chmod 0755 "$WRAPPER.new"
mv "$WRAPPER.new" "$WRAPPER"

if ! criu_ok "$WRAPPER"; then
  echo "install-criu: the installed criu does not pass 'criu check':" >&2
  "$WRAPPER" check >&2 || true
  exit 1
fi
echo "criu: $("$WRAPPER" --version | head -n1) installed at $WRAPPER" >&2
