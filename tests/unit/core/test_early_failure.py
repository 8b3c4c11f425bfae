"""A build whose output matched its job's failure-output (BuildFailing) counts as
failed while it runs: the items behind are re-tested without its change at once."""

from __future__ import annotations

import json

from gatekeeper.model.events import BuildFailing
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


def failing(h: Harness, build, pattern: str = "FAILED: tempest") -> None:
    h.sched.add_result_event(BuildFailing(build.request.uuid, pattern))
    h.settle()


def three(h: Harness):
    a, b, c = (h.source.add("org/project") for _ in range(3))
    for x in (a, b, c):
        h.approve(x)
    h.release("project-merge")
    return a, b, c


def test_items_behind_reset_before_the_failing_build_ends(h: Harness):
    a, b, c = three(h)
    test1_b = h.running("project-test1", b)[0]
    failing(h, test1_b)
    # c is tested without b already; b's build runs on (for its logs).
    assert test1_b.state == "running"
    assert h.running("project-merge", c)[0].changes == ["1,1", "3,1"]
    item_b = h.engine.find_items("2")[0]
    assert item_b.failing_reasons == (
        "voting job failed: project-test1 (failing: output matched /FAILED: tempest/)",)
    status = h.sched.status()
    json.dumps(status)
    job = next(j for p in status["pipelines"] for q in p["queues"] for i in q["items"]
               if i["change"] == "2,1" for j in i["jobs"] if j["name"] == "project-test1")
    assert job["failing"] == "FAILED: tempest" and job["result"] is None
    resets_before = sum(e.kind == "reset" for e in h.engine.find_items("3")[0].history)
    # Its end: FAILURE, b is reported and leaves; c is not reset a second time.
    h.fail("project-test1", b)
    h.release_all()
    assert h.merged == [1, 3]
    assert sum(e.kind == "reset" for e in h.engine.find_items("3")[0].history) == resets_before
    assert h.reports_for(b)[-1].labels == {"Verified": -2}
    assert "is failing: its output matched failure-output /FAILED: tempest/" in h.sched.explain(2)


def test_a_second_signal_changes_nothing(h: Harness):
    a, b, c = three(h)
    build = h.running("project-test1", b)[0]
    failing(h, build)
    mutations = h.sched.door.count
    failing(h, build, "other")
    assert h.sched.door.count == mutations
    assert h.engine.find_items("2")[0].build_set.builds["project-test1"].failing == \
        "FAILED: tempest"


def test_fail_fast_cancels_the_others_at_the_signal():
    h = Harness(layout(fail_fast=True))
    a = h.source.add("org/project")
    h.approve(a)
    h.release("project-merge")
    test1 = h.running("project-test1", a)[0]
    failing(h, test1)
    assert [b.job for b in h.running(change=a)] == ["project-test1"]  # test2 cancelled


def test_a_judging_strategy_waits_for_the_end():
    text = layout().replace("    manager: dependent\n",
                            "    manager: dependent\n    strategy: {name: rerun}\n")
    h = Harness(text)
    a, b, c = three(h)
    failing(h, h.running("project-test1", b)[0])
    assert h.engine.find_items("2")[0].failing_reasons == ()
    assert h.running("project-merge", c) == []  # c keeps its state on top of b
    assert "judged when it ends (gate strategy)" in h.sched.explain(2)
