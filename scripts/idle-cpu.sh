#!/usr/bin/env bash
# What the window programs cost the workstation while nothing happens (docs/benchmarks.md,
# "Workstation CPU, live nodes"): brings up a testbed of NODES idle nodes, starts an X
# server (Xvfb) of its own, and runs each window program RUNS times on it; each run waits
# WARMUP s (connections up, first lists in), then reads the program's CPU time (utime +
# stime of /proc/PID/stat) before and after SECONDS s. Prints one line per run and the
# median per program, in ms of CPU and % of a core. Takes the testbed and Xvfb down at the
# end (also on Ctrl-C). Must run as root (the testbed is made of network namespaces).
#
#   scripts/idle-cpu.sh [PROGRAM…]        # default: openmosixview openmosixprocs openmosixmigmon
#
# Environment (defaults in brackets): NODES [20], MEASURE [30], WARMUP [10], RUNS [3],
# NAME [i16cpu] and NET [171] of the testbed, DISPLAY_NO [71] (Xvfb :DISPLAY_NO),
# BIN [target/debug] (where the programs, openmosix-testbed and openmosix-agent are; build
# them first: cargo build -p openmosix-testbed -p openmosix-agent -p openmosixview
# -p openmosixprocs -p openmosixmigmon --bins), SHOT [empty] (a folder: a screenshot of
# each program's last run goes there, taken with ImageMagick's `import -window root`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/idle-cpu.sh must run as root: it builds a testbed of network namespaces" >&2
  exit 1
fi
NODES=${NODES:-20} SECS=${MEASURE:-30} WARMUP=${WARMUP:-10} RUNS=${RUNS:-3}
NAME=${NAME:-i16cpu} NET=${NET:-171} DISPLAY_NO=${DISPLAY_NO:-71} BIN=${BIN:-target/debug}
SHOT=${SHOT:-}
programs=("$@")
[ ${#programs[@]} -gt 0 ] || programs=(openmosixview openmosixprocs openmosixmigmon)
tck=$(getconf CLK_TCK)

xvfb=
cleanup() {
  [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
  "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

cluster=$("$BIN/openmosix-testbed" up "$NODES" --name "$NAME" --net "$NET")
Xvfb ":$DISPLAY_NO" -screen 0 1280x1024x24 >/dev/null 2>&1 &
xvfb=$!
sleep 1
export DISPLAY=":$DISPLAY_NO"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for program in "${programs[@]}"; do
  results=()
  for run in $(seq "$RUNS"); do
    "$BIN/$program" --cluster "$cluster" >/dev/null 2>&1 &
    pid=$!
    sleep "$WARMUP"
    a=$(cpu_ticks "$pid")
    sleep "$SECS"
    b=$(cpu_ticks "$pid")
    if [ -n "$SHOT" ] && [ "$run" = "$RUNS" ]; then
      mkdir -p "$SHOT"
      import -window root "$SHOT/$program.png"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    ms=$(((b - a) * 1000 / tck))
    results+=("$ms")
    echo "$program run $run: $ms ms CPU in $SECS s ($((ms / SECS / 10)) % of a core)"
  done
  median=$(printf '%s\n' "${results[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  echo "$program: median $median ms CPU in $SECS s, $(awk "BEGIN {printf \"%.1f\", $median / $SECS / 10}") % of a core ($NODES nodes, $RUNS runs)"
done
