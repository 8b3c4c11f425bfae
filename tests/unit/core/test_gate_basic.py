"""Dependent pipeline: the speculative gate."""

from tests.unit.core.harness import Harness


def gate_three(h: Harness, project: str = "org/project"):
    a, b, c = (h.source.add(project) for _ in range(3))
    for x in (a, b, c):
        h.approve(x)
    return a, b, c


def test_single_change_merges(h: Harness):
    a = h.source.add("org/project")
    h.approve(a)
    assert h.queue() == ["1,1"]
    assert [b.job for b in h.running()] == ["project-merge"]
    h.release("project-merge")
    assert sorted(b.job for b in h.running()) == ["project-test1", "project-test2"]
    h.release()
    assert h.merged == [1]
    assert h.queue() == []
    reports = h.reports_for(a)
    assert [r.labels for r in reports] == [{"Verified": 0}, {"Verified": 2}]
    assert reports[-1].submit and reports[-1].ok
    assert "- project-merge https://logs.example.org/" in reports[-1].message
    assert ": SUCCESS in 1m 00s" not in reports[-1].message  # released at once: 0m 00s
    # LOG_PATH as Zuul builds it: the last two digits of the change number first.
    assert "- project-test1 https://logs.example.org/1/1/1/gate/project-test1/" \
        in reports[-1].message


def test_three_changes_middle_fails(h: Harness):
    a, b, c = gate_three(h)
    assert h.queue() == ["1,1", "2,1", "3,1"]
    # Every item is tested on top of those ahead.
    merge = {x.change: x.changes for x in h.running("project-merge")}
    assert merge == {"1,1": ["1,1"], "2,1": ["1,1", "2,1"], "3,1": ["1,1", "2,1", "3,1"]}
    h.release("project-merge")
    h.fail("project-test1", b)
    # c is reset and retested without b, on top of a.
    cancelled = [x for x in h.launcher.builds if x.state == "cancelled"]
    assert {x.change for x in cancelled} == {"3,1"}
    relaunched = h.running("project-merge", c)
    assert len(relaunched) == 1 and relaunched[0].changes == ["1,1", "3,1"]
    assert "ZUUL_CHANGES" in relaunched[0].request.parameters
    assert relaunched[0].request.parameters["ZUUL_CHANGES"] == (
        "org/project:master:refs/changes/01/1/1^org/project:master:refs/changes/03/3/1")
    h.release_all()
    assert h.merged == [1, 3]
    assert h.queue() == []
    last_b = h.reports_for(b)[-1]
    assert last_b.labels == {"Verified": -2} and not last_b.submit
    assert "- project-test1 https://logs.example.org/2/2/1/gate/project-test1/" in last_b.message
    assert ": FAILURE" in last_b.message
    kinds = [e.kind for e in h.engine.find_items("3")[0].history]
    assert "reset" in kinds and "nnfi" in kinds
    text = h.sched.explain(3)
    assert "2,1 ahead of it is failing (voting job failed: project-test1 (FAILURE))" in text
    assert "now tested on top of 1,1" in text


def test_head_fails(h: Harness):
    a, b, c = gate_three(h)
    h.release("project-merge")
    h.fail("project-test1", a)
    # a is at the head: the others are reset onto the branch tip and a waits
    # for its own remaining job before it is reported.
    assert [x.changes for x in h.running("project-merge")] == [["2,1"], ["2,1", "3,1"]]
    assert h.queue() == ["1,1", "2,1", "3,1"]
    h.release("project-test2", a)
    assert h.queue() == ["2,1", "3,1"]
    assert h.reports_for(a)[-1].labels == {"Verified": -2}
    h.release_all()
    assert h.merged == [2, 3]
