"""Run N approved changes to merge in virtual time: N = 1,000 vs 250.

The real Scheduler on the unit-test harness (the gate pipeline of
tests/unit/core/layouts.py: window 20, linear growth, no ceiling unless the
layout sets one). All N changes are approved at once; then, round by round,
every running build succeeds and the scheduler settles, until the queue is
empty; then the same through the gate simulator (gatekeeper.sim.gate: build
durations vary, 0 % and 10 % bad changes). Baseline, same run: N = 250. Prints wall time, the core's item visits
(``ctx.ops``) and Door mutations per merged change, and the ratios (4x means
a constant cost per merged change).

Each runs without a window ceiling (as before) and with ``--ceiling``.

    .venv/bin/python bench/gate_scale.py [--small 250] [--big 1000] [--ceiling 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.sim.gate.run import simulate
from gatekeeper.sim.gate.workload import Duration, Workload
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout
from tests.unit.core.test_scale import run_gate


def measure(n: int, ceiling: int = 0) -> tuple[float, int, int]:
    Harness.door_count = lambda self: self.sched.door.count  # type: ignore[attr-defined]
    Harness.check_tail = False  # the tests check it; it is not the core's cost
    t0 = time.perf_counter()
    ops, muts, h = run_gate(n, ceiling=ceiling)
    took = time.perf_counter() - t0
    assert len(h.merged) == n
    return took, ops, muts


def simulated(n: int, bad: float, ceiling: int = 0) -> tuple[float, int]:
    """The gate simulator (real core, virtual clock): a backlog of ``n``."""
    pipeline = {"window": 20, "window-floor": 3, "window-increase-type": "linear",
                "window-increase-factor": 1, "window-decrease-type": "exponential",
                "window-decrease-factor": 2}
    if ceiling:
        pipeline["window-ceiling"] = ceiling
    wl = Workload(name=f"backlog {n}", backlog=n, bad=bad, jobs=("test",),
                  duration=Duration(30.0, 0.3), nodes=0, pipeline=pipeline)
    t0 = time.perf_counter()
    res = simulate(wl, seed=1)
    return time.perf_counter() - t0, res.merged


def best_of(fn, *args, runs: int = 3):  # type: ignore[no-untyped-def]
    """The fastest of ``runs`` runs (its first field is the time): the machine
    is shared, and a slow run says more about the neighbours than the code."""
    return min((fn(*args) for _ in range(runs)), key=lambda r: r[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=250)
    ap.add_argument("--big", type=int, default=1000)
    ap.add_argument("--ceiling", type=int, default=40, help="window-ceiling of the second run")
    args = ap.parse_args()
    assert "window: 20" in layout(window=20)
    k = args.big / args.small
    for ceiling in (0, args.ceiling):
        small, big = best_of(measure, args.small, ceiling), \
            best_of(measure, args.big, ceiling)
        print(f"harness, window-ceiling {ceiling or 'none'}")
        print(f"{'N':>6} {'seconds':>8} {'ops/change':>11} {'mutations/change':>17}")
        for n, (t, ops, muts) in ((args.small, small), (args.big, big)):
            print(f"{n:6d} {t:8.2f} {ops / n:11.1f} {muts / n:17.1f}")
        print(f"ratio {args.big} vs {args.small} ({k:.0f}x the changes): "
              f"{big[0] / small[0]:.1f}x time, {big[1] / small[1]:.1f}x ops, "
              f"{big[2] / small[2]:.1f}x mutations")
    for ceiling in (0, args.ceiling):
        for bad in (0.0, 0.1):
            (ts, ms), (tb, mb) = best_of(simulated, args.small, bad, ceiling), \
                best_of(simulated, args.big, bad, ceiling)
            print(f"simulator, window-ceiling {ceiling or 'none'}, {bad:.0%} bad: N={args.small} "
                  f"{ts:.2f} s ({ms} merged), N={args.big} {tb:.2f} s ({mb} merged): "
                  f"{tb / ts:.1f}x time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
