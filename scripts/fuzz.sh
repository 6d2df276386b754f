#!/usr/bin/env bash
# Fuzzing (issue #14, docs/fuzzing.md): runs each cargo-fuzz target of fuzz/ for SECONDS
# (default 600), one after the other at nice 19, and prints a line per target: seconds,
# executions, executions a second, libFuzzer's coverage (cov, ft), corpus size, result.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]      every target when none is named
#
# Needs the nightly toolchain (rustup); installs cargo-fuzz when it is missing. The
# checked-in seeds fuzz/corpus/TARGET/ are read, never written: new inputs go to
# fuzz/work/TARGET/ (ignored by git), crashes to fuzz/artifacts/TARGET/, logs to
# fuzz/logs/. With FUZZ_MERGE=1 the inputs that reach new edges are merged into the
# checked-in corpus afterwards. CI does not fuzz: it replays the corpora and
# fuzz/regressions/ on stable (fuzz-bodies/tests/replay.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
[ $# -gt 0 ] && shift
case $seconds in
  '' | *[!0-9]*) echo "scripts/fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac

nightly=$(rustup toolchain list | awk '/^nightly/ { print $1; exit }')
if [ -z "$nightly" ]; then
  echo "scripts/fuzz.sh needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo +"$nightly" fuzz --version >/dev/null 2>&1; then
  cargo +"$nightly" install cargo-fuzz --locked
fi

# Release code with debug assertions (overflow checks), no sanitizer: the code under test
# is safe Rust, and without ASan the fuzzer runs several times faster.
flags=(-O -a -s none --fuzz-dir fuzz)
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +"$nightly" fuzz list --fuzz-dir fuzz)
fi
nice -n 19 cargo +"$nightly" fuzz build "${flags[@]}"

mkdir -p fuzz/logs
# The /proc and image-stream targets write fixture files every execution: in memory
# (/dev/shm) when there is one, and removed at the end.
tmp_parent=fuzz/work
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp_parent=/dev/shm
mkdir -p "$tmp_parent"
TMPDIR=$(mktemp -d "$tmp_parent/openmosix-fuzz.XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
printf '%-20s %6s %12s %8s %6s %7s %6s  %s\n' target seconds executions exec/s cov ft corpus result
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  log=fuzz/logs/$t.log
  result=ok
  nice -n 19 cargo +"$nightly" fuzz run "${flags[@]}" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || { result="FAILED: see $log and fuzz/artifacts/$t/"; status=1; }
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
  printf '%-20s %6s %12s %8s %6s %7s %6s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    nice -n 19 cargo +"$nightly" fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" "fuzz/work/$t" -- \
      -merge=1 -use_counters=0 >>"$log" 2>&1 || true
  fi
done
exit "$status"
