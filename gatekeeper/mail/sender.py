"""Send digest mails on a thread of their own, never the scheduler's.

The thread delivers each mail with smtplib (STARTTLS and login when
configured), trying again a few times with backoff when the server is
unreachable or answers 4xx. With the scheduler's database the mails go
through the durable mail outbox (gatekeeper/mail/outbox.py); without one
(tests, tools) ``send()`` queues in memory and a ``kill -9`` loses what is
queued. ``stop()`` delivers what is pending first, within a bound."""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy.engine import Engine

from gatekeeper.interfaces import MailReport
from gatekeeper.mail.outbox import MailOutbox

log = logging.getLogger("gatekeeper.mail.sender")


@dataclass(frozen=True)
class SmtpSettings:
    server: str
    port: int = 25
    sender: str = "gatekeeper@localhost"  # From: when the layout gives none
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


def build_message(mail: MailReport, default_sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail.sender or default_sender
    msg["To"] = ", ".join(mail.to)
    msg["Subject"] = " ".join(mail.subject.split())  # one line, whatever the template made
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=(mail.sender or default_sender).partition("@")[2]
                                   or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(mail.body)
    return msg


class MailSender:
    """``gatekeeper.interfaces.Mailer`` over SMTP.

    Without an outbox, ``send()`` queues in memory; with one
    (``use_outbox``), the scheduler's journal writes each mail as a row with
    its turn and this thread delivers the rows (``poke()`` after a commit)."""

    def __init__(self, settings: SmtpSettings, attempts: int = 3, backoff: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, idle: float = 5.0) -> None:
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self.idle = idle  # seconds between looks at the outbox when nobody pokes
        self._sleep = sleep
        self._queue: queue.Queue[MailReport | None] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.outbox: MailOutbox | None = None
        self.sent = 0  # delivered mails (for tests and status)
        self.failed = 0

    @property
    def durable(self) -> bool:
        return self.outbox is not None

    def use_outbox(self, engine: Engine, clock: Callable[[], float]) -> MailSender:
        self.outbox = MailOutbox(engine, self.deliver, clock)
        return self

    def start(self) -> MailSender:
        if self._thread is None:
            self._stopping.clear()
            target = self._run_outbox if self.outbox is not None else self._run
            self._thread = threading.Thread(target=target, name="mail-sender", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._stopping.set()
            self._queue.put(None)
            self._wake.set()
            t.join(timeout)

    def send(self, mail: MailReport) -> None:
        self._queue.put(mail)

    def poke(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            mail = self._queue.get()
            if mail is None:
                return
            self.deliver(mail)

    def _run_outbox(self) -> None:
        assert self.outbox is not None
        while True:
            self._wake.clear()
            try:
                self.outbox.send_pending()  # also what is left at stop: delivered first
            except Exception:
                log.exception("sending the mail outbox failed; trying again")
            if self._stopping.is_set():
                return
            self._wake.wait(self.idle)

    def deliver(self, mail: MailReport) -> str | None:
        """Send ``mail`` now (with retries); None when delivered, else why not."""
        s = self.settings
        msg = build_message(mail, s.sender)
        why = ""
        for attempt in range(1, self.attempts + 1):
            try:
                self._smtp_send(msg)
            except smtplib.SMTPResponseException as e:
                permanent = e.smtp_code >= 500
                text = e.smtp_error
                text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
                why = f"{e.smtp_code} {text[:200]}"
            except (smtplib.SMTPException, OSError) as e:
                permanent = isinstance(e, smtplib.SMTPRecipientsRefused)
                why = f"{type(e).__name__}: {e}"
            else:
                self.sent += 1
                log.info("mail %r sent to %s", msg["Subject"], msg["To"])
                return None
            if permanent or attempt == self.attempts:
                break
            log.warning("mail %r: %s; trying again", msg["Subject"], why)
            self._sleep(self.backoff * attempt)
        self.failed += 1
        log.error("mail %r to %s not sent (%s:%d): %s", msg["Subject"], msg["To"], s.server,
                  s.port, why)
        return why

    def _smtp_send(self, msg: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.server, s.port, timeout=s.timeout) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
            smtp.send_message(msg)
