"""A submit is asynchronous: the head is *submitting* until Gerrit's answer
comes back as a SubmitCompleted event; nothing behind it finishes first."""

from __future__ import annotations

from gatekeeper.model.states import SubmitState
from tests.unit.core.harness import Harness


def _head(h: Harness):
    return h.items()[0]


def _ready_two(h: Harness):
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    h.release_all()  # every build of both done; a's submit is with Gerrit
    return a, b


def test_a_submit_is_pending_until_gerrit_answers(h: Harness):
    held = h.hold_submits()
    a, b = _ready_two(h)
    head = _head(h)
    assert head.display_name == "1,1" and head.submit_state == SubmitState.SUBMITTING
    assert [x[1].number for x in held] == [1]  # b waits behind: not decided yet
    assert h.queue() == ["1,1", "2,1"] and h.merged == []
    assert not [r for r in h.reports_for(b) if "Verified" in r.labels and r.labels["Verified"] > 0]
    items = h.sched.status()["pipelines"][1]["queues"][0]["items"]
    assert [i["submit_state"] for i in items] == ["submitting", ""]
    assert "submitting: waiting for Gerrit's answer" in h.sched.explain(1)
    # the loop keeps working meanwhile: a check change is tested and reported
    c = h.upload("org/project")
    h.release_all()
    assert h.reports_for(c)[-1].labels == {"Verified": 1}
    assert _head(h).submit_state == SubmitState.SUBMITTING


def test_submit_success_merges_grows_the_window_and_lets_the_next_finish(h: Harness):
    held = h.hold_submits()
    _ready_two(h)
    q = h.engine.states["gate"].queues[0]
    window = q.window
    h.answer_submit()
    assert h.merged == [1] and h.queue() == ["2,1"]
    assert q.window == window + 1
    assert [x[1].number for x in held] == [2]  # now b's turn
    assert "1,1 submitted" in h.sched.explain(1)
    h.answer_submit()
    assert h.merged == [1, 2] and h.queue() == []
    done = [i for i in h.engine.ctx.finished if i.display_name == "1,1"][-1]
    assert done.merged and done.submit_state == SubmitState.SUBMITTED


def test_submit_failure_is_a_merge_failure_that_resets_those_behind(h: Harness):
    held = h.hold_submits()
    h.reporter.refuse_submit[1] = "change is not mergeable"
    a, b = _ready_two(h)
    q = h.engine.states["gate"].queues[0]
    window = q.window
    assert [x[1].number for x in held] == [1]
    h.answer_submit()
    assert h.merged == [] and h.queue() == ["2,1"]
    assert q.window < window
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1}
    assert "Gerrit did not submit 1,1: change is not mergeable" in r.message
    assert [x.changes for x in h.running("project-merge")] == [["2,1"]]  # retested alone
    h.release_all()
    h.answer_submit()
    assert h.merged == [2]


def test_gerrits_change_merged_before_the_answer_does_not_dequeue_it(h: Harness):
    h.hold_submits()
    a, _ = _ready_two(h)
    h.source.update(a.number, status="MERGED")  # Gerrit merged it; its event comes first
    h.event("change-merged", h.source.changes[a.number])
    assert _head(h).submit_state == SubmitState.SUBMITTING and h.queue() == ["1,1", "2,1"]
    h.answer_submit()
    assert h.queue() == ["2,1"]
    assert "1,1 submitted" in h.sched.explain(1)


def test_an_adapter_that_raises_is_a_submit_failure(h: Harness):
    def broken(*_a):
        raise RuntimeError("reporter gone")

    h.sched.effects.submit = broken
    a = h.source.add("org/project")
    h.approve(a)
    h.release_all()
    assert h.queue() == [] and h.merged == []
    assert "Gerrit did not submit 1,1: RuntimeError: reporter gone" in h.reports_for(a)[-1].message
