"""A workload estimated from the site's own build history (the store's
``buildsets``/``builds`` tables), for ``gatekeeper simulate --from-history``.

What is estimated, from one dependent pipeline's history:

* arrivals: the time each change (patchset) was first tested, replayed as is;
* the jobs (voting ones) and, per job, a lognormal duration fitted to its
  successful builds and its flake rate: a failure counts as a flake when the
  same job passed on a state that contains every change the failed state had
  (the same state rerun, or an item behind that included it);
* bad changes: changes rejected with at least one failure that is not a flake;
* node capacity: the most builds of the pipeline running at once.

Zuul-classic history has few same-state reruns, so flakes are found only
where an item behind passed: the rates are a lower bound."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from gatekeeper.errors import UserError
from gatekeeper.sim.gate.workload import Duration, Workload
from gatekeeper.store.history import BuildRecord, BuildsetRecord

MIN_ITEMS = 5


@dataclass(frozen=True)
class Estimate:
    workload: Workload
    items: int
    builds: int
    span_h: float
    flakes: dict[str, tuple[int, int]]  # job -> (failures counted as flakes, builds)

    def describe(self) -> str:
        wl = self.workload
        arriving = (wl.times[-1] - wl.times[0]) / 60.0 if len(wl.times) > 1 else 0.0
        rate = self.items / arriving if arriving else 0.0
        jobs = ", ".join(f"{j} {100.0 * wl.flake_jobs.get(j, 0.0):.1f} % "
                         f"({self.flakes[j][0]} of {self.flakes[j][1]})" for j in wl.jobs)
        durs = ", ".join(f"{j} {wl.duration_of(j).mean:.0f} min (sigma {wl.duration_of(j).sigma:.2f})"
                         for j in wl.jobs)
        return (f"estimated from {self.items} changes and {self.builds} builds over "
                f"{self.span_h:.1f} h: {rate:.1f} arrivals/h (replayed as they came), {100.0 * wl.bad:.1f} % bad, "
                f"{wl.nodes} nodes; flakes per build: {jobs}; durations: {durs}")


def _state(bs: BuildsetRecord) -> frozenset[tuple[int, int]]:
    return frozenset((c.change, c.patchset or 0) for c in bs.changes if c.change is not None)


def _lognormal(minutes: list[float]) -> Duration:
    logs = [math.log(max(m, 1e-3)) for m in minutes]
    mu = statistics.fmean(logs)
    sigma = statistics.pstdev(logs) if len(logs) > 1 else 0.0
    return Duration(math.exp(mu + sigma * sigma / 2.0), round(sigma, 3))


def estimate(buildsets: list[BuildsetRecord], builds: list[BuildRecord],
             base: Workload | None = None) -> Estimate:
    """The workload these records describe (``base`` gives what history
    cannot: the pipeline's settings, seeds)."""
    sets = {bs.uuid: bs for bs in buildsets if bs.change is not None}
    first: dict[tuple[int, int], float] = {}
    results: dict[tuple[int, int], set[str]] = defaultdict(set)
    projects = set()
    for bs in sets.values():
        key = (bs.change or 0, bs.patchset or 0)
        first[key] = min(first.get(key, bs.created), bs.created)
        if bs.result:
            results[key].add(bs.result)
        projects.add(bs.project)
    if len(first) < MIN_ITEMS:
        raise UserError(f"not enough build history: {len(first)} changes in the pipeline "
                        f"(at least {MIN_ITEMS} needed)")
    done = [b for b in builds if b.buildset in sets and b.voting
            and b.result in ("SUCCESS", "FAILURE")]
    jobs = sorted({b.job for b in done})
    if not jobs:
        raise UserError("not enough build history: no finished voting builds in the pipeline")
    # Passing states per job, indexed by each change they contain.
    passes: dict[tuple[str, tuple[int, int]], list[frozenset[tuple[int, int]]]] = defaultdict(list)
    for b in done:
        if b.result == "SUCCESS":
            st = _state(sets[b.buildset])
            for c in st:
                passes[(b.job, c)].append(st)
    flakes: dict[str, list[int]] = {j: [0, 0] for j in jobs}
    real_failure: set[tuple[int, int]] = set()
    for b in done:
        flakes[b.job][1] += 1
        if b.result != "FAILURE":
            continue
        st = _state(sets[b.buildset])
        own = (b.change or 0, b.patchset or 0)
        if any(st <= other for other in passes.get((b.job, own), ())):
            flakes[b.job][0] += 1
        else:
            real_failure.add(own)
    rejected = {k for k, r in results.items() if "SUCCESS" not in r
                and r & {"FAILURE", "MERGER_FAILURE"}}
    bad = len(rejected & real_failure) / len(first)
    durations = {}
    for j in jobs:
        mins = [b.duration / 60.0 for b in done
                if b.job == j and b.result == "SUCCESS" and b.duration]
        if mins:
            durations[j] = _lognormal(mins)
    start = min(first.values())
    events = sorted([(b.start_time, 1) for b in done if b.start_time is not None]
                    + [(b.end_time, -1) for b in done
                       if b.start_time is not None and b.end_time is not None])
    running = peak = 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    end = max([b.end_time for b in done if b.end_time is not None] or [start])
    base = base or Workload()
    fallback = statistics.fmean(d.mean for d in durations.values()) if durations else 30.0
    wl = dataclasses.replace(
        base,
        name=f"history of {buildsets[0].pipeline}",
        description="estimated by gatekeeper simulate --from-history",
        backlog=0, rate=0.0, hours=0.0,
        times=tuple(sorted((t - start) / 60.0 for t in first.values())),
        bad=round(bad, 4),
        flake=0.0, flake_per="job",
        flake_jobs={j: round(f / n, 4) if n else 0.0 for j, (f, n) in flakes.items()},
        flake_projects={},
        jobs=tuple(jobs),
        duration=Duration(fallback),
        durations=durations,
        nodes=peak,
        projects=tuple(sorted(projects)),
    )
    return Estimate(wl, len(first), len(done), (end - start) / 3600.0,
                    {j: (f, n) for j, (f, n) in flakes.items()})


def pipeline_settings(layout: Any, pipeline: str) -> dict[str, Any]:
    """The workload's ``pipeline:`` block from a layout's dependent pipeline."""
    p = layout.pipelines.get(pipeline)
    if p is None or p.manager != "dependent":
        raise UserError(f"the layout has no dependent pipeline named {pipeline!r}")
    w = p.window
    out: dict[str, Any] = {
        "window": w.window, "window-floor": w.floor,
        "window-increase-type": w.increase_type, "window-increase-factor": w.increase_factor,
        "window-decrease-type": w.decrease_type, "window-decrease-factor": w.decrease_factor,
        "fail-fast": p.fail_fast,
    }
    if not p.strategy.classic:
        out["strategy"] = p.strategy.name
    return out


def from_store(url: str, pipeline: str, days: float, base: Workload | None = None,
               limit: int = 200_000) -> Estimate:
    """Read the last ``days`` of ``pipeline``'s history from the database at ``url``."""
    from gatekeeper.store import history
    from gatekeeper.store.migrate import open_store

    engine = open_store(url)
    try:
        sets = history.buildsets(engine, history.BuildsetFilter(pipeline=pipeline), limit=limit)
        if days and sets:
            newest = max(bs.created for bs in sets)
            sets = [bs for bs in sets if bs.created >= newest - days * 86400.0]
        builds = history.builds(engine, history.BuildFilter(pipeline=pipeline), limit=limit * 4)
    finally:
        engine.dispose()
    if not sets:
        raise UserError(f"no build history of pipeline {pipeline!r} in the database")
    return estimate(sets, builds, base)
