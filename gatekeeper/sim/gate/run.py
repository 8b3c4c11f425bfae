"""One simulated run: the real Scheduler (built from a real layout) driven
by the simulated world in virtual time, and what came out of it."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from gatekeeper.layout.loader import load_layout_text
from gatekeeper.layout.model import Layout
from gatekeeper.model.change import Change
from gatekeeper.scheduler import Scheduler
from gatekeeper.sim.gate.workload import Workload
from gatekeeper.sim.gate.world import START, World

PIPELINE = "gate"
QUEUE = "integrated"
DEFAULT_HORIZON_H = 24 * 365.0
CLASSIC = "zuul-classic"  # the default: Zuul's dependent pipeline, no strategy


class Stuck(Exception):
    """The run ended (or hit its horizon) with changes neither merged nor rejected."""


def layout_text(wl: Workload, strategy: str | dict[str, Any] | None = None) -> str:
    """The layout the simulated site runs: one gate pipeline, the workload's
    jobs on every project, all projects in one shared queue."""
    pipeline: dict[str, Any] = {
        "name": PIPELINE,
        "manager": "dependent",
        "trigger": {"gerrit": [{"event": "comment-added", "approval": [{"Workflow": 1}]}]},
        "success": {"labels": {"Verified": 2}, "submit": True},
        "failure": {"labels": {"Verified": -2}},
    }
    pipeline.update(wl.pipeline)
    if strategy is not None:
        pipeline["strategy"] = strategy
    if pipeline.get("strategy") in (CLASSIC, None):
        pipeline.pop("strategy", None)
    doc = {
        "pipelines": [pipeline],
        "jobs": [{"name": j} for j in wl.jobs],
        "projects": [{"name": p, "queue": QUEUE, PIPELINE: list(wl.jobs)} for p in wl.projects],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def build_layout(wl: Workload, strategy: str | dict[str, Any] | None = None) -> Layout:
    return load_layout_text(layout_text(wl, strategy), f"<{wl.name} layout>")


@dataclass
class RunResult:
    seed: int
    changes: int
    merged: int
    rejected: int
    good_rejected: int
    bad_merged: int
    good: int
    makespan_h: float
    turnaround_min: list[float]
    node_minutes: float
    builds: int
    wasted: int
    flake_builds: int
    # (minutes since minute 0, merged?, bad?) of every change, in report order
    outcomes: list[tuple[float, bool, bool]]
    max_busy: int  # most nodes in use at once

    @property
    def merges_per_hour(self) -> float:
        return self.merged / self.makespan_h if self.makespan_h else 0.0

    @property
    def node_minutes_per_merge(self) -> float:
        return self.node_minutes / self.merged if self.merged else 0.0


class _Uuids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{(self.n * 2654435761) % (1 << 32):08x}{self.n:024x}"


def simulate(wl: Workload, seed: int, layout: Layout | None = None,
             strategy: str | dict[str, Any] | None = None,
             stop_after_h: float | None = None,
             after_turn: Callable[[Scheduler], None] | None = None) -> RunResult:
    """Run ``wl`` once with ``seed`` until every change merged or was rejected
    (or, with ``stop_after_h``, until that much virtual time has passed).
    ``after_turn(scheduler)`` runs after each instant's events were handled
    (e.g. a store journal writing the history, as the service does)."""
    layout = layout or build_layout(wl, strategy)
    world = World(wl, seed)
    total = world.schedule_arrivals()
    sched = Scheduler(layout, world, world, world, world, world.clock, new_uuid=_Uuids())
    world.results = sched.add_result_event
    world.triggers = sched.add_trigger_event
    # Nobody reads the status of a simulated run, and in virtual time every turn
    # is status_every apart: the O(queue) snapshot would be taken every turn.
    sched.status_every = math.inf
    state = sched.engine.states[PIPELINE]

    def final_builds(change: Change) -> list[str]:
        return [b.uuid for item in state.index.get(change.key, ())
                for b in item.build_set.builds.values()]

    world.final_builds = final_builds
    horizon = START + 3600.0 * (stop_after_h or wl.horizon or DEFAULT_HORIZON_H)
    core_log = logging.getLogger("gatekeeper")
    level = core_log.level
    core_log.setLevel(logging.WARNING)  # the core notes every decision at INFO
    if after_turn is not None:
        after_turn(sched)
    try:
        while world.next_time() is not None:
            if world.next_time() > horizon:  # type: ignore[operator]
                break
            world.fire_due()
            while sched.pending():
                sched.run_once()
            if after_turn is not None:
                after_turn(sched)
            if len(world.outcome) == total and len(world.changes) == total:
                break
    finally:
        core_log.setLevel(level)
    if len(world.outcome) < total and stop_after_h is None:
        left = sorted(set(range(1, total + 1)) - set(world.outcome))
        raise Stuck(f"seed {seed}: {len(left)} of {total} changes neither merged nor rejected "
                    f"after {(world.now - START) / 3600:.1f} h (first: {left[:5]})")
    return _result(world, seed, total)


def _result(world: World, seed: int, total: int) -> RunResult:
    merged = [n for n, o in world.outcome.items() if o.kind == "merged"]
    rejected = [n for n, o in world.outcome.items() if o.kind == "rejected"]
    end = max((o.time for o in world.outcome.values()), default=START)
    started = {u for u, b in world.builds.items() if b.start is not None}
    return RunResult(
        seed=seed, changes=total, merged=len(merged), rejected=len(rejected),
        good_rejected=sum(1 for n in rejected if n not in world.bad),
        bad_merged=sum(1 for n in merged if n in world.bad),
        good=total - len(world.bad),
        makespan_h=(end - START) / 3600.0,
        turnaround_min=[(o.time - world.arrival[n]) / 60.0 for n, o in world.outcome.items()],
        node_minutes=world.c.node_seconds / 60.0,
        builds=world.c.builds,
        wasted=world.c.builds - len(world.c.useful & started),
        flake_builds=world.c.flake_builds,
        max_busy=world.c.max_busy,
        outcomes=sorted(((o.time - START) / 60.0, o.kind == "merged", n in world.bad)
                        for n, o in world.outcome.items()),
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[k]


@dataclass
class Summary:
    """The mean over seeds of one strategy on one workload."""

    strategy: str
    runs: int
    merged: float
    rejected: float
    good_rejected: float
    good_rejected_pct: float
    bad_merged: int  # summed: must be 0
    makespan_h: float
    merges_per_hour: float
    turnaround_mean: float
    turnaround_p50: float
    turnaround_p95: float
    node_minutes_per_merge: float
    builds: float
    wasted: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(strategy: str, runs: list[RunResult]) -> Summary:
    def mean(f: Any) -> float:
        return statistics.fmean(f(r) for r in runs)

    return Summary(
        strategy=strategy, runs=len(runs),
        merged=mean(lambda r: r.merged), rejected=mean(lambda r: r.rejected),
        good_rejected=mean(lambda r: r.good_rejected),
        good_rejected_pct=100.0 * mean(lambda r: r.good_rejected / r.good if r.good else 0.0),
        bad_merged=sum(r.bad_merged for r in runs),
        makespan_h=mean(lambda r: r.makespan_h),
        merges_per_hour=mean(lambda r: r.merges_per_hour),
        turnaround_mean=mean(lambda r: statistics.fmean(r.turnaround_min or [0.0])),
        turnaround_p50=mean(lambda r: percentile(r.turnaround_min, 0.5)),
        turnaround_p95=mean(lambda r: percentile(r.turnaround_min, 0.95)),
        node_minutes_per_merge=mean(lambda r: r.node_minutes_per_merge),
        builds=mean(lambda r: r.builds), wasted=mean(lambda r: r.wasted),
    )


def _strategy(wl: Workload, name: str) -> str | dict[str, Any]:
    """``name`` with the knobs the workload's pipeline gives its strategy."""
    given = wl.pipeline.get("strategy")
    if isinstance(given, dict):
        return {**{k: v for k, v in given.items() if k != "name"}, "name": name}
    return name


def compare(wl: Workload, strategies: list[str], seeds: int,
            step: Any = None) -> list[Summary]:
    """Every strategy on the same seeds (so on the same arrivals and fates);
    ``step()`` is called after each run (progress)."""
    out = []
    for name in strategies:
        layout = build_layout(wl, _strategy(wl, name))
        runs = []
        for seed in range(seeds):
            runs.append(simulate(wl, seed, layout))
            if step is not None:
                step()
        out.append(summarize(name, runs))
    return out
