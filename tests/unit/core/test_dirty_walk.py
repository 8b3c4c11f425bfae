"""The dirty walk (core/dirty.py, PipelineManager.process_queue) decides
exactly what the full walk decides: random scenarios run on two schedulers,
one walking every item each pass (``Context.full_walk``), and the Door's
mutations and every effect must be the same, in the same order. And a turn
after one build event visits a number of items that does not grow with the
queue."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.core.door import Mutation
from gatekeeper.model.change import Approval
from gatekeeper.model.events import (
    BuildCompleted,
    BuildFailing,
    BuildProgress,
    EventApproval,
    TriggerEvent,
)
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout

PROJECTS = ("org/alone", "org/alone", "org/alone", "org/project", "org/project1",
            "org/lossy", "org/stable")
STRATEGIES: tuple[dict[str, object] | None, ...] = (
    None,
    {"name": "rerun", "min-history": 0, "reruns": 2},
    {"name": "evidence-sized", "min-history": 0},
    {"name": "evidence", "min-history": 0, "confidence": 0.99, "reruns": 3},
    {"name": "evidence-sized", "min-history": 0, "confidence": 0.99},
    {"name": "sized"},
)


def make(window: int, strategy: dict[str, object] | None, fail_fast: bool,
         full: bool) -> Harness:
    text = layout(window=window, fail_fast=fail_fast)
    if strategy is not None:
        text = text.replace("    manager: dependent\n",
                            f"    manager: dependent\n    strategy: {json.dumps(strategy)}\n")
    h = Harness(text)
    h.engine.ctx.full_walk = full
    return h


def record(h: Harness) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []

    def listen(m: Mutation) -> None:
        out.append((m.op, m.target, repr(sorted(m.data.items()))))
    h.sched.door.listeners.append(listen)
    return out


def act(h: Harness, action: tuple[str, int, int]) -> None:
    kind, a, b = action
    running = h.running()
    if kind == "approve":
        parent = None
        if b % 4 == 0 and h.source.changes:
            parent = h.source.changes[1 + a % len(h.source.changes)]
        c = h.source.add(PROJECTS[a % len(PROJECTS)],
                         parent=parent if parent and parent.is_open else None)
        h.source.update(c.number, approvals=[Approval("Code-Review", 2),
                                             Approval("Workflow", 1)])
        h.sched.add_trigger_event(TriggerEvent(
            "comment-added", project=c.project, branch=c.branch, change_number=c.number,
            patchset=1, approvals=(EventApproval("Workflow", 1, 0),), timestamp=h.clock()))
    elif kind == "upload":
        h.upload(PROJECTS[a % len(PROJECTS)])
        return
    elif kind in ("pass", "fail", "lost") and running:
        build = running[a % len(running)]
        result = {"pass": "SUCCESS", "fail": "FAILURE", "lost": "LOST"}[kind]
        build.state, build.result = "completed", result
        h.sched.add_result_event(BuildCompleted(build.request.uuid, result, retry=True))
    elif kind == "progress" and running:
        build = running[a % len(running)]
        h.sched.add_result_event(BuildProgress(build.request.uuid, b % 10, 10))
    elif kind == "failing" and running:  # its output matched failure-output
        build = running[a % len(running)]
        h.sched.add_result_event(BuildFailing(build.request.uuid, "Traceback"))
    elif kind == "all" and running:
        for build in running:
            build.state, build.result = "completed", "SUCCESS"
            h.sched.add_result_event(BuildCompleted(build.request.uuid, "SUCCESS"))
    elif kind == "abandon" and h.source.changes:
        c = h.source.changes[1 + a % len(h.source.changes)]
        if c.is_open:
            h.abandon(c)
            return
    elif kind == "patchset" and h.source.changes:
        c = h.source.changes[1 + a % len(h.source.changes)]
        if c.is_open:
            h.new_patchset(c)
            return
    elif kind == "conflict" and h.source.changes:
        h.merger.conflicts.add(1 + a % len(h.source.changes))
    elif kind == "clock":
        h.clock.advance(1 + a % 600)
    h.settle()


ACTIONS = st.lists(st.tuples(
    st.sampled_from(["approve", "approve", "approve", "upload", "pass", "pass", "pass",
                     "fail", "fail", "lost", "progress", "failing", "all", "abandon", "patchset",
                     "conflict", "clock"]),
    st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=40)


@settings(max_examples=int(os.environ.get('DIRTY_EXAMPLES', '300')), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=st.sampled_from([0, 2, 3, 20]), strategy=st.sampled_from(STRATEGIES),
       fail_fast=st.booleans(), actions=ACTIONS)
def test_dirty_walk_decides_as_the_full_walk(window: int, strategy: dict[str, object] | None,
                                             fail_fast: bool,
                                             actions: list[tuple[str, int, int]]) -> None:
    full, dirty = (make(window, strategy, fail_fast, f) for f in (True, False))
    seen_full, seen_dirty = record(full), record(dirty)
    for n, action in enumerate(actions):
        act(full, action)
        act(dirty, action)
        assert seen_dirty == seen_full, f"differ after action {n}: {action}"
    assert [b.request for b in dirty.launcher.builds] == [b.request for b in full.launcher.builds]
    assert [b.state for b in dirty.launcher.builds] == [b.state for b in full.launcher.builds]
    assert dirty.merger.requests == full.merger.requests
    assert dirty.reporter.reports == full.reporter.reports
    assert dirty.sched.door.dirty.fallbacks == 0
    assert dirty.engine.ctx.ops <= full.engine.ctx.ops


# --- cost: a turn after one build event ----------------------------------------


def full_gate(n: int, window: int = 0) -> Harness:
    h = Harness(layout(window=window))
    for _ in range(n):
        c = h.source.add("org/alone")
        h.source.update(c.number, approvals=[Approval("Code-Review", 2), Approval("Workflow", 1)])
        h.sched.add_trigger_event(TriggerEvent(
            "comment-added", project=c.project, branch=c.branch, change_number=c.number,
            patchset=1, approvals=(EventApproval("Workflow", 1, 0),)))
    h.settle()
    assert len(h.running()) == min(n, window or n)
    return h


def visits(h: Harness, event: object) -> int:
    before = h.engine.ctx.ops
    h.sched.add_result_event(event)  # type: ignore[arg-type]
    h.settle()
    return h.engine.ctx.ops - before


def one_event_visits(n: int, window: int = 0) -> dict[str, int]:
    h = full_gate(n, window)
    builds = h.running()
    head, middle = builds[0], builds[len(builds) // 2]
    out = {"progress": visits(h, BuildProgress(middle.request.uuid, 1, 2))}
    middle.state = "completed"
    out["middle passes"] = visits(h, BuildCompleted(middle.request.uuid, "SUCCESS"))
    head.state = "completed"
    out["head merges"] = visits(h, BuildCompleted(head.request.uuid, "SUCCESS"))
    assert h.merged
    return out


def test_a_turn_after_one_build_event_visits_the_same_at_any_queue_length() -> None:
    small, big = one_event_visits(100), one_event_visits(1000)
    assert small == big, (small, big)
    assert big["progress"] <= 2 and big["middle passes"] <= 4 and big["head merges"] <= 6, big


def test_windowed_queue_a_merge_costs_the_same_at_any_window() -> None:
    """The head leaving a windowed queue moves every position and grows the
    window: visited are the new head and the item that comes inside, not
    the window."""
    small, big = one_event_visits(100, window=20), one_event_visits(1000, window=200)
    assert small == big, (small, big)
    assert big["progress"] <= 2 and big["middle passes"] <= 4 and big["head merges"] <= 15, big
