"""The unit harness's scheduler with its state in a real database."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from gatekeeper.store.journal import StateJournal
from gatekeeper.store.outbox import Applied, Outbox
from gatekeeper.store.recorder import HistoryRecorder
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


class StoredHarness(Harness):
    """Reports go through the outbox; ``settle`` also sends it (in-line, as the
    sender thread would after each turn)."""

    def __init__(self, engine: Engine, layout_yaml: str | None = None, retention_days=0.0):
        super().__init__(layout_yaml or layout())
        self.db = engine
        self.attach(retention_days)

    def attach(self, retention_days=0.0) -> None:
        self.journal = StateJournal(self.db, HistoryRecorder(retention_days))
        self.outbox = Outbox(self.db, self.reporter, self._applied, self.clock)
        self.sched.attach_store(self.journal, self.outbox)

    def _applied(self, change, message, labels, submit) -> Applied:
        return Applied.ALL if submit and change.number in self.merged else Applied.NOTHING

    def settle(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            super().settle(limit)
            if not self.outbox.send_pending() and not self.sched.pending():
                return
        raise AssertionError("the scheduler did not settle")


def restart(h: StoredHarness) -> None:
    """A new scheduler process on the same database and the same outside world
    (what the old one had not committed is gone, as after kill -9)."""
    from gatekeeper.scheduler import Scheduler

    h.sched = Scheduler(h.layout, h.source, h.reporter, h.launcher, h.merger, h.clock,
                        status_url="https://status.example.org/", new_uuid=h._uuid)
    h.attach()
    h.sched.restore()
    h.settle()
