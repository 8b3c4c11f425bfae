"""Our watcher, source and reporter against the Gerrit emulator over real SSH."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.catchup import CatchUp
from gatekeeper.gerrit.reporter import GerritReporter
from gatekeeper.gerrit.source import GerritSource
from gatekeeper.gerrit.ssh import GerritError, GerritSSH
from gatekeeper.gerrit.watcher import GerritWatcher
from gatekeeper.ssh import SshTarget
from tests.integration.gerrit_conn_support import (
    PROJECT,
    Collector,
    Gerrit,
    client_transports,
    make_gerrit,
    wait_until,
)

pytestmark = pytest.mark.integration

FAST = Backoff(initial=0.05, factor=2, maximum=0.2, jitter=0.5)


@pytest.fixture
def gerrit(tmp_path: Path):
    g = make_gerrit(tmp_path)
    try:
        yield g
    finally:
        g.emu.stop()


@pytest.fixture
def watch(gerrit: Gerrit):
    """Factory for started watchers; every one is stopped at teardown."""
    made: list[GerritWatcher] = []

    def start(**kw) -> tuple[GerritWatcher, Collector]:
        sink = Collector()
        args = dict(known_hosts=str(gerrit.known_hosts), backoff=FAST, poll_interval=0.1)
        args.update(kw)
        w = GerritWatcher("127.0.0.1", gerrit.port, kw.pop("username", "gatekeeper"),
                          str(args.pop("private_key", gerrit.key)), sink, **args)
        made.append(w)
        w.start()
        return w, sink

    yield start
    for w in made:
        w.stop()


def force_drop(emu, w: GerritWatcher) -> None:
    """Drop the watcher's stream (the server may not have subscribed it yet:
    repeat until the watcher saw its connection end)."""
    before = w.drops

    def dropped() -> bool:
        if w.drops > before:
            return True
        emu.drop_streams()
        return w.drops > before

    assert wait_until(dropped, 10)


def ssh_for(gerrit: Gerrit) -> GerritSSH:
    return GerritSSH(SshTarget("127.0.0.1", gerrit.port, "gatekeeper", str(gerrit.key),
                               known_hosts=str(gerrit.known_hosts)))


def test_events_arrive_parsed(gerrit, watch):
    w, sink = watch()
    assert w.wait_connected(10) and gerrit.emu.wait_for_stream_clients(1, 10)
    n = gerrit.emu.create_change(PROJECT, subject="first")
    gerrit.emu.approve(n)
    assert sink.wait_for(lambda evs: any(e.type == "comment-added" for e in evs))
    ps = sink.of("patchset-created", n)[0]
    assert (ps.project, ps.branch, ps.patchset, ps.account_username) == (PROJECT, "master", 1,
                                                                         "alice")
    ca = sink.of("comment-added", n)[0]
    assert ca.account_username == "core" and not ca.synthetic
    assert {(a.label, a.value) for a in ca.approvals} >= {("Code-Review", 2), ("Workflow", 1)}


def test_burst_of_50_arrives_without_a_51st(gerrit, watch):
    """gerritlib's trap: lines already received waited for the next event."""
    n = gerrit.emu.create_change(PROJECT)
    w, sink = watch()
    assert w.wait_connected(10) and gerrit.emu.wait_for_stream_clients(1, 10)
    gerrit.emu.pause_events()
    for i in range(50):
        gerrit.emu.comment(n, f"burst {i}", user="bob")
    gerrit.emu.resume_events()  # all 50 lines leave the server at once
    assert sink.wait_for(lambda evs: sum(e.type == "comment-added" for e in evs) == 50, 10), \
        f"only {len(sink.of('comment-added'))} of 50 delivered"
    comments = [e.comment for e in sink.of("comment-added")]
    assert [c.rsplit(" ", 1)[-1] for c in comments] == [str(i) for i in range(50)]


def test_ten_drops_every_approval_delivered_exactly_once(gerrit, watch):
    emu = gerrit.emu
    changes = [emu.create_change(PROJECT, subject=f"c{i}") for i in range(30)]
    w, sink = watch(backoff=Backoff(initial=0.2, factor=1.5, maximum=0.5, jitter=0.2))
    assert w.wait_connected(10)
    approved: list[int] = []
    it = iter(changes)
    for round_ in range(10):
        assert wait_until(lambda k=round_ + 1: w.connected and w.connects == k)
        n = next(it)
        emu.approve(n)  # streamed
        approved.append(n)
        if round_ % 3 == 2:
            emu.pause_events()  # held by the server, delivered after the reconnect
            n = next(it)
            emu.approve(n)
            approved.append(n)
        force_drop(emu, w)
        n = next(it)
        emu.approve(n)  # nobody is listening: only catch-up can find this one
        approved.append(n)
        if round_ % 3 == 2:
            assert wait_until(lambda k=round_ + 2: w.connected and w.connects == k)
            emu.resume_events()
    assert wait_until(lambda: w.connected and w.connects == 11)
    # A marker after the last drop: once it is here, everything before it is.
    marker = next(it)
    emu.comment(marker, "marker", user="bob")

    def approvals_of(n):
        return [e for e in sink.of("comment-added", n)
                if any(a.label == "Workflow" and a.value == 1 for a in e.approvals)]

    assert sink.wait_for(lambda evs: all(approvals_of(n) for n in approved)
                         and any(e.comment and "marker" in e.comment for e in evs), 30), \
        [n for n in approved if not approvals_of(n)]
    assert wait_until(lambda: not w.catchup_pending)
    # Gaps that overlap are filled by one catch-up, so there may be fewer than drops.
    assert w.drops == 10 and w.catchups >= 1
    assert {n: len(approvals_of(n)) for n in approved} == {n: 1 for n in approved}
    assert any(e.synthetic for e in sink.events), "the gaps were not filled by catch-up"
    # no leaked connections: one stream on the server, one client transport here
    assert wait_until(lambda: emu.stream_client_count() == 1)
    assert wait_until(lambda: len(client_transports()) == 1), client_transports()


def test_stop_leaves_no_threads(gerrit, watch):
    before = set(threading.enumerate())
    w, sink = watch()
    assert w.wait_connected(10) and gerrit.emu.wait_for_stream_clients(1, 10)
    force_drop(gerrit.emu, w)
    assert wait_until(lambda: w.connects >= 2)
    w.stop()
    assert not w.alive
    assert wait_until(lambda: not (set(threading.enumerate()) - before)), \
        set(threading.enumerate()) - before
    assert gerrit.emu.wait_for_stream_clients_below(1, 10)


def test_wrong_key_fails_fast_with_one_clear_error(gerrit, watch, caplog):
    fatal: list[str] = []
    w, sink = watch(private_key=gerrit.other_key, on_fatal=fatal.append)
    assert wait_until(lambda: not w.alive, 10)
    assert w.connects == 0 and len(fatal) == 1
    assert "rejected the SSH key" in fatal[0] and "gatekeeper@127.0.0.1" in fatal[0]
    assert "PRIVATE KEY" not in caplog.text


def test_missing_key_file_is_a_clear_error(gerrit, watch, tmp_path):
    w, _ = watch(private_key=tmp_path / "nope")
    assert wait_until(lambda: not w.alive, 10)
    assert "does not exist" in w.error


def test_unknown_host_key_rejected_unless_checking_off(gerrit, watch, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    w, _ = watch(known_hosts=str(empty))
    assert wait_until(lambda: not w.alive, 10)
    assert "not in known_hosts" in w.error and w.connects == 0
    wrong = tmp_path / "wrong_known_hosts"
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIGq0n5ULt0bBJ5d1UQ3uxVbE2jK0p3X1o8c8m7yC2fP3"
    wrong.write_text(f"[127.0.0.1]:{gerrit.port} ssh-ed25519 {other}\n")
    w2, _ = watch(known_hosts=str(wrong))
    assert wait_until(lambda: not w2.alive, 10)
    assert "does not match" in w2.error
    w3, _ = watch(known_hosts=str(empty), host_key_checking=False)
    assert w3.wait_connected(10)


def test_source_reads_changes_dependencies_and_branches(gerrit):
    emu = gerrit.emu
    base = emu.create_change(PROJECT, subject="base", files={"a.txt": "a\n"})
    dep_cid = emu.change_id(base)
    top = emu.create_change(PROJECT, subject="top", files={"b.txt": "b\n"},
                            depends_on=[dep_cid], parent_change=base)
    emu.review(top, user="bob", labels={"Code-Review": 1})
    ssh = ssh_for(gerrit)
    try:
        src = GerritSource(ssh)
        c = src.get_change(top)
        assert (c.number, c.patchset, c.project, c.branch, c.status) == (top, 1, PROJECT,
                                                                        "master", "NEW")
        assert c.depends_on == [dep_cid]
        assert c.needed_by_parent == [base]
        assert c.files == ["b.txt"]
        assert [(a.label, a.value, a.username) for a in c.approvals] == [("Code-Review", 1, "bob")]
        assert c.change_id == emu.change_id(top) and c.ref.endswith(f"/{top}/1")
        queries = src.queries
        assert src.get_change(top).number == top and src.queries == queries  # cached
        emu.add_patchset(top, files={"b.txt": "b2\n"})
        src.invalidate(top)
        c2 = src.get_change(top)
        assert c2.patchset == 2 and src.queries == queries + 1
        old = src.get_change(top, patchset=1)
        assert old.patchset == 1 and not old.is_current_patchset
        same = src.get_changes_by_change_id(dep_cid)
        assert [x.number for x in same] == [base]
        assert src.get_changes_by_change_id("not-an-id") == []
        assert src.get_change(99999) is None
        with pytest.raises(GerritError, match="Unsupported"):
            src._query(["frobnicate:yes"], ("--current-patch-set",))  # Gerrit's error row
        assert src.get_project_branches(PROJECT) == ["master"]
        ref = src.get_ref(PROJECT, "master", "a" * 40, "b" * 40)
        assert ref.ref == "refs/heads/master" and ref.url.endswith(f":{gerrit.port}/{PROJECT}")
    finally:
        ssh.close()


HOSTILE = [
    'x" --code-review +2 --submit --message "y',
    "it's \"quoted\" \\ back\\slash \\\" and\nnew\nlines",
    "$(touch /tmp/pwned) `id` ${HOME} ; rm -rf / && echo | cat",
    "-- --submit",
    "--verified=2",
    "unicode \u2603 \t tab",
]


@pytest.mark.parametrize("message", HOSTILE)
def test_hostile_review_messages_arrive_verbatim_and_nothing_else(gerrit, message):
    emu = gerrit.emu
    n = emu.create_change(PROJECT)
    ssh = ssh_for(gerrit)
    try:
        rep = GerritReporter(ssh)
        src = GerritSource(ssh)
        res = rep.report(src.get_change(n), message, {"Verified": 1})
        assert res.ok, res.error
    finally:
        ssh.close()
    assert emu.messages(n)[-1] == ("gatekeeper", f"Patch Set 1: Verified+1\n\n{message}")
    assert emu.votes(n) == {"Verified": {"gatekeeper": 1}}
    assert emu.status(n) == "NEW"


def test_report_retries_through_failures_and_submit_refusal_is_returned(gerrit):
    emu = gerrit.emu
    n = emu.create_change(PROJECT, files={"README": "one\n"})
    other = emu.create_change(PROJECT, files={"README": "two\n"})
    ssh = ssh_for(gerrit)
    try:
        rep = GerritReporter(ssh, attempts=3, backoff=Backoff(initial=0.01, maximum=0.02))
        src = GerritSource(ssh)
        emu.fail_reviews(2)
        assert rep.report(src.get_change(n), "third time lucky", {"Verified": 1}).ok
        assert emu.votes(n)["Verified"] == {"gatekeeper": 1}
        emu.fail_reviews(5)
        res = rep.report(src.get_change(n), "never", {})
        assert not res.ok and "internal server error" in res.error
        emu.fail_reviews(0)
        # Merge one, then the other conflicts: refused, not retried, Gerrit's words returned.
        emu.approve(other)
        ok, err = emu.submit(other)
        assert ok, err
        emu.approve(n)
        res = rep.report(src.get_change(n), "gate passed", {"Verified": 2}, submit=True)
        assert not res.ok and res.error
        assert emu.status(n) == "NEW"
    finally:
        ssh.close()


def test_catchup_floor_ignores_history_before_first_connect(gerrit, watch):
    emu = gerrit.emu
    old = emu.create_change(PROJECT, subject="before we started")
    emu.approve(old)
    # Gerrit stamps whole seconds: start in the next one so "before" is unambiguous.
    assert wait_until(lambda: int(time.time()) > emu.get_change(old)["lastUpdated"])
    w, sink = watch(catchup=CatchUp(margin=3600, floor_slack=0))
    assert w.wait_connected(10)
    force_drop(emu, w)
    assert wait_until(lambda: w.catchups >= 1, 15)
    new = emu.create_change(PROJECT, subject="after")
    assert sink.wait_for(lambda evs: any(e.change_number == new for e in evs))
    assert not sink.of("comment-added", old) and not sink.of("patchset-created", old)


def test_command_connection_sets_tcp_nodelay(gerrit_emulator):
    """Without TCP_NODELAY each Gerrit command costs ~40 ms on loopback."""
    import socket as socketlib

    from gatekeeper.gerrit.ssh import close_client, connect
    from gatekeeper.ssh import SshTarget

    setup = gerrit_emulator
    target = SshTarget(host=setup.emu.host, port=setup.emu.port, username="gatekeeper",
                       private_key=str(setup.key), known_hosts=str(setup.known_hosts))
    client = connect(target)
    try:
        sock = client.get_transport().sock
        assert sock.getsockopt(socketlib.IPPROTO_TCP, socketlib.TCP_NODELAY) != 0
    finally:
        close_client(client)
