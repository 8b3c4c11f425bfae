"""Parsing of Gerrit stream-events: a corpus written from Gerrit's documentation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gatekeeper.gerrit.events import event_from_dict, parse_line
from gatekeeper.model.events import EventApproval

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gerrit_events"
SHA = "4a6e8f1c0b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
CID = "I0123456789abcdef0123456789abcdef01234567"

# fixture -> expected attributes of the parsed event
EXPECTED: dict[str, dict] = {
    "patchset-created-3x": dict(type="patchset-created", project="openstack/nova", branch="master",
                                change_number=12345, patchset=2, change_id=CID,
                                ref="refs/changes/45/12345/2", newrev=SHA,
                                account_username="alice", timestamp=1700000001.0),
    "patchset-created-2x": dict(type="patchset-created", project="openstack-infra/config",
                                change_number=98765, patchset=1, account_username="bob",
                                account_email="bob@example.org", timestamp=None),
    "comment-added-3x": dict(type="comment-added", change_number=12345, patchset=2,
                             account_username="core",
                             comment='Patch Set 2: Code-Review+2 Workflow+1\n\nLooks good "to me"',
                             approvals=(EventApproval("Code-Review", 2, 0),
                                        EventApproval("Workflow", 1, 0),
                                        EventApproval("Verified", 1, None))),
    "comment-added-2x-recheck": dict(type="comment-added", branch="stable/2023.1",
                                     change_number=555, patchset=3, account_username="carol",
                                     comment="Patch Set 3:\n\nrecheck",
                                     approvals=(EventApproval("CRVW", 0, None),)),
    "change-merged": dict(type="change-merged", change_number=12345, patchset=2,
                          newrev="5" * 40, account_username="gatekeeper"),
    "change-abandoned": dict(type="change-abandoned", account_username="alice",
                             comment="Superseded by I9999"),
    "change-restored": dict(type="change-restored", account_username="alice",
                            comment="Still needed"),
    "ref-updated-3x": dict(type="ref-updated", project="openstack/nova", branch="master",
                           ref="refs/heads/master", oldrev="9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
                           newrev="5" * 40, change_number=None, account_username="gatekeeper"),
    "ref-updated-2x": dict(type="ref-updated", branch="stable/2014.1",
                           ref="refs/heads/stable/2014.1", oldrev="0" * 40, newrev="6" * 40),
    "ref-updated-tag": dict(type="ref-updated", branch=None, ref="refs/tags/1.0.0"),
    "reviewer-added": dict(type="reviewer-added", account_username="dave", patchset=2),
    "draft-published": dict(type="draft-published", project="openstack/glance",
                            change_number=4321, patchset=2, account_username="bob"),
    "topic-changed": dict(type="topic-changed", change_number=12345, patchset=None,
                          account_username="alice"),
    "merge-failed": dict(type="merge-failed", account_username="gatekeeper",
                         comment="Change could not be merged due to a path conflict."),
    "hashtags-changed": dict(type="hashtags-changed", account_username="alice"),
    "wip-state-changed": dict(type="wip-state-changed", account_username="alice"),
    "private-state-changed": dict(type="private-state-changed", account_username="alice"),
    "vote-deleted": dict(type="vote-deleted", account_username="admin",
                         approvals=(EventApproval("Code-Review", 0, -2),)),
    "change-deleted": dict(type="change-deleted", change_number=777, account_username="admin"),
    "project-created": dict(type="project-created", project="openstack/new-project",
                            branch="main", change_number=None),
    "ref-replicated": dict(type="ref-replicated", project="openstack/nova",
                           ref="refs/changes/45/12345/2", branch=None),
    "assignee-changed": dict(type="assignee-changed", account_username="alice"),
    "dropped-output": dict(type="dropped-output", project=None, timestamp=1700002000.0),
    "comment-added-minimal": dict(type="comment-added", project=None, change_number=None,
                                  approvals=(), comment=None, account_username=None),
    "patchset-created-missing-change": dict(type="patchset-created", project=None,
                                            patchset=None, account_username=None,
                                            timestamp=None),
}


def test_every_fixture_has_expectations():
    names = {p.stem for p in FIXTURES.glob("*.json")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses(name):
    line = (FIXTURES / f"{name}.json").read_text()
    ev = parse_line(line)
    assert ev is not None
    for attr, want in EXPECTED[name].items():
        assert getattr(ev, attr) == want, attr
    assert ev.synthetic is False


@pytest.mark.parametrize("line", [
    "", "   ", "not json", '{"type": "comment-added"', "[1, 2]", "42", "null",
    '{"no": "type"}', '{"type": 7}', '{"type": "some-plugin-event", "x": 1}',
    b'\xff\xfe{"type":', '"just a string"',
])
def test_bad_lines_are_skipped_not_raised(line):
    assert parse_line(line) is None


def test_malformed_line_is_logged_truncated(caplog):
    secretish = "x" * 5000
    with caplog.at_level(logging.WARNING, "gatekeeper.gerrit.events"):
        assert parse_line('{"broken": "' + secretish) is None
    assert caplog.records
    assert all(len(r.getMessage()) < 400 for r in caplog.records)


@pytest.mark.parametrize("raw,want", [
    ({"type": "comment-added", "change": {"number": "7"}, "patchSet": {"number": "3"}}, (7, 3)),
    ({"type": "comment-added", "change": {"number": 7}, "patchSet": {"number": 3}}, (7, 3)),
    ({"type": "comment-added", "change": {"number": "abc"}, "patchSet": {}}, (None, None)),
    ({"type": "comment-added", "change": None, "patchSet": []}, (None, None)),
    ({"type": "comment-added", "change": {"number": True}}, (None, None)),
])
def test_number_variants(raw, want):
    ev = event_from_dict(raw)
    assert (ev.change_number, ev.patchset) == want


@pytest.mark.parametrize("approvals,want", [
    ([{"type": "Verified", "value": "-1"}], (EventApproval("Verified", -1),)),
    ([{"type": "Verified", "value": -1, "oldValue": "1"}], (EventApproval("Verified", -1, 1),)),
    ([{"type": "Code-Review", "value": "+2"}], (EventApproval("Code-Review", 2),)),
    ([{"description": "Workflow", "value": "1"}], (EventApproval("Workflow", 1),)),
    ([{"type": "Verified"}, {"value": "1"}, "junk", None], ()),
    ("not a list", ()),
])
def test_approval_variants(approvals, want):
    ev = event_from_dict({"type": "comment-added", "approvals": approvals})
    assert ev.approvals == want


def test_roundtrip_through_json_dump():
    # The stream may deliver keys in any order and with unicode.
    raw = {"type": "comment-added", "comment": "r\u00e9check \u2603",
           "change": {"project": "p", "number": 1}, "patchSet": {"number": 1},
           "eventCreatedOn": 5}
    ev = parse_line(json.dumps(raw, ensure_ascii=True))
    assert ev.comment == "r\u00e9check \u2603"
    assert ev.timestamp == 5.0


def test_parsed_events_are_whole_frozen_trigger_events():
    """The fast constructor gives what TriggerEvent(...) gives, defaults included."""
    import dataclasses

    from gatekeeper.model.events import TriggerEvent
    line = ('{"type": "comment-added", "change": {"project": "p", "branch": "b", "number": "7"},'
            ' "patchSet": {"number": 2, "ref": "refs/changes/07/7/2"}, "comment": "hi",'
            ' "author": {"username": "u"}, "approvals": [{"type": "Verified", "value": " +1",'
            ' "oldValue": "0"}], "eventCreatedOn": 5}')
    ev = parse_line(line)
    assert ev == TriggerEvent("comment-added", project="p", branch="b", ref="refs/changes/07/7/2",
                              change_number=7, patchset=2, comment="hi",
                              approvals=(EventApproval("Verified", 1, 0),),
                              account_username="u", timestamp=5.0)
    assert ev.source == "gerrit" and ev.synthetic is False and ev.pipeline is None
    assert hash(ev) == hash(dataclasses.replace(ev))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.type = "x"  # type: ignore[misc]


def test_shared_votes_keep_their_types_apart():
    """Votes are parsed once per distinct raw vote: 1, "1", 1.0 and True must not share."""
    from gatekeeper.gerrit.events import parse_approvals
    got = [parse_approvals([{"type": "Verified", "value": v}]) for v in (True, 1, "1", 1.0, True)]
    assert got == [(), (EventApproval("Verified", 1),), (EventApproval("Verified", 1),),
                   (EventApproval("Verified", 1),), ()]
    assert parse_approvals([{"type": ["x"], "value": 1}, {"type": "Code-Review", "value": [2]}]) \
        == ()


# --- the decoder is json.loads, faster ----------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gatekeeper.gerrit.events import _decode  # noqa: E402

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=8)


def _outcome(fn, text):
    try:
        return ("ok", repr(fn(text)))
    except json.JSONDecodeError as e:
        return ("error", e.msg, e.pos)


@settings(max_examples=200, deadline=None)
@given(value=_JSON, tail=st.sampled_from(["", " x", "}", "\ufeff", "\t", ",1"]),
       head=st.sampled_from(["", "\ufeff", "[", "{", "x"]))
def test_decode_answers_like_json_loads(value, tail, head):
    text = (head + json.dumps(value) + tail).strip()
    if not text:
        return
    assert _outcome(_decode, text) == _outcome(json.loads, text)
