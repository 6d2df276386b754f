#!/usr/bin/env python3
"""Reads what scripts/startup-time.sh recorded of one start of openmosixview and prints
one CSV row: first_frame_ms,lamps_ms,moves,p50_ms,p95_ms,max_ms.

usage: startup-report.py T0_NS NODES FRAME_LOG MOVE_LOG

FRAME_LOG: the window's frames (gui/src/framelog.rs: UNIX_NS UP TOTAL X Y EVENTS).
MOVE_LOG: the pointer moves (UNIX_NS X Y, taken just before xdotool was started).
A move's latency is the time from it to the first frame built after it whose pointer is
at that place or at the place of a later move (moves that come while a frame is being
drawn are taken in together). Moves before the first frame are left out; a move no frame
took in counts as the time to the end of the log (and is named on stderr)."""
import sys


def main():
    t0, nodes, frame_log, move_log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    frames = []
    for line in open(frame_log):
        f = line.split()
        if len(f) < 6:
            continue
        pos = None if f[3] == "-" else (int(f[3]), int(f[4]))
        frames.append((int(f[0]), int(f[1]), int(f[2]), pos))
    moves = [tuple(int(v) for v in line.split()) for line in open(move_log) if line.strip()]
    if not frames:
        print("nan,nan,0,nan,nan,nan")
        return
    first = frames[0][0]
    lit = next((t for t, up, total, _ in frames if up == nodes and total == nodes), None)
    lat = []
    for k, (t, x, y) in enumerate(moves):
        if t < first:
            continue
        later = {(mx, my) for _, mx, my in moves[k:]}
        hit = next((ft for ft, _, _, pos in frames if ft >= t and pos in later), None)
        if hit is None:
            print(f"move {k} to {x},{y} never taken in", file=sys.stderr)
            hit = frames[-1][0]
        lat.append((hit - t) / 1e6)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))] if lat else float("nan")

    ms = lambda t: f"{(t - t0) / 1e6:.0f}" if t is not None else "nan"
    print(f"{ms(first)},{ms(lit)},{len(lat)},{pct(0.5):.0f},{pct(0.95):.0f},{pct(1.0):.0f}")


main()
