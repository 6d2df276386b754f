#!/usr/bin/env python3
"""CPU time spent so far, summed by command name, over every live process of the machine
(docs/benchmarks.md, "Start-up of the main window": where a start-up's CPU goes).

    scripts/cpu-by-command.py > before; …; scripts/cpu-by-command.py before [ROWS]

Per process it counts its own time (utime + stime) and its reaped children's (cutime +
cstime), so a process that has ended still counts, under the name of the parent that
waited for it: the `ssh -f` parent that did a master's handshake counts under the
program that started it, an sshd's pre-authentication child under that connection's
sshd. Processes that ended between two snapshots and whose parent ended too are lost.
With a file of an earlier snapshot, prints the difference. Output: name, processes,
CPU seconds, own, children's; by CPU, largest first, the first ROWS (default 12).
"""

import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def snapshot():
    rows = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        own = (int(fields[11]) + int(fields[12])) / TICK
        kids = (int(fields[13]) + int(fields[14])) / TICK
        rows[pid] = (name, own, kids)
    return rows


def by_name(rows):
    out = {}
    for name, own, kids in rows.values():
        n, o, k = out.get(name, (0, 0.0, 0.0))
        out[name] = (n + 1, o + own, k + kids)
    return out


def main():
    now = snapshot()
    if len(sys.argv) > 1:
        before = {}
        with open(sys.argv[1]) as f:
            for line in f:
                pid, name, own, kids = line.split("\t")
                before[pid] = (name, float(own), float(kids))
        # A process also present before counts only its time since.
        diff = {}
        for pid, (name, own, kids) in now.items():
            b = before.get(pid)
            if b and b[0] == name:
                diff[pid] = (name, own - b[1], kids - b[2])
            else:
                diff[pid] = (name, own, kids)
        totals = by_name(diff)
        rows = int(sys.argv[2]) if len(sys.argv) > 2 else 12
        ranked = sorted(totals.items(), key=lambda t: -(t[1][1] + t[1][2]))
        for name, (n, o, k) in ranked[:rows]:
            print(f"{name}\t{n}\t{o + k:.2f}\t{o:.2f}\t{k:.2f}")
    else:
        for pid, (name, own, kids) in now.items():
            print(f"{pid}\t{name}\t{own}\t{kids}")


if __name__ == "__main__":
    main()
