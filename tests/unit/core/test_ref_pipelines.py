"""Post (ref-updated, serial) and periodic (timer) pipelines."""

from datetime import UTC, datetime

from tests.unit.core.harness import Harness

OLD, NEW, NEWER = "a" * 40, "b" * 40, "c" * 40


def test_post_runs_on_ref_updated(h: Harness):
    h.ref_updated("org/project", "refs/heads/master", OLD, NEW)
    [b] = h.running()
    p = b.request.parameters
    assert b.job == "project-post"
    assert p["ZUUL_REFNAME"] == "refs/heads/master"
    assert p["ZUUL_NEWREV"] == NEW and p["ZUUL_OLDREV"] == OLD
    assert p["ZUUL_SHORT_NEWREV"] == NEW[:7]
    assert p["ZUUL_COMMIT"] == NEW and p["ZUUL_BRANCH"] == "master"
    assert p["LOG_PATH"] == f"bb/{NEW}/post/project-post/{b.request.uuid[:7]}"
    assert "ZUUL_CHANGE" not in p
    h.release()
    assert h.queue("post") == []
    assert not h.reporter.reports  # refs have no change to comment on


def test_post_serial_one_at_a_time(h: Harness):
    h.ref_updated("org/project", "refs/heads/master", OLD, NEW)
    h.ref_updated("org/project", "refs/heads/master", NEW, NEWER)
    assert len(h.running()) == 1
    assert h.running()[0].request.parameters["ZUUL_NEWREV"] == NEW
    h.release()
    assert [b.request.parameters["ZUUL_NEWREV"] for b in h.running()] == [NEWER]


def test_post_waiting_item_superseded(h: Harness):
    h.ref_updated("org/project", "refs/heads/master", OLD, NEW)
    h.ref_updated("org/project", "refs/heads/master", NEW, NEWER)
    h.ref_updated("org/project", "refs/heads/master", NEWER, "d" * 40)
    assert len(h.queue("post")) == 2
    h.release()
    assert [b.request.parameters["ZUUL_NEWREV"] for b in h.running()] == ["d" * 40]


def test_post_different_branches_run_in_parallel(h: Harness):
    h.ref_updated("org/project", "refs/heads/master", OLD, NEW)
    h.ref_updated("org/project", "refs/heads/stable", OLD, NEWER)
    assert len(h.running()) == 2


def test_post_ignores_ref_deletion_and_tags(h: Harness):
    h.ref_updated("org/project", "refs/heads/gone", OLD, "0" * 40)
    h.ref_updated("org/project", "refs/tags/1.0", OLD, NEW)
    assert not h.launcher.builds


def test_post_after_gate_merge(h: Harness):
    a = h.source.add("org/project")
    h.approve(a)
    h.release_all()
    assert h.merged == [1]
    h.ref_updated("org/project", "refs/heads/master", OLD, NEW)
    assert [b.job for b in h.running()] == ["project-post"]


def test_periodic_timer_fires_in_virtual_time(h: Harness):
    h.source.branches["org/project"] = ["master", "stable/x"]
    nxt = h.sched.next_wakeup()
    assert nxt is not None
    assert datetime.fromtimestamp(nxt, UTC).strftime("%H:%M") == "02:00"
    h.settle()
    assert not h.launcher.builds
    h.clock.t = nxt
    h.settle()
    jobs = sorted((b.job, b.request.parameters["ZUUL_BRANCH"]) for b in h.running())
    assert jobs == [("nightly-3.11", "master"), ("nightly-3.11", "stable/x"),
                    ("nightly-3.12", "master"), ("nightly-3.12", "stable/x")]
    b = h.running()[0]
    assert b.request.parameters["MATRIX_PYTHON"] in ("3.11", "3.12")
    assert b.request.parameters["LOG_PATH"].startswith("periodic/org/project/")
    assert h.sched.next_wakeup() == nxt + 86400
    h.release_all()
    assert h.queue("periodic") == []


def test_periodic_not_duplicated_while_waiting(h: Harness):
    nxt = h.sched.next_wakeup()
    h.clock.t = nxt
    h.settle()
    first = len(h.launcher.builds)
    h.clock.t = nxt + 86400
    h.settle()
    # The first run is still going: one item per branch, no pile-up.
    assert len(h.launcher.builds) == first
    assert "already queued at the same revision" in h.items("periodic")[0].history[-1].text
    h.release_all()
    h.clock.t = nxt + 2 * 86400
    h.settle()
    assert len(h.launcher.builds) == 2 * first
