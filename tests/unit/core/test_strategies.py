"""Gate strategies in the real core (gatekeeper/core/strategy.py): a flake is
retried and merged, a real break is still rejected and reset, flaky then
broken, nodes released, valid work kept when the window shrinks."""

from __future__ import annotations

import json

import pytest

from gatekeeper.errors import UserError
from gatekeeper.layout.loader import load_layout_text
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def harness(strategy: dict[str, object], window: int = 20, fail_fast: bool = False) -> Harness:
    text = layout(window=window, fail_fast=fail_fast).replace(
        "    manager: dependent\n", f"    manager: dependent\n    strategy: {json.dumps(strategy)}\n")
    return Harness(text)


def approve_all(h: Harness, n: int, project: str = "org/alone") -> list:
    changes = [h.source.add(project) for _ in range(n)]  # uploaded earlier: no check runs
    for c in changes:
        h.approve(c)
    return changes


def notes(h: Harness, change, kind: str = "judge") -> list[str]:
    return [e.text for i in h.engine.find_items(str(change.number)) for e in i.history
            if e.kind == kind]


def test_flake_is_rerun_on_the_same_commit_and_merges() -> None:
    h = harness({"name": "rerun", "min-history": 0})
    a, b = approve_all(h, 2)
    first = h.running(change=a)[0]
    h.fail(change=a)
    rerun = h.running(change=a)
    assert len(rerun) == 1 and rerun[0].request.precedence == "high"
    assert rerun[0].changes == first.changes  # the same speculative state
    assert h.running(change=b)  # nothing behind was reset
    assert h.launched(change=b) == h.running(change=b)
    h.release()
    assert h.merged == [a.number, b.number]
    text = notes(h, a)
    assert any("rerunning it on the same commit" in t for t in text)
    assert any("passed on a rerun of the same commit: counted as a flake "
               "(alone-test flaked in 1 of its last" in t for t in text)
    success = [r for r in h.reports_for(a) if r.submit][0]
    assert "counted as a flake" in success.message
    assert "counted as a flake" in h.sched.explain(a.number)


def test_real_break_is_still_rejected_and_resets_behind() -> None:
    h = harness({"name": "rerun", "min-history": 0, "reruns": 2})
    a, b, c = approve_all(h, 3)
    h.release(change=a)
    runs = 0
    while h.fail(change=b):  # every run fails, until the failure is trusted
        runs += 1
        assert runs <= 3  # the first run and at most both reruns
    assert runs >= 2
    # c was reset onto the branch tip (a merged meanwhile), without b
    assert [x.changes for x in h.running(change=c)] == [[f"{c.number},1"]]
    h.release()
    assert h.merged == [a.number, c.number]
    rejected = [r for r in h.reports_for(b) if r.labels.get("Verified") == -2]
    assert len(rejected) == 1 and "taken to be broken" in rejected[0].message
    assert any("no rerun left" in t or "P(broken)" in t for t in notes(h, b))


def test_flaky_then_broken() -> None:
    """One job flakes (passes on the rerun), then the change breaks for real
    on a state that includes a later fix-up of the queue: still rejected."""
    h = harness({"name": "rerun", "min-history": 0, "reruns": 1})
    a, b = approve_all(h, 2)
    h.fail(change=a)  # flake ...
    h.release(change=a)  # ... passed on the rerun
    assert h.merged == [a.number]
    h.fail(change=b)
    h.fail(change=b)  # broken: fails its rerun too
    assert h.merged == [a.number]
    assert [r.labels for r in h.reports_for(b)][-1] == {"Verified": -2}
    assert any("counted as a flake" in t for t in notes(h, a))
    assert any("taken to be broken" in t for t in notes(h, b))


def test_evidence_from_behind_ends_the_rerun_and_frees_its_node() -> None:
    h = harness({"name": "evidence", "min-history": 0})
    a, b = approve_all(h, 2)
    h.fail(change=a)
    rerun = h.running(change=a)[0]
    h.release(change=b)  # b's state includes a and passed the same job
    assert rerun.state == "cancelled"  # its node is released
    assert not h.running()
    assert h.merged == [a.number, b.number]
    assert any(f"passed on {b.number},1's state, which includes it" in t for t in notes(h, a))


def test_broken_change_releases_nodes_with_fail_fast() -> None:
    h = harness({"name": "rerun", "min-history": 0, "reruns": 0}, fail_fast=True)
    (a,) = approve_all(h, 1, project="org/project")
    h.release("project-merge")
    assert len(h.running(change=a)) == 2
    h.fail("project-test1")
    assert not h.running()  # the other build was cancelled by fail-fast
    assert [r.labels for r in h.reports_for(a)][-1] == {"Verified": -2}


def test_new_job_failure_is_trusted() -> None:
    h = harness({"name": "rerun"})  # min-history 20: nothing seen yet
    a, b = approve_all(h, 2)
    h.fail(change=a)
    assert len(h.launched(change=a)) == 1  # no rerun
    assert any("trusted: only 0 builds of it seen" in t for t in notes(h, a))
    h.release()
    assert h.merged == [b.number]


def test_sized_window_keeps_work_outside_it() -> None:
    h = harness({"name": "sized", "window-valid": 0.5}, window=6)
    changes = approve_all(h, 8)
    q = h.engine.states["gate"].queues[0]
    h.fail(change=changes[1])  # 3 to 6 are reset onto 1 and relaunched: valid work
    h.release(change=changes[0])  # 1 merges (b = 1/11), 2 is rejected (b = 2/12):
    assert q.window == 3  # the window is sized to (1 - b)^w >= 0.5
    assert h.merged == [changes[0].number]
    outside = [i for i in h.items() if not i.active]
    kept = [i for i in outside if i.build_set.builds]
    assert kept, "an item pushed out of the window keeps its builds"
    label = kept[0].display_name
    assert h.running(change=label), "its running build was not cancelled"
    launched = len(h.launched(change=label))
    h.release_all()
    assert h.merged == [c.number for c in changes if c is not changes[1]]
    assert len(h.launched(change=label)) == launched  # its build counted when it moved up
    assert any("keeps its 1 builds" in e.text for i in h.engine.ctx.finished
               if i.display_name == label for e in i.history)


@pytest.mark.parametrize("text,expected", [
    ("strategy: nope", "strategy: must be one of: zuul-classic, rerun"),
    ("strategy: {name: rerun, reruns: -1}", "strategy.reruns"),
    ("strategy: {name: rerun, rerunz: 1}", "strategy.rerunz: unknown key"),
])
def test_layout_rejects_bad_strategies(text: str, expected: str) -> None:
    bad = layout().replace("    manager: dependent\n", f"    manager: dependent\n    {text}\n")
    with pytest.raises(UserError) as e:
        load_layout_text(bad, "l.yaml")
    assert any(expected in m and m.startswith("l.yaml:") for m in e.value.messages), e.value.messages


def test_layout_strategy_needs_a_dependent_pipeline() -> None:
    bad = layout().replace("    manager: independent\n",
                           "    manager: independent\n    strategy: rerun\n", 1)
    with pytest.raises(UserError) as e:
        load_layout_text(bad, "l.yaml")
    assert any("a gate strategy needs manager: dependent" in m for m in e.value.messages)


def test_queue_moves_on_while_a_rerun_confirms_then_the_flake_is_tested_again() -> None:
    """evidence: a fails, and so does b behind it (which includes a): no
    evidence of a flake, so b and c go on without a while a's rerun decides.
    The rerun passes: a is not rejected but enqueued again at the end."""
    h = harness({"name": "evidence", "min-history": 0})
    a, b, c = approve_all(h, 3)
    h.fail(change=a)
    h.fail(change=b)
    assert [x.changes for x in h.running(change=b)] == [[f"{b.number},1"]]  # without a
    assert [x.changes for x in h.running(change=c)] == [[f"{b.number},1", f"{c.number},1"]]
    (rerun,) = h.running(change=a)
    assert rerun.request.precedence == "high"
    h.release(change=a)  # the rerun passes: a flake
    assert h.queue() == [f"{b.number},1", f"{c.number},1", f"{a.number},1"]
    h.release_all()
    assert h.merged == [b.number, c.number, a.number]
    assert not [r for r in h.reports_for(a) if r.labels.get("Verified") == -2]
    text = notes(h, a)
    assert any("the items behind go on without it" in t for t in text)
    assert any("enqueued again" in t for t in text)


def test_queue_moves_on_and_a_real_break_is_rejected() -> None:
    h = harness({"name": "evidence", "min-history": 0, "reruns": 2})
    a, b, c = approve_all(h, 3)
    h.fail(change=a)
    h.fail(change=b)  # b and c go on without a
    h.fail(change=a)  # the rerun fails
    h.fail(change=a)  # and the second
    assert not h.running(change=a)
    h.release_all()
    assert h.merged == [b.number, c.number]
    assert [r.labels for r in h.reports_for(a)][-1] == {"Verified": -2}
    assert any("taken to be broken" in t for t in notes(h, a))


def test_flakes_deepen_the_sized_window() -> None:
    from gatekeeper.core.strategy import FLAKE_DEPTH, Learned, Strategy
    from gatekeeper.layout.strategy import build_strategy

    learned = Learned()
    s = Strategy(None, build_strategy("evidence-sized"), learned)  # type: ignore[arg-type]
    for _ in range(200):
        learned.passed("unit")
    assert s.window_valid(jobs=2) == pytest.approx(0.25, abs=0.001)  # no flakes: the aim
    learned.flaked("unit", 20)  # 10 % of its builds flake: most build sets of 2 jobs do
    assert s.window_valid(jobs=2) == pytest.approx(0.25 * (1 - FLAKE_DEPTH))
    assert s.window_valid(jobs=1) > s.window_valid(jobs=2)  # fewer jobs, fewer flaky sets
