"""One scheduler pass with nothing to do: a gate of 1,000 items vs 100.

The real Scheduler on the unit-test harness (in-memory source, launcher,
merger; virtual clock), one gate queue with window 0 (unlimited): N approved
changes are enqueued, merged speculatively and all their builds are running.
Then ``engine.process()`` is timed with nothing new: every build is still
running, so nothing can act. Baseline, same run: the same pass over a
100-item gate. Prints the ratio (10x means the pass walks the whole queue). Then a turn
after one build event (a BuildProgress on the head's build; a BuildCompleted
of an item behind the head), 1,000 vs 100 items, with the dirty walk and
with the full walk (``Context.full_walk``: every item, as before per-item
dirty tracking) in the same run, with the items each turn visits.

    .venv/bin/python bench/pass_idle.py [--small 100] [--big 1000] [--passes 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.model.change import Approval
from gatekeeper.model.events import EventApproval, TriggerEvent
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def full_gate(n: int) -> Harness:
    h = Harness(layout(window=0))
    for _ in range(n):
        c = h.source.add("org/alone")
        h.source.update(c.number, approvals=[Approval("Code-Review", 2), Approval("Workflow", 1)])
        h.sched.add_trigger_event(TriggerEvent(
            "comment-added", project=c.project, branch=c.branch, change_number=c.number,
            patchset=1, approvals=(EventApproval("Workflow", 1, 0),)))
    h.settle()
    assert len(h.running()) == n, (len(h.running()), n)
    return h


def idle_pass(h: Harness, passes: int) -> tuple[float, int]:
    """Seconds per idle ``engine.process()`` (best of 5 batches) and ops per pass."""
    engine = h.engine
    before_ops = engine.ctx.ops
    count = h.sched.door.count
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(passes):
            engine.process()
        best = min(best, (time.perf_counter() - t0) / passes)
    assert h.sched.door.count == count, "an idle pass changed state"
    return best, (engine.ctx.ops - before_ops) // (5 * passes)


def progress_turn(h: Harness, passes: int) -> tuple[float, float]:
    """Seconds per turn after one BuildProgress on the head's build (one
    change passed the Door, so a pass runs), and items visited per turn."""
    from gatekeeper.model.events import BuildProgress
    build = h.running()[0].request.uuid
    best = float("inf")
    ops = h.engine.ctx.ops
    for _ in range(5):
        t0 = time.perf_counter()
        for k in range(passes):
            h.sched.add_result_event(BuildProgress(build, k + 1, passes + 1))
            h.sched.run_once()
        best = min(best, (time.perf_counter() - t0) / passes)
    return best, (h.engine.ctx.ops - ops) / (5 * passes)


def completed_turn(h: Harness, turns: int) -> tuple[float, float]:
    """Seconds of the quickest turn after one build of an item behind the head succeeds
    (it is done, waits for those ahead: nothing else changes), and items
    visited per turn; a different item each turn, from the middle back."""
    from gatekeeper.model.events import BuildCompleted
    running = h.running()
    builds = running[len(running) // 2:][:turns]
    ops = h.engine.ctx.ops
    best = float("inf")  # the quickest turn: load on the machine only adds
    for b in builds:
        b.state = "completed"
        t0 = time.perf_counter()
        h.sched.add_result_event(BuildCompleted(b.request.uuid, "SUCCESS"))
        h.sched.run_once()
        best = min(best, time.perf_counter() - t0)
    return best, (h.engine.ctx.ops - ops) / len(builds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--big", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=200)
    args = ap.parse_args()
    small, big = full_gate(args.small), full_gate(args.big)
    t_small, ops_small = idle_pass(small, args.passes)
    t_big, ops_big = idle_pass(big, args.passes)
    print(f"idle pass, gate window 0, every build running (best of 5 x {args.passes})")
    print(f"{'queue':>6} {'us/pass':>9} {'items visited':>14}")
    print(f"{args.small:6d} {t_small * 1e6:9.1f} {ops_small:14d}   (baseline)")
    print(f"{args.big:6d} {t_big * 1e6:9.1f} {ops_big:14d}")
    print(f"ratio {args.big} vs {args.small}: {t_big / t_small:.1f}x time "
          f"(queue {args.big / args.small:.0f}x longer)")
    print("a turn after one build event: the dirty walk vs the full walk "
          "(Context.full_walk, the walk before per-item dirty tracking), same run")
    print(f"{'event':>16} {'walk':>5} {'us @' + str(args.small):>10} {'us @' + str(args.big):>10} "
          f"{'ratio':>6} {'visits @' + str(args.small):>11} {'visits @' + str(args.big):>12}")
    turns = min(args.passes, args.small // 2)
    for name, fn, n in (("BuildProgress", progress_turn, args.passes),
                        ("BuildCompleted", completed_turn, turns)):
        for walk in ("dirty", "full"):
            hs = (full_gate(args.small), full_gate(args.big)) if name == "BuildCompleted" \
                else (small, big)
            for x in hs:
                x.engine.ctx.full_walk = walk == "full"
            (ts, vs), (tb, vb) = fn(hs[0], n), fn(hs[1], n)
            print(f"{name:>16} {walk:>5} {ts * 1e6:10.1f} {tb * 1e6:10.1f} {tb / ts:5.1f}x "
                  f"{vs:11.1f} {vb:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
