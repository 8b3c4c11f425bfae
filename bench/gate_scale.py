"""Run N approved changes to merge in virtual time: N = 1,000 vs 250.

The real Scheduler on the unit-test harness (the gate pipeline of
tests/unit/core/layouts.py: window 20, linear growth, no ceiling unless the
layout sets one). All N changes are approved at once; then, round by round,
every running build succeeds and the scheduler settles, until the queue is
empty; then the same through the gate simulator (gatekeeper.sim.gate: build
durations vary, 0 % and 10 % bad changes). Baseline, same run: N = 250. Prints wall time, the core's item visits
(``ctx.ops``) and Door mutations per merged change, and the ratios (4x means
a constant cost per merged change). Each row's time ratio is the median of
interleaved small/big pairs: one run is 0.1-1 s, where this machine's
neighbours move a single pair by a third.

Each runs without a window ceiling (as before) and with ``--ceiling``.

``--instructions`` counts instead the CPU instructions of one run of each
size under valgrind (cachegrind, no cache simulation; the interpreter's
start-up, measured alone, is subtracted): a figure neighbours cannot move,
about ten minutes for the six rows.

    .venv/bin/python bench/gate_scale.py [--small 250] [--big 1000] [--ceiling 40]
    .venv/bin/python bench/gate_scale.py --instructions
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.scheduler import Scheduler
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


def simulated(n: int, bad: float, ceiling: int = 0) -> tuple[float, int, int, int]:
    """The gate simulator (real core, virtual clock): a backlog of ``n``.
    Returns the time, the changes merged, the core's item visits and Door
    mutations."""
    pipeline = {"window": 20, "window-floor": 3, "window-increase-type": "linear",
                "window-increase-factor": 1, "window-decrease-type": "exponential",
                "window-decrease-factor": 2}
    if ceiling:
        pipeline["window-ceiling"] = ceiling
    wl = Workload(name=f"backlog {n}", backlog=n, bad=bad, jobs=("test",),
                  duration=Duration(30.0, 0.3), nodes=0, pipeline=pipeline)
    seen: list[Scheduler] = []
    t0 = time.perf_counter()
    res = simulate(wl, seed=1, after_turn=lambda s: seen or seen.append(s))
    took = time.perf_counter() - t0
    return took, res.merged, seen[0].engine.ctx.ops, seen[0].door.count


def pairs(fn, small: tuple, big: tuple, runs: int):  # type: ignore[no-untyped-def,type-arg]
    """``runs`` small/big pairs, interleaved so that a noisy neighbour hits
    both sizes alike; each run starts from a collected heap. Returns the
    small and big runs of the pair with the median ratio, and the ratios."""
    done = []
    for _ in range(runs):
        gc.collect()
        a = fn(*small)
        gc.collect()
        b = fn(*big)
        done.append((b[0] / a[0], a, b))
    done.sort(key=lambda r: r[0])
    ratios = [r[0] for r in done]
    _, a, b = done[len(done) // 2]
    return a, b, ratios


def spread(ratios: list[float]) -> str:
    return f"median {ratios[len(ratios) // 2]:.1f}x (pairs {ratios[0]:.1f}-{ratios[-1]:.1f}x)"


ROWS = [("harness", 0.0), ("simulator", 0.0), ("simulator", 0.1)]


def one(kind: str, n: int, bad: float, ceiling: int) -> None:
    """A single run, for valgrind to count (``n`` 0: the start-up alone)."""
    if n and kind == "harness":
        measure(n, ceiling)
    elif n:
        simulated(n, bad, ceiling)


def instructions(kind: str, n: int, bad: float, ceiling: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--one", kind, str(n), str(bad), str(ceiling)],
        capture_output=True, text=True, check=True).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def count_instructions(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt install valgrind)")
    base = instructions("simulator", 0, 0.0, 0)
    print(f"start-up alone: {base / 1e6:.0f} M instructions (subtracted)")
    print(f"{'':10} {'window-ceiling':>14} {'bad':>4} {'N=' + str(args.small):>10} "
          f"{'N=' + str(args.big):>10} {'ratio':>6}")
    for ceiling in (0, args.ceiling):
        for kind, bad in ROWS:
            a, b = (instructions(kind, n, bad, ceiling) - base for n in (args.small, args.big))
            print(f"{kind:10} {ceiling or 'none':>14} {bad:4.0%} {a / 1e6:9.0f}M {b / 1e6:9.0f}M "
                  f"{b / a:5.2f}x")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        kind, n, bad, ceiling = sys.argv[2:6]
        one(kind, int(n), float(bad), int(ceiling))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=250)
    ap.add_argument("--big", type=int, default=1000)
    ap.add_argument("--ceiling", type=int, default=40, help="window-ceiling of the second run")
    ap.add_argument("--runs", type=int, default=7, help="small/big pairs per row")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under valgrind instead of timing")
    args = ap.parse_args()
    assert "window: 20" in layout(window=20)
    if args.instructions:
        return count_instructions(args)
    k = args.big / args.small
    print(f"{args.big} vs {args.small} changes ({k:.0f}x): the time ratio is the median of "
          f"{args.runs} interleaved pairs; visits and mutations are counted")
    for ceiling in (0, args.ceiling):
        small, big, ratios = pairs(measure, (args.small, ceiling), (args.big, ceiling), args.runs)
        print(f"harness, window-ceiling {ceiling or 'none'}")
        print(f"{'N':>6} {'seconds':>8} {'ops/change':>11} {'mutations/change':>17}")
        for n, (t, ops, muts) in ((args.small, small), (args.big, big)):
            print(f"{n:6d} {t:8.2f} {ops / n:11.1f} {muts / n:17.1f}")
        print(f"ratio: {spread(ratios)} time, {big[1] / small[1]:.1f}x ops, "
              f"{big[2] / small[2]:.1f}x mutations")
    print(f"simulator {'':24} {'N':>5} {'seconds':>8} {'merged':>7} {'ops/change':>11} "
          f"{'mutations/change':>17}")
    for ceiling in (0, args.ceiling):
        for bad in (0.0, 0.1):
            a, b, ratios = pairs(simulated, (args.small, bad, ceiling),
                                 (args.big, bad, ceiling), args.runs)
            what = f"window-ceiling {ceiling or 'none'}, {bad:.0%} bad"
            for n, (t, merged, ops, muts) in ((args.small, a), (args.big, b)):
                print(f"simulator {what:24} {n:5d} {t:8.2f} {merged:7d} {ops / n:11.1f} "
                      f"{muts / n:17.1f}")
            print(f"  ratio: {spread(ratios)} time, {b[2] / a[2]:.1f}x ops, "
                  f"{b[3] / a[3]:.1f}x mutations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
