"""Stream faults against the emulator: clean exits, closed channels, garbage
lines, dropped-output, and the whole GerritConnection with its event delay."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.connection import GerritConnection
from gatekeeper.gerrit.source import GerritSource
from gatekeeper.gerrit.ssh import GerritSSH
from gatekeeper.gerrit.watcher import GerritWatcher
from gatekeeper.ssh import SshTarget
from tests.integration.gerrit_conn_support import (
    PROJECT,
    Collector,
    client_transports,
    make_gerrit,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def gerrit(tmp_path: Path):
    g = make_gerrit(tmp_path)
    yield g
    g.emu.stop()


@pytest.fixture
def watcher(gerrit):
    made = []

    def start(**kw):
        sink = Collector()
        sleeps: list[float] = []
        stop = threading.Event()

        def sleep(d: float) -> None:  # record every backoff, then really wait
            sleeps.append(d)
            stop.wait(d)

        args = dict(known_hosts=str(gerrit.known_hosts), poll_interval=0.1, sleep=sleep,
                    backoff=Backoff(initial=0.05, factor=2, maximum=0.2, jitter=0.5))
        args.update(kw)
        w = GerritWatcher("127.0.0.1", gerrit.port, "gatekeeper", str(gerrit.key), sink, **args)
        made.append((w, stop))
        w.start()
        assert w.wait_connected(10) and gerrit.emu.wait_for_stream_clients(1, 10)
        return w, sink, sleeps

    yield start
    for w, stop in made:
        stop.set()
        w.stop()


def drop(emu, w, mode: str) -> None:
    before = w.drops

    def dropped() -> bool:
        if w.drops > before:
            return True
        emu.drop_streams(mode)
        return w.drops > before

    assert wait_until(dropped, 10)


@pytest.mark.parametrize("mode", ["exit", "channel", "connection"])
def test_every_end_of_stream_backs_off_and_closes_the_old_client(gerrit, watcher, mode):
    """gerritlib's trap: exit status 0 reconnected at once and leaked the client."""
    w, sink, sleeps = watcher()
    for i in range(5):
        drop(gerrit.emu, w, mode)
        assert wait_until(lambda k=i + 2: w.connected and w.connects == k)
    assert len(sleeps) == 5 and all(s > 0 for s in sleeps), sleeps
    assert wait_until(lambda: len(client_transports()) == 1), client_transports()
    assert wait_until(lambda: gerrit.emu.stream_client_count() == 1)
    n = gerrit.emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == n for e in evs))


def test_garbage_lines_are_skipped(gerrit, watcher):
    w, sink, _ = watcher()
    gerrit.emu.inject_raw("this is not json")
    gerrit.emu.inject_raw('{"type": "some-plugin-event", "x": 1}')
    gerrit.emu.inject_raw('{"type": "comment-added", "change": {"number": "oops"')
    n = gerrit.emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == n for e in evs))
    assert [e.type for e in sink.events] == ["patchset-created"]
    assert w.alive and w.drops == 0


def test_recheck_while_disconnected_is_delivered_once(gerrit, watcher):
    emu = gerrit.emu
    w, sink, _ = watcher(backoff=Backoff(initial=0.3, factor=1, maximum=0.3, jitter=0))
    n = emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == n for e in evs))
    drop(emu, w, "connection")
    emu.comment(n, "recheck", user="bob")
    assert wait_until(lambda: w.connects == 2 and not w.catchup_pending, 15)
    marker = emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == marker for e in evs))
    rechecks = [e for e in sink.of("comment-added", n) if e.comment and "recheck" in e.comment]
    assert len(rechecks) == 1 and rechecks[0].account_username == "bob"
    assert len(sink.of("patchset-created", n)) == 1  # not re-delivered by catch-up


def test_dropped_output_triggers_catch_up_without_duplicates(gerrit, watcher):
    emu = gerrit.emu
    w, sink, _ = watcher()
    n = emu.create_change(PROJECT)
    emu.approve(n)
    assert sink.wait_for(lambda evs: len([e for e in evs if e.change_number == n]) >= 2)
    emu.inject_raw('{"type":"dropped-output","eventCreatedOn":1}')
    assert wait_until(lambda: w.catchups == 1)
    marker = emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == marker for e in evs))
    assert len(sink.of("comment-added", n)) == 1 and len(sink.of("patchset-created", n)) == 1
    assert w.drops == 0


def test_connection_delays_events_and_invalidates_the_cache(gerrit):
    emu = gerrit.emu
    got: queue.Queue = queue.Queue()
    conn = GerritConnection("127.0.0.1", gerrit.port, "gatekeeper", str(gerrit.key), got.put,
                            known_hosts=str(gerrit.known_hosts), event_delay=0.2)
    n = emu.create_change(PROJECT)
    conn.start()
    try:
        assert conn.watcher.wait_connected(10) and emu.wait_for_stream_clients(1, 10)
        assert conn.server_version() == (3, 9, 1)  # the emulator's default version
        assert conn.source.get_change(n).approvals == []
        emu.review(n, user="bob", labels={"Code-Review": 1})
        ev = got.get(timeout=10)
        while ev.type != "comment-added":
            ev = got.get(timeout=10)
        assert ev.change_number == n
        # The cached change was dropped when the event arrived: fresh data now.
        assert [(a.label, a.value) for a in conn.source.get_change(n).approvals] == [
            ("Code-Review", 1)]
    finally:
        conn.stop()
    assert not conn.watcher.alive


def test_only_the_configured_key_is_offered(gerrit, tmp_path, monkeypatch):
    """gerritlib's trap: look_for_keys stayed on, so ~/.ssh keys were tried too."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    good = gerrit.key.read_bytes()
    (home / ".ssh" / "id_ed25519").write_bytes(good)
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    fatal: list[str] = []
    w = GerritWatcher("127.0.0.1", gerrit.port, "gatekeeper", str(gerrit.other_key), Collector(),
                      known_hosts=str(gerrit.known_hosts), on_fatal=fatal.append)
    w.start()
    try:
        assert wait_until(lambda: not w.alive, 10)
    finally:
        w.stop()
    assert w.connects == 0 and len(fatal) == 1 and "rejected the SSH key" in fatal[0]


@pytest.mark.parametrize("stable", [False, True])
def test_backoff_grows_until_a_connection_proves_stable(gerrit, watcher, stable):
    ticks = [0.0]

    def clock() -> float:  # virtual: each reading is 100 s later when "stable"
        ticks[0] += 100.0 if stable else 0.0
        return ticks[0]

    w, _, sleeps = watcher(clock=clock, stable_after=30.0,
                           backoff=Backoff(initial=0.02, factor=2, maximum=0.08, jitter=0))
    for i in range(4):
        drop(gerrit.emu, w, "exit")
        assert wait_until(lambda k=i + 2: w.connected and w.connects == k)
    assert sleeps == ([0.02] * 4 if stable else [0.02, 0.04, 0.08, 0.08])


def test_abandon_while_disconnected_is_caught_up_once(gerrit, watcher):
    emu = gerrit.emu
    w, sink, _ = watcher(backoff=Backoff(initial=0.3, factor=1, maximum=0.3, jitter=0))
    streamed = emu.create_change(PROJECT)
    gone = emu.create_change(PROJECT)
    emu.abandon(streamed, reason="seen live")
    assert sink.wait_for(lambda evs: any(e.type == "change-abandoned" for e in evs))
    drop(emu, w, "connection")
    emu.abandon(gone, reason="while away")
    assert wait_until(lambda: w.connects == 2 and not w.catchup_pending, 15)
    marker = emu.create_change(PROJECT)
    assert sink.wait_for(lambda evs: any(e.change_number == marker for e in evs))
    ab = sink.of("change-abandoned")
    assert [(e.change_number, e.synthetic, e.comment) for e in ab] == [
        (streamed, False, "seen live"), (gone, True, "while away")]


def test_gerrit_2x_string_numbers_end_to_end(tmp_path):
    """Gerrit 2.x renders numbers as strings: stream, catch-up and source cope."""
    g = make_gerrit(tmp_path, number_as_string=True)
    sink = Collector()
    w = GerritWatcher("127.0.0.1", g.port, "gatekeeper", str(g.key), sink,
                      known_hosts=str(g.known_hosts), poll_interval=0.1,
                      backoff=Backoff(initial=0.3, factor=1, maximum=0.3, jitter=0))
    try:
        w.start()
        assert w.wait_connected(10) and g.emu.wait_for_stream_clients(1, 10)
        n = g.emu.create_change(PROJECT)
        assert sink.wait_for(lambda evs: any(e.change_number == n and e.patchset == 1
                                             for e in evs))
        drop(g.emu, w, "connection")
        g.emu.approve(n)
        assert wait_until(lambda: w.connects == 2 and not w.catchup_pending, 15)
        assert sink.wait_for(lambda evs: any(e.synthetic and e.change_number == n
                                             for e in evs))
        ca = [e for e in sink.of("comment-added", n) if e.approvals]
        assert len(ca) == 1 and {(a.label, a.value) for a in ca[0].approvals} == {
            ("Code-Review", 2), ("Workflow", 1)}
        ssh = GerritSSH(SshTarget("127.0.0.1", g.port, "gatekeeper", str(g.key),
                                  known_hosts=str(g.known_hosts)))
        try:
            c = GerritSource(ssh).get_change(n)
            assert (c.number, c.patchset) == (n, 1) and c.approval_values("workflow") == [1]
        finally:
            ssh.close()
    finally:
        w.stop()
        g.emu.stop()
