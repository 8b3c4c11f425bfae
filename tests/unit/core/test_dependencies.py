"""Depends-On footers and git parents, in check and in the gate."""

from tests.unit.core.harness import Harness


def test_check_tests_dependency_together(h: Harness):
    dep = h.source.add("org/project1")
    a = h.upload("org/project2", depends_on=(dep.change_id,))
    b = h.running(change=a)[0]
    assert b.changes == ["1,1", "2,1"]
    assert b.request.parameters["ZUUL_CHANGES"] == (
        "org/project1:master:refs/changes/01/1/1^org/project2:master:refs/changes/02/2/1")
    h.release_all()
    assert h.reports_for(a)[-1].labels == {"Verified": 1}
    assert not h.reports_for(dep)  # the dependency is carried, not reported
    assert h.engine.states["check"].queues == []


def test_check_git_parent_tested_together(h: Harness):
    p = h.source.add("org/project")
    c = h.upload("org/project", parent=p)
    assert h.running("project-merge", c)[0].changes == ["1,1", "2,1"]


def test_check_merged_dependency_not_carried(h: Harness):
    dep = h.source.add("org/project1")
    h.source.update(dep.number, status="MERGED")
    a = h.upload("org/project2", depends_on=(dep.change_id,))
    assert h.running(change=a)[0].changes == ["2,1"]


def test_check_missing_dependency_reported(h: Harness):
    a = h.upload("org/project2", depends_on=("I" + "0" * 40,))
    assert not h.launcher.builds
    r = h.reports_for(a)[-1]
    assert r.labels == {}
    assert f"Depends-On: I{'0' * 40} matches no change" in r.message
    assert "matches no change" in h.sched.explain(a.number)


def test_check_cycle_reported(h: Harness):
    a = h.source.add("org/project1")
    b = h.source.add("org/project2", depends_on=(a.change_id,))
    h.source.update(a.number, depends_on=[b.change_id])
    h.event("patchset-created", h.source.changes[a.number])
    assert not h.launcher.builds
    msg = h.reports_for(a)[-1].message
    assert "dependency cycle: 1,1 -> 2,1 -> 1,1" in msg


def test_check_dependency_abandoned_dequeues_dependent(h: Harness):
    dep = h.source.add("org/project1")
    a = h.upload("org/project2", depends_on=(dep.change_id,))
    h.abandon(dep)
    assert h.engine.states["check"].queues == []
    assert "1,1, which left the queue (the change was abandoned)" in h.reports_for(a)[-1].message


def test_gate_dependency_ahead(h: Harness):
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(dep)
    h.approve(a)
    assert h.queue() == ["1,1", "2,1"]
    assert h.running(change=a)[0].changes == ["1,1", "2,1"]
    h.release_all()
    assert h.merged == [1, 2]


def test_gate_dependency_behind_is_pulled_in_after_it(h: Harness):
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(a)
    assert h.queue() == []
    msg = h.reports_for(a)[-1].message
    assert "it depends on 1,1 (org/project1), which is neither merged nor in the gate queue" in msg
    assert h.reports_for(a)[-1].labels == {}
    h.approve(dep)
    assert h.queue() == ["1,1", "2,1"]
    assert "its dependency 1,1 entering the queue" in h.sched.explain(2)
    h.release_all()
    assert h.merged == [1, 2]


def test_gate_dependency_merged(h: Harness):
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(dep)
    h.release_all()
    assert h.merged == [1]
    h.approve(a)
    assert h.queue() == ["2,1"]
    assert h.running(change=a)[0].changes == ["2,1"]


def test_gate_dependency_missing(h: Harness):
    a = h.source.add("org/project2", depends_on=("Ideadbeef",))
    h.approve(a)
    assert h.queue() == []
    assert "Depends-On: Ideadbeef matches no change" in h.reports_for(a)[-1].message


def test_gate_dependency_cycle(h: Harness):
    a = h.source.add("org/project1")
    b = h.source.add("org/project2", depends_on=(a.change_id,))
    h.source.update(a.number, depends_on=[b.change_id])
    h.approve(a)
    h.approve(b)
    assert h.queue() == []
    assert "dependency cycle: 1,1 -> 2,1 -> 1,1" in h.reports_for(a)[-1].message
    assert "dependency cycle: 2,1 -> 1,1 -> 2,1" in h.reports_for(b)[-1].message
    assert "not-enqueued" in h.sched.explain(1)


def test_gate_dependency_in_other_queue(h: Harness):
    dep = h.source.add("org/alone")
    a = h.source.add("org/project1", depends_on=(dep.change_id,))
    h.approve(dep)
    h.approve(a)
    assert h.queue() == ["1,1"]
    assert "which is in gate queue org/alone, not in integrated" in h.reports_for(a)[-1].message


def test_gate_dependency_fails_dependent_dequeued(h: Harness):
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    other = h.source.add("org/project1")
    h.approve(dep)
    h.approve(a)
    h.approve(other)
    h.fail("project1-test", dep)
    # a cannot be tested without dep: removed with a reason; other moves on.
    assert h.queue() == ["3,1"]
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -2}
    assert ("Removed from the queue: it depends on 1,1, which left the queue "
            "(it failed: project1-test (FAILURE))") in r.message
    assert "- project2-test : NOT RUN" in r.message
    assert h.running(change=other)[0].changes == ["3,1"]
    h.release_all()
    assert h.merged == [3]


def test_gate_git_parent_must_be_ahead(h: Harness):
    p = h.source.add("org/project")
    c = h.source.add("org/project", parent=p)
    h.approve(c)
    assert h.queue() == []
    h.approve(p)
    assert h.queue() == ["1,1", "2,1"]
    h.release_all()
    assert h.merged == [1, 2]


def test_gate_dependency_across_branches(h: Harness):
    dep1 = h.source.add("org/project1", branch="master")
    dep2 = h.source.add("org/project1", branch="stable/x")
    h.source.update(dep2.number, change_id=dep1.change_id)
    a = h.source.add("org/project2", depends_on=(dep1.change_id,))
    h.approve(dep1)
    h.approve(a)
    # the same Change-Id on stable/x is not in the queue either
    assert h.queue() == ["1,1"]
    assert "2,1 (org/project1)" in h.reports_for(a)[-1].message


def test_gate_dependency_fails_behind_head(h: Harness):
    """The dependency fails while not at the head: its dependent is removed at
    once instead of being retested without it."""
    head = h.source.add("org/project1")
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    for x in (head, dep, a):
        h.approve(x)
    h.fail("project1-test", dep)
    assert h.queue() == ["1,1", "2,1"]
    msg = h.reports_for(a)[-1].message
    assert "it depends on 2,1, which is failing (voting job failed: project1-test (FAILURE))" \
        in msg
    assert "- project2-test https://logs.example.org/3/3/1/gate/project2-test/" in msg
    assert ": CANCELED" in msg
    h.release_all()
    assert h.merged == [1]


def test_check_dependency_new_patchset_retests_dependent(h: Harness):
    dep = h.source.add("org/project1")
    a = h.upload("org/project2", depends_on=(dep.change_id,))
    first = h.running(change=a)[0]
    assert first.changes == ["1,1", "2,1"]
    h.new_patchset(dep)
    assert first.state == "cancelled"
    assert [b.changes for b in h.running(change=a)] == [["1,2", "2,1"]]
    assert not h.reports_for(a)  # no vote: it is simply tested again
    assert "its dependency 1,1 changed" in h.sched.explain(2)


def test_promote_refuses_to_put_change_ahead_of_its_dependency(h: Harness):
    from gatekeeper.model.events import Promote
    dep = h.source.add("org/project1")
    a = h.source.add("org/project2", depends_on=(dep.change_id,))
    h.approve(dep)
    h.approve(a)
    h.sched.add_management_event(Promote("gate", (a.number,)))
    h.settle()
    assert h.queue() == ["1,1", "2,1"]
    assert "2,1 would be ahead of change 1, which it depends on" in h.sched.errors[-1]
