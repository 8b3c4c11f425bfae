"""Independent pipeline: check."""

import pytest

from gatekeeper.core.status import status
from gatekeeper.model.events import EventApproval
from tests.unit.core.harness import Harness


def test_check_reports_verified(h: Harness):
    a = h.upload("org/project")
    # The source did not say which files changed: file matchers then match.
    assert sorted(b.job for b in h.running()) == [
        "project-docs", "project-experimental", "project-merge"]
    h.release_all()
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": 1} and not r.submit


def test_each_change_tested_alone(h: Harness):
    h.upload("org/project")
    h.upload("org/project")
    assert sorted(b.changes for b in h.running("project-merge")) == [["1,1"], ["2,1"]]
    assert len(h.engine.states["check"].queues) == 2


def test_check_failure_votes_minus_one(h: Harness):
    a = h.upload("org/project")
    h.fail("project-merge")
    h.release_all()
    assert h.reports_for(a)[-1].labels == {"Verified": -1}
    assert h.engine.states["check"].queues == []


def test_recheck_reruns(h: Harness):
    a = h.upload("org/alone")
    h.release_all()
    assert len(h.launched("alone-test")) == 1
    h.comment(a, "Patch Set 1:\n\nrecheck")
    assert len(h.running("alone-test")) == 1
    h.release_all()
    assert len(h.reports_for(a)) == 2


def test_recheck_of_queued_change_does_not_duplicate(h: Harness):
    a = h.upload("org/alone")
    h.comment(a, "recheck")
    assert len(h.running("alone-test")) == 1
    assert h.queue("check") == ["1,1"]
    assert "already in the queue, not enqueued again" in h.sched.explain(1)


def test_comment_not_matching_recheck_ignored(h: Harness):
    a = h.upload("org/alone")
    h.release_all()
    h.comment(a, "please recheck this")  # the regex wants recheck at the start
    assert not h.running()


def test_new_patchset_replaces_item_in_check(h: Harness):
    a = h.upload("org/alone")
    old = h.running()[0]
    a2 = h.new_patchset(a)
    assert old.state == "cancelled"
    assert h.queue("check") == ["1,2"]
    assert h.running()[0].request.parameters["ZUUL_PATCHSET"] == "2"
    h.release_all()
    assert [r.change for r in h.reports_for(a2)] == ["1,2"]


def test_file_matchers(h: Harness):
    h.upload("org/project", files=["doc/index.rst"])
    jobs = sorted(b.job for b in h.running())
    assert jobs == ["project-docs", "project-experimental", "project-merge"]
    h.release("project-merge")
    # project-test2 is irrelevant for doc-only changes.
    assert sorted(b.job for b in h.running()) == [
        "project-docs", "project-experimental", "project-test1"]


def test_file_matchers_code_change(h: Harness):
    h.upload("org/project", files=["src/main.py"])
    assert sorted(b.job for b in h.running()) == ["project-experimental", "project-merge"]
    h.release("project-merge")
    assert sorted(b.job for b in h.running()) == [
        "project-experimental", "project-test1", "project-test2"]


def test_branch_matchers(h: Harness):
    h.upload("org/stable", branch="master")
    assert [b.job for b in h.running()] == ["project-unit"]
    h.release_all()
    h.upload("org/stable", branch="stable/2026.1")
    assert sorted(b.job for b in h.running()) == ["project-stable", "project-unit"]


def test_non_voting_failure_in_check(h: Harness):
    a = h.upload("org/project")
    h.fail("project-experimental")
    h.release_all()
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": 1}
    assert "- project-experimental https://logs.example.org/" in r.message
    assert ": FAILURE in 0m 00s (non-voting)" in r.message


def test_lost_build_retried_within_attempts(h: Harness):
    a = h.upload("org/lossy")
    h.lose()
    assert len(h.running("project-lossy")) == 1
    assert h.running()[0].request.parameters["ZUUL_UUID"] != h.launched()[0].request.uuid
    h.release()
    assert h.reports_for(a)[-1].labels == {"Verified": 1}
    assert "LOST (attempt 1 of 2): launching it again" in h.sched.explain(1)


def test_lost_build_gives_up_after_attempts(h: Harness):
    a = h.upload("org/lossy")
    h.lose()
    h.lose()
    assert not h.running()
    assert len(h.launched()) == 2
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1} and ": LOST" in r.message


@pytest.mark.parametrize("result", ["NODE_FAILURE", "ERROR"])
def test_infrastructure_results_are_retried_like_lost(h: Harness, result: str):
    a = h.upload("org/lossy")
    h.complete(result)
    assert len(h.running("project-lossy")) == 1
    h.release()
    assert h.reports_for(a)[-1].labels == {"Verified": 1}
    assert f"{result} (attempt 1 of 2): launching it again" in h.sched.explain(1)


def test_infrastructure_reason_reaches_the_report_and_status(h: Harness):
    a = h.upload("org/lossy")
    h.complete("NODE_FAILURE", message="no node: the pool has no ready precise node")
    assert "NODE_FAILURE: no node: the pool has no ready precise node (attempt 1 of 2)" \
        in h.sched.explain(1)
    h.complete("LOST", message="lost the connection to the gearman server")
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1}
    assert "- project-lossy https://logs.example.org/" in r.message
    assert " : LOST: lost the connection to the gearman server in " in r.message, r.message


def test_reason_in_the_status_while_the_item_runs(h: Harness):
    h.upload("org/project")
    h.complete("ERROR", job="project-docs", message="cannot clone org/x: not found", retry=False)
    jobs = {j["name"]: j for p in status(h.engine)["pipelines"] for q in p["queues"]
            for i in q["items"] for j in i["jobs"]}
    assert jobs["project-docs"]["result"] == "ERROR"
    assert jobs["project-docs"]["message"] == "cannot clone org/x: not found"
    assert jobs["project-merge"]["message"] is None


def test_refused_job_is_reported_at_once_not_retried(h: Harness):
    a = h.upload("org/lossy")
    why = "worker refused the job: invalid run script '/srv/x.sh': must be relative to the workspace"
    h.complete("ERROR", message=why, retry=False)
    assert len(h.launched()) == 1  # not launched again: it would be refused again
    r = h.reports_for(a)[-1]
    assert r.labels == {"Verified": -1}
    assert f" : ERROR: {why} in 0m 00s" in r.message, r.message


def test_failure_is_never_retried(h: Harness):
    h.upload("org/lossy")
    h.fail()
    assert len(h.launched()) == 1


def test_time_in_job_line(h: Harness):
    a = h.upload("org/alone")
    h.clock.advance(303)
    h.release()
    assert "- alone-test https://logs.example.org/1/1/1/check/alone-test/" in \
        h.reports_for(a)[-1].message
    assert ": SUCCESS in 5m 03s" in h.reports_for(a)[-1].message


def test_abandon_in_check(h: Harness):
    a = h.upload("org/alone")
    h.abandon(a)
    assert h.queue("check") == []
    assert h.launched()[0].state == "cancelled"
    assert not h.reports_for(a)


def test_comment_on_old_patchset_does_not_enqueue_gate(h: Harness):
    a = h.upload("org/alone")
    h.new_patchset(a)
    h.release_all()
    h.source.update(a.number, approvals=[])
    h.event("comment-added", a, patchset=1, comment="Workflow+1",
            approvals=(EventApproval("Workflow", 1, 0),))
    assert h.queue("gate") == []


def test_vote_unchanged_does_not_trigger(h: Harness):
    """Gerrit >= 2.13 repeats every vote in each comment: only a changed one counts."""
    a = h.source.add("org/alone")
    h.approve(a)
    h.release_all()
    assert h.merged == [1]
    b = h.source.add("org/alone")
    from gatekeeper.model.change import Approval
    h.source.update(b.number, approvals=[Approval("Code-Review", 2), Approval("Workflow", 1)])
    h.event("comment-added", b, comment="nit",
            approvals=(EventApproval("Code-Review", 2, 2), EventApproval("Workflow", 1, 1)))
    assert h.queue("gate") == []


def test_success_url_and_message_patterns():
    from tests.unit.core.layouts import layout
    text = layout().replace("jobs:\n", """jobs:
  - name: alone-test
    success-message: all good
    success-url: "http://logs.example.org/{change}/{job}/{uuid}"
""", 1)
    h = Harness(text)
    a = h.upload("org/alone")
    uuid = h.running()[0].request.uuid
    h.release()
    assert f"- alone-test http://logs.example.org/1,1/alone-test/{uuid} : all good in 0m 00s" \
        in h.reports_for(a)[-1].message


def test_keep_old_patchset_when_configured():
    from tests.unit.core.layouts import layout
    text = layout().replace("""    success:
      labels: {Verified: 1}""", """    dequeue-on-new-patchset: false
    success:
      labels: {Verified: 1}""", 1)
    h = Harness(text)
    a = h.upload("org/alone")
    h.new_patchset(a)
    assert sorted(h.queue("check")) == ["1,1", "1,2"]
    assert len(h.running()) == 2
