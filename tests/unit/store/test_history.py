"""Build history written by the scheduler, read through gatekeeper.store.history."""

from __future__ import annotations

import sqlalchemy as sa

from gatekeeper.store import history, schema
from gatekeeper.store.history import BuildFilter, BuildsetFilter
from tests.unit.store.support import StoredHarness


def test_gate_run_leaves_builds_and_buildsets(store):
    h = StoredHarness(store)
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    h.clock.advance(30)
    h.release("project-merge")
    h.clock.advance(90)
    h.fail("project-test1", b)
    h.release_all()
    assert h.merged == [1]

    mine = history.builds_of_change(store, 2)
    assert {(r.job, r.result) for r in mine} >= {("project-merge", "SUCCESS"),
                                                 ("project-test1", "FAILURE")}
    failed = next(r for r in mine if r.result == "FAILURE")
    assert failed.pipeline == "gate" and failed.project == "org/project"
    assert failed.patchset == 1 and failed.voting and failed.attempt == 1
    assert failed.node == "node-1" and failed.worker == "worker-1"
    assert failed.log_url.startswith("https://logs.example.org/2/2/1/gate/project-test1/")
    assert failed.duration == 90.0
    assert history.build(store, failed.uuid) == failed

    sets = history.buildsets(store, BuildsetFilter(change=2))
    assert sets[0].result == "FAILURE"
    # It was tested on top of 1,1: the items it tested on, in order.
    assert [(c.change, c.patchset) for c in sets[0].changes] == [(1, 1), (2, 1)]
    assert {r.uuid for r in history.builds_of_buildset(store, sets[0].uuid)} <= \
        {r.uuid for r in mine}
    assert history.buildsets(store, BuildsetFilter(change=1))[0].result == "SUCCESS"

    merges = history.builds(store, BuildFilter(job="project-merge"), limit=1)
    assert len(merges) == 1 and merges[0].job == "project-merge"
    page2 = history.builds(store, BuildFilter(job="project-merge"), limit=1, offset=1)
    assert page2 and page2[0].uuid != merges[0].uuid
    assert history.median_duration(store, "project-merge") == 30.0
    assert history.median_duration(store, "no-such-job") is None
    assert [r.result for r in history.job_results(store, "project-test1")].count("FAILURE") == 1


def test_a_reset_build_set_is_closed_and_its_builds_cancelled(store):
    h = StoredHarness(store)
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    h.release("project-merge")
    first_b = history.buildsets(store, BuildsetFilter(change=2))[0]
    h.fail("project-test1", a)  # b was tested on a: reset
    sets = history.buildsets(store, BuildsetFilter(change=2))
    old = next(s for s in sets if s.uuid == first_b.uuid)
    assert old.result == "RESET" and old.completed is not None
    olds = history.builds_of_buildset(store, old.uuid)
    assert olds and all(r.result is not None for r in olds)
    assert "CANCELED" in {r.result for r in olds}


def test_retention_deletes_old_history_only(store):
    h = StoredHarness(store, retention_days=1)
    a = h.source.add("org/project")
    h.approve(a)
    h.release_all()
    assert history.builds_of_change(store, 1)
    h.clock.advance(2 * 86400)
    c = h.source.add("org/project")
    h.approve(c)
    h.release_all()
    assert history.builds_of_change(store, 1) == []
    assert history.builds_of_change(store, 2)
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.buildsets)
                            .where(schema.buildsets.c.change == 1)).scalar() == 0


def test_status_snapshot_of_the_last_turn_is_in_the_database(store):
    h = StoredHarness(store)
    assert history.status_snapshot(store) is None
    a = h.source.add("org/project")
    h.approve(a)
    snap = history.status_snapshot(store)
    assert snap is not None and snap.time == h.clock()
    assert "1,1" in str(snap.data)
    assert snap.data == h.sched.last_status()
