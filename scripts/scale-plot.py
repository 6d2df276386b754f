#!/usr/bin/env python3
"""Draws docs/scale.svg from the rows scripts/idle-cpu.sh and scripts/startup-time.sh
append to their CSV files: left, each program's CPU (% of a core) against the number of
live nodes; right, the main window's start-up (first frame, every lamp lit, p95 of the
input-to-frame latency while it starts) against the number of nodes, medians of the runs.

usage: scale-plot.py IDLE_CSV STARTUP_CSV OUT_SVG"""
import statistics
import sys
from collections import defaultdict

W, H, PAD = 900, 380, 55
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]


def panel(x0, title, xs, series, ylabel, goals=()):
    """An SVG group: lines of `series` ({name: {x: y}}) over the categories `xs`."""
    w, h = W / 2 - PAD - 10, H - 2 * PAD
    ymax = max([y for s in series.values() for y in s.values()] + [g for g, _ in goals] + [1])
    ymax *= 1.15
    px = lambda i: x0 + PAD + (i + 0.5) * w / len(xs)
    py = lambda y: PAD + h - y / ymax * h
    out = [f'<text x="{x0 + PAD + w / 2}" y="25" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{x0 + PAD}" y="{PAD}" width="{w}" height="{h}" fill="none" stroke="#888"/>',
           f'<text x="{x0 + 14}" y="{PAD + h / 2}" transform="rotate(-90 {x0 + 14} {PAD + h / 2})" '
           f'text-anchor="middle" font-size="12">{ylabel}</text>',
           f'<text x="{x0 + PAD + w / 2}" y="{H - 12}" text-anchor="middle" font-size="12">live nodes</text>']
    for i, x in enumerate(xs):
        out.append(f'<text x="{px(i)}" y="{PAD + h + 16}" text-anchor="middle" font-size="11">{x}</text>')
    for k in range(5):
        y = ymax / 1.15 * k / 4
        out.append(f'<text x="{x0 + PAD - 4}" y="{py(y) + 4}" text-anchor="end" font-size="10">{y:.3g}</text>')
        out.append(f'<line x1="{x0 + PAD}" x2="{x0 + PAD + w}" y1="{py(y)}" y2="{py(y)}" stroke="#eee"/>')
    for g, label in goals:
        out.append(f'<line x1="{x0 + PAD}" x2="{x0 + PAD + w}" y1="{py(g)}" y2="{py(g)}" '
                   f'stroke="#999" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x0 + PAD + w - 4}" y="{py(g) - 3}" text-anchor="end" font-size="10" '
                   f'fill="#666">{label}</text>')
    for n, (name, s) in enumerate(series.items()):
        c = COLOURS[n % len(COLOURS)]
        pts = [(px(i), py(s[x])) for i, x in enumerate(xs) if x in s]
        out.append('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
            c, " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
        for a, b in pts:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>')
        out.append(f'<text x="{x0 + PAD + 8}" y="{PAD + 16 + 15 * n}" font-size="11" fill="{c}">{name}</text>')
    return "\n".join(out)


def main():
    idle, startup, out = sys.argv[1:4]
    cpu = defaultdict(dict)
    for line in open(idle):
        f = line.strip().split(",")
        if len(f) >= 3 and f[0].isdigit():
            cpu[f[1]][int(f[0])] = float(f[2])
    runs = defaultdict(lambda: defaultdict(list))
    for line in open(startup):
        f = line.strip().split(",")
        if len(f) >= 8 and f[0].isdigit():
            for name, v in (("first frame", f[2]), ("every lamp lit", f[3]), ("input→frame p95", f[6])):
                if v != "nan":
                    runs[name][int(f[0])].append(float(v) / 1000)
    start = {name: {n: statistics.median(v) for n, v in s.items()} for name, s in runs.items()}
    xs1 = sorted({n for s in cpu.values() for n in s})
    xs2 = sorted({n for s in start.values() for n in s})
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>',
           panel(0, "workstation CPU, idle cluster", xs1, cpu, "% of a core",
                 goals=((8, "goal ≤ 20 nodes: 8 %"), (15, "goal 250 nodes: 15 %"))),
           panel(W / 2, "openmosixview start-up", xs2, start, "seconds",
                 goals=((20, "goal: 20 s"),)),
           "</svg>"]
    open(out, "w").write("\n".join(svg) + "\n")


main()
