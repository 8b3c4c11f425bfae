"""Restart from the database: queues, windows, builds in flight, reports once."""

from __future__ import annotations

from collections import Counter

from gatekeeper.interfaces import ReportResult
from tests.unit.store.support import StoredHarness, restart


def snapshot(h: StoredHarness):
    out = {}
    for name, state in h.engine.states.items():
        out[name] = [(q.name, q.window, [(i.display_name, i.live, i.item_ahead.display_name if i.item_ahead
                                          else None) for i in q.items]) for q in state.queues]
    return out


def votes(h: StoredHarness):
    return Counter((r.change, tuple(sorted(r.labels.items())), r.submit)
                   for r in h.reporter.reports)


def test_restart_restores_queues_in_order_and_relaunches_builds_in_flight(store):
    h = StoredHarness(store)
    changes = [h.source.add("org/project") for _ in range(4)]
    for c in changes:
        h.approve(c)
    h.upload("org/project")  # check pipeline too
    h.release("project-merge", changes[0])
    before = snapshot(h)
    running = {(b.job, b.change) for b in h.running()}
    reports = len(h.reporter.reports)
    restart(h)
    assert snapshot(h) == before
    assert {(b.job, b.change) for b in h.running()} == running  # launched again ...
    assert not [b for b in h.launcher.builds if b.state == "running"
                and b.request.uuid not in {x.request.uuid for x in h.running()}]
    abandoned = [b for b in h.launcher.builds if b.state == "abandoned"]
    assert {(b.job, b.change) for b in abandoned} == running  # ... and the old ones stopped
    assert len(h.reporter.reports) == reports  # nothing reported again
    text = h.sched.explain(2)
    assert "was in flight when the scheduler stopped" in text
    h.release_all()
    assert h.merged == [1, 2, 3, 4]
    assert all(n == 1 for n in votes(h).values()), votes(h)


def _submitting_at_the_crash(h: StoredHarness):
    """a and b approved, a done: a's submit row committed with the turn that
    made it *submitting*, not sent yet (the sender had not run)."""
    a, b = h.source.add("org/project"), h.source.add("org/project")
    h.approve(a)
    h.approve(b)
    send = h.outbox.send_pending
    h.outbox.send_pending = lambda: 0
    h.release("project-merge")
    h.release(change=a)
    assert h.items()[0].submit_state == "submitting" and h.merged == []
    h.outbox.send_pending = send
    return a, b


def _check_once(h: StoredHarness):
    h.release_all()
    assert h.merged == [1, 2]
    submits = [r for r in h.reporter.reports if r.submit]
    assert [r.change for r in submits] == ["1,1", "2,1"]
    assert all(n == 1 for n in votes(h).values()), votes(h)
    assert "1,1 submitted" in h.sched.explain(1)


def test_a_submit_committed_but_unsent_at_the_crash_is_sent_once(store):
    h = StoredHarness(store)
    _submitting_at_the_crash(h)
    restart(h)
    assert "its submit was in flight when the scheduler stopped" in h.sched.explain(1)
    _check_once(h)


def test_a_submit_answered_before_the_crash_is_not_sent_again(store):
    h = StoredHarness(store)
    _submitting_at_the_crash(h)

    def crash(*_a, **_k):  # the turn handling Gerrit's answer is never written
        raise RuntimeError("killed")

    h.outbox.send_pending()  # Gerrit submits it; the row is marked; the answer is an event
    assert h.merged == [1]
    h.journal.flush = crash
    h.sched.run_once()
    restart(h)
    assert "its submit was answered before the scheduler stopped" in h.sched.explain(1)
    _check_once(h)


def test_a_submit_gerrit_applied_while_the_sender_died_is_asked_not_repeated(store):
    h = StoredHarness(store)
    _submitting_at_the_crash(h)

    def killed(*_a, **_k):  # kill -9 after Gerrit merged it, before the row was marked
        raise KeyboardInterrupt

    h.outbox._mark = killed
    try:
        h.outbox.send_pending()
    except KeyboardInterrupt:
        pass
    assert h.merged == [1]
    restart(h)  # reconcile sees 1 merged in Gerrit: not "merged elsewhere", it is ours
    assert "merged outside this pipeline" not in h.sched.explain(1)
    _check_once(h)


def test_reconcile_dequeues_what_changed_in_gerrit_while_stopped(store):
    h = StoredHarness(store)
    a, b, c = (h.source.add("org/project") for _ in range(3))
    for x in (a, b, c):
        h.approve(x)
    h.source.update(a.number, status="ABANDONED")
    h.source.new_patchset(b.number)
    cur = h.source.changes[c.number]
    h.source.update(c.number, approvals=[x for x in cur.approvals if x.label != "Code-Review"])
    restart(h)
    assert h.queue() == []
    assert "abandoned while the scheduler was stopped" in h.sched.explain(1)
    assert "patchset 2 was uploaded while the scheduler was stopped" in h.sched.explain(2)
    assert "lacks the vote" in h.sched.explain(3) and "while the scheduler was stopped" \
        in h.sched.explain(3)


def test_outbox_entries_unsent_at_the_crash_are_sent_once(store):
    h = StoredHarness(store)
    a = h.source.add("org/project")
    h.outbox.send_pending = lambda: 0  # the sender never got to them
    h.approve(a)
    assert h.reporter.reports == []
    restart(h)  # the new process's sender sends the committed start report
    assert [r.labels for r in h.reporter.reports] == [{"Verified": 0}]
    h.release_all()
    assert [r.labels for r in h.reporter.reports] == [{"Verified": 0}, {"Verified": 2}]


def test_a_submit_refused_after_gerrit_merged_it_is_a_success(store):
    """The reporter's first attempt timed out after Gerrit merged the change; its
    retry was refused ("change is merged"): Gerrit is asked, and it merged."""
    h = StoredHarness(store)
    real = h.reporter.report

    def timed_out_then_refused(change, message, labels, submit=False):
        result = real(change, message, labels, submit=submit)
        if submit:
            return ReportResult(False, "change is closed")
        return result

    h.reporter.report = timed_out_then_refused
    a = h.source.add("org/project")
    h.approve(a)
    h.release_all()
    assert h.merged == [1]
    assert "1,1 submitted" in h.sched.explain(1)
    assert not [r for r in h.reporter.reports if "Merge Failed" in r.message
                or "merge-failure" in r.message]
    assert sum(r.submit for r in h.reporter.reports) == 1
