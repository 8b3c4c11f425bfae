"""The durable report outbox and the thread that sends it.

A report decision is a row, committed with the state change that caused it
(``journal.StateJournal.flush``); ``ReportSender`` sends the rows outside
the scheduler lock, oldest first, and marks each sent once Gerrit answered.
A row whose send began (``attempts > 0``) but was never marked may have
been applied by Gerrit before a crash: Gerrit is asked first (a submit: is
the change merged? a review: do our votes, or our message, already stand?)
and the row is only marked, not sent again.

A submit is such a row too: the turn that decides it records the item as
submitting and commits the row; the sender sends it like any other, and
Gerrit's answer (``on_submit``) goes back to the scheduler as a
``SubmitCompleted`` result event, handled in a later turn. A slow Gerrit
delays that item's merge, never the scheduler. After a crash the restored
item is still submitting: an unsent row is sent, a row begun is asked of
Gerrit first, and a row already answered gives its answer again
(``answers``), so a change is never submitted twice."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.interfaces import Reporter, ReportResult, Source
from gatekeeper.model.change import Change
from gatekeeper.store import schema

log = logging.getLogger("gatekeeper.store.outbox")


@dataclass(frozen=True)
class OutboxEntry:
    key: str
    change: Change
    message: str
    labels: dict[str, int]
    submit: bool
    created: float

    def row(self) -> dict[str, Any]:
        return dict(key=self.key, project=self.change.project, change=self.change.number,
                    patchset=self.change.patchset, message=self.message,
                    labels=json.dumps(self.labels, sort_keys=True), submit=self.submit,
                    created=self.created, attempts=0)


class Applied(StrEnum):
    """How much of a report Gerrit already shows."""

    NOTHING = "nothing"
    REVIEW = "review"  # the message and votes, not the submit
    ALL = "all"


class AppliedCheck(Protocol):
    def __call__(self, change: Change, message: str, labels: dict[str, int],
                 submit: bool) -> Applied: ...


def _change_of(row: Any) -> Change:
    return Change(project=row.project, branch="", number=row.change, patchset=row.patchset)


class Outbox:
    """The outbox table, and sending one row with at-most-once care."""

    def __init__(self, engine: Engine, reporter: Reporter, applied: AppliedCheck,
                 clock: Callable[[], float]):
        self.engine = engine
        self.reporter = reporter
        self.applied = applied  # asks Gerrit whether a possibly-sent row took effect
        self.clock = clock
        self.sends = 0  # commands given to the reporter (tests count them)
        # Gerrit's answer to a submit row (its key, the result), once marked.
        self.on_submit: Callable[[str, ReportResult], None] | None = None
        self._send_lock = threading.Lock()  # one row is sent by one thread

    def answers(self, keys: Iterable[str]) -> dict[str, ReportResult | None]:
        """Each of ``keys`` that has a row: its answer, None while unsent."""
        t = schema.outbox
        wanted = list(keys)
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.key, t.c.sent, t.c.ok, t.c.error)
                                .where(t.c.key.in_(wanted))).all()
        return {r.key: None if r.sent is None else ReportResult(bool(r.ok), r.error)
                for r in rows}

    def submitted(self) -> set[str]:
        """Uuids of items whose submit was sent, or may have been (its answer is
        known here, or Gerrit is asked before anything is repeated)."""
        t = schema.outbox
        with self.engine.connect() as conn:
            keys = conn.execute(sa.select(t.c.key).where(
                t.c.submit.is_(True), sa.or_(t.c.attempts > 0, t.c.sent.is_not(None)))).scalars()
            return {k.split("/", 1)[0] for k in keys}

    def pending(self) -> list[Any]:
        t = schema.outbox
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t).where(t.c.sent.is_(None))
                                     .order_by(t.c.id)).all())

    def send_pending(self) -> int:
        """Send every unsent row (oldest first); returns how many were handled."""
        rows = self.pending()
        for row in rows:
            self._deliver(row)
        return len(rows)

    def _deliver(self, row: Any) -> ReportResult:
        t = schema.outbox
        with self._send_lock:
            with self.engine.connect() as conn:  # another thread may have sent it
                fresh = conn.execute(sa.select(t).where(t.c.id == row.id)).first()
            if fresh is None:
                return ReportResult(False, "outbox entry vanished")
            if fresh.sent is not None:
                return ReportResult(bool(fresh.ok), fresh.error)
            change = _change_of(fresh)
            labels = {str(k): int(v) for k, v in json.loads(fresh.labels).items()}
            message, submit = fresh.message, fresh.submit
            if fresh.attempts > 0:
                try:
                    done = self.applied(change, message, labels, submit)
                except Exception as e:  # cannot tell: try later, do not risk a repeat
                    log.warning("outbox %s: cannot ask Gerrit whether it was applied: %s",
                                fresh.key, e)
                    return ReportResult(False, f"cannot check with Gerrit: {e}")
                if done == Applied.ALL:
                    log.info("outbox %s: Gerrit already has it (sent before a restart)",
                             fresh.key)
                    return self._mark(fresh, ReportResult(True))
                if done == Applied.REVIEW:  # only the submit is missing
                    message, labels = "", {}
            with self.engine.begin() as conn:
                conn.execute(sa.update(t).where(t.c.id == fresh.id)
                             .values(attempts=t.c.attempts + 1))
            self.sends += 1
            try:
                result = self.reporter.report(change, message, labels, submit=submit)
            except Exception as e:  # a reporter must not take the sender down
                log.exception("reporting on %s failed", change.id_string)
                result = ReportResult(False, f"{type(e).__name__}: {e}")
            if submit and not result.ok:
                result = self._submitted_anyway(fresh.key, change, result)
            return self._mark(fresh, result)

    def _submitted_anyway(self, key: str, change: Change, result: ReportResult) -> ReportResult:
        """A refused submit may have been applied: an attempt that timed out and
        was retried ("change is merged"), a connection lost after Gerrit merged
        it. Gerrit is asked before the gate calls it a merge failure."""
        try:
            done = self.applied(change, "", {}, True)
        except Exception as e:
            log.warning("outbox %s: cannot ask Gerrit whether the refused submit took "
                        "effect: %s", key, e)
            return result
        if done == Applied.ALL:
            log.info("outbox %s: Gerrit refused the submit (%s) but the change is merged",
                     key, result.error)
            return ReportResult(True)
        return result

    def _mark(self, row: Any, result: ReportResult) -> ReportResult:
        t = schema.outbox
        with self.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.id == row.id)
                         .values(sent=self.clock(), ok=result.ok, error=result.error))
        if row.submit and self.on_submit is not None:
            self.on_submit(row.key, result)  # marked first: a crash now finds the answer
        return result


class ReportSender:
    """Sends the outbox in its own thread: a slow Gerrit delays reports, never
    the scheduler."""

    def __init__(self, outbox: Outbox, idle: float = 5.0):
        self.outbox = outbox
        self.idle = idle  # seconds between looks when nobody pokes
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> ReportSender:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gatekeeper-reports",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.outbox.send_pending()
            except Exception:
                log.exception("sending the report outbox failed; trying again")
            self._wake.wait(self.idle)


def gerrit_applied(source: Source, username: str) -> AppliedCheck:
    """What Gerrit shows of a report that may have been sent before a crash:
    a submit, the change merged; a review, our votes standing on the patchset.
    A message without votes cannot be told apart from an older one: it counts
    as sent (a comment may be lost in that window, never posted twice)."""

    def applied(change: Change, message: str, labels: dict[str, int],
                submit: bool) -> Applied:
        source.invalidate(change.number)
        current = source.get_change(change.number, refresh=True)
        if current is None:
            return Applied.NOTHING
        if current.is_merged or not current.is_open:
            return Applied.ALL  # nothing more can be done on a closed change
        if current.patchset != change.patchset:
            return Applied.NOTHING if submit else Applied.ALL
        mine = {a.label.lower(): a.value for a in current.approvals if a.username == username}
        # A 0 vote is not listed by Gerrit: absent counts as given.
        review = all(mine.get(k.lower(), 0) == v for k, v in labels.items())
        if not review:
            return Applied.NOTHING
        return Applied.REVIEW if submit else Applied.ALL

    return applied
