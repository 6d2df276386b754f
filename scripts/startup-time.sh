#!/usr/bin/env bash
# Start-up of the main window at scale (docs/benchmarks.md, "At scale"): for each node
# count of NODES, a testbed of that many nodes and an X server (Xvfb) of its own; each run
# starts `openmosixview --cluster …` with OPENMOSIX_FRAME_LOG (one line per frame it builds:
# the time, how many lamps it drew lit, the pointer; gui/src/framelog.rs) and, while it
# starts, moves the X pointer over the window every 100 ms (xdotool, each move to a place of
# its own). scripts/startup-report.py then reads both: time to the first frame, to the first
# frame with every lamp lit, and per pointer move the time until the first frame that took
# it in (input-to-frame latency; moves sent before the first frame do not count). Must run
# as root (the testbed is made of network namespaces).
#
#   NODES="20 100 250" RUNS=3 BIN=target/release scripts/startup-time.sh
#
# Environment (defaults in brackets): NODES [20], RUNS [3], NAME [scst] and NET [163] of
# the testbed, DISPLAY_NO [77], BIN [target/debug], GIVE_UP [90] (s), CSV [empty] (a file
# one row per run is appended to: nodes,run,first_frame_ms,lamps_ms,moves,p50_ms,p95_ms,
# max_ms,load1), KEEP [empty] (a folder the frame logs and pointer logs are kept in),
# CPU [empty] (1: after each run, the CPU every command took from the start to the end of
# the run, by scripts/cpu-by-command.py), FRESH [empty] (1: a testbed built anew for every
# run, so no agent has kept criu's checks, criu-check.json, from a run before: the first
# start of a new cluster; else one testbed per node count, whose later runs find them kept).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/startup-time.sh must run as root: it builds a testbed of network namespaces" >&2
  exit 1
fi
NODE_COUNTS=${NODES:-20} RUNS=${RUNS:-3} NAME=${NAME:-scst} NET=${NET:-163}
DISPLAY_NO=${DISPLAY_NO:-77} BIN=${BIN:-target/debug} GIVE_UP=${GIVE_UP:-90}
CSV=${CSV:-} KEEP=${KEEP:-} CPU=${CPU:-} FRESH=${FRESH:-}
work=$(mktemp -d)
# shellcheck source=scripts/lib/testbed-window.sh
. scripts/lib/testbed-window.sh

xvfb= pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
  kill_masters
  "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_xvfb

for nodes in $NODE_COUNTS; do
  [ -n "$FRESH" ] || cluster=$("$BIN/openmosix-testbed" up "$nodes" --name "$NAME" --net "$NET")
  for run in $(seq "$RUNS"); do
    kill_masters
    if [ -n "$FRESH" ]; then
      "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null
      cluster=$("$BIN/openmosix-testbed" up "$nodes" --name "$NAME" --net "$NET")
    fi
    sleep 2
    frames="$work/frames-$nodes-$run" moves="$work/moves-$nodes-$run"
    : >"$frames"
    : >"$moves"
    xdotool mousemove 5 1000
    rm -rf "$work/home"
    mkdir -p "$work/home"
    [ -z "$CPU" ] || python3 scripts/cpu-by-command.py >"$work/cpu-before"
    t0=$(date +%s%N)
    HOME="$work/home" XDG_STATE_HOME="$work/home/state" XDG_CONFIG_HOME="$work/home/config" \
      OPENMOSIX_FRAME_LOG="$frames" "$BIN/openmosixview" --cluster "$cluster" >"$work/window.log" 2>&1 &
    pid=$!
    k=0
    # Until a frame shows every lamp lit (and one more second), or GIVE_UP.
    lit=
    while :; do
      now=$(date +%s%N)
      [ $(((now - t0) / 1000000000)) -lt "$GIVE_UP" ] || break
      if [ -z "$lit" ] && awk -v n="$nodes" '$2 == n && $3 == n {f = 1} END {exit !f}' "$frames"; then
        lit=$now
      fi
      [ -z "$lit" ] || [ $(((now - lit) / 1000000)) -lt 1000 ] || break
      x=$((100 + (k * 37) % 800)) y=$((100 + (k * 17) % 350))
      xdotool mousemove "$x" "$y"
      echo "$now $x $y" >>"$moves"
      k=$((k + 1))
      sleep 0.1
    done
    [ -z "$CPU" ] || python3 scripts/cpu-by-command.py "$work/cpu-before" >&2
    # A window that ended by itself is said, not fatal (set -e): the run's row shows it.
    if ! kill "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null && status=0 || status=$?
      echo "the window (pid $pid) had ended by itself (exit status $status); its last words:" >&2
      tail -n 20 "$work/window.log" >&2
    fi
    wait "$pid" 2>/dev/null || true
    pid=
    load=$(cut -d' ' -f1 /proc/loadavg)
    row=$(python3 scripts/startup-report.py "$t0" "$nodes" "$frames" "$moves")
    echo "$nodes nodes, run $run: $row (load $load)"
    [ -z "$CSV" ] || echo "$nodes,$run,$row,$load" >>"$CSV"
    if [ -n "$KEEP" ]; then
      mkdir -p "$KEEP"
      cp "$frames" "$moves" "$KEEP/"
    fi
  done
  kill_masters
  "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null
done
