"""The Gerrit emulator over real SSH on loopback: streams, review, query, faults."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import threading
from pathlib import Path

import paramiko
import pytest

from gatekeeper.nodes.localsshd import generate_keypair
from gatekeeper.sim.gerrit import GerritEmulator
from tests.fixtures.gerrit_emulator import (
    EmulatorSetup,
    StreamReader,
    connect,
    port_is_closed,
    run,
)

pytestmark = pytest.mark.integration

HOSTILE = ('x" --code-review +2 --submit --message "y \' quote\\ back\\\\slash\n'
           'second line $(touch /tmp/pwn) `id` ; rm -rf / && echo $HOME')


def test_stream_events_to_two_clients(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    a = StreamReader(emu, key, "alice")
    b = StreamReader(emu, key, "gatekeeper")
    try:
        assert emu.wait_for_stream_clients(2, 10)
        n = emu.create_change("org/project", subject="Add feature", topic="feat")
        emu.approve(n, user="core")
        for reader in (a, b):
            ev = reader.next()
            assert ev["type"] == "patchset-created"
            assert ev["change"]["number"] == n
            assert ev["change"]["project"] == "org/project"
            assert ev["change"]["branch"] == "master"
            assert ev["change"]["topic"] == "feat"
            assert ev["change"]["id"] == emu.change_id(n)
            assert ev["change"]["owner"]["username"] == "alice"
            assert "Change-Id: " + emu.change_id(n) in ev["change"]["commitMessage"]
            assert ev["patchSet"]["number"] == 1
            assert ev["patchSet"]["ref"] == f"refs/changes/{n:02d}/{n}/1"
            assert ev["patchSet"]["kind"] == "REWORK"
            assert ev["uploader"]["username"] == "alice"
            assert isinstance(ev["eventCreatedOn"], int)
            ev = reader.next_of("comment-added")
            assert ev["author"]["username"] == "core"
            assert ev["comment"] == "Patch Set 1: Code-Review+2 Workflow+1"
            # Every label the author may vote; oldValue only where this review changed it.
            assert ev["approvals"] == [
                {"type": "Code-Review", "description": "Code-Review", "value": "2",
                 "oldValue": "0"},
                {"type": "Verified", "description": "Verified", "value": "0"},
                {"type": "Workflow", "description": "Workflow", "value": "1", "oldValue": "0"},
                {"type": "Approved", "description": "Approved", "value": "0"}]
    finally:
        a.close()
        b.close()
    assert emu.wait_for_stream_clients_below(1, 10)


def test_subscribe_filter_and_recheck_carries_existing_votes(
        gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    reader = StreamReader(emu, key, args="-s comment-added --subscribe change-merged")
    try:
        assert emu.wait_for_stream_clients(1, 10)
        n = emu.create_change("org/project", subject="One")
        emu.approve(n)
        emu.comment(n, "recheck", user="core")
        first = reader.next()
        assert first["type"] == "comment-added" and first["approvals"][0]["oldValue"] == "0"
        second = reader.next()
        # Like Gerrit >= 2.13: the author's standing votes ride along, without oldValue.
        assert second["comment"] == "Patch Set 1:\n\nrecheck"
        assert [(a["type"], a["value"], a.get("oldValue")) for a in second["approvals"]] == [
            ("Code-Review", "2", None), ("Verified", "0", None), ("Workflow", "1", None),
            ("Approved", "0", None)]
        assert emu.submit(n) == (True, None)
        assert reader.next()["type"] == "change-merged"
    finally:
        reader.close()


def test_user_without_stream_events_capability_is_refused(
        gerrit_emulator: EmulatorSetup) -> None:
    client = connect(gerrit_emulator.emu, gerrit_emulator.key, "nostream")
    try:
        status, out, err = run(client, "gerrit stream-events")
        assert status == 1 and out == ""
        assert err == "fatal: stream events not permitted\n"
    finally:
        client.close()


def test_hostile_review_message_arrives_verbatim(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    n = emu.create_change("org/project", subject="Target")
    client = connect(emu, key, "gatekeeper")
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        cmd = (f"gerrit review {n},1 --project org/project --message "
               f"{shlex.quote(HOSTILE)} --verified -1")
        status, out, err = run(client, cmd)
        assert (status, err) == (0, "")
        ev = reader.next_of("comment-added")
        assert ev["comment"] == "Patch Set 1: Verified-1\n\n" + HOSTILE
        assert [a for a in ev["approvals"] if "oldValue" in a] == [
            {"type": "Verified", "description": "Verified", "value": "-1", "oldValue": "0"}]
        assert {a["value"] for a in ev["approvals"] if a["type"] != "Verified"} == {"0"}
    finally:
        reader.close()
        client.close()
    assert emu.votes(n) == {"Verified": {"gatekeeper": -1}}
    assert emu.status(n) == "NEW"
    assert emu.messages(n)[-1] == ("gatekeeper", "Patch Set 1: Verified-1\n\n" + HOSTILE)
    assert not Path("/tmp/pwn").exists()


def test_review_json_on_stdin(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Json")
    client = connect(emu, gerrit_emulator.key, "gatekeeper")
    try:
        review = {"message": HOSTILE, "labels": {"Verified": 2, "Code-Review": "+1"}}
        status, _, err = run(client, f"gerrit review --json {n},1",
                             stdin=json.dumps(review).encode())
        assert (status, err) == (0, "")
        assert emu.votes(n) == {"Verified": {"gatekeeper": 2}, "Code-Review": {"gatekeeper": 1}}
        assert emu.messages(n)[-1][1].endswith("\n\n" + HOSTILE)
        status, _, err = run(client, f"gerrit review --json {n},1", stdin=b"{not json")
        assert status == 1 and err.startswith("fatal: Invalid json input")
        status, _, err = run(client, f"gerrit review -j --submit {n},1", stdin=b"{}")
        assert status == 1 and "mutually exclusive" in err
    finally:
        client.close()


def test_review_options_and_errors(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Opts")
    sha = emu.get_change(n)["currentPatchSet"]["revision"]
    client = connect(emu, gerrit_emulator.key, "gatekeeper")
    try:
        assert run(client, f"gerrit review {sha[:10]} -p org/project --label Verified=+2 "
                           "--label=Code-Review=-1 --message=hi")[0] == 0
        assert emu.votes(n) == {"Verified": {"gatekeeper": 2}, "Code-Review": {"gatekeeper": -1}}
        assert emu.messages(n)[-1][1] == "Patch Set 1: Verified+2 Code-Review-1\n\nhi"
        cases = {
            f"gerrit review {n},1 --code-review 3": 'Applying label "Code-Review": +3 is restricted',
            f"gerrit review {n},1 --verified x": '"x" is not a valid value for "--verified"',
            f"gerrit review {n},1 --bogus": '"--bogus" is not a valid option',
            f"gerrit review {n},1 --message": 'Option "--message" takes an operand',
            "gerrit review 999,1 -m x": '"999,1" no such patch set',
            f"gerrit review {n},1 --abandon --submit": "mutually exclusive",
            "gerrit review --verified 1": "is required",
            f"gerrit review {n},1 -p other/project -m x": "no such patch set",
            f"gerrit review {n},1 --label Nope=1": 'label "Nope" is not a configured label',
            "gerrit frobnicate": "fatal: gerrit: frobnicate: not found",
            "rm -rf /": "fatal: Gerrit Code Review: rm: not found",
        }
        for cmd, expected in cases.items():
            status, out, err = run(client, cmd)
            assert status == 1, cmd
            assert expected in err, (cmd, err)
        assert emu.votes(n) == {"Verified": {"gatekeeper": 2}, "Code-Review": {"gatekeeper": -1}}
        # Submit through review: blocked by the -1? No: Code-Review needs +2.
        status, _, err = run(client, f"gerrit review {n},1 --submit")
        assert status == 1
        assert "submit requirement 'Code-Review' is unsatisfied" in err
        assert "one or more reviews failed" in err
        emu.approve(n)
        assert run(client, f"gerrit review {n},1 --code-review 0 --submit")[0] == 0
        assert emu.status(n) == "MERGED"
        status, _, err = run(client, "gerrit version")
        assert status == 0
    finally:
        client.close()


def test_abandon_and_restore_events(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    n = emu.create_change("org/project", subject="Drop me")
    client = connect(emu, key, "alice")
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        assert run(client, f"gerrit review {n},1 --abandon -m 'not needed'")[0] == 0
        assert reader.next()["type"] == "comment-added"
        ev = reader.next()
        assert ev["type"] == "change-abandoned" and ev["abandoner"]["username"] == "alice"
        assert ev["change"]["status"] == "ABANDONED"
        assert emu.submit(n) == (False, "Failed to submit 1 change due to the following "
                                        f"problems:\nChange {n}: change is abandoned")
        emu.restore(n, user="bob", reason="needed after all")
        ev = reader.next()
        assert ev["type"] == "change-restored" and ev["reason"] == "needed after all"
        assert ev["restorer"]["username"] == "bob"
        assert emu.status(n) == "NEW"
        # Restore and vote in one command: restored first, as Gerrit does.
        emu.abandon(n, "alice")
        assert run(client, f"gerrit review {n},1 --restore --code-review -1")[0] == 0
        assert emu.status(n) == "NEW" and emu.votes(n) == {"Code-Review": {"alice": -1}}
    finally:
        reader.close()
        client.close()


def test_query_rows_stats_and_time_filters(tmp_path: Path, gerrit_key: Path) -> None:
    now = [1_700_000_000.0]
    emu = GerritEmulator(tmp_path / "g", clock=lambda: now[0])
    emu.add_user("alice", gerrit_key.with_suffix(".pub").read_text())
    emu.add_user("core", None)
    emu.create_project("org/project", branches=("master", "stable"))
    emu.create_project("org/other")
    a = emu.create_change("org/project", subject="A")
    now[0] += 3600
    b = emu.create_change("org/project", branch="stable", subject="B", depends_on=["Iabc123"])
    c = emu.create_change("org/project", subject="C", parent_change=a)
    now[0] += 3600
    d = emu.create_change("org/other", subject="D")
    emu.approve(a)
    emu.abandon(d, "alice")
    emu.start()
    client = connect(emu, gerrit_key)

    def query(q: str) -> tuple[list[dict], dict]:
        status, out, err = run(client, "gerrit query --format=JSON --current-patch-set "
                                       f"--all-approvals --dependencies --commit-message {q}")
        assert status == 0, err
        rows = [json.loads(line) for line in out.splitlines()]
        return rows[:-1], rows[-1]

    try:
        rows, stats = query("status:open")
        assert [r["number"] for r in rows] == [a, c, b]  # most recently updated first
        assert stats["type"] == "stats" and stats["rowCount"] == 3
        assert stats["moreChanges"] is False
        row = rows[0]
        assert row["open"] is True and row["status"] == "NEW"
        assert {(x["type"], x["value"], x["by"]["username"])
                for x in row["currentPatchSet"]["approvals"]} == {
            ("Code-Review", "2", "core"), ("Workflow", "1", "core")}
        assert row["patchSets"][0]["approvals"] == row["currentPatchSet"]["approvals"]
        assert row["neededBy"][0]["number"] == c
        rows, _ = query(f"change:{c}")
        assert rows[0]["dependsOn"] == [{"id": emu.change_id(a), "number": a,
                                         "revision": emu.get_change(a)["currentPatchSet"]
                                         ["revision"], "ref": f"refs/changes/{a:02d}/{a}/1",
                                         "isCurrentPatchSet": True}]
        rows, _ = query(f"change:{b}")
        assert "Depends-On: Iabc123\n" in rows[0]["commitMessage"]
        assert [r["number"] for r in query("project:org/project branch:stable")[0]] == [b]
        assert [r["number"] for r in query("is:abandoned")[0]] == [d]
        assert [r["number"] for r in query("NOT is:open")[0]] == [d]
        # Like args4j in Gerrit, a leading "-term" needs "--" before it.
        assert [r["number"] for r in query("-- -is:open")[0]] == [d]
        rows, stats = query("status:open limit:1")
        assert len(rows) == 1 and stats["moreChanges"] is True
        # Time filters, quoted the way Gerrit's query parser wants them.
        # t0 = 2023-11-14 22:13:20 UTC; a and d were last updated at t0+2h,
        # b and c at t0+1h; ties sort by number, newest first (as Gerrit).
        rows, _ = query(shlex.quote('after:"2023-11-14 23:13:20"'))
        assert [r["number"] for r in rows] == [d, a, c, b]
        rows, _ = query(shlex.quote('since:{2023-11-15 00:13:20}') + " is:open")
        assert [r["number"] for r in rows] == [a]
        rows, _ = query(shlex.quote('after:"2023-11-15 00:13:21"'))
        assert rows == []
        rows, _ = query("-- -age:30m")
        assert [r["number"] for r in rows] == [d, a]
        rows, _ = query("age:2h")
        assert [r["number"] for r in rows] == []
        status, out, _ = run(client, "gerrit query --format=JSON foo:bar")
        assert status == 0 and json.loads(out) == {"type": "error",
                                                   "message": "Unsupported operator foo:bar"}
        # The default (human) TEXT format, as when an operator types the query.
        status, out, _ = run(client, f"gerrit query change:{a}")
        assert status == 0 and out.startswith(f"change {emu.change_id(a)}\n  project: org/")
        assert re.search(r"\n\ntype: stats\nrowCount: 1\nrunTimeMilliseconds: \d+\n"
                         r"moreChanges: false\n$", out)
        status, _, err = run(client, "gerrit query frob:1")
        assert (status, err) == (1, "fatal: Unsupported operator frob:1\n")
        status, _, err = run(client, "gerrit query --format=JSON --frob is:open")
        assert status == 1 and '"--frob" is not a valid option' in err
        status, out, _ = run(client, "gerrit ls-projects")
        assert out.splitlines() == ["org/other", "org/project"]
    finally:
        client.close()
        emu.stop()


def test_wrong_key_is_rejected(gerrit_emulator: EmulatorSetup, tmp_path: Path) -> None:
    other = generate_keypair(tmp_path / "other")
    with pytest.raises(paramiko.AuthenticationException):
        connect(gerrit_emulator.emu, other, "alice")
    with pytest.raises(paramiko.AuthenticationException):
        connect(gerrit_emulator.emu, gerrit_emulator.key, "nosuchuser")


def test_drop_streams_and_reconnect(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    readers = [StreamReader(emu, key), StreamReader(emu, key, "gatekeeper")]
    try:
        assert emu.wait_for_stream_clients(2, 10)
        assert emu.drop_streams() == 2
        for r in readers:
            with pytest.raises((EOFError, OSError)):
                r.next()
        assert emu.wait_for_stream_clients_below(1, 10)
        again = StreamReader(emu, key)
        readers.append(again)
        assert emu.wait_for_stream_clients(1, 10)
        n = emu.create_change("org/project", subject="After drop")
        assert again.next()["change"]["number"] == n
    finally:
        for r in readers:
            r.close()


def test_pause_and_resume_events(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        emu.pause_events()
        n = emu.create_change("org/project", subject="Held")
        emu.approve(n)
        marker = emu.create_change("org/project", subject="Marker")
        # Nothing may arrive while paused: the first line after resume must be
        # the first event created while paused.
        emu.resume_events()
        types = [(e["type"], e["change"]["number"]) for e in (reader.next() for _ in range(4))]
        assert types == [("patchset-created", n), ("reviewer-added", n),
                         ("comment-added", n), ("patchset-created", marker)]
    finally:
        reader.close()


def test_fail_reviews(gerrit_emulator: EmulatorSetup) -> None:
    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Flaky")
    emu.fail_reviews(2, "fatal: database is on fire")
    client = connect(emu, gerrit_emulator.key, "gatekeeper")
    try:
        for _ in range(2):
            status, _, err = run(client, f"gerrit review {n},1 --verified 1")
            assert (status, err) == (1, "fatal: database is on fire\n")
        assert emu.votes(n) == {}
        assert run(client, f"gerrit review {n},1 --verified 1")[0] == 0
        assert emu.votes(n) == {"Verified": {"gatekeeper": 1}}
    finally:
        client.close()


# gerritlib accepts unknown host keys with a warning (its WarningPolicy trap).
@pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")
def test_gerritlib_talks_to_the_emulator(gerrit_emulator: EmulatorSetup) -> None:
    from gerritlib.gerrit import Gerrit

    emu = gerrit_emulator.emu
    n = emu.create_change("org/project", subject="Via gerritlib")
    g = Gerrit("127.0.0.1", "gatekeeper", port=emu.port, keyfile=str(gerrit_emulator.key),
               connection_attempts=1)
    try:
        assert g.getVersion() == "3.9.1"
        row = g.query(f"change:{n}")  # gerritlib appends a stray '"': Gerrit drops it
        assert row["number"] == n and row["subject"] == "Via gerritlib"
        rows = g.bulk_query("is:open")
        assert rows[-1] == {**rows[-1], "type": "stats", "rowCount": 1}
        out, _ = g._ssh("gerrit ls-projects")
        assert out == "org/project\n"
        # gerritlib's review() does not escape: on real Gerrit (and here) the
        # message injects a vote. Our reporter must never use it.
        g.review("org/project", f"{n},1", 'x" --code-review 1 --message "y')
        assert emu.votes(n) == {"Code-Review": {"gatekeeper": 1}}
        assert emu.messages(n)[-1][1] == "Patch Set 1: Code-Review+1\n\ny"
    finally:
        if g.client is not None:
            g.client.close()


def child_processes() -> list[int]:
    """Live (non-zombie) child processes of this test process."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            kids.append(int(entry.name))
    return kids


def test_stop_leaves_no_threads_or_sockets(tmp_path: Path, gerrit_key: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gatekeeper.sim.gerrit")
    before = set(threading.enumerate())
    emu = GerritEmulator(tmp_path / "g")
    emu.add_user("alice", gerrit_key.with_suffix(".pub").read_text())
    emu.create_project("p")
    emu.start()
    port = emu.port
    reader = StreamReader(emu, gerrit_key)
    client = connect(emu, gerrit_key)
    assert emu.wait_for_stream_clients(1, 10)
    assert run(client, "gerrit query --format=JSON is:open")[0] == 0
    emu.create_change("p", subject="x")
    assert reader.next()["type"] == "patchset-created"
    # A git session parked after the ref advertisement (git waits for "wants").
    parked = client.get_transport().open_session(timeout=10)
    parked.settimeout(10)
    parked.exec_command("git-upload-pack '/p'")
    assert parked.recv(4)  # the advertisement has started: git is running
    assert len(child_processes()) == 1
    emu.stop()  # with clients and git still connected
    assert child_processes() == []
    # Sessions cut short by stop() end quietly (paramiko's own transport log aside).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
            and r.name.startswith("gatekeeper.sim.gerrit")
            and r.name != "gatekeeper.sim.gerrit.transport"] == []
    with pytest.raises((EOFError, OSError)):
        reader.next()
    reader.close()
    client.close()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leftover:  # client-side paramiko threads wind down after close()
        t.join(10)
    assert [t.name for t in threading.enumerate() if t not in before] == []
    assert port_is_closed("127.0.0.1", port)
    # And it starts again on the same port with the same host key.
    line = emu.host_key_line
    emu.start()
    try:
        assert emu.port == port and emu.host_key_line == line
        c2 = connect(emu, gerrit_key)
        assert run(c2, "gerrit version")[0] == 0
        c2.close()
    finally:
        emu.stop()


@pytest.mark.parametrize(("mode", "exit_status"), [("exit", 0), ("channel", -1)])
def test_drop_stream_modes(gerrit_emulator: EmulatorSetup, mode: str, exit_status: int) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        assert emu.drop_streams(mode) == 1
        with pytest.raises(EOFError):
            reader.next()
        assert reader.chan.recv_exit_status() == exit_status
        # Only the channel ended: the same SSH connection still runs commands.
        assert run(reader.client, "gerrit version")[0] == 0
    finally:
        reader.close()
    with pytest.raises(ValueError):
        emu.drop_streams("sideways")


def test_inject_raw_topic_reviewer_and_label_permissions(
        gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    n = emu.create_change("org/project", subject="Misc", topic="old")
    reader = StreamReader(emu, key)
    try:
        assert emu.wait_for_stream_clients(1, 10)
        assert emu.inject_raw("{not json") == 1
        assert reader.file.readline() == b"{not json\n"
        emu.set_topic(n, "new", user="bob")
        ev = reader.next()
        assert (ev["type"], ev["oldTopic"], ev["change"]["topic"]) == ("topic-changed", "old",
                                                                      "new")
        assert ev["changer"]["username"] == "bob"
        emu.add_reviewer(n, "core", adder="alice")
        ev = reader.next()
        assert (ev["type"], ev["reviewer"]["username"], ev["adder"]["username"]) == (
            "reviewer-added", "core", "alice")
    finally:
        reader.close()
    emu.restrict_label("Verified", ["gatekeeper"])
    client = connect(emu, key, "alice")
    try:
        status, _, err = run(client, f"gerrit review {n},1 --verified 1")
        assert status == 1 and 'Applying label "Verified": +1 is restricted' in err
    finally:
        client.close()
    emu.review(n, user="gatekeeper", labels={"Verified": 2})
    assert emu.votes(n) == {"Verified": {"gatekeeper": 2}}
    # A label the author may not vote is not in their comment's approvals.
    emu.comment(n, "looks fine", user="alice")
    last = emu.events()[-1]
    assert last["type"] == "comment-added"
    assert [a["type"] for a in last["approvals"]] == ["Code-Review", "Workflow", "Approved"]


def test_gerrit_2x_numbers_as_strings(tmp_path: Path, gerrit_key: Path) -> None:
    emu = GerritEmulator(tmp_path / "g", number_as_string=True)
    emu.add_user("alice", gerrit_key.with_suffix(".pub").read_text())
    emu.create_project("p")
    with emu:
        reader = StreamReader(emu, gerrit_key)
        try:
            assert emu.wait_for_stream_clients(1, 10)
            n = emu.create_change("p", subject="old style")
            ev = reader.next()
            assert ev["change"]["number"] == str(n) and ev["patchSet"]["number"] == "1"
            _, out, _ = run(reader.client, "gerrit query --format=JSON --current-patch-set "
                                           f"change:{n}")
            row = json.loads(out.splitlines()[0])
            assert row["number"] == str(n) and row["currentPatchSet"]["number"] == "1"
        finally:
            reader.close()


def test_concurrent_reviews_keep_one_consistent_order(gerrit_emulator: EmulatorSetup) -> None:
    emu, key = gerrit_emulator.emu, gerrit_emulator.key
    changes = [emu.create_change("org/project", subject=f"C{i}") for i in range(4)]
    readers = [StreamReader(emu, key, args="-s comment-added"), StreamReader(emu, key)]
    errors: list[str] = []

    def reviewer(number: int) -> None:
        client = connect(emu, key, "gatekeeper")
        try:
            for i in range(10):
                vote = 1 if i % 2 == 0 else -1
                status, _, err = run(client, f"gerrit review {number},1 --verified {vote} "
                                             f"-m {shlex.quote(f'run {i}')}")
                if status != 0:
                    errors.append(err)
        finally:
            client.close()

    try:
        assert emu.wait_for_stream_clients(2, 10)
        threads = [threading.Thread(target=reviewer, args=(n,)) for n in changes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        seen: dict[int, list[tuple[str, str]]] = {n: [] for n in changes}
        for _ in range(40):
            ev = readers[0].next()
            (approval,) = [a for a in ev["approvals"] if a["type"] == "Verified"]
            seen[ev["change"]["number"]].append((approval["oldValue"], approval["value"]))
        for n in changes:
            assert seen[n] == [("0", "1")] + [("1", "-1"), ("-1", "1")] * 4 + [("1", "-1")]
        # The unfiltered reader saw the same 40 comments plus one reviewer-added per change.
        types = [readers[1].next()["type"] for _ in range(44)]
        assert types.count("comment-added") == 40 and types.count("reviewer-added") == 4
        assert emu.votes(changes[0]) == {"Verified": {"gatekeeper": -1}}
    finally:
        for r in readers:
            r.close()
