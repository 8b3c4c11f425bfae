"""Gate strategies vs Zuul-classic on the reference workloads of issue 12.

For each workload in bench/workloads/ (a), (b), (c) — and (c) with per-job
flakes, the harsher variant — every strategy runs the same seeds (the same
arrivals and fates) in the simulator (the real core in virtual time), and the
table shows the means and the ratio of merges/h and node-minutes per merge
to Zuul-classic measured in the same run. Also: how long a simulated day of
(c) takes.

    .venv/bin/python bench/gate_strategies.py [--seeds 20] [--seeds-a 200] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.sim.gate.run import Summary, build_layout, simulate, summarize
from gatekeeper.sim.gate.table import COLUMNS, row
from gatekeeper.sim.gate.workload import Workload, load_workload

HERE = Path(__file__).resolve().parent / "workloads"
# (label, strategy as the layout gives it)
STRATEGIES: list[tuple[str, Any]] = [
    ("zuul-classic", None),
    ("rerun", "rerun"),
    ("evidence", "evidence"),
    ("sized", "sized"),
    ("evidence-sized", "evidence-sized"),
]


def run(wl: Workload, seeds: int, quick: bool) -> list[Summary]:
    out = []
    for label, strategy in STRATEGIES:
        if quick and label not in ("zuul-classic", "evidence-sized"):
            continue
        layout = build_layout(wl, strategy)
        out.append(summarize(label, [simulate(wl, s, layout) for s in range(seeds)]))
    return out


def table(title: str, rows: list[Summary]) -> str:
    base = rows[0]
    cols = COLUMNS + ("merges/h ×", "node-min/merge ×")
    lines = [f"**{title}**", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for s in rows:
        ratios = (f"{s.merges_per_hour / base.merges_per_hour:.2f}",
                  f"{s.node_minutes_per_merge / base.node_minutes_per_merge:.2f}")
        lines.append("| " + " | ".join(row(s) + ratios) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds for (b) and (c)")
    ap.add_argument("--seeds-a", type=int, default=200,
                    help="seeds for (a) (200 changes only: a seed's merges/h varies a lot)")
    ap.add_argument("--quick", action="store_true", help="only zuul-classic and evidence-sized")
    args = ap.parse_args()
    a = load_workload(str(HERE / "a-backlog.yaml"))
    b = load_workload(str(HERE / "b-steady.yaml"))
    c = load_workload(str(HERE / "c-openstack-2013.yaml"))
    c_job = dataclasses.replace(c, name="(c) per-job flakes", flake_per="job")
    for wl, seeds in ((a, args.seeds_a), (b, args.seeds), (c, args.seeds), (c_job, args.seeds)):
        t = time.perf_counter()
        rows = run(wl, seeds, args.quick)
        print(table(f"{wl.name}: mean of {seeds} seeds ({time.perf_counter() - t:.0f} s)", rows))
        print(flush=True)
    layout = build_layout(c)
    t = time.perf_counter()
    for seed in range(5):
        simulate(c, seed, layout, stop_after_h=24.0)
    day = (time.perf_counter() - t) / 5
    t = time.perf_counter()
    r = simulate(c, 0, layout)
    whole = time.perf_counter() - t
    print(f"speed: a simulated day of (c) (zuul-classic, first 24 h): {day:.2f} s; "
          f"the whole run ({r.makespan_h:.0f} h): {whole:.2f} s = {whole * 24 / r.makespan_h:.3f} s "
          "per simulated day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
