#!/usr/bin/env bash
# How fast discovery notices a node that stops or starts (docs/discovery.md "Figures").
# As root, on a testbed built with `openmosix-testbed up 3 --discovery --name NAME`:
#   scripts/discovery-figures.sh NAME [RUNS]
# For each run: SIGKILL node 3's daemon and time until node 1's map drops it; start it
# again and time until node 1's map has it; SIGTERM it and time until node 1's map drops
# it. Prints every time and the medians (milliseconds). Each time includes starting
# `openmosix-testbed exec` (nsenter) and, for "started", the daemon's own start.
set -euo pipefail
name=${1:?testbed name}
runs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
testbed=${TESTBED:-$here/target/debug/openmosix-testbed}
state=/run/openmosix-testbed/$name
map1=$state/node1/state/discovery.json
map3=$state/node3/state/discovery.json

count() { grep -c '"id"' "$map1" 2>/dev/null || echo 0; }
now_ms() { date +%s%3N; }
wait_count() { # wait until node 1 hears $1 nodes; print the ms since $2
  local want=$1 t0=$2
  until [ "$(count)" = "$want" ]; do sleep 0.02; done
  echo $(( $(now_ms) - t0 ))
}
daemon_pid() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['pid'])" "$map3"; }
start3() {
  "$testbed" exec 3 --name "$name" -- "$state/bin/openmosix-agent" discover -i eth0 --id 3 \
    --state-dir "$state/node3/state" >/dev/null 2>&1
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

kill9=() ; join=() ; term=()
for _ in $(seq "$runs"); do
  [ "$(count)" = 3 ] || { echo "node 1 does not hear 3 nodes" >&2; exit 1; }
  pid=$(daemon_pid)
  t0=$(now_ms); "$testbed" exec 3 --name "$name" -- kill -KILL "$pid"
  kill9+=("$(wait_count 2 "$t0")")
  t0=$(now_ms); start3
  join+=("$(wait_count 3 "$t0")")
  pid=$(daemon_pid)
  t0=$(now_ms); "$testbed" exec 3 --name "$name" -- kill -TERM "$pid"
  term+=("$(wait_count 2 "$t0")")
  start3; wait_count 3 "$(now_ms)" >/dev/null
done
echo "killed (no goodbye) -> gone: ${kill9[*]} ms; median $(printf '%s\n' "${kill9[@]}" | median)"
echo "started -> heard:           ${join[*]} ms; median $(printf '%s\n' "${join[@]}" | median)"
echo "stopped (goodbye) -> gone:  ${term[*]} ms; median $(printf '%s\n' "${term[@]}" | median)"
