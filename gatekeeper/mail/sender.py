"""Send digest mails on a thread of their own, never the scheduler's.

``send()`` queues and returns; the thread delivers each mail with smtplib
(STARTTLS and login when configured), trying again a few times with backoff
when the server is unreachable or answers 4xx. A mail still queued at a
``kill -9`` is lost (mails are informational: nothing is voted or merged by
them); ``stop()`` delivers what is queued first, within a bound."""

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

from gatekeeper.interfaces import MailReport

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
    """``gatekeeper.interfaces.Mailer`` over SMTP."""

    def __init__(self, settings: SmtpSettings, attempts: int = 3, backoff: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep
        self._queue: queue.Queue[MailReport | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.sent = 0  # delivered mails (for tests and status)
        self.failed = 0

    def start(self) -> MailSender:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        t, self._thread = self._thread, None
        if t is not None:
            self._queue.put(None)
            t.join(timeout)

    def send(self, mail: MailReport) -> None:
        self._queue.put(mail)

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            mail = self._queue.get()
            if mail is None:
                return
            self._deliver(mail)

    def _deliver(self, mail: MailReport) -> None:
        s = self.settings
        msg = build_message(mail, s.sender)
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
                return
            if permanent or attempt == self.attempts:
                self.failed += 1
                log.error("mail %r to %s not sent (%s:%d, attempt %d): %s", msg["Subject"],
                          msg["To"], s.server, s.port, attempt, why)
                return
            log.warning("mail %r: %s; trying again", msg["Subject"], why)
            self._sleep(self.backoff * attempt)

    def _smtp_send(self, msg: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.server, s.port, timeout=s.timeout) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
            smtp.send_message(msg)
