"""One active scheduler per database.

PostgreSQL: a session advisory lock held on a connection of its own for the
scheduler's life; a second scheduler waits for it (a standby) and takes over
when the active one's connection ends (a killed process's socket is closed
by the kernel at once, so the server frees the lock within a moment).
SQLite: an exclusive ``flock`` on ``DB.scheduler-lock`` next to the file; a
second scheduler is refused with a clear error (one host, no standby)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gatekeeper.errors import UserError

log = logging.getLogger("gatekeeper.store.lock")

LOCK_KEY = 0x6761746B  # "gatk": the advisory lock's key


class SchedulerLock:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.backend = engine.url.get_backend_name()
        self._conn: Any = None
        self._file: Any = None
        self.held = False

    @property
    def can_wait(self) -> bool:
        """Whether a second scheduler may wait for this lock (a standby)."""
        return self.backend == "postgresql"

    def where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.backend == "postgresql":
            if self._conn is None:
                self._conn = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            got = bool(self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                          {"k": LOCK_KEY}).scalar())
        elif self.backend == "sqlite":
            got = self._flock()
        else:
            got = True  # no way to tell: documented as one scheduler per database
        self.held = got
        return got

    def acquire(self, stop: threading.Event, poll: float = 1.0) -> bool:
        """Wait for the lock (PostgreSQL) until ``stop``; SQLite: now or an error."""
        if self.try_acquire():
            return True
        if not self.can_wait:
            raise UserError(f"database {self.where()}: another scheduler is using it "
                            f"({self._holder()}); one scheduler per SQLite database "
                            "(use PostgreSQL for a standby)")
        log.info("standby: another scheduler holds database %s; waiting to take over",
                 self.where())
        while not stop.wait(poll):
            if self.try_acquire():
                log.info("standby: the lock is ours; taking over")
                return True
        return False

    def alive(self) -> bool:
        """Still ours? (PostgreSQL: the lock's connection still answers.)"""
        if not self.held or self._conn is None:
            return self.held
        try:
            self._conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                if self.held:
                    self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": LOCK_KEY})
                self._conn.close()
            except sa.exc.SQLAlchemyError:
                pass
            self._conn = None
        if self._file is not None:
            self._file.close()  # drops the flock
            self._file = None
        self.held = False

    # --- SQLite ----------------------------------------------------------

    def _path(self) -> Path | None:
        db = self.engine.url.database or ""
        return None if not db or db == ":memory:" else Path(db + ".scheduler-lock")

    def _flock(self) -> bool:
        path = self._path()
        if path is None:
            return True
        f = open(path, "a+")  # held open (and locked) for the scheduler's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def _holder(self) -> str:
        path = self._path()
        try:
            pid = path.read_text().strip() if path else ""
        except OSError:
            pid = ""
        return f"pid {pid}" if pid else "another process"
