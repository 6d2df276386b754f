#!/usr/bin/env bash
# What the window programs and the collector cost the workstation while nothing happens
# (docs/benchmarks.md, "Workstation CPU, live nodes" and "At scale"): for each node count
# of NODES it brings up a testbed of that many idle nodes, starts an X server (Xvfb) of its
# own, and runs each program RUNS times; each run waits WARMUP s (connections up, first
# lists in), then reads the program's CPU time (utime + stime of /proc/PID/stat) and that
# of its ssh masters (the `ssh -M` processes naming the testbed's ssh config) before and
# after MEASURE s, and their resident memory (VmRSS) at the end. Prints one line per run
# and the median per program and node count, in % of a core and MiB, and appends the
# medians to CSV (if set). Takes the testbed and Xvfb down at the end (also on Ctrl-C).
# Must run as root (the testbed is made of network namespaces).
#
#   scripts/idle-cpu.sh [PROGRAM…]   # default: openmosixview openmosixprocs openmosixmigmon
#                                    # (openmosixcollector runs with --foreground)
#
# Environment (defaults in brackets): NODES [20] (node counts, e.g. "3 20 100 250"),
# MEASURE [30], WARMUP [10], RUNS [3], NAME [i16cpu] and NET [171] of the testbed,
# DISPLAY_NO [71] (Xvfb :DISPLAY_NO), BIN [target/debug] (where the programs,
# openmosix-testbed and openmosix-agent are; build them first: cargo build
# -p openmosix-testbed -p openmosix-agent -p openmosixview -p openmosixprocs
# -p openmosixmigmon -p openmosix-collector --bins), SHOT [empty] (a folder: a screenshot of
# each program's last run goes there, taken with ImageMagick's `import -window root`),
# CSV [empty] (a file the median rows are appended to:
# nodes,program,cpu_pct,rss_mib,masters,masters_cpu_pct,masters_rss_mib,load1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/idle-cpu.sh must run as root: it builds a testbed of network namespaces" >&2
  exit 1
fi
NODE_COUNTS=${NODES:-20} SECS=${MEASURE:-30} WARMUP=${WARMUP:-10} RUNS=${RUNS:-3}
NAME=${NAME:-i16cpu} NET=${NET:-171} DISPLAY_NO=${DISPLAY_NO:-71} BIN=${BIN:-target/debug}
SHOT=${SHOT:-} CSV=${CSV:-}
programs=("$@")
[ ${#programs[@]} -gt 0 ] || programs=(openmosixview openmosixprocs openmosixmigmon)
tck=$(getconf CLK_TCK)
work=$(mktemp -d)
# shellcheck source=scripts/lib/testbed-window.sh
. scripts/lib/testbed-window.sh

xvfb=
cleanup() {
  [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
  kill_masters
  "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks_of() { local s=0 p; for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done; echo "$s"; }
rss_kib() { local s=0 p r; for p in "$@"; do
  r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true); s=$((s + ${r:-0}))
done; echo "$s"; }
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

start_xvfb

for nodes in $NODE_COUNTS; do
  cluster=$("$BIN/openmosix-testbed" up "$nodes" --name "$NAME" --net "$NET")
  for program in "${programs[@]}"; do
    cpu=() rss=() mcpu=() mrss=() mn=()
    for run in $(seq "$RUNS"); do
      kill_masters
      args=(--cluster "$cluster")
      if [ "$program" = openmosixcollector ]; then
        args+=(--foreground --db "$work/history.db" --pid-file "$work/collector.pid")
      fi
      HOME="$work/home" XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config" \
        "$BIN/$program" "${args[@]}" >"$work/program.log" 2>&1 &
      pid=$!
      sleep "$WARMUP"
      ms=($(masters))
      a=$(cpu_ticks "$pid") ma=$(ticks_of "${ms[@]}")
      sleep "$SECS"
      b=$(cpu_ticks "$pid") mb=$(ticks_of "${ms[@]}")
      r=$(rss_kib "$pid") mr=$(rss_kib "${ms[@]}")
      if [ -n "$SHOT" ] && [ "$run" = "$RUNS" ] && [ "$program" != openmosixcollector ]; then
        mkdir -p "$SHOT"
        import -window root "$SHOT/$program-$nodes.png"
      fi
      if ! kill "$pid" 2>/dev/null; then
        echo "$program (pid $pid) had ended by itself; its last words:" >&2
        tail -n 20 "$work/program.log" >&2
      fi
      wait "$pid" 2>/dev/null || true
      rm -rf "$work/history"* "$work/collector.pid"
      pct=$(awk "BEGIN {printf \"%.1f\", ($b - $a) * 100 / $tck / $SECS}")
      mpct=$(awk "BEGIN {printf \"%.1f\", ($mb - $ma) * 100 / $tck / $SECS}")
      cpu+=("$pct") rss+=("$((r / 1024))") mcpu+=("$mpct") mrss+=("$((mr / 1024))") mn+=("${#ms[@]}")
      echo "$program, $nodes nodes, run $run: $pct % of a core, RSS $((r / 1024)) MiB;" \
        "${#ms[@]} ssh masters: $mpct %, RSS $((mr / 1024)) MiB (load $(cut -d' ' -f1 /proc/loadavg))"
    done
    row="$nodes,$program,$(printf '%s\n' "${cpu[@]}" | median),$(printf '%s\n' "${rss[@]}" | median)"
    row+=",$(printf '%s\n' "${mn[@]}" | median),$(printf '%s\n' "${mcpu[@]}" | median)"
    row+=",$(printf '%s\n' "${mrss[@]}" | median),$(cut -d' ' -f1 /proc/loadavg)"
    echo "median of $RUNS: $row"
    [ -z "$CSV" ] || echo "$row" >>"$CSV"
  done
  kill_masters
  "$BIN/openmosix-testbed" down --name "$NAME" >/dev/null
done
