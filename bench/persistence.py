"""Cost of persistence per scheduler turn at 1,000 queued items.

The real Scheduler with the unit tests' in-memory fakes (tests/unit/core/
harness.py: Gerrit, merger and launcher answer at once), 1,000 approved
changes in one gate queue (window unlimited, so every item holds running
builds), then build completions one at a time, each followed by the turns
it causes. Measured twice in the same run on identical state:

  baseline: no store (everything in memory, as before persistence);
  persisted: the store attached (SQLite file in WAL mode, or --url): every
             turn writes the rows it changed, the outbox entries it decided,
             the build history, and a status snapshot at most once per
             second of scheduler time (the clock moves --tick s per completion).

Prints the mean time per completion and per turn and the ratio.

    .venv/bin/python bench/persistence.py [--items 1000] [--completions 300] [--url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gatekeeper.model.change import Approval
from gatekeeper.model.events import EventApproval, TriggerEvent
from gatekeeper.store.journal import StateJournal
from gatekeeper.store.migrate import open_store
from gatekeeper.store.outbox import Applied, Outbox
from gatekeeper.store.recorder import HistoryRecorder
from gatekeeper.store.snapshot import SnapshotWriter
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def make(items: int, url: str | None, status_every: float = 1.0,
         threaded_status: bool = True) -> tuple[Harness, Outbox | None, StateJournal | None]:
    h = Harness(layout(window=0))
    h.sched.status_every = status_every
    outbox = journal = None
    if url is not None:
        db = open_store(url)
        journal = StateJournal(db, HistoryRecorder())
        outbox = Outbox(db, h.reporter, lambda *a: Applied.NOTHING, h.clock)
        snapshots = SnapshotWriter(db) if threaded_status else None
        h.sched.attach_store(journal, outbox, snapshots=snapshots)
    for _ in range(items):
        c = h.source.add("org/alone")
        h.source.update(c.number, approvals=[Approval("Code-Review", 2), Approval("Workflow", 1)])
        h.sched.add_trigger_event(TriggerEvent(
            "comment-added", project=c.project, branch=c.branch, change_number=c.number,
            patchset=1, approvals=(EventApproval("Workflow", 1, 0),), timestamp=h.clock()))
    h.settle()
    if outbox is not None:
        outbox.send_pending()
    assert len(h.queue()) == items, len(h.queue())
    return h, outbox, journal


class Runner:
    """One scheduler under test: completes a random build and times the turns."""

    def __init__(self, h: Harness, outbox: Outbox | None, seed: int):
        self.h, self.outbox = h, outbox
        self.rng = random.Random(seed)  # the same seed: the same builds, in the same order
        self.times: list[float] = []
        self.turns = 0
        real = h.sched.run_once

        def counted() -> bool:
            self.turns += 1
            return real()

        h.sched.run_once = counted  # type: ignore[method-assign]

    def step(self, tick: float) -> None:
        h = self.h
        running = sorted((b for b in h.running() if int(b.change.split(",")[0]) > 1),
                         key=lambda b: (b.change, b.job))
        b = self.rng.choice(running)  # not the head: the queue stays as long
        h.clock.advance(tick)
        t0 = time.perf_counter()
        h.complete("SUCCESS", job=b.job, change=b.change, settle=True)
        self.times.append(time.perf_counter() - t0)
        if self.outbox is not None:
            self.outbox.send_pending()  # the sender thread's work, not the scheduler's
        snapshots = self.h.sched.snapshots
        if snapshots is not None:
            snapshots.write_pending()  # the status writer thread's work


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--completions", type=int, default=300)
    ap.add_argument("--tick", type=float, default=0.25,
                    help="seconds of scheduler time per build completion")
    ap.add_argument("--url", default=None, help="database URL (default: a SQLite file)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--status-every", type=float, default=1e9,
                    help="seconds of scheduler time between status snapshots in the timed "
                         "turns (default: none; their cost is measured on its own below)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.sqlite"
        runners = {}
        for name, u in (("baseline", None), ("persisted", url)):
            t0 = time.perf_counter()
            h, outbox, journal = make(args.items, u, args.status_every)
            print(f"{name:10s} set up {args.items} items in {time.perf_counter() - t0:.1f}s")
            runners[name] = Runner(h, outbox, args.seed)
        for _ in range(args.completions):  # interleaved: machine load hits both alike
            for r in runners.values():
                r.step(args.tick)
        per_turn = {}
        for name, r in runners.items():
            per_turn[name] = sum(r.times) / r.turns
            print(f"{name:10s} per completion: median {statistics.median(r.times) * 1e3:6.2f} ms"
                  f", mean {statistics.mean(r.times) * 1e3:6.2f} ms; per turn "
                  f"{per_turn[name] * 1e3:6.2f} ms ({r.turns} turns)")
        j = runners["persisted"].h.sched.journal
        print(f"persisted: {j.flushes if j else 0} transactions")
        writes = write_volume(runners["persisted"], args.tick)
        print(f"persisted: per transaction (50 more completions, untimed) {writes[0]:.1f} "
              f"statements, {writes[1] / 1e3:.1f} kB of values")
        snap = snapshot_cost(runners["persisted"].h)
    base = statistics.median(runners["baseline"].times)
    print(f"ratio per turn persisted/baseline: {per_turn['persisted'] / per_turn['baseline']:.2f}x"
          f"; median per completion {statistics.median(runners['persisted'].times) / base:.2f}x"
          " (target <= 1.3x)")
    print(f"status snapshot at {args.items} items: {snap[0] * 1e3:.1f} ms on the scheduler "
          f"thread (median of 10), {snap[1] * 1e3:.1f} ms encoding+writing on its own "
          f"thread, {snap[2] / 1e6:.1f} MB; written at most once a second: "
          f"{snap[0] * 100:.1f}% of the scheduler's time")


def write_volume(r: Runner, tick: float, completions: int = 50) -> tuple[float, int]:
    """Statements and bytes of text/blob values per transaction: the work a turn
    writes, whatever the machine's load."""
    import sqlalchemy as sa

    j = r.h.sched.journal
    assert j is not None
    count = [0, 0]
    flushing = [False]
    real = j.flush

    def flush(core: Any, now: float) -> bool:
        flushing[0] = True
        try:
            return real(core, now)
        finally:
            flushing[0] = False

    def note(conn, cursor, statement, params, context, many):
        if not flushing[0] or not statement.lstrip().upper().startswith(
                ("UPDATE", "INSERT", "DELETE")):
            return
        count[0] += 1
        for row in params if many else [params]:
            values = row.values() if isinstance(row, dict) else row
            count[1] += sum(len(v) for v in values if isinstance(v, (str, bytes)))

    before = j.flushes
    sa.event.listen(j.engine, "before_cursor_execute", note)
    j.flush = flush  # type: ignore[method-assign]
    try:
        for _ in range(completions):
            r.step(tick)
    finally:
        sa.event.remove(j.engine, "before_cursor_execute", note)
        j.flush = real  # type: ignore[method-assign]
    n = max(1, j.flushes - before)
    return count[0] / n, count[1] // n


def snapshot_cost(h: Harness) -> tuple[float, float, int]:
    import json

    from gatekeeper.store.journal import put_status

    build, write = [], []
    size = 0
    assert h.sched.journal is not None
    for _ in range(10):
        t0 = time.perf_counter()
        doc = h.sched._status_doc()
        t1 = time.perf_counter()
        text = json.dumps(doc, separators=(",", ":"))
        with h.sched.journal.engine.begin() as conn:
            put_status(conn, h.clock(), text)
        write.append(time.perf_counter() - t1)
        build.append(t1 - t0)
        size = len(text)
    return statistics.median(build[1:]), statistics.median(write), size


if __name__ == "__main__":
    main()
