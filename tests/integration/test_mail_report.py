"""Mail reports for pipelines with no change to vote on (nightly, periodic):
the real scheduler core decides, the mail sender delivers one digest per
build set to a real SMTP server (aiosmtpd) on loopback, off the scheduler's
thread."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gatekeeper.interfaces import MailReport
from gatekeeper.mail.sender import MailSender, SmtpSettings
from gatekeeper.netutil import free_port
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout

pytestmark = pytest.mark.integration


def wait_for(cond: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.arrived = threading.Condition()
        self.refuse = 0  # answer this many DATA commands 451 (try again later)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 20.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), \
                f"{len(self.messages)} of {count} mails arrived"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


MAILING = layout().replace("""    failure:
      labels: {}
""", """    success:
      send: false
      smtp:
        to: [nightly@example.org, qa@example.org]
        from: ci@example.org
        subject: "{pipeline} {result}: {project} {branch}"
    failure:
      smtp: {to: nightly@example.org}
""", 1)


def test_one_digest_per_build_set_through_a_real_smtp_server(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    h = Harness(MAILING)
    sender = MailSender(SmtpSettings("127.0.0.1", port, "gatekeeper@example.org")).start()
    h.sched.effects.mailer = sender
    try:
        h.clock.t = h.sched.next_wakeup()  # the nightly timer fires
        h.settle()
        assert sorted(b.job for b in h.running()) == ["nightly-3.11", "nightly-3.12"]
        h.release("nightly-3.11")
        assert inbox.messages == [] and sender.sent == 0  # not one mail per job
        h.release("nightly-3.12")
        inbox.wait(1)
        wait_for(lambda: sender.sent == 1, "the sender to count the mail")
        rcpt, msg = inbox.messages[0]
        assert rcpt == ["nightly@example.org", "qa@example.org"]
        assert msg["Subject"] == "periodic SUCCESS: org/project master"
        assert msg["From"] == "ci@example.org"
        assert msg["Auto-Submitted"] == "auto-generated"
        body = msg.get_content()
        assert "- nightly-3.11 " in body and "- nightly-3.12 " in body
        assert body.count("SUCCESS") == 2
        # A failed run: one mail too, from the default sender, with the reason.
        h.clock.t = h.sched.next_wakeup()
        h.settle()
        h.fail("nightly-3.11")
        h.release("nightly-3.12")
        inbox.wait(2)
        rcpt, msg = inbox.messages[1]
        assert rcpt == ["nightly@example.org"]
        assert msg["From"] == "gatekeeper@example.org"
        assert msg["Subject"] == "periodic: FAILURE for org/project master"
        assert "- nightly-3.11 " in msg.get_content() and "FAILURE" in msg.get_content()
        assert len(inbox.messages) == 2
        assert not h.reporter.reports  # nothing went to Gerrit: ref items have no change
    finally:
        sender.stop()


def test_sender_retries_a_temporary_refusal_and_never_blocks_the_caller(
        smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    inbox.refuse = 1
    waits: list[float] = []
    sender = MailSender(SmtpSettings("127.0.0.1", port), sleep=waits.append).start()
    try:
        sender.send(MailReport(("a@example.org",), None, "nightly: FAILURE\nBcc: x@evil",
                               "body\n"))
        inbox.wait(1)
        wait_for(lambda: sender.sent == 1, "the sender to count the mail")
    finally:
        sender.stop()
    assert (sender.sent, sender.failed, len(waits)) == (1, 0, 1)
    _, msg = inbox.messages[0]
    assert msg["Subject"] == "nightly: FAILURE Bcc: x@evil"  # one line: no header injected
    assert msg["Bcc"] is None


def test_unreachable_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    sender = MailSender(SmtpSettings("127.0.0.1", free_port(), timeout=2),
                        sleep=lambda _: None).start()
    sender.send(MailReport(("a@example.org",), None, "s", "b"))
    sender.stop()
    assert (sender.sent, sender.failed) == (0, 1)
    assert "not sent" in caplog.text


def test_mails_go_through_the_durable_outbox_and_survive_a_restart(
        smtp: tuple[Inbox, int], tmp_path: Any) -> None:
    """With the scheduler's database, a mail is a row committed with the turn
    that decided it; one left unsent at a crash is delivered after the restart,
    once."""
    import sqlalchemy as sa

    from gatekeeper.store import schema
    from gatekeeper.store.migrate import open_store
    from tests.unit.store.support import StoredHarness, restart

    inbox, port = smtp
    db = open_store(f"sqlite:///{tmp_path}/gatekeeper.sqlite")
    h = StoredHarness(db, MAILING)
    # Not started: nothing delivers yet, as if the process died right after the commit.
    sender = MailSender(SmtpSettings("127.0.0.1", port)).use_outbox(db, h.clock)
    h.sched.effects.mailer = sender
    h.clock.t = h.sched.next_wakeup()
    h.settle()
    h.release_all()
    with db.connect() as conn:
        rows = conn.execute(sa.select(schema.mail_outbox)).all()
    assert [(r.subject, r.sent) for r in rows] == [("periodic SUCCESS: org/project master", None)]
    assert inbox.messages == []
    restart(h)  # a new scheduler process on the same database
    sender = MailSender(SmtpSettings("127.0.0.1", port)).use_outbox(db, h.clock)
    h.sched.effects.mailer = sender
    sender.start()
    try:
        inbox.wait(1)
        wait_for(lambda: sender.outbox is not None and not sender.outbox.pending(),
                 "the row to be marked sent")
    finally:
        sender.stop()
        db.dispose()
    assert len(inbox.messages) == 1
    assert "- nightly-3.11 " in inbox.messages[0][1].get_content()
