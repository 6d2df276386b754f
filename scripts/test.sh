#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test.
# Needs root (the testbed builds network and PID namespaces). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh must run as root: the tests build a testbed of network namespaces" >&2
  exit 1
fi
scripts/install-test-deps.sh

# A one-shot build has no use for incremental caches, and they are a third of the disk a
# build takes; say how much room there is, as a build that runs out fails far from the cause.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
df -h . >&2

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Leftovers of an interrupted run would collide with the tests' testbeds.
cargo build --workspace --bins
target/debug/openmosix-testbed down --all || true

status=0
cargo test --workspace --no-fail-fast || status=$?
# The short form of the soak (docs/migration.md; `scripts/soak.sh 30` is the long one).
target/debug/openmosix-soak 2 || status=$?
target/debug/openmosix-testbed down --all || true
exit "$status"
