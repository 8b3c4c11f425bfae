"""The durable mail outbox: a mail report is a row of ``sched_mail_outbox``,
committed in the same transaction as the scheduler turn that decided it
(``StateJournal.queue_mail``), then delivered by the mail thread.

A crash before the commit loses the decision and the mail together (the
restarted scheduler decides again); after it, the row is delivered on the
next start. A row whose delivery began but was never marked (a crash while
the SMTP server was answering) is delivered again: a mail server cannot be
asked whether it has a message, and a duplicate digest costs less than a
lost one."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.interfaces import MailReport
from gatekeeper.store import schema

log = logging.getLogger("gatekeeper.mail.outbox")


@dataclass(frozen=True)
class MailEntry:
    key: str  # one per item, build set and report point: a replayed decision is one row
    mail: MailReport
    created: float

    def row(self) -> dict[str, Any]:
        m = self.mail
        return dict(key=self.key, recipients=json.dumps(list(m.to)), sender=m.sender,
                    subject=m.subject, body=m.body, created=self.created, attempts=0)


def write_mails(conn: sa.Connection, entries: list[MailEntry]) -> None:
    """Insert ``entries`` in the caller's transaction (a key seen before is skipped)."""
    t = schema.mail_outbox
    keys = [e.key for e in entries]
    have = set(conn.execute(sa.select(t.c.key).where(t.c.key.in_(keys))).scalars())
    rows = [e.row() for e in entries if e.key not in have]
    if rows:
        conn.execute(sa.insert(t), rows)


class MailOutbox:
    """Delivers unsent rows through ``deliver`` (None: delivered, else why not)."""

    def __init__(self, engine: Engine, deliver: Callable[[MailReport], str | None],
                 clock: Callable[[], float]) -> None:
        self.engine = engine
        self.deliver = deliver
        self.clock = clock
        self._lock = threading.Lock()

    def pending(self) -> list[Any]:
        t = schema.mail_outbox
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t).where(t.c.sent.is_(None)).order_by(t.c.id)))

    def send_pending(self) -> int:
        rows = self.pending()
        with self._lock:
            for row in rows:
                self._send(row)
        return len(rows)

    def _send(self, row: Any) -> None:
        t = schema.mail_outbox
        if row.attempts:
            log.warning("mail %s: delivery was under way at a restart; sending it again",
                        row.key)
        with self.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == row.id).values(attempts=t.c.attempts + 1))
        mail = MailReport(tuple(json.loads(row.recipients)), row.sender, row.subject, row.body)
        error = self.deliver(mail)
        with self.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == row.id)
                         .values(sent=self.clock(), error=error))
