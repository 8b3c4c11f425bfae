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


def test_two_failures_in_a_row(h: Harness):
    a, b, c = gate_three(h)
    h.release("project-merge")
    h.fail("project-test1", a)
    # b and c were reset onto the tip; b now fails on its own as well.
    h.release("project-merge")
    h.fail("project-test1", b)
    assert h.running("project-merge", c)[0].changes == ["3,1"]
    h.release_all()
    assert h.merged == [3]
    assert h.reports_for(a)[-1].labels == {"Verified": -2}
    assert h.reports_for(b)[-1].labels == {"Verified": -2}


def test_failure_ahead_retests_failing_item(h: Harness):
    """b failed on top of a; when a fails too, b is retested without a."""
    a, b, c = gate_three(h)
    h.release("project-merge")
    h.fail("project-test1", b)
    h.fail("project-test1", a)
    assert [x.changes for x in h.running("project-merge")] == [["2,1"], ["2,1", "3,1"]]
    h.release_all()
    assert h.merged == [2, 3]


def test_merge_conflict_in_the_middle(h: Harness):
    a, b, c = (h.source.add("org/project") for _ in range(3))
    h.merger.conflicts.add(b.number)
    for x in (a, b, c):
        h.approve(x)
    # b never launches a job; c is tested on a alone.
    assert not h.launched(change=b)
    assert h.running("project-merge", c)[0].changes == ["1,1", "3,1"]
    h.release_all()
    assert h.merged == [1, 3]
    r = h.reports_for(b)[-1]
    assert r.labels == {"Verified": -1}
    assert "2,1 does not merge on top of 1,1 (conflict in README)" in r.message


def test_merge_conflict_at_head_reported_at_once(h: Harness):
    a = h.source.add("org/project")
    h.merger.conflicts.add(a.number)
    h.approve(a)
    assert h.queue() == []
    assert h.reports_for(a)[-1].labels == {"Verified": -1}
    assert "does not merge on the tip of master" in h.reports_for(a)[-1].message
    assert not h.launcher.builds


def test_submit_failure_resets_those_behind(h: Harness):
    a, b, c = (h.source.add("org/project") for _ in range(3))
    h.reporter.refuse_submit[a.number] = "change is not mergeable: missing Code-Review"
    for x in (a, b, c):
        h.approve(x)
    h.release("project-merge")
    h.release(change=b)
    h.release(change=c)
    h.release(change=a)
    # a could not be submitted: b and c are retested without it.
    assert h.merged == []
    assert [x.changes for x in h.running("project-merge")] == [["2,1"], ["2,1", "3,1"]]
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1}
    assert "Gerrit did not submit 1,1: change is not mergeable: missing Code-Review" in r.message
    h.release_all()
    assert h.merged == [2, 3]


def test_new_patchset_in_the_gate(h: Harness):
    a, b, c = gate_three(h)
    h.release("project-merge")
    h.new_patchset(b)
    assert h.queue() == ["1,1", "3,1"]
    assert h.running("project-merge", c)[0].changes == ["1,1", "3,1"]
    assert all(x.state == "cancelled" for x in h.launched(change=b) if x.result is None)
    assert "patchset 2 was uploaded" in h.sched.explain(2)
    h.release_all()
    assert h.merged == [1, 3]


def test_abandon_in_the_gate(h: Harness):
    a, b, c = gate_three(h)
    h.abandon(b)
    assert h.queue() == ["1,1", "3,1"]
    assert h.running("project-merge", c)[0].changes == ["1,1", "3,1"]
    assert not [r for r in h.reports_for(b) if r.labels.get("Verified", 0) < 0]
    h.release_all()
    assert h.merged == [1, 3]


def test_merged_elsewhere_keeps_those_behind(h: Harness):
    a, b = (h.source.add("org/project") for _ in range(2))
    h.approve(a)
    h.approve(b)
    before = len(h.launcher.builds)
    h.source.update(a.number, status="MERGED")
    h.event("change-merged", h.source.changes[a.number])
    assert h.queue() == ["2,1"]
    assert len(h.launcher.builds) == before  # b keeps its builds: a is in the branch now
    h.release_all()
    assert h.merged == [2]


def test_gate_requires_code_review(h: Harness):
    a = h.source.add("org/project")
    h.event("comment-added", a, comment="Workflow+1",
            approvals=(__import__("gatekeeper.model.events", fromlist=["x"]).EventApproval(
                "Workflow", 1, 0),))
    assert h.queue() == []


def test_non_voting_failure_in_gate_does_not_block(make):
    h = make(extra_projects="""
  - name: org/nv
    gate: [nv-voting, project-experimental]
""")
    a = h.source.add("org/nv")
    h.approve(a)
    h.fail("project-experimental")
    h.release_all()
    assert h.merged == [1]
    assert ": FAILURE in 0m 00s (non-voting)" in h.reports_for(a)[-1].message


def test_job_tree_child_skipped_when_parent_fails(h: Harness):
    a = h.source.add("org/project")
    h.approve(a)
    h.fail("project-merge")
    assert h.queue() == []
    msg = h.reports_for(a)[-1].message
    assert "- project-test1 : SKIPPED" in msg and "- project-test2 : SKIPPED" in msg
    assert [b.job for b in h.launched()] == ["project-merge"]


def test_start_report_and_header_footer(make):
    h = make()
    a = h.source.add("org/project")
    h.approve(a)
    first = h.reports_for(a)[0]
    assert first.labels == {"Verified": 0}
    assert first.message.startswith("Starting gate jobs.")


def test_window_grows_on_merge(make):
    h = make(window=2)
    changes = [h.source.add("org/project") for _ in range(5)]
    for c in changes:
        h.approve(c)
    q = h.engine.states["gate"].queues[0]
    assert q.window == 2
    assert {b.change for b in h.running()} == {"1,1", "2,1"}
    h.release("project-merge")
    h.release(change=changes[0])
    assert h.merged == [1]
    assert q.window == 3
    assert {b.change for b in h.running()} == {"2,1", "3,1", "4,1"}
    assert "window grows 2 -> 3 (linear) after 1,1 merged" in h.sched.explain(1)


def test_window_stops_growing_at_its_ceiling(make):
    h = make(window=2, ceiling=3)
    changes = [h.source.add("org/project") for _ in range(6)]
    for c in changes:
        h.approve(c)
    q = h.engine.states["gate"].queues[0]
    for n in (1, 2):
        h.release("project-merge")
        h.release(change=changes[n - 1])
    assert h.merged == [1, 2]
    assert q.window == 3  # 2 -> 3, then held at the ceiling
    assert len({b.change for b in h.running()}) == 3
    assert "window grows 2 -> 3 (linear, ceiling 3) after 1,1 merged" in h.sched.explain(1)
    assert "window grows" not in h.sched.explain(2)


def test_window_shrinks_on_failure_not_below_floor(make):
    h = make(window=6)
    changes = [h.source.add("org/project") for _ in range(8)]
    for c in changes:
        h.approve(c)
    q = h.engine.states["gate"].queues[0]
    assert len({b.change for b in h.running()}) == 6
    h.release("project-merge")
    h.fail("project-test1", changes[0])
    h.release(change=changes[0])
    assert q.window == 3  # 6 // 2
    active = [i for i in h.items() if i.active]
    assert len(active) == 3
    assert {b.change for b in h.running()} <= {"2,1", "3,1", "4,1"}
    h.release("project-merge")
    h.fail("project-test1", changes[1])
    h.release(change=changes[1])
    assert q.window == 2  # floor
    h.release_all()
    assert h.merged == [3, 4, 5, 6, 7, 8]


def test_fail_fast_cancels_and_reports_at_once(make):
    h = make(fail_fast=True)
    a, b = (h.source.add("org/project") for _ in range(2))
    h.approve(a)
    h.approve(b)
    h.release("project-merge")
    h.fail("project-test1", a)
    assert h.queue() == ["2,1"]
    msg = h.reports_for(a)[-1].message
    assert "- project-test2 https://logs.example.org/" in msg and ": CANCELED" in msg
    assert [x.state for x in h.launched("project-test2", a)] == ["cancelled"]
    assert h.running("project-merge", b)[0].changes == ["2,1"]


def test_fail_fast_off_waits_for_all_jobs(make):
    h = make(fail_fast=False)
    a, b = (h.source.add("org/project") for _ in range(2))
    h.approve(a)
    h.approve(b)
    h.release("project-merge")
    h.fail("project-test1", a)
    assert h.queue() == ["1,1", "2,1"]  # a still runs project-test2
    assert h.running("project-merge", b)[0].changes == ["2,1"]  # b reset at once
    h.release("project-test2", a)
    assert h.queue() == ["2,1"]
    assert "project-test2 https://logs.example.org/" in h.reports_for(a)[-1].message
    assert ": SUCCESS" in h.reports_for(a)[-1].message


def test_promote_reorders_and_resets(h: Harness):
    from gatekeeper.model.events import Promote
    a, b, c = gate_three(h)
    h.sched.add_management_event(Promote("gate", (3,)))
    h.settle()
    assert h.queue() == ["3,1", "1,1", "2,1"]
    assert sorted(x.changes for x in h.running("project-merge")) == \
        [["3,1"], ["3,1", "1,1"], ["3,1", "1,1", "2,1"]]
    h.release_all()
    assert h.merged == [3, 1, 2]


def test_management_dequeue_and_enqueue(h: Harness):
    from gatekeeper.model.events import Dequeue, Enqueue
    a, b = (h.source.add("org/project") for _ in range(2))
    h.approve(a)
    h.sched.add_management_event(Enqueue("gate", "org/project", change_number=b.number))
    h.settle()
    assert h.queue() == ["1,1", "2,1"]
    h.sched.add_management_event(Dequeue("gate", "org/project", change_number=a.number))
    h.settle()
    assert h.queue() == ["2,1"]
    assert h.running("project-merge", b)[0].changes == ["2,1"]
    assert "dequeued by an operator" in h.sched.explain(1)
    h.sched.add_management_event(Dequeue("gate", "org/project", change_number=99))
    h.settle()
    assert "99 is not in pipeline gate" in h.sched.errors[-1]


def test_shared_queue_across_projects(h: Harness):
    a = h.source.add("org/project1")
    b = h.source.add("org/project2")
    c = h.source.add("org/alone")
    for x in (a, b, c):
        h.approve(x)
    names = {q.name: [i.display_name for i in q.items] for q in h.engine.states["gate"].queues}
    assert names == {"integrated": ["1,1", "2,1"], "org/alone": ["3,1"]}
    assert h.running(change=b)[0].changes == ["1,1", "2,1"]
    assert h.running(change=c)[0].changes == ["3,1"]
    p = h.running(change=b)[0].request.parameters
    assert p["ZUUL_CHANGES"] == ("org/project1:master:refs/changes/01/1/1^"
                                 "org/project2:master:refs/changes/02/2/1")
