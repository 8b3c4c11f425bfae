"""Retry policy of the reporter and the event delay line (no network here;
the same paths run against the emulator in tests/integration)."""

from __future__ import annotations

import json
import threading

from gatekeeper.gerrit.backoff import Backoff
from gatekeeper.gerrit.connection import EventDelay
from gatekeeper.gerrit.reporter import GerritReporter
from gatekeeper.gerrit.ssh import CommandResult, GerritAuthError, GerritTransportError
from gatekeeper.model.change import Change
from gatekeeper.model.events import TriggerEvent

CHANGE = Change(project="org/p", branch="master", number=12, patchset=3)


class ScriptedSSH:
    """Plays back results/exceptions in order and records the calls."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []

    def run(self, argv, stdin=None, timeout=None):
        self.calls.append((list(argv), stdin))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


OK = CommandResult(0, "", "")


def reporter(ssh, attempts=3):
    sleeps = []
    r = GerritReporter(ssh, attempts=attempts, backoff=Backoff(initial=1, maximum=4, jitter=0),
                       sleep=sleeps.append)
    return r, sleeps


def test_review_goes_as_json_on_stdin_never_in_argv():
    ssh = ScriptedSSH(OK)
    r, _ = reporter(ssh)
    msg = 'x" --code-review +2 --submit --message "y'
    assert r.report(CHANGE, msg, {"Verified": -1}).ok
    argv, stdin = ssh.calls[0]
    assert argv == ["gerrit", "review", "--json", "--project", "org/p", "12,3"]
    assert json.loads(stdin) == {"message": msg, "labels": {"Verified": -1}}


def test_transport_errors_and_internal_errors_are_retried_bounded():
    ssh = ScriptedSSH(GerritTransportError("reset"), CommandResult(1, "", "fatal: internal server error"), OK)
    r, sleeps = reporter(ssh)
    assert r.report(CHANGE, "m", {}).ok
    assert sleeps == [1, 2]
    ssh = ScriptedSSH(*[GerritTransportError("down")] * 3)
    r, sleeps = reporter(ssh)
    res = r.report(CHANGE, "m", {})
    assert not res.ok and "down" in res.error and len(ssh.calls) == 3


def test_submit_refusal_not_retried_and_returns_gerrit_text():
    ssh = ScriptedSSH(OK, CommandResult(1, "", "error: Change 12: merge conflict\nfatal: one or more reviews failed"))
    r, sleeps = reporter(ssh)
    res = r.report(CHANGE, "ok", {"Verified": 2}, submit=True)
    assert not res.ok and "merge conflict" in res.error and sleeps == []
    assert ssh.calls[1][0] == ["gerrit", "review", "--project", "org/p", "--submit", "12,3"]
    assert ssh.calls[1][1] is None


def test_permanent_review_refusal_and_auth_failure_not_retried():
    ssh = ScriptedSSH(CommandResult(1, "", "fatal: change 12 is closed"))
    r, sleeps = reporter(ssh)
    assert not r.report(CHANGE, "m", {}).ok and sleeps == []
    ssh = ScriptedSSH(GerritAuthError("rejected the SSH key"))
    r, sleeps = reporter(ssh)
    res = r.report(CHANGE, "m", {})
    assert not res.ok and "rejected" in res.error and sleeps == []


def test_unexpected_exception_never_raises():
    ssh = ScriptedSSH(RuntimeError("bug"))
    r, _ = reporter(ssh)
    assert r.report(CHANGE, "m", {}).error == "RuntimeError: bug"


def test_nothing_to_say_sends_nothing():
    ssh = ScriptedSSH()
    r, _ = reporter(ssh)
    assert r.report(CHANGE, "", {}).ok and ssh.calls == []


def test_abandon_quotes_message_as_one_argument():
    ssh = ScriptedSSH(OK)
    r, _ = reporter(ssh)
    assert r.abandon(CHANGE, "gone; rm -rf /").ok
    assert ssh.calls[0][0] == ["gerrit", "review", "--project", "org/p", "--abandon",
                               "--message", "gone; rm -rf /", "12,3"]


def test_event_delay_holds_then_releases_in_order():
    now = [100.0]
    got = []
    released = threading.Event()
    before = []

    def sink(ev):
        got.append(ev.change_number)
        if len(got) == 3:
            released.set()

    d = EventDelay(5.0, sink, before_release=lambda e: before.append(e.change_number),
                   clock=lambda: now[0])
    d.start()
    try:
        for n in (1, 2, 3):
            d.put(TriggerEvent(type="comment-added", change_number=n))
        assert not released.wait(0.05) and got == []  # virtual time has not moved
        now[0] = 105.0
        d.put(TriggerEvent(type="comment-added", change_number=99))  # wakes the thread
        assert released.wait(5)
        assert got[:3] == [1, 2, 3] and before[:3] == [1, 2, 3]
        assert len(d) == 1  # the late one still waits its 5 s
    finally:
        d.stop()
    assert d._thread is not None and not d._thread.is_alive()
