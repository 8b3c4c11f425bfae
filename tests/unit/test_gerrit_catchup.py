"""Catch-up decisions: which events a gap implies, and never twice."""

from __future__ import annotations

import json

import pytest

from gatekeeper.gerrit.catchup import CatchUp, Deduplicator, catchup_terms, synthesize
from gatekeeper.gerrit.events import parse_line
from gatekeeper.gerrit.query import QueryError
from gatekeeper.gerrit.ssh import CommandResult
from gatekeeper.model.events import EventApproval, TriggerEvent


def acct(name):
    return {"name": name.title(), "email": f"{name}@example.com", "username": name}


def row(number=1, ps=2, created=1000, approvals=(), comments=(), status="NEW"):
    return {
        "project": "p", "branch": "master", "id": "I" + "a" * 40, "number": number,
        "status": status,
        "currentPatchSet": {"number": ps, "revision": "f" * 40, "ref": f"refs/changes/01/{number}/{ps}",
                            "createdOn": created, "uploader": acct("alice"),
                            "approvals": list(approvals)},
        "comments": list(comments),
    }


def vote(label, value, who, when):
    return {"type": label, "description": label, "value": str(value), "grantedOn": when,
            "by": acct(who)}


def comment(text, who, when):
    return {"timestamp": when, "reviewer": acct(who), "message": text}


def test_terms_cover_the_window():
    assert catchup_terms(since=1000, now=1100, limit=50) == ["status:open", "NOT", "age:101s",
                                                               "limit:50"]
    assert catchup_terms(since=2000, now=1000)[2] == "age:1s"  # clock skew: never zero/negative


def test_nothing_before_since():
    r = row(created=100, approvals=[vote("Code-Review", 2, "core", 100)],
            comments=[comment("Patch Set 2:\n\nrecheck", "bob", 100)])
    assert synthesize([r], since=500) == []


def test_new_patchset_vote_and_recheck():
    r = row(created=1000,
            approvals=[vote("Code-Review", 2, "core", 1010), vote("Workflow", 1, "core", 1010),
                       vote("Verified", 1, "ci", 900)],
            comments=[comment("Patch Set 2: Code-Review+2 Workflow+1\n\nship it", "core", 1010),
                      comment("Patch Set 2:\n\nrecheck", "bob", 1020)])
    evs = synthesize([r], since=950)
    assert [(e.type, e.account_username, e.timestamp) for e in evs] == [
        ("patchset-created", "alice", 1000), ("comment-added", "core", 1010),
        ("comment-added", "bob", 1020)]
    assert all(e.synthetic for e in evs)
    core = evs[1]
    assert core.approvals == (EventApproval("Code-Review", 2), EventApproval("Workflow", 1))
    assert core.comment.endswith("ship it")
    assert core.change_number == 1 and core.patchset == 2 and core.project == "p"
    assert evs[2].approvals == () and evs[2].comment.endswith("recheck")


def test_votes_without_message_become_their_own_event():
    r = row(created=10, approvals=[vote("Workflow", "1", "core", 1005),
                                   vote("Code-Review", "+2", "core", 1006),
                                   vote("Code-Review", "1", "other", 1100)])
    evs = synthesize([r], since=1000)
    assert [(e.account_username, {a.label for a in e.approvals}) for e in evs] == [
        ("core", {"Workflow", "Code-Review"}), ("other", {"Code-Review"})]
    assert evs[0].comment == "Patch Set 2: Workflow+1 Code-Review+2"


def test_closed_and_broken_rows_ignored():
    rows = [row(number=1, status="MERGED", created=2000), row(number=2, status="ABANDONED", created=2000),
            {"number": "x"}, {}, {"number": 3, "currentPatchSet": {"number": None}}, "junk"]
    assert synthesize([r for r in rows if isinstance(r, dict)], since=0) == []


def test_comment_on_old_patchset_carries_no_current_votes():
    r = row(ps=3, created=10, approvals=[vote("Code-Review", 1, "bob", 1000)],
            comments=[comment("Patch Set 2:\n\nrecheck", "bob", 1000)])
    evs = synthesize([r], since=500)
    assert [(e.patchset, e.approvals != ()) for e in evs] == [(2, False), (3, True)]


def ev(**kw):
    base = dict(type="comment-added", project="p", change_number=1, patchset=2,
                account_username="core", timestamp=1000.0)
    base.update(kw)
    return TriggerEvent(**base)


def test_dedup_streamed_then_synthetic():
    d = Deduplicator(tolerance=2)
    streamed = ev(approvals=(EventApproval("Code-Review", 2, 0), EventApproval("Verified", 1)))
    assert d.admit(streamed)
    # catch-up sees the same review (its own timestamp is a second off, fewer votes known)
    assert not d.admit(ev(timestamp=1001.0, approvals=(EventApproval("Code-Review", 2),),
                          synthetic=True))
    # a different later vote by the same reviewer is news
    assert d.admit(ev(timestamp=1001.0, approvals=(EventApproval("Workflow", 1),), synthetic=True))
    # far apart in time: news
    assert d.admit(ev(timestamp=1100.0, approvals=(EventApproval("Code-Review", 2),),
                      synthetic=True))


def test_dedup_synthetic_then_streamed_and_streamed_never_suppress_streamed():
    d = Deduplicator(tolerance=2)
    assert d.admit(ev(synthetic=True, comment="recheck"))
    assert not d.admit(ev(comment="recheck"))
    assert d.admit(ev(type="patchset-created"))
    assert d.admit(ev(type="patchset-created"))  # two real events stay two
    assert d.admit(ev(comment="recheck", account_username="someone-else", synthetic=True))
    assert d.admit(ev(comment="different text", synthetic=True))


def test_dedup_memory_is_bounded():
    d = Deduplicator(capacity=10)
    for i in range(100):
        assert d.admit(ev(change_number=i, synthetic=True))
    assert len(d) == 10
    assert d.admit(ev(change_number=0, synthetic=True))  # forgotten (bounded), so admitted
    assert not d.admit(ev(change_number=99, synthetic=True))


def test_non_change_events_always_pass():
    d = Deduplicator()
    r = TriggerEvent(type="ref-updated", project="p", ref="refs/heads/master", timestamp=5.0)
    assert d.admit(r) and d.admit(r)


class FakeQuery:
    """Answers catch-up queries from canned pages (the real query runs in the
    integration tests against the emulator)."""

    def __init__(self, pages, status=0, abandoned=()):
        self.pages = list(pages)
        self.abandoned = list(abandoned)
        self.calls = []
        self.status = status

    def __call__(self, argv):
        self.calls.append(argv)
        if "status:abandoned" in argv:
            rows, more = self.abandoned, False
        else:
            rows = self.pages.pop(0)
            more = bool(self.pages)
        out = "\n".join(json.dumps(r) for r in rows)
        out += "\n" + json.dumps({"type": "stats", "rowCount": len(rows), "moreChanges": more})
        return CommandResult(self.status, out, "fatal: boom" if self.status else "")


def test_catchup_pages_and_dedups_against_stream():
    clock = [2000.0]
    cu = CatchUp(margin=60, tolerance=2, clock=lambda: clock[0])
    clock[0] = 1900.0
    cu.note_connected()
    clock[0] = 2000.0
    streamed = parse_line(json.dumps({
        "type": "comment-added", "change": {"project": "p", "number": 1},
        "patchSet": {"number": 2}, "author": acct("core"), "eventCreatedOn": 2010,
        "approvals": [{"type": "Code-Review", "value": "2"}]}))
    assert cu.admit(streamed)
    assert cu.watermark == 2010
    since = cu.since()
    assert since == 1950
    clock[0] = 2100.0
    q = FakeQuery([[row(number=1, created=10, approvals=[vote("Code-Review", 2, "core", 2010)])],
                   [row(number=2, created=10, approvals=[vote("Code-Review", 2, "core", 2050)])]])
    got = cu.collect(q, since)
    assert [(e.change_number, e.type) for e in got] == [(2, "comment-added")]
    assert q.calls[0][-4:] == ["status:open", "NOT", "age:151s", "limit:500"]
    assert "--start" in q.calls[1] and q.calls[1][q.calls[1].index("--start") + 1] == "1"
    assert "status:abandoned" in q.calls[2] and len(q.calls) == 3
    assert "--all-approvals" in q.calls[0] and "--comments" in q.calls[0]
    # Running the same window again delivers nothing twice.
    q2 = FakeQuery([[row(number=1, created=10, approvals=[vote("Code-Review", 2, "core", 2010)]),
                     row(number=2, created=10, approvals=[vote("Code-Review", 2, "core", 2050)])]])
    assert cu.collect(q2, since) == []
    assert cu.watermark == 2100


def test_catchup_failure_raises_and_records_nothing():
    cu = CatchUp(clock=lambda: 100.0)
    with pytest.raises(QueryError):
        cu.collect(FakeQuery([[row(created=50)]], status=1), since=0)
    assert cu.collect(FakeQuery([[row(created=50)]]), since=0)[0].type == "patchset-created"


def test_since_never_reaches_before_first_connection():
    now = [5000.0]
    cu = CatchUp(margin=120, clock=lambda: now[0])
    cu.note_connected()
    assert cu.since() == 4990.0  # not 4880: events before we started are not ours
    now[0] = 6000.0
    cu.note_connected()  # a reconnect does not move the floor
    cu.admit(TriggerEvent(type="comment-added", change_number=1, timestamp=5500.0))
    assert cu.since() == 5380.0


def test_autogenerated_messages_are_not_comments():
    r = row(created=10, comments=[comment("Uploaded patch set 2.", "alice", 1000),
                                  comment("Abandoned", "alice", 1001),
                                  comment("Change has been successfully merged", "core", 1002),
                                  comment("Patch Set 2:\n\nrecheck", "bob", 1003)])
    assert [(e.type, e.account_username) for e in synthesize([r], since=900)] == [
        ("change-abandoned", "alice"), ("comment-added", "bob")]


def test_abandon_and_restore_in_the_window():
    closed = row(number=4, created=10, status="ABANDONED",
                 approvals=[vote("Workflow", 1, "core", 1000)],
                 comments=[comment("Abandoned\n\nnot needed", "alice", 1000),
                           comment("Abandoned", "alice", 10)])
    back = row(number=5, created=10, comments=[comment("Abandoned", "alice", 990),
                                               comment("Restored", "bob", 1010)])
    evs = synthesize([closed, back], since=900)
    assert [(e.type, e.change_number, e.comment) for e in evs] == [
        ("change-abandoned", 5, None), ("change-abandoned", 4, "not needed"),
        ("change-restored", 5, None)]
