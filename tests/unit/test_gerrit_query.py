"""Query rows -> Change, Depends-On footers, command building."""

from __future__ import annotations

import json

import pytest

from gatekeeper.gerrit.query import (
    QueryError,
    change_from_row,
    depends_on,
    parse_query_output,
    query_argv,
)
from gatekeeper.shell import command_line

CID = "I" + "1" * 40
CID2 = "I" + "a" * 40


def test_depends_on_footers_case_insensitive_dedup_and_strict():
    msg = (f"Subject\n\nBody\n\nDepends-On: {CID}\ndepends-on:   {CID2.upper().replace('I', 'I', 1)}\n"
           f"DEPENDS-ON: {CID}\nDepends-On: Ishort\nNot-Depends-On: {CID}x\n"
           f"Change-Id: I{'2' * 40}\n")
    assert depends_on(msg) == [CID, CID2]
    assert depends_on(None) == [] and depends_on("") == []


ROW = {
    "project": "p", "branch": "master", "id": CID, "number": "7", "subject": "s",
    "owner": {"name": "A", "email": "a@x", "username": "alice"}, "url": "http://g/7",
    "commitMessage": f"s\n\nDepends-On: {CID2}\n", "status": "NEW", "lastUpdated": 1234,
    "currentPatchSet": {"number": "3", "revision": "c" * 40, "parents": ["b" * 40],
                        "ref": "refs/changes/07/7/3",
                        "approvals": [{"type": "Verified", "value": "1", "grantedOn": 99,
                                       "by": {"username": "ci"}},
                                      {"type": "Code-Review", "value": "-2"},
                                      {"type": "broken"}],
                        "files": [{"file": "/COMMIT_MSG", "type": "ADDED"},
                                  {"file": "a.py", "type": "MODIFIED"}]},
    "patchSets": [{"number": 1, "revision": "1" * 40, "ref": "refs/changes/07/7/1"},
                  {"number": "3", "revision": "c" * 40}],
    "dependsOn": [{"id": CID2, "number": "5", "revision": "b" * 40, "isCurrentPatchSet": True},
                  {"number": 4, "isCurrentPatchSet": False}],
}


def test_change_from_row_current():
    c = change_from_row(ROW)
    assert (c.number, c.patchset, c.project, c.branch, c.status) == (7, 3, "p", "master", "NEW")
    assert c.revision == "c" * 40 and c.parents == ["b" * 40] and c.ref == "refs/changes/07/7/3"
    assert [(a.label, a.value, a.username, a.granted_on) for a in c.approvals] == [
        ("Verified", 1, "ci", 99), ("Code-Review", -2, None, None)]
    assert c.files == ["a.py"]
    assert c.depends_on == [CID2]
    assert c.needed_by_parent == [5]
    assert c.is_current_patchset and c.owner_username == "alice" and c.last_updated == 1234


def test_change_from_row_old_patchset_and_missing():
    c = change_from_row(ROW, patchset=1)
    assert c.patchset == 1 and not c.is_current_patchset and c.files is None
    assert change_from_row(ROW, patchset=2) is None
    assert change_from_row({"number": 1}) is None
    minimal = change_from_row({"number": 9, "currentPatchSet": {"number": 1}, "open": False})
    assert minimal.ref == "refs/changes/09/9/1" and minimal.status == "MERGED"
    assert minimal.files is None and minimal.approvals == []


def test_parse_output_rows_stats_error_and_junk():
    text = "\n".join([json.dumps(ROW), "garbage", "[]", json.dumps({"type": "stats", "rowCount": 1,
                                                                   "moreChanges": True})])
    res = parse_query_output(text)
    assert len(res.rows) == 1 and res.more_changes
    with pytest.raises(QueryError, match="bad"):
        parse_query_output(json.dumps({"type": "error", "message": "bad query"}))


def test_query_argv_and_quoting():
    argv = query_argv(["change:7"], ("--current-patch-set", "--files"), start=20)
    assert argv == ["gerrit", "query", "--format=JSON", "--current-patch-set", "--files",
                    "--start", "20", "change:7"]
    with pytest.raises(ValueError):
        query_argv(["x"], ("--evil",))
    line = command_line(["gerrit", "review", "--message", "a'b \"c\" $(x) `y`\nz"])
    assert line == "gerrit review --message 'a'\"'\"'b \"c\" $(x) `y`\nz'"


def test_query_command_line_has_no_stray_quote():
    """gerritlib's query() appended a trailing '"' to the command."""
    line = command_line(query_argv(["change:7"], ("--current-patch-set",)))
    assert line == "gerrit query --format=JSON --current-patch-set change:7"
    line = command_line(query_argv(["status:open", "NOT", "age:30s"]))
    assert line.endswith("status:open NOT age:30s") and '"' not in line
