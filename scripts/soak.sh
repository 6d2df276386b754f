#!/usr/bin/env bash
# The soak of docs/migration.md: `scripts/soak.sh [MINUTES]` (default 2) builds the suite
# and runs openmosix-soak on a 4-node testbed (as root): a dozen counting jobs, the
# balancer, random manual migrations, killed clients, agent kill -9s, sshd stops and
# collector kill -9s; exits 1 if a job ever ran twice, stood still for 30 s, or the
# history failed its integrity check. .ci/run runs it for 2 minutes (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/soak.sh must run as root: it builds a testbed of network namespaces" >&2
  exit 1
fi
cargo build --workspace --bins
exec target/debug/openmosix-soak "${1:-2}"
